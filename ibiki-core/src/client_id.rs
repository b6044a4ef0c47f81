//! The opaque id of a client.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ClientIdError;

/// The opaque id of a client (the `userId` of the admin API).
///
/// Non-empty, at most [`ClientId::MAX_LEN`] bytes, no control characters.
/// Cloning is cheap (a reference count).
///
/// ```
/// use ibiki_core::ClientId;
///
/// let id = ClientId::new("client-42")?;
/// assert_eq!(id.as_str(), "client-42");
/// assert!(ClientId::new("").is_err());
/// assert!(ClientId::new("a\nb").is_err());
/// # Ok::<(), ibiki_core::ClientIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Longest id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates `id`.
    pub fn new(id: impl AsRef<str>) -> Result<Self, ClientIdError> {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(ClientIdError::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(ClientIdError::TooLong {
                max: Self::MAX_LEN,
                len: id.len(),
            });
        }
        if let Some(position) = id.chars().position(char::is_control) {
            return Err(ClientIdError::ControlCharacter { position });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", &*self.0)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = ClientIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&*s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(ClientId::new("x".repeat(128)).is_ok());
        assert_eq!(
            ClientId::new("x".repeat(129)),
            Err(ClientIdError::TooLong { max: 128, len: 129 })
        );
        assert_eq!(ClientId::new(""), Err(ClientIdError::Empty));
        assert_eq!(
            ClientId::new("ab\u{7f}"),
            Err(ClientIdError::ControlCharacter { position: 2 })
        );
        assert!(ClientId::new("élodie 🙂").is_ok());
    }

    #[test]
    fn serde_validates() {
        let id: ClientId = serde_json::from_str("\"123\"").expect("valid");
        assert_eq!(id.as_str(), "123");
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&id).expect("serialize"), "\"123\"");
    }
}
