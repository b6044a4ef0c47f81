use phonenumber::metadata::DATABASE;
use proptest::prelude::*;

use super::*;

fn region(code: &str) -> Normalizer {
    Normalizer::new().with_default_region(code.parse().expect("known region"))
}

fn e164(s: &str) -> PhoneNumber {
    PhoneNumber::parse_canonical(s).expect("canonical test vector")
}

/// Real numbers of 14 regions, in the formats people and providers write.
const VECTORS: &[(&str, &str, &str)] = &[
    ("US", "+1 415 555 0100", "+14155550100"),
    ("US", "(415) 555-0101", "+14155550101"),
    ("US", "415.555.0102", "+14155550102"),
    ("US", "1 (415) 555-0103", "+14155550103"),
    ("US", "tel:+1-415-555-0104", "+14155550104"),
    ("US", "011 44 20 7946 0958", "+442079460958"),
    ("CA", "(604) 555-0199", "+16045550199"),
    ("GB", "020 7946 0958", "+442079460958"),
    ("GB", "+44 (0)20 7946 0958", "+442079460958"),
    ("GB", "07400 123456", "+447400123456"),
    ("GB", "00 1 415 555 0100", "+14155550100"),
    ("DE", "030 123456", "+4930123456"),
    ("DE", "+49 30 123456", "+4930123456"),
    ("FR", "01 23 45 67 89", "+33123456789"),
    ("FR", "+33 6 12 34 56 78", "+33612345678"),
    ("IT", "06 1234 5678", "+390612345678"),
    ("IT", "+39 06 1234 5678", "+390612345678"),
    ("JP", "03-1234-5678", "+81312345678"),
    ("AU", "(02) 1234 5678", "+61212345678"),
    ("AU", "0412 345 678", "+61412345678"),
    ("IN", "+91 81234 56789", "+918123456789"),
    ("BR", "(11) 96123-4567", "+5511961234567"),
    ("MX", "+52 55 1234 5678", "+525512345678"),
    ("AR", "011 15-2345-6789", "+5491123456789"),
    ("AR", "+54 9 11 2345-6789", "+5491123456789"),
    ("RU", "8 800 555-35-35", "+78005553535"),
    ("RU", "+7 800 555 35 35", "+78005553535"),
    ("CN", "010 1234 5678", "+861012345678"),
];

#[test]
fn real_numbers_from_many_regions() {
    for &(code, input, expected) in VECTORS {
        let normalizer = region(code);
        assert_eq!(
            normalizer.normalize(input),
            Ok(e164(expected)),
            "{code} {input:?}"
        );
        assert_eq!(
            normalizer.canonicalize_inbound(input),
            Ok(e164(expected)),
            "{code} {input:?}"
        );
    }
}

#[test]
fn plus_input_ignores_the_default_region() {
    // phonenumber strips the default region's national prefix from `+` input:
    // with region US (prefix 1), "+33 1 23…" loses its "1".
    for code in ["US", "RU", "FR", "CN"] {
        let n = region(code);
        assert_eq!(n.normalize("+33 1 23 45 67 89"), Ok(e164("+33123456789")));
        assert_eq!(n.normalize("+86 10 1234 5678"), Ok(e164("+861012345678")));
        assert_eq!(n.normalize("+55 11 96123-4567"), Ok(e164("+5511961234567")));
    }
}

#[test]
fn national_prefix_is_stripped_once() {
    // phonenumber strips Russia's "8" twice, turning 8 800 … into +7 005 ….
    assert_eq!(
        region("RU").normalize("8 800 555 35 35"),
        Ok(e164("+78005553535"))
    );
    assert_eq!(
        Normalizer::new().normalize("+7 800 555 35 35"),
        Ok(e164("+78005553535"))
    );
    // Lithuania's prefix 8 is stripped from international input too:
    // phonenumber turns +370 800 12345 into the invalid +370 0 12345.
    assert_eq!(
        Normalizer::new().normalize("+370 800 12345"),
        Ok(e164("+37080012345"))
    );
    assert_eq!(
        region("LT").normalize("8 800 12345"),
        Ok(e164("+37080012345"))
    );
}

#[test]
fn phonenumber_panic_advisories_inputs_are_rejected() {
    // CVE-2023-42444 (an out-of-bounds slice) and CVE-2024-39697 (an assert)
    // made phonenumber's parser panic; ibiki's scanner refuses both.
    for input in [".;phone-context=", "+dwPAA;phone-context=AA"] {
        for n in [Normalizer::new(), region("US")] {
            assert_eq!(n.normalize(input), Err(NumberError::UriParameters));
            assert_eq!(
                n.canonicalize_inbound(input),
                Err(NumberError::UriParameters)
            );
        }
    }
    assert_eq!(
        Normalizer::new().normalize("+dwPAA"),
        Err(NumberError::Letter {
            letter: 'd',
            position: 1
        })
    );
}

