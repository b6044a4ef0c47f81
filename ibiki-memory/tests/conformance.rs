//! The whole conformance suite against the memory store.

use ibiki_memory::MemoryStore;

ibiki_core::conformance_tests!(|| async { Some(MemoryStore::new()) });
