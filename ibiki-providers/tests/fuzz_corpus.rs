//! Replays every file of the `decode_provider` fuzz target's corpus
//! (`fuzz/corpus/decode_provider/`) through the same check the fuzz target
//! runs, so that a plain `cargo test` on stable exercises the seeds and every
//! crash found so far.

use ibiki_core::testing::fuzz::{corpus_dir as corpus, replay_corpus};
use ibiki_providers::fuzzing;

#[test]
fn decode_provider_corpus() {
    replay_corpus(&corpus("decode_provider"), fuzzing::decode_provider);
}

#[test]
fn decode_provider_seeds_select_the_provider_they_name() {
    // `seed-<provider>-...` and `edge-<provider>-...` files start with the
    // index of <provider> in `PROVIDERS`: a reordering would send them to
    // another provider's decoder.
    use ibiki_providers::fuzzing::PROVIDERS;
    let dir = corpus("decode_provider");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(rest) = name
            .strip_prefix("seed-")
            .or_else(|| name.strip_prefix("edge-"))
        else {
            continue;
        };
        // The longest provider name the file names ("generic-form" over
        // "generic").
        let Some((index, _)) = PROVIDERS
            .iter()
            .enumerate()
            .filter(|(_, p)| rest.starts_with(&format!("{p}-")))
            .max_by_key(|(_, p)| p.len())
        else {
            continue;
        };
        let bytes = std::fs::read(&path).expect("seed");
        assert_eq!(
            bytes.first().map(|b| usize::from(*b) % PROVIDERS.len()),
            Some(index),
            "{name} does not select {}",
            PROVIDERS[index]
        );
        checked += 1;
    }
    assert!(checked >= PROVIDERS.len(), "{checked} seeds checked");
}
