//! The properties the fuzz targets check, one function per target.
//!
//! Each function takes the raw bytes libFuzzer generates and panics when a
//! property fails; the fuzz targets in `fuzz/fuzz_targets/` are one call each,
//! and a plain `cargo test` replays every file of `fuzz/corpus/<target>/`
//! through the same functions, so the properties run on stable too.
//!
//! A new target (webhook decoding, signatures) adds a function here or in its
//! own crate, a file in `fuzz/fuzz_targets/`, a `[[bin]]` in
//! `fuzz/Cargo.toml`, a seed corpus, and a line in the replay test.

use std::cell::RefCell;
use std::future::Future;

use crate::error::{InvalidEntry, NormalizeError, NumberError};
use crate::testing::{CLIENTS, NUMBERS, Op, run_ops};
use crate::{
    BareDigits, Change, Normalizer, PhoneNumber, PhoneNumbersInput, ReplyStore, Validation,
};

/// Most operations one `store_ops` input decodes to.
pub const MAX_OPS: usize = 64;

/// Regions whose national formats the normalize targets read, for their
/// prefixes: trunk 1 (US), 0 (GB, DE), 8 (RU, LT), AR's transform rule, IT's
/// kept 0, FK's 5-digit numbers.
const REGIONS: [&str; 8] = ["US", "GB", "DE", "RU", "LT", "AR", "IT", "FK"];

/// The normalizers each input goes through: no default region, and each of
/// [`REGIONS`], strict or possible, bare inbound digits national or not.
fn normalizers() -> Vec<Normalizer> {
    let mut all = vec![
        Normalizer::new(),
        Normalizer::new().with_bare_digits(BareDigits::International),
    ];
    for (i, code) in REGIONS.iter().enumerate() {
        let region = code.parse().unwrap_or_else(|e| panic!("{code}: {e}"));
        let normalizer = Normalizer::new().with_default_region(region);
        all.push(match i % 2 {
            0 => normalizer,
            _ => normalizer.with_validation(Validation::Possible),
        });
    }
    all
}

thread_local! {
    static NORMALIZERS: Vec<Normalizer> = normalizers();
}

/// Target `normalize_one`: the bytes (lossily UTF-8) as one admin entry and
/// as one inbound `to`, through every normalizer.
///
/// Properties: nothing panics; every number returned is canonical and
/// normalizes to itself (idempotence); the inbound fast path equals the full
/// parse; an admin number is also the inbound one; an error that names a
/// character names the one at its position.
pub fn normalize_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    NORMALIZERS.with(|all| {
        for normalizer in all {
            check_one(normalizer, &text);
        }
    });
}

fn check_one(n: &Normalizer, text: &str) {
    let admin = n.normalize(text);
    let inbound = n.canonicalize_inbound(text);
    assert_eq!(
        inbound,
        n.canonicalize_inbound_slow(text),
        "fast path differs from the full inbound parse on {text:?}"
    );
    match &admin {
        Ok(number) => check_admin_number(n, text, *number, &inbound),
        Err(reason) => check_reason(text, reason),
    }
    match &inbound {
        Ok(number) => check_canonical(n, text, *number),
        Err(reason) => check_reason(text, reason),
    }
}

fn check_admin_number(
    n: &Normalizer,
    text: &str,
    number: PhoneNumber,
    inbound: &Result<PhoneNumber, NumberError>,
) {
    check_canonical(n, text, number);
    assert_eq!(
        n.normalize(&number.to_string()),
        Ok(number),
        "normalize is not idempotent on {text:?}"
    );
    // Only the inbound path can read bare digits as international.
    if n.bare_digits() == BareDigits::National || text.contains('+') {
        assert_eq!(
            inbound.as_ref(),
            Ok(&number),
            "admin and inbound differ on {text:?}"
        );
    }
}

/// A number is canonical, and the inbound parse reads its canonical form back.
fn check_canonical(n: &Normalizer, text: &str, number: PhoneNumber) {
    let shown = number.to_string();
    assert_eq!(
        PhoneNumber::parse_canonical(&shown),
        Ok(number),
        "{shown} from {text:?} is not canonical"
    );
    assert_eq!(
        n.canonicalize_inbound(&shown),
        Ok(number),
        "inbound is not idempotent on {text:?}"
    );
}

/// An error naming a character names the one at its position in the trimmed
/// entry, counted in characters.
fn check_reason(text: &str, reason: &NumberError) {
    let (found, position) = match *reason {
        NumberError::Letter { letter, position } => (letter, position),
        NumberError::UnexpectedCharacter {
            character,
            position,
        } => (character, position),
        _ => return,
    };
    assert_eq!(
        text.trim().chars().nth(position),
        Some(found),
        "{reason:?} does not point at its character in {text:?}"
    );
}

/// Target `normalize_list`: the bytes as a JSON list input (a string or an
/// array of strings) when they are one, and as comma-separated text, through
/// every normalizer and one with small limits.
///
/// Properties: nothing panics; a list that passes is every non-empty entry's
/// number in order, first occurrences only; a list that fails names exactly
/// the bad entries, by valid index, with their original text and the reason
/// `normalize` gives; the limits are reported with the true counts.
pub fn normalize_list(data: &[u8]) {
    let mut inputs = vec![PhoneNumbersInput::from(
        String::from_utf8_lossy(data).into_owned(),
    )];
    if let Ok(json) = serde_json::from_slice::<PhoneNumbersInput>(data) {
        inputs.push(json);
    }
    NORMALIZERS.with(|all| {
        let small = Normalizer::new()
            .with_max_numbers(4)
            .with_max_input_bytes(96);
        for input in &inputs {
            for normalizer in all.iter().chain([&small]) {
                check_list(normalizer, input);
            }
        }
    });
}

