//! Differential test against libphonenumber.
//!
//! `tests/vectors/libphonenumber.tsv` holds what libphonenumber (its Python
//! port, the metadata version ibiki reads) makes of every region's example
//! numbers and of random valid numbers derived from them, in the E164,
//! INTERNATIONAL, RFC3966 and NATIONAL formats, plus edge inputs.
//! `scripts/differential/generate.py` writes it.
//!
//! For every valid number in every format, ibiki's strict admin parse and its
//! inbound parse must give libphonenumber's E.164. For the edge inputs, ibiki
//! must agree with libphonenumber (the same number when it is valid, a
//! rejection when it is not) or differ in one of the ways listed in
//! [`DELIBERATE`], each with its reason.

use std::collections::{BTreeMap, BTreeSet};

use ibiki_core::{Normalizer, NumberError, PhoneNumber};

/// Every default region the vectors use, and the formats: the floor this test
/// holds the vectors file to.
const MIN_REGIONS: usize = 240;
const FORMATS: [&str; 4] = ["e164", "international", "rfc3966", "national"];

const VECTORS: &str = include_str!("vectors/libphonenumber.tsv");

/// One line of the vectors file.
#[derive(Debug)]
struct Vector {
    line: usize,
    /// Default region; `None` for `-`.
    region: Option<String>,
    kind: String,
    format: String,
    input: String,
    /// libphonenumber's E.164, or `error:<kind>` when it could not parse.
    expected: String,
    /// libphonenumber's `is_valid_number` on what it parsed.
    valid: bool,
}

impl Vector {
    fn is_edge(&self) -> bool {
        self.kind.starts_with("edge:")
    }

    fn normalizer(&self) -> Normalizer {
        let normalizer = Normalizer::new();
        match &self.region {
            Some(code) => normalizer.with_default_region(
                code.parse()
                    .unwrap_or_else(|e| panic!("line {}: {e}", self.line)),
            ),
            None => normalizer,
        }
    }

    fn expected_number(&self) -> Option<PhoneNumber> {
        PhoneNumber::parse_canonical(&self.expected).ok()
    }

    fn region_name(&self) -> &str {
        self.region.as_deref().unwrap_or("-")
    }
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.starts_with("region\t"))
        .map(|(i, l)| parse_line(i + 1, l))
        .collect()
}

fn parse_line(line: usize, text: &str) -> Vector {
    let fields: Vec<&str> = text.split('\t').collect();
    let [region, kind, format, input, expected, valid] = fields[..] else {
        panic!("line {line}: expected 6 fields, got {}", fields.len());
    };
    Vector {
        line,
        region: (region != "-").then(|| region.to_owned()),
        kind: kind.to_owned(),
        format: format.to_owned(),
        input: unescape(input),
        expected: expected.to_owned(),
        valid: valid == "1",
    }
}

/// An input where ibiki answers otherwise than libphonenumber on purpose.
struct Deliberate {
    /// Default region, `-` for none.
    region: &'static str,
    input: &'static str,
    /// ibiki's admin answer.
    admin: NumberError,
    /// ibiki's inbound answer: `None` for the admin error, or the number.
    inbound: Option<&'static str>,
}

const fn letter(letter: char, position: usize) -> NumberError {
    NumberError::Letter { letter, position }
}

const fn unexpected(character: char, position: usize) -> NumberError {
    NumberError::UnexpectedCharacter {
        character,
        position,
    }
}

const fn deliberate(
    region: &'static str,
    input: &'static str,
    admin: NumberError,
    inbound: Option<&'static str>,
) -> Deliberate {
    Deliberate {
        region,
        input,
        admin,
        inbound,
    }
}

/// Where ibiki and libphonenumber differ, and why (the guide's
/// "Differential testing" says the same).
const DELIBERATE: &[Deliberate] = &[
    // Letters are never digits: libphonenumber reads vanity numbers through
    // the keypad, and an admin who typed a word most likely made a mistake.
    deliberate("US", "1-800-FLOWERS", letter('F', 6), None),
    deliberate("US", "INFO-4155550100", letter('I', 0), None),
    deliberate("GB", "0800 REPAIR", letter('R', 5), None),
    // A trunk prefix after the country code: libphonenumber silently drops it;
    // ibiki tells the admin to, so that what is stored is what was meant.
    // Inbound keeps the digits after a `+` as sent (the fast path must equal
    // the full parse), so such a reply is held, never guessed onto a number.
    deliberate(
        "US",
        "+44 020 7946 0958",
        NumberError::TrunkPrefix,
        Some("+4402079460958"),
    ),
    deliberate(
        "-",
        "+44 020 7946 0958",
        NumberError::TrunkPrefix,
        Some("+4402079460958"),
    ),
    deliberate(
        "-",
        "+49 030 123456",
        NumberError::TrunkPrefix,
        Some("+49030123456"),
    ),
    deliberate(
        "-",
        "+33 01 23 45 67 89",
        NumberError::TrunkPrefix,
        Some("+330123456789"),
    ),
    deliberate(
        "-",
        "+61 02 1234 5678",
        NumberError::TrunkPrefix,
        Some("+610212345678"),
    ),
    deliberate(
        "-",
        "+1 1 415 555 0100",
        NumberError::TrunkPrefix,
        Some("+114155550100"),
    ),
    deliberate(
        "-",
        "+7 8 800 555 35 35",
        NumberError::TrunkPrefix,
        Some("+788005553535"),
    ),
    // Extensions and `tel:` parameters: an SMS cannot reach an extension, and
    // a phone-context needs a context ibiki does not have.
    deliberate("-", "+1 415 555 0100 ext. 123", letter('e', 16), None),
    deliberate("-", "+1 415 555 0100 x123", letter('x', 16), None),
    deliberate(
        "-",
        "tel:+1-415-555-0100;ext=123",
        NumberError::UriParameters,
        None,
    ),
    deliberate(
        "-",
        "tel:415-555-0100;phone-context=+1",
        NumberError::UriParameters,
        None,
    ),
    // Digits of other scripts: rejected with the character and its position,
    // so the admin retypes them; only ASCII digits are stored or compared.
    deliberate(
        "-",
        "+\u{ff11} \u{ff14}\u{ff11}\u{ff15} \u{ff15}\u{ff15}\u{ff15} \u{ff10}\u{ff11}\u{ff10}\u{ff10}",
        unexpected('\u{ff11}', 1),
        None,
    ),
    deliberate(
        "-",
        "+\u{664}\u{664} \u{662}\u{660} \u{667}\u{669}\u{664}\u{666} \u{660}\u{669}\u{665}\u{668}",
        unexpected('\u{664}', 1),
        None,
    ),
];

