//! For tests: every provider's request signed as that provider signs it, the
//! answers providers expect, and the documented payloads under
//! `tests/fixtures/` (feature `testing`; not part of the API).
//!
//! Each signer takes the key as text, so a test signs with a wrong key by
//! passing another, and returns the body to send (Vonage signs inside it)
//! with the headers the signature travels in.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use http::Method;

use crate::form::Form;
use crate::generic::GenericAuth;
use crate::messagebird::{MessageBird, MessageBirdClaims};
use crate::vonage::SignatureMethod;
use crate::{BasicCredentials, plivo, sinch, telnyx, twilio, vonage};

/// A request as a provider sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The body, signature included where the provider puts it there.
    pub body: Vec<u8>,
    /// The headers the signature travels in.
    pub headers: Vec<(String, String)>,
}

impl Signed {
    fn new<N: Into<String>>(body: &[u8], headers: Vec<(N, String)>) -> Self {
        Self {
            body: body.to_vec(),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        }
    }

    /// The value of the header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What Twilio is answered once its replies are recorded.
pub const TWILIO_EMPTY_TWIML: &str = twilio::EMPTY_TWIML;
/// What Plivo is answered once its replies are recorded.
pub const PLIVO_EMPTY_XML: &str = plivo::EMPTY_XML;

/// Standard base64, as signatures and keys travel.
pub fn base64_encode(bytes: &[u8]) -> String {
    crate::signing::base64_encode(bytes)
}

/// HMAC-SHA1 of the concatenated `parts`.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    crate::signing::hmac_sha1(key, parts)
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    crate::signing::hmac_sha256(key, parts)
}

