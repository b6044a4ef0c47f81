//! Webhook signature headers, signing and verifying: see
//! `ibiki_examples::fuzzing::verify_signature`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_examples::fuzzing::verify_signature(data));
