//! `POST /webhooks/sms` without a secret: JSON and form replies answered
//! routed, held or duplicate, and every way a payload is refused (400, 413,
//! 415, 503) without recording anything.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::down_store::{DETAIL, DownStore};
use crate::support::{
    app_over, assert_error, assign_ok, field, held, inbox, reply, request, router, send, webhook,
    webhook_raw,
};

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_json_reply_to_an_owned_number_is_routed_to_its_owner() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100, +14155550101")).await;
    let answer = webhook(&router, &reply("SM1", "+1 415 555 0101", "Yes, 3pm works")).await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    let inbox = inbox(&router, "123").await;
    assert_eq!(inbox.len(), 1);
    let message = &inbox[0];
    assert_eq!(message["messageId"], "SM1");
    assert_eq!(message["from"], "+15005550006");
    assert_eq!(message["to"], "+14155550101", "stored canonical");
    assert_eq!(message["body"], "Yes, 3pm works");
    assert_eq!(message["delivery"]["kind"], "routed");
    // Both RFC 3339 with whole microseconds, in UTC: they compare as text.
    let (delivered, received) = (&message["delivery"]["at"], &message["receivedAt"]);
    assert!(
        delivered.as_str() >= received.as_str(),
        "routed by the store after its arrival: {message}"
    );
    assert_eq!(held(&router).await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_twilio_style_form_reply_is_routed_and_its_extra_fields_ignored() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    let form = "ToCountry=US&MessageSid=SM9f&From=%2B15005550006\
                &To=%2B1+(415)+555-0100&Body=See+you+%26+bye&NumMedia=0";
    let answer = webhook_raw(
        &router,
        "application/x-www-form-urlencoded; charset=utf-8",
        form,
    )
    .await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    let inbox = inbox(&router, "123").await;
    assert_eq!(field(&inbox, "messageId"), ["SM9f"]);
    assert_eq!(field(&inbox, "to"), ["+14155550100"]);
    assert_eq!(field(&inbox, "body"), ["See you & bye"]);
}

#[tokio::test]
async fn replies_nobody_can_receive_are_held_as_held_or_unparsed() {
    let router = router();
    for (id, to) in [("SM1", "+14155550199"), ("SM2", "not a number")] {
        let answer = webhook(&router, &reply(id, to, "anyone?")).await;
        assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})), "{to}");
    }
    let held = held(&router).await;
    assert_eq!(field(&held, "to"), ["+14155550199", "not a number"]);
    let kinds: Vec<&Value> = held.iter().map(|m| &m["delivery"]["kind"]).collect();
    assert_eq!(kinds, ["held", "unparsed"]);
}

#[tokio::test]
async fn a_retried_message_id_is_a_duplicate_in_either_format() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    let first = reply("SM1", "+14155550100", "hi");
    assert_eq!(webhook(&router, &first).await.1["status"], "routed");
    let duplicate = (StatusCode::OK, json!({"status": "duplicate"}));
    assert_eq!(webhook(&router, &first).await, duplicate);
    let form = "MessageSid=SM1&From=%2B15005550006&To=%2B14155550100&Body=hi";
    assert_eq!(webhook_raw(&router, FORM, form).await, duplicate);
    // Held replies are recognized too.
    let lost = reply("SM2", "+14155550199", "anyone?");
    assert_eq!(webhook(&router, &lost).await.1, json!({"status": "held"}));
    assert_eq!(webhook(&router, &lost).await, duplicate);
    assert_eq!(inbox(&router, "123").await.len(), 1);
    assert_eq!(held(&router).await.len(), 1);
}

#[tokio::test]
async fn replies_without_a_message_id_are_recorded_every_time() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    let anonymous = json!({"from": "+15005550006", "to": "+14155550100", "body": "hi"});
    let null_id = json!({"messageId": null, "from": "+15005550006", "to": "+14155550100"});
    for payload in [&anonymous, &anonymous, &null_id] {
        let answer = webhook(&router, payload).await;
        assert_eq!(answer.1, json!({"status": "routed", "userId": "123"}));
    }
    let inbox = inbox(&router, "123").await;
    assert_eq!(field(&inbox, "messageId"), [&Value::Null; 3]);
    assert_eq!(
        field(&inbox, "body"),
        ["hi", "hi", ""],
        "a missing body is empty"
    );
}

