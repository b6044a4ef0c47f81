//! Who may call the `/api` routes: the [`Authenticator`] contract, what a
//! request is about ([`Access`]), who sends it ([`Caller`]), and the default:
//! the operator's bearer token and clients' API keys ([`BearerAuth`]).
//!
//! Two roles: the operator (every route) and a client (its own inbox, live
//! stream and numbers, under `/api/clients/{userId}/…`, and nothing else).
//! The authenticator only says who the caller is; whether that caller may
//! make this request is decided here, once, by [`Caller::may`], so a custom
//! authenticator cannot widen a client's scope by mistake.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use ibiki_core::{ApiKey, ClientId, DynKeyStore, Secret};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::ApiError;

/// What a request is about: decided by its route, before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access<'a> {
    /// An operator's route: assignments, routing, held replies, keys,
    /// metrics (and a client route whose `userId` is not a valid id).
    Admin,
    /// A route about one client's own data: `/api/clients/{userId}/…`.
    Client(&'a ClientId),
}

/// Who sent a request, as an [`Authenticator`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caller {
    /// The operator: every route.
    Admin,
    /// A client: its own routes only.
    Client(ClientId),
}

impl Caller {
    /// Whether this caller may make a request about `access`: the operator
    /// anything, a client only its own client routes.
    pub fn may(&self, access: Access<'_>) -> bool {
        match (self, access) {
            (Self::Admin, _) => true,
            (Self::Client(caller), Access::Client(about)) => caller == about,
            (Self::Client(_), Access::Admin) => false,
        }
    }
}

/// Finds who sent an `/api` request, before the handler reads anything.
///
/// Return the caller, or an error to answer instead (401 for missing or
/// wrong credentials). A client caller is then held to its own routes
/// ([`Caller::may`]): anything else is answered 403 `forbidden`. `access` is
/// what the request is about, for an authenticator that needs it (to skip a
/// lookup, say); it does not have to check it.
///
/// ```
/// use async_trait::async_trait;
/// use axum::http::HeaderMap;
/// use ibiki_core::ClientId;
/// use ibiki_http::{Access, ApiError, Authenticator, Caller};
///
/// /// Trusts the identity a signing-in proxy put in front of ibiki.
/// #[derive(Debug)]
/// struct TrustedProxy;
///
/// #[async_trait]
/// impl Authenticator for TrustedProxy {
///     async fn authenticate(&self, headers: &HeaderMap, _: Access<'_>) -> Result<Caller, ApiError> {
///         let user = headers.get("x-authenticated-user").and_then(|v| v.to_str().ok());
///         match user {
///             Some("operator") => Ok(Caller::Admin),
///             Some(client) => ClientId::new(client)
///                 .map(Caller::Client)
///                 .map_err(|_| ApiError::unauthorized("unauthorized", "unknown user")),
///             None => Err(ApiError::unauthorized("unauthorized", "sign in first")),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// Who sent the request with `headers`, about `access`.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        access: Access<'_>,
    ) -> Result<Caller, ApiError>;

    /// Where clients' API keys are kept, for the key routes
    /// (`/api/admin/clients/{userId}/keys`): `None`, the default, answers
    /// them 404.
    fn key_store(&self) -> Option<&DynKeyStore> {
        None
    }
}

/// The operator's token, presented as `Authorization: Bearer <token>`. As an
/// [`Authenticator`] by itself, it lets in the operator only.
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

    /// The token's text, to print or hand to the operator.
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

#[async_trait]
impl Authenticator for AdminToken {
    async fn authenticate(&self, headers: &HeaderMap, _: Access<'_>) -> Result<Caller, ApiError> {
        match bearer(headers)? {
            token if self.matches(token) => Ok(Caller::Admin),
            _ => Err(wrong_credentials()),
        }
    }
}

/// The default [`Authenticator`]: the operator's [`AdminToken`], and each
/// client's API keys ([`ApiKey`], `ibk_…`) looked up in a key store, both as
/// `Authorization: Bearer <token or key>`.
///
/// A key is looked up by its SHA-256 on every request, never cached: a
/// revoked key stops at its next request, on every server sharing the store.
///
/// ```
/// use std::sync::Arc;
///
/// use ibiki_http::{AdminToken, App, BearerAuth};
/// use ibiki_memory::MemoryStore;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let auth = BearerAuth::new(AdminToken::new("change-me".parse()?), store.clone());
/// let app = App::new(store, auth);
/// # let _ = app;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BearerAuth {
    admin: AdminToken,
    keys: Arc<DynKeyStore>,
}