#[test]
fn whole_numbers_of_five_and_six_digits_are_not_short_codes() {
    // Small numbering plans: the Falklands, the Faroes and Niue have 4 to 6
    // digit subscriber numbers, the Netherlands 5-digit municipal numbers.
    let cases = [
        ("FK", "31234", "+50031234"),
        ("FO", "201234", "+298201234"),
        ("NU", "7012", "+6837012"),
        ("NL", "14 020", "+3114020"),
        ("IR", "09601", "+989601"),
    ];
    for (code, input, expected) in cases {
        assert_eq!(region(code).normalize(input), Ok(e164(expected)), "{code}");
        assert_eq!(
            region(code).canonicalize_inbound(input),
            Ok(e164(expected)),
            "{code}"
        );
    }
    // Still short codes: where the region has no such number, or none is set.
    assert_eq!(region("NL").normalize("14 02"), Err(NumberError::ShortCode));
    assert_eq!(region("GB").normalize("61010"), Err(NumberError::ShortCode));
    assert_eq!(
        Normalizer::new().normalize("31234"),
        Err(NumberError::ShortCode)
    );
}

#[test]
fn phonenumber_by_id_001_keeps_one_non_geographic_entity() {
    // `DATABASE.by_id("001")` holds only the last non-geographic entity, +979:
    // every non-geographic code must be judged by its own metadata.
    let n = Normalizer::new();
    for valid in [
        "+80012345678",
        "+80812345678",
        "+870301234567",
        "+878101234567890",
        "+881612345678",
        "+8823421234",
        "+883510012345",
        "+88812345678901",
        "+979123456789",
    ] {
        assert_eq!(n.normalize(valid), Ok(e164(valid)));
    }
    // +979's pattern, under +870: no longer accepted.
    assert_eq!(n.normalize("+870123456789"), Err(NumberError::NotValid));
}

#[test]
fn a_bracketed_zero_is_a_trunk_prefix_only_where_the_country_has_one() {
    let n = Normalizer::new();
    let cases = [
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+49 (0)30 123456", "+4930123456"),
        ("+54 (0)11 2345-6789", "+541123456789"),
        // Italy has no trunk prefix: its 0 is part of the number.
        ("+39 (0)6 1234 5678", "+390612345678"),
    ];
    for (input, expected) in cases {
        assert_eq!(n.normalize(input), Ok(e164(expected)), "{input}");
        assert_eq!(n.canonicalize_inbound(input), Ok(e164(expected)), "{input}");
    }
    // Not after the country code: an ordinary 0, as libphonenumber reads it.
    assert_eq!(
        n.canonicalize_inbound("+44 20 (0)7946 0958"),
        Ok(e164("+4420079460958"))
    );
}

#[test]
fn letters_are_not_digits() {
    // phonenumber reads letters through the keypad: 1-800-FLOWERS is
    // +18003569377 there, a mistake here.
    let n = region("US");
    assert_eq!(
        n.normalize("INFO-4155550100"),
        Err(NumberError::Letter {
            letter: 'I',
            position: 0
        })
    );
    assert_eq!(
        n.normalize("1-800-FLOWERS"),
        Err(NumberError::Letter {
            letter: 'F',
            position: 6
        })
    );
    assert!(n.canonicalize_inbound("INFO-4155550100").is_err());
}

#[test]
fn rejections_with_their_reasons() {
    let us = region("US");
    let none = Normalizer::new();
    let cases: &[(&Normalizer, &str, NumberError)] = &[
        (&none, "(415) 555-0100", NumberError::MissingCountryCode),
        (&us, "12345", NumberError::ShortCode),
        (&none, "911", NumberError::ShortCode),
        (&us, "+44 020 7946 0958", NumberError::TrunkPrefix),
        (&us, "+1 1 415 555 0100", NumberError::TrunkPrefix),
        (&us, "+1 200 555 0100", NumberError::NotValid),
        (
            &us,
            "+1 415 555",
            NumberError::TooShortForCountry { min: 10 },
        ),
        (
            &us,
            "+1 415 555 01000",
            NumberError::TooLongForCountry { max: 10 },
        ),
        (&us, "+999 1234 5678", NumberError::UnknownCountryCode),
        (&us, "+0 415 555 0100", NumberError::UnknownCountryCode),
        (&us, "+1 415 555 0100 1234 56", NumberError::TooLong),
        (&us, "+1", NumberError::TooShort),
        (&us, "", NumberError::Empty),
        (&us, "()-", NumberError::Empty),
        (&us, "+1 415 555 0100;ext=12", NumberError::UriParameters),
        (&us, "+1 415+555 0100", NumberError::MisplacedPlus),
        (
            &us,
            "+1 415 555 0100 \u{0}",
            NumberError::UnexpectedCharacter {
                character: '\u{0}',
                position: 16,
            },
        ),
        (&us, &"1".repeat(65), NumberError::EntryTooLong { max: 64 }),
        (&us, "'; DROP TABLE clients; --", NumberError::UriParameters),
    ];
    for (normalizer, input, reason) in cases {
        assert_eq!(
            normalizer.normalize(input).as_ref(),
            Err(reason),
            "{input:?}"
        );
    }
}

