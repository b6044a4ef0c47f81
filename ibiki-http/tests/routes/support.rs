//! The in-process harness: an `App` over a fresh `MemoryStore`, requests sent
//! through `App::router()` with `oneshot`, answers read as JSON.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{Method, Request, StatusCode};
use ibiki_core::{AddressPolicy, DynReplyStore};
use ibiki_http::{AdminToken, App, BearerAuth};
use ibiki_memory::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The admin token of every test app.
pub(crate) const TOKEN: &str = "test-admin-token";

/// Largest answer read: well above any listing the tests make.
const MAX_ANSWER_BYTES: usize = 4 << 20;

fn admin_token() -> AdminToken {
    AdminToken::new(TOKEN.parse().expect("non-empty token"))
}

/// An app over `store`, open to [`TOKEN`] alone, to configure further.
pub(crate) fn app_over(store: Arc<DynReplyStore>) -> App {
    App::new(store, admin_token())
}

/// The whole router of an app over a fresh in-memory store, open to
/// [`TOKEN`] and to the clients' keys of the store.
pub(crate) fn router() -> Router {
    let store = Arc::new(MemoryStore::new());
    App::new(store.clone(), BearerAuth::new(admin_token(), store.clone()))
        .with_forwarding(store, AddressPolicy::PublicOnly)
        .router()
}

/// A request with an optional `Authorization` value and a typed body.
pub(crate) fn request(
    method: Method,
    path: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value);
    }
    if let Some(value) = content_type {
        builder = builder.header(CONTENT_TYPE, value);
    }
    builder.body(body.into()).expect("valid request")
}

/// The `Authorization` value of the admin.
pub(crate) fn admin() -> Option<&'static str> {
    Some("Bearer test-admin-token")
}

/// Sends `request` and reads the answer, which must be JSON.
pub(crate) async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = to_bytes(response.into_body(), MAX_ANSWER_BYTES)
        .await
        .expect("body read");
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(content_type, "application/json", "{status}: {text}");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

/// A GET with the admin token.
pub(crate) async fn get(router: &Router, path: &str) -> (StatusCode, Value) {
    send(
        router,
        request(Method::GET, path, admin(), None, Body::empty()),
    )
    .await
}

/// A JSON POST with the admin token.
pub(crate) async fn post_json(router: &Router, path: &str, body: &Value) -> (StatusCode, Value) {
    let body = body.to_string();
    let request = request(Method::POST, path, admin(), Some("application/json"), body);
    send(router, request).await
}

/// A GET that must answer 200; its body.
pub(crate) async fn get_ok(router: &Router, path: &str) -> Value {
    let (status, body) = get(router, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// `POST /api/admin/update-phone-numbers`.
pub(crate) async fn assign(router: &Router, user_id: &str, numbers: Value) -> (StatusCode, Value) {
    let body = json!({"userId": user_id, "phoneNumbers": numbers});
    post_json(router, "/api/admin/update-phone-numbers", &body).await
}

/// Assigns and expects 200; the answer.
pub(crate) async fn assign_ok(router: &Router, user_id: &str, numbers: Value) -> Value {
    let (status, body) = assign(router, user_id, numbers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A client's numbers, as the API lists them.
pub(crate) async fn numbers_of(router: &Router, user_id: &str) -> Value {
    let path = format!("/api/admin/clients/{user_id}/phone-numbers");
    get_ok(router, &path).await["phoneNumbers"].clone()
}

/// A webhook with any content type and body, unsigned.
pub(crate) async fn webhook_raw(
    router: &Router,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let request = request(
        Method::POST,
        "/webhooks/sms",
        None,
        Some(content_type),
        body,
    );
    send(router, request).await
}

/// A JSON webhook, unsigned.
pub(crate) async fn webhook(router: &Router, payload: &Value) -> (StatusCode, Value) {
    webhook_raw(router, "application/json", payload.to_string()).await
}

/// A reply as a provider posts it in JSON.
pub(crate) fn reply(message_id: &str, to: &str, body: &str) -> Value {
    json!({"messageId": message_id, "from": "+15005550006", "to": to, "body": body})
}

/// The messages of one page (at most 1000) of a listing.
pub(crate) async fn messages(router: &Router, path: &str) -> Vec<Value> {
    let body = get_ok(router, &format!("{path}?limit=1000")).await;
    body["messages"].as_array().expect("messages").clone()
}

/// A client's inbox.
pub(crate) async fn inbox(router: &Router, user_id: &str) -> Vec<Value> {
    messages(router, &format!("/api/clients/{user_id}/messages")).await
}

/// The held replies.
pub(crate) async fn held(router: &Router) -> Vec<Value> {
    messages(router, "/api/admin/held").await
}

/// One field of every item, in order.
pub(crate) fn field<'a>(items: &'a [Value], name: &str) -> Vec<&'a Value> {
    items.iter().map(|item| &item[name]).collect()
}

/// Asserts an error answer: its status, its code, and a message.
#[track_caller]
pub(crate) fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error has a message: {body}"
    );
}

/// Seconds since 1970, as the signature header counts them.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
