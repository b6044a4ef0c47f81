//! Phone number normalization: admin input to validated E.164, inbound
//! webhook numbers to canonical E.164.

mod input;
mod metadata;
mod scan;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use self::input::PhoneNumbersInput;
use self::metadata::RegionRules;
pub use self::scan::MAX_ENTRY_CHARS;
use self::scan::{Scanned, scan};
use crate::error::{InvalidEntry, NormalizeError, NumberError};
use crate::phone_number::{MAX_DIGITS, MIN_DIGITS, PhoneNumber};

/// How strictly admin input is checked against the numbering metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Validation {
    /// The metadata knows the number's range (libphonenumber's `isValidNumber`).
    #[default]
    Strict,
    /// The length is possible for the country (`isPossibleNumber`): for ranges
    /// newer than the metadata.
    Possible,
}

/// What inbound digits without a `+` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BareDigits {
    /// A national number of the default region (an error without one).
    #[default]
    National,
    /// An international number whose `+` the provider left out
    /// (`14155550100`).
    International,
}

/// A region whose national format is accepted (`US`, `GB`, …).
#[derive(Clone)]
pub struct Region(Arc<RegionRules>);

impl Region {
    /// The ISO 3166 code, upper case.
    pub fn code(&self) -> &str {
        &self.0.id
    }

    /// The region's country calling code (`1` for `US`).
    pub fn calling_code(&self) -> u16 {
        self.0.code
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.code())
    }
}

impl PartialEq for Region {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for Region {}

/// The region code is not in the numbering metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}: expected an ISO 3166 code such as \"US\"")]
pub struct UnknownRegion(pub String);

impl FromStr for Region {
    type Err = UnknownRegion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let known = upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase());
        known
            .then(|| metadata::region(&upper))
            .flatten()
            .map(Region)
            .ok_or_else(|| UnknownRegion(s.to_owned()))
    }
}

/// Turns what admins type and providers post into [`PhoneNumber`]s.
///
/// Cheap to clone and to share. The defaults: no default region, strict
/// validation, at most 1,000 numbers and 64 KiB per list, bare inbound digits
/// read as national numbers.
///
/// ```
/// use ibiki_core::{Normalizer, PhoneNumbersInput};
///
/// let us = Normalizer::new().with_default_region("US".parse()?);
/// let input = PhoneNumbersInput::from("+1 415 555 0100, (415) 555-0101 ,+44 20 7946 0958");
/// let numbers = us.normalize_list(&input)?;
/// let shown: Vec<String> = numbers.iter().map(ToString::to_string).collect();
/// assert_eq!(shown, ["+14155550100", "+14155550101", "+442079460958"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Normalizer {
    region: Option<Region>,
    validation: Validation,
    bare_digits: BareDigits,
    max_numbers: usize,
    max_input_bytes: usize,
}

impl Default for Normalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Normalizer {
    /// Default maximum number of entries in one list.
    pub const DEFAULT_MAX_NUMBERS: usize = 1_000;
    /// Default maximum size of one list, in bytes.
    pub const DEFAULT_MAX_INPUT_BYTES: usize = 64 * 1024;

    /// A normalizer with the defaults.
    pub fn new() -> Self {
        Self {
            region: None,
            validation: Validation::Strict,
            bare_digits: BareDigits::National,
            max_numbers: Self::DEFAULT_MAX_NUMBERS,
            max_input_bytes: Self::DEFAULT_MAX_INPUT_BYTES,
        }
    }

    /// Reads numbers without a country code as national numbers of `region`.
    /// Numbers written with `+` never use it.
    pub fn with_default_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Sets how strictly admin input is validated.
    pub fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Sets what inbound digits without `+` mean.
    pub fn with_bare_digits(mut self, bare_digits: BareDigits) -> Self {
        self.bare_digits = bare_digits;
        self
    }

    /// Sets the most entries one list may have.
    pub fn with_max_numbers(mut self, max: usize) -> Self {
        self.max_numbers = max;
        self
    }

    /// Sets the largest list input, in bytes.
    pub fn with_max_input_bytes(mut self, max: usize) -> Self {
        self.max_input_bytes = max;
        self
    }

    /// The default region, if any.
    pub fn default_region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// What inbound digits without `+` mean.
    pub fn bare_digits(&self) -> BareDigits {
        self.bare_digits
    }

    /// Compiles the numbering rules of every country now instead of on first
    /// use (a few tens of milliseconds in a release build, seconds in a debug
    /// build), so no request pays for it.
    pub fn warm_up(&self) {
        metadata::warm_up();
    }

    /// Normalizes and validates one admin entry.
    pub fn normalize(&self, entry: &str) -> Result<PhoneNumber, NumberError> {
        let scanned = scan(entry.trim())?;
        let digits = if scanned.plus {
            international(scanned)
        } else {
            self.national_to_international(&scanned.digits)?
        };
        self.validate(&digits)
    }

    /// Normalizes a whole list: every entry valid, or an error naming every
    /// bad entry. Empty entries are skipped; duplicates keep their first place.
    pub fn normalize_list(
        &self,
        input: &PhoneNumbersInput,
    ) -> Result<Vec<PhoneNumber>, NormalizeError> {
        let bytes = input.byte_len();
        if bytes > self.max_input_bytes {
            return Err(NormalizeError::InputTooLarge {
                max: self.max_input_bytes,
                bytes,
            });
        }
        let entries = input.entries().filter(|(_, e)| !e.is_empty());
        let count = entries.clone().count();
        if count > self.max_numbers {
            return Err(NormalizeError::TooManyNumbers {
                max: self.max_numbers,
                count,
            });
        }
        let mut numbers = Vec::with_capacity(count);
        let mut seen = HashSet::with_capacity(count);
        let mut invalid = Vec::new();
        for (index, entry) in entries {
            match self.normalize(entry) {
                Ok(n) if seen.insert(n) => numbers.push(n),
                Ok(_) => {}
                Err(reason) => invalid.push(InvalidEntry {
                    index,
                    input: entry.to_owned(),
                    reason,
                }),
            }
        }
        if invalid.is_empty() {
            Ok(numbers)
        } else {
            Err(NormalizeError::Invalid(invalid))
        }
    }

