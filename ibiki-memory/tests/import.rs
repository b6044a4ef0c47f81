//! The import property against the memory store.

use ibiki_memory::MemoryStore;

#[test]
fn import_matches_the_model() {
    ibiki_core::testing::import::import_property(|| async { Some(MemoryStore::new()) }, 256);
}
