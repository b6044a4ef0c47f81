//! The inbound-reply webhook: formats, receipts, retries, held replies and
//! every way a payload can be wrong.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{TestServer, assert_error, reply, send};

store_tests!(
    json_replies_are_routed_to_the_owner,
    form_replies_are_routed_to_the_owner,
    retries_are_recorded_once,
    replies_without_a_message_id_are_always_recorded,
    held_replies_are_released_on_assignment,
    bad_payloads_are_400_and_record_nothing,
    nul_characters_are_kept_as_replacement_characters,
);

async fn json_replies_are_routed_to_the_owner(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server
        .assign_ok("123", json!("+14155550100, +14155550101"))
        .await;
    let before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns");
    let answer = server
        .webhook(&reply("SM1", "+14155550101", "Yes, 3pm works"))
        .await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );

    let inbox = server.inbox("123").await;
    assert_eq!(inbox.len(), 1);
    let message = &inbox[0];
    let keys: Vec<&str> = message
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 7, "{message}");
    assert!(message["id"].is_u64(), "{message}");
    assert_eq!(message["delivery"]["kind"], "routed", "{message}");
    let instant = |field: &serde_json::Value| {
        time::OffsetDateTime::parse(
            field.as_str().expect("a time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    assert!(
        instant(&message["delivery"]["at"]) >= instant(&message["receivedAt"]),
        "routed by the store after its arrival: {message}"
    );
    assert_eq!(message["messageId"], "SM1");
    assert_eq!(message["from"], "+15005550006");
    assert_eq!(message["to"], "+14155550101");
    assert_eq!(message["body"], "Yes, 3pm works");
    let received = message["receivedAt"].as_str().expect("receivedAt");
    let received = OffsetDateTime::parse(received, &Rfc3339).expect("RFC 3339");
    assert!(
        received >= before && received <= OffsetDateTime::now_utc(),
        "{received}"
    );
    // Nobody else sees it.
    assert!(server.inbox("456").await.is_empty());
    assert!(server.held().await.is_empty());
}

async fn form_replies_are_routed_to_the_owner(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    // Twilio posts many more fields; they are ignored.
    let form = "ToCountry=US&MessageSid=SM9f&SmsSid=SM9f&From=%2B15005550006\
                &To=%2B1+(415)+555-0100&Body=See+you+%26+bye&NumMedia=0&ApiVersion=2010-04-01";
    let request = server.webhook_raw("application/x-www-form-urlencoded; charset=utf-8", form);
    assert_eq!(
        send(request).await,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    let inbox = server.inbox("123").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["messageId"], "SM9f");
    assert_eq!(inbox[0]["to"], "+14155550100", "stored canonical");
    assert_eq!(inbox[0]["body"], "See you & bye");
}

async fn retries_are_recorded_once(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let first = reply("SM1", "+14155550100", "hi");
    assert_eq!(server.webhook(&first).await.1["status"], "routed");
    for _ in 0..3 {
        assert_eq!(
            server.webhook(&first).await,
            (StatusCode::OK, json!({"status": "duplicate"}))
        );
    }
    // The same id as a form post is the same message.
    let form = "MessageSid=SM1&From=%2B15005550006&To=%2B14155550100&Body=hi";
    let request = server.webhook_raw("application/x-www-form-urlencoded", form);
    assert_eq!(send(request).await.1, json!({"status": "duplicate"}));
    // Held replies are deduplicated too.
    let held = reply("SM2", "+14155550199", "anyone?");
    assert_eq!(server.webhook(&held).await.1, json!({"status": "held"}));
    assert_eq!(
        server.webhook(&held).await.1,
        json!({"status": "duplicate"})
    );
    assert_eq!(server.inbox("123").await.len(), 1);
    assert_eq!(server.held().await.len(), 1);
}

async fn replies_without_a_message_id_are_always_recorded(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let anonymous = json!({"from": "+15005550006", "to": "+14155550100", "body": "hi"});
    let with_null = json!({"messageId": null, "from": "+15005550006", "to": "+14155550100"});
    for payload in [&anonymous, &anonymous, &with_null] {
        assert_eq!(server.webhook(payload).await.1["status"], "routed");
    }
    let inbox = server.inbox("123").await;
    assert_eq!(inbox.len(), 3, "no id, no deduplication");
    assert_eq!(inbox[0]["messageId"], Value::Null);
    assert_eq!(inbox[2]["body"], "", "a missing body is empty");
}

async fn held_replies_are_released_on_assignment(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let early = [
        reply("SM1", "+14155550100", "first"),
        reply("SM2", "+1 (415) 555-0100", "second"),
        reply("SM3", "+14155550101", "other number"),
    ];
    for payload in &early {
        assert_eq!(
            server.webhook(payload).await,
            (StatusCode::OK, json!({"status": "held"}))
        );
    }
    let unparsed = reply("SM4", "not a number", "lost?");
    assert_eq!(server.webhook(&unparsed).await.1, json!({"status": "held"}));

    let held = server.held().await;
    let ids: Vec<&Value> = held.iter().map(|m| &m["messageId"]).collect();
    assert_eq!(ids, ["SM1", "SM2", "SM3", "SM4"]);
    assert_eq!(held[1]["to"], "+14155550100", "canonical where it parsed");
    assert_eq!(held[3]["to"], "not a number", "as posted where it did not");

    let body = server.assign_ok("123", json!("+14155550100")).await;
    assert_eq!(body["released"], 2);
    let inbox = server.inbox("123").await;
    let bodies: Vec<&Value> = inbox.iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies, ["first", "second"]);
    let still_held: Vec<Value> = server
        .held()
        .await
        .iter()
        .map(|m| m["messageId"].clone())
        .collect();
    assert_eq!(still_held, [json!("SM3"), json!("SM4")]);

    // After the release, replies go straight to the inbox.
    let answer = server.webhook(&reply("SM5", "+14155550100", "third")).await;
    assert_eq!(answer.1, json!({"status": "routed", "userId": "123"}));
    assert_eq!(server.inbox("123").await.len(), 3);
    // Re-assigning what the client already has releases nothing more.
    let body = server.assign_ok("123", json!("+14155550100")).await;
    assert_eq!(body["released"], 0);
}