/// The path of a documented payload, `tests/fixtures/<provider>/<name>`.
pub fn fixture_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A documented payload, `tests/fixtures/<provider>/<name>`.
pub fn fixture(path: &str) -> Vec<u8> {
    let path = fixture_path(path);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Twilio: `X-Twilio-Signature` over `url` and the form's parameters.
pub fn twilio(auth_token: &str, url: &str, body: &[u8]) -> Signed {
    let signature = twilio::compute_signature(auth_token, url, Form::parse(body).pairs());
    Signed::new(body, vec![(twilio::SIGNATURE_HEADER, signature)])
}

/// Telnyx's key pair from a 32-byte seed; its public half goes to
/// [`TelnyxPublicKey`](crate::telnyx::TelnyxPublicKey).
pub fn telnyx_key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// Telnyx: Ed25519 over `<timestamp>|<body>`.
pub fn telnyx(key: &SigningKey, timestamp: u64, body: &[u8]) -> Signed {
    let timestamp = timestamp.to_string();
    let signed = [timestamp.as_bytes(), b"|", body].concat();
    let signature = base64_encode(&key.sign(&signed).to_bytes());
    Signed::new(
        body,
        vec![
            (telnyx::SIGNATURE_HEADER, signature),
            (telnyx::TIMESTAMP_HEADER, timestamp),
        ],
    )
}

/// Vonage: the form's parameters with `timestamp` set and `sig` added, signed
/// with `method`.
pub fn vonage(secret: &str, method: SignatureMethod, timestamp: u64, body: &[u8]) -> Signed {
    let mut params: Vec<(String, String)> = Form::parse(body)
        .pairs()
        .iter()
        .filter(|(name, _)| name != vonage::TIMESTAMP_PARAM && name != vonage::SIGNATURE_PARAM)
        .cloned()
        .collect();
    params.push((vonage::TIMESTAMP_PARAM.into(), timestamp.to_string()));
    let sig = vonage::compute_signature(secret, method, &params);
    params.push((vonage::SIGNATURE_PARAM.into(), sig));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    Signed::new::<String>(body.as_bytes(), Vec::new())
}

/// Plivo: `X-Plivo-Signature-V3` over the method, `url`, the form's
/// parameters and `nonce`.
pub fn plivo(auth_token: &str, method: &Method, url: &str, body: &[u8], nonce: &str) -> Signed {
    let signature =
        plivo::compute_signature(auth_token, method, url, Form::parse(body).pairs(), nonce);
    Signed::new(
        body,
        vec![
            (plivo::SIGNATURE_HEADER, signature),
            (plivo::NONCE_HEADER, nonce.to_owned()),
        ],
    )
}

/// HTTP Basic credentials, as Bandwidth and Infobip send them (and Sinch,
/// configured so).
pub fn basic(user: &str, password: &str, body: &[u8]) -> Signed {
    let password = password.parse().expect("a non-empty password");
    let credentials = BasicCredentials::new(user, password);
    Signed::new(body, vec![("authorization", credentials.header_value())])
}

/// Sinch: base64 HMAC-SHA256 of `<body>.<nonce>.<timestamp>`.
pub fn sinch(secret: &str, timestamp: u64, nonce: &str, body: &[u8]) -> Signed {
    let timestamp = timestamp.to_string();
    let signed = [body, b".", nonce.as_bytes(), b".", timestamp.as_bytes()].concat();
    let signature = base64_encode(&hmac_sha256(secret.as_bytes(), &[&signed]));
    Signed::new(
        body,
        vec![
            (sinch::SIGNATURE_HEADER, signature),
            (sinch::TIMESTAMP_HEADER, timestamp),
            (sinch::NONCE_HEADER, nonce.to_owned()),
            (sinch::ALGORITHM_HEADER, "HmacSHA256".to_owned()),
        ],
    )
}

/// MessageBird: the `MessageBird-Signature-JWT` of a request to `url`, valid
/// for a minute from `not_before`.
pub fn messagebird(signing_key: &str, url: &str, body: &[u8], not_before: i64) -> Signed {
    let claims = MessageBirdClaims::for_request(url, body, not_before, not_before + 60, "jti-1");
    let token = MessageBird::sign_jwt(signing_key, &claims);
    Signed::new(body, vec![(MessageBird::SIGNATURE_JWT_HEADER, token)])
}

/// A configured gateway: the header its HMAC scheme sends (nothing for
/// other kinds of authentication).
pub fn generic(auth: &GenericAuth, body: &[u8]) -> Signed {
    Signed::new(body, auth.sign(body).into_iter().collect())
}

/// The URL-signed schemes' own computations, for tests that sign what no
/// provider would (another URL, a GET, a tampered parameter).
pub mod compute {
    /// Twilio's signature.
    pub mod twilio {
        use crate::twilio as provider;

        /// `X-Twilio-Signature`.
        pub fn compute_signature(
            auth_token: &str,
            url: &str,
            params: &[(String, String)],
        ) -> String {
            provider::compute_signature(auth_token, url, params)
        }
    }

    /// Plivo's signature.
    pub mod plivo {
        use http::Method;

        use crate::plivo as provider;

        /// `X-Plivo-Signature-V3`.
        pub fn compute_signature(
            auth_token: &str,
            method: &Method,
            url: &str,
            params: &[(String, String)],
            nonce: &str,
        ) -> String {
            provider::compute_signature(auth_token, method, url, params, nonce)
        }
    }

    /// Vonage's signature.
    pub mod vonage {
        use crate::vonage as provider;
        use crate::vonage::SignatureMethod;

        /// `sig`.
        pub fn compute_signature(
            secret: &str,
            method: SignatureMethod,
            params: &[(String, String)],
        ) -> String {
            provider::compute_signature(secret, method, params)
        }
    }
}

/// MessageBird's own computations, for the SDKs' test vectors and for
/// tokens no provider would send (expired, another key, another URL).
pub mod messagebird {
    use time::OffsetDateTime;

    use crate::WebhookError;
    use crate::messagebird::{MessageBird, MessageBirdClaims};

    /// `MessageBird-Signature-JWT`.
    pub const SIGNATURE_JWT_HEADER: &str = MessageBird::SIGNATURE_JWT_HEADER;

    /// The claims of a request to `url` with `body`, valid from `nbf` to `exp`.
    pub fn claims(url: &str, body: &[u8], nbf: i64, exp: i64, jti: &str) -> MessageBirdClaims {
        MessageBirdClaims::for_request(url, body, nbf, exp, jti)
    }

    /// An HS256 token of `claims`.
    pub fn sign_jwt(signing_key: &str, claims: &MessageBirdClaims) -> String {
        MessageBird::sign_jwt(signing_key, claims)
    }

    /// A token checked as a request's, at `now`.
    pub fn verify_jwt(
        signing_key: &str,
        token: &str,
        url: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<MessageBirdClaims, WebhookError> {
        MessageBird::verify_jwt(signing_key, token, url, body, now)
    }

    /// The deprecated scheme's signature.
    pub fn legacy_signature(
        signing_key: &str,
        timestamp: &str,
        sorted_query: &str,
        body: &[u8],
    ) -> String {
        MessageBird::legacy_signature(signing_key, timestamp, sorted_query, body)
    }
}
