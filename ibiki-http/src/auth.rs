//! Who may call the `/api` routes: the [`AdminAuth`] contract and its default,
//! one admin bearer token ([`AdminToken`]).
//!
//! One token for the whole API keeps the default small: an embedding
//! application implements [`AdminAuth`] with its own authentication (a client
//! must only read its own inbox).

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::ApiError;
use ibiki_core::Secret;

/// Decides whether a request may use the `/api` routes, before the handler
/// reads anything.
///
/// ```
/// use axum::http::HeaderMap;
/// use ibiki_http::{AdminAuth, ApiError};
///
/// /// Lets through requests that an upstream proxy marked as authenticated.
/// #[derive(Debug)]
/// struct TrustedProxy;
///
/// impl AdminAuth for TrustedProxy {
///     fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
///         match headers.get("x-authenticated-user") {
///             Some(_) => Ok(()),
///             None => Err(ApiError::unauthorized("unauthorized", "sign in first")),
///         }
///     }
/// }
/// ```
pub trait AdminAuth: Send + Sync + fmt::Debug + 'static {
    /// `Ok` lets the request through; `Err` is answered instead.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError>;
}

/// The token `/api` requests present as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct AdminToken(Secret);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Random bytes in a token: 256 bits, beyond guessing.
    const RANDOM_BYTES: usize = 32;

    /// Wraps a configured token.
    pub fn new(token: Secret) -> Self {
        Self(token)
    }

    /// A fresh random token from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        getrandom::fill(&mut bytes)?;
        let token = hex::encode(bytes)
            .parse()
            .expect("32 bytes are 64 hex digits");
        Ok(Self(token))
    }

    /// The token's text, to print or hand to a client.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Compares in constant time. Hashing both sides first makes the time
    /// independent of the lengths too.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.expose().as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.ct_eq(&presented).into()
    }
}

impl AdminAuth for AdminToken {
    /// Answers 401 unless the request carries `Authorization: Bearer <token>`.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        match presented {
            Some(token) if self.matches(token) => Ok(()),
            Some(_) => Err(ApiError::unauthorized(
                "unauthorized",
                "the bearer token is wrong",
            )),
            None => Err(ApiError::unauthorized(
                "unauthorized",
                "send Authorization: Bearer <admin token>",
            )),
        }
    }
}

/// Middleware: runs the app's [`AdminAuth`] before the handler.
pub(crate) async fn require_admin(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    app.admin_auth().authorize(request.headers())?;
    Ok(next.run(request).await)
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 9110).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (AdminToken::generate(), AdminToken::generate());
        let (a, b) = (a.expect("random"), b.expect("random"));
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert!(a.matches(a.expose()));
        assert!(!a.matches(b.expose()));
        assert!(!a.matches(""));
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
