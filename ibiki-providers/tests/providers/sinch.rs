use ibiki_core::Secret;
use ibiki_core::{InboundReply, PhoneNumber};
use ibiki_providers::BasicCredentials;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::sinch::Sinch;
use ibiki_providers::sinch::SinchKey;
use ibiki_providers::sinch::SinchMoBinary;
use ibiki_providers::sinch::SinchMoMedia;
use ibiki_providers::sinch::SinchMoText;
use ibiki_providers::testing::{self, base64_encode, hmac_sha1};
use proptest::prelude::*;

use super::{POST, at, fixture, headers, json_value, normalizer};

const URL: &str = "https://sms.example.com/webhooks/sinch";
const NOW: i64 = 1_717_660_400;
const SECRET: &str = "KayakingTheSwell";
const NONCE: &str = "01HZQ1VQ5J0Q3H9GQ4T0M4S9XK";

fn secret(text: &str) -> Secret {
    text.parse().expect("secret")
}

fn sinch() -> Sinch {
    Sinch::new(Signing::Verify(SinchKey::Hmac(secret(SECRET))))
}

fn sign(secret: &str, body: &[u8], nonce: &str, timestamp: i64) -> String {
    let timestamp = u64::try_from(timestamp).expect("after 1970");
    let signed = testing::sinch(secret, timestamp, nonce, body);
    signed
        .header("x-sinch-webhook-signature")
        .expect("a signature")
        .to_owned()
}

struct Signed<'a> {
    signature: Option<&'a str>,
    timestamp: Option<String>,
    nonce: Option<&'a str>,
    algorithm: Option<&'a str>,
}

fn signed(signature: &str, timestamp: i64) -> Signed<'_> {
    Signed {
        signature: Some(signature),
        timestamp: Some(timestamp.to_string()),
        nonce: Some(NONCE),
        algorithm: Some("HmacSHA256"),
    }
}

fn receive(
    provider: &Sinch,
    body: &[u8],
    signed: &Signed<'_>,
    now: i64,
) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", "application/json")];
    if let Some(signature) = signed.signature {
        pairs.push(("x-sinch-webhook-signature", signature));
    }
    if let Some(timestamp) = &signed.timestamp {
        pairs.push(("x-sinch-webhook-signature-timestamp", timestamp));
    }
    if let Some(nonce) = signed.nonce {
        pairs.push(("x-sinch-webhook-signature-nonce", nonce));
    }
    if let Some(algorithm) = signed.algorithm {
        pairs.push(("x-sinch-webhook-signature-algorithm", algorithm));
    }
    let headers = headers(&pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(&POST, URL, &headers, body, at(now)),
    )
}

fn unsigned() -> Signed<'static> {
    Signed {
        signature: None,
        timestamp: None,
        nonce: None,
        algorithm: None,
    }
}

fn reply(received: Received) -> InboundReply {
    match received {
        Received::Replies(replies) => {
            let [reply] = <[InboundReply; 1]>::try_from(replies).expect("one reply");
            reply
        }
        Received::Skipped { event } => panic!("skipped {event}"),
    }
}

#[test]
fn sdk_java_sms_vector_verifies() {
    // sinch-sdk-java, SinchEventsServiceTest.checkApplicationAuthentication.
    let body = fixture("sinch/recipient-delivery-report.json");
    let provider = Sinch::new(Signing::Verify(SinchKey::Hmac(secret("SMSWebhooksSecret"))));
    let signed = Signed {
        signature: Some("ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="),
        timestamp: Some("1736760161".into()),
        nonce: Some("01JHFFHWYY7HSS4FWTMDTQEK8V"),
        algorithm: Some("HmacSHA256"),
    };
    assert_eq!(
        sign(
            "SMSWebhooksSecret",
            &body,
            "01JHFFHWYY7HSS4FWTMDTQEK8V",
            1_736_760_161
        ),
        "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="
    );
    assert_eq!(
        receive(&provider, &body, &signed, 1_736_760_200).expect("valid"),
        Received::Skipped {
            event: "recipient_delivery_report_sms".into()
        }
    );
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(matches!(
        receive(&provider, &tampered, &signed, 1_736_760_200),
        Err(WebhookError::BadSignature)
    ));
}

