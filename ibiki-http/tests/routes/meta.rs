//! `/healthz` (200 with a working store, 503 with one that is down),
//! `/openapi.json` (the library's document, listing the routes), and the
//! JSON 404 and 405 answers of `App::router()`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::down_store::{DETAIL, DownStore};
use crate::support::{admin, app_over, assert_error, request, router, send};

/// The routes the document lists, as `(method, path template)`; the SMS
/// providers' `/webhooks/{provider}` is left to its own tests.
const DOCUMENTED: [(&str, &str); 31] = [
    ("get", "/api/admin/clients"),
    ("get", "/api/admin/clients/{userId}/deliveries"),
    ("put", "/api/admin/clients/{userId}/endpoint"),
    ("get", "/api/admin/clients/{userId}/endpoint"),
    ("delete", "/api/admin/clients/{userId}/endpoint"),
    ("post", "/api/admin/clients/{userId}/endpoint/replay"),
    ("get", "/api/admin/clients/{userId}/endpoint/secret"),
    ("post", "/api/admin/clients/{userId}/endpoint/secret/rotate"),
    ("post", "/api/admin/deliveries/{id}/retry"),
    ("get", "/api/clients/{userId}/deliveries"),
    ("post", "/api/clients/{userId}/deliveries/{id}/retry"),
    ("put", "/api/clients/{userId}/endpoint"),
    ("get", "/api/clients/{userId}/endpoint"),
    ("get", "/api/clients/{userId}/endpoint/secret"),
    ("post", "/api/clients/{userId}/endpoint/secret/rotate"),
    ("get", "/api/admin/clients/{userId}/keys"),
    ("post", "/api/admin/clients/{userId}/keys"),
    ("delete", "/api/admin/clients/{userId}/keys/{id}"),
    ("get", "/api/admin/clients/{userId}/phone-numbers"),
    ("get", "/api/admin/held"),
    ("post", "/api/admin/held/{id}/deliver"),
    ("get", "/api/admin/numbers/{phoneNumber}/history"),
    ("get", "/api/admin/routes/{phoneNumber}"),
    ("post", "/api/admin/update-phone-numbers"),
    ("get", "/api/clients/{userId}/events"),
    ("get", "/api/clients/{userId}/messages"),
    ("get", "/api/clients/{userId}/phone-numbers"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/webhooks/sms"),
];

/// The providers' route, whose place in the document is not checked here.
const PROVIDER_PATH: &str = "/webhooks/{provider}";

async fn public_get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    send(
        router,
        request(Method::GET, path, None, None, Body::empty()),
    )
    .await
}

#[tokio::test]
async fn health_is_200_with_a_working_store() {
    let answer = public_get(&router(), "/healthz").await;
    assert_eq!(answer, (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn health_is_503_with_a_store_that_is_down_and_keeps_its_detail_private() {
    let router = app_over(Arc::new(DownStore)).router();
    let answer = public_get(&router, "/healthz").await;
    assert_error(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert_eq!(
        answer.1,
        json!({"error": "store_unavailable", "message": "the store is unavailable; retry later"})
    );
    assert!(!answer.1.to_string().contains(DETAIL));
    // The admin routes meet the same store and answer alike.
    let (status, body) = send(
        &router,
        request(Method::GET, "/api/admin/held", admin(), None, Body::empty()),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("store_unavailable"))
    );
}

#[tokio::test]
async fn the_document_is_the_librarys_and_lists_the_routes() {
    let (status, served) = public_get(&router(), "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let expected = serde_json::to_value(ibiki_http::openapi_document()).expect("document as JSON");
    assert_eq!(served, expected);
    assert!(
        served["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        served["openapi"]
    );
    let listed: BTreeSet<(String, String)> = served["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(path, _)| path.as_str() != PROVIDER_PATH)
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item").keys();
            methods.map(|method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = DOCUMENTED
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(listed, expected);
    let bearer = &served["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_in_json() {
    let router = router();
    assert_error(
        &public_get(&router, "/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let delete = request(
        Method::DELETE,
        "/api/admin/held",
        admin(),
        None,
        Body::empty(),
    );
    let answer = send(&router, delete).await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    for (method, path) in [(Method::POST, "/healthz"), (Method::GET, "/webhooks/sms")] {
        let answer = send(&router, request(method, path, None, None, Body::empty())).await;
        assert_error(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
    }
}
