//! Replays every file of the server's fuzz targets' corpora
//! (`fuzz/corpus/decode_webhook/`, `fuzz/corpus/verify_signature/`; the
//! providers' `decode_provider` is replayed by `ibiki-providers`) through
//! the same checks the fuzz targets run, so that a plain `cargo test` on
//! stable exercises the seeds and every crash found so far.

use ibiki_core::testing::fuzz::{corpus_dir as corpus, replay_corpus};
use ibiki_http::fuzzing;

#[test]
fn decode_webhook_corpus() {
    replay_corpus(&corpus("decode_webhook"), fuzzing::decode_webhook);
}

#[test]
fn verify_signature_corpus() {
    replay_corpus(&corpus("verify_signature"), fuzzing::verify_signature);
}
