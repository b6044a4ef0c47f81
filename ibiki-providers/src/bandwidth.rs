//! Bandwidth Messaging API v2: the `message-received` callback.
//!
//! # What Bandwidth sends
//!
//! A JSON `POST` (`Content-Type: application/json; charset=utf-8`,
//! `User-Agent: BandwidthAPI/v2`) of an *array* of events to the messaging
//! application's callback URL: "All Message callbacks are sent as a
//! list/array `[ {message metadata} ]`"
//! (<https://dev.bandwidth.com/docs/messaging/webhooks>). Each event is
//! `{"type", "time", "description", "to", "message": {...}}` with, for a
//! failure, `errorCode`, and, where the account feature is on,
//! `carrierName`: decoded into [`BandwidthEvent`]. The message carries `id`,
//! `owner`, `applicationId`, `time`, `segmentCount`, `direction`, `to` (an
//! array), `from`, `text`, `media`, `tag`, `priority`, `expiration` and, for
//! multichannel messages, `channel`, `content`, `suggestionResponse`,
//! `locationResponse` ([`BandwidthMessage`]; the "Incoming Text Message
//! Event" page,
//! <https://github.com/Bandwidth/bandwidth.github.io/blob/main/messaging/callbacks/incomingSingle.md>,
//! and the official SDK's `InboundCallback` / `InboundCallbackMessage`
//! models, Bandwidth/node-sdk `docs/InboundCallback.md` and
//! `docs/InboundCallbackMessage.md`).
//!
//! Every `message-received` event of the array is one reply; its
//! `message.id` is the dedup key ("Because we guarantee at least once
//! delivery of events, it is possible to receive duplicate message events").
//! The number replied to is `message.owner`: "For an inbound message, this
//! will be (one of) the `to` number(s) ... if this is an inbound group
//! message, the `owner` field will be set to the `to` number that this
//! particular copy of the group message belongs to" (a group message
//! arrives as one event per owned recipient, each with its own id); the
//! event's `to`, then the first of `message.to`, stand in if `owner` is
//! absent. Bandwidth writes numbers in E.164 with their `+`; a short code
//! arrives as its digits and is passed on unchanged. The other events
//! (`message-delivered`, `message-failed`, `message-sending`, and the
//! multichannel `suggestion-response` and `request-location-response`) are
//! acknowledged and skipped ([`Received::Skipped`], naming the first
//! event's type when the array holds no inbound message).
//!
//! # Authentication: HTTP Basic, no signature
//!
//! Bandwidth signs nothing. It offers HTTP Basic authentication of its
//! callbacks instead: "Callback URLs can (and ideally should) be password
//! protected. To allow Bandwidth to access these URLs, applications in the
//! Bandwidth Dashboard can be configured with a username and password used
//! to authenticate on your callback URL", following "the basic HTTP
//! authentication framework outlined in RFC 7235"
//! (<https://dev.bandwidth.com/guides/callbacks/callbacks.html>,
//! "Authenticated Callbacks"); through the API they are the application's
//! `InboundCallbackCreds.UserId` and `InboundCallbackCreds.Password`
//! (<https://dev.bandwidth.com/docs/account/applications>). With
//! [`BasicCredentials`] configured, every request must carry them in
//! `Authorization: Basic ...`, compared in constant time; a request without
//! them, or with others, answers `401` with the challenge of
//! [`Provider::challenge`] (an RFC 7235 client may wait for it before
//! sending its credentials). There is no timestamp, so nothing can be
//! stale; a replayed delivery carries the same message ids and is recorded
//! once.
//!
//! # Answers and retries
//!
//! "You MUST Reply with a HTTP 2xx status code for every callback/delivery
//! receipt. Bandwidth will retry every callback over the next 24 hours until
//! a HTTP 2xx code is received", with a 10-second timeout (webhooks page,
//! "Overview"). Success answers `200` with no body; a store failure answers
//! `503`, and Bandwidth delivers again.

use http::Method;
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;

use super::basic_auth::{self, BasicCredentials};
use super::signing::{Signing, SigningMode};
use super::{Fields, Provider, Received, WebhookError, WebhookRequest};

