//! The admin routes: assign numbers, read a client's numbers, look up a
//! number's owner.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use ibiki_core::{Change, ClientId, Cursor, Normalizer, PhoneNumber, PhoneNumbersInput};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::app::{ADMIN_BODY_LIMIT, App};
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::{
    BodyFormat, PageParams, body_bytes, body_format, page_of, parse_json, parse_query,
};

/// The body of `POST /api/admin/update-phone-numbers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateRequest {
    /// The client: 1 to 128 bytes, no control characters.
    #[schema(example = "123")]
    user_id: String,
    // Read as any JSON value so a wrong shape gets a message naming both
    // accepted shapes, not serde's "did not match any variant".
    phone_numbers: serde_json::Value,
}

/// The client's numbers after the update.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateAnswer {
    /// The client.
    #[schema(value_type = String)]
    user_id: ClientId,
    /// Its whole set, E.164, sorted.
    #[schema(value_type = Vec<String>)]
    phone_numbers: Vec<PhoneNumber>,
    /// How many numbers it has.
    #[schema(value_type = u64)]
    count: usize,
    /// How many held replies the new numbers released into its inbox.
    released: u64,
}

/// `POST /api/admin/update-phone-numbers`: makes the list the client's whole
/// set. All or nothing: a bad entry (422) or another client's number (409)
/// changes nothing.
#[utoipa::path(
    post,
    path = "/api/admin/update-phone-numbers",
    tag = "admin",
    security(("bearer" = [])),
    request_body(content = UpdateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The list is now the client's whole set", body = UpdateAnswer),
        (status = 400, description = "Unreadable JSON, wrong shape or invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 409, description = "Another client owns some of the numbers; nothing changed", body = ErrorBody),
        (status = 413, description = "Body or list larger than the limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid or too many numbers; nothing changed", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn update_phone_numbers(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UpdateAnswer>, ApiError> {
    if body_format(&headers) != Some(BodyFormat::Json) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = body_bytes(body, ADMIN_BODY_LIMIT)?;
    let request: UpdateRequest = parse_json(&body, "invalid_json")?;
    let client = client_id(&request.user_id)?;
    let input = phone_numbers_input(request.phone_numbers)?;
    let numbers = app.normalizer().normalize_list(&input)?;
    let change = app.store().replace_numbers(&client, &numbers).await?;
    app.metrics().assignment_changed(Change::Replace, &change);
    tracing::info!(
        client = %client,
        count = change.count(),
        added = change.added.len(),
        removed = change.removed.len(),
        released = change.released,
        "phone numbers updated"
    );
    Ok(Json(UpdateAnswer {
        count: change.count(),
        released: change.released,
        user_id: change.client,
        phone_numbers: change.numbers,
    }))
}

fn phone_numbers_input(value: serde_json::Value) -> Result<PhoneNumbersInput, ApiError> {
    serde_json::from_value(value).map_err(|_| {
        ApiError::bad_request(
            "invalid_json",
            "phoneNumbers must be a comma-separated string or an array of strings",
        )
    })
}

/// A `userId` from a body or a path: 400 when it is not a valid id.
pub(crate) fn client_id(text: &str) -> Result<ClientId, ApiError> {
    ClientId::new(text)
        .map_err(|e| ApiError::bad_request("invalid_user_id", format!("userId: {e}")))
}

/// A path segment, percent-decoded; 400 when it is not UTF-8.
pub(crate) fn path_segment(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(segment)| segment)
        .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))
}

/// A client's numbers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NumbersAnswer {
    /// The client.
    #[schema(value_type = String)]
    user_id: ClientId,
    /// Its numbers, E.164, sorted; empty for an unknown client.
    #[schema(value_type = Vec<String>)]
    phone_numbers: Vec<PhoneNumber>,
}

/// `GET /api/admin/clients/{userId}/phone-numbers`: empty for an unknown client.
#[utoipa::path(
    get,
    path = "/api/admin/clients/{userId}/phone-numbers",
    tag = "admin",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The client's numbers", body = NumbersAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No such route (an empty `userId`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn phone_numbers(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<NumbersAnswer>, ApiError> {
    numbers_of(&app, path).await
}

/// `GET /api/clients/{userId}/phone-numbers`: the same answer, for the
/// client itself (read-only).
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/phone-numbers",
    operation_id = "client_phone_numbers",
    tag = "inbox",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The client", min_length = 1, example = "123")),
    responses(
        (status = 200, description = "The client's numbers", body = NumbersAnswer),
        (status = 400, description = "Invalid `userId`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No such route (an empty `userId`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn client_phone_numbers(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<NumbersAnswer>, ApiError> {
    numbers_of(&app, path).await
}

async fn numbers_of(
    app: &App,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<NumbersAnswer>, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let phone_numbers = app.store().numbers_of(&client).await?;
    Ok(Json(NumbersAnswer {
        user_id: client,
        phone_numbers,
    }))
}

/// Who owns a number, now or at `at`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RouteAnswer {
    /// The number, E.164.
    #[schema(value_type = String)]
    phone_number: PhoneNumber,
    /// Its owner (at `at`, when asked); null when nobody owns it.
    #[schema(value_type = Option<String>, required = true)]
    user_id: Option<ClientId>,
    /// The instant asked about (RFC 3339), when the query gave one.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = String, format = DateTime, nullable = false)]
    at: Option<OffsetDateTime>,
}

