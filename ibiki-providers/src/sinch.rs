//! Sinch SMS REST API: inbound (MO) message callbacks.
//!
//! # What Sinch sends
//!
//! A JSON `POST` of one inbound message to the service plan's callback URL
//! ("Inbounds ... can also be delivered by callback requests like delivery
//! reports", <https://developers.sinch.com/docs/sms/api-reference/sms/tag/Webhooks/>),
//! its `type` saying which: `mo_text` (`id`, `from`, `to`, `body`,
//! `received_at`, `sent_at`, `operator_id`, `client_reference`), `mo_binary`
//! (the same with a base64 `body` and a hex `udh`) or `mo_media` (an MMS
//! whose `body` is `{subject, message, media: [{url, content_type, status,
//! code}]}`), as the official SDKs decode them (sinch-sdk-python
//! `sinch/domains/sms/models/v1/shared/base_mo_message.py`,
//! `mo_text_message.py`, `mo_binary_message.py`, `mo_media_message.py`,
//! `mo_media_body.py`, `mo_media_item.py`): [`SinchMoText`],
//! [`SinchMoBinary`], [`SinchMoMedia`]. `from` and `to` are international
//! numbers without `+` (`12015555555`): they get their `+` before they are
//! read (`number::international`); `to` is
//! the Sinch number or short code written to; `id` is the dedup key.
//!
//! A `mo_text` is one reply; a `mo_media` is one reply whose text is the
//! MMS's `message` (its subject if it has no message). A `mo_binary` carries
//! no text (its body is binary data for the handset, a WAP push or a SIM
//! update): it is acknowledged and skipped, as are the delivery reports the
//! same URL receives (`delivery_report_sms`, `delivery_report_mms`,
//! `recipient_delivery_report_sms`, `recipient_delivery_report_mms`) and any
//! other type ([`Received::Skipped`]).
//!
//! # Authentication
//!
//! Sinch signs SMS callbacks with HMAC once the account manager enables it
//! for the service plan (the SMS release notes: "Added support for HMAC
//! authentication configuration at the service plan level",
//! <https://developers.sinch.com/docs/sms/release-notes/>). The headers
//! `x-sinch-webhook-signature`, `x-sinch-webhook-signature-timestamp`,
//! `x-sinch-webhook-signature-nonce` and `x-sinch-webhook-signature-algorithm`
//! carry a base64 HMAC, keyed with the webhook secret (its UTF-8 bytes), of
//! `<raw body>.<nonce>.<timestamp>`. This follows the official SDKs exactly:
//! sinch-sdk-python
//! `sinch/domains/authentication/sinch_events/v1/authentication_validation.py`
//! (`validate_sinch_event_signature_with_nonce`, `compute_signed_data`:
//! `f'{body}.{nonce}.{timestamp}'`, `calculate_sinch_event_signature`:
//! base64 of HMAC-SHA256), sinch-sdk-java
//! `client/src/main/com/sinch/sdk/auth/HmacAuthenticationValidation.java`
//! (which reads the algorithm header as a JCA name, `HmacSHA256`) and
//! sinch-sdk-node `packages/sdk-client/src/utils/authorization.helper.ts`
//! (`validateWebhookSignature`). An absent algorithm header means
//! `HmacSHA256`, as in the Python and Node SDKs; `HmacSHA1` and `HmacSHA512`
//! are accepted as the Java SDK would; any other is refused. The tests check
//! sinch-sdk-java's SMS vector (`SinchEventsServiceTest`,
//! `checkApplicationAuthentication`) and sinch-sdk-python's
//! (`test_conversation_sinch_event.py`).
//!
//! None of the SDKs checks the timestamp. It is a Unix time in seconds, and
//! one more than [`Sinch::DEFAULT_TOLERANCE_SECS`] (a day) from the server's clock
//! either way is refused as stale: a day and not five minutes, because Sinch
//! retries a failed callback for up to 81,920 seconds (22 hours 45 minutes)
//! and its documentation does not say that a retry is signed anew; a
//! replay within the day carries the same message id and is recorded once.
//! [`Sinch::with_tolerance`] narrows it.
//!
//! Sinch also offers HTTP Basic authentication and OAuth 2.0 on callbacks
//! (webhooks page: "Basic Auth can be utilised in a callback by
//! provisioning the callback URL with the appropriate username and
//! password"): [`SinchKey::Basic`] checks Basic credentials instead of a
//! signature. OAuth 2.0 (Sinch fetching a token from an operator's server
//! first) is not supported.
//!
//! # Answers and retries
//!
//! "The REST API expects the receiving server to respond with a response
//! code within the 2xx success range. For 5xx the callback will be retried.
//! For 429 the callback will be retried and the throughput will be lowered.
//! For other status codes in the 4xx range the callback will not be
//! retried", first after 5 seconds, then doubling, the last 81,920 seconds
//! after the first failure (webhooks page). Success answers `200` with no
//! body; a store failure answers `503`, so Sinch delivers again; a refused
//! request (`400`, `401`) is not retried.

