//! A client's endpoint, where its replies are forwarded:
//! `PUT`/`GET`/`DELETE /api/admin/clients/{userId}/endpoint`, its secret and
//! rotation, and a replay; the client's own `GET`/`PUT`, secret and rotation
//! under `/api/clients/{userId}/endpoint`.
//!
//! The routes answer 404 `forwarding_not_enabled` when the app has no
//! [`ForwardStore`](ibiki_core::ForwardStore) ([`App::with_forwarding`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ibiki_core::{ClientId, EndpointSecret, EndpointState, EndpointUrl, EndpointUrlError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::admin::{client_id, path_segment};
use crate::app::{ADMIN_BODY_LIMIT, App};
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::{BodyFormat, body_bytes, body_format, parse_json};

/// `PUT …/endpoint`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutEndpoint {
    /// Where the client's replies are posted: `http` or `https`, a public
    /// host.
    #[schema(example = "https://crm.example.com/ibiki")]
    url: String,
    /// `false` pauses forwarding (replies queue, nothing is dropped);
    /// default `true`.
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// The endpoint as set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointAnswer {
    #[schema(example = "123")]
    user_id: String,
    url: String,
    enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// The signing secret, `whsec_…`: only in the answer that creates the
    /// endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// The endpoint and how forwarding to it goes; never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointStatus {
    #[schema(example = "123")]
    user_id: String,
    url: String,
    enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// Replies waiting for an attempt (or in one).
    pending: u64,
    /// Replies whose every scheduled attempt failed.
    failed: u64,
    /// When a reply was last delivered; null before the first.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    last_delivered_at: Option<OffsetDateTime>,
    /// When the endpoint started failing; null while it is not.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    failing_since: Option<OffsetDateTime>,
}

/// A signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretAnswer {
    /// `whsec_…`
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

/// `POST …/endpoint/replay`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    /// Every inbox reply that arrived at or after this instant is sent again.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    since: OffsetDateTime,
}

/// How many replies a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayAnswer {
    queued: u64,
}

pub(crate) fn no_endpoint(client: &ClientId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "endpoint_not_found",
        format!("client {client} has no endpoint"),
    )
}

fn not_allowed(error: &EndpointUrlError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "endpoint_not_allowed",
        error.to_string(),
    )
}

fn status_of(state: EndpointState) -> EndpointStatus {
    EndpointStatus {
        user_id: state.endpoint.client.to_string(),
        url: state.endpoint.url.to_string(),
        enabled: state.endpoint.enabled,
        created_at: state.endpoint.created_at,
        pending: state.pending,
        failed: state.failed,
        last_delivered_at: state.last_delivered_at,
        failing_since: state.failing_since,
    }
}

fn new_secret() -> Result<EndpointSecret, ApiError> {
    EndpointSecret::generate().map_err(|e| {
        tracing::error!(error = %e, "no randomness for an endpoint secret");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "no secret could be made; retry later",
        )
    })
}

async fn put(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EndpointAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    if body_format(headers) != Some(BodyFormat::Json) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = body_bytes(body, ADMIN_BODY_LIMIT)?;
    let request: PutEndpoint = parse_json(&body, "invalid_json")?;
    let url =
        EndpointUrl::parse(&request.url, app.endpoint_policy()).map_err(|e| not_allowed(&e))?;
    let put = app
        .forwards()?
        .put_endpoint(&client, &url, request.enabled, new_secret()?)
        .await?;
    // The URL is the client's own system: fine to log; the secret never.
    tracing::info!(client = %client, url = %url, enabled = request.enabled, created = put.created_secret.is_some(), "endpoint set");
    Ok(Json(EndpointAnswer {
        user_id: client.to_string(),
        url: put.endpoint.url.to_string(),
        enabled: put.endpoint.enabled,
        created_at: put.endpoint.created_at,
        secret: put.created_secret.map(|s| s.expose().to_owned()),
    }))
}

async fn get(
    app: &App,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EndpointStatus>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let state = app.forwards()?.endpoint(&client).await?;
    state
        .map(|state| Json(status_of(state)))
        .ok_or_else(|| no_endpoint(&client))
}

async fn secret(
    app: &App,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let secrets = app.forwards()?.endpoint_secrets(&client).await?;
    let secrets = secrets.ok_or_else(|| no_endpoint(&client))?;
    Ok(Json(SecretAnswer {
        secret: secrets.current.expose().to_owned(),
    }))
}

async fn rotate(
    app: &App,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let secrets = app
        .forwards()?
        .rotate_secret(&client, new_secret()?)
        .await?;
    let secrets = secrets.ok_or_else(|| no_endpoint(&client))?;
    tracing::info!(client = %client, "endpoint secret rotated");
    Ok(Json(SecretAnswer {
        secret: secrets.current.expose().to_owned(),
    }))
}