/// `?at=` of the route lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AtQuery {
    /// An RFC 3339 instant (`2024-01-02T09:00:00Z`; URL-encode `+` of an
    /// offset as `%2B`): the owner at that instant, from the number's
    /// history. At the instant of a change, the owner after it.
    #[param(value_type = Option<String>, format = DateTime)]
    at: Option<String>,
}

/// `GET /api/admin/routes/{phoneNumber}[?at=RFC3339]`: who owns the number,
/// now or at `at`. The number is read like the webhook reads a `to`
/// ([`Normalizer::canonicalize_inbound`](ibiki_core::Normalizer::canonicalize_inbound)),
/// so any number a reply can carry can be looked up (`%2B14155550100`,
/// `+1 415 555 0100`, `+44 020 7946 0958` with its trunk zero kept, …).
#[utoipa::path(
    get,
    path = "/api/admin/routes/{phoneNumber}",
    tag = "admin",
    security(("bearer" = [])),
    params(
        (
            "phoneNumber" = String, Path, min_length = 1, example = "+14155550100",
            description = "The number, read like the webhook reads a `to` (URL-encode `+` as `%2B`)"
        ),
        AtQuery,
    ),
    responses(
        (status = 200, description = "The number and its owner", body = RouteAnswer),
        (status = 400, description = "Not a phone number, `at` is not an RFC 3339 time, or an unknown query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 404, description = "No such route (an empty number)", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn route(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<RouteAnswer>, ApiError> {
    let number = lookup_number(app.normalizer(), &path_segment(path)?)?;
    let at = at_query(query.as_deref())?;
    let owner = match at {
        None => app.store().owner_of(number).await?,
        Some(at) => app.store().owner_at(number, at).await?,
    };
    Ok(Json(RouteAnswer {
        phone_number: number,
        user_id: owner,
        at,
    }))
}

/// A number from a path, read as the webhook reads a `to`; 400 with the
/// admin reading's reason when it is no number either way.
pub(crate) fn lookup_number(normalizer: &Normalizer, raw: &str) -> Result<PhoneNumber, ApiError> {
    normalizer.canonicalize_inbound(raw).or_else(|_| {
        normalizer.normalize(raw).map_err(|reason| {
            ApiError::bad_request("invalid_phone_number", format!("phone number: {reason}"))
        })
    })
}

/// `?at=`: an RFC 3339 instant, or none.
fn at_query(query: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    let query: AtQuery = parse_query(query)?;
    let Some(text) = query.at else {
        return Ok(None);
    };
    // An offset's `+` sent unencoded arrives as a space.
    let parsed = OffsetDateTime::parse(&text, &Rfc3339)
        .or_else(|e| OffsetDateTime::parse(&text.replace(' ', "+"), &Rfc3339).map_err(|_| e));
    parsed.map(Some).map_err(|e| {
        ApiError::bad_request(
            "invalid_at",
            format!(
                "`at` must be an RFC 3339 time such as 2024-01-02T09:00:00Z, got {text:?}: {e}"
            ),
        )
    })
}

/// A client and its numbers, as `GET /api/admin/clients` lists it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientNumbers {
    /// The client.
    #[schema(value_type = String)]
    user_id: ClientId,
    /// Its numbers, E.164, sorted; never empty.
    #[schema(value_type = Vec<String>)]
    phone_numbers: Vec<PhoneNumber>,
}

/// One page of clients, ordered by `userId`, and where to continue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClientsAnswer {
    /// The clients that own at least one number, ordered by `userId`.
    clients: Vec<ClientNumbers>,
    /// The `after` of the next page: the position of this page's last
    /// client, or null for an empty page.
    #[schema(value_type = Option<String>, required = true)]
    next: Option<Cursor>,
}

/// `?prefix=&limit=&after=` of the client list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsQuery {
    prefix: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// The client list's query as the OpenAPI document describes it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only read by the OpenAPI derive")]
pub(crate) struct ClientsParams {
    /// Only the clients whose `userId` starts with this (case-sensitive)
    #[param(max_length = 256)]
    prefix: Option<String>,
}

/// Longest `prefix`, in bytes: no client id is longer.
const MAX_PREFIX_BYTES: usize = 256;

/// `GET /api/admin/clients?prefix=P&limit=N&after=CURSOR`: every client that
/// owns a number (whose `userId` starts with `prefix`), ordered by `userId`,
/// with its numbers, read in one store call.
#[utoipa::path(
    get,
    path = "/api/admin/clients",
    tag = "admin",
    security(("bearer" = [])),
    params(ClientsParams, PageParams),
    responses(
        (status = 200, description = "One page of clients", body = ClientsAnswer),
        (status = 400, description = "Invalid `prefix`, `limit`, `after` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn clients(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<ClientsAnswer>, ApiError> {
    let query: ClientsQuery = parse_query(query.as_deref())?;
    let page = page_of(query.limit, query.after)?;
    let prefix = query.prefix.unwrap_or_default();
    if prefix.len() > MAX_PREFIX_BYTES {
        return Err(ApiError::bad_request(
            "invalid_prefix",
            format!("`prefix` is at most {MAX_PREFIX_BYTES} bytes, as a client id"),
        ));
    }
    let listed = app.store().list_clients(&prefix, &page).await?;
    let clients = listed
        .items
        .into_iter()
        .map(|summary| ClientNumbers {
            user_id: summary.client,
            phone_numbers: summary.numbers,
        })
        .collect();
    Ok(Json(ClientsAnswer {
        clients,
        next: listed.next,
    }))
}
