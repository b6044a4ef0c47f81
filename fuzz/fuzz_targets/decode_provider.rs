//! Any bytes through every SMS provider's decoder (the first byte picks the
//! provider): see `ibiki_providers::fuzzing::decode_provider`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_providers::fuzzing::decode_provider(data));
