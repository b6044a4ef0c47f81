//! What a provider does about signatures, and the primitives every scheme
//! shares: HMACs from the `hmac` crate, constant-time comparison from
//! `subtle`, strict base64 and hex decoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::WebhookError;

/// How a provider treats signatures, given its key `K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing<K> {
    /// Every request must carry a valid signature made with this key.
    Verify(K),
    /// No key is configured: requests are accepted without any check (the
    /// server warns at start).
    AcceptUnsigned,
    /// No key is configured but signatures are required: every request is
    /// refused with `401`.
    RefuseUnsigned,
}

/// [`Signing`] without its key: what a server reports at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningMode {
    /// Signatures are verified.
    Verify,
    /// Unsigned requests are accepted.
    AcceptUnsigned,
    /// Every request is refused: no key to verify with.
    RefuseUnsigned,
}

impl<K> Signing<K> {
    /// `Verify(key)` when a key is configured; otherwise `RefuseUnsigned` if
    /// `require` is set, `AcceptUnsigned` if not.
    pub fn from_key(key: Option<K>, require: bool) -> Self {
        match (key, require) {
            (Some(key), _) => Self::Verify(key),
            (None, true) => Self::RefuseUnsigned,
            (None, false) => Self::AcceptUnsigned,
        }
    }

    /// The mode, without the key.
    pub fn mode(&self) -> SigningMode {
        match self {
            Self::Verify(_) => SigningMode::Verify,
            Self::AcceptUnsigned => SigningMode::AcceptUnsigned,
            Self::RefuseUnsigned => SigningMode::RefuseUnsigned,
        }
    }

    /// The key to verify with, `None` to accept the request unchecked, or
    /// [`WebhookError::SignaturesRequired`].
    pub fn key(&self, provider: &'static str) -> Result<Option<&K>, WebhookError> {
        match self {
            Self::Verify(key) => Ok(Some(key)),
            Self::AcceptUnsigned => Ok(None),
            Self::RefuseUnsigned => Err(WebhookError::SignaturesRequired { provider }),
        }
    }

    /// Maps the key.
    pub fn map<L>(self, f: impl FnOnce(K) -> L) -> Signing<L> {
        match self {
            Self::Verify(key) => Signing::Verify(f(key)),
            Self::AcceptUnsigned => Signing::AcceptUnsigned,
            Self::RefuseUnsigned => Signing::RefuseUnsigned,
        }
    }
}

/// Constant-time equality of two byte strings (their lengths are not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of the concatenated `parts`.
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<Hmac<sha1::Sha1>>(key, parts)
}

/// HMAC-SHA256 of the concatenated `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<Hmac<sha2::Sha256>>(key, parts)
}

/// HMAC-SHA512 of the concatenated `parts`.
pub(crate) fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<Hmac<sha2::Sha512>>(key, parts)
}

/// HMAC-MD5 of the concatenated `parts` (Vonage's `md5` signature method).
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<Hmac<md5::Md5>>(key, parts)
}

/// Standard base64 with padding, as most providers encode signatures.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 (with padding); `None` if it is not.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

/// Decodes hex of either case; `None` if it is not.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok()
}

/// The value of header `name`, if present and visible ASCII.
///
/// A header present more than once yields its first value; a value that is
/// not ASCII is treated as absent (no provider sends one).
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// The value of header `name`, or [`WebhookError::MissingSignature`].
pub(crate) fn signature_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<&'h str, WebhookError> {
    match header(headers, name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(WebhookError::MissingSignature { header: name }),
    }
}

/// Compares `expected` with the base64 `received` in constant time.
#[allow(dead_code, reason = "for providers whose signatures are base64")]
pub(crate) fn verify_base64(
    expected: &[u8],
    received: &str,
    header: &'static str,
) -> Result<(), WebhookError> {
    let received = base64_decode(received).ok_or(WebhookError::MalformedSignature { header })?;
    if constant_time_eq(expected, &received) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Compares `expected` with the hex `received` in constant time.
pub(crate) fn verify_hex(
    expected: &[u8],
    received: &str,
    header: &'static str,
) -> Result<(), WebhookError> {
    let received = hex_decode(received).ok_or(WebhookError::MalformedSignature { header })?;
    if constant_time_eq(expected, &received) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmacs_match_rfc_4231_and_2202() {
        // RFC 4231 test case 2 and RFC 2202 test case 2 ("Jefe").
        let data = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", &[&data[..10], &data[10..]])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", &[data])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(hmac_md5(b"Jefe", &[data])),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(hmac_sha512(b"Jefe", &[data]).len(), 64);
    }

    #[test]
    fn signing_modes() {
        assert_eq!(Signing::from_key(Some(1), true), Signing::Verify(1));
        assert_eq!(
            Signing::<u8>::from_key(None, true)
                .key("p")
                .expect_err("refused")
                .code(),
            "signatures_required"
        );
        assert!(matches!(
            Signing::<u8>::from_key(None, false).key("p"),
            Ok(None)
        ));
        assert_eq!(
            Signing::Verify(2).map(|k| k * 2).mode(),
            SigningMode::Verify
        );
    }

    #[test]
    fn verification_distinguishes_malformed_from_wrong() {
        let mac = hmac_sha256(b"k", &[b"m"]);
        assert!(verify_base64(&mac, &base64_encode(&mac), "h").is_ok());
        assert!(verify_hex(&mac, &hex::encode(&mac), "h").is_ok());
        assert!(matches!(
            verify_base64(&mac, "!!", "h"),
            Err(WebhookError::MalformedSignature { .. })
        ));
        assert!(matches!(
            verify_hex(&mac, "00", "h"),
            Err(WebhookError::BadSignature)
        ));
    }
}
