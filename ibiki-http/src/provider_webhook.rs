//! `/webhooks/{provider}`: each SMS provider's own webhook, verified and
//! decoded by the [`Provider`](ibiki_providers::Provider) registered under
//! that name, and answered the way that provider expects.
//!
//! The replies are recorded before the provider's success answer is sent; if
//! the store fails on any of them, the provider's retry answer is sent
//! instead and the provider delivers the whole request again, whose replies
//! already recorded are recognized by their message ids.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::{ALLOW, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ibiki_core::InboundReply;
use time::OffsetDateTime;

use crate::app::App;
use crate::error::{ApiError, StoreFailed};
use crate::metrics::{StoreErrorKind, UNKNOWN_ROUTE};
use crate::openapi::{ErrorBody, ProviderName};
use crate::request::body_bytes;
use ibiki_providers::{Answer, MAX_BODY_BYTES, Provider, Received, WebhookError, WebhookRequest};

/// `POST /webhooks/{provider}`: one delivery from that provider, verified
/// with its key, recorded, and answered as the provider expects.
#[utoipa::path(
    post,
    path = "/webhooks/{provider}",
    tag = "webhook",
    operation_id = "provider_webhook_post",
    params(
        ("provider" = inline(ProviderName), Path, description = "The provider whose webhook this is"),
    ),
    request_body(
        description = "The provider's own payload, exactly as it posts it: a form (Twilio, \
            Plivo, Vonage, MessageBird) or JSON (Telnyx, Vonage, Sinch, Infobip; a JSON array \
            of events for Bandwidth). Each provider's signature (or, for Bandwidth and \
            Infobip, its Basic credentials) is required when its key is configured.",
        content(
            (HashMap<String, String> = "application/x-www-form-urlencoded"),
            (Value = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "Recorded (or a retry recognized, or an event that is \
            not a message acknowledged): the answer the provider expects, such as an empty \
            TwiML `<Response/>` for Twilio, or an empty `text/plain` body for Telnyx",
            content(
                (String = "text/xml"),
                (String = "application/xml"),
                (String = "text/plain"),
            )),
        (status = 204, description = "Recorded: the answer Vonage expects"),
        (status = 400, description = "Not a payload this provider sends, or a field missing or \
            over its limit", body = ErrorBody),
        (status = 401, description = "Missing, malformed, stale or wrong signature, or no key \
            configured while signatures are required; Bandwidth and Infobip add a \
            `WWW-Authenticate: Basic` challenge", body = ErrorBody),
        (status = 404, description = "No such provider on this server", body = ErrorBody),
        (status = 405, description = "This provider never sends this method", body = ErrorBody),
        (status = 413, description = "Body larger than 256 KiB", body = ErrorBody),
        (status = 415, description = "A content type this provider never sends", body = ErrorBody),
        (status = 503, description = "Not recorded: the store failed; the provider retries"),
    )
)]
pub(crate) async fn receive_post(
    State(app): State<Arc<App>>,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    receive(app, name, request).await
}

/// `GET /webhooks/{provider}`, for the providers that can send a query
/// (Twilio, Vonage, Plivo and MessageBird, as configured in their consoles).
#[utoipa::path(
    get,
    path = "/webhooks/{provider}",
    tag = "webhook",
    operation_id = "provider_webhook_get",
    params(
        ("provider" = inline(ProviderName), Path, description = "The provider whose webhook this is"),
        ("parameters" = Option<HashMap<String, String>>, Query, style = Form, explode,
            description = "The provider's parameters (`msisdn`, `to`, `messageId`, `text`... \
                for Vonage), signed as that provider signs them"),
    ),
    responses(
        (status = 200, description = "Recorded (or a retry recognized): the answer the \
            provider expects", content(
                (String = "text/xml"),
                (String = "application/xml"),
                (String = "text/plain"),
            )),
        (status = 204, description = "Recorded: the answer Vonage expects"),
        (status = 400, description = "Not a query this provider sends, or a field missing or \
            over its limit", body = ErrorBody),
        (status = 401, description = "Missing, malformed, stale or wrong signature, or no key \
            configured while signatures are required", body = ErrorBody),
        (status = 404, description = "No such provider on this server", body = ErrorBody),
        (status = 405, description = "This provider never sends GET requests", body = ErrorBody),
        (status = 503, description = "Not recorded: the store failed; the provider retries"),
    )
)]
pub(crate) async fn receive_get(
    State(app): State<Arc<App>>,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    receive(app, name, request).await
}

