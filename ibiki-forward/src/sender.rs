//! One attempt: the signed request to a client's endpoint, and how it
//! ended.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ibiki_core::{AddressPolicy, AttemptOutcome, EndpointSecrets, ForwardClaim};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use standardwebhooks::Webhook;
use time::OffsetDateTime;

use crate::guard::{GuardedResolver, ResolveError, check_literal};
use crate::payload::{render_body, webhook_id};

/// The most of a failed response's body kept as its error, in bytes.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// How long a delivered response's body is read, so that its connection can
/// be reused; past it, the connection is dropped.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// The header naming the forward: the same on every attempt.
pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
/// The header with the attempt's Unix time, in seconds.
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The header with the signatures: `v1,<base64>`, space-separated.
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// How a [`Sender`] makes its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// How long an attempt may take, from connecting to the response's
    /// status (and the body of a failure): past it, the attempt failed.
    pub timeout: Duration,
    /// Which addresses endpoints may be called at, checked as each
    /// request connects.
    pub policy: AddressPolicy,
    /// The `user-agent` of every request.
    pub user_agent: String,
}

impl SenderConfig {
    /// The default [`timeout`](Self::timeout): 15 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

    /// The default [`user_agent`](Self::user_agent).
    pub const DEFAULT_USER_AGENT: &'static str =
        concat!("ibiki-forward/", env!("CARGO_PKG_VERSION"));
}

impl Default for SenderConfig {
    /// A 15-second timeout, public addresses only, the default user agent.
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            policy: AddressPolicy::PublicOnly,
            user_agent: Self::DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

/// The HTTP client could not be built: the TLS configuration (no root
/// certificates could be loaded) or an invalid user agent.
#[derive(Debug, thiserror::Error)]
#[error("the forwarding HTTP client could not be built: {0}")]
pub struct SenderError(#[source] Box<dyn StdError + Send + Sync>);

/// Makes the requests that forward replies: one [`send`](Self::send) per
/// attempt.
///
/// Its HTTP client speaks HTTP/1.1, over TLS with rustls (the process's
/// default crypto provider if one is installed, else aws-lc-rs; the
/// platform's certificate verifier), follows no redirect, uses no proxy,
/// and connects only to addresses its [`AddressPolicy`] allows
/// ([`GuardedResolver`]). Cloning it shares the client and its connection
/// pool.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    config: Arc<SenderConfig>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptKind {
    /// A `2xx` within the timeout.
    Delivered,
    /// A response with another status (`3xx` included: redirects are not
    /// followed).
    Status,
    /// No response within the timeout.
    Timeout,
    /// The endpoint is at an address the policy refuses.
    Refused,
    /// No connection: the name did not resolve, the connection was refused
    /// or reset, or TLS failed.
    Connect,
    /// Anything else: the request could not be made or signed.
    Other,
}

impl AttemptKind {
    /// The kind as logs name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Status => "status",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Connect => "connect",
            Self::Other => "other",
        }
    }
}

/// One attempt to forward a reply, as [`Sender::send`] made it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// How it ended.
    pub kind: AttemptKind,
    /// The response's status, if one came.
    pub status: Option<u16>,
    /// Why it failed, when it did: at most [`MAX_ERROR_BODY`] bytes of the
    /// response's body, or the error (with its causes).
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

impl Attempt {
    /// Whether the endpoint took the reply.
    pub fn is_delivered(&self) -> bool {
        self.kind == AttemptKind::Delivered
    }

    /// The outcome to record ([`ForwardStore::finish`](ibiki_core::ForwardStore::finish)),
    /// with `retry_in` when it failed: when to try again, `None` when the
    /// schedule is spent.
    pub fn outcome(&self, retry_in: Option<Duration>) -> AttemptOutcome {
        match (self.kind, self.status) {
            (AttemptKind::Delivered, Some(status)) => AttemptOutcome::Delivered { status },
            _ => AttemptOutcome::Failed {
                status: self.status,
                error: self.error.clone().unwrap_or_default(),
                retry_in,
            },
        }
    }
}

