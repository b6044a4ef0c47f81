//! Store failures answer 503 ("retry"), and shutdown lets requests finish.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::controlled_store::ControlledStore;
use crate::harness::{TestServer, assert_error, reply, send};

#[tokio::test]
async fn a_failing_store_answers_503_everywhere() {
    let store = Arc::new(ControlledStore::new());
    let server = TestServer::start(store.clone()).await;
    store.set_down(true);
    let assign = json!({"userId": "123", "phoneNumbers": "+14155550100"});
    let requests = [
        server.post_json("/api/admin/update-phone-numbers", &assign),
        server.get("/api/admin/clients/123/phone-numbers"),
        server.get("/api/admin/routes/%2B14155550100"),
        server.get("/api/admin/held"),
        server.get("/api/clients/123/messages"),
        server.webhook_raw(
            "application/json",
            reply("SM1", "+14155550100", "hi").to_string(),
        ),
        server.request(Method::GET, "/healthz"),
    ];
    for request in requests {
        let answer = send(request).await;
        assert_error(
            &answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
        );
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("test store"),
            "backend details stay in the log: {message}"
        );
    }
}

#[tokio::test]
async fn a_reply_refused_with_503_is_recorded_once_when_retried() {
    let store = Arc::new(ControlledStore::new());
    let server = TestServer::start(store.clone()).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let payload = reply("SM1", "+14155550100", "during an outage");
    store.set_down(true);
    assert_eq!(
        server.webhook(&payload).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        server.webhook(&payload).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    store.set_down(false);
    assert_eq!(
        server.webhook(&payload).await.1,
        json!({"status": "routed", "userId": "123"})
    );
    assert_eq!(
        server.webhook(&payload).await.1,
        json!({"status": "duplicate"})
    );
    assert_eq!(server.inbox("123").await.len(), 1);
    let (status, _) = send(server.request(Method::GET, "/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let store = Arc::new(ControlledStore::gated());
    let mut server = TestServer::start(store.clone()).await;
    let request = server.webhook_raw(
        "application/json",
        reply("SM1", "+14155550100", "late").to_string(),
    );
    let in_flight = tokio::spawn(send(request));
    store.arrived().await;

    server.trigger_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.is_stopped(),
        "the server waits for the request in flight"
    );
    // New connections are no longer accepted.
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    store.open_gate();
    let answer = in_flight.await.expect("request task");
    assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})));
    server.shutdown().await.expect("clean stop");
}

/// Hostile input of every kind gets a 4xx, never a 5xx or a dropped
/// connection.
#[tokio::test]
async fn hostile_input_never_gets_a_5xx() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        deep.clone().into_bytes(),
        b"\xff\xfe\x00".to_vec(),
        br#"{"userId": "\ud800", "phoneNumbers": "x"}"#.to_vec(),
        br#"{"messageId": "a\u0000b", "from": "+1", "to": "+1"}"#.to_vec(),
        br#"{"from": "+1", "to": "\u202e+14155550100", "body": "rtl"}"#.to_vec(),
        br#"{"userId": "1", "phoneNumbers": ["+999999999999999999999999999999"]}"#.to_vec(),
        br#"{"userId": "1", "phoneNumbers": ",,,,,"}"#.to_vec(),
        b"MessageSid=%ZZ&From=%&To=%2&Body=%FF%FE".to_vec(),
        b"To=1&To=2&From=3".to_vec(),
    ];
    let content_types = ["application/json", "application/x-www-form-urlencoded"];
    for body in &bodies {
        for content_type in content_types {
            for path in ["/webhooks/sms", "/api/admin/update-phone-numbers"] {
                let request = server
                    .request(Method::POST, path)
                    .bearer_auth(crate::harness::TOKEN)
                    .header("content-type", content_type)
                    .body(body.clone());
                let (status, answer) = send(request).await;
                assert!(
                    status.as_u16() < 500,
                    "{path} {content_type} {body:?}: {status} {answer}"
                );
            }
        }
    }
    for path in [
        "/api/admin/routes/%00",
        "/api/admin/routes/%2B%2B%2B",
        "/api/admin/routes/tel:%2B1;ext=2",
        "/api/clients/%C0%80/messages",
        "/api/clients/x/messages?limit=%FF",
        "/api/clients/x/messages?after=%00",
    ] {
        let (status, answer) = send(server.get(path)).await;
        assert!(status.as_u16() < 500, "{path}: {status} {answer}");
    }
    let (status, _) = send(server.request(Method::GET, "/healthz")).await;
    assert_eq!(status, StatusCode::OK, "still serving");
}
