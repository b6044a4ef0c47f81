//! The one error type every handler returns, rendered as
//! `{"error": "<code>", "message": "..."}` plus the fields specific to it.

use std::time::Duration;

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ibiki_core::{Conflict, InvalidEntry, NormalizeError, StoreError};
use serde::Serialize;

use crate::metrics::StoreErrorKind;

/// An error answer: a status, a stable machine-readable code and a message
/// for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Details>,
    store_error: Option<StoreErrorKind>,
    /// `Retry-After`, in whole seconds.
    retry_after: Option<u64>,
}

/// A response extension: the answer reports a store error of this kind, for
/// the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailed(pub(crate) StoreErrorKind);

/// The extra fields some errors carry next to `error` and `message`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Details {
    Invalid { invalid: Vec<InvalidEntry> },
    Conflicts { conflicts: Vec<Conflict> },
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    message: &'a str,
    #[serde(flatten)]
    details: Option<&'a Details>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            store_error: None,
            retry_after: None,
        }
    }

    /// The same error, telling the caller to wait `after` before retrying
    /// (`Retry-After`, in whole seconds).
    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after.as_secs());
        self
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: missing or wrong credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 413: the body is larger than the route accepts.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 415: a body in a format the route does not read.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {expected}"),
        )
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let kind = StoreErrorKind::of(&error);
        Self {
            store_error: Some(kind),
            ..Self::from_store_error(error)
        }
    }
}

impl ApiError {
    fn from_store_error(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::Conflict(conflicts) => Self {
                details: Some(Details::Conflicts { conflicts }),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "phone_number_conflict",
                    format!("{message}; nothing was changed"),
                )
            },
            StoreError::InvalidCursor => Self::bad_request(
                "invalid_cursor",
                "`after` is not a cursor this server issued",
            ),
            StoreError::NoSuchReply(_) => {
                Self::new(StatusCode::NOT_FOUND, "reply_not_found", message)
            }
            StoreError::NotHeld(_) => Self::new(
                StatusCode::CONFLICT,
                "reply_not_held",
                format!("{message}; nothing was changed"),
            ),
            StoreError::Unowned(_) => Self::new(
                StatusCode::CONFLICT,
                "phone_number_unassigned",
                format!("{message}; nothing was changed"),
            ),
            // The store's own failure: log it here, where every path meets, and
            // answer "retry later" without leaking backend details.
            failure => {
                log_store_failure(&failure);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable; retry later",
                )
            }
        }
    }
}

/// `Unavailable` may heal by itself (warn); `Backend` needs a person (error).
fn log_store_failure(failure: &StoreError) {
    match failure {
        StoreError::Unavailable(_) => tracing::warn!(error = %failure, "store unavailable"),
        _ => tracing::error!(error = %failure, "store failure"),
    }
}

impl From<NormalizeError> for ApiError {
    fn from(error: NormalizeError) -> Self {
        let message = error.to_string();
        match error {
            NormalizeError::Invalid(invalid) => Self {
                details: Some(Details::Invalid { invalid }),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_phone_numbers",
                    format!("{message}; nothing was changed"),
                )
            },
            NormalizeError::TooManyNumbers { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_phone_numbers",
                message,
            ),
            NormalizeError::InputTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "phone_numbers_too_large",
                message,
            ),
            // `NormalizeError` is non-exhaustive: a future reason is still the
            // input's fault.
            _ => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_phone_numbers",
                message,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            message: &self.message,
            details: self.details.as_ref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(kind) = self.store_error {
            response.extensions_mut().insert(StoreFailed(kind));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
