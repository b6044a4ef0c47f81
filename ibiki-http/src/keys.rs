//! Clients' API keys, managed by the operator:
//! `POST`/`GET /api/admin/clients/{userId}/keys` and
//! `DELETE /api/admin/clients/{userId}/keys/{id}`.
//!
//! A key is shown once, in the answer that creates it; the store keeps its
//! digest ([`KeyStore`](ibiki_core::KeyStore)). The routes answer 404 when
//! the app's [`Authenticator`](crate::Authenticator) keeps no keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ibiki_core::{DynKeyStore, KeyInfo, NewKey};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::admin::{client_id, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::openapi::ErrorBody;

/// A key just created: the only answer that shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedKey {
    /// The key's id, for revoking it.
    id: u64,
    /// The key, `ibk_…`: shown this once.
    #[schema(example = "ibk_Q2xpZW50S2V5RXhhbXBsZUJ5dGVzMTIzNDU2Nzg5MA")]
    key: String,
    /// Its first characters, as the key list shows them.
    #[schema(example = "ibk_Q2xpZW50")]
    prefix: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

impl From<NewKey> for CreatedKey {
    fn from(new: NewKey) -> Self {
        Self {
            id: new.info.id,
            key: new.key.expose().to_owned(),
            prefix: new.info.prefix,
            created_at: new.info.created_at,
        }
    }
}

/// A listed key: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListedKey {
    /// The key's id.
    id: u64,
    /// Its first characters.
    prefix: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// When it last opened a request, up to a minute late; null before its
    /// first use.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    last_used_at: Option<OffsetDateTime>,
}

impl From<KeyInfo> for ListedKey {
    fn from(info: KeyInfo) -> Self {
        Self {
            id: info.id,
            prefix: info.prefix,
            created_at: info.created_at,
            last_used_at: info.last_used_at,
        }
    }
}

/// A client's keys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<ListedKey>,
}

fn key_store(app: &App) -> Result<&DynKeyStore, ApiError> {
    app.auth().key_store().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "keys_not_enabled",
            "this server's authentication keeps no client keys",
        )
    })
}

/// `POST /api/admin/clients/{userId}/keys`: a new key for the client.
#[utoipa::path(
    post,
    path = "/api/admin/clients/{userId}/keys",
    operation_id = "create_key",
    tag = "admin",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedKey),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: keys are the operator's", body = ErrorBody),
        (status = 404, description = "No such route, or the server keeps no client keys", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let created = key_store(&app)?.create_key(&client).await?;
    // The id and prefix identify it in the log; the key never appears.
    tracing::info!(
        id = created.info.id,
        prefix = created.info.prefix,
        "client key created"
    );
    Ok((StatusCode::CREATED, Json(CreatedKey::from(created))).into_response())
}

/// `GET /api/admin/clients/{userId}/keys`: the client's keys, never the keys
/// themselves.
#[utoipa::path(
    get,
    path = "/api/admin/clients/{userId}/keys",
    operation_id = "list_keys",
    tag = "admin",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The client's keys, oldest first", body = KeyList),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: keys are the operator's", body = ErrorBody),
        (status = 404, description = "No such route, or the server keeps no client keys", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<KeyList>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let keys = key_store(&app)?.keys_of(&client).await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(ListedKey::from).collect(),
    }))
}

/// `DELETE /api/admin/clients/{userId}/keys/{id}`: revokes the key at once.
#[utoipa::path(
    delete,
    path = "/api/admin/clients/{userId}/keys/{id}",
    operation_id = "revoke_key",
    tag = "admin",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        ("id" = u64, Path, minimum = 0, description = "The key's `id`", example = 7),
    ),
    responses(
        (status = 204, description = "Revoked: the key opens nothing from now on"),
        (status = 400, description = "Invalid `userId` or id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: keys are the operator's", body = ErrorBody),
        (status = 404, description = "The client has no key with this id", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (user_id, id) = path
        .map(|Path(segments)| segments)
        .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))?;
    let client = client_id(&user_id)?;
    let id: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("a key id is a whole number, got {id:?}"),
        )
    })?;
    if !key_store(&app)?.revoke_key(&client, id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            "this client has no key with this id",
        ));
    }
    tracing::info!(id, "client key revoked");
    Ok(StatusCode::NO_CONTENT)
}
