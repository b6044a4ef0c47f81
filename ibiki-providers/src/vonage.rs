//! Vonage (formerly Nexmo) SMS API: the inbound-SMS webhook.
//!
//! # What Vonage sends
//!
//! The account's inbound webhook receives each message as a `GET` query, a
//! form `POST` or a JSON `POST`, per the dashboard's "HTTP method" setting
//! (<https://developer.vonage.com/messaging/sms/guides/inbound-sms>): the
//! same flat parameters in every case, decoded into [`VonageMessage`].
//! `msisdn` (the sender) and `to` (the account's number) are international
//! numbers written without `+`; `messageId` is the dedup key. Each part of
//! a concatenated message arrives on its own with its own `messageId` and
//! the `concat-*` fields; parts are recorded as they come.
//!
//! # Signature
//!
//! With signed webhooks enabled, the parameters carry `sig`, `timestamp`
//! and `nonce`. Following the official SDK (vonage-python-sdk,
//! `http_client/src/vonage_http_client/auth.py`, `Auth.sign_params` and
//! `check_signature`; the same rule in the Ruby SDK's `Nexmo::Signature`):
//! every parameter but `sig`, sorted by name, each as `&name=value` with `&`
//! and `=` in values replaced by `_`, concatenated; then, per the
//! dashboard's signature method
//! (<https://developer.vonage.com/getting-started/concepts/signing-messages>):
//! `md5hash` (the default) is the hex MD5 of that string followed by the
//! signature secret; `md5`, `sha1`, `sha256` and `sha512` are the hex HMAC of
//! that string keyed with the secret. `sig` is compared without regard to
//! case. Vonage signs to "defend against interception and later replay":
//! a `timestamp` more than 300 seconds from the server's clock is refused.
//! The unit tests use the SDKs' vectors (`test_signature` in the Python SDK,
//! `test/vonage/signature_test.rb` in vonage-ruby-sdk, which signs an
//! inbound SMS with every method).
//!
//! # Answers and retries
//!
//! "You must send a 200 OK or 204 No Content response. If you don't, then
//! Vonage will assume that you have not received the message and will keep
//! resending it for the next 24 hours" (inbound-SMS guide). Success answers
//! `204`; a store failure answers `503`, and Vonage resends.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use http::{Method, StatusCode};
use ibiki_core::{Normalizer, RawReply};
use md5::{Digest, Md5};
use serde::Deserialize;

use super::clock::{self, DEFAULT_TOLERANCE_SECS};
use super::form::Form;
use super::number::international;
use super::signing::{self, Signing, SigningMode};
use super::{Answer, Fields, Provider, Received, WebhookError, WebhookRequest};
use ibiki_core::Secret;

/// The parameter carrying the signature.
pub(crate) const SIGNATURE_PARAM: &str = "sig";
/// The parameter carrying the signed Unix timestamp.
pub(crate) const TIMESTAMP_PARAM: &str = "timestamp";

/// The dashboard's signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureMethod {
    /// "MD5 hash": MD5 of the parameters followed by the secret (the default).
    #[default]
    Md5Hash,
    /// MD5 HMAC.
    Md5Hmac,
    /// SHA-1 HMAC.
    Sha1Hmac,
    /// SHA-256 HMAC.
    Sha256Hmac,
    /// SHA-512 HMAC.
    Sha512Hmac,
}

/// Why a signature method name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Vonage signature method is one of md5hash, md5, sha1, sha256, sha512")]
pub struct UnknownSignatureMethod;

impl FromStr for SignatureMethod {
    type Err = UnknownSignatureMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "md5hash" => Ok(Self::Md5Hash),
            "md5" => Ok(Self::Md5Hmac),
            "sha1" => Ok(Self::Sha1Hmac),
            "sha256" => Ok(Self::Sha256Hmac),
            "sha512" => Ok(Self::Sha512Hmac),
            _ => Err(UnknownSignatureMethod),
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5Hash => "md5hash",
            Self::Md5Hmac => "md5",
            Self::Sha1Hmac => "sha1",
            Self::Sha256Hmac => "sha256",
            Self::Sha512Hmac => "sha512",
        })
    }
}

/// The signature secret and method from the dashboard.
#[derive(Debug, Clone)]
pub struct VonageKey {
    /// The signature secret.
    pub secret: Secret,
    /// The signature method.
    pub method: SignatureMethod,
}

