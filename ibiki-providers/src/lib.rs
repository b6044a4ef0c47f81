//! SMS providers' inbound webhooks for [ibiki](ibiki_core), verified and
//! decoded without any web framework. `ibiki-http` serves them at
//! `/webhooks/{provider}`; any other server can call them the same way.
//!
//! A server hands a [`Provider`] the request as it arrived: its method, the
//! full public URL the provider called, its headers and its raw body, plus
//! the time it arrived ([`WebhookRequest`]). The provider verifies the
//! signature first, exactly as that provider documents it, then decodes the
//! payload into its documented fields and returns the [`InboundReply`]
//! values to record ([`Received::Replies`]), or an event to acknowledge and
//! skip ([`Received::Skipped`]), or a [`WebhookError`] saying what is wrong
//! and which status answers it. [`Provider::success`] and
//! [`Provider::retry`] say what to answer once the store has (or has not)
//! recorded the replies.
//!
//! Each provider is a module of its own, holding its [`Provider`] and its
//! payload types ([`twilio::Twilio`], [`twilio::TwilioMessage`]), and cites
//! the documentation and the official SDK source it follows. Any other
//! gateway is described by configuration ([`generic::Generic`]).
//!
//! ```
//! use ibiki_core::Normalizer;
//! use ibiki_providers::twilio::Twilio;
//! use ibiki_providers::{Provider, Received, Signing, WebhookRequest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let twilio = Twilio::new(Signing::AcceptUnsigned);
//! let (method, headers) = (http::Method::POST, http::HeaderMap::new());
//! let body = b"MessageSid=SM1&From=%2B15005550006&To=%2B14155550100&Body=Yes";
//! let mut headers = headers;
//! headers.insert("content-type", "application/x-www-form-urlencoded".parse()?);
//! let now = time::OffsetDateTime::now_utc();
//! let request = WebhookRequest::new(&method, "https://sms.example.com/webhooks/twilio", &headers, body, now);
//! let Received::Replies(replies) = ibiki_providers::receive(&twilio, &Normalizer::new(), &request)? else {
//!     unreachable!("a text message")
//! };
//! assert_eq!(replies[0].body, "Yes");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use ibiki_core::{InboundReply, Normalizer, RawReply, ReplyError};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub mod bandwidth;
mod basic_auth;
mod clock;
mod error;
mod form;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod generic;
pub mod infobip;
pub mod messagebird;
mod number;
pub mod plivo;
mod signing;
pub mod sinch;
pub mod telnyx;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
pub mod twilio;
mod url;
pub mod vonage;

pub use self::basic_auth::BasicCredentials;
pub use self::error::{ErrorKind, WebhookError};
pub use self::form::Form;
pub use self::signing::{Signing, SigningMode};
pub use self::url::{PublicUrl, PublicUrlError};

/// Largest body any provider sends for one delivery, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A webhook request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The full URL the provider called, query included, as the provider saw
    /// it: behind a reverse proxy, rebuilt with [`PublicUrl::join`].
    pub url: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
    /// When the request arrived: the server's clock for timestamp tolerance,
    /// and each reply's `received_at`.
    pub received_at: OffsetDateTime,
}

impl<'a> WebhookRequest<'a> {
    /// A request; see the fields.
    pub fn new(
        method: &'a Method,
        url: &'a str,
        headers: &'a HeaderMap,
        body: &'a [u8],
        received_at: OffsetDateTime,
    ) -> Self {
        Self {
            method,
            url,
            headers,
            body,
            received_at,
        }
    }

    /// The body's media type, lowercase, without parameters (`""` if none).
    pub fn media_type(&self) -> String {
        signing::header(self.headers, "content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// Whether the body is `application/json` (or `+json`).
    pub fn is_json(&self) -> bool {
        let media_type = self.media_type();
        media_type == "application/json" || media_type.ends_with("+json")
    }

    /// Whether the body is `application/x-www-form-urlencoded`.
    pub fn is_form(&self) -> bool {
        self.media_type() == "application/x-www-form-urlencoded"
    }

    /// The query string of [`url`](Self::url), decoded.
    pub fn query(&self) -> Form {
        url::UrlParts::parse(self.url)
            .and_then(|parts| parts.query())
            .map(|query| Form::parse(query.as_bytes()))
            .unwrap_or_default()
    }

    /// Refuses methods the provider never sends, and oversized bodies.
    pub fn check(&self, provider: &dyn Provider) -> Result<(), WebhookError> {
        if !provider.methods().contains(self.method) {
            return Err(WebhookError::MethodNotAllowed {
                provider: provider.name(),
                method: self.method.clone(),
            });
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(WebhookError::TooLarge {
                len: self.body.len(),
                max: MAX_BODY_BYTES,
            });
        }
        Ok(())
    }

    /// [`WebhookError::UnsupportedContentType`] for this request.
    pub fn unsupported(&self, provider: &'static str) -> WebhookError {
        WebhookError::UnsupportedContentType {
            provider,
            content_type: self.media_type(),
        }
    }
}

/// What a verified request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Inbound messages to record (several for batching providers).
    Replies(Vec<InboundReply>),
    /// A verified event that is not an inbound message (a delivery receipt):
    /// acknowledge it with [`Provider::success`] and record nothing.
    Skipped {
        /// The provider's name for the event (`message.finalized`).
        event: String,
    },
}

/// An HTTP answer: status, content type and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`, if the body has one.
    pub content_type: Option<&'static str>,
    /// The body (empty for none).
    pub body: &'static str,
}