async fn receive(
    app: Arc<App>,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Some(provider) = name
        .ok()
        .and_then(|Path(name)| app.providers().get(&name).cloned())
    else {
        app.metrics().rejected(UNKNOWN_ROUTE, "unknown_provider");
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            "no provider of that name on this server",
        )
        .into_response();
    };
    let method = request.method().clone();
    let headers = request.headers().clone();
    let url = public_url(&app, &request);
    let body = match body_bytes(Bytes::from_request(request, &()).await, MAX_BODY_BYTES) {
        Ok(body) => body,
        Err(error) => {
            app.metrics().rejected(provider.name(), error.code());
            return error.into_response();
        }
    };
    let received = {
        let request =
            WebhookRequest::new(&method, &url, &headers, &body, OffsetDateTime::now_utc());
        ibiki_providers::receive(&*provider, app.normalizer(), &request)
    };
    match received {
        Ok(Received::Replies(replies)) => record(&app, &*provider, replies).await,
        Ok(Received::Skipped { event }) => {
            app.metrics().skipped(provider.name());
            tracing::debug!(provider = provider.name(), event, "event skipped");
            answer(provider.success())
        }
        Err(error) => {
            app.metrics().rejected(provider.name(), error.code());
            rejected(&*provider, &error)
        }
    }
}

/// Records every reply; the provider's success answer once all are, its retry
/// answer as soon as one is not.
async fn record(app: &App, provider: &dyn Provider, replies: Vec<InboundReply>) -> Response {
    for reply in replies {
        let message_id = reply.message_id.clone();
        match app.receive(provider.name(), reply).await {
            Ok(receipt) => {
                tracing::debug!(
                    provider = provider.name(),
                    ?message_id,
                    ?receipt,
                    "reply recorded"
                );
            }
            Err(error) => {
                tracing::warn!(
                    provider = provider.name(),
                    ?message_id,
                    error = %error,
                    "reply not recorded: asking the provider to retry"
                );
                let mut response = answer(provider.retry());
                response
                    .extensions_mut()
                    .insert(StoreFailed(StoreErrorKind::of(&error)));
                return response;
            }
        }
    }
    answer(provider.success())
}

/// A refused request: the error's status and a JSON body, plus `Allow` for
/// a method the provider never sends and the provider's `WWW-Authenticate`
/// challenge on a 401.
fn rejected(provider: &dyn Provider, error: &WebhookError) -> Response {
    tracing::debug!(provider = provider.name(), error = %error, "provider webhook refused");
    let mut response =
        ApiError::new(error.status(), error.code(), error.to_string()).into_response();
    // A provider's own strings are checked, not trusted: an invalid one is
    // left out rather than panicking.
    if let Some(challenge) = provider
        .challenge()
        .filter(|_| error.status() == StatusCode::UNAUTHORIZED)
        .and_then(|challenge| HeaderValue::from_str(challenge).ok())
    {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    if matches!(error, WebhookError::MethodNotAllowed { .. }) {
        let allow = provider
            .methods()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(ALLOW, allow);
        }
    }
    response
}

/// The provider's answer as an HTTP response.
///
/// A successful answer other than `204` always has a `Content-Type`: an
/// empty `200` (Telnyx, Bandwidth, Sinch...) is labelled `text/plain`, which
/// no provider reads, so that the answer matches its OpenAPI description.
fn answer(answer: Answer) -> Response {
    let mut response = (answer.status, Body::from(answer.body)).into_response();
    let content_type = match answer.content_type {
        Some(content_type) => Some(content_type),
        None if !answer.body.is_empty()
            || (answer.status.is_success() && answer.status != StatusCode::NO_CONTENT) =>
        {
            Some(TEXT_PLAIN)
        }
        None => None,
    };
    if let Some(content_type) = content_type.and_then(|value| HeaderValue::from_str(value).ok()) {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

/// The content type of a provider's answer that names none.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The URL the provider called: the configured public URL joined with the
/// request's path and query, or else `http://` and the `Host` header.
fn public_url(app: &App, request: &Request) -> String {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    match app.public_url() {
        Some(base) => base.join(path_and_query),
        None => {
            let host = request
                .headers()
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .or_else(|| {
                    request
                        .uri()
                        .authority()
                        .map(|authority| authority.as_str())
                })
                .unwrap_or("localhost");
            format!("http://{host}{path_and_query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_the_providers_content_type() {
        let response = answer(Answer {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: ibiki_providers::testing::TWILIO_EMPTY_TWIML,
        });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/xml");
        let response = answer(Answer::empty(StatusCode::NO_CONTENT));
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers().get(CONTENT_TYPE).is_none());
        let response = answer(Answer::empty(StatusCode::SERVICE_UNAVAILABLE));
        assert!(response.headers().get(CONTENT_TYPE).is_none());
        let response = answer(Answer::empty(StatusCode::OK));
        assert_eq!(response.headers()[CONTENT_TYPE], TEXT_PLAIN);
    }
}
