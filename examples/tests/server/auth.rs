//! Every `/api` route needs the admin bearer token; without it nothing is
//! read or changed.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestServer, assert_error, reply, send};

store_tests!(every_api_route_needs_the_token);

const ROUTES: [(Method, &str); 5] = [
    (Method::POST, "/api/admin/update-phone-numbers"),
    (Method::GET, "/api/admin/clients/123/phone-numbers"),
    (Method::GET, "/api/admin/routes/%2B14155550100"),
    (Method::GET, "/api/admin/held"),
    (Method::GET, "/api/clients/123/messages"),
];

async fn every_api_route_needs_the_token(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let (status, _) = server.webhook(&reply("SM1", "+14155550100", "hi")).await;
    assert_eq!(status, StatusCode::OK);

    let takeover = json!({"userId": "456", "phoneNumbers": "+14155550101"});
    let credentials: [Option<&str>; 6] = [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer test-admin-token-but-longer"),
        Some("Bearer "),
        Some("Basic dGVzdC1hZG1pbi10b2tlbg=="),
        Some("test-admin-token"),
    ];
    for (method, path) in ROUTES {
        for authorization in credentials {
            let mut request = server.request(method.clone(), path).json(&takeover);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let answer = send(request).await;
            assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(
                answer.1.as_object().map(|o| o.len()),
                Some(2),
                "{path}: only error and message"
            );
        }
    }
    // Nothing changed, and the right token still reads everything.
    assert_eq!(server.numbers_of("456").await, json!([]));
    assert_eq!(server.inbox("123").await.len(), 1);
    let lower_case = server
        .request(Method::GET, "/api/clients/123/messages")
        .header("authorization", "bearer test-admin-token");
    assert_eq!(send(lower_case).await.0, StatusCode::OK);
}

#[tokio::test]
async fn public_routes_need_no_token() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    let (status, body) = send(server.request(Method::GET, "/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = server.webhook(&reply("SM1", "+14155550100", "hi")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "held"})));
}