#[test]
fn possible_validation_accepts_ranges_the_metadata_lacks() {
    let lax = region("US").with_validation(Validation::Possible);
    assert_eq!(lax.normalize("+1 200 555 0100"), Ok(e164("+12005550100")));
    assert_eq!(
        lax.normalize("+1 200 555 010"),
        Err(NumberError::TooShortForCountry { min: 10 })
    );
}

#[test]
fn inbound_never_rejects_for_validity() {
    let n = Normalizer::new();
    assert_eq!(
        n.canonicalize_inbound("+999 1234 5678"),
        Ok(e164("+99912345678"))
    );
    assert_eq!(
        n.canonicalize_inbound("+1 200 555 0100"),
        Ok(e164("+12005550100"))
    );
    assert_eq!(
        n.canonicalize_inbound("14155550100"),
        Err(NumberError::MissingCountryCode)
    );
    let bare = n.with_bare_digits(BareDigits::International);
    assert_eq!(
        bare.canonicalize_inbound("14155550100"),
        Ok(e164("+14155550100"))
    );
    assert_eq!(
        bare.canonicalize_inbound(" 44 20 7946 0958"),
        Ok(e164("+442079460958"))
    );
}

#[test]
fn lists_skip_empties_and_collapse_duplicates_in_order() {
    let n = region("US");
    let input = PhoneNumbersInput::from("+1 415 555 0101,, (415) 555-0100 ,+14155550101,");
    assert_eq!(
        n.normalize_list(&input),
        Ok(vec![e164("+14155550101"), e164("+14155550100")])
    );
    let list = PhoneNumbersInput::from(vec!["", "+44 20 7946 0958", "020 7946 0958"]);
    assert_eq!(
        region("GB").normalize_list(&list),
        Ok(vec![e164("+442079460958")])
    );
    assert_eq!(n.normalize_list(&PhoneNumbersInput::from("")), Ok(vec![]));
    assert_eq!(
        n.normalize_list(&PhoneNumbersInput::List(vec![])),
        Ok(vec![])
    );
}

#[test]
fn a_list_fails_whole_naming_every_bad_entry() {
    let n = region("US");
    let input = PhoneNumbersInput::from("+1 415 555 0100, abc,,12345 , +1 415 555 0101, +1 999");
    let Err(NormalizeError::Invalid(entries)) = n.normalize_list(&input) else {
        panic!("expected every bad entry");
    };
    let summary: Vec<(usize, &str)> = entries
        .iter()
        .map(|e| (e.index, e.input.as_str()))
        .collect();
    assert_eq!(summary, [(1, "abc"), (3, "12345"), (5, "+1 999")]);
    assert_eq!(
        entries[0].reason,
        NumberError::Letter {
            letter: 'a',
            position: 0
        }
    );
    assert_eq!(entries[1].reason, NumberError::ShortCode);
}

#[test]
fn list_limits() {
    let n = region("US").with_max_numbers(2).with_max_input_bytes(40);
    let three = PhoneNumbersInput::from("+14155550100,+14155550101,+14155550102");
    assert_eq!(
        n.normalize_list(&three),
        Err(NormalizeError::TooManyNumbers { max: 2, count: 3 })
    );
    let big = PhoneNumbersInput::from(vec!["+14155550100"; 4]);
    assert_eq!(
        n.normalize_list(&big),
        Err(NormalizeError::InputTooLarge { max: 40, bytes: 48 })
    );
    let default = Normalizer::new();
    let many = PhoneNumbersInput::from(vec!["+14155550100"; 1_001]);
    assert_eq!(
        default.normalize_list(&many),
        Err(NormalizeError::TooManyNumbers {
            max: 1_000,
            count: 1_001
        })
    );
}

