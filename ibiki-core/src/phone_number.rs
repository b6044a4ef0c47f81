//! The canonical E.164 phone number.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CanonicalError;

/// Most digits an E.164 number has (country code included).
pub(crate) const MAX_DIGITS: usize = 15;
/// Fewest digits ibiki accepts in an E.164 number (country code included).
pub(crate) const MIN_DIGITS: usize = 2;

/// A canonical E.164 phone number: `+`, then 2 to 15 digits, the first one 1-9.
///
/// Because the first digit is never `0`, the digits read as an integer are a
/// one-to-one encoding of the number, so a `PhoneNumber` is a `u64` inside:
/// `Copy`, 8 bytes, hashed and compared as an integer. `Option<PhoneNumber>` is
/// 8 bytes too.
///
/// [`FromStr`] accepts only the canonical form; use
/// [`Normalizer`](crate::Normalizer) for anything a person or a provider typed.
/// Ordering is numeric: fewer digits first, then digit by digit, the same as
/// ordering the E.164 strings by `(length, text)`. Every store lists numbers in
/// this order.
///
/// ```
/// use ibiki_core::PhoneNumber;
///
/// let n: PhoneNumber = "+14155550100".parse()?;
/// assert_eq!(n.to_string(), "+14155550100");
/// assert!("+1 415 555 0100".parse::<PhoneNumber>().is_err());
/// # Ok::<(), ibiki_core::CanonicalError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(NonZeroU64);

impl PhoneNumber {
    /// Parses a canonical E.164 string. This is the webhook fast path: a few
    /// nanoseconds, no metadata, no allocation.
    pub fn parse_canonical(s: &str) -> Result<Self, CanonicalError> {
        let digits = s.strip_prefix('+').ok_or(CanonicalError::MissingPlus)?;
        Self::from_digits(digits.as_bytes())
    }

    /// Builds a number from its digits without the `+`.
    pub(crate) fn from_digits(digits: &[u8]) -> Result<Self, CanonicalError> {
        if digits.len() < MIN_DIGITS {
            return Err(CanonicalError::TooShort);
        }
        if digits.len() > MAX_DIGITS {
            return Err(CanonicalError::TooLong);
        }
        if digits[0] == b'0' {
            return Err(CanonicalError::LeadingZero);
        }
        let mut value: u64 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return Err(CanonicalError::NotADigit);
            }
            value = value * 10 + u64::from(b - b'0');
        }
        // At least two digits, the first non-zero: value >= 10.
        NonZeroU64::new(value)
            .map(Self)
            .ok_or(CanonicalError::LeadingZero)
    }

    /// The digits as an integer (`+14155550100` is `14155550100`).
    pub const fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// Rebuilds a number from [`as_u64`](Self::as_u64); `None` if `value` is not
    /// 2 to 15 digits long.
    pub fn from_u64(value: u64) -> Option<Self> {
        (10..=999_999_999_999_999)
            .contains(&value)
            .then(|| NonZeroU64::new(value).map(Self))
            .flatten()
    }

    /// Writes the E.164 digits into `buf` and returns the filled tail.
    fn digits(self, buf: &mut [u8; MAX_DIGITS]) -> &str {
        let mut value = self.as_u64();
        let mut start = MAX_DIGITS;
        while value > 0 {
            start -= 1;
            buf[start] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        // Only ASCII digits were written.
        std::str::from_utf8(&buf[start..]).unwrap_or_default()
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; MAX_DIGITS];
        f.write_str("+")?;
        f.write_str(self.digits(&mut buf))
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({self})")
    }
}

impl FromStr for PhoneNumber {
    type Err = CanonicalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_canonical(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PhoneNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a canonical E.164 phone number such as \"+14155550100\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PhoneNumber, E> {
                PhoneNumber::parse_canonical(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rejects_non_canonical_forms() {
        for bad in [
            "",
            "+",
            "+1",
            "14155550100",
            "+01234",
            "+1234567890123456",
            "+1 415",
            "++1415",
            "+1415a",
            "+١٢٣",
        ] {
            assert!(PhoneNumber::parse_canonical(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accepts_bounds() {
        assert_eq!(
            PhoneNumber::parse_canonical("+10").map(|n| n.as_u64()),
            Ok(10)
        );
        let max = "+999999999999999";
        assert_eq!(
            PhoneNumber::parse_canonical(max)
                .map(|n| n.to_string())
                .as_deref(),
            Ok(max)
        );
    }

    #[test]
    fn serde_is_the_e164_string() {
        let n = PhoneNumber::parse_canonical("+442079460958").expect("canonical");
        assert_eq!(
            serde_json::to_string(&n).expect("serialize"),
            "\"+442079460958\""
        );
        let back: PhoneNumber = serde_json::from_str("\"+442079460958\"").expect("deserialize");
        assert_eq!(back, n);
        assert!(serde_json::from_str::<PhoneNumber>("\"442079460958\"").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(s in "\\+[1-9][0-9]{1,14}") {
            let n = PhoneNumber::parse_canonical(&s).expect("generated canonical");
            prop_assert_eq!(n.to_string(), s);
            prop_assert_eq!(PhoneNumber::from_u64(n.as_u64()), Some(n));
        }

        #[test]
        fn never_panics_and_accepts_only_canonical(s in "\\PC{0,20}") {
            if let Ok(n) = PhoneNumber::parse_canonical(&s) {
                prop_assert_eq!(n.to_string(), s);
            }
        }

        #[test]
        fn numeric_order_matches_length_then_text(a in "\\+[1-9][0-9]{1,14}", b in "\\+[1-9][0-9]{1,14}") {
            let (na, nb) = (PhoneNumber::parse_canonical(&a).expect("a"), PhoneNumber::parse_canonical(&b).expect("b"));
            prop_assert_eq!(na.cmp(&nb), (a.len(), &a).cmp(&(b.len(), &b)));
        }
    }
}
