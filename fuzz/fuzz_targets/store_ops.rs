//! Store operations against the reference model, on the memory store: see
//! `ibiki_core::testing::fuzz::store_ops`.
#![no_main]

use ibiki_memory::MemoryStore;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ibiki_core::testing::fuzz::store_ops(MemoryStore::new(), data);
});