/// An inbound message: every parameter Vonage documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct VonageMessage {
    /// The account's API key.
    #[serde(rename = "api-key")]
    pub api_key: Option<String>,
    /// The sender, international without `+`.
    pub msisdn: Option<String>,
    /// The account's number, international without `+`.
    pub to: Option<String>,
    /// Vonage's id for the message: the dedup key.
    #[serde(rename = "messageId")]
    pub message_id: Option<String>,
    /// The text (`text` and `unicode` messages).
    pub text: Option<String>,
    /// `text`, `unicode` or `binary`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The first word of the text (short codes).
    pub keyword: Option<String>,
    /// When Vonage started pushing it: `YYYY-MM-DD HH:MM:SS`, UTC.
    #[serde(rename = "message-timestamp")]
    pub message_timestamp: Option<String>,
    /// The same as a Unix timestamp (signed).
    pub timestamp: Option<String>,
    /// A random string (signed).
    pub nonce: Option<String>,
    /// `true` for a part of a concatenated message.
    pub concat: Option<String>,
    /// The reference shared by the parts.
    #[serde(rename = "concat-ref")]
    pub concat_ref: Option<String>,
    /// How many parts.
    #[serde(rename = "concat-total")]
    pub concat_total: Option<String>,
    /// Which part, from 1.
    #[serde(rename = "concat-part")]
    pub concat_part: Option<String>,
    /// The content of a `binary` message.
    pub data: Option<String>,
    /// The hex user data header of a `binary` message.
    pub udh: Option<String>,
    /// The signature.
    pub sig: Option<String>,
}

/// Computes `sig` for `params` (any `sig` among them is left out).
pub(crate) fn compute_signature(
    secret: &str,
    method: SignatureMethod,
    params: &[(String, String)],
) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .iter()
        .filter(|(name, _)| name != SIGNATURE_PARAM)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut signed = String::new();
    for (name, value) in sorted {
        signed.push('&');
        signed.push_str(name);
        signed.push('=');
        signed.push_str(&value.replace(['&', '='], "_"));
    }
    let key = secret.as_bytes();
    let digest = match method {
        SignatureMethod::Md5Hash => Md5::new()
            .chain_update(signed.as_bytes())
            .chain_update(key)
            .finalize()
            .to_vec(),
        SignatureMethod::Md5Hmac => signing::hmac_md5(key, &[signed.as_bytes()]),
        SignatureMethod::Sha1Hmac => signing::hmac_sha1(key, &[signed.as_bytes()]),
        SignatureMethod::Sha256Hmac => signing::hmac_sha256(key, &[signed.as_bytes()]),
        SignatureMethod::Sha512Hmac => signing::hmac_sha512(key, &[signed.as_bytes()]),
    };
    hex::encode(digest)
}

/// Verifies the `sig` among `params`, then the freshness of `timestamp`.
pub(crate) fn verify_signature(
    key: &VonageKey,
    params: &[(String, String)],
    now: time::OffsetDateTime,
) -> Result<(), WebhookError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let sig = param(SIGNATURE_PARAM).ok_or(WebhookError::MissingSignature {
        header: SIGNATURE_PARAM,
    })?;
    let timestamp = param(TIMESTAMP_PARAM).ok_or(WebhookError::MissingSignature {
        header: TIMESTAMP_PARAM,
    })?;
    let expected = compute_signature(key.secret.expose(), key.method, params);
    let expected = hex::decode(expected).unwrap_or_default();
    signing::verify_hex(&expected, sig, SIGNATURE_PARAM)?;
    let signed_at = clock::parse_unix_secs(timestamp).ok_or(WebhookError::MalformedSignature {
        header: TIMESTAMP_PARAM,
    })?;
    clock::check_fresh(signed_at, now, DEFAULT_TOLERANCE_SECS)
}

/// The flat parameters of a JSON body, as strings.
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    let object: serde_json::Map<String, serde_json::Value> = super::decode_json(body)?;
    Ok(object
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (name, value)
        })
        .collect())
}

/// Vonage's inbound-SMS webhook.
#[derive(Debug, Clone)]
pub struct Vonage {
    signing: Signing<VonageKey>,
}

impl Vonage {
    /// Vonage verified with the signature secret and method (or not, per
    /// `signing`).
    pub fn new(signing: Signing<VonageKey>) -> Self {
        Self { signing }
    }
}

