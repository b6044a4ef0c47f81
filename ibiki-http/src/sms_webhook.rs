//! `POST /webhooks/sms`: ibiki's own inbound-reply webhook format (JSON, or
//! a Twilio-style form), for gateways without a provider route of their own
//! (those are in `provider_webhook.rs`).
//!
//! The answer is 2xx only once the store has durably recorded the reply;
//! a store failure answers 503 so the provider retries, and the retry is
//! recognized by its message id.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use ibiki_core::{ClientId, InboundReply, Normalizer, RawReply, Receipt, ReplyError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::app::{App, WEBHOOK_BODY_LIMIT};
use crate::error::ApiError;
use crate::metrics::SMS_ROUTE;
use crate::openapi::ErrorBody;
use crate::request::{BodyFormat, body_bytes, body_format, parse_form, parse_json};
use crate::sms_signature::{self, SignatureError, SignatureHeader};
use ibiki_providers::Form;

/// A JSON reply: `{"messageId", "from", "to", "body"}`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsonPayload {
    /// The provider's message id (1 to 256 bytes, no control characters):
    /// a retry with the same id is recorded once.
    #[schema(example = "SM1")]
    pub(crate) message_id: Option<String>,
    /// The sender, at most 256 bytes.
    #[schema(example = "+15005550006")]
    pub(crate) from: String,
    /// The number replied to, at most 256 bytes.
    #[schema(example = "+14155550100")]
    pub(crate) to: String,
    // An MMS may carry no text.
    /// The text, at most 32 KiB; absent for an MMS without text.
    #[serde(default)]
    #[schema(example = "Yes, 3pm works")]
    pub(crate) body: String,
}

/// A Twilio-style form reply: `MessageSid`, `From`, `To`, `Body`; the other
/// fields Twilio sends are ignored.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FormPayload {
    /// The provider's message id, as `messageId`.
    pub(crate) message_sid: Option<String>,
    /// The sender, at most 256 bytes.
    pub(crate) from: String,
    /// The number replied to, at most 256 bytes.
    pub(crate) to: String,
    /// The text, at most 32 KiB.
    #[serde(default)]
    pub(crate) body: String,
}

/// Both formats, read.
#[derive(Debug)]
enum Payload {
    Json(JsonPayload),
    Form(FormPayload),
}

/// A provider whose own payload can be told apart from ibiki's two formats,
/// and the fields that tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OtherProvider {
    /// Its route name (`/webhooks/plivo`).
    pub(crate) name: &'static str,
    /// Its name for people.
    pub(crate) display: &'static str,
}

const fn other(name: &'static str, display: &'static str) -> Option<OtherProvider> {
    Some(OtherProvider { name, display })
}

/// The provider whose own payload `body` recognizably is, if any.
///
/// These payloads would otherwise be half read: Plivo's and Sinch's `to`
/// has no `+`, Plivo's text is `Text`, and none has the message id where
/// ibiki's formats keep it. Checked before either format is read:
/// - forms: Plivo's `MessageUUID` or `Text`, Vonage's `msisdn`, MessageBird's
///   `originator`;
/// - JSON objects: a Telnyx event (`data.event_type`), an Infobip
///   `results` array, a Sinch MO (`type` `mo_text`, `mo_binary`,
///   `mo_media`), Vonage's `msisdn`, MessageBird's `originator`;
/// - a JSON array of objects with `type` and `message`: Bandwidth events.
pub(crate) fn other_provider(format: BodyFormat, body: &[u8]) -> Option<OtherProvider> {
    match format {
        BodyFormat::Form => {
            let form = Form::parse(body);
            if form.contains("MessageUUID") || form.contains("Text") {
                other("plivo", "Plivo")
            } else if form.contains("msisdn") {
                other("vonage", "Vonage")
            } else if form.contains("originator") {
                other("messagebird", "MessageBird")
            } else {
                None
            }
        }
        BodyFormat::Json => match serde_json::from_slice::<serde_json::Value>(body).ok()? {
            serde_json::Value::Object(object) => {
                let sinch_type = object
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|kind| kind.starts_with("mo_"));
                if object
                    .get("data")
                    .is_some_and(|data| data.get("event_type").is_some())
                {
                    other("telnyx", "Telnyx")
                } else if object
                    .get("results")
                    .is_some_and(serde_json::Value::is_array)
                {
                    other("infobip", "Infobip")
                } else if sinch_type {
                    other("sinch", "Sinch")
                } else if object.contains_key("msisdn") {
                    other("vonage", "Vonage")
                } else if object.contains_key("originator") {
                    other("messagebird", "MessageBird")
                } else {
                    None
                }
            }
            serde_json::Value::Array(events)
                if events
                    .iter()
                    .any(|event| event.get("type").is_some() && event.get("message").is_some()) =>
            {
                other("bandwidth", "Bandwidth")
            }
            _ => None,
        },
    }
}

