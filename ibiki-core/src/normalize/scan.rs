//! Reads one entry into an optional `+` and its digits, rejecting anything that
//! is not a digit or a separator people put in numbers.

use crate::error::NumberError;

/// Longest entry accepted, in characters.
pub const MAX_ENTRY_CHARS: usize = 64;

/// An entry reduced to what matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Written with a leading `+` (or as a global `tel:` URI).
    pub(crate) plus: bool,
    /// ASCII digits only.
    pub(crate) digits: String,
    /// Index in `digits` of the `0` of a `(0)` written after the first digit
    /// of a `+` number: a trunk prefix or a digit, as the country decides.
    pub(crate) bracketed_zero: Option<usize>,
}

/// Characters people put between digits.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{2010}'
            ..='\u{2015}' | '\u{2212}' | '\u{3000}'
    )
}

/// Invisible characters that text copied from contacts and chats carries
/// around a number (bidirectional marks, zero-width spaces, byte-order mark).
/// libphonenumber ignores them before and after the number, as ibiki does;
/// between digits they stay an error.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}'
    ) || c.is_whitespace()
}

/// The part of `entry` to read, after a `tel:` scheme and without invisible
/// characters around it, and how many characters precede it.
fn body_of(entry: &str) -> (usize, &str) {
    let start = strip_tel_scheme(entry.trim_start_matches(is_invisible));
    let skipped = entry.len() - start.len();
    let offset = entry[..skipped].chars().count();
    (offset, start.trim_end_matches(is_invisible))
}

/// Scans a trimmed entry.
pub(crate) fn scan(entry: &str) -> Result<Scanned, NumberError> {
    // Count at most one past the limit: an oversized entry costs no more.
    if entry.chars().take(MAX_ENTRY_CHARS + 1).count() > MAX_ENTRY_CHARS {
        return Err(NumberError::EntryTooLong {
            max: MAX_ENTRY_CHARS,
        });
    }
    let (offset, body) = body_of(entry);
    if body.contains(';') {
        return Err(NumberError::UriParameters);
    }
    let mut out = Scanned {
        plus: false,
        digits: String::new(),
        bracketed_zero: None,
    };
    let mut rest = body;
    let mut position = offset;
    while let Some(c) = rest.chars().next() {
        // "+44 (0)20 …": the trunk prefix people write after a country code;
        // whether it is one depends on the country, so keep the digit and
        // say where it is.
        if out.plus && !out.digits.is_empty() && rest.starts_with("(0)") {
            out.bracketed_zero.get_or_insert(out.digits.len());
            out.digits.push('0');
            rest = &rest[3..];
            position += 3;
            continue;
        }
        match c {
            '0'..='9' => out.digits.push(c),
            '+' if !out.plus && out.digits.is_empty() => out.plus = true,
            '+' => return Err(NumberError::MisplacedPlus),
            c if is_separator(c) => {}
            c if c.is_alphabetic() => {
                return Err(NumberError::Letter {
                    letter: c,
                    position,
                });
            }
            c => {
                return Err(NumberError::UnexpectedCharacter {
                    character: c,
                    position,
                });
            }
        }
        rest = &rest[c.len_utf8()..];
        position += 1;
    }
    if out.digits.is_empty() {
        return Err(NumberError::Empty);
    }
    Ok(out)
}

fn strip_tel_scheme(entry: &str) -> &str {
    match entry.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => &entry[4..],
        _ => entry,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ok(plus: bool, digits: &str) -> Result<Scanned, NumberError> {
        Ok(Scanned {
            plus,
            digits: digits.to_owned(),
            bracketed_zero: None,
        })
    }

    #[test]
    fn separators_and_schemes() {
        assert_eq!(scan("+1 (415) 555-0100"), ok(true, "14155550100"));
        assert_eq!(scan("TEL:+1-415-555-0100"), ok(true, "14155550100"));
        assert_eq!(scan("415.555.0100"), ok(false, "4155550100"));
        assert_eq!(scan("(0)20 7946 0958"), ok(false, "02079460958"));
    }

    #[test]
    fn a_bracketed_zero_is_kept_and_marked() {
        let marked = |digits: &str, at| {
            Ok(Scanned {
                plus: true,
                digits: digits.to_owned(),
                bracketed_zero: Some(at),
            })
        };
        assert_eq!(scan("+44 (0)20 7946 0958"), marked("4402079460958", 2));
        assert_eq!(scan("+39 (0)6 1234 5678"), marked("390612345678", 2));
        assert_eq!(scan("+44 (0)(0)20"), marked("440020", 2));
    }

    #[test]
    fn invisible_marks_around_a_number_are_ignored() {
        assert_eq!(
            scan("\u{202a}+1 (415) 555\u{2011}0100\u{202c}"),
            ok(true, "14155550100")
        );
        assert_eq!(
            scan("\u{feff}\u{200e}415 555 0100\u{200b}"),
            ok(false, "4155550100")
        );
        assert_eq!(scan("tel:+1-415-555-0100\u{200f}"), ok(true, "14155550100"));
        assert_eq!(
            scan("+1 415\u{200e}555 0100"),
            Err(NumberError::UnexpectedCharacter {
                character: '\u{200e}',
                position: 6
            })
        );
        assert_eq!(
            scan("\u{200e}+1 x"),
            Err(NumberError::Letter {
                letter: 'x',
                position: 4
            })
        );
        assert_eq!(scan("\u{200b}\u{feff}"), Err(NumberError::Empty));
    }

    #[test]
    fn rejections_say_where() {
        assert_eq!(
            scan("INFO-4155550100"),
            Err(NumberError::Letter {
                letter: 'I',
                position: 0
            })
        );
        assert_eq!(
            scan("+1 415 555 01x0"),
            Err(NumberError::Letter {
                letter: 'x',
                position: 13
            })
        );
        assert_eq!(
            scan("+1#4155550100"),
            Err(NumberError::UnexpectedCharacter {
                character: '#',
                position: 2
            })
        );
        assert_eq!(scan("1+4155550100"), Err(NumberError::MisplacedPlus));
        assert_eq!(
            scan("tel:+1-415-555-0100;ext=1"),
            Err(NumberError::UriParameters)
        );
        assert_eq!(scan(" - ( ) "), Err(NumberError::Empty));
        assert_eq!(scan("+"), Err(NumberError::Empty));
        assert_eq!(
            scan("١٢٣٤٥٦٧٨٩"),
            Err(NumberError::UnexpectedCharacter {
                character: '١',
                position: 0
            })
        );
        assert_eq!(
            scan(&"1".repeat(65)),
            Err(NumberError::EntryTooLong {
                max: MAX_ENTRY_CHARS
            })
        );
        assert!(scan(&"1".repeat(64)).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_only_digits(s in "\\PC{0,80}") {
            if let Ok(scanned) = scan(&s) {
                prop_assert!(!scanned.digits.is_empty());
                prop_assert!(scanned.digits.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
