//! `GET /api/admin/held` and `POST /api/admin/held/{id}/deliver`: replies
//! nobody owns, listed oldest first, released by an assignment or moved by
//! an operator; every refused move (400, 404, 409, 415, 422) changes nothing.

use axum::Router;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    admin, assert_error, assign_ok, field, get, get_ok, held, inbox, post_json, reply, request,
    router, send, webhook,
};

/// A router holding one reply to `to`; the reply as listed.
async fn holding(to: &str) -> (Router, Value) {
    let router = router();
    let answer = webhook(&router, &reply("SM1", to, "stuck")).await;
    assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})));
    let held = held(&router).await;
    assert_eq!(held.len(), 1);
    let listed = held[0].clone();
    (router, listed)
}

async fn deliver(router: &Router, id: &Value, body: Value) -> (StatusCode, Value) {
    post_json(router, &format!("/api/admin/held/{id}/deliver"), &body).await
}

#[tokio::test]
async fn held_replies_page_oldest_first() {
    let router = router();
    for i in 0..5 {
        let to = format!("+1415555010{i}");
        webhook(&router, &reply(&format!("SM{i}"), &to, "held")).await;
    }
    let first = get_ok(&router, "/api/admin/held?limit=2").await;
    let page = first["messages"].as_array().expect("page");
    assert_eq!(field(page, "messageId"), ["SM0", "SM1"]);
    let next = first["next"].as_str().expect("cursor");
    let second = get_ok(&router, &format!("/api/admin/held?limit=2&after={next}")).await;
    let page = second["messages"].as_array().expect("page");
    assert_eq!(field(page, "messageId"), ["SM2", "SM3"]);
    let bad = get(&router, "/api/admin/held?after=x").await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_cursor");
}

#[tokio::test]
async fn an_assignment_releases_the_replies_held_for_its_numbers() {
    let router = router();
    for (id, to) in [
        ("SM1", "+14155550100"),
        ("SM2", "+1 (415) 555-0100"),
        ("SM3", "+14155550101"),
    ] {
        webhook(&router, &reply(id, to, id)).await;
    }
    let answer = assign_ok(&router, "123", json!("+14155550100")).await;
    assert_eq!(answer["released"], 2);
    let inbox = inbox(&router, "123").await;
    assert_eq!(field(&inbox, "messageId"), ["SM1", "SM2"]);
    let kinds: Vec<&Value> = inbox.iter().map(|m| &m["delivery"]["kind"]).collect();
    assert_eq!(kinds, ["released", "released"]);
    assert_eq!(field(&held(&router).await, "messageId"), ["SM3"]);
    // What the client already owns releases nothing more.
    let again = assign_ok(&router, "123", json!("+14155550100")).await;
    assert_eq!(again["released"], 0);
}

#[tokio::test]
async fn a_held_reply_is_delivered_to_a_client_as_rerouted() {
    let (router, held_reply) = holding("not a number").await;
    assert_eq!(held_reply["delivery"]["kind"], "unparsed");
    let (status, moved) = deliver(&router, &held_reply["id"], json!({"userId": "123"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["id"], held_reply["id"]);
    assert_eq!(moved["delivery"]["kind"], "rerouted");
    for unchanged in ["messageId", "from", "to", "body", "receivedAt"] {
        assert_eq!(moved[unchanged], held_reply[unchanged], "{unchanged}");
    }
    assert_eq!(inbox(&router, "123").await, [moved]);
    assert_eq!(held(&router).await, Vec::<Value>::new());
    let again = deliver(&router, &held_reply["id"], json!({"userId": "123"})).await;
    assert_error(&again, StatusCode::CONFLICT, "reply_not_held");
}

#[tokio::test]
async fn a_held_reply_is_delivered_to_the_owner_of_a_corrected_number() {
    let (router, held_reply) = holding("+14155550199").await;
    let target = json!({"phoneNumber": "+1 415 555 0100"});
    let unowned = deliver(&router, &held_reply["id"], target.clone()).await;
    assert_error(&unowned, StatusCode::CONFLICT, "phone_number_unassigned");
    assign_ok(&router, "456", json!("+14155550100")).await;
    let (status, moved) = deliver(&router, &held_reply["id"], target).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["to"], "+14155550199", "its `to` is kept");
    assert_eq!(inbox(&router, "456").await, [moved]);
    let route = get_ok(&router, "/api/admin/routes/%2B14155550199").await;
    assert_eq!(route["userId"], Value::Null, "no number changed hands");
}

#[tokio::test]
async fn bad_targets_are_400_or_422_and_change_nothing() {
    let (router, held_reply) = holding("+14155550100").await;
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
            json!({"userId": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"phoneNumber": "abc"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
        ),
    ];
    for (body, status, code) in cases {
        let answer = deliver(&router, &held_reply["id"], body.clone()).await;
        assert_eq!(answer.1["error"], code, "{body}");
        assert_error(&answer, status, code);
    }
    let path = format!("/api/admin/held/{}/deliver", held_reply["id"]);
    let text = request(
        Method::POST,
        &path,
        admin(),
        Some("text/plain"),
        "userId=123",
    );
    let answer = send(&router, text).await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_eq!(held(&router).await, [held_reply]);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_and_400() {
    let (router, held_reply) = holding("+14155550100").await;
    let to_client = json!({"userId": "123"});
    let cases = [
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
        (
            "/api/admin/held/1.5/deliver",
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ];
    for (path, status, code) in cases {
        let answer = post_json(&router, path, &to_client).await;
        assert_eq!(answer.1["error"], code, "{path}");
        assert_error(&answer, status, code);
    }
    // The id is read before the content type.
    let text = request(
        Method::POST,
        "/api/admin/held/x/deliver",
        admin(),
        Some("text/plain"),
        "",
    );
    assert_error(
        &send(&router, text).await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    );
    assert_eq!(held(&router).await, [held_reply]);
}