#[test]
fn sdk_python_vector_verifies_without_an_algorithm_header() {
    // sinch-sdk-python, test_conversation_sinch_event.py: a Conversation API
    // body, signed the same way; no algorithm header, as that test sends.
    let body = br#"{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z","project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61","message_delivery_report":{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R","conversation_id":"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL","contact_id":"01EXA07N79THJ20WSN6AS30TMW"}}"#;
    let provider = Sinch::new(Signing::Verify(SinchKey::Hmac(secret("foo_secret1234"))));
    let signed = Signed {
        signature: Some("Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="),
        timestamp: Some("1634579353".into()),
        nonce: Some("01FJA8B4A7BM43YGWSG9GBV067"),
        algorithm: None,
    };
    // The signature holds; the body is not an SMS callback (no `type`).
    let error = receive(&provider, body, &signed, 1_634_579_400).expect_err("not SMS");
    assert!(
        matches!(error, WebhookError::MissingField { .. }),
        "{error}"
    );
    let wrong = Signed {
        signature: Some("invalid"),
        ..signed
    };
    assert_eq!(
        receive(&provider, body, &wrong, 1_634_579_400)
            .expect_err("wrong")
            .status(),
        401
    );
}

#[test]
fn documented_text_decodes_with_every_field() {
    let message: SinchMoText =
        serde_json::from_slice(&fixture("sinch/mo-text.json")).expect("mo_text");
    assert_eq!(message.id, "01W4FFL35P4NC4K35SMSBATCH8");
    assert_eq!(message.from, "12015555555");
    assert_eq!(message.to, "12017777777");
    assert_eq!(message.body, "Hello John! 👋");
    assert_eq!(message.kind, "mo_text");
    assert_eq!(message.operator_id.as_deref(), Some("311071"));
    assert_eq!(
        message.received_at.as_deref(),
        Some("2024-06-06T07:52:37.386Z")
    );
    assert_eq!(message.sent_at.as_deref(), Some("2024-06-06T07:52:36.912Z"));
    assert_eq!(
        message.client_reference.as_deref(),
        Some("a client reference")
    );
}

#[test]
fn documented_media_and_binary_decode_with_every_field() {
    let media: SinchMoMedia =
        serde_json::from_slice(&fixture("sinch/mo-media.json")).expect("mo_media");
    assert_eq!(media.body.subject.as_deref(), Some("mmy subject"));
    assert_eq!(media.body.message.as_deref(), Some("my message"));
    let [item] = media.body.media.as_slice() else {
        panic!("one item");
    };
    assert_eq!(item.url.as_deref(), Some("https://foo.url"));
    assert_eq!(item.content_type.as_deref(), Some("content/type"));
    assert_eq!(item.status.as_deref(), Some("a status"));
    assert_eq!(item.code, Some(1234));
    assert_eq!(media.operator_id.as_deref(), Some("35000"));
    let binary: SinchMoBinary =
        serde_json::from_slice(&fixture("sinch/mo-binary.json")).expect("mo_binary");
    assert_eq!(binary.body, "a body");
    assert_eq!(binary.udh.as_deref(), Some("foo udh"));
    assert_eq!(binary.kind, "mo_binary");
}

#[test]
fn documented_text_becomes_a_reply_with_international_numbers() {
    let body = fixture("sinch/mo-text.json");
    let signature = sign(SECRET, &body, NONCE, NOW);
    let reply = reply(receive(&sinch(), &body, &signed(&signature, NOW), NOW + 2).expect("valid"));
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("01W4FFL35P4NC4K35SMSBATCH8")
    );
    assert_eq!(reply.from, "+12015555555");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+12017777777").expect("number"))
    );
    assert_eq!(reply.body, "Hello John! 👋");
}

