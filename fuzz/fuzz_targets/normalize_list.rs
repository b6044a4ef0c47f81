//! A whole list, as text or JSON: see `ibiki_core::testing::fuzz::normalize_list`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ibiki_core::testing::fuzz::normalize_list(data));