/// The event type of an inbound message.
pub(crate) const MESSAGE_RECEIVED: &str = "message-received";

/// One event of a callback (the body is an array of them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BandwidthEvent {
    /// `message-received`, `message-delivered`, `message-failed`,
    /// `message-sending`...
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened (ISO 8601).
    pub time: Option<String>,
    /// A description (`Incoming message received`).
    pub description: Option<String>,
    /// The number the message was sent to: for an inbound message, the
    /// Bandwidth number that received it.
    pub to: Option<String>,
    /// The error code of a `message-failed` event.
    pub error_code: Option<i64>,
    /// The carrier that handled the message (an account feature).
    pub carrier_name: Option<String>,
    /// The message; its shape is a message's for every event type.
    pub message: serde_json::Value,
}

/// The message of an event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BandwidthMessage {
    /// The message id: the dedup key.
    pub id: String,
    /// The Bandwidth number this copy of the message belongs to: for an
    /// inbound message, (one of) the `to` numbers.
    pub owner: Option<String>,
    /// The messaging application.
    pub application_id: Option<String>,
    /// When the message was created (ISO 8601).
    pub time: Option<String>,
    /// Number of segments.
    pub segment_count: Option<u32>,
    /// `in` or `out`.
    pub direction: Option<String>,
    /// The recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// The sender.
    pub from: String,
    /// The text.
    pub text: Option<String>,
    /// MMS media URLs.
    #[serde(default)]
    pub media: Vec<String>,
    /// The custom tag of an outbound message.
    pub tag: Option<String>,
    /// `default` or `high`.
    pub priority: Option<String>,
    /// When an outbound message expires.
    pub expiration: Option<String>,
    /// The multichannel channel (`RBM`, `SMS`, `MMS`).
    pub channel: Option<String>,
    /// Multichannel content.
    pub content: Option<serde_json::Value>,
    /// An RBM suggestion response.
    pub suggestion_response: Option<serde_json::Value>,
    /// An RBM location response.
    pub location_response: Option<serde_json::Value>,
}

/// Bandwidth's messaging callbacks.
#[derive(Debug, Clone)]
pub struct Bandwidth {
    signing: Signing<BasicCredentials>,
}

impl Bandwidth {
    /// Bandwidth checked against the application's callback credentials (or
    /// not, per `signing`).
    pub fn new(signing: Signing<BasicCredentials>) -> Self {
        Self { signing }
    }
}

impl Provider for Bandwidth {
    fn name(&self) -> &'static str {
        "bandwidth"
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::POST]
    }

    fn signing_mode(&self) -> SigningMode {
        self.signing.mode()
    }

    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        if let Some(credentials) = self.signing.key(self.name())? {
            credentials.verify(request.headers)?;
        }
        let events: Vec<BandwidthEvent> = super::decode_json(request.body)?;
        let Some(first) = events.first() else {
            return Err(WebhookError::malformed(
                "JSON body",
                "an empty array of events",
            ));
        };
        let first_kind = first.kind.clone();
        let mut replies = Vec::new();
        for (index, event) in events.iter().enumerate() {
            if event.kind != MESSAGE_RECEIVED {
                continue;
            }
            let message = BandwidthMessage::deserialize(&event.message)
                .map_err(|error| WebhookError::malformed("message-received message", error))?;
            let to = message
                .owner
                .as_deref()
                .or(event.to.as_deref())
                .or(message.to.first().map(String::as_str))
                .ok_or_else(|| WebhookError::missing(format!("[{index}].message.owner")))?;
            let raw = RawReply {
                message_id: Some(&message.id),
                from: &message.from,
                to,
                body: message.text.as_deref().unwrap_or(""),
            };
            replies.push(Fields::new("message.id", raw).into_reply(normalizer, request)?);
        }
        if replies.is_empty() {
            let event = if first_kind.is_empty() {
                "(no type)".to_owned()
            } else {
                first_kind
            };
            return Ok(Received::Skipped { event });
        }
        Ok(Received::Replies(replies))
    }

    fn challenge(&self) -> Option<&'static str> {
        Some(basic_auth::CHALLENGE)
    }
}
