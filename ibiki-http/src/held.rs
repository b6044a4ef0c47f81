//! The held replies: `GET /api/admin/held` lists them, and
//! `POST /api/admin/held/{id}/deliver` moves one into an inbox by hand.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use ibiki_core::{HeldTarget, StoredReply};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::admin::{client_id, lookup_number, path_segment};
use crate::app::{ADMIN_BODY_LIMIT, App};
use crate::error::ApiError;
use crate::inbox::MessagesAnswer;
use crate::openapi::ErrorBody;
use crate::request::{BodyFormat, PageParams, body_bytes, body_format, page_request, parse_json};

/// `GET /api/admin/held?limit=N&after=CURSOR`: replies nobody owns yet.
#[utoipa::path(
    get,
    path = "/api/admin/held",
    operation_id = "held",
    tag = "admin",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page of the held replies", body = MessagesAnswer),
        (status = 400, description = "Invalid `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<MessagesAnswer>, ApiError> {
    let page = page_request(query.as_deref())?;
    Ok(Json(app.store().held(&page).await?.into()))
}

/// The body: exactly one of `userId` and `phoneNumber`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DeliverRequest {
    /// Deliver to this client's inbox.
    #[schema(example = "123")]
    user_id: Option<String>,
    /// Deliver to the inbox of this number's current owner (a corrected
    /// number; read like the webhook reads a `to`). Its ownership does not
    /// change.
    #[schema(example = "+442079460958")]
    phone_number: Option<String>,
}

/// `POST /api/admin/held/{id}/deliver`: moves the held reply `id` (its `id`
/// in the held listing) to the end of the inbox of `userId`, or of the
/// current owner of `phoneNumber`, and answers it as delivered: its
/// `delivery` is `rerouted`, at the instant of the move. No number changes
/// hands.
#[utoipa::path(
    post,
    path = "/api/admin/held/{id}/deliver",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, minimum = 0, description = "The reply's `id`", example = 42)),
    request_body(content = DeliverRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The reply, delivered", body = crate::openapi::StoredReply),
        (status = 400, description = "Unreadable JSON, not exactly one of `userId` and `phoneNumber`, invalid `userId` or id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No reply has this id", body = ErrorBody),
        (status = 409, description = "The reply is not held (delivered already), or nobody owns `phoneNumber`; nothing changed", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON", body = ErrorBody),
        (status = 422, description = "`phoneNumber` is not a phone number", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn deliver(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<StoredReply>, ApiError> {
    let id = reply_id(&path_segment(path)?)?;
    if body_format(&headers) != Some(BodyFormat::Json) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = body_bytes(body, ADMIN_BODY_LIMIT)?;
    let request: DeliverRequest = parse_json(&body, "invalid_json")?;
    let target = match (request.user_id, request.phone_number) {
        (Some(user_id), None) => HeldTarget::Client(client_id(&user_id)?),
        (None, Some(number)) => {
            HeldTarget::Number(lookup_number(app.normalizer(), &number).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_phone_number",
                    e.message(),
                )
            })?)
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_target",
                "give exactly one of `userId` and `phoneNumber`",
            ));
        }
    };
    let reply = app.store().deliver_held(id, &target).await?;
    app.metrics().rerouted();
    // The id finds the reply; no phone number in the log (personal data).
    let by = match &target {
        HeldTarget::Client(_) => "client",
        HeldTarget::Number(_) => "number",
    };
    tracing::info!(id, by, "held reply re-routed");
    Ok(Json(reply))
}

fn reply_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("a reply id is a whole number, got {text:?}"),
        )
    })
}
