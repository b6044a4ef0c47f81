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
}

/// Characters people put between digits.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{2010}'
            ..='\u{2015}' | '\u{2212}' | '\u{3000}'
    )
}

/// Scans a trimmed entry.
pub(crate) fn scan(entry: &str) -> Result<Scanned, NumberError> {
    // Count at most one past the limit: an oversized entry costs no more.
    if entry.chars().take(MAX_ENTRY_CHARS + 1).count() > MAX_ENTRY_CHARS {
        return Err(NumberError::EntryTooLong {
            max: MAX_ENTRY_CHARS,
        });
    }
    let body = strip_tel_scheme(entry);
    if body.contains(';') {
        return Err(NumberError::UriParameters);
    }
    let offset = entry.chars().count() - body.chars().count();
    let mut out = Scanned {
        plus: false,
        digits: String::new(),
    };
    let mut rest = body;
    let mut position = offset;
    while let Some(c) = rest.chars().next() {
        // "+44 (0)20 …": the trunk prefix people write after a country code.
        if out.plus && !out.digits.is_empty() && rest.starts_with("(0)") {
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
        })
    }

    #[test]
    fn separators_and_schemes() {
        assert_eq!(scan("+1 (415) 555-0100"), ok(true, "14155550100"));
        assert_eq!(scan("TEL:+1-415-555-0100"), ok(true, "14155550100"));
        assert_eq!(scan("415.555.0100"), ok(false, "4155550100"));
        assert_eq!(scan("+44 (0)20 7946 0958"), ok(true, "442079460958"));
        assert_eq!(scan("(0)20 7946 0958"), ok(false, "02079460958"));
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
