//! The admin routes: assignment, its errors, and the read-only lookups.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Options, TestServer, assert_error, send};

store_tests!(
    assigns_from_a_string_or_an_array,
    an_empty_list_removes_every_number,
    invalid_numbers_are_all_listed_and_change_nothing,
    conflicts_are_listed_and_change_nothing,
    malformed_requests_are_400,
    lookups_of_numbers_and_owners,
);

async fn assigns_from_a_string_or_an_array(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let body = server
        .assign_ok("123", json!("+1 415 555 0100, +1 415 555 0101"))
        .await;
    assert_eq!(
        body,
        json!({"userId": "123", "phoneNumbers": ["+14155550100", "+14155550101"], "count": 2, "released": 0})
    );
    // The array form replaces the whole set.
    let body = server
        .assign_ok("123", json!(["(+1) 415-555-0102", "+1 415 555 0101"]))
        .await;
    assert_eq!(
        body,
        json!({"userId": "123", "phoneNumbers": ["+14155550101", "+14155550102"], "count": 2, "released": 0})
    );
    assert_eq!(
        server.numbers_of("123").await,
        json!(["+14155550101", "+14155550102"])
    );
}

async fn an_empty_list_removes_every_number(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    for empty in [json!(""), json!([])] {
        server.assign_ok("123", json!("+14155550100")).await;
        let body = server.assign_ok("123", empty).await;
        assert_eq!(
            body,
            json!({"userId": "123", "phoneNumbers": [], "count": 0, "released": 0})
        );
        assert_eq!(server.numbers_of("123").await, json!([]));
    }
}

async fn invalid_numbers_are_all_listed_and_change_nothing(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let answer = server
        .assign(
            "123",
            json!(["+14155550101", "abc", "+1 415 555 0102", "12"]),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_numbers",
    );
    let invalid = answer.1["invalid"].as_array().expect("invalid entries");
    let listed: Vec<_> = invalid
        .iter()
        .map(|e| (e["index"].clone(), e["input"].clone()))
        .collect();
    assert_eq!(listed, [(json!(1), json!("abc")), (json!(3), json!("12"))]);
    for entry in invalid {
        assert!(
            entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{entry}"
        );
    }
    assert_eq!(
        invalid[0]["reason"],
        "letter 'a' at position 0: letters are not phone number digits"
    );
    // The string form reports the same indexes.
    let answer = server.assign("123", json!("+14155550101, abc")).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_numbers",
    );
    assert_eq!(answer.1["invalid"][0]["index"], 1);
    assert_eq!(server.numbers_of("123").await, json!(["+14155550100"]));
}

async fn conflicts_are_listed_and_change_nothing(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server
        .assign_ok("456", json!("+14155550100, +14155550101"))
        .await;
    server.assign_ok("123", json!("+14155550102")).await;
    let answer = server
        .assign("123", json!("+14155550103, +14155550101, +14155550100"))
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "phone_number_conflict");
    assert_eq!(
        answer.1["conflicts"],
        json!([
            {"phoneNumber": "+14155550100", "userId": "456"},
            {"phoneNumber": "+14155550101", "userId": "456"},
        ])
    );
    assert_eq!(server.numbers_of("123").await, json!(["+14155550102"]));
    assert_eq!(
        server.numbers_of("456").await,
        json!(["+14155550100", "+14155550101"])
    );
    let (_, route) = send(server.get("/api/admin/routes/%2B14155550103")).await;
    assert_eq!(route["userId"], json!(null));
}

