//! `POST /webhooks/sms` with `App::with_webhook_secret`: signed requests are
//! recorded, and a missing, malformed, stale or wrong `X-Ibiki-Signature` is
//! 401 before the body is read; `refuse_unsigned_webhooks` without a secret
//! refuses everything. Signed with the library's own `WebhookSecret::sign`.

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use ibiki_http::{SIGNATURE_HEADER, WebhookSecret};
use ibiki_memory::MemoryStore;
use serde_json::{Value, json};

use crate::support::{
    app_over, assert_error, assign_ok, held, inbox, reply, request, send, unix_now, webhook,
};

const SECRET: &str = "test-webhook-secret";

fn secret(text: &str) -> WebhookSecret {
    WebhookSecret::new(text.parse().expect("non-empty secret"))
}

fn signed_router() -> Router {
    app_over(Arc::new(MemoryStore::new()))
        .with_webhook_secret(secret(SECRET))
        .router()
}

/// A webhook carrying `signature` (none when `None`).
async fn post(
    router: &Router,
    content_type: &str,
    body: &str,
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = request(
        Method::POST,
        "/webhooks/sms",
        None,
        Some(content_type),
        body.to_owned(),
    );
    if let Some(value) = signature {
        let value = value.parse().expect("header value");
        request.headers_mut().insert(SIGNATURE_HEADER, value);
    }
    send(router, request).await
}

#[tokio::test]
async fn signed_json_and_form_replies_are_recorded() {
    let router = signed_router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    let now = unix_now();
    let body = reply("SM1", "+14155550100", "signed").to_string();
    let signature = secret(SECRET).sign(now, body.as_bytes());
    let answer = post(&router, "application/json", &body, Some(&signature)).await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    // A captured request replayed within the tolerance is only a duplicate.
    let replayed = post(&router, "application/json", &body, Some(&signature)).await;
    assert_eq!(replayed.1, json!({"status": "duplicate"}));
    let form = "MessageSid=SM2&From=%2B15005550006&To=%2B14155550100&Body=form";
    let signature = secret(SECRET).sign(now, form.as_bytes());
    let answer = post(
        &router,
        "application/x-www-form-urlencoded",
        form,
        Some(&signature),
    )
    .await;
    assert_eq!(answer.1, json!({"status": "routed", "userId": "123"}));
    assert_eq!(inbox(&router, "123").await.len(), 2);
}

#[tokio::test]
async fn timestamps_within_300_seconds_either_way_are_fresh() {
    let router = signed_router();
    let now = unix_now();
    // Ten seconds of margin for the clock moving while the test runs.
    for (id, t) in [("SM1", now - 290), ("SM2", now + 290)] {
        let body = reply(id, "+14155550100", "skewed clock").to_string();
        let signature = secret(SECRET).sign(t, body.as_bytes());
        let answer = post(&router, "application/json", &body, Some(&signature)).await;
        assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})), "t={t}");
    }
    for t in [now - 310, now + 310, 0] {
        let body = reply("SM3", "+14155550100", "stale").to_string();
        let signature = secret(SECRET).sign(t, body.as_bytes());
        let answer = post(&router, "application/json", &body, Some(&signature)).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "stale_signature");
    }
    assert_eq!(held(&router).await.len(), 2);
}

#[tokio::test]
async fn missing_malformed_and_wrong_signatures_are_401_and_record_nothing() {
    let router = signed_router();
    let now = unix_now();
    let body = reply("SM1", "+14155550100", "forged?").to_string();
    let missing = post(&router, "application/json", &body, None).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "missing_signature");
    let good = secret(SECRET).sign(now, body.as_bytes());
    let tampered_body = body.replace("forged?", "forged!");
    let cases = [
        (secret("wrong-secret").sign(now, body.as_bytes()), &body),
        (good.clone(), &tampered_body),
        // Signed for one timestamp, sent with another.
        (
            good.replace(&format!("t={now}"), &format!("t={}", now - 1)),
            &body,
        ),
        (format!("t={now}"), &body),
        (format!("t={now},v1=not-hex"), &body),
        ("sha256=abc".to_owned(), &body),
    ];
    for (signature, sent) in cases {
        let answer = post(&router, "application/json", sent, Some(&signature)).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_signature");
    }
    // One matching `v1` among several is enough (a secret being rotated).
    let old = secret("old-secret").sign(now, body.as_bytes());
    let (_, good_v1) = good.split_once(',').expect("t=...,v1=...");
    let rotated = format!("{old},{good_v1}");
    let answer = post(&router, "application/json", &body, Some(&rotated)).await;
    assert_eq!(answer.1, json!({"status": "held"}));
    assert_eq!(held(&router).await.len(), 1, "only the signed one");
}

#[tokio::test]
async fn the_signature_is_checked_before_the_content_type_and_payload() {
    let router = signed_router();
    let answer = post(&router, "text/plain", "junk", None).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "missing_signature");
    // Correctly signed junk reaches the checks that follow.
    let signature = secret(SECRET).sign(unix_now(), b"junk");
    let answer = post(&router, "text/plain", "junk", Some(&signature)).await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let answer = post(&router, "application/json", "junk", Some(&signature)).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_payload");
}

#[tokio::test]
async fn refusing_unsigned_webhooks_without_a_secret_refuses_every_one() {
    let router = app_over(Arc::new(MemoryStore::new()))
        .refuse_unsigned_webhooks()
        .router();
    let answer = webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "signatures_required");
    // Even signed: there is no secret to check it with.
    let body = reply("SM2", "+14155550100", "hi").to_string();
    let signature = secret(SECRET).sign(unix_now(), body.as_bytes());
    let answer = post(&router, "application/json", &body, Some(&signature)).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "signatures_required");
    assert_eq!(held(&router).await, Vec::<Value>::new());
}