#[test]
fn numbers_without_plus_are_never_read_in_the_default_region() {
    // 447700900100 read in the US region would not be this UK number.
    let body =
        br#"{"type":"mo_text","id":"x1","from":"447700900001","to":"447700900100","body":"hi"}"#;
    let provider = Sinch::new(Signing::AcceptUnsigned);
    let reply = reply(receive(&provider, body, &unsigned(), NOW).expect("valid"));
    assert_eq!(
        reply.to.number().map(|n| n.to_string()).as_deref(),
        Some("+447700900100")
    );
}

#[test]
fn media_becomes_a_reply_and_binary_and_receipts_are_skipped() {
    let provider = Sinch::new(Signing::AcceptUnsigned);
    let media = reply(
        receive(&provider, &fixture("sinch/mo-media.json"), &unsigned(), NOW).expect("valid"),
    );
    assert_eq!(media.body, "my message");
    assert_eq!(media.from, "+11203494390");
    assert_eq!(
        receive(
            &provider,
            &fixture("sinch/mo-binary.json"),
            &unsigned(),
            NOW
        )
        .expect("valid"),
        Received::Skipped {
            event: "mo_binary".into()
        }
    );
    let report = br#"{"type":"delivery_report_sms","batch_id":"b","statuses":[{"code":0,"count":1,"status":"Delivered"}],"total_message_count":1}"#;
    assert_eq!(
        receive(&provider, report, &unsigned(), NOW).expect("valid"),
        Received::Skipped {
            event: "delivery_report_sms".into()
        }
    );
}

#[test]
fn wrong_missing_and_stale_signatures_are_unauthorized() {
    let body = fixture("sinch/mo-text.json");
    let good = sign(SECRET, &body, NONCE, NOW);
    let other_secret = sign("not the secret", &body, NONCE, NOW);
    let wrong = receive(&sinch(), &body, &signed(&other_secret, NOW), NOW).expect_err("wrong");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let other_nonce = Signed {
        nonce: Some("another-nonce"),
        ..signed(&good, NOW)
    };
    let nonce = receive(&sinch(), &body, &other_nonce, NOW).expect_err("nonce");
    assert!(matches!(nonce, WebhookError::BadSignature), "{nonce}");
    let later = Signed {
        timestamp: Some((NOW + 1).to_string()),
        ..signed(&good, NOW)
    };
    let moved = receive(&sinch(), &body, &later, NOW).expect_err("timestamp");
    assert!(matches!(moved, WebhookError::BadSignature), "{moved}");
    let missing = receive(&sinch(), &body, &unsigned(), NOW).expect_err("missing");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    let no_nonce = Signed {
        nonce: None,
        ..signed(&good, NOW)
    };
    let missing_nonce = receive(&sinch(), &body, &no_nonce, NOW).expect_err("no nonce");
    assert!(
        matches!(missing_nonce, WebhookError::MissingSignature { .. }),
        "{missing_nonce}"
    );
    let day = i64::try_from(Sinch::DEFAULT_TOLERANCE_SECS).expect("fits");
    let old = NOW - day - 1;
    let stale = receive(
        &sinch(),
        &body,
        &signed(&sign(SECRET, &body, NONCE, old), old),
        NOW,
    )
    .expect_err("stale");
    assert!(
        matches!(stale, WebhookError::StaleTimestamp { .. }),
        "{stale}"
    );
    let narrowed = sinch().with_tolerance(300);
    let late = receive(&narrowed, &body, &signed(&good, NOW), NOW + 301).expect_err("late");
    assert!(
        matches!(late, WebhookError::StaleTimestamp { .. }),
        "{late}"
    );
    assert!(receive(&sinch(), &body, &signed(&good, NOW), NOW + day).is_ok());
    for error in [wrong, nonce, moved, missing, missing_nonce, stale, late] {
        assert_eq!(error.status(), 401);
    }
}

