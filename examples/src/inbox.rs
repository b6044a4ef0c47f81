//! The listings: a client's inbox and the held replies.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use ibiki_core::{Cursor, Page, StoredReply};
use serde::Serialize;

use crate::admin::{client_id, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::request::page_request;

/// One page of replies, oldest first, and where to continue.
#[derive(Debug, Serialize)]
pub(crate) struct MessagesAnswer {
    messages: Vec<StoredReply>,
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
pub(crate) async fn messages(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<MessagesAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let page = page_request(query.as_deref())?;
    Ok(Json(app.store().inbox(&client, &page).await?.into()))
}

/// `GET /api/admin/held?limit=N&after=CURSOR`: replies nobody owns yet.
pub(crate) async fn held(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<MessagesAnswer>, ApiError> {
    let page = page_request(query.as_deref())?;
    Ok(Json(app.store().held(&page).await?.into()))
}
