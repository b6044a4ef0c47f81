use ibiki_core::PhoneNumber;
use ibiki_providers::BasicCredentials;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::bandwidth::Bandwidth;
use ibiki_providers::bandwidth::BandwidthEvent;
use ibiki_providers::bandwidth::BandwidthMessage;
use proptest::prelude::*;
use serde::Deserialize;

use super::{POST, at, fixture, headers, json_value, normalizer};

const URL: &str = "https://sms.example.com/webhooks/bandwidth";
const NOW: i64 = 1_700_000_000;

fn credentials() -> BasicCredentials {
    BasicCredentials::new("bw-callbacks", "s3cret-pass".parse().expect("secret"))
}

fn bandwidth() -> Bandwidth {
    Bandwidth::new(Signing::Verify(credentials()))
}

fn receive(
    provider: &Bandwidth,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", "application/json; charset=utf-8")];
    if let Some(authorization) = authorization {
        pairs.push(("authorization", authorization));
    }
    let headers = headers(&pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(&POST, URL, &headers, body, at(NOW)),
    )
}

fn replies(received: Received) -> Vec<ibiki_core::InboundReply> {
    match received {
        Received::Replies(replies) => replies,
        Received::Skipped { event } => panic!("skipped {event}"),
    }
}

#[test]
fn documented_payload_decodes_with_every_field() {
    let body = fixture("bandwidth/message-received.json");
    let events: Vec<BandwidthEvent> = serde_json::from_slice(&body).expect("events");
    let [event] = events.as_slice() else {
        panic!("one event expected");
    };
    assert_eq!(event.kind, "message-received");
    assert_eq!(event.time.as_deref(), Some("2016-09-14T18:20:16Z"));
    assert_eq!(
        event.description.as_deref(),
        Some("Incoming message received")
    );
    assert_eq!(event.to.as_deref(), Some("+12345678902"));
    let message = BandwidthMessage::deserialize(&event.message).expect("message");
    assert_eq!(message.id, "14762070468292kw2fuqty55yp2b2");
    assert_eq!(message.time.as_deref(), Some("2016-09-14T18:20:16Z"));
    assert_eq!(message.to, ["+12345678902"]);
    assert_eq!(message.from, "+12345678901");
    assert_eq!(message.text.as_deref(), Some("Hey, check this out!"));
    assert_eq!(
        message.application_id.as_deref(),
        Some("93de2206-9669-4e07-948d-329f4b722ee2")
    );
    assert_eq!(message.media.len(), 1);
    assert!(message.media[0].ends_with("/0/bw.png"));
    assert_eq!(message.owner.as_deref(), Some("+12345678902"));
    assert_eq!(message.direction.as_deref(), Some("in"));
    assert_eq!(message.segment_count, Some(1));
}

#[test]
fn documented_message_becomes_a_reply_to_the_owner() {
    let body = fixture("bandwidth/message-received.json");
    let replies =
        replies(receive(&bandwidth(), &body, Some(&credentials().header_value())).expect("valid"));
    let [reply] = replies.as_slice() else {
        panic!("one reply expected");
    };
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("14762070468292kw2fuqty55yp2b2")
    );
    assert_eq!(reply.from, "+12345678901");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+12345678902").expect("number"))
    );
    assert_eq!(reply.body, "Hey, check this out!");
    assert_eq!(reply.received_at, at(NOW));
}

#[test]
fn several_events_in_one_delivery_give_several_replies_and_skip_receipts() {
    let body = br#"[
      {"type":"message-received","time":"2024-01-01T00:00:00Z","to":"+14155550100",
       "message":{"id":"m1","owner":"+14155550100","to":["+14155550100","+14155550101"],
                  "from":"+14155550199","text":"one","direction":"in","segmentCount":1}},
      {"type":"message-delivered","time":"2024-01-01T00:00:01Z","to":"+14155550199",
       "message":{"id":"m0","owner":"+14155550100","to":["+14155550199"],
                  "from":"+14155550100","text":"","direction":"out"}},
      {"type":"message-received","time":"2024-01-01T00:00:02Z","to":"+14155550101",
       "message":{"id":"m2","owner":"+14155550101","to":["+14155550100","+14155550101"],
                  "from":"+14155550199","text":"two","direction":"in","segmentCount":1}}
    ]"#;
    let replies =
        replies(receive(&bandwidth(), body, Some(&credentials().header_value())).expect("valid"));
    let summary: Vec<_> = replies
        .iter()
        .map(|reply| {
            (
                reply.message_id.as_ref().map(|id| id.to_string()),
                reply.to.number().map(|n| n.to_string()),
                reply.body.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some("m1".to_owned()),
                Some("+14155550100".to_owned()),
                "one".to_owned()
            ),
            (
                Some("m2".to_owned()),
                Some("+14155550101".to_owned()),
                "two".to_owned()
            ),
        ]
    );
}

