//! The router's limits (`App::with_limits`): a body that does not arrive
//! whole in time is 408 with `Connection: close` and records nothing, and
//! the live streams are capped per client and in all (429, `Retry-After`).
//! Each refusal is counted in `/metrics` by reason.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use ibiki_http::Limits;
use ibiki_memory::MemoryStore;
use serde_json::json;
use tower::ServiceExt;

use crate::support::{admin, app_over, get_ok, held, reply, send};

/// A router with a short body read timeout and small stream caps.
fn limited(body_read_timeout: Duration, per_client: usize, total: usize) -> Router {
    let mut limits = Limits::default();
    limits.body_read_timeout = body_read_timeout;
    limits.max_streams_per_client = per_client;
    limits.max_streams = total;
    app_over(Arc::new(MemoryStore::new()))
        .with_limits(limits)
        .router()
}

/// `text`, one byte every `gap`.
fn trickled(text: String, gap: Duration) -> Body {
    let bytes = text.into_bytes();
    let pieces = futures_util::stream::unfold(bytes.into_iter(), move |mut rest| async move {
        let byte = rest.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(vec![byte])), rest))
    });
    Body::from_stream(pieces)
}

/// A POST of `body`, announced as `length` bytes of JSON.
fn post(path: &str, body: Body, length: usize) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, length);
    if path.starts_with("/api") {
        builder = builder.header("authorization", "Bearer test-admin-token");
    }
    builder.body(body).expect("a request")
}

/// The value of `name{reason="…"}` in the metrics.
async fn counted(router: &Router, line: &str) -> u64 {
    let response = router
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header("authorization", "Bearer test-admin-token")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("infallible");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("metrics read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {text}"))
}

#[tokio::test]
async fn a_trickled_webhook_body_is_408_closed_and_not_recorded() {
    let router = limited(Duration::from_millis(300), 16, 100);
    let payload = reply("SM1", "+14155550100", "slow").to_string();
    let length = payload.len();
    let request = post(
        "/webhooks/sms",
        trickled(payload, Duration::from_millis(50)),
        length,
    );
    let started = std::time::Instant::now();
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at the deadline, not when the body ended: {:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(response.headers()[CONNECTION], "close");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await;
    let body: serde_json::Value = serde_json::from_slice(&bytes.expect("read")).expect("JSON");
    assert_eq!(body["error"], "body_timeout", "{body}");
    assert!(held(&router).await.is_empty(), "nothing recorded");
    let refusals = "ibiki_refusals_total{reason=\"body_timeout\"}";
    assert_eq!(counted(&router, refusals).await, 1);
    let rejected =
        "ibiki_replies_received_total{route=\"sms\",outcome=\"rejected\",reason=\"body_timeout\"}";
    assert_eq!(counted(&router, rejected).await, 1);
}

/// The deadline is on the whole body: pieces arriving every 40 ms never
/// leave a long gap, and still do not make a 300 ms deadline.
#[tokio::test]
async fn a_steady_trickle_is_cut_at_the_deadline_of_the_whole_body() {
    let router = limited(Duration::from_millis(300), 16, 100);
    let numbers = json!({"userId": "123", "phoneNumbers": "+14155550100"}).to_string();
    let length = numbers.len();
    let request = post(
        "/api/admin/update-phone-numbers",
        trickled(numbers, Duration::from_millis(40)),
        length,
    );
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let clients = get_ok(&router, "/api/admin/clients").await;
    assert_eq!(clients["clients"], json!([]), "nothing changed: {clients}");
}

#[tokio::test]
async fn a_slow_body_within_the_deadline_is_read() {
    let router = limited(Duration::from_secs(5), 16, 100);
    let payload = reply("SM2", "+14155550100", "in time").to_string();
    let length = payload.len();
    let request = post(
        "/webhooks/sms",
        trickled(payload, Duration::from_millis(2)),
        length,
    );
    let (status, body) = send(&router, request).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "held"})));
}

/// Opens `/api/clients/{client}/events` with the admin token.
async fn open_stream(router: &Router, client: &str) -> Response {
    let request = Request::get(format!("/api/clients/{client}/events"))
        .header("authorization", admin().expect("a token"))
        .body(Body::empty())
        .expect("a request");
    router.clone().oneshot(request).await.expect("infallible")
}

#[track_caller]
fn assert_refused(response: &Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[RETRY_AFTER], "10");
}

#[tokio::test]
async fn streams_are_capped_per_client_and_in_all_until_one_ends() {
    let router = limited(Duration::from_secs(5), 2, 3);
    let first = open_stream(&router, "acme").await;
    let second = open_stream(&router, "acme").await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = open_stream(&router, "acme").await;
    assert_refused(&refused);
    let bytes = axum::body::to_bytes(refused.into_body(), 1 << 16).await;
    let body: serde_json::Value = serde_json::from_slice(&bytes.expect("read")).expect("JSON");
    assert_eq!(body["error"], "too_many_streams", "{body}");

    let other = open_stream(&router, "globex").await;
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another client still opens one"
    );
    assert_refused(&open_stream(&router, "initech").await);
    assert_eq!(
        counted(&router, "ibiki_refusals_total{reason=\"max_streams\"}").await,
        2
    );

    // A stream's client leaving (its body dropped) frees its place.
    drop(first);
    let again = open_stream(&router, "acme").await;
    assert_eq!(again.status(), StatusCode::OK);
    drop((second, other, again));
    let mut open = Vec::new();
    for client in ["acme", "acme", "initech"] {
        let stream = open_stream(&router, client).await;
        assert_eq!(stream.status(), StatusCode::OK, "{client}");
        open.push(stream);
    }
    assert_refused(&open_stream(&router, "globex").await);
}
