//! Signed webhooks: `X-Ibiki-Signature: t=<unix seconds>,v1=<hex HMAC>`.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{SECRET, TestServer, assert_error, reply, send, signature, unix_now};

store_tests!(
    signed_webhooks_are_accepted,
    bad_signatures_are_401_and_record_nothing,
);

async fn signed_webhooks_are_accepted(store: Arc<DynReplyStore>) {
    let server = TestServer::start_signed(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let body = reply("SM1", "+14155550100", "signed").to_string();
    let now = unix_now();
    let answer = send(server.webhook_signed("application/json", &body, now)).await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    // Within the tolerance, on both sides of the server's clock.
    for (id, t) in [("SM2", now - 290), ("SM3", now + 290)] {
        let body = reply(id, "+14155550100", "skewed clock").to_string();
        let answer = send(server.webhook_signed("application/json", &body, t)).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    }
    let form = "MessageSid=SM4&From=%2B15005550006&To=%2B14155550100&Body=form";
    let answer = send(server.webhook_signed("application/x-www-form-urlencoded", form, now)).await;
    assert_eq!(answer.1["status"], "routed");
    // A captured request replayed within the window is only a duplicate.
    let answer = send(server.webhook_signed("application/json", &body, now)).await;
    assert_eq!(answer.1, json!({"status": "duplicate"}));
    // Rotation: any one matching v1 is enough.
    let body = reply("SM5", "+14155550100", "rotated").to_string();
    let good = signature(SECRET, now, &body);
    let bad = signature("old-secret", now, &body);
    let rotated = format!(
        "{},{}",
        bad,
        good.split_once(',').map(|(_, v1)| v1).unwrap_or_default()
    );
    let request = server
        .webhook_raw("application/json", body)
        .header("x-ibiki-signature", rotated);
    assert_eq!(send(request).await.1["status"], "routed");
    assert_eq!(server.inbox("123").await.len(), 5);
}

async fn bad_signatures_are_401_and_record_nothing(store: Arc<DynReplyStore>) {
    let server = TestServer::start_signed(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let body = reply("SM1", "+14155550100", "forged?").to_string();
    let now = unix_now();

    let unsigned = server.webhook_raw("application/json", body.clone());
    assert_error(
        &send(unsigned).await,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    );

    let cases = [
        (signature("wrong-secret", now, &body), "invalid_signature"),
        (signature(SECRET, now - 301, &body), "stale_signature"),
        (signature(SECRET, now + 301, &body), "stale_signature"),
        (signature(SECRET, 0, &body), "stale_signature"),
        // Signed for one timestamp, sent with another.
        (
            signature(SECRET, now, &body).replace(&format!("t={now}"), &format!("t={}", now - 1)),
            "invalid_signature",
        ),
        (format!("t={now}"), "invalid_signature"),
        (format!("t={now},v1=not-hex"), "invalid_signature"),
        (format!("t={now},v1="), "invalid_signature"),
        ("sha256=abc".to_owned(), "invalid_signature"),
        (
            signature(SECRET, now, &body).to_uppercase(),
            "invalid_signature",
        ),
    ];
    for (header, code) in cases {
        let request = server
            .webhook_raw("application/json", body.clone())
            .header("x-ibiki-signature", &header);
        assert_error(&send(request).await, StatusCode::UNAUTHORIZED, code);
    }
    // A tampered body: signed, then one character changed.
    let tampered = body.replace("forged?", "forged!");
    let request = server
        .webhook_raw("application/json", tampered)
        .header("x-ibiki-signature", signature(SECRET, now, &body));
    assert_error(
        &send(request).await,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    );
    // Re-serialized JSON is different bytes: the signature covers the raw body.
    let reformatted = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&body).expect("json"),
    )
    .expect("json");
    let request = server
        .webhook_raw("application/json", reformatted)
        .header("x-ibiki-signature", signature(SECRET, now, &body));
    assert_error(
        &send(request).await,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    );
    // The signature is checked before the content type or the payload.
    let request = server.webhook_raw("text/plain", "junk");
    assert_error(
        &send(request).await,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    );

    assert!(server.inbox("123").await.is_empty());
    assert!(server.held().await.is_empty());
    // SM1 was never recorded.
    let answer = send(server.webhook_signed("application/json", &body, now)).await;
    assert_eq!(answer.1["status"], "routed");
}