#[test]
fn delivery_receipts_are_skipped() {
    let body = fixture("bandwidth/message-delivered.json");
    assert_eq!(
        receive(&bandwidth(), &body, Some(&credentials().header_value())).expect("valid"),
        Received::Skipped {
            event: "message-delivered".into()
        }
    );
    let failed = br#"[{"type":"message-failed","errorCode":4432,"description":"forbidden",
        "message":{"id":"x","from":"+14155550100","to":["+14155550199"],"direction":"out"}}]"#;
    assert_eq!(
        receive(&bandwidth(), failed, Some(&credentials().header_value())).expect("valid"),
        Received::Skipped {
            event: "message-failed".into()
        }
    );
}

#[test]
fn wrong_missing_and_malformed_credentials_are_unauthorized() {
    let body = fixture("bandwidth/message-received.json");
    let other = BasicCredentials::new("bw-callbacks", "guess".parse().expect("secret"));
    let wrong = receive(&bandwidth(), &body, Some(&other.header_value())).expect_err("wrong");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = receive(&bandwidth(), &body, None).expect_err("missing");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    let bearer = receive(&bandwidth(), &body, Some("Bearer s3cret-pass")).expect_err("bearer");
    assert!(
        matches!(bearer, WebhookError::MalformedSignature { .. }),
        "{bearer}"
    );
    for error in [wrong, missing, bearer] {
        assert_eq!(error.status(), 401);
    }
    assert!(
        bandwidth()
            .challenge()
            .is_some_and(|challenge| challenge.starts_with("Basic "))
    );
}

#[test]
fn credentials_are_checked_before_the_body_is_read() {
    let error = receive(&bandwidth(), b"not json", None).expect_err("refused");
    assert_eq!(error.status(), 401);
}

#[test]
fn unsigned_mode_accepts_and_refusing_mode_refuses() {
    let body = fixture("bandwidth/message-received.json");
    assert!(receive(&Bandwidth::new(Signing::AcceptUnsigned), &body, None).is_ok());
    let error = receive(&Bandwidth::new(Signing::RefuseUnsigned), &body, None).expect_err("no");
    assert_eq!(error.status(), 401);
}

#[test]
fn malformed_bodies_are_clear_bad_requests() {
    let provider = Bandwidth::new(Signing::AcceptUnsigned);
    for (body, needle) in [
        (&b"{\"type\":\"message-received\"}"[..], "JSON body"),
        (b"[]", "empty array"),
        (b"[{\"message\":{}}]", "type"),
        (
            b"[{\"type\":\"message-received\",\"message\":{\"from\":\"+14155550199\"}}]",
            "id",
        ),
        (
            b"[{\"type\":\"message-received\",\"message\":{\"id\":\"m\",\"from\":\"+14155550199\"}}]",
            "owner",
        ),
        (b"\xff\xfe", "JSON body"),
    ] {
        let error = receive(&provider, body, None).expect_err("malformed");
        assert_eq!(error.status(), 400, "{error}");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
}

#[test]
fn answers_make_bandwidth_retry_only_on_failure() {
    assert_eq!(bandwidth().success().status, 200);
    assert_eq!(bandwidth().retry().status, 503);
    assert_eq!(bandwidth().methods(), [POST]);
}

proptest! {
    #[test]
    fn any_json_value_is_answered_without_panic(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("json");
        let provider = Bandwidth::new(Signing::AcceptUnsigned);
        if let Err(error) = receive(&provider, &body, None) {
            prop_assert_eq!(error.status(), 400);
        }
    }
}