    /// Canonicalizes the number a provider posted as a reply's `to`.
    ///
    /// Never rejects for validity: a number outside the metadata still routes.
    /// Canonical input (`+14155550100`, what providers send) takes a fast path
    /// with no metadata and no allocation; other forms are scanned like admin
    /// input, and digits without `+` follow [`BareDigits`].
    pub fn canonicalize_inbound(&self, raw: &str) -> Result<PhoneNumber, NumberError> {
        match PhoneNumber::parse_canonical(raw) {
            Ok(number) => Ok(number),
            Err(_) => self.canonicalize_inbound_slow(raw),
        }
    }

    /// The full inbound path; [`canonicalize_inbound`](Self::canonicalize_inbound)
    /// gives the same result, faster.
    #[doc(hidden)]
    pub fn canonicalize_inbound_slow(&self, raw: &str) -> Result<PhoneNumber, NumberError> {
        let scanned = scan(raw.trim())?;
        let digits = match (scanned.plus, self.bare_digits) {
            (true, _) => international(scanned),
            (false, BareDigits::International) => scanned.digits,
            (false, BareDigits::National) => self.national_to_international(&scanned.digits)?,
        };
        syntax(&digits)
    }

    /// Rewrites digits written without `+` as E.164 digits, using the default
    /// region's international prefix (`011 44 …`) or national format.
    fn national_to_international(&self, digits: &str) -> Result<String, NumberError> {
        let short = (3..=6).contains(&digits.len());
        let Some(region) = self.region.as_ref() else {
            return Err(if short {
                NumberError::ShortCode
            } else {
                NumberError::MissingCountryCode
            });
        };
        if short {
            return region_number(region, digits).ok_or(NumberError::ShortCode);
        }
        if let Some(international) = region.0.strip_international_prefix(digits) {
            return Ok(international.to_owned());
        }
        let national = region.0.strip_national_prefix(digits);
        Ok(format!("{}{}", region.calling_code(), national))
    }

    /// Checks E.164 digits against the metadata at the configured level.
    fn validate(&self, digits: &str) -> Result<PhoneNumber, NumberError> {
        let number = syntax(digits)?;
        let (_, country, national) =
            metadata::split_country_code(digits).ok_or(NumberError::UnknownCountryCode)?;
        let accepted = match self.validation {
            Validation::Strict => country.is_valid(national),
            Validation::Possible => country.is_possible(national),
        };
        match (accepted, self.validation) {
            (true, _) => Ok(number),
            (false, _) if has_trunk_prefix(&country, national, self.validation) => {
                Err(NumberError::TrunkPrefix)
            }
            (false, validation) => Err(wrong_for_country(&country, national, validation)),
        }
    }
}

/// The E.164 digits of a `+` entry: a bracketed `(0)` after the country code
/// is dropped where it is the country's trunk prefix (`+44 (0)20 …`) and kept
/// where it is a digit (`+39 (0)6 …`), as libphonenumber reads them.
fn international(scanned: Scanned) -> String {
    let mut digits = scanned.digits;
    if let Some(at) = scanned.bracketed_zero {
        if metadata::is_trunk_zero(&digits, at) {
            digits.remove(at);
        }
    }
    digits
}

/// 3 to 6 digits are a short code unless the region's metadata knows them as
/// a whole number: the Falklands' `31234`, the Netherlands' `14 020`.
fn region_number(region: &Region, digits: &str) -> Option<String> {
    let national = region.0.strip_national_prefix(digits);
    let country = metadata::country(region.calling_code())?;
    country
        .is_valid(&national)
        .then(|| format!("{}{}", region.calling_code(), national))
}

/// `+44 020 …`: the national number is only acceptable without its trunk prefix.
fn has_trunk_prefix(
    country: &metadata::CountryRules,
    national: &str,
    validation: Validation,
) -> bool {
    let Some(main) = country.main_region() else {
        return false;
    };
    let stripped = main.strip_national_prefix(national);
    stripped != national
        && match validation {
            Validation::Strict => country.is_valid(&stripped),
            Validation::Possible => country.is_possible(&stripped),
        }
}

/// Why a number its country refuses is refused: too short or too long for
/// any of its numbers, else not valid (or not possible) there.
fn wrong_for_country(
    country: &metadata::CountryRules,
    national: &str,
    validation: Validation,
) -> NumberError {
    match country.length_fit(national) {
        (Ordering::Less, min, _) => NumberError::TooShortForCountry { min },
        (Ordering::Greater, _, max) => NumberError::TooLongForCountry { max },
        (Ordering::Equal, ..) => match validation {
            Validation::Strict => NumberError::NotValid,
            Validation::Possible => NumberError::NotPossible,
        },
    }
}

/// E.164 syntax only: 2 to 15 digits, the first not 0.
fn syntax(digits: &str) -> Result<PhoneNumber, NumberError> {
    if digits.len() > MAX_DIGITS {
        return Err(NumberError::TooLong);
    }
    if digits.len() < MIN_DIGITS {
        return Err(NumberError::TooShort);
    }
    PhoneNumber::from_digits(digits.as_bytes()).map_err(|_| NumberError::UnknownCountryCode)
}

#[cfg(test)]
mod tests;
