//! Webhook signature headers, signing and verifying: see
//! `ibiki_http::fuzzing::verify_signature`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_http::fuzzing::verify_signature(data));