use http::Method;
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;

use super::basic_auth::{self, BasicCredentials};
use super::clock;
use super::number::international;
use super::signing::{self, Signing, SigningMode};
use super::{Fields, Provider, Received, WebhookError, WebhookRequest};
use ibiki_core::Secret;

/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-sinch-webhook-signature";
/// The header carrying the signed Unix timestamp.
pub(crate) const TIMESTAMP_HEADER: &str = "x-sinch-webhook-signature-timestamp";
/// The header carrying the signed nonce.
pub(crate) const NONCE_HEADER: &str = "x-sinch-webhook-signature-nonce";
/// The header naming the HMAC (`HmacSHA256`).
pub(crate) const ALGORITHM_HEADER: &str = "x-sinch-webhook-signature-algorithm";

/// How Sinch's callbacks are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinchKey {
    /// HMAC signatures made with this webhook secret.
    Hmac(Secret),
    /// HTTP Basic credentials provisioned on the callback URL.
    Basic(BasicCredentials),
}

/// A `mo_text` message: a regular SMS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SinchMoText {
    /// The message id: the dedup key.
    pub id: String,
    /// The sender, international without `+`.
    pub from: String,
    /// The Sinch number or short code written to, without `+`.
    pub to: String,
    /// The text (at most 2,000 characters).
    pub body: String,
    /// `mo_text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When Sinch received it (ISO 8601).
    pub received_at: Option<String>,
    /// When it left the handset, if the operator says.
    pub sent_at: Option<String>,
    /// The MCC/MNC of the sender's operator, if known.
    pub operator_id: Option<String>,
    /// The client reference of the message it answers (an account feature).
    pub client_reference: Option<String>,
}

/// A `mo_binary` message: binary data, no text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SinchMoBinary {
    /// The message id.
    pub id: String,
    /// The sender, international without `+`.
    pub from: String,
    /// The Sinch number or short code written to, without `+`.
    pub to: String,
    /// The data, base64.
    pub body: String,
    /// The user data header, hex.
    pub udh: Option<String>,
    /// `mo_binary`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When Sinch received it (ISO 8601).
    pub received_at: Option<String>,
    /// When it left the handset, if the operator says.
    pub sent_at: Option<String>,
    /// The MCC/MNC of the sender's operator, if known.
    pub operator_id: Option<String>,
    /// The client reference of the message it answers.
    pub client_reference: Option<String>,
}

/// A `mo_media` message: an MMS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SinchMoMedia {
    /// The message id: the dedup key.
    pub id: String,
    /// The sender, international without `+`.
    pub from: String,
    /// The Sinch number or short code written to, without `+`.
    pub to: String,
    /// The MMS's content.
    pub body: SinchMediaBody,
    /// `mo_media`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When Sinch received it (ISO 8601).
    pub received_at: Option<String>,
    /// When it left the handset, if the operator says.
    pub sent_at: Option<String>,
    /// The MCC/MNC of the sender's operator, if known.
    pub operator_id: Option<String>,
    /// The client reference of the message it answers.
    pub client_reference: Option<String>,
}

/// The content of an MMS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SinchMediaBody {
    /// The subject.
    pub subject: Option<String>,
    /// The text.
    pub message: Option<String>,
    /// The attachments.
    #[serde(default)]
    pub media: Vec<SinchMediaItem>,
}

/// An MMS attachment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SinchMediaItem {
    /// Where to fetch it.
    pub url: Option<String>,
    /// Its MIME type.
    pub content_type: Option<String>,
    /// `Uploaded` or `Failed`.
    pub status: Option<String>,
    /// The result code.
    pub code: Option<i64>,
}

