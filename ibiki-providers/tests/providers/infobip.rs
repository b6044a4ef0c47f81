use ibiki_core::{InboundReply, PhoneNumber};
use ibiki_providers::BasicCredentials;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::infobip::Infobip;
use ibiki_providers::infobip::InfobipInbound;
use proptest::prelude::*;

use super::{POST, at, fixture, headers, json_value, normalizer};

const URL: &str = "https://sms.example.com/webhooks/infobip";
const NOW: i64 = 1_700_000_000;

fn credentials() -> BasicCredentials {
    BasicCredentials::new("infobip", "forwarding-pass".parse().expect("secret"))
}

fn infobip() -> Infobip {
    Infobip::new(Signing::Verify(credentials()))
}

fn receive(
    provider: &Infobip,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", "application/json")];
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

fn replies(received: Received) -> Vec<InboundReply> {
    match received {
        Received::Replies(replies) => replies,
        Received::Skipped { event } => panic!("skipped {event}"),
    }
}

#[test]
fn documented_payload_decodes_with_every_field() {
    let inbound: InfobipInbound =
        serde_json::from_slice(&fixture("infobip/inbound.json")).expect("inbound");
    assert_eq!(inbound.message_count, Some(1));
    assert_eq!(inbound.pending_message_count, Some(0));
    let [message] = inbound.results.as_slice() else {
        panic!("one result expected");
    };
    assert_eq!(message.message_id.as_deref(), Some("817790313235066447"));
    assert_eq!(message.from.as_deref(), Some("385916242493"));
    assert_eq!(message.to.as_deref(), Some("385921004026"));
    assert_eq!(
        message.text.as_deref(),
        Some("QUIZ Correct answer is Paris")
    );
    assert_eq!(
        message.clean_text.as_deref(),
        Some("Correct answer is Paris")
    );
    assert_eq!(message.keyword.as_deref(), Some("QUIZ"));
    assert_eq!(
        message.received_at.as_deref(),
        Some("2016-10-06T09:28:39.220+0000")
    );
    assert_eq!(message.sms_count, Some(1));
    let price = message.price.as_ref().expect("price");
    assert_eq!(price.price_per_message, Some(0.0));
    assert_eq!(price.currency.as_deref(), Some("EUR"));
    assert_eq!(message.callback_data.as_deref(), Some("callbackData"));
    assert!(!message.is_delivery_report());
}

#[test]
fn documented_message_becomes_a_reply_with_international_numbers() {
    let body = fixture("infobip/inbound.json");
    let replies =
        replies(receive(&infobip(), &body, Some(&credentials().header_value())).expect("valid"));
    let [reply] = replies.as_slice() else {
        panic!("one reply expected");
    };
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("817790313235066447")
    );
    // The normalizer's default region is US: without its `+`, 385921004026
    // would have been read as a (bad) US number.
    assert_eq!(reply.from, "+385916242493");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+385921004026").expect("number"))
    );
    assert_eq!(reply.body, "QUIZ Correct answer is Paris");
    assert_eq!(reply.received_at, at(NOW));
}

#[test]
fn several_results_in_one_delivery_give_several_replies() {
    let body = br#"{"results":[
        {"messageId":"a1","from":"447700900001","to":"447700900100","text":"first"},
        {"messageId":"a2","from":"447700900002","to":"447700900101","text":"second"}
      ],"messageCount":2,"pendingMessageCount":0}"#;
    let replies =
        replies(receive(&infobip(), body, Some(&credentials().header_value())).expect("valid"));
    let summary: Vec<_> = replies
        .iter()
        .map(|reply| {
            (
                reply.message_id.as_ref().map(|id| id.to_string()),
                reply.from.clone(),
                reply.to.number().map(|n| n.to_string()),
                reply.body.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some("a1".to_owned()),
                "+447700900001".to_owned(),
                Some("+447700900100".to_owned()),
                "first".to_owned()
            ),
            (
                Some("a2".to_owned()),
                "+447700900002".to_owned(),
                Some("+447700900101".to_owned()),
                "second".to_owned()
            ),
        ]
    );
}