impl Payload {
    fn parse(format: BodyFormat, body: &[u8]) -> Result<Self, ApiError> {
        if let Some(provider) = other_provider(format, body) {
            return Err(ApiError::bad_request(
                "other_provider_payload",
                format!(
                    "this is a {} payload: post it to /webhooks/{}, which reads all of its \
                     fields and checks its signature",
                    provider.display, provider.name
                ),
            ));
        }
        match format {
            BodyFormat::Json => parse_json(body, "invalid_payload").map(Self::Json),
            BodyFormat::Form => parse_form(body, "invalid_payload").map(Self::Form),
        }
    }

    /// The reply's fields, whichever the format.
    fn raw(&self) -> RawReply<'_> {
        let (message_id, from, to, body) = match self {
            Self::Json(p) => (&p.message_id, &p.from, &p.to, &p.body),
            Self::Form(p) => (&p.message_sid, &p.from, &p.to, &p.body),
        };
        RawReply {
            message_id: message_id.as_deref(),
            from,
            to,
            body,
        }
    }
}

/// A webhook body, read: parsed in `format`, the field limits checked and
/// `to` canonicalized, received at `now`. Everything the webhook does to the
/// bytes before the store sees them (the fuzz target `decode_webhook` runs it).
pub(crate) fn decode(
    format: BodyFormat,
    body: &[u8],
    normalizer: &Normalizer,
    now: OffsetDateTime,
) -> Result<InboundReply, ApiError> {
    let payload = Payload::parse(format, body)?;
    InboundReply::new(normalizer, payload.raw(), now).map_err(reply_error)
}

fn reply_error(error: ReplyError) -> ApiError {
    let code = match error {
        ReplyError::MessageId { .. } => "invalid_message_id",
        ReplyError::TooLong { .. } => "field_too_long",
        _ => "invalid_payload",
    };
    ApiError::bad_request(code, error.to_string())
}

/// What happened to the reply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum WebhookAnswer {
    /// In this client's inbox.
    Routed {
        /// The client that owns the number.
        #[serde(rename = "userId")]
        #[schema(value_type = String)]
        user_id: ClientId,
    },
    /// Held until someone owns the number.
    Held,
    /// Recorded before: a provider retry.
    Duplicate,
}

impl From<Receipt> for WebhookAnswer {
    fn from(receipt: Receipt) -> Self {
        match receipt {
            Receipt::Routed(user_id) => Self::Routed { user_id },
            Receipt::Held => Self::Held,
            Receipt::Duplicate => Self::Duplicate,
        }
    }
}