impl Answer {
    /// An answer with no body.
    pub const fn empty(status: StatusCode) -> Self {
        Self {
            status,
            content_type: None,
            body: "",
        }
    }
}

/// One SMS provider's inbound webhook.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Its name, lowercase: the route segment (`/webhooks/twilio`).
    fn name(&self) -> &'static str;

    /// The methods it sends.
    fn methods(&self) -> &'static [Method];

    /// How it treats signatures (for the server's warning at start).
    fn signing_mode(&self) -> SigningMode;

    /// Verifies the request's signature, then decodes its replies. A server
    /// calls [`receive`], which first refuses what no
    /// provider accepts.
    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError>;

    /// The answer the provider expects once the replies are recorded (or the
    /// event skipped): by default `200` with no body, what providers that
    /// read no answer body document.
    fn success(&self) -> Answer {
        Answer::empty(StatusCode::OK)
    }

    /// The answer that makes the provider deliver again later, for when the
    /// store fails: by default `503`, the status every retrying sender treats
    /// as temporary. Each provider documents its retry policy.
    fn retry(&self) -> Answer {
        Answer::empty(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// The `WWW-Authenticate` value a `401` answer carries, for providers
    /// that authenticate with HTTP Basic credentials (RFC 7235: a client may
    /// send its credentials only once challenged); `None` for providers that
    /// sign their requests.
    fn challenge(&self) -> Option<&'static str> {
        None
    }
}

/// What `request` carries, as `provider` reads it: the one way in for a
/// server. Refuses what the provider never sends (another method, a body
/// over [`MAX_BODY_BYTES`]) before the provider verifies and decodes it.
pub fn receive(
    provider: &dyn Provider,
    normalizer: &Normalizer,
    request: &WebhookRequest<'_>,
) -> Result<Received, WebhookError> {
    request.check(provider)?;
    provider.receive(normalizer, request)
}

/// Providers by name, as a server routes them.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
}

impl Registry {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a provider under its name.
    pub fn with(mut self, provider: impl Provider + 'static) -> Self {
        self.providers.insert(provider.name(), Arc::new(provider));
        self
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.values()
    }
}

/// Decodes a JSON body into `T`.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|error| WebhookError::malformed("JSON body", error))
}

/// One inbound message of a provider's payload: its [`RawReply`], and the
/// provider's name for the message id field, which an error about the id
/// names. `to` is already written with its `+` where the provider omits it
/// (`number::international`).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The provider's name for the message id field (`MessageSid`).
    pub message_id_field: &'static str,
    /// The message.
    pub reply: RawReply<'a>,
}

impl<'a> Fields<'a> {
    /// `reply`, whose message id the provider calls `message_id_field`.
    pub fn new(message_id_field: &'static str, reply: RawReply<'a>) -> Self {
        Self {
            message_id_field,
            reply,
        }
    }

    /// The reply, received with `request`: its field limits checked and
    /// `to` canonicalized.
    pub fn into_reply(
        self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<InboundReply, WebhookError> {
        InboundReply::new(normalizer, self.reply, request.received_at).map_err(|error| {
            let field = match &error {
                ReplyError::MessageId { .. } => self.message_id_field,
                ReplyError::TooLong { field, .. } => field,
                _ => "message",
            };
            WebhookError::invalid(field, error)
        })
    }

    /// What a request carrying this one message received.
    pub fn received(
        self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        Ok(Received::Replies(vec![
            self.into_reply(normalizer, request)?,
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        method: &'a Method,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> WebhookRequest<'a> {
        WebhookRequest::new(
            method,
            "https://x.example/hook?a=1&b=%2B2#frag",
            headers,
            body,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn media_types_and_queries() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        let request = request(&Method::POST, &headers, b"");
        assert_eq!(request.media_type(), "application/json");
        assert!(request.is_json() && !request.is_form());
        assert_eq!(request.query().get("b"), Some("+2"));
    }

    #[test]
    fn fields_become_replies_with_named_errors() {
        let normalizer = Normalizer::new();
        let (method, headers) = (Method::POST, HeaderMap::new());
        let request = WebhookRequest::new(&method, "/", &headers, b"", OffsetDateTime::UNIX_EPOCH);
        let raw = RawReply {
            message_id: Some("SM1"),
            from: "+15005550006",
            to: "+14155550100",
            body: "hi",
        };
        let reply = Fields::new("MessageSid", raw)
            .into_reply(&normalizer, &request)
            .expect("valid");
        assert_eq!(
            reply.message_id.map(|id| id.to_string()).as_deref(),
            Some("SM1")
        );
        let no_id = RawReply {
            message_id: Some(""),
            ..raw
        };
        let error = Fields::new("MessageSid", no_id)
            .into_reply(&normalizer, &request)
            .expect_err("refused");
        assert!(error.to_string().contains("MessageSid"), "{error}");
        let long = "x".repeat(InboundReply::MAX_BODY_LEN + 1);
        let too_long = RawReply { body: &long, ..raw };
        let error = Fields::new("MessageSid", too_long)
            .into_reply(&normalizer, &request)
            .expect_err("refused");
        assert!(error.to_string().contains("body"), "{error}");
    }
}

/// This crate's README examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