#[test]
fn both_json_shapes_deserialize() {
    let text: PhoneNumbersInput =
        serde_json::from_str(r#""+14155550100, +14155550101""#).expect("string shape");
    let list: PhoneNumbersInput =
        serde_json::from_str(r#"["+14155550100", "+14155550101"]"#).expect("array shape");
    let n = Normalizer::new();
    assert_eq!(n.normalize_list(&text), n.normalize_list(&list));
    assert!(serde_json::from_str::<PhoneNumbersInput>("42").is_err());
    assert!(serde_json::from_str::<PhoneNumbersInput>("[1, 2]").is_err());
}

#[test]
fn unknown_regions_are_rejected() {
    assert!("ZZ".parse::<Region>().is_err());
    assert!("USA".parse::<Region>().is_err());
    assert!("".parse::<Region>().is_err());
    assert_eq!("gb".parse::<Region>().map(|r| r.calling_code()), Ok(44));
}

/// Valid numbers of every region: each metadata example with its last digits
/// replaced, kept where ibiki's strict check accepts it.
fn valid_numbers() -> impl Strategy<Value = PhoneNumber> {
    let examples: Vec<String> = (1..1000u16)
        .filter_map(|code| DATABASE.by_code(&code).map(|metas| (code, metas)))
        .flat_map(|(code, metas)| {
            metas.into_iter().flat_map(move |meta| {
                metadata_examples(meta)
                    .map(move |ex| format!("{code}{ex}"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    (proptest::sample::select(examples), 0u32..1000).prop_filter_map("valid", |(digits, tail)| {
        let mut digits = digits.into_bytes();
        let len = digits.len();
        for (i, d) in format!("{tail:03}").bytes().enumerate() {
            digits[len - 3 + i] = d;
        }
        let digits = String::from_utf8(digits).ok()?;
        Normalizer::new().normalize(&format!("+{digits}")).ok()
    })
}

fn metadata_examples(meta: &phonenumber::Metadata) -> impl Iterator<Item = String> + '_ {
    [
        phonenumber::Type::FixedLine,
        phonenumber::Type::Mobile,
        phonenumber::Type::TollFree,
    ]
    .into_iter()
    .filter_map(|kind| meta.descriptors().get(kind)?.example().map(str::to_owned))
    .filter(|ex| ex.len() >= 4)
}

/// Writes `number` the way a person might: separators between digit groups.
fn spaced(number: PhoneNumber, sep: &str, group: usize) -> String {
    let digits = number.to_string();
    let chunks: Vec<String> = digits.as_bytes()[1..]
        .chunks(group)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("+{}", chunks.join(sep))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The fast path gives what the full inbound parse gives, for any string.
    #[test]
    fn fast_path_equals_full_parse(s in "\\+?[0-9]{0,17}|\\PC{0,24}") {
        let n = Normalizer::new();
        if let Ok(fast) = n.canonicalize_inbound(&s) {
            prop_assert_eq!(n.canonicalize_inbound_slow(&s), Ok(fast));
        }
    }

    /// On what providers send (the E.164 form of a real number), the fast path
    /// equals ibiki's validated admin parse, and a full `phonenumber` parse and
    /// E.164 format wherever that one is right: where they differ,
    /// `phonenumber` stripped a national prefix from international input
    /// (`+370 800…` becomes `+370 0…`) and its answer is not a valid number.
    #[test]
    fn fast_path_equals_phonenumber_on_canonical_numbers(number in valid_numbers()) {
        let text = number.to_string();
        let n = Normalizer::new();
        prop_assert_eq!(n.canonicalize_inbound(&text), Ok(number));
        prop_assert_eq!(n.normalize(&text), Ok(number));
        let parsed = phonenumber::parse(None, &text).map(|p| p.format().mode(phonenumber::Mode::E164).to_string());
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("phonenumber failed on {text}: {e}")))?;
        if parsed != text {
            prop_assert!(n.normalize(&parsed).is_err(), "phonenumber gave {} for {}, a valid number", parsed, text);
        }
    }

    /// Every formatted variant of a number routes like its E.164 form, inbound
    /// and admin, and normalizing is idempotent.
    #[test]
    fn formats_agree(number in valid_numbers(), sep in "[ .\\-]|\\)|/", group in 1usize..5) {
        let n = Normalizer::new();
        for variant in [spaced(number, &sep, group), format!("tel:{}", spaced(number, "-", group))] {
            prop_assert_eq!(n.normalize(&variant), Ok(number), "{}", variant);
            prop_assert_eq!(n.canonicalize_inbound(&variant), Ok(number), "{}", variant);
        }
        prop_assert_eq!(n.normalize(&number.to_string()), Ok(number));
    }

    /// No input panics any entry point.
    #[test]
    fn never_panics(s in "\\PC{0,80}|[+0-9 ()\\-]{0,70}", code in "[A-Z]{2}") {
        let normalizers = [Normalizer::new(), code.parse().map(|r| Normalizer::new().with_default_region(r)).unwrap_or_default()];
        for n in &normalizers {
            let _ = n.normalize(&s);
            let _ = n.canonicalize_inbound(&s);
            let _ = n.normalize_list(&PhoneNumbersInput::from(s.as_str()));
            if let Ok(number) = n.normalize(&s) {
                prop_assert_eq!(n.normalize(&number.to_string()), Ok(number));
            }
        }
    }
}
