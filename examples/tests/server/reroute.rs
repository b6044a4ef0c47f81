//! `POST /api/admin/held/{id}/deliver`: an operator moves a stuck held reply
//! into an inbox.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error, reply, send};

store_tests!(
    a_held_reply_is_delivered_to_a_client,
    a_reply_held_with_its_trunk_zero_is_delivered_by_the_corrected_number,
    deliver_errors_change_nothing,
);

/// `POST /api/admin/held/{id}/deliver` with `body`.
pub(crate) async fn deliver(server: &TestServer, id: &Value, body: Value) -> (StatusCode, Value) {
    send(server.post_json(&format!("/api/admin/held/{id}/deliver"), &body)).await
}

async fn held_one(server: &TestServer, to: &str) -> Value {
    let (status, body) = server.webhook(&reply("SM1", to, "stuck")).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("held")),
        "{body}"
    );
    let held = server.held().await;
    assert_eq!(held.len(), 1);
    held[0].clone()
}

async fn a_held_reply_is_delivered_to_a_client(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let held = held_one(&server, "not a number").await;
    assert_eq!(held["delivery"]["kind"], "unparsed", "{held}");
    let (status, moved) = deliver(&server, &held["id"], json!({"userId": "123"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["id"], held["id"]);
    assert_eq!(moved["delivery"]["kind"], "rerouted");
    assert_ne!(moved["delivery"]["at"], held["delivery"]["at"]);
    assert_eq!(server.inbox("123").await, [moved]);
    assert!(server.held().await.is_empty());
}

async fn a_reply_held_with_its_trunk_zero_is_delivered_by_the_corrected_number(
    store: Arc<DynReplyStore>,
) {
    let server = TestServer::start(store).await;
    let held = held_one(&server, "+44 020 7946 0958").await;
    assert_eq!(held["to"], "+4402079460958");
    assert_eq!(held["delivery"]["kind"], "held");
    let body = server.assign_ok("456", json!("+44 20 7946 0958")).await;
    assert_eq!(body["released"], 0, "the admin number is another number");
    let (status, moved) = deliver(
        &server,
        &held["id"],
        json!({"phoneNumber": "+44 20 7946 0958"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["to"], "+4402079460958", "its `to` is kept");
    assert_eq!(moved["delivery"]["kind"], "rerouted");
    assert_eq!(server.inbox("456").await, [moved]);
    let (_, route) = send(server.get("/api/admin/routes/%2B4402079460958")).await;
    assert_eq!(route["userId"], Value::Null, "no ownership changed");
}

async fn deliver_errors_change_nothing(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let held = held_one(&server, "+14155550100").await;
    let id = &held["id"];
    let cases = [
        (json!({}), StatusCode::BAD_REQUEST, "invalid_target"),
        (
            json!({"userId": "1", "phoneNumber": "+14155550100"}),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({"userId": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_user_id",
        ),
        (
            json!({"user": "1"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"phoneNumber": "abc"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
        ),
        (
            json!({"phoneNumber": "+14155550100"}),
            StatusCode::CONFLICT,
            "phone_number_unassigned",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(&deliver(&server, id, body).await, status, code);
    }
    let to_client = json!({"userId": "123"});
    for (path, status, code) in [
        (
            "/api/admin/held/999999/deliver",
            StatusCode::NOT_FOUND,
            "reply_not_found",
        ),
        (
            "/api/admin/held/x/deliver",
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "/api/admin/held/-1/deliver",
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ] {
        assert_error(
            &send(server.post_json(path, &to_client)).await,
            status,
            code,
        );
    }
    let path = format!("/api/admin/held/{id}/deliver");
    let anonymous = server.request(Method::POST, &path).json(&to_client);
    assert_error(
        &send(anonymous).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let text = server
        .request(Method::POST, &path)
        .bearer_auth(crate::harness::TOKEN)
        .header("content-type", "text/plain")
        .body("userId=123");
    assert_error(
        &send(text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_eq!(
        server.held().await,
        std::slice::from_ref(&held),
        "nothing changed"
    );
    let (status, _) = deliver(&server, id, to_client.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &deliver(&server, id, to_client).await,
        StatusCode::CONFLICT,
        "reply_not_held",
    );
}
