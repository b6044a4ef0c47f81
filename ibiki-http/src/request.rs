//! Reading request bodies, content types and query strings into JSON errors
//! instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use ibiki_core::{Cursor, PageRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::body_deadline::{body_timeout, is_body_timeout};
use crate::error::ApiError;

/// The body formats the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// `application/json` or any `application/*+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// The format named by the `Content-Type` header, ignoring parameters such as
/// `charset`; `None` for a missing or unknown type.
pub(crate) fn body_format(headers: &HeaderMap) -> Option<BodyFormat> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Some(BodyFormat::Form),
        "application/json" => Some(BodyFormat::Json),
        other if other.starts_with("application/") && other.ends_with("+json") => {
            Some(BodyFormat::Json)
        }
        _ => None,
    }
}

/// The raw body, or 413 past the route's limit, or 408 past the body read
/// timeout.
pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(limit),
        _ if is_body_timeout(&rejection) => body_timeout(),
        _ => ApiError::bad_request("unreadable_body", rejection.body_text()),
    })
}

/// Parses a JSON body; a syntax, type or missing-field error is a 400 whose
/// message says where.
pub(crate) fn parse_json<T: DeserializeOwned>(
    body: &[u8],
    code: &'static str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(code, format!("invalid JSON body: {e}")))
}

/// Parses a form body the same way.
pub(crate) fn parse_form<T: DeserializeOwned>(
    body: &[u8],
    code: &'static str,
) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::bad_request(code, format!("invalid form body: {e}")))
}

/// A route's query string as `T`, whose fields are the parameters it
/// accepts: anything else (a misspelled `limt`) is a 400 naming it and the
/// accepted ones, never silently ignored.
pub(crate) fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| ApiError::bad_request("invalid_query", format!("invalid query string: {e}")))
}

/// `?limit=N&after=CURSOR` of the listings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// The same query as the OpenAPI document describes it for every listing.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only read by the OpenAPI derive")]
pub(crate) struct PageParams {
    /// Page size, 1 to 1000 (default 100)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// A `next` cursor of an earlier page
    #[param(min_length = 1, max_length = 256)]
    after: Option<String>,
}

/// Default page size of the listings.
pub(crate) const DEFAULT_PAGE_LIMIT: usize = 100;

/// Reads `limit` (default [`DEFAULT_PAGE_LIMIT`], 1 to 1000) and `after` from
/// a query string.
pub(crate) fn page_request(query: Option<&str>) -> Result<PageRequest, ApiError> {
    let query: PageQuery = parse_query(query)?;
    page_of(query.limit, query.after)
}

/// A page from the `limit` and `after` parameters of a query that has more.
pub(crate) fn page_of(
    limit: Option<String>,
    after: Option<String>,
) -> Result<PageRequest, ApiError> {
    let query = PageQuery { limit, after };
    let limit = match query.limit {
        None => DEFAULT_PAGE_LIMIT,
        Some(text) => text.parse().map_err(|_| invalid_limit(&text))?,
    };
    let after = match query.after {
        None => None,
        Some(text) => Some(Cursor::new(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "`after` is not a cursor this server issued",
            )
        })?),
    };
    PageRequest::new(limit, after).map_err(|e| invalid_limit(&e.limit.to_string()))
}

fn invalid_limit(text: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_limit",
        format!(
            "`limit` must be a whole number from 1 to {}, got {text:?}",
            ibiki_core::MAX_PAGE_LIMIT
        ),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn format_of(content_type: &str) -> Option<BodyFormat> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header"),
        );
        body_format(&headers)
    }

    #[test]
    fn content_types() {
        assert_eq!(format_of("application/json"), Some(BodyFormat::Json));
        assert_eq!(
            format_of("Application/JSON; charset=utf-8"),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            format_of("application/vnd.api+json"),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            format_of("application/x-www-form-urlencoded; charset=UTF-8"),
            Some(BodyFormat::Form)
        );
        assert_eq!(format_of("text/plain"), None);
        assert_eq!(body_format(&HeaderMap::new()), None);
    }

    #[test]
    fn page_queries() {
        let first = page_request(None).expect("no query");
        assert_eq!((first.limit(), first.after()), (DEFAULT_PAGE_LIMIT, None));
        let next = page_request(Some("limit=5&after=42")).expect("valid");
        assert_eq!(next.limit(), 5);
        assert_eq!(next.after().map(Cursor::as_str), Some("42"));
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=x",
            "after=",
            "limit=1&limit=2",
        ] {
            assert_eq!(
                page_request(Some(bad)).map_err(|e| e.status()).err(),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
    }
}
