//! Why a provider's webhook request was refused, and the status that says so.

use http::StatusCode;
use ibiki_core::BoxError;
use std::borrow::Cow;

/// Why a webhook request was refused.
///
/// Every variant maps to one HTTP status through [`kind`](Self::kind); the
/// signature errors all answer `401` so that a caller learns nothing about
/// which part of a forged request was wrong beyond what the message says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature header (or parameter) is absent.
    #[error("the {header} signature is missing")]
    MissingSignature {
        /// The header or parameter that should carry it.
        header: &'static str,
    },
    /// The signature does not match the request.
    #[error("the signature does not match the request")]
    BadSignature,
    /// The signature is present but cannot be read (bad base64, bad hex...).
    #[error("the {header} signature is malformed")]
    MalformedSignature {
        /// The header or parameter carrying it.
        header: &'static str,
    },
    /// No secret is configured and signatures are required: every request is
    /// refused.
    #[error("{provider} requests cannot be verified: no secret is configured")]
    SignaturesRequired {
        /// The provider's name.
        provider: &'static str,
    },
    /// The signed timestamp is too far from the server's clock: a replay, or a
    /// clock that drifted.
    #[error(
        "the signature timestamp is {age_secs} s away from the server's clock (at most {tolerance_secs} s)"
    )]
    StaleTimestamp {
        /// Seconds between the signed timestamp and the server's clock.
        age_secs: i64,
        /// The largest distance accepted.
        tolerance_secs: u64,
    },
    /// The provider never sends this method.
    #[error("{provider} does not send {method} requests")]
    MethodNotAllowed {
        /// The provider's name.
        provider: &'static str,
        /// The method received.
        method: http::Method,
    },
    /// The body's content type is not one the provider sends.
    #[error("{provider} does not send {content_type:?} bodies")]
    UnsupportedContentType {
        /// The provider's name.
        provider: &'static str,
        /// The content type received (empty when absent).
        content_type: String,
    },
    /// The body is larger than any the provider sends.
    #[error("the body is {len} bytes long, at most {max} are accepted")]
    TooLarge {
        /// The body's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The body cannot be decoded (not JSON, not a form, wrong shape).
    #[error("the {what} cannot be decoded: {source}")]
    Malformed {
        /// What was being decoded (`"JSON body"`, `"form body"`...).
        what: &'static str,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// A field the provider always sends is absent.
    #[error("the {field} field is missing")]
    MissingField {
        /// The field's name as the provider spells it.
        field: Cow<'static, str>,
    },
    /// A field is present but not acceptable (too long, control characters).
    #[error("the {field} field is invalid: {source}")]
    InvalidField {
        /// The field's name as the provider spells it.
        field: Cow<'static, str>,
        /// Why it was refused.
        #[source]
        source: BoxError,
    },
}

/// The class of a [`WebhookError`]: which HTTP status answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `401`: the request is not proven to come from the provider.
    Unauthorized,
    /// `400`: the request is not one the provider sends.
    BadRequest,
    /// `405`: the provider never uses this method.
    MethodNotAllowed,
    /// `413`: the body is too large.
    PayloadTooLarge,
    /// `415`: the body's content type is not one the provider sends.
    UnsupportedMediaType,
}

impl ErrorKind {
    /// The HTTP status answering this kind of error.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }
}

impl WebhookError {
    /// A [`Malformed`](Self::Malformed) error.
    pub fn malformed(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Malformed {
            what,
            source: source.into(),
        }
    }

    /// A [`MissingField`](Self::MissingField) error.
    pub fn missing(field: impl Into<Cow<'static, str>>) -> Self {
        Self::MissingField {
            field: field.into(),
        }
    }

    /// An [`InvalidField`](Self::InvalidField) error.
    pub fn invalid(field: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::InvalidField {
            field: field.into(),
            source: source.into(),
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingSignature { .. }
            | Self::BadSignature
            | Self::MalformedSignature { .. }
            | Self::SignaturesRequired { .. }
            | Self::StaleTimestamp { .. } => ErrorKind::Unauthorized,
            Self::MethodNotAllowed { .. } => ErrorKind::MethodNotAllowed,
            Self::UnsupportedContentType { .. } => ErrorKind::UnsupportedMediaType,
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::Malformed { .. } | Self::MissingField { .. } | Self::InvalidField { .. } => {
                ErrorKind::BadRequest
            }
        }
    }

    /// The HTTP status answering this error.
    pub fn status(&self) -> StatusCode {
        self.kind().status()
    }

    /// A stable machine-readable code for error bodies
    /// (`"missing_signature"`, `"stale_timestamp"`...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature { .. } => "missing_signature",
            Self::BadSignature | Self::MalformedSignature { .. } => "invalid_signature",
            Self::SignaturesRequired { .. } => "signatures_required",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnsupportedContentType { .. } => "unsupported_media_type",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Malformed { .. } => "malformed_body",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn signature_errors_are_unauthorized() {
        for error in [
            WebhookError::MissingSignature { header: "X" },
            WebhookError::BadSignature,
            WebhookError::MalformedSignature { header: "X" },
            WebhookError::SignaturesRequired { provider: "p" },
            WebhookError::StaleTimestamp {
                age_secs: 900,
                tolerance_secs: 300,
            },
        ] {
            assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{error}");
        }
    }

    #[test]
    fn body_errors_are_bad_requests_and_keep_their_cause() {
        let error = WebhookError::malformed("JSON body", "expected value");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error.to_string(),
            "the JSON body cannot be decoded: expected value"
        );
        assert!(error.source().is_some());
        assert_eq!(WebhookError::missing("To").code(), "missing_field");
        assert_eq!(
            WebhookError::TooLarge { len: 2, max: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
