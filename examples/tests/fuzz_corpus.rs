//! Replays every file of the server's fuzz targets' corpora
//! (`fuzz/corpus/decode_webhook/`, `fuzz/corpus/verify_signature/`) through
//! the same checks the fuzz targets run, so that a plain `cargo test` on
//! stable exercises the seeds and every crash found so far.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ibiki_examples::fuzzing;

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
fn decode_webhook_corpus() {
    replay("decode_webhook", fuzzing::decode_webhook);
}

#[test]
fn verify_signature_corpus() {
    replay("verify_signature", fuzzing::verify_signature);
}
