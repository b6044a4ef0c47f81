//! The forwards of a client's replies, as `deliveries`:
//! `GET /api/admin/clients/{userId}/deliveries`, `POST
//! /api/admin/deliveries/{id}/retry`, and the client's own
//! `GET /api/clients/{userId}/deliveries` and
//! `POST /api/clients/{userId}/deliveries/{id}/retry`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ibiki_core::{ClientId, Cursor, Forward, ForwardStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::{client_id, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::{page_of, parse_query};

/// One reply's delivery to its client's endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "only read by the OpenAPI derive")]
pub(crate) struct EndpointDelivery {
    id: u64,
    /// The reply's provider message id.
    #[schema(required = true)]
    message_id: Option<String>,
    /// The reply's `id` in the inbox.
    reply_id: u64,
    #[schema(example = "pending")]
    status: String,
    /// Attempts started so far.
    attempts: u32,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    last_attempt_at: Option<String>,
    /// Null once delivered or failed.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    next_attempt_at: Option<String>,
    /// The last attempt's HTTP status; null when it got no response.
    #[schema(required = true)]
    last_status: Option<u16>,
    /// The last attempt's response body (at most 64 KiB) or connection error.
    #[schema(required = true)]
    last_error: Option<String>,
}

/// One page of deliveries, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveriesAnswer {
    #[schema(value_type = Vec<EndpointDelivery>)]
    deliveries: Vec<Forward>,
    /// The `after` of the next page, or null.
    #[schema(value_type = Option<String>, required = true)]
    next: Option<Cursor>,
}

/// `?status=pending|delivered|failed&limit=N&after=CURSOR`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// The same query, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only read by the OpenAPI derive")]
pub(crate) struct DeliveriesParams {
    /// Only deliveries with this status
    #[param(inline, value_type = Option<String>, pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// Page size, 1 to 1000 (default 100)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// A `next` cursor of an earlier page
    #[param(min_length = 1, max_length = 256)]
    after: Option<String>,
}

fn status_filter(text: Option<String>) -> Result<Option<ForwardStatus>, ApiError> {
    text.map(|text| {
        ForwardStatus::from_name(&text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                format!("status must be pending, delivered or failed, got {text:?}"),
            )
        })
    })
    .transpose()
}

fn forward_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("a delivery id is a whole number, got {text:?}"),
        )
    })
}

fn no_delivery(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "delivery_not_found",
        format!("no delivery has id {id}"),
    )
}

async fn list(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    query: Option<&str>,
) -> Result<Json<DeliveriesAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let query: DeliveriesQuery = parse_query(query)?;
    let status = status_filter(query.status)?;
    let page = page_of(query.limit, query.after)?;
    let page = app.forwards()?.forwards(&client, status, &page).await?;
    Ok(Json(DeliveriesAnswer {
        deliveries: page.items,
        next: page.next,
    }))
}

/// Retries forward `id`, when it belongs to `owner` (if given): another
/// client's delivery is answered as a missing one.
async fn retry(app: &App, id: u64, owner: Option<&ClientId>) -> Result<Response, ApiError> {
    let forwards = app.forwards()?;
    if let Some(owner) = owner {
        let found = forwards.forward(id).await?;
        if found.is_none_or(|f| &f.client != owner) {
            return Err(no_delivery(id));
        }
    }
    let retried = forwards
        .retry_forward(id)
        .await?
        .ok_or_else(|| no_delivery(id))?;
    tracing::info!(id, "delivery retried by hand");
    Ok((StatusCode::ACCEPTED, Json(retried)).into_response())
}

/// `GET /api/admin/clients/{userId}/deliveries`: the client's deliveries.
#[utoipa::path(
    get,
    path = "/api/admin/clients/{userId}/deliveries",
    operation_id = "list_deliveries",
    tag = "forwarding",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        DeliveriesParams,
    ),
    responses(
        (status = 200, description = "One page of the client's deliveries, oldest first", body = DeliveriesAnswer),
        (status = 400, description = "Invalid `userId`, `status`, `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No such route, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_list(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveriesAnswer>, ApiError> {
    list(&app, path, query.as_deref()).await
}

/// `POST /api/admin/deliveries/{id}/retry`: attempted again now, whatever
/// its status.
#[utoipa::path(
    post,
    path = "/api/admin/deliveries/{id}/retry",
    operation_id = "retry_delivery",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "The delivery's id", example = 1)),
    responses(
        (status = 202, description = "Due now; a worker attempts it shortly", body = EndpointDelivery),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No delivery has this id, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_retry(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = forward_id(&path_segment(path)?)?;
    retry(&app, id, None).await
}

/// `GET /api/clients/{userId}/deliveries`: the client's own deliveries.
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/deliveries",
    operation_id = "list_own_deliveries",
    tag = "forwarding",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        DeliveriesParams,
    ),
    responses(
        (status = 200, description = "One page of the client's deliveries, oldest first", body = DeliveriesAnswer),
        (status = 400, description = "Invalid `userId`, `status`, `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No such route, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_list(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveriesAnswer>, ApiError> {
    list(&app, path, query.as_deref()).await
}

/// `POST /api/clients/{userId}/deliveries/{id}/retry`: the client retries
/// one of its own deliveries.
#[utoipa::path(
    post,
    path = "/api/clients/{userId}/deliveries/{id}/retry",
    operation_id = "retry_own_delivery",
    tag = "forwarding",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        ("id" = u64, Path, description = "The delivery's id", example = 1),
    ),
    responses(
        (status = 202, description = "Due now; a worker attempts it shortly", body = EndpointDelivery),
        (status = 400, description = "Invalid `userId` or id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "The client has no delivery with this id, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_retry(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((user, id)) =
        path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let client = client_id(&user)?;
    retry(&app, forward_id(&id)?, Some(&client)).await
}