#[tokio::test]
async fn unreadable_payloads_are_400_invalid_payload() {
    let router = router();
    let bodies: [&[u8]; 8] = [
        br#"{"messageId": "SM1", "from": "+15005550006", "body": "no to"}"#,
        br#"{"messageId": "SM1", "to": "+14155550100", "body": "no from"}"#,
        br#"{"messageId": "SM1", "from": "+1", "to": "+14155550100""#,
        br#"{"messageId": 7, "from": "+1", "to": "+14155550100"}"#,
        br#"{"from": "+1", "to": "+14155550100", "body": ["x"]}"#,
        br#"["+14155550100"]"#,
        b"",
        b"{\"from\": \"+1\", \"to\": \"\xff\"}",
    ];
    for body in bodies {
        let answer = webhook_raw(&router, "application/json", body.to_vec()).await;
        let text = String::from_utf8_lossy(body);
        assert_eq!(answer.1["error"], "invalid_payload", "{text}");
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_payload");
    }
    let no_to = webhook_raw(&router, FORM, "MessageSid=SM1&From=%2B1").await;
    assert_error(&no_to, StatusCode::BAD_REQUEST, "invalid_payload");
    assert_eq!(held(&router).await, Vec::<Value>::new());
}

#[tokio::test]
async fn message_ids_and_fields_over_their_limits_are_400() {
    let router = router();
    for id in ["", "SM\n1", &"x".repeat(257)] {
        let answer = webhook(&router, &reply(id, "+14155550100", "hi")).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_message_id");
        assert_eq!(
            answer.1["message"],
            "message id must be 1 to 256 bytes without control characters"
        );
    }
    let long_to = webhook(&router, &reply("SM1", &"1".repeat(257), "hi")).await;
    assert_error(&long_to, StatusCode::BAD_REQUEST, "field_too_long");
    assert_eq!(
        long_to.1["message"],
        "to is 257 bytes long, at most 256 are allowed"
    );
    let long_from = json!({"from": "x".repeat(300), "to": "+14155550100"});
    let answer = webhook(&router, &long_from).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "field_too_long");
    // 40 KiB of text: under the 64 KiB body limit, over the 32 KiB field limit.
    let long_body = webhook(
        &router,
        &reply("SM1", "+14155550100", &"x".repeat(40 * 1024)),
    )
    .await;
    assert_error(&long_body, StatusCode::BAD_REQUEST, "field_too_long");
    // The 256-byte id is the largest accepted, and SM1 was never recorded.
    let longest = reply(&"x".repeat(256), "+14155550100", "hi");
    assert_eq!(
        webhook(&router, &longest).await.1,
        json!({"status": "held"})
    );
    let sm1 = webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    assert_eq!(sm1.1, json!({"status": "held"}));
}

#[tokio::test]
async fn other_content_types_are_415_and_large_bodies_413() {
    let router = router();
    let payload = reply("SM1", "+14155550100", "hi").to_string();
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let answer = webhook_raw(&router, content_type, payload.clone()).await;
        assert_error(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let untyped = request(Method::POST, "/webhooks/sms", None, None, payload);
    let answer = send(&router, untyped).await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // `+json` types are JSON.
    let vendor = reply("SM2", "+14155550100", "hi").to_string();
    let answer = webhook_raw(&router, "application/vnd.api+json", vendor).await;
    assert_eq!(answer, (StatusCode::OK, json!({"status": "held"})));
    let oversized = reply("SM3", "+14155550100", &"x".repeat(64 * 1024));
    let answer = webhook(&router, &oversized).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        answer.1["message"],
        "request body is larger than 65536 bytes"
    );
    assert_eq!(field(&held(&router).await, "messageId"), ["SM2"]);
}

#[tokio::test]
async fn another_providers_payload_is_400_naming_its_route() {
    let router = router();
    let vonage = "msisdn=15005550006&to=14155550100&messageId=0A01&text=hi";
    let answer = webhook_raw(&router, FORM, vonage).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "other_provider_payload");
    let message = answer.1["message"].as_str().expect("message");
    assert!(
        message.starts_with("this is a Vonage payload: post it to /webhooks/vonage"),
        "{message}"
    );
    let telnyx = json!({"data": {"event_type": "message.received", "payload": {}}});
    let answer = webhook(&router, &telnyx).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "other_provider_payload");
    assert_eq!(held(&router).await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_so_the_provider_retries() {
    let router = app_over(Arc::new(DownStore)).router();
    let answer = webhook(&router, &reply("SM1", "+14155550100", "hi")).await;
    assert_error(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert_eq!(answer.1["message"], "the store is unavailable; retry later");
    assert!(!answer.1.to_string().contains(DETAIL), "{}", answer.1);
    // A bad payload is still the sender's fault, not the store's.
    let answer = webhook_raw(&router, "application/json", "{").await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_payload");
}
