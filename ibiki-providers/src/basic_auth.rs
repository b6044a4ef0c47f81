//! HTTP Basic authentication (RFC 7617), for providers that sign nothing and
//! authenticate their callbacks with a username and password instead
//! (Bandwidth, Infobip).
//!
//! The expected credentials are compared with the received ones in constant
//! time; both sides are hashed with SHA-256 first, so that neither their
//! content nor their length shows in the comparison's timing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::WebhookError;
use super::signing;
use ibiki_core::Secret;

/// The header carrying the credentials.
pub(crate) const AUTHORIZATION_HEADER: &str = "authorization";

/// The challenge a `401` answer carries in `WWW-Authenticate` (RFC 7235):
/// a client that waits to be challenged sends its credentials only after it.
pub(crate) const CHALLENGE: &str = r#"Basic realm="ibiki", charset="UTF-8""#;

/// A username and password a provider presents with HTTP Basic
/// authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    username: String,
    password: Secret,
}

impl BasicCredentials {
    /// The credentials configured at the provider. The username may be empty
    /// (the password may not: [`Secret`] refuses it).
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Self {
            username: username.into(),
            password,
        }
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The `Authorization` header value a client sends with these
    /// credentials (`Basic <base64 of username:password>`).
    pub fn header_value(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// Checks the request's `Authorization` header against these credentials.
    ///
    /// A missing header is [`WebhookError::MissingSignature`]; a header that
    /// is not `Basic` with base64 of `username:password` is
    /// [`WebhookError::MalformedSignature`]; other credentials are
    /// [`WebhookError::BadSignature`]. All three answer `401`.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), WebhookError> {
        let value = signing::signature_header(headers, AUTHORIZATION_HEADER)?;
        let (username, password) = parse(value).ok_or(WebhookError::MalformedSignature {
            header: AUTHORIZATION_HEADER,
        })?;
        // Both halves are always compared: which one differed is not
        // observable.
        let same_username = same(self.username.as_bytes(), &username);
        let same_password = same(self.password.expose().as_bytes(), &password);
        if same_username & same_password {
            Ok(())
        } else {
            Err(WebhookError::BadSignature)
        }
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

fn same(expected: &[u8], received: &[u8]) -> bool {
    signing::constant_time_eq(&Sha256::digest(expected), &Sha256::digest(received))
}

/// `Basic <base64>` (scheme case-insensitive, RFC 7235) decoded into the
/// username and the password, split at the first `:` (RFC 7617: a username
/// cannot contain one). `None` if the value is anything else.
fn parse(value: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(token.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}
