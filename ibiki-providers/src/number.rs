//! Numbers as providers write them.
//!
//! Several providers (Vonage, Plivo, Sinch...) send international numbers
//! without the leading `+` (`447700900001`). Read with a default region, such
//! digits would be taken for a national number of that region; these
//! providers document them as international, so they are rewritten with a
//! `+` before ibiki canonicalizes them.

/// `raw` as an international number: digits alone (spaces around allowed)
/// get a `+`; anything else (`+1...`, an alphanumeric sender, an empty
/// string) is returned trimmed and otherwise unchanged.
pub(crate) fn international(raw: &str) -> String {
    let trimmed = raw.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_digits_become_international() {
        assert_eq!(international("447700900001"), "+447700900001");
        assert_eq!(international(" 14155550100\n"), "+14155550100");
        assert_eq!(international("+14155550100"), "+14155550100");
        assert_eq!(international("VONAGE"), "VONAGE");
        assert_eq!(international(""), "");
    }

    proptest! {
        #[test]
        fn digits_gain_exactly_one_plus(digits in "[0-9]{1,20}") {
            let written = international(&digits);
            prop_assert_eq!(&written[1..], digits.as_str());
            prop_assert_eq!(international(&written), written.clone());
        }
    }
}