impl Sender {
    /// A sender making its requests as `config` says.
    pub fn new(config: SenderConfig) -> Result<Self, SenderError> {
        let client = reqwest::Client::builder()
            .tls_backend_rustls()
            .dns_resolver(GuardedResolver::new(config.policy))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(|e| SenderError(Box::new(e)))?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    /// How it makes its requests.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Makes one attempt to forward `claim`'s reply: `POST`s its body
    /// ([`render_body`]) to the endpoint with `content-type:
    /// application/json` and the Standard Webhooks headers:
    ///
    /// - `webhook-id`: `msg_<reply id>` ([`webhook_id`]), the same on every
    ///   attempt;
    /// - `webhook-timestamp`: this attempt's Unix time, in seconds;
    /// - `webhook-signature`: `v1,<base64>`, the HMAC-SHA256 of
    ///   `<id>.<timestamp>.<body>` with the current secret and, during a
    ///   rotation, a second one with the previous secret, space-separated.
    ///
    /// A `2xx` within the timeout is delivered; anything else failed. Never
    /// panics and never returns an error: every failure is in the
    /// [`Attempt`].
    pub async fn send(&self, claim: &ForwardClaim) -> Attempt {
        let started = Instant::now();
        let (kind, status, error) = self.attempt(claim).await;
        Attempt {
            kind,
            status,
            error,
            duration: started.elapsed(),
        }
    }

    async fn attempt(&self, claim: &ForwardClaim) -> (AttemptKind, Option<u16>, Option<String>) {
        if let Err(refused) = check_literal(&claim.url, self.config.policy) {
            return (AttemptKind::Refused, None, Some(refused.to_string()));
        }
        let body = match render_body(&claim.client, &claim.reply) {
            Ok(body) => body,
            Err(e) => {
                return (
                    AttemptKind::Other,
                    None,
                    Some(format!("the request body could not be written: {e}")),
                );
            }
        };
        let id = webhook_id(&claim.reply);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = match signature(&claim.secrets, &id, timestamp, &body) {
            Ok(signature) => signature,
            Err(e) => {
                return (
                    AttemptKind::Other,
                    None,
                    Some(format!("the request could not be signed: {e}")),
                );
            }
        };
        let request = self
            .client
            .post(claim.url.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_WEBHOOK_ID, id)
            .header(HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return (kind_of(&e), None, Some(error_text(&e.without_url()))),
        };
        let status = response.status();
        if status.is_success() {
            // Read a small body so that the connection goes back to the
            // pool; the reply is delivered whatever comes of it.
            let _ = tokio::time::timeout(DRAIN_LIMIT, read_capped(&mut response)).await;
            return (AttemptKind::Delivered, Some(status.as_u16()), None);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        let (body, failure) = read_capped(&mut response).await;
        let error = if !body.is_empty() {
            body
        } else if let Some(e) = failure {
            format!(
                "HTTP {status}; the body could not be read: {}",
                error_text(&e.without_url())
            )
        } else if let (true, Some(location)) = (status.is_redirection(), location) {
            format!("HTTP {status}: redirects are not followed (location: {location})")
        } else {
            format!("HTTP {status} with an empty body")
        };
        (AttemptKind::Status, Some(status.as_u16()), Some(error))
    }
}

/// The `webhook-signature` value: the current secret's signature, then the
/// previous secret's during a rotation.
fn signature(
    secrets: &EndpointSecrets,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, standardwebhooks::WebhookError> {
    let mut signature = Webhook::new(secrets.current.expose())?.sign(id, timestamp, body)?;
    if let Some(previous) = &secrets.previous {
        signature.push(' ');
        signature.push_str(&Webhook::new(previous.expose())?.sign(id, timestamp, body)?);
    }
    Ok(signature)
}

fn kind_of(error: &reqwest::Error) -> AttemptKind {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(ResolveError::Refused(_)) = e.downcast_ref::<ResolveError>() {
            return AttemptKind::Refused;
        }
        source = e.source();
    }
    if error.is_timeout() {
        AttemptKind::Timeout
    } else if error.is_connect() {
        AttemptKind::Connect
    } else {
        AttemptKind::Other
    }
}

/// `error` and its causes, `: `-separated, each said once.
fn error_text(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}

/// Up to [`MAX_ERROR_BODY`] bytes of the body, read chunk by chunk, as text
/// cut at a character boundary; and the error that stopped the read, if
/// one did.
async fn read_capped(response: &mut reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut bytes = Vec::new();
    let mut failure = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ERROR_BODY - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() == MAX_ERROR_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    (body_text(&bytes), failure)
}

/// `bytes` as text of at most [`MAX_ERROR_BODY`] bytes: a character cut by
/// the limit is dropped, invalid UTF-8 is replaced.
fn body_text(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_ERROR_BODY)];
    let bytes = if bytes.len() == MAX_ERROR_BODY {
        without_cut_char(bytes)
    } else {
        bytes
    };
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    // Replacement characters can make the text longer than the bytes.
    let mut end = text.len().min(MAX_ERROR_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// `bytes` without a last UTF-8 sequence left incomplete by a cut.
fn without_cut_char(bytes: &[u8]) -> &[u8] {
    // The last byte that is not a continuation byte (`10xx_xxxx`), within
    // the longest sequence (4 bytes).
    let Some(lead) = (bytes.len().saturating_sub(4)..bytes.len())
        .rev()
        .find(|&i| bytes[i] & 0xc0 != 0x80)
    else {
        return bytes;
    };
    let expected = match bytes[lead] {
        b if b & 0x80 == 0 => 1,
        b if b & 0xe0 == 0xc0 => 2,
        b if b & 0xf0 == 0xe0 => 3,
        b if b & 0xf8 == 0xf0 => 4,
        _ => return bytes,
    };
    if bytes.len() - lead < expected {
        &bytes[..lead]
    } else {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_character_is_dropped() {
        let text = format!("x{}", "é".repeat(MAX_ERROR_BODY));
        let got = body_text(text.as_bytes());
        assert_eq!(got.len(), MAX_ERROR_BODY - 1);
        assert!(got.ends_with('é'));
        let even = "é".repeat(MAX_ERROR_BODY);
        assert_eq!(body_text(even.as_bytes()).len(), MAX_ERROR_BODY);
        let four = format!("xx{}", "🦀".repeat(MAX_ERROR_BODY / 4));
        let got = body_text(four.as_bytes());
        assert_eq!(got.len(), MAX_ERROR_BODY - 2);
        assert!(got.ends_with('🦀'));
    }

    #[test]
    fn short_bodies_are_kept_and_invalid_bytes_replaced() {
        assert_eq!(body_text(b"boom"), "boom");
        assert_eq!(body_text(b"bad \xff byte"), "bad \u{fffd} byte");
        let invalid = vec![0xff; MAX_ERROR_BODY];
        let got = body_text(&invalid);
        assert!(got.len() <= MAX_ERROR_BODY);
        assert!(got.chars().all(|c| c == '\u{fffd}'));
    }

    #[test]
    fn the_default_sender_builds() -> Result<(), SenderError> {
        Sender::new(SenderConfig::default())?;
        Ok(())
    }

    #[test]
    fn kinds_are_named() {
        assert_eq!(AttemptKind::Delivered.as_str(), "delivered");
        assert_eq!(AttemptKind::Refused.as_str(), "refused");
    }
}
