//! Replays every file of each fuzz target's corpus (`fuzz/corpus/<target>/`)
//! through the same property checks the fuzz targets run, so that a plain
//! `cargo test` on stable exercises the seeds and every crash found so far.
#![cfg(feature = "testing")]

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ibiki_core::testing::fuzz;
use ibiki_memory::MemoryStore;

/// Fewest files a target's corpus holds: fewer means it went missing.
const MIN_FILES: usize = 10;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.retain(|path| path.is_file());
    files.sort();
    files
}

/// Runs `check` on every corpus file of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= MIN_FILES,
        "{target}: {} corpus files",
        files.len()
    );
    for path in files {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            panic!("{target}: {} fails (its message is above)", path.display());
        }
    }
}

#[test]
fn normalize_one_corpus() {
    replay("normalize_one", fuzz::normalize_one);
}

#[test]
fn normalize_list_corpus() {
    replay("normalize_list", fuzz::normalize_list);
}

#[test]
fn store_ops_corpus() {
    replay("store_ops", |data| {
        fuzz::store_ops(MemoryStore::new(), data)
    });
}
