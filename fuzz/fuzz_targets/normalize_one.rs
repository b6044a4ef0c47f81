//! One admin entry and one inbound `to`: see `ibiki_core::testing::fuzz::normalize_one`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_core::testing::fuzz::normalize_one(data));
