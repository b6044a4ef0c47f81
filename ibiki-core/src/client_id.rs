//! The opaque id of a client.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ClientIdError;

/// The opaque id of a client (the `userId` of the admin API).
///
/// Non-empty, at most [`ClientId::MAX_LEN`] bytes, no control characters.
/// Cloning is cheap: ids up to 22 bytes are kept inline, longer ones share one
/// allocation.
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
#[derive(Clone)]
pub struct ClientId(Repr);

/// Longest id kept inline.
const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    /// Short ids (most are) live inline: a clone copies 24 bytes and writes no
    /// shared reference count, so routing lookups that return the owner stay
    /// free of cache misses and contention on the count.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Shared(Arc<str>),
}

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
        Ok(Self(match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                Repr::Inline { len, bytes }
            }
            _ => Repr::Shared(Arc::from(id)),
        }))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes were copied from a `str` at a char boundary.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Shared(id) => id,
        }
    }
}

impl PartialEq for ClientId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ClientId {}

impl PartialOrd for ClientId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClientId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for ClientId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", self.as_str())
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        self.as_str()
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
        serializer.serialize_str(self.as_str())
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
    fn short_and_long_ids_compare_by_text() {
        let short = ClientId::new("x".repeat(22)).expect("inline");
        let long = ClientId::new("x".repeat(23)).expect("shared");
        assert!(matches!(short.0, Repr::Inline { .. }));
        assert!(matches!(long.0, Repr::Shared(_)));
        assert!(short < long);
        assert_eq!(long.clone().as_str(), "x".repeat(23));
        assert_eq!(
            ClientId::new("élodie").map(|c| c.to_string()).as_deref(),
            Ok("élodie")
        );
        assert_eq!(std::mem::size_of::<ClientId>(), 24);
    }

    #[test]
    fn serde_validates() {
        let id: ClientId = serde_json::from_str("\"123\"").expect("valid");
        assert_eq!(id.as_str(), "123");
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&id).expect("serialize"), "\"123\"");
    }
}