fn find_deliberate(v: &Vector) -> Option<&'static Deliberate> {
    DELIBERATE
        .iter()
        .find(|d| d.region == v.region_name() && d.input == v.input)
}

/// Whether ibiki's admin answer is libphonenumber's: the same number when
/// libphonenumber says it is valid, a rejection when it does not.
fn agrees(v: &Vector, admin: &Result<PhoneNumber, NumberError>) -> bool {
    match (v.valid, v.expected_number(), admin) {
        (true, Some(expected), Ok(got)) => expected == *got,
        (false, _, Err(_)) => true,
        _ => false,
    }
}

/// Every valid number, in every format, normalizes to libphonenumber's E.164
/// through the admin parse (strict) and the inbound parse.
#[test]
fn valid_numbers_agree_in_every_format() {
    let all = vectors();
    let mut failures = Vec::new();
    let mut passed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut regions = BTreeSet::new();
    for v in all.iter().filter(|v| !v.is_edge() && v.valid) {
        let expected = v.expected_number();
        let normalizer = v.normalizer();
        let admin = normalizer.normalize(&v.input);
        let inbound = normalizer.canonicalize_inbound(&v.input);
        if expected.is_some()
            && admin.as_ref().ok() == expected.as_ref()
            && inbound.as_ref().ok() == expected.as_ref()
        {
            *passed.entry(&v.format).or_default() += 1;
            regions.insert(v.region_name());
        } else {
            failures.push(format!(
                "line {} {} {} {} {:?}: libphonenumber {}, ibiki {admin:?}, inbound {inbound:?}",
                v.line,
                v.region_name(),
                v.kind,
                v.format,
                v.input,
                v.expected
            ));
        }
    }
    println!(
        "{} valid vectors agree, by format {passed:?}, {} default regions (- is none)",
        passed.values().sum::<usize>(),
        regions.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(regions.len() >= MIN_REGIONS, "{} regions", regions.len());
    assert!(
        FORMATS
            .iter()
            .all(|f| passed.get(f).is_some_and(|&n| n > 1_500))
    );
}

/// Numbers libphonenumber rejects or finds invalid, ibiki's strict parse
/// rejects too; where ibiki gives another answer, it is one of [`DELIBERATE`].
#[test]
fn other_inputs_agree_or_differ_on_purpose() {
    let mut failures = Vec::new();
    let mut agreed = 0;
    for v in vectors().iter().filter(|v| v.is_edge() || !v.valid) {
        let normalizer = v.normalizer();
        let admin = normalizer.normalize(&v.input);
        let inbound = normalizer.canonicalize_inbound(&v.input);
        let ok = match find_deliberate(v) {
            Some(d) => admin.as_ref() == Err(&d.admin) && inbound_is(d, &inbound),
            None if v.valid => {
                agrees(v, &admin) && inbound.as_ref().ok() == v.expected_number().as_ref()
            }
            None => agrees(v, &admin),
        };
        if ok {
            agreed += 1;
        } else {
            failures.push(format!(
                "line {} {} {:?}: libphonenumber {} (valid {}), ibiki {admin:?}, inbound {inbound:?}",
                v.line,
                v.region_name(),
                v.input,
                v.expected,
                v.valid
            ));
        }
    }
    println!(
        "{agreed} edge vectors as expected, {} of them deliberate differences",
        DELIBERATE.len()
    );
    assert!(
        failures.is_empty(),
        "{} unexplained disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn inbound_is(d: &Deliberate, inbound: &Result<PhoneNumber, NumberError>) -> bool {
    match d.inbound {
        Some(number) => inbound.as_ref().ok().map(ToString::to_string).as_deref() == Some(number),
        None => inbound.as_ref() == Err(&d.admin),
    }
}

/// Each deliberate difference is one the vectors hold, and libphonenumber does
/// accept it: the list cannot go stale.
#[test]
fn every_deliberate_difference_is_a_vector() {
    let all = vectors();
    for d in DELIBERATE {
        let v = all
            .iter()
            .find(|v| v.region_name() == d.region && v.input == d.input)
            .unwrap_or_else(|| panic!("{:?} is not in the vectors", d.input));
        assert!(
            v.valid,
            "libphonenumber rejects {:?}: not a difference",
            d.input
        );
    }
}
