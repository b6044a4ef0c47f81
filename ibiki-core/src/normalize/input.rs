//! The two shapes a list of numbers arrives in.

use serde::{Deserialize, Serialize};

/// A list of numbers as an admin sends it: one comma-separated string, or an
/// array of strings. In JSON, either shape deserializes into this type.
///
/// ```
/// use ibiki_core::PhoneNumbersInput;
///
/// let a: PhoneNumbersInput = serde_json::from_str(r#""+14155550100, +14155550101""#)?;
/// let b: PhoneNumbersInput = serde_json::from_str(r#"["+14155550100", "+14155550101"]"#)?;
/// assert_eq!(a.entries().count(), b.entries().count());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PhoneNumbersInput {
    /// `"+1 415 555 0100, +1 415 555 0101"`.
    Text(String),
    /// `["+1 415 555 0100", "+1 415 555 0101"]`.
    List(Vec<String>),
}

impl PhoneNumbersInput {
    /// Every entry with its 0-based index, trimmed; empty entries included
    /// (they keep the indexes of the others true to the input).
    pub fn entries(&self) -> impl Iterator<Item = (usize, &str)> + Clone + '_ {
        let items: Box<dyn Iterator<Item = &str>> = match self {
            Self::Text(text) => Box::new(text.split(',')),
            Self::List(list) => Box::new(list.iter().map(String::as_str)),
        };
        // Collecting keeps the iterator `Clone` without cloning the input.
        let items: Vec<&str> = items.map(str::trim).collect();
        items.into_iter().enumerate()
    }

    /// Size of the input in bytes (the sum of the entries for a list).
    pub fn byte_len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::List(list) => list.iter().map(String::len).sum(),
        }
    }
}

impl From<&str> for PhoneNumbersInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for PhoneNumbersInput {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl<S: Into<String>> From<Vec<S>> for PhoneNumbersInput {
    fn from(list: Vec<S>) -> Self {
        Self::List(list.into_iter().map(Into::into).collect())
    }
}