/// The HMACs the algorithm header may name (JCA names, as sinch-sdk-java
/// passes the header to `Mac.getInstance`), compared case-insensitively.
fn hmac(algorithm: Option<&str>, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, WebhookError> {
    match algorithm.map(str::to_ascii_lowercase).as_deref() {
        None | Some("hmacsha256") => Ok(signing::hmac_sha256(key, parts)),
        Some("hmacsha1") => Ok(signing::hmac_sha1(key, parts)),
        Some("hmacsha512") => Ok(signing::hmac_sha512(key, parts)),
        Some(_) => Err(WebhookError::MalformedSignature {
            header: ALGORITHM_HEADER,
        }),
    }
}

/// Sinch's SMS callbacks.
#[derive(Debug, Clone)]
pub struct Sinch {
    signing: Signing<SinchKey>,
    tolerance_secs: u64,
}

impl Sinch {
    /// The largest distance, in seconds, accepted by default between the
    /// signed timestamp and the server's clock: a day, longer than Sinch's
    /// retry schedule.
    pub const DEFAULT_TOLERANCE_SECS: u64 = 86_400;

    /// Sinch verified with the webhook secret or checked against Basic
    /// credentials (or not, per `signing`), with a timestamp tolerance of
    /// [`Sinch::DEFAULT_TOLERANCE_SECS`].
    pub fn new(signing: Signing<SinchKey>) -> Self {
        Self {
            signing,
            tolerance_secs: Self::DEFAULT_TOLERANCE_SECS,
        }
    }

    /// The largest distance, in seconds, accepted between a signature's
    /// timestamp and the server's clock.
    pub fn with_tolerance(mut self, tolerance_secs: u64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    fn verify_hmac(
        &self,
        secret: &Secret,
        request: &WebhookRequest<'_>,
    ) -> Result<(), WebhookError> {
        let headers = request.headers;
        let signature = signing::signature_header(headers, SIGNATURE_HEADER)?;
        let timestamp = signing::signature_header(headers, TIMESTAMP_HEADER)?;
        let nonce = signing::signature_header(headers, NONCE_HEADER)?;
        let algorithm = signing::header(headers, ALGORITHM_HEADER).filter(|a| !a.is_empty());
        let signed_at =
            clock::parse_unix_secs(timestamp).ok_or(WebhookError::MalformedSignature {
                header: TIMESTAMP_HEADER,
            })?;
        let expected = hmac(
            algorithm,
            secret.expose().as_bytes(),
            &[
                request.body,
                b".",
                nonce.as_bytes(),
                b".",
                timestamp.as_bytes(),
            ],
        )?;
        signing::verify_base64(&expected, signature, SIGNATURE_HEADER)?;
        clock::check_fresh(signed_at, request.received_at, self.tolerance_secs)
    }
}

impl Provider for Sinch {
    fn name(&self) -> &'static str {
        "sinch"
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
        match self.signing.key(self.name())? {
            Some(SinchKey::Hmac(secret)) => {
                self.verify_hmac(secret, request)?;
            }
            Some(SinchKey::Basic(credentials)) => credentials.verify(request.headers)?,
            None => {}
        }
        let event: serde_json::Value = super::decode_json(request.body)?;
        let kind = event
            .get("type")
            .ok_or_else(|| WebhookError::missing("type"))?
            .as_str()
            .ok_or_else(|| WebhookError::invalid("type", "not a string"))?;
        let (id, from, to, text) = match kind {
            "mo_text" => {
                let message = SinchMoText::deserialize(&event)
                    .map_err(|error| WebhookError::malformed("mo_text message", error))?;
                (message.id, message.from, message.to, message.body)
            }
            "mo_media" => {
                let message = SinchMoMedia::deserialize(&event)
                    .map_err(|error| WebhookError::malformed("mo_media message", error))?;
                let text = message
                    .body
                    .message
                    .or(message.body.subject)
                    .unwrap_or_default();
                (message.id, message.from, message.to, text)
            }
            "" => return Err(WebhookError::invalid("type", "empty")),
            other => {
                return Ok(Received::Skipped {
                    event: other.to_owned(),
                });
            }
        };
        let raw = RawReply {
            message_id: Some(&id),
            from: &international(&from),
            to: &international(&to),
            body: &text,
        };
        Fields::new("id", raw).received(normalizer, request)
    }

    fn challenge(&self) -> Option<&'static str> {
        match &self.signing {
            Signing::Verify(SinchKey::Basic(_)) => Some(basic_auth::CHALLENGE),
            _ => None,
        }
    }
}
