//! Client API keys: the secret a client presents, and what a store keeps of
//! it (a digest and a prefix), never the key itself.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// An API key: `ibk_` and 256 random bits in URL-safe base64 (47 characters).
///
/// Shown once, when created; afterwards only its [`KeyDigest`] and
/// [`prefix`](Self::prefix) exist. `Debug` shows the prefix alone.
///
/// ```
/// use ibiki_core::ApiKey;
///
/// let key = ApiKey::generate()?;
/// assert!(key.expose().starts_with("ibk_"));
/// // What a client presents parses back to the same digest.
/// let presented = ApiKey::parse(key.expose())?;
/// assert_eq!(presented.digest(), key.digest());
/// assert!(!format!("{key:?}").contains(key.expose()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a presented string is not an API key. Deliberately says nothing about
/// the string itself: it may be a mistyped secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an API key: expected `ibk_` and 43 URL-safe base64 characters")]
pub struct KeyFormatError;

impl ApiKey {
    /// What every key starts with.
    pub const PREFIX: &'static str = "ibk_";
    /// Random bytes in a key: 256 bits, beyond guessing.
    const RANDOM_BYTES: usize = 32;
    /// Characters of the key shown as its [`prefix`](Self::prefix): `ibk_`
    /// and 8 more, 48 random bits, enough to tell a client's keys apart.
    const SHOWN_CHARS: usize = 12;

    /// A fresh key from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Reads a presented key, checking its form only (whether a store knows
    /// it is [`KeyStore::key_owner`](crate::KeyStore::key_owner)'s question).
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let encoded = text.strip_prefix(Self::PREFIX).ok_or(KeyFormatError)?;
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes) {
            // Re-encoding rejects the non-canonical spellings of the same
            // bytes (stray low bits in the last character).
            Ok(Self::RANDOM_BYTES) if URL_SAFE_NO_PAD.encode(bytes) == encoded => {
                Ok(Self(text.to_owned()))
            }
            _ => Err(KeyFormatError),
        }
    }

    /// The key's text, for the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What a store keeps to recognise the key.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The key's first characters (`ibk_` and 8 more): shown in lists so a
    /// client can tell its keys apart, and never enough to use one.
    pub fn prefix(&self) -> &str {
        &self.0[..Self::SHOWN_CHARS]
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}..)", self.prefix())
    }
}

/// The SHA-256 of an [`ApiKey`]: how a store finds a key without holding it.
///
/// A plain hash is enough: a key has 256 random bits, so no dictionary or
/// brute force reaches it from its digest, and a lookup by digest compares no
/// secret byte by byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// A digest read back from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes, to store.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_keys_have_the_documented_form() {
        let key = ApiKey::generate().expect("random");
        assert_eq!(key.expose().len(), 47);
        assert_eq!(key.prefix().len(), 12);
        assert!(key.expose().starts_with(key.prefix()));
        assert_ne!(key, ApiKey::generate().expect("random"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let key = ApiKey::generate().expect("random");
        let text = key.expose();
        for bad in [
            "",
            "ibk_",
            &text[4..],
            &text[..46],
            &format!("{text}A"),
            &format!("IBK_{}", &text[4..]),
            &format!("{}+{}", &text[..10], &text[11..]),
        ] {
            assert_eq!(ApiKey::parse(bad), Err(KeyFormatError), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::generate().expect("random");
        let shown = format!("{key:?} {:?}", key.digest());
        assert!(!shown.contains(key.expose()));
        assert!(shown.contains(key.prefix()));
    }

    proptest! {
        /// Parsing accepts exactly the keys generation can produce: every
        /// 32 bytes, and nothing else of the same length.
        #[test]
        fn parse_accepts_exactly_encoded_keys(bytes in any::<[u8; 32]>(), text in "ibk_[A-Za-z0-9_-]{43}") {
            let key = format!("ibk_{}", URL_SAFE_NO_PAD.encode(bytes));
            let parsed = ApiKey::parse(&key).expect("an encoded key");
            prop_assert_eq!(parsed.expose(), key.as_str());
            match ApiKey::parse(&text) {
                Ok(parsed) => {
                    let decoded = URL_SAFE_NO_PAD.decode(&text[4..]).expect("checked");
                    prop_assert_eq!(URL_SAFE_NO_PAD.encode(decoded), &text[4..]);
                    prop_assert_eq!(parsed.expose(), text.as_str());
                }
                Err(KeyFormatError) => {
                    let decoded = URL_SAFE_NO_PAD.decode(&text[4..]);
                    prop_assert!(decoded.map(|d| URL_SAFE_NO_PAD.encode(d) != text[4..]).unwrap_or(true));
                }
            }
        }
    }
}