/// The handler. Order matters: the signature header is checked before the
/// body is read, and the signature over the raw bytes before they are parsed.
#[utoipa::path(
    post,
    path = "/webhooks/sms",
    tag = "webhook",
    params((
        "X-Ibiki-Signature" = Option<String>, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`: \
            required when the server has a webhook secret"
    )),
    request_body(content(
        (JsonPayload = "application/json"),
        (FormPayload = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Recorded (or recognized as a retry)", body = WebhookAnswer),
        (status = 400, description = "Unreadable body, missing field or a field over its limit, \
            or another provider's payload (`other_provider_payload`, whose message names the \
            `/webhooks/{provider}` route to use)", body = ErrorBody),
        (status = 401, description = "Missing, malformed, stale or wrong signature, or no \
            secret configured while signatures are required", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is neither JSON nor a form", body = ErrorBody),
        (status = 503, description = "Not recorded: the store is unavailable; retry", body = ErrorBody),
    )
)]
pub(crate) async fn receive(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let reply = read(&app, request).await.inspect_err(|error| {
        app.metrics().rejected(SMS_ROUTE, error.code());
    })?;
    let message_id = reply.message_id.clone();
    let receipt = app.receive(SMS_ROUTE, reply).await?;
    tracing::debug!(?message_id, ?receipt, "reply recorded");
    Ok(Json(receipt.into()))
}

/// The request's reply, its signature checked, read and canonicalized.
async fn read(app: &App, request: Request) -> Result<InboundReply, ApiError> {
    let signed = match app.webhook_secret() {
        Some(secret) => Some((secret, fresh_signature(request.headers())?)),
        None if app.unsigned_webhooks_refused() => {
            return Err(ApiError::unauthorized(
                "signatures_required",
                "webhooks cannot be verified: no webhook secret is configured",
            ));
        }
        None => None,
    };
    let format = body_format(request.headers());
    let body = body_bytes(Bytes::from_request(request, &()).await, WEBHOOK_BODY_LIMIT)?;
    if let Some((secret, header)) = signed {
        secret.verify(&header, &body).map_err(signature_rejected)?;
    }
    let format = format.ok_or_else(|| {
        ApiError::unsupported_media_type("application/json or application/x-www-form-urlencoded")
    })?;
    decode(format, &body, app.normalizer(), OffsetDateTime::now_utc())
}

/// The signature header, parsed and within the time tolerance.
fn fresh_signature(headers: &HeaderMap) -> Result<SignatureHeader, ApiError> {
    let value = headers
        .get(sms_signature::HEADER)
        .ok_or(SignatureError::Missing)
        .and_then(|v| v.to_str().map_err(|_| SignatureError::Malformed))
        .map_err(signature_rejected)?;
    let header = SignatureHeader::parse(value).map_err(signature_rejected)?;
    header.check_fresh(unix_now()).map_err(signature_rejected)?;
    Ok(header)
}

fn signature_rejected(error: SignatureError) -> ApiError {
    tracing::debug!(?error, "webhook signature rejected");
    ApiError::unauthorized(error.code(), error.message())
}

fn unix_now() -> u64 {
    // A clock before 1970 makes every signature stale, which is the safe side.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// ibiki's own formats are never taken for another provider's.
        #[test]
        fn ibikis_own_payloads_are_never_another_providers(
            message_id in proptest::option::of(".{0,20}"),
            from in ".{0,20}",
            to in ".{0,20}",
            body in ".{0,40}",
        ) {
            let json = serde_json::to_vec(&JsonPayload {
                message_id: message_id.clone(),
                from: from.clone(),
                to: to.clone(),
                body: body.clone(),
            })
            .expect("JSON");
            prop_assert_eq!(other_provider(BodyFormat::Json, &json), None);
            let form = serde_urlencoded::to_string(FormPayload {
                message_sid: message_id,
                from,
                to,
                body,
            })
            .expect("form");
            prop_assert_eq!(other_provider(BodyFormat::Form, form.as_bytes()), None);
        }

        /// Any bytes are classified without panicking.
        #[test]
        fn any_body_is_classified(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = other_provider(BodyFormat::Json, &body);
            let _ = other_provider(BodyFormat::Form, &body);
        }
    }
}
