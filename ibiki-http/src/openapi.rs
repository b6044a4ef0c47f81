//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they read and answer, and served at
//! `GET /openapi.json`.
//!
//! The router and the document come from the same route list
//! (`app::routes`), so a route cannot be served without being
//! documented. The schemas of types serialized by other crates (the stored
//! reply, the history event: `ibiki-core` does not depend on utoipa) and of
//! the error body are written here, field for field; schemathesis checks
//! every answer against them.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Name of the bearer security scheme in the document (the `/api` operations
/// spell it out: `security(("bearer" = []))`).
pub(crate) const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ibiki example server",
        description = "Routes inbound SMS replies to the client that owns the number replied to. \
            Every `/api` route and `/metrics` take the admin bearer token; a client's API key \
            (`ibk_…`) opens that client's own `/api/clients/{userId}/…` routes and nothing else \
            (403 `forbidden`). `/webhooks/sms`, `/healthz` and `/openapi.json` are public (the webhook checks its own signature when a secret is set)."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "admin", description = "Assign numbers, inspect routing and held replies"),
        (name = "inbox", description = "A client's replies"),
        (name = "forwarding", description = "Each reply pushed to its client's own endpoint, signed (Standard Webhooks) and retried"),
        (name = "webhook", description = "The provider's inbound-reply webhook"),
        (name = "meta", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Adds the admin bearer token scheme the `/api` operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (`--admin-token`), or a client's API key \
                         (`POST /api/admin/clients/{userId}/keys`) for that client's own routes",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document: the routes' operations under the common header.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::app::routes().into_openapi());
    document_body_timeout(&mut doc);
    doc
}

/// 408 on every operation that reads a body: the body read timeout answers
/// it on all of them, from one middleware.
fn document_body_timeout(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let timeout = ResponseBuilder::new()
        .description(
            "The body did not arrive whole within the body read timeout; nothing was \
             recorded and the connection is closed",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.request_body.is_some() {
                operation
                    .responses
                    .responses
                    .insert("408".to_owned(), timeout.clone().into());
            }
        }
    }
}

/// `GET /openapi.json`, rendered once.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "This OpenAPI 3 document", content_type = "application/json",
            body = Object),
    )
)]
pub(crate) async fn serve_document() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|e| unreachable!("the document serializes: {e}"))
    });
    ([(CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

/// Every error answer: a stable machine-readable code and a message for
/// people, plus `invalid` (422 `invalid_phone_numbers`) or `conflicts`
/// (409 `phone_number_conflict`).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    /// The machine-readable code, e.g. `invalid_json`, `unauthorized`,
    /// `phone_number_conflict`, `store_unavailable`.
    error: String,
    /// What went wrong, for people.
    message: String,
    /// Every bad entry of the list, in input order.
    #[schema(nullable = false)]
    invalid: Option<Vec<InvalidEntry>>,
    /// Every number another client owns.
    #[schema(nullable = false)]
    conflicts: Option<Vec<Conflict>>,
}

/// One bad entry of a phone number list.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvalidEntry {
    /// 0-based index of the entry in the input, empty entries included.
    index: u64,
    /// The entry's text, trimmed.
    input: String,
    /// Why it was rejected.
    reason: String,
}

/// A number another client already owns.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conflict {
    /// The contested number, E.164.
    phone_number: String,
    /// Its owner.
    user_id: String,
}

/// A recorded reply, as the listings return it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredReply {
    /// The store's id of the reply: stable and unique; what
    /// `POST /api/admin/held/{id}/deliver` takes.
    #[schema(minimum = 0)]
    id: u64,
    /// The provider's message id, when it sent one.
    #[schema(required = true)]
    message_id: Option<String>,
    /// The sender, as posted.
    from: String,
    /// The number replied to: canonical E.164 where it parsed, else as posted.
    to: String,
    /// The text.
    body: String,
    /// When it was received (RFC 3339): the gateway's own time when the
    /// provider's payload carries one, else its arrival at the webhook.
    #[schema(format = DateTime)]
    received_at: String,
    /// How and when it was delivered, or that it is still held.
    delivery: Delivery,
}

/// How a reply was delivered, and when it got that kind.
#[derive(Serialize, ToSchema)]
pub(crate) struct Delivery {
    /// `routed` on receipt; `released` by the assignment of its number;
    /// `held` (nobody owns the number); `unparsed` (held: its `to` is no
    /// number); `rerouted` by an operator; `delivered` (recorded before the
    /// store kept how).
    kind: DeliveryKind,
    /// When ibiki gave it that kind (RFC 3339), by the store's clock: put it
    /// in the inbox or held it on receipt, or the instant of the assignment or
    /// re-route that delivered it. The owner of its number at this instant
    /// (`GET /api/admin/routes/{phoneNumber}?at=`) is the client it went to.
    #[schema(format = DateTime)]
    at: String,
}

/// How a reply was delivered.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "only describes the JSON")]
pub(crate) enum DeliveryKind {
    /// Routed to its number's owner on receipt.
    Routed,
    /// Held, then released by the assignment of its number.
    Released,
    /// Held: nobody owns its number.
    Held,
    /// Held: its `to` is no number.
    Unparsed,
    /// Held, then delivered by an operator.
    Rerouted,
    /// Delivered before the store recorded how.
    Delivered,
}

/// One ownership change of a number.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryEvent {
    /// The client that gained or lost the number.
    user_id: String,
    /// Gained (`assigned`) or lost (`unassigned`).
    change: OwnershipChange,
    /// When (RFC 3339, whole microseconds).
    #[schema(format = DateTime)]
    at: String,
}

/// Whether a client gained or lost a number.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "only describes the JSON")]
pub(crate) enum OwnershipChange {
    /// The client became the owner.
    Assigned,
    /// The client stopped owning it.
    Unassigned,
}

/// `phoneNumbers`: a comma-separated string or an array of strings.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "read as any JSON value; this only describes it")]
pub(crate) enum PhoneNumberList {
    /// `"+14155550100, +14155550101"`.
    Text(String),
    /// `["+14155550100", "+14155550101"]`.
    List(Vec<String>),
}

/// `GET /healthz`'s answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: String,
}

/// The providers whose webhooks ibiki verifies and decodes, by route name
/// (`/webhooks/twilio`); a server serves those it was given
/// ([`App::with_providers`](crate::App::with_providers)).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "only describes the path segment")]
pub(crate) enum ProviderName {
    /// Twilio Programmable Messaging.
    Twilio,
    /// Telnyx Messaging API v2.
    Telnyx,
    /// Vonage SMS API.
    Vonage,
    /// Plivo Messaging.
    Plivo,
    /// Bandwidth Messaging API v2.
    Bandwidth,
    /// Sinch SMS REST API.
    Sinch,
    /// MessageBird (Bird) SMS API.
    MessageBird,
    /// Infobip SMS.
    Infobip,
    /// Any other gateway, as its configuration describes it.
    Generic,
}