async fn bad_payloads_are_400_and_record_nothing(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let json_bodies = [
        (
            r#"{"messageId": "SM1", "from": "+15005550006", "body": "no to"}"#,
            "invalid_payload",
        ),
        (
            r#"{"messageId": "SM1", "to": "+14155550100", "body": "no from"}"#,
            "invalid_payload",
        ),
        (
            r#"{"messageId": "SM1", "from": "+1", "to": "+14155550100""#,
            "invalid_payload",
        ),
        (
            r#"{"messageId": 7, "from": "+1", "to": "+14155550100"}"#,
            "invalid_payload",
        ),
        (
            r#"{"from": "+1", "to": "+14155550100", "body": ["x"]}"#,
            "invalid_payload",
        ),
        (r#"["+14155550100"]"#, "invalid_payload"),
        ("", "invalid_payload"),
        (
            r#"{"messageId": "", "from": "+1", "to": "+14155550100"}"#,
            "invalid_message_id",
        ),
    ];
    for (body, code) in json_bodies {
        let answer = send(server.webhook_raw("application/json", body)).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
    let not_utf8 =
        send(server.webhook_raw("application/json", b"{\"to\": \"\xff\"}".to_vec())).await;
    assert_error(&not_utf8, StatusCode::BAD_REQUEST, "invalid_payload");
    let long_id = reply(&"x".repeat(257), "+14155550100", "hi");
    assert_error(
        &server.webhook(&long_id).await,
        StatusCode::BAD_REQUEST,
        "invalid_message_id",
    );
    let long_to = reply("SM1", &"1".repeat(257), "hi");
    assert_error(
        &server.webhook(&long_to).await,
        StatusCode::BAD_REQUEST,
        "field_too_long",
    );
    // 40 KiB of text: under the body limit, over the 32 KiB body field limit.
    let long_body = reply("SM1", "+14155550100", &"x".repeat(40 * 1024));
    assert_error(
        &server.webhook(&long_body).await,
        StatusCode::BAD_REQUEST,
        "field_too_long",
    );
    let form = server.webhook_raw(
        "application/x-www-form-urlencoded",
        "MessageSid=SM1&From=%2B1",
    );
    assert_error(
        &send(form).await,
        StatusCode::BAD_REQUEST,
        "invalid_payload",
    );

    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let request =
            server.webhook_raw(content_type, reply("SM1", "+14155550100", "hi").to_string());
        assert_error(
            &send(request).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let untyped = server
        .request(reqwest::Method::POST, "/webhooks/sms")
        .body(reply("SM1", "+14155550100", "hi").to_string());
    assert_error(
        &send(untyped).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // Over 64 KiB.
    let oversized = reply("SM1", "+14155550100", &"x".repeat(64 * 1024));
    assert_error(
        &server.webhook(&oversized).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    assert!(server.inbox("123").await.is_empty());
    assert!(server.held().await.is_empty());
    // SM1 was never recorded, so it is not a duplicate now.
    let answer = server.webhook(&reply("SM1", "+14155550100", "hi")).await;
    assert_eq!(answer.1["status"], "routed");
}

/// PostgreSQL text cannot hold NUL; a reply carrying one is still recorded
/// (never a 503 the provider would retry forever), with U+FFFD in its place.
async fn nul_characters_are_kept_as_replacement_characters(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    let payload =
        json!({"messageId": "SM1", "from": "+1500\u{0}", "to": "+14155550100", "body": "a\u{0}b"});
    let answer = server.webhook(&payload).await;
    assert_eq!(
        answer,
        (StatusCode::OK, json!({"status": "routed", "userId": "123"}))
    );
    let inbox = server.inbox("123").await;
    assert_eq!(inbox[0]["body"], "a\u{fffd}b");
    assert_eq!(inbox[0]["from"], "+1500\u{fffd}");
}
