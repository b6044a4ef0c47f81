//! Infobip SMS: inbound messages forwarded to the number's endpoint.
//!
//! # What Infobip sends
//!
//! A JSON `POST` in the default `MO_JSON_2` format to the endpoint set in the
//! number's inbound configuration ("Receive inbound SMS messages",
//! <https://www.infobip.com/docs/api/channels/sms/inbound-sms/receive-inbound-sms-messages>):
//! `{"results": [...], "messageCount", "pendingMessageCount"}`, each result
//! with `messageId`, `from`, `to`, `text`, `cleanText`, `keyword`,
//! `receivedAt`, `smsCount`, `price` (`pricePerMessage`, `currency`) and
//! `callbackData`, as in the official SDK's model (infobip-api-go-client
//! `v2/model_sms_inbound_message.go`, `SmsInboundMessage`), plus the
//! `applicationId`, `entityId` and `campaignReferenceId` of Infobip's
//! platform: decoded into [`InfobipInbound`] and [`InfobipMessage`]. One
//! delivery may carry several messages: each result is one reply, its
//! `messageId` the dedup key, and its full `text` (not `cleanText`, which
//! drops the keyword) the body. `from` and `to` are international numbers
//! without `+` (`385916242493`): they get their `+` before they are read
//! (`number::international`), never the
//! default region's. The other renderers (`MO_XML`, the older `MO_JSON`) are
//! not read. A body whose results are all delivery reports (they carry a
//! `status` and no `text`: "Receive outbound SMS message report",
//! <https://www.infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report>)
//! is acknowledged and skipped as `DELIVERY_REPORT`, for an endpoint that
//! receives both.
//!
//! # Authentication: HTTP Basic, no signature
//!
//! Infobip signs nothing that its documentation specifies for forwarded
//! SMS. What it offers is the security settings of its Subscriptions API,
//! whose `BASIC` type makes it send a username and password
//! ("Create security settings",
//! <https://www.infobip.com/docs/api/platform/subscriptions-api/create-security-settings>:
//! `{"authId", "type": "BASIC", "credentials": {"username", "password"}}`),
//! or the same credentials written into the forwarding URL
//! (`https://user:password@host/...`), which an HTTP client sends as
//! `Authorization: Basic`. With [`BasicCredentials`] configured, every
//! request must carry them, compared in constant time; a request without
//! them, or with others, answers `401` with the challenge of
//! [`Provider::challenge`]. The same settings also list `HMAC` and `OAUTH`
//! types, but no published page says which header and which bytes an
//! `HMAC` signature covers, so they are not verified here. There is no
//! timestamp, so nothing can be stale; a replayed delivery carries the same
//! message ids and is recorded once.
//!
//! # Answers and retries
//!
//! The endpoint answers `200` when it accepts the messages (the webhook's
//! only documented response). Infobip's pages found do not state the retry
//! schedule of inbound forwarding; a store failure answers `503`, the
//! status every retrying sender treats as transient, so that Infobip
//! delivers again if it retries at all.

use http::Method;
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;

use super::basic_auth::{self, BasicCredentials};
use super::number::international;
use super::signing::{Signing, SigningMode};
use super::{Fields, Provider, Received, WebhookError, WebhookRequest};

/// What a body of delivery reports is skipped as.
pub(crate) const DELIVERY_REPORT: &str = "DELIVERY_REPORT";

/// A forwarding: the messages and the counters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InfobipInbound {
    /// The messages.
    pub results: Vec<InfobipMessage>,
    /// Number of messages in this request.
    pub message_count: Option<u32>,
    /// Number of messages still waiting on Infobip's side.
    pub pending_message_count: Option<u32>,
}

/// One inbound message (or, on an endpoint that also receives them, one
/// delivery report).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InfobipMessage {
    /// The message id: the dedup key.
    pub message_id: Option<String>,
    /// The sender, international without `+` (or alphanumeric).
    pub from: Option<String>,
    /// The Infobip number, international without `+`.
    pub to: Option<String>,
    /// The full text.
    pub text: Option<String>,
    /// The text without its keyword.
    pub clean_text: Option<String>,
    /// The keyword, if the text started with one.
    pub keyword: Option<String>,
    /// When Infobip received it (`yyyy-MM-dd'T'HH:mm:ss.SSSZ`).
    pub received_at: Option<String>,
    /// Number of parts.
    pub sms_count: Option<u32>,
    /// What it cost.
    pub price: Option<InfobipPrice>,
    /// Custom data set on the number's configuration.
    pub callback_data: Option<String>,
    /// The application the message is linked to.
    pub application_id: Option<String>,
    /// The entity the message is linked to.
    pub entity_id: Option<String>,
    /// The campaign the message answers.
    pub campaign_reference_id: Option<String>,
    /// A delivery report's status (absent on inbound messages).
    pub status: Option<serde_json::Value>,
}

impl InfobipMessage {
    /// Whether this is a delivery report rather than an inbound message.
    pub fn is_delivery_report(&self) -> bool {
        self.status.is_some() && self.text.is_none()
    }
}

/// A price.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InfobipPrice {
    /// The price of each part.
    pub price_per_message: Option<f64>,
    /// Its currency.
    pub currency: Option<String>,
}

/// Infobip's inbound SMS forwarding.
#[derive(Debug, Clone)]
pub struct Infobip {
    signing: Signing<BasicCredentials>,
}

impl Infobip {
    /// Infobip checked against the subscription's Basic credentials (or
    /// not, per `signing`).
    pub fn new(signing: Signing<BasicCredentials>) -> Self {
        Self { signing }
    }
}

impl Provider for Infobip {
    fn name(&self) -> &'static str {
        "infobip"
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
        let inbound: InfobipInbound = super::decode_json(request.body)?;
        if inbound.results.is_empty() {
            return Err(WebhookError::missing("results[0]"));
        }
        if inbound
            .results
            .iter()
            .all(InfobipMessage::is_delivery_report)
        {
            return Ok(Received::Skipped {
                event: DELIVERY_REPORT.to_owned(),
            });
        }
        let mut replies = Vec::with_capacity(inbound.results.len());
        for (index, message) in inbound.results.iter().enumerate() {
            if message.is_delivery_report() {
                continue;
            }
            let field = |name: &str| format!("results[{index}].{name}");
            let from = message
                .from
                .as_deref()
                .ok_or_else(|| WebhookError::missing(field("from")))?;
            let to = message
                .to
                .as_deref()
                .ok_or_else(|| WebhookError::missing(field("to")))?;
            let id = message
                .message_id
                .as_deref()
                .ok_or_else(|| WebhookError::missing(field("messageId")))?;
            let raw = RawReply {
                message_id: Some(id),
                from: &international(from),
                to: &international(to),
                body: message.text.as_deref().unwrap_or(""),
            };
            replies.push(Fields::new("results[].messageId", raw).into_reply(normalizer, request)?);
        }
        Ok(Received::Replies(replies))
    }

    fn challenge(&self) -> Option<&'static str> {
        Some(basic_auth::CHALLENGE)
    }
}
