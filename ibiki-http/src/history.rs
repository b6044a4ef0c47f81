//! A number's ownership history: who owned it when.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use ibiki_core::{Cursor, HistoryEvent, PhoneNumber};
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::{lookup_number, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::{PageParams, page_request};

/// One page of a number's ownership changes, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryAnswer {
    /// The number, E.164.
    #[schema(value_type = String)]
    phone_number: PhoneNumber,
    /// Who gained or lost the number, and when, oldest first.
    #[schema(value_type = Vec<crate::openapi::HistoryEvent>)]
    events: Vec<HistoryEvent>,
    /// The `after` of the next page: the position of this page's last
    /// event, or null for an empty page. Later changes appear after it.
    #[schema(value_type = Option<String>, required = true)]
    next: Option<Cursor>,
}

/// `GET /api/admin/numbers/{phoneNumber}/history?limit=N&after=CURSOR`:
/// every client that gained or lost the number, and when, oldest first.
/// The number is read like the route lookup reads it.
#[utoipa::path(
    get,
    path = "/api/admin/numbers/{phoneNumber}/history",
    tag = "admin",
    security(("bearer" = [])),
    params(
        (
            "phoneNumber" = String, Path, min_length = 1, example = "+14155550100",
            description = "The number, read like the webhook reads a `to` (URL-encode `+` as `%2B`)"
        ),
        PageParams,
    ),
    responses(
        (status = 200, description = "One page of the number's ownership changes", body = HistoryAnswer),
        (status = 400, description = "Not a phone number; invalid `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No such route (an empty number)", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<HistoryAnswer>, ApiError> {
    let number = lookup_number(app.normalizer(), &path_segment(path)?)?;
    let page = page_request(query.as_deref())?;
    let listed = app.store().history(number, &page).await?;
    Ok(Json(HistoryAnswer {
        phone_number: number,
        events: listed.items,
        next: listed.next,
    }))
}