#[test]
fn algorithms_are_the_sdks_hmacs() {
    let body = fixture("sinch/mo-text.json");
    let timestamp = NOW.to_string();
    let sha1 = base64_encode(&hmac_sha1(
        SECRET.as_bytes(),
        &[&body, b".", NONCE.as_bytes(), b".", timestamp.as_bytes()],
    ));
    let with = |algorithm| Signed {
        algorithm: Some(algorithm),
        ..signed(&sha1, NOW)
    };
    assert!(receive(&sinch(), &body, &with("HmacSHA1"), NOW).is_ok());
    assert!(matches!(
        receive(&sinch(), &body, &with("HmacSHA256"), NOW),
        Err(WebhookError::BadSignature)
    ));
    assert!(matches!(
        receive(&sinch(), &body, &with("HmacMD5"), NOW),
        Err(WebhookError::MalformedSignature { .. })
    ));
    let garbled = Signed {
        timestamp: Some("yesterday".into()),
        ..signed(&sha1, NOW)
    };
    assert!(matches!(
        receive(&sinch(), &body, &garbled, NOW),
        Err(WebhookError::MalformedSignature { .. })
    ));
}

#[test]
fn basic_credentials_can_stand_in_for_signatures() {
    let credentials = BasicCredentials::new("sinch", secret("callback-pass"));
    let provider = Sinch::new(Signing::Verify(SinchKey::Basic(credentials.clone())));
    let body = fixture("sinch/mo-text.json");
    let value = credentials.header_value();
    let headers = headers(&[("authorization", value.as_str())]);
    let request = WebhookRequest::new(&POST, URL, &headers, &body, at(NOW));
    assert!(ibiki_providers::receive(&provider, &normalizer(), &request).is_ok());
    let error = receive(&provider, &body, &unsigned(), NOW).expect_err("no credentials");
    assert_eq!(error.status(), 401);
    assert!(provider.challenge().is_some());
    assert!(sinch().challenge().is_none());
}

#[test]
fn unsigned_mode_accepts_and_refusing_mode_refuses() {
    let body = fixture("sinch/mo-text.json");
    assert!(
        receive(
            &Sinch::new(Signing::AcceptUnsigned),
            &body,
            &unsigned(),
            NOW
        )
        .is_ok()
    );
    let error = receive(
        &Sinch::new(Signing::RefuseUnsigned),
        &body,
        &unsigned(),
        NOW,
    )
    .expect_err("refused");
    assert_eq!(error.status(), 401);
}

#[test]
fn malformed_bodies_are_clear_bad_requests() {
    let provider = Sinch::new(Signing::AcceptUnsigned);
    for (body, needle) in [
        (&b"not json"[..], "JSON body"),
        (b"{}", "type"),
        (b"{\"type\":7}", "type"),
        (b"{\"type\":\"\"}", "type"),
        (
            b"{\"type\":\"mo_text\",\"id\":\"a\",\"to\":\"1\"}",
            "mo_text",
        ),
        (
            b"{\"type\":\"mo_media\",\"id\":\"a\",\"from\":\"1\",\"to\":\"2\",\"body\":\"text\"}",
            "mo_media",
        ),
        (
            b"{\"type\":\"mo_text\",\"id\":\"\",\"from\":\"1\",\"to\":\"2\",\"body\":\"x\"}",
            "id",
        ),
    ] {
        let error = receive(&provider, body, &unsigned(), NOW).expect_err("malformed");
        assert_eq!(error.status(), 400, "{error}");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
}

#[test]
fn answers_make_sinch_retry_only_on_failure() {
    assert_eq!(sinch().success().status, 200);
    // 5xx is retried; any other 4xx than 429 is not.
    assert_eq!(sinch().retry().status, 503);
    assert_eq!(sinch().methods(), [POST]);
}

proptest! {
    #[test]
    fn any_json_value_is_answered_without_panic(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("json");
        if let Err(error) = receive(&Sinch::new(Signing::AcceptUnsigned), &body, &unsigned(), NOW) {
            prop_assert_eq!(error.status(), 400);
        }
    }

    #[test]
    fn a_signature_verifies_iff_the_body_is_unchanged(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        other in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let signature = sign(SECRET, &body, NONCE, NOW);
        let original = receive(&sinch(), &body, &signed(&signature, NOW), NOW);
        prop_assert!(original.as_ref().map_or_else(|e| e.status() != 401, |_| true));
        let changed = receive(&sinch(), &other, &signed(&signature, NOW), NOW);
        let refused = matches!(changed, Err(WebhookError::BadSignature));
        prop_assert_eq!(refused, body != other);
    }
}