impl BearerAuth {
    /// The operator's `admin` token, and clients' keys from `keys`.
    pub fn new(admin: AdminToken, keys: Arc<DynKeyStore>) -> Self {
        Self { admin, keys }
    }
}

#[async_trait]
impl Authenticator for BearerAuth {
    async fn authenticate(&self, headers: &HeaderMap, _: Access<'_>) -> Result<Caller, ApiError> {
        let token = bearer(headers)?;
        if self.admin.matches(token) {
            return Ok(Caller::Admin);
        }
        // A malformed key costs no lookup.
        let key = ApiKey::parse(token).map_err(|_| wrong_credentials())?;
        match self.keys.key_owner(&key.digest()).await? {
            Some(client) => Ok(Caller::Client(client)),
            None => Err(wrong_credentials()),
        }
    }

    fn key_store(&self) -> Option<&DynKeyStore> {
        Some(&*self.keys)
    }
}

/// The presented token; 401 without one.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unauthorized",
                "send Authorization: Bearer <admin token or client key>",
            )
        })
}

/// One answer for every wrong token or key, revoked or never issued: it says
/// nothing about which (and never repeats what was presented).
fn wrong_credentials() -> ApiError {
    ApiError::unauthorized(
        "unauthorized",
        "the bearer token is not the admin token or a live client key",
    )
}

/// 403 for a caller outside its scope: the same answer whether the client
/// the route names exists or not.
fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "a client key opens only its own client's routes under /api/clients/{userId}",
    )
}

/// What the matched route is about: a client route names its client as the
/// first path parameter; every other route is the operator's.
fn access_of(route: Option<&str>, params: Option<&RawPathParams>) -> Option<ClientId> {
    let route = route?;
    if !route.starts_with("/api/clients/{") {
        return None;
    }
    let (_, value) = params?.iter().next()?;
    ClientId::new(value).ok()
}

/// Middleware: authenticates every `/api` request, holds a client caller to
/// its scope, and leaves the [`Caller`] in the request's extensions. A
/// client's live stream is authenticated again as it flows
/// ([`rechecked`]), so a revoked key stops receiving replies.
pub(crate) async fn require_access(
    State(app): State<Arc<App>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let client = access_of(route, params.as_ref().ok());
    let access = client.as_ref().map_or(Access::Admin, Access::Client);
    let caller = app.auth().authenticate(request.headers(), access).await?;
    if !caller.may(access) {
        return Err(forbidden());
    }
    let headers = matches!(caller, Caller::Client(_)).then(|| request.headers().clone());
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    match (headers, client) {
        (Some(headers), Some(client)) if is_event_stream(&response) => {
            Ok(rechecked(app, headers, client, response))
        }
        _ => Ok(response),
    }
}

/// How often, at most, a client's live stream is authenticated again: before
/// a reply event, never for the keep-alive comments of a quiet stream.
const STREAM_RECHECK: Duration = Duration::from_secs(1);

/// Whether an event-stream frame carries data (a reply), not only comments
/// and the reconnection delay.
fn carries_data(frame: &[u8]) -> bool {
    frame.starts_with(b"data:") || frame.windows(6).any(|line| line == b"\ndata:")
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// The stream of `response`, ended before the first event its caller may no
/// longer receive (a revoked key, a failed lookup: the client reconnects and
/// is answered as any new request).
fn rechecked(app: Arc<App>, headers: HeaderMap, client: ClientId, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let state = (
        body.into_data_stream(),
        app,
        headers,
        client,
        Instant::now(),
    );
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let (frames, app, headers, client, checked) = &mut state;
        let frame = frames.next().await?;
        let is_event = frame.as_ref().is_ok_and(|bytes| carries_data(bytes));
        if is_event && checked.elapsed() >= STREAM_RECHECK {
            let access = Access::Client(client);
            match app.auth().authenticate(headers, access).await {
                Ok(caller) if caller.may(access) => *checked = Instant::now(),
                _ => return None,
            }
        }
        Some((frame, state))
    });
    Response::from_parts(parts, Body::from_stream(stream))
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

    #[test]
    fn a_client_may_only_its_own_routes() {
        let (acme, bob) = (ClientId::new("acme"), ClientId::new("bob"));
        let (acme, bob) = (acme.expect("valid"), bob.expect("valid"));
        let client = Caller::Client(acme.clone());
        assert!(client.may(Access::Client(&acme)));
        assert!(!client.may(Access::Client(&bob)));
        assert!(!client.may(Access::Admin));
        assert!(Caller::Admin.may(Access::Admin));
        assert!(Caller::Admin.may(Access::Client(&bob)));
    }
}
