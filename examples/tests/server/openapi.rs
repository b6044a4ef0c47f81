//! `GET /openapi.json` describes every route the server answers, with every
//! status it returns; a route added without documentation, or a status
//! documented nowhere, fails here.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{TestServer, memory_store, send};

/// Every route: method, path template, documented statuses, and whether it
/// takes the admin bearer token.
const ROUTES: [(&str, &str, &[u16], bool); 33] = [
    (
        "post",
        "/api/admin/update-phone-numbers",
        &[200, 400, 401, 403, 408, 409, 413, 415, 422, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients/{userId}/phone-numbers",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/admin/routes/{phoneNumber}",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/admin/numbers/{phoneNumber}/history",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    ("get", "/api/admin/held", &[200, 400, 401, 403, 503], true),
    (
        "post",
        "/api/admin/held/{id}/deliver",
        &[200, 400, 401, 403, 404, 408, 409, 413, 415, 422, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients",
        &[200, 400, 401, 403, 503],
        true,
    ),
    (
        "get",
        "/api/clients/{userId}/events",
        &[200, 400, 401, 403, 404, 429, 503],
        true,
    ),
    (
        "get",
        "/api/clients/{userId}/messages",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/webhooks/sms",
        &[200, 400, 401, 408, 413, 415, 503],
        false,
    ),
    (
        "post",
        "/webhooks/{provider}",
        &[200, 204, 400, 401, 404, 405, 408, 413, 415, 503],
        false,
    ),
    (
        "get",
        "/webhooks/{provider}",
        &[200, 204, 400, 401, 404, 405, 503],
        false,
    ),
    ("get", "/healthz", &[200, 503], false),
    ("get", "/openapi.json", &[200], false),
    ("get", "/metrics", &[200, 401, 403], true),
    (
        "get",
        "/api/clients/{userId}/phone-numbers",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/admin/clients/{userId}/keys",
        &[201, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients/{userId}/keys",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "delete",
        "/api/admin/clients/{userId}/keys/{id}",
        &[204, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "put",
        "/api/admin/clients/{userId}/endpoint",
        &[200, 400, 401, 403, 404, 408, 413, 415, 422, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients/{userId}/endpoint",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "delete",
        "/api/admin/clients/{userId}/endpoint",
        &[204, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients/{userId}/endpoint/secret",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/admin/clients/{userId}/endpoint/secret/rotate",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/admin/clients/{userId}/endpoint/replay",
        &[200, 400, 401, 403, 404, 408, 413, 415, 503],
        true,
    ),
    (
        "get",
        "/api/admin/clients/{userId}/deliveries",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/admin/deliveries/{id}/retry",
        &[202, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "put",
        "/api/clients/{userId}/endpoint",
        &[200, 400, 401, 403, 404, 408, 413, 415, 422, 503],
        true,
    ),
    (
        "get",
        "/api/clients/{userId}/endpoint",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/clients/{userId}/endpoint/secret",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/clients/{userId}/endpoint/secret/rotate",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "get",
        "/api/clients/{userId}/deliveries",
        &[200, 400, 401, 403, 404, 503],
        true,
    ),
    (
        "post",
        "/api/clients/{userId}/deliveries/{id}/retry",
        &[202, 400, 401, 403, 404, 503],
        true,
    ),
];

/// Each provider's webhook, whose answers are the provider's own.
const PROVIDER_PATH: &str = "/webhooks/{provider}";

async fn document(server: &TestServer) -> Value {
    // Public: no token.
    let response = server
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert_eq!(content_type, "application/json");
    response.json().await.expect("JSON document")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_and_status() {
    let server = TestServer::start(memory_store()).await;
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item").keys();
            methods.map(|method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, ..)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, expected, "documented operations");

    for (method, path, statuses, secured) in ROUTES {
        let operation = &doc["paths"][path][method];
        let responses = operation["responses"].as_object().expect("responses");
        let listed: Vec<u16> = responses
            .keys()
            .map(|status| status.parse().expect("numeric status"))
            .collect();
        assert_eq!(listed, statuses, "{method} {path}");
        for (status, response) in responses {
            if path == PROVIDER_PATH && ["200", "204", "503"].contains(&status.as_str()) {
                // The provider's own answer: TwiML, XML, or no body.
                continue;
            }
            if status == "204" {
                assert!(
                    response.get("content").is_none(),
                    "{method} {path}: no body"
                );
                continue;
            }
            // The live inbox answers with a stream of events; errors are JSON.
            let media_type = match (path, status.as_str()) {
                ("/api/clients/{userId}/events", "200") => "text/event-stream",
                ("/metrics", "200") => "text/plain; version=0.0.4; charset=utf-8",
                _ => "application/json",
            };
            let content = &response["content"][media_type];
            assert!(
                content.is_object(),
                "{method} {path} {status}: {media_type} body"
            );
            if !status.starts_with('2') {
                assert_eq!(
                    content["schema"]["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status}: error body"
                );
            }
        }
        let security = operation.get("security");
        if secured {
            assert_eq!(
                security,
                Some(&serde_json::json!([{"bearer": []}])),
                "{path}"
            );
        } else {
            assert_eq!(security, None, "{path}");
        }
    }
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&"http".into(), &"bearer".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_bodies_and_parameters() {
    let server = TestServer::start(memory_store()).await;
    let doc = document(&server).await;
    let paths = &doc["paths"];

    let webhook = &paths["/webhooks/sms"]["post"]["requestBody"]["content"];
    assert_eq!(
        webhook["application/json"]["schema"]["$ref"],
        "#/components/schemas/JsonPayload"
    );
    assert_eq!(
        webhook["application/x-www-form-urlencoded"]["schema"]["$ref"],
        "#/components/schemas/FormPayload"
    );
    let update = &paths["/api/admin/update-phone-numbers"]["post"]["requestBody"]["content"];
    assert!(update["application/json"].is_object());

    for path in [
        "/api/admin/held",
        "/api/admin/clients",
        "/api/admin/numbers/{phoneNumber}/history",
        "/api/clients/{userId}/messages",
    ] {
        let parameters = paths[path]["get"]["parameters"].as_array().expect("params");
        let find = |name: &str| {
            parameters
                .iter()
                .find(|p| p["name"] == name && p["in"] == "query")
                .unwrap_or_else(|| panic!("{path}: query parameter {name}"))
        };
        let limit = &find("limit")["schema"];
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&1.into(), &1000.into())
        );
        assert_eq!(find("after")["schema"]["type"], "string");
    }
    for (path, name) in [
        ("/api/admin/clients/{userId}/phone-numbers", "userId"),
        ("/api/admin/routes/{phoneNumber}", "phoneNumber"),
        ("/api/admin/numbers/{phoneNumber}/history", "phoneNumber"),
        ("/api/clients/{userId}/messages", "userId"),
        ("/api/clients/{userId}/events", "userId"),
    ] {
        let parameters = paths[path]["get"]["parameters"].as_array().expect("params");
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
            "{path}: path parameter {name}"
        );
    }

    // The provider segment lists exactly the providers the server configures.
    let configured: BTreeSet<String> =
        ibiki_examples::providers(&ibiki_examples::ProviderFlags::default())
            .expect("valid")
            .registry
            .iter()
            .map(|provider| provider.name().to_owned())
            .chain(["generic".to_owned()])
            .collect();
    for method in ["get", "post"] {
        let parameters = paths[PROVIDER_PATH][method]["parameters"]
            .as_array()
            .expect("params");
        let provider = parameters
            .iter()
            .find(|p| p["name"] == "provider" && p["in"] == "path")
            .expect("the provider path parameter");
        let schema = &provider["schema"];
        let names: BTreeSet<String> = schema["enum"]
            .as_array()
            .expect("an enum of names")
            .iter()
            .map(|name| name.as_str().expect("a name").to_owned())
            .collect();
        assert_eq!(names, configured, "{method} {PROVIDER_PATH}");
    }
    let provider_body = &paths[PROVIDER_PATH]["post"]["requestBody"]["content"];
    for content_type in ["application/json", "application/x-www-form-urlencoded"] {
        assert!(provider_body[content_type].is_object(), "{content_type}");
    }
    let twiml = &paths[PROVIDER_PATH]["post"]["responses"]["200"]["content"];
    assert!(twiml["text/xml"].is_object(), "{twiml}");

    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error", "message"]));
    for field in ["error", "message", "invalid", "conflicts"] {
        assert!(error["properties"][field].is_object(), "Error.{field}");
    }
}

/// Every documented operation is one the router serves: its path is routed
/// (a wrong method answers 405, not the 404 fallback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served() {
    let server = TestServer::start(memory_store()).await;
    for (method, template, ..) in ROUTES {
        let path = template
            .replace("{userId}", "123")
            .replace("{phoneNumber}", "%2B14155550100")
            .replace("{provider}", "twilio")
            .replace("{id}", "1");
        // No route takes PATCH.
        let answer = send(server.request(Method::PATCH, &path)).await;
        assert_eq!(answer.0, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
}