#[test]
fn delivery_reports_are_skipped() {
    let body = fixture("infobip/delivery-report.json");
    assert_eq!(
        receive(&infobip(), &body, Some(&credentials().header_value())).expect("valid"),
        Received::Skipped {
            event: "DELIVERY_REPORT".into()
        }
    );
}

#[test]
fn wrong_missing_and_malformed_credentials_are_unauthorized() {
    let body = fixture("infobip/inbound.json");
    let other = BasicCredentials::new("someone", "forwarding-pass".parse().expect("secret"));
    let wrong = receive(&infobip(), &body, Some(&other.header_value())).expect_err("wrong");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = receive(&infobip(), &body, None).expect_err("missing");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    let garbled = receive(&infobip(), &body, Some("Basic ***")).expect_err("garbled");
    assert!(
        matches!(garbled, WebhookError::MalformedSignature { .. }),
        "{garbled}"
    );
    for error in [wrong, missing, garbled] {
        assert_eq!(error.status(), 401);
    }
    assert!(infobip().challenge().is_some());
}

#[test]
fn unsigned_mode_accepts_and_refusing_mode_refuses() {
    let body = fixture("infobip/inbound.json");
    assert!(receive(&Infobip::new(Signing::AcceptUnsigned), &body, None).is_ok());
    let error = receive(&Infobip::new(Signing::RefuseUnsigned), &body, None).expect_err("no");
    assert_eq!(error.status(), 401);
}

#[test]
fn malformed_bodies_are_clear_bad_requests() {
    let provider = Infobip::new(Signing::AcceptUnsigned);
    for (body, needle) in [
        (&b"[]"[..], "JSON body"),
        (b"{}", "results"),
        (b"{\"results\":[]}", "results[0]"),
        (
            b"{\"results\":[{\"messageId\":\"a\",\"to\":\"447700900100\",\"text\":\"x\"}]}",
            "results[0].from",
        ),
        (
            b"{\"results\":[{\"messageId\":\"a\",\"from\":\"447700900001\",\"text\":\"x\"}]}",
            "results[0].to",
        ),
        (
            b"{\"results\":[{\"from\":\"447700900001\",\"to\":\"447700900100\"}]}",
            "results[0].messageId",
        ),
        (
            b"{\"results\":[{\"messageId\":\"\",\"from\":\"447700900001\",\"to\":\"447700900100\"}]}",
            "messageId",
        ),
        (b"{\"results\":[{\"smsCount\":-1}]}", "JSON body"),
    ] {
        let error = receive(&provider, body, None).expect_err("malformed");
        assert_eq!(error.status(), 400, "{error}");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
}

#[test]
fn answers_are_200_and_503() {
    assert_eq!(infobip().success().status, 200);
    assert_eq!(infobip().retry().status, 503);
    assert_eq!(infobip().methods(), [POST]);
}

proptest! {
    #[test]
    fn any_json_value_is_answered_without_panic(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("json");
        let provider = Infobip::new(Signing::AcceptUnsigned);
        if let Err(error) = receive(&provider, &body, None) {
            prop_assert_eq!(error.status(), 400);
        }
    }

    #[test]
    fn bare_digits_are_always_read_as_international(digits in "[1-9][0-9]{6,13}") {
        let body = serde_json::json!({
            "results": [{"messageId": "p", "from": digits, "to": digits, "text": "x"}]
        });
        let provider = Infobip::new(Signing::AcceptUnsigned);
        let received = receive(&provider, &serde_json::to_vec(&body).expect("json"), None)
            .expect("valid");
        let Received::Replies(replies) = received else {
            panic!("skipped");
        };
        prop_assert_eq!(&replies[0].from, &format!("+{digits}"));
        if let Some(number) = replies[0].to.number() {
            prop_assert_eq!(number.to_string(), format!("+{digits}"));
        }
    }
}
