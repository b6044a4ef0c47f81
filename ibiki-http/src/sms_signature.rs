//! Webhook signatures: `X-Ibiki-Signature: t=<unix seconds>,v1=<hex>`.
//!
//! `v1` is the lowercase hex HMAC-SHA256, keyed with the shared secret, of the
//! bytes `<t>.<raw body>`. Signing the timestamp with the body makes a
//! captured request useless once it is more than [`TOLERANCE_SECS`] away from
//! the server's clock, so it cannot be replayed later. The header may carry
//! several `v1` entries (a provider rotating secrets); one match is enough.
//! Unknown keys are ignored, so the scheme can grow.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use ibiki_core::Secret;

/// The header carrying the signature.
pub const HEADER: &str = "x-ibiki-signature";

/// Largest accepted distance between `t` and the server's clock, in seconds.
pub const TOLERANCE_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook's signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `X-Ibiki-Signature` header.
    Missing,
    /// The header is not `t=<digits>,v1=<hex>`.
    Malformed,
    /// `t` is more than [`TOLERANCE_SECS`] away from the server's clock.
    Stale,
    /// No `v1` matches the body and the secret.
    Mismatch,
}

impl SignatureError {
    /// The error code of the 401 answer.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed | Self::Mismatch => "invalid_signature",
            Self::Stale => "stale_signature",
        }
    }

    /// What went wrong, for the provider's integrator.
    pub fn message(self) -> String {
        match self {
            Self::Missing => "the X-Ibiki-Signature header is required".to_owned(),
            Self::Malformed => "X-Ibiki-Signature must look like t=<unix seconds>,v1=<hex>".into(),
            Self::Stale => format!(
                "the signature timestamp is more than {TOLERANCE_SECS} seconds from the server's clock"
            ),
            Self::Mismatch => "the signature does not match the body".to_owned(),
        }
    }
}

/// The webhook secret, ready to sign and verify.
#[derive(Clone)]
pub struct WebhookSecret(Secret);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Wraps the configured secret.
    pub fn new(secret: Secret) -> Self {
        Self(secret)
    }

    /// The MAC state after `<t>.`: what both signing and verifying start from.
    fn mac(&self, timestamp: u64) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(self.0.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac
    }

    /// The header value signing `body` at `timestamp`: what a provider sends.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = self.mac(timestamp);
        mac.update(body);
        let tag = hex::encode(mac.finalize().into_bytes());
        format!("t={timestamp},v1={tag}")
    }

    /// Checks a parsed header against `body` in constant time.
    pub fn verify(&self, header: &SignatureHeader, body: &[u8]) -> Result<(), SignatureError> {
        let mut mac = self.mac(header.timestamp);
        mac.update(body);
        let matched = header
            .signatures
            .iter()
            .any(|tag| mac.clone().verify_slice(tag).is_ok());
        matched.then_some(()).ok_or(SignatureError::Mismatch)
    }
}

/// A parsed `X-Ibiki-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: u64,
    signatures: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Most `v1` entries read: enough for a rotation, too few to make a
    /// request expensive to check.
    const MAX_SIGNATURES: usize = 4;

    /// Parses `t=<digits>,v1=<hex>[,v1=<hex>…]`.
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in value.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed)?;
            match key {
                "t" if timestamp.is_none() => timestamp = Some(parse_timestamp(value)?),
                "t" => return Err(SignatureError::Malformed),
                "v1" if signatures.len() < Self::MAX_SIGNATURES => {
                    signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?);
                }
                _ => {}
            }
        }
        match (timestamp, signatures.is_empty()) {
            (Some(timestamp), false) => Ok(Self {
                timestamp,
                signatures,
            }),
            _ => Err(SignatureError::Malformed),
        }
    }

    /// The signed timestamp, in Unix seconds.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Rejects a timestamp more than [`TOLERANCE_SECS`] from `now`.
    pub fn check_fresh(&self, now: u64) -> Result<(), SignatureError> {
        if now.abs_diff(self.timestamp) > TOLERANCE_SECS {
            return Err(SignatureError::Stale);
        }
        Ok(())
    }
}

fn parse_timestamp(value: &str) -> Result<u64, SignatureError> {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| value.parse().ok())
        .flatten()
        .ok_or(SignatureError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::new(text.parse().expect("non-empty"))
    }

    #[test]
    fn matches_an_independent_hmac() {
        // printf %s '1700000000.{"to":"+14155550100"}' | openssl dgst -sha256 -hmac whsec
        let header = secret("whsec").sign(1_700_000_000, br#"{"to":"+14155550100"}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=dfc95a55830c4b2e63609c1a85aea79351401abc3524e95934d8e2bd317e12f4"
        );
    }

    #[test]
    fn round_trips_and_rejects_changes() {
        let key = secret("whsec");
        let body = b"{}";
        let header = SignatureHeader::parse(&key.sign(42, body)).expect("own header parses");
        assert_eq!(key.verify(&header, body), Ok(()));
        assert_eq!(key.verify(&header, b"{ }"), Err(SignatureError::Mismatch));
        assert_eq!(
            secret("other").verify(&header, body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn freshness_is_symmetric() {
        let header = SignatureHeader::parse("t=1000,v1=00").expect("parses");
        assert_eq!(header.check_fresh(1_300), Ok(()));
        assert_eq!(header.check_fresh(700), Ok(()));
        assert_eq!(header.check_fresh(1_301), Err(SignatureError::Stale));
        assert_eq!(header.check_fresh(699), Err(SignatureError::Stale));
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=,v1=00",
            "t=-1,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "t=99999999999999999999,v1=00",
            "garbage",
        ] {
            assert_eq!(
                SignatureHeader::parse(bad),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        let extra = SignatureHeader::parse("t=1, v0=xx, v1=00").expect("unknown keys ignored");
        assert_eq!(extra.timestamp(), 1);
    }
}
