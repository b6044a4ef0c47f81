//! A webhook body, JSON or form, through the server's decode step: see
//! `ibiki_http::fuzzing::decode_webhook`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_http::fuzzing::decode_webhook(data));
