//! The admin bearer token: every `/api` route (and `/metrics`) without it,
//! or with a wrong one, is 401 before anything is read or changed;
//! `/healthz`, `/openapi.json` and the webhook are public.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{assign_ok, inbox, numbers_of, reply, request, router, send, webhook};

/// The answer to any token that is neither the admin's nor a live key.
const WRONG: &str = "the bearer token is not the admin token or a live client key";

/// Every guarded route; the body sent to each would change something.
const GUARDED: [(Method, &str); 15] = [
    (Method::POST, "/api/admin/update-phone-numbers"),
    (Method::GET, "/api/admin/clients"),
    (Method::GET, "/api/admin/clients/123/phone-numbers"),
    (Method::GET, "/api/admin/routes/%2B14155550100"),
    (Method::GET, "/api/admin/numbers/%2B14155550100/history"),
    (Method::GET, "/api/admin/held"),
    (Method::POST, "/api/admin/held/1/deliver"),
    (Method::GET, "/api/clients/123/messages"),
    (Method::GET, "/api/clients/123/events"),
    (Method::GET, "/api/clients/123/phone-numbers"),
    (Method::POST, "/api/admin/clients/123/keys"),
    (Method::GET, "/api/admin/clients/123/keys"),
    (Method::DELETE, "/api/admin/clients/123/keys/1"),
    (Method::GET, "/metrics"),
    // A path the handler would refuse with 400: the token is checked first.
    (Method::GET, "/api/admin/clients/a%0Ab/phone-numbers"),
];

#[tokio::test]
async fn every_guarded_route_without_a_token_or_with_a_wrong_one_is_401() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    webhook(&router, &reply("SM1", "+14155550199", "held")).await;
    let takeover = json!({"userId": "456", "phoneNumbers": "+14155550100"}).to_string();
    let credentials = [
        (
            None,
            "send Authorization: Bearer <admin token or client key>",
        ),
        (
            Some("Bearer "),
            "send Authorization: Bearer <admin token or client key>",
        ),
        (
            Some("Basic dGVzdC1hZG1pbi10b2tlbg=="),
            "send Authorization: Bearer <admin token or client key>",
        ),
        (
            Some("test-admin-token"),
            "send Authorization: Bearer <admin token or client key>",
        ),
        (Some("Bearer wrong-token"), WRONG),
        (Some("Bearer test-admin-token-but-longer"), WRONG),
        // The form of a client key, never issued.
        (
            Some("Bearer ibk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            WRONG,
        ),
    ];
    for (method, path) in GUARDED {
        for (authorization, message) in credentials {
            let json = Some("application/json");
            let request = request(method.clone(), path, authorization, json, takeover.clone());
            let answer = send(&router, request).await;
            assert_eq!(
                answer.0,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {authorization:?}"
            );
            assert_eq!(
                answer.1,
                json!({"error": "unauthorized", "message": message}),
                "{method} {path} {authorization:?}"
            );
        }
    }
    // Nothing was read into a change.
    assert_eq!(numbers_of(&router, "123").await, json!(["+14155550100"]));
    assert_eq!(numbers_of(&router, "456").await, json!([]));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    for scheme in ["bearer", "BEARER"] {
        let authorization = format!("{scheme} test-admin-token");
        let path = "/api/clients/123/messages";
        let request = request(Method::GET, path, Some(&authorization), None, Body::empty());
        let (status, body) = send(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        assert_eq!(body["messages"][0]["body"], "hi");
    }
    assert_eq!(inbox(&router, "123").await.len(), 1);
}

#[tokio::test]
async fn health_the_document_and_the_webhook_need_no_token() {
    let router = router();
    let health = request(Method::GET, "/healthz", None, None, Body::empty());
    assert_eq!(
        send(&router, health).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let document = request(Method::GET, "/openapi.json", None, None, Body::empty());
    let (status, body) = send(&router, document).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"].is_object(), "{body}");
    let answer = webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})));
    // A wrong token on a public route is ignored, not refused.
    let health = request(
        Method::GET,
        "/healthz",
        Some("Bearer wrong"),
        None,
        Body::empty(),
    );
    assert_eq!(send(&router, health).await.0, StatusCode::OK);
}