/// `PUT /api/admin/clients/{userId}/endpoint`: creates or changes the
/// client's endpoint.
#[utoipa::path(
    put,
    path = "/api/admin/clients/{userId}/endpoint",
    operation_id = "put_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    request_body(content = PutEndpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint; with `secret` when this call created it", body = EndpointAnswer),
        (status = 400, description = "Unreadable JSON or invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No such route, or forwarding is not enabled", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON", body = ErrorBody),
        (status = 422, description = "`endpoint_not_allowed`: not http(s), or a non-public address", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_put(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EndpointAnswer>, ApiError> {
    put(&app, path, &headers, body).await
}

/// `GET /api/admin/clients/{userId}/endpoint`: the endpoint and its state.
#[utoipa::path(
    get,
    path = "/api/admin/clients/{userId}/endpoint",
    operation_id = "get_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The endpoint and how forwarding to it goes", body = EndpointStatus),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "The client has no endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_get(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EndpointStatus>, ApiError> {
    get(&app, path).await
}

/// `DELETE /api/admin/clients/{userId}/endpoint`: stops forwarding; the
/// pending forwards are dropped, the replies stay in the inbox.
#[utoipa::path(
    delete,
    path = "/api/admin/clients/{userId}/endpoint",
    operation_id = "delete_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "The client has no endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_delete(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    if !app.forwards()?.delete_endpoint(&client).await? {
        return Err(no_endpoint(&client));
    }
    tracing::info!(client = %client, "endpoint deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/admin/clients/{userId}/endpoint/secret`.
#[utoipa::path(
    get,
    path = "/api/admin/clients/{userId}/endpoint/secret",
    operation_id = "get_endpoint_secret",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The current signing secret", body = SecretAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "The client has no endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_secret(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    secret(&app, path).await
}

/// `POST /api/admin/clients/{userId}/endpoint/secret/rotate`: a new secret;
/// the previous one keeps signing for 24 hours.
#[utoipa::path(
    post,
    path = "/api/admin/clients/{userId}/endpoint/secret/rotate",
    operation_id = "rotate_endpoint_secret",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The new secret; the previous one signs too for 24 hours", body = SecretAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "The client has no endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_rotate(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    rotate(&app, path).await
}

/// `POST /api/admin/clients/{userId}/endpoint/replay`: sends every inbox
/// reply since an instant again (after an outage longer than the retry
/// schedule).
#[utoipa::path(
    post,
    path = "/api/admin/clients/{userId}/endpoint/replay",
    operation_id = "replay_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    request_body(content = ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "How many replies were queued", body = ReplayAnswer),
        (status = 400, description = "Unreadable JSON, `since` not RFC 3339, or invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "The client has no endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn admin_replay(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReplayAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    if body_format(&headers) != Some(BodyFormat::Json) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = body_bytes(body, ADMIN_BODY_LIMIT)?;
    let request: ReplayRequest = parse_json(&body, "invalid_json")?;
    let queued = app.forwards()?.replay(&client, request.since).await?;
    let queued = queued.ok_or_else(|| no_endpoint(&client))?;
    tracing::info!(client = %client, queued, "replies replayed to the endpoint");
    Ok(Json(ReplayAnswer { queued }))
}

/// `PUT /api/clients/{userId}/endpoint`: the client sets its own endpoint.
#[utoipa::path(
    put,
    path = "/api/clients/{userId}/endpoint",
    operation_id = "put_own_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    request_body(content = PutEndpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint; with `secret` when this call created it", body = EndpointAnswer),
        (status = 400, description = "Unreadable JSON or invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No such route, or forwarding is not enabled", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON", body = ErrorBody),
        (status = 422, description = "`endpoint_not_allowed`: not http(s), or a non-public address", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_put(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EndpointAnswer>, ApiError> {
    put(&app, path, &headers, body).await
}

/// `GET /api/clients/{userId}/endpoint`: the client's own endpoint.
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/endpoint",
    operation_id = "get_own_endpoint",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The endpoint and how forwarding to it goes", body = EndpointStatus),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_get(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EndpointStatus>, ApiError> {
    get(&app, path).await
}

/// `GET /api/clients/{userId}/endpoint/secret`.
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/endpoint/secret",
    operation_id = "get_own_endpoint_secret",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The current signing secret", body = SecretAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_secret(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    secret(&app, path).await
}

/// `POST /api/clients/{userId}/endpoint/secret/rotate`.
#[utoipa::path(
    post,
    path = "/api/clients/{userId}/endpoint/secret/rotate",
    operation_id = "rotate_own_endpoint_secret",
    tag = "forwarding",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The new secret; the previous one signs too for 24 hours", body = SecretAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No endpoint, or forwarding is not enabled", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn own_rotate(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SecretAnswer>, ApiError> {
    rotate(&app, path).await
}