async fn malformed_requests_are_400(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let path = "/api/admin/update-phone-numbers";
    let bodies = [
        (
            r#"{"userId": "123", "phoneNumbers": "+14155550100""#,
            "invalid_json",
        ),
        (r#"not json"#, "invalid_json"),
        (r#"{"phoneNumbers": "+14155550100"}"#, "invalid_json"),
        (r#"{"userId": "123"}"#, "invalid_json"),
        (
            r#"{"userId": 123, "phoneNumbers": "+14155550100"}"#,
            "invalid_json",
        ),
        (r#"{"userId": "123", "phoneNumbers": null}"#, "invalid_json"),
        (
            r#"{"userId": "123", "phoneNumbers": 14155550100}"#,
            "invalid_json",
        ),
        (
            r#"{"userId": "123", "phoneNumbers": [1, 2]}"#,
            "invalid_json",
        ),
        (r#"[]"#, "invalid_json"),
        (
            r#"{"userId": "", "phoneNumbers": "+14155550100"}"#,
            "invalid_user_id",
        ),
        (
            r#"{"userId": "a\nb", "phoneNumbers": "+14155550100"}"#,
            "invalid_user_id",
        ),
    ];
    for (body, code) in bodies {
        let request = server
            .request(Method::POST, path)
            .bearer_auth(crate::harness::TOKEN)
            .header("content-type", "application/json")
            .body(body);
        assert_error(&send(request).await, StatusCode::BAD_REQUEST, code);
    }
    let too_long = json!({"userId": "x".repeat(129), "phoneNumbers": "+14155550100"});
    assert_error(
        &send(server.post_json(path, &too_long)).await,
        StatusCode::BAD_REQUEST,
        "invalid_user_id",
    );
    let not_json = server
        .request(Method::POST, path)
        .bearer_auth(crate::harness::TOKEN)
        .header("content-type", "text/plain")
        .body(r#"{"userId": "123", "phoneNumbers": ""}"#);
    assert_error(
        &send(not_json).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // None of it assigned anything.
    assert_eq!(server.numbers_of("123").await, json!([]));
    // Bad ids in paths are 400 too.
    let control = "/api/admin/clients/a%0Ab/phone-numbers";
    assert_error(
        &send(server.get(control)).await,
        StatusCode::BAD_REQUEST,
        "invalid_user_id",
    );
    let not_utf8 = "/api/clients/%FF/messages";
    assert_error(
        &send(server.get(not_utf8)).await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
}

async fn lookups_of_numbers_and_owners(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let (status, body) = send(server.get("/api/admin/clients/123/phone-numbers")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"userId": "123", "phoneNumbers": ["+14155550100"]})
    );
    let (status, body) = send(server.get("/api/admin/clients/nobody/phone-numbers")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"userId": "nobody", "phoneNumbers": []}));
    // An id with a space and a slash, percent-encoded.
    server.assign_ok("team a/1", json!("+14155550109")).await;
    let (_, body) = send(server.get("/api/admin/clients/team%20a%2F1/phone-numbers")).await;
    assert_eq!(
        body,
        json!({"userId": "team a/1", "phoneNumbers": ["+14155550109"]})
    );

    for path in [
        "/api/admin/routes/%2B14155550100",
        "/api/admin/routes/%2b1%20415%20555%200100",
        "/api/admin/routes/+14155550100",
        "/api/admin/routes/tel:%2B1-415-555-0100",
    ] {
        let (status, body) = send(server.get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(
            body,
            json!({"phoneNumber": "+14155550100", "userId": "123"}),
            "{path}"
        );
    }
    let (status, body) = send(server.get("/api/admin/routes/%2B14155550101")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"phoneNumber": "+14155550101", "userId": null}));
    for bad in ["/api/admin/routes/abc", "/api/admin/routes/4155550100"] {
        assert_error(
            &send(server.get(bad)).await,
            StatusCode::BAD_REQUEST,
            "invalid_phone_number",
        );
    }
}

#[tokio::test]
async fn a_default_region_reads_national_numbers() {
    let options = Options {
        region: Some("US"),
        ..Options::default()
    };
    let server = TestServer::start_with(crate::harness::memory_store(), options).await;
    let body = server
        .assign_ok("123", json!("(415) 555-0100, +44 20 7946 0958"))
        .await;
    assert_eq!(
        body["phoneNumbers"],
        json!(["+14155550100", "+442079460958"])
    );
    let (_, body) = send(server.get("/api/admin/routes/415-555-0100")).await;
    assert_eq!(
        body,
        json!({"phoneNumber": "+14155550100", "userId": "123"})
    );
}

#[tokio::test]
async fn list_limits_have_their_own_codes() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    let many: Vec<String> = (0..1001).map(|i| format!("+1415555{i:04}")).collect();
    let answer = server.assign("123", json!(many)).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_phone_numbers",
    );
    // 70 KiB of text: over the normalizer's 64 KiB, under the body limit.
    let large = "+14155550100,".repeat(70 * 1024 / 13);
    let answer = server.assign("123", json!(large)).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "phone_numbers_too_large",
    );
    // Over the admin body limit.
    let huge = " ".repeat(300 * 1024);
    let answer = server.assign("123", json!(huge)).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(server.numbers_of("123").await, json!([]));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    assert_error(
        &send(server.get("/nope")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let delete = server
        .request(Method::DELETE, "/api/admin/held")
        .bearer_auth(crate::harness::TOKEN);
    assert_error(
        &send(delete).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let get_webhook = server.request(Method::GET, "/webhooks/sms");
    assert_error(
        &send(get_webhook).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}