impl Provider for Vonage {
    fn name(&self) -> &'static str {
        "vonage"
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::GET, Method::POST]
    }

    fn signing_mode(&self) -> SigningMode {
        self.signing.mode()
    }

    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        let params = if request.method == Method::GET {
            request.query()
        } else if request.is_json() {
            Form::from_pairs(json_params(request.body)?)
        } else if request.is_form() {
            Form::parse(request.body)
        } else {
            return Err(request.unsupported(self.name()));
        };
        if let Some(key) = self.signing.key(self.name())? {
            verify_signature(key, params.pairs(), request.received_at)?;
        }
        let message: VonageMessage = params.deserialize("Vonage parameters")?;
        let from = message
            .msisdn
            .as_deref()
            .ok_or_else(|| WebhookError::missing("msisdn"))?;
        let to = message
            .to
            .as_deref()
            .ok_or_else(|| WebhookError::missing("to"))?;
        let raw = RawReply {
            message_id: message.message_id.as_deref(),
            from: &international(from),
            to: &international(to),
            body: message.text.as_deref().unwrap_or(""),
        };
        Fields::new("messageId", raw).received(normalizer, request)
    }

    fn success(&self) -> Answer {
        Answer::empty(StatusCode::NO_CONTENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk_params() -> Vec<(String, String)> {
        [("a", "1"), ("b", "2"), ("timestamp", "1461605396")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sdk_vector_md5hash() {
        // vonage-python-sdk test_signature, secret "secret".
        assert_eq!(
            compute_signature("secret", SignatureMethod::Md5Hash, &sdk_params()),
            "6af838ef94998832dbfc29020b564830"
        );
    }

    fn ruby_params() -> Vec<(String, String)> {
        [
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn sdk_vectors_every_method() {
        // vonage-ruby-sdk test/vonage/signature_test.rb: an inbound SMS,
        // secret "my_secret_key_for_testing".
        for (method, expected) in [
            (SignatureMethod::Md5Hash, "d2e7b1dc968737c5998ad624e02f90b7"),
            (SignatureMethod::Md5Hmac, "DDEBD46008C2D4E93CCE578A332A52D5"),
            (
                SignatureMethod::Sha1Hmac,
                "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A",
            ),
            (
                SignatureMethod::Sha256Hmac,
                "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330",
            ),
            (
                SignatureMethod::Sha512Hmac,
                "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82",
            ),
        ] {
            let computed = compute_signature("my_secret_key_for_testing", method, &ruby_params());
            assert_eq!(computed, expected.to_ascii_lowercase(), "{method}");
            let mut params = ruby_params();
            params.push(("sig".into(), expected.into()));
            let key = VonageKey {
                secret: "my_secret_key_for_testing".parse().expect("secret"),
                method,
            };
            let now = time::OffsetDateTime::from_unix_timestamp(1_385_047_698).expect("time");
            verify_signature(&key, &params, now).expect("SDK vector verifies");
        }
        // ...replaces_disallowed_characters_with_underscores
        for value in ["_", "&", "="] {
            assert_eq!(
                compute_signature(
                    "my_secret_key_for_testing",
                    SignatureMethod::Md5Hash,
                    &[("k".to_owned(), value.to_owned())]
                ),
                "c3d6a686ab9c7e7408bb1c0506e9629a"
            );
        }
    }

    #[test]
    fn sdk_check_signature_vector() {
        let mut params = sdk_params();
        params.push(("sig".into(), "6AF838EF94998832DBFC29020B564830".into()));
        let key = VonageKey {
            secret: "secret".parse().expect("secret"),
            method: SignatureMethod::Md5Hash,
        };
        let now = time::OffsetDateTime::from_unix_timestamp(1_461_605_400).expect("time");
        verify_signature(&key, &params, now).expect("SDK vector, any case");
        let later = time::OffsetDateTime::from_unix_timestamp(1_461_606_000).expect("time");
        assert!(matches!(
            verify_signature(&key, &params, later),
            Err(WebhookError::StaleTimestamp { .. })
        ));
        params[0].1 = "9".into();
        assert!(matches!(
            verify_signature(&key, &params, now),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn separators_in_values_are_neutralized() {
        let with = |value: &str| {
            compute_signature(
                "s",
                SignatureMethod::Sha256Hmac,
                &[("text".to_owned(), value.to_owned())],
            )
        };
        assert_eq!(with("a&b=c"), with("a_b_c"));
        assert_ne!(with("a&b=c"), with("a b c"));
    }

    #[test]
    fn method_names_round_trip() {
        for name in ["md5hash", "md5", "sha1", "sha256", "sha512"] {
            let method: SignatureMethod = name.parse().expect("known");
            assert_eq!(method.to_string(), name);
        }
        assert!("sha384".parse::<SignatureMethod>().is_err());
    }
}
