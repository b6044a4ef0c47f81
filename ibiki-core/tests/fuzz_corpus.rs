//! Replays every file of each fuzz target's corpus (`fuzz/corpus/<target>/`)
//! through the same property checks the fuzz targets run, so that a plain
//! `cargo test` on stable exercises the seeds and every crash found so far.
#![cfg(feature = "testing")]

use ibiki_core::testing::fuzz::{self, corpus_dir as corpus, replay_corpus};
use ibiki_memory::MemoryStore;

#[test]
fn normalize_one_corpus() {
    replay_corpus(&corpus("normalize_one"), fuzz::normalize_one);
}

#[test]
fn normalize_list_corpus() {
    replay_corpus(&corpus("normalize_list"), fuzz::normalize_list);
}

#[test]
fn store_ops_corpus() {
    replay_corpus(&corpus("store_ops"), |data| {
        fuzz::store_ops(MemoryStore::new(), data)
    });
}
