//! Clients' endpoints and their deliveries: set, read, rotated, listed,
//! retried and replayed by the operator, and by each client for its own.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    admin, assert_error, assign_ok, get, post_json, reply, request, router, send, webhook,
};

async fn put_endpoint(
    router: &Router,
    path: &str,
    authorization: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let put = request(
        Method::PUT,
        path,
        authorization,
        Some("application/json"),
        body.to_string(),
    );
    send(router, put).await
}

async fn delete(router: &Router, path: &str) -> StatusCode {
    let delete = request(Method::DELETE, path, admin(), None, Body::empty());
    tower::ServiceExt::oneshot(router.clone(), delete)
        .await
        .expect("infallible")
        .status()
}

const ACME: &str = "/api/admin/clients/acme/endpoint";

#[tokio::test]
async fn an_endpoint_shows_its_secret_once_and_rotates_it() {
    let router = router();
    let (status, created) = put_endpoint(
        &router,
        ACME,
        admin(),
        &json!({"url": "https://crm.example.com/sms"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let secret = created["secret"].as_str().expect("a secret on creation");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        (&created["userId"], &created["url"], &created["enabled"]),
        (
            &json!("acme"),
            &json!("https://crm.example.com/sms"),
            &json!(true)
        )
    );

    let body = json!({"url": "https://crm.example.com/v2", "enabled": false});
    let (status, changed) = put_endpoint(&router, ACME, admin(), &body).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed.get("secret"), None, "the secret is shown once");
    assert_eq!(changed["createdAt"], created["createdAt"]);

    let (status, state) = get(&router, ACME).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    let fields: Vec<_> = state.as_object().expect("object").keys().collect();
    assert_eq!(
        fields,
        [
            "createdAt",
            "enabled",
            "failed",
            "failingSince",
            "lastDeliveredAt",
            "pending",
            "url",
            "userId"
        ]
    );
    assert_eq!(
        (&state["enabled"], &state["pending"]),
        (&json!(false), &json!(0))
    );
    assert!(state["failingSince"].is_null() && state["lastDeliveredAt"].is_null());

    let (_, shown) = get(&router, &format!("{ACME}/secret")).await;
    assert_eq!(shown, json!({"secret": secret}));
    let (status, rotated) = post_json(&router, &format!("{ACME}/secret/rotate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["secret"], json!(secret));
    let (_, shown) = get(&router, &format!("{ACME}/secret")).await;
    assert_eq!(shown, rotated);
}

#[tokio::test]
async fn non_public_and_non_http_urls_are_not_allowed() {
    let router = router();
    for url in [
        "http://127.0.0.1:9000/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.7/hook",
        "ftp://example.com/",
        "not a url",
    ] {
        let answer = put_endpoint(&router, ACME, admin(), &json!({"url": url})).await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "endpoint_not_allowed",
        );
    }
    let answer = put_endpoint(&router, ACME, admin(), &json!({"url": "http://10.0.0.7/"})).await;
    assert!(
        answer.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("private")),
        "{}",
        answer.1
    );
    let answer = put_endpoint(
        &router,
        ACME,
        admin(),
        &json!({"uri": "https://a.example/"}),
    )
    .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_json");
    assert_error(
        &get(&router, ACME).await,
        StatusCode::NOT_FOUND,
        "endpoint_not_found",
    );
}

#[tokio::test]
async fn each_routed_reply_is_a_delivery_listed_retried_and_replayed() {
    let router = router();
    assign_ok(&router, "acme", json!("+14155550100")).await;
    put_endpoint(
        &router,
        ACME,
        admin(),
        &json!({"url": "https://crm.example.com/"}),
    )
    .await;
    let (status, _) = webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    assert_eq!(status, StatusCode::OK);

    let deliveries = "/api/admin/clients/acme/deliveries";
    let (status, listed) = get(&router, deliveries).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let delivery = &listed["deliveries"][0];
    let fields: Vec<_> = delivery.as_object().expect("object").keys().collect();
    assert_eq!(
        fields,
        [
            "attempts",
            "id",
            "lastAttemptAt",
            "lastError",
            "lastStatus",
            "messageId",
            "nextAttemptAt",
            "replyId",
            "status"
        ]
    );
    assert_eq!(
        (
            &delivery["messageId"],
            &delivery["status"],
            &delivery["attempts"]
        ),
        (&json!("SM1"), &json!("pending"), &json!(0))
    );
    let (_, inbox) = get(&router, "/api/clients/acme/messages").await;
    assert_eq!(delivery["replyId"], inbox["messages"][0]["id"]);
    let (_, state) = get(&router, ACME).await;
    assert_eq!(state["pending"], json!(1));

    let (_, none) = get(&router, &format!("{deliveries}?status=delivered")).await;
    assert_eq!(none["deliveries"], json!([]));
    assert_error(
        &get(&router, &format!("{deliveries}?status=lost")).await,
        StatusCode::BAD_REQUEST,
        "invalid_status",
    );
    assert_error(
        &get(&router, &format!("{deliveries}?stauts=pending")).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );

    let id = delivery["id"].as_u64().expect("id");
    let (status, retried) = post_json(
        &router,
        &format!("/api/admin/deliveries/{id}/retry"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["id"], json!(id));
    assert_error(
        &post_json(&router, "/api/admin/deliveries/999999/retry", &json!({})).await,
        StatusCode::NOT_FOUND,
        "delivery_not_found",
    );

    let replay = format!("{ACME}/replay");
    let (status, queued) =
        post_json(&router, &replay, &json!({"since": "2000-01-01T00:00:00Z"})).await;
    assert_eq!((status, queued), (StatusCode::OK, json!({"queued": 1})));
    assert_error(
        &post_json(&router, &replay, &json!({"since": "yesterday"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &post_json(
            &router,
            "/api/admin/clients/bob/endpoint/replay",
            &json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "endpoint_not_found",
    );

    assert_eq!(delete(&router, ACME).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(&router, ACME).await, StatusCode::NOT_FOUND);
    let (_, gone) = get(&router, deliveries).await;
    assert_eq!(
        gone["deliveries"],
        json!([]),
        "the pending delivery went with the endpoint"
    );
    let (_, inbox) = get(&router, "/api/clients/acme/messages").await;
    assert_eq!(
        inbox["messages"].as_array().map(Vec::len),
        Some(1),
        "the reply stays"
    );
}

/// `POST /api/admin/clients/{userId}/keys` with the admin token: the key.
async fn key_of(router: &Router, user_id: &str) -> String {
    let path = format!("/api/admin/clients/{user_id}/keys");
    let (status, body) = send(router, request(Method::POST, &path, admin(), None, "")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("Bearer {}", body["key"].as_str().expect("key"))
}

#[tokio::test]
async fn a_client_manages_its_own_endpoint_and_no_other() {
    let router = router();
    assign_ok(&router, "acme", json!("+14155550100")).await;
    let acme = key_of(&router, "acme").await;
    let own = "/api/clients/acme/endpoint";
    let (status, created) = put_endpoint(
        &router,
        own,
        Some(&acme),
        &json!({"url": "https://acme.example.com/"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert!(created["secret"].is_string());
    let read = |path: &str| request(Method::GET, path, Some(&acme), None, Body::empty());
    let (status, state) = send(&router, read(own)).await;
    assert_eq!(
        (status, &state["url"]),
        (StatusCode::OK, &json!("https://acme.example.com/"))
    );
    let (_, secret) = send(&router, read("/api/clients/acme/endpoint/secret")).await;
    assert_eq!(secret["secret"], created["secret"]);

    webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    let (status, listed) = send(&router, read("/api/clients/acme/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let id = listed["deliveries"][0]["id"].as_u64().expect("id");
    let retry = format!("/api/clients/acme/deliveries/{id}/retry");
    let (status, _) = send(
        &router,
        request(Method::POST, &retry, Some(&acme), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Another client's routes, and the operator's, stay closed.
    let bob = key_of(&router, "bob").await;
    let (status, _) = send(
        &router,
        request(
            Method::POST,
            "/api/clients/bob/deliveries/1/retry",
            Some(&bob),
            None,
            "",
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "bob has no delivery 1: acme's is not found"
    );
    for (method, path) in [
        (Method::GET, "/api/clients/bob/endpoint"),
        (Method::GET, "/api/admin/clients/acme/endpoint"),
        (Method::GET, "/api/admin/clients/acme/deliveries"),
        (Method::POST, "/api/admin/deliveries/1/retry"),
    ] {
        let answer = send(&router, request(method, path, Some(&acme), None, "")).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
}

#[tokio::test]
async fn an_app_without_forwarding_says_so() {
    let store = std::sync::Arc::new(ibiki_memory::MemoryStore::new());
    let router = crate::support::app_over(store).router();
    assert_error(
        &get(&router, ACME).await,
        StatusCode::NOT_FOUND,
        "forwarding_not_enabled",
    );
}
