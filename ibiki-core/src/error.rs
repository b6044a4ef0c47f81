//! Errors, one enum per concern.

use std::error::Error as StdError;

use crate::{ClientId, PhoneNumber};

/// A boxed error from a store's backend, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a string is not a canonical E.164 number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// The string does not start with `+`.
    #[error("a canonical number starts with '+'")]
    MissingPlus,
    /// Fewer than 2 digits.
    #[error("a canonical number has at least 2 digits")]
    TooShort,
    /// More than 15 digits.
    #[error("a canonical number has at most 15 digits")]
    TooLong,
    /// The first digit is `0`.
    #[error("a country code never starts with 0")]
    LeadingZero,
    /// Something other than an ASCII digit after the `+`.
    #[error("a canonical number has only digits after the '+'")]
    NotADigit,
}

/// Why a client id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdError {
    /// The id is empty.
    #[error("client id is empty")]
    Empty,
    /// The id is longer than allowed.
    #[error("client id is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// The limit in bytes.
        max: usize,
        /// The id's length in bytes.
        len: usize,
    },
    /// The id contains a control character.
    #[error("client id contains a control character at position {position}")]
    ControlCharacter {
        /// 0-based character position.
        position: usize,
    },
}

/// Why one phone number was rejected. Its `Display` is the reason shown to an
/// admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing but separators.
    #[error("no digits")]
    Empty,
    /// The entry is longer than [`MAX_ENTRY_CHARS`](crate::MAX_ENTRY_CHARS).
    #[error("longer than {max} characters")]
    EntryTooLong {
        /// The limit in characters.
        max: usize,
    },
    /// A letter: ibiki never reads vanity letters as digits.
    #[error("letter {letter:?} at position {position}: letters are not phone number digits")]
    Letter {
        /// The letter.
        letter: char,
        /// 0-based character position.
        position: usize,
    },
    /// A character that is neither a digit nor a separator.
    #[error("unexpected character {character:?} at position {position}")]
    UnexpectedCharacter {
        /// The character.
        character: char,
        /// 0-based character position.
        position: usize,
    },
    /// A `+` that is not at the start.
    #[error("'+' is only allowed at the start")]
    MisplacedPlus,
    /// A `tel:` URI with parameters (extensions, phone-context) that cannot
    /// receive SMS or that need a context to be read.
    #[error("tel: URI parameters (';…') are not supported")]
    UriParameters,
    /// `+44 020…`: a national trunk prefix after the country code.
    #[error(
        "remove the national trunk prefix after the country code (write +44 20…, not +44 020…)"
    )]
    TrunkPrefix,
    /// No country code and no default region to read a national number.
    #[error(
        "no country code: write the number with '+' and its country code, or set a default region"
    )]
    MissingCountryCode,
    /// 3 to 6 digits without a country code that the default region does not
    /// know as a whole number: a short code, which is only meaningful inside
    /// one country's network.
    #[error("short codes are not supported: use the full international number")]
    ShortCode,
    /// Too few digits to be a phone number.
    #[error("too short to be a phone number")]
    TooShort,
    /// More digits than E.164 allows.
    #[error("too long to be a phone number (E.164 allows at most 15 digits)")]
    TooLong,
    /// The country code is not assigned.
    #[error("unknown country code")]
    UnknownCountryCode,
    /// Fewer digits than any number of its country has.
    #[error(
        "too short for its country: its numbers have at least {min} digits after the country code"
    )]
    TooShortForCountry {
        /// The fewest digits after the country code its numbers have.
        min: u16,
    },
    /// More digits than any number of its country has.
    #[error(
        "too long for its country: its numbers have at most {max} digits after the country code"
    )]
    TooLongForCountry {
        /// The most digits after the country code its numbers have.
        max: u16,
    },
    /// The number's length is impossible for its country.
    #[error("not a possible number for its country (wrong length)")]
    NotPossible,
    /// The metadata says no such number exists (strict validation).
    #[error("not a valid number for its country")]
    NotValid,
}

/// One bad entry of a list: where it was, what it said, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("entry {index} ({input:?}): {reason}")]
pub struct InvalidEntry {
    /// 0-based index of the entry in the input, empty entries included.
    pub index: usize,
    /// The entry's original text, trimmed.
    pub input: String,
    /// Why it was rejected.
    #[serde(serialize_with = "serialize_display")]
    pub reason: NumberError,
}

fn serialize_display<S: serde::Serializer>(
    value: &NumberError,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Why a list of numbers was rejected as a whole. Nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NormalizeError {
    /// Some entries are bad; every one of them is listed, in input order.
    #[error("{} invalid phone number(s): {}", .0.len(), join(.0))]
    Invalid(Vec<InvalidEntry>),
    /// More entries than the configured maximum.
    #[error("{count} phone numbers given, at most {max} are allowed")]
    TooManyNumbers {
        /// The configured maximum.
        max: usize,
        /// How many entries the input has (at least `max + 1`).
        count: usize,
    },
    /// The input is larger than the configured byte limit.
    #[error("input is {bytes} bytes, at most {max} are allowed")]
    InputTooLarge {
        /// The configured limit.
        max: usize,
        /// The input's size.
        bytes: usize,
    },
}

fn join(entries: &[InvalidEntry]) -> String {
    let parts: Vec<String> = entries.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// A number that another client already owns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The contested number.
    pub phone_number: PhoneNumber,
    /// Its current owner.
    #[serde(rename = "userId")]
    pub owner: ClientId,
}

/// A store operation failed.
///
/// [`Conflict`](StoreError::Conflict),
/// [`InvalidCursor`](StoreError::InvalidCursor),
/// [`NoSuchReply`](StoreError::NoSuchReply), [`NotHeld`](StoreError::NotHeld)
/// and [`Unowned`](StoreError::Unowned) are the caller's fault and changed
/// nothing; the others are the store's: a webhook answers them with
/// "retry later", never "ok".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Some numbers belong to other clients; every one is listed. Nothing changed.
    #[error("phone numbers owned by other clients: {}", list_conflicts(.0))]
    Conflict(Vec<Conflict>),
    /// A page cursor that this store did not issue.
    #[error("invalid page cursor")]
    InvalidCursor,
    /// No reply has this id ([`ReplyStore::deliver_held`](crate::ReplyStore::deliver_held)).
    /// Nothing changed.
    #[error("no reply has id {0}")]
    NoSuchReply(u64),
    /// The reply is not held: it was delivered already. Nothing changed.
    #[error("reply {0} is not held: it was delivered already")]
    NotHeld(u64),
    /// Nobody owns the number a held reply was to be delivered by. Nothing
    /// changed.
    #[error("nobody owns {0}: assign it first, or deliver to a client")]
    Unowned(PhoneNumber),
    /// The backend cannot be reached or timed out; the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend failed in a way a retry is not expected to fix.
    #[error("store failure: {0}")]
    Backend(#[source] BoxError),
}

fn list_conflicts(conflicts: &[Conflict]) -> String {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{} ({})", c.phone_number, c.owner))
        .collect();
    parts.join(", ")
}

impl StoreError {
    /// True when the failure is the store's, not the input's: answer "retry".
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Backend(_))
    }
}
