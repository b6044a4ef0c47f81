//! `GET /api/clients/{userId}/messages`: a client's inbox, page by page.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use ibiki_core::{Cursor, Page, StoredReply};
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::{client_id, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::{PageParams, page_request};

/// One page of replies, oldest first, and where to continue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessagesAnswer {
    /// The replies, oldest first.
    #[schema(value_type = Vec<crate::openapi::StoredReply>)]
    messages: Vec<StoredReply>,
    /// The `after` of the next page: the position of the last reply, or null
    /// when there is none yet. Replies that arrive later appear after it.
    #[schema(value_type = Option<String>, required = true)]
    next: Option<Cursor>,
}

impl From<Page<StoredReply>> for MessagesAnswer {
    fn from(page: Page<StoredReply>) -> Self {
        Self {
            messages: page.items,
            next: page.next,
        }
    }
}

/// `GET /api/clients/{userId}/messages?limit=N&after=CURSOR`.
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/messages",
    tag = "inbox",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        PageParams,
    ),
    responses(
        (status = 200, description = "One page of the client's replies", body = MessagesAnswer),
        (status = 400, description = "Invalid `userId`, `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No such route (an empty `userId`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn messages(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<MessagesAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let page = page_request(query.as_deref())?;
    Ok(Json(app.store().inbox(&client, &page).await?.into()))
}