fn check_list(n: &Normalizer, input: &PhoneNumbersInput) {
    let entries: Vec<(usize, &str)> = input.entries().filter(|(_, e)| !e.is_empty()).collect();
    match n.normalize_list(input) {
        Ok(numbers) => check_list_numbers(n, &entries, &numbers),
        Err(NormalizeError::Invalid(invalid)) => check_invalid(n, input, &entries, &invalid),
        Err(NormalizeError::TooManyNumbers { max, count }) => {
            assert_eq!(count, entries.len(), "miscounted entries");
            assert!(count > max, "{count} entries are within the limit {max}");
        }
        Err(NormalizeError::InputTooLarge { max, bytes }) => {
            assert_eq!(bytes, input.byte_len(), "misreported size");
            assert!(bytes > max, "{bytes} bytes are within the limit {max}");
        }
    }
}

fn check_list_numbers(n: &Normalizer, entries: &[(usize, &str)], numbers: &[PhoneNumber]) {
    let mut expected: Vec<PhoneNumber> = Vec::new();
    for (index, entry) in entries {
        let number = n
            .normalize(entry)
            .unwrap_or_else(|e| panic!("list passed with entry {index} {entry:?}: {e}"));
        if !expected.contains(&number) {
            expected.push(number);
        }
    }
    assert_eq!(numbers, expected, "the list is not its entries' numbers");
}

fn check_invalid(
    n: &Normalizer,
    input: &PhoneNumbersInput,
    entries: &[(usize, &str)],
    invalid: &[InvalidEntry],
) {
    assert!(!invalid.is_empty(), "a failed list names no entry");
    let all: Vec<(usize, &str)> = input.entries().collect();
    for bad in invalid {
        let (_, text) = all
            .get(bad.index)
            .unwrap_or_else(|| panic!("index {} is past the input", bad.index));
        assert_eq!(*text, bad.input, "entry {} text", bad.index);
        assert_eq!(
            n.normalize(text).as_ref(),
            Err(&bad.reason),
            "entry {}",
            bad.index
        );
    }
    let named: Vec<usize> = invalid.iter().map(|e| e.index).collect();
    let failing: Vec<usize> = entries
        .iter()
        .filter(|(_, e)| n.normalize(e).is_err())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(named, failing, "the failed list names other entries");
}

/// Decodes bytes into store operations, a few bytes each: an opcode byte
/// (its low 2 bits: replace, add, remove or receive; the rest: how many
/// numbers, or the message id), then the client and number indexes. Missing
/// bytes read as 0; at most [`MAX_OPS`] operations.
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut ops = Vec::new();
    while let Some(opcode) = bytes.next() {
        if ops.len() == MAX_OPS {
            break;
        }
        let mut next = || usize::from(bytes.next().unwrap_or(0));
        let high = usize::from(opcode >> 2);
        ops.push(match opcode & 3 {
            3 => Op::Receive {
                // A third of the replies carry no id; the rest collide often.
                id: (high < 42).then_some((high % 12) as u8),
                to: next() % (NUMBERS.len() + 1),
            },
            change => Op::Assign {
                client: next() % CLIENTS.len(),
                change: [Change::Replace, Change::Add, Change::Remove][usize::from(change)],
                numbers: (0..high % 5).map(|_| next() % NUMBERS.len()).collect(),
            },
        });
    }
    ops
}

/// Target `store_ops`: decodes operations ([`decode_ops`]) and applies them to
/// `store` (fresh and empty) and to the reference model, checking after every
/// step that both agree on owners, numbers, inboxes, the held area and the
/// client list, and that every reply is in exactly one place.
pub fn store_ops<S: ReplyStore>(store: S, data: &[u8]) {
    let ops = decode_ops(data);
    if let Err(failure) = block_on(run_ops(&store, &ops)) {
        panic!("{failure}\noperations: {ops:#?}");
    }
}

thread_local! {
    /// One runtime per thread: building one per input would cost more than
    /// the input.
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|cell| {
        let mut runtime = cell.borrow_mut();
        let runtime = runtime.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"))
        });
        runtime.block_on(future)
    })
}

/// Fewest files a target's seed corpus holds: fewer means it went missing.
const MIN_CORPUS_FILES: usize = 10;

/// The corpus directory of the fuzz target `target`, `fuzz/corpus/<target>/`
/// in the workspace: what every crate's replay test hands to
/// [`replay_corpus`].
pub fn corpus_dir(target: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the corpus directory `dir` (a target's
/// `fuzz/corpus/<target>/`), in name order, and panics naming the file that
/// fails. The replay tests of `cargo test` call it once per target.
pub fn replay_corpus(dir: &std::path::Path, check: impl Fn(&[u8])) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<std::path::PathBuf> = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.retain(|path| path.is_file());
    files.sort();
    assert!(
        files.len() >= MIN_CORPUS_FILES,
        "{}: {} corpus files",
        dir.display(),
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            panic!("{} fails (its message is above)", path.display());
        }
    }
}
