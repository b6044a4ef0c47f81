//! `POST /api/admin/update-phone-numbers` and
//! `GET /api/admin/clients/{userId}/phone-numbers`: the list replaces the
//! client's whole set, all or nothing (422 for bad numbers, 409 for another
//! client's), and malformed requests are 400, 413 or 415.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    admin, assert_error, assign, assign_ok, get, get_ok, numbers_of, request, router, send,
};

const PATH: &str = "/api/admin/update-phone-numbers";

#[tokio::test]
async fn a_string_or_an_array_becomes_the_whole_set() {
    let router = router();
    let answer = assign_ok(&router, "123", json!("+1 415 555 0100, +1 415 555 0101")).await;
    assert_eq!(
        answer,
        json!({"userId": "123", "phoneNumbers": ["+14155550100", "+14155550101"], "count": 2, "released": 0})
    );
    let answer = assign_ok(
        &router,
        "123",
        json!(["(+1) 415-555-0102", "+1 415 555 0101"]),
    )
    .await;
    assert_eq!(
        answer,
        json!({"userId": "123", "phoneNumbers": ["+14155550101", "+14155550102"], "count": 2, "released": 0})
    );
    assert_eq!(
        get_ok(&router, "/api/admin/clients/123/phone-numbers").await,
        json!({"userId": "123", "phoneNumbers": ["+14155550101", "+14155550102"]})
    );
}

#[tokio::test]
async fn an_empty_string_or_array_removes_every_number() {
    let router = router();
    for empty in [json!(""), json!([])] {
        assign_ok(&router, "123", json!("+14155550100")).await;
        let answer = assign_ok(&router, "123", empty).await;
        assert_eq!(
            answer,
            json!({"userId": "123", "phoneNumbers": [], "count": 0, "released": 0})
        );
        assert_eq!(numbers_of(&router, "123").await, json!([]));
    }
}

#[tokio::test]
async fn client_ids_in_paths_are_percent_decoded_and_unknown_ones_have_no_numbers() {
    let router = router();
    assign_ok(&router, "team a/1", json!("+14155550109")).await;
    assert_eq!(
        get_ok(&router, "/api/admin/clients/team%20a%2F1/phone-numbers").await,
        json!({"userId": "team a/1", "phoneNumbers": ["+14155550109"]})
    );
    assert_eq!(
        get_ok(&router, "/api/admin/clients/nobody/phone-numbers").await,
        json!({"userId": "nobody", "phoneNumbers": []})
    );
    let control = get(&router, "/api/admin/clients/a%0Ab/phone-numbers").await;
    assert_error(&control, StatusCode::BAD_REQUEST, "invalid_user_id");
    let not_utf8 = get(&router, "/api/admin/clients/%FF/phone-numbers").await;
    assert_error(&not_utf8, StatusCode::BAD_REQUEST, "invalid_path");
    let too_long = format!("/api/admin/clients/{}/phone-numbers", "x".repeat(129));
    assert_error(
        &get(&router, &too_long).await,
        StatusCode::BAD_REQUEST,
        "invalid_user_id",
    );
    // An empty segment reaches the handler (the OpenAPI document says 404).
    let empty = get(&router, "/api/admin/clients//phone-numbers").await;
    assert_error(&empty, StatusCode::BAD_REQUEST, "invalid_user_id");
    assert_eq!(empty.1["message"], "userId: client id is empty");
}

#[tokio::test]
async fn invalid_numbers_are_422_each_listed_and_nothing_changes() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    let numbers = json!(["+14155550101", "abc", "+1 415 555 0102", "12"]);
    let answer = assign(&router, "123", numbers).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_numbers",
    );
    let invalid = answer.1["invalid"].as_array().expect("invalid entries");
    let listed: Vec<_> = invalid.iter().map(|e| (&e["index"], &e["input"])).collect();
    assert_eq!(
        listed,
        [(&json!(1), &json!("abc")), (&json!(3), &json!("12"))]
    );
    assert_eq!(
        invalid[0]["reason"],
        "letter 'a' at position 0: letters are not phone number digits"
    );
    // The string form counts entries the same way.
    let answer = assign(&router, "123", json!("+14155550101, abc")).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_numbers",
    );
    assert_eq!(answer.1["invalid"][0]["index"], 1);
    assert_eq!(numbers_of(&router, "123").await, json!(["+14155550100"]));
}

#[tokio::test]
async fn another_clients_numbers_are_409_each_listed_and_nothing_changes() {
    let router = router();
    assign_ok(&router, "456", json!("+14155550100, +14155550101")).await;
    assign_ok(&router, "123", json!("+14155550102")).await;
    let wanted = json!("+14155550103, +14155550101, +14155550100");
    let answer = assign(&router, "123", wanted).await;
    assert_error(&answer, StatusCode::CONFLICT, "phone_number_conflict");
    assert_eq!(
        answer.1["conflicts"],
        json!([
            {"phoneNumber": "+14155550100", "userId": "456"},
            {"phoneNumber": "+14155550101", "userId": "456"},
        ])
    );
    assert_eq!(numbers_of(&router, "123").await, json!(["+14155550102"]));
    assert_eq!(
        numbers_of(&router, "456").await,
        json!(["+14155550100", "+14155550101"])
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_and_other_content_types_415() {
    let router = router();
    let bodies = [
        (
            r#"{"userId": "123", "phoneNumbers": "+14155550100""#,
            "invalid_json",
        ),
        ("not json", "invalid_json"),
        (r#"{"phoneNumbers": "+14155550100"}"#, "invalid_json"),
        (r#"{"userId": "123"}"#, "invalid_json"),
        (
            r#"{"userId": 123, "phoneNumbers": "+14155550100"}"#,
            "invalid_json",
        ),
        (r#"{"userId": "123", "phoneNumbers": null}"#, "invalid_json"),
        (
            r#"{"userId": "123", "phoneNumbers": [1, 2]}"#,
            "invalid_json",
        ),
        ("[]", "invalid_json"),
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
        let request = request(Method::POST, PATH, admin(), Some("application/json"), body);
        let answer = send(&router, request).await;
        assert_eq!(answer.1["error"], code, "{body}");
        assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
    let answer = assign(&router, &"x".repeat(129), json!("+14155550100")).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_user_id");
    let shape = assign(&router, "123", json!(14155550100_u64)).await;
    assert_eq!(
        shape.1["message"],
        "phoneNumbers must be a comma-separated string or an array of strings"
    );
    let body = r#"{"userId": "123", "phoneNumbers": "+14155550100"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let request = request(Method::POST, PATH, admin(), content_type, body);
        let answer = send(&router, request).await;
        assert_error(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_eq!(numbers_of(&router, "123").await, json!([]));
}

#[tokio::test]
async fn list_and_body_limits_have_their_own_codes() {
    let router = router();
    let many: Vec<String> = (0..1001).map(|i| format!("+1415555{i:04}")).collect();
    let answer = assign(&router, "123", json!(many)).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_phone_numbers",
    );
    // 70 KiB of text: over the normalizer's 64 KiB, under the body limit.
    let large = "+14155550100,".repeat(70 * 1024 / 13);
    let answer = assign(&router, "123", json!(large)).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "phone_numbers_too_large",
    );
    // Over the 256 KiB admin body limit.
    let answer = assign(&router, "123", json!(" ".repeat(300 * 1024))).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        answer.1["message"],
        "request body is larger than 262144 bytes"
    );
    assert_eq!(numbers_of(&router, "123").await, json!([]));
}
