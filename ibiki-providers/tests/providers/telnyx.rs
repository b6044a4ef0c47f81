use ed25519_dalek::SigningKey;
use ibiki_core::PhoneNumber;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::telnyx::Telnyx;
use ibiki_providers::telnyx::TelnyxPublicKey;
use ibiki_providers::testing;

use super::{POST, at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/telnyx";
const NOW: i64 = 1_700_000_000;

fn key() -> SigningKey {
    testing::telnyx_key([7; 32])
}

fn telnyx() -> Telnyx {
    Telnyx::new(Signing::Verify(TelnyxPublicKey::from(
        key().verifying_key(),
    )))
}

fn sign(timestamp: i64, body: &[u8]) -> String {
    let timestamp = u64::try_from(timestamp).expect("after 1970");
    let signed = testing::telnyx(&key(), timestamp, body);
    signed
        .header("telnyx-signature-ed25519")
        .expect("a signature")
        .to_owned()
}

fn receive(
    provider: &Telnyx,
    body: &[u8],
    signature: Option<&str>,
    timestamp: i64,
) -> Result<Received, WebhookError> {
    let timestamp = timestamp.to_string();
    let mut pairs = vec![
        ("content-type", "application/json"),
        ("telnyx-timestamp", timestamp.as_str()),
    ];
    if let Some(signature) = signature {
        pairs.push(("telnyx-signature-ed25519", signature));
    }
    let headers = headers(&pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(&POST, URL, &headers, body, at(NOW)),
    )
}

#[test]
fn documented_message_decodes() {
    let body = fixture("telnyx/message-received.json");
    let Received::Replies(replies) =
        receive(&telnyx(), &body, Some(&sign(NOW, &body)), NOW).expect("valid")
    else {
        panic!("not a reply");
    };
    let [reply] = replies.as_slice() else {
        panic!("one reply expected");
    };
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("7ee4241c-f127-47e5-9c34-3aac291f8058")
    );
    assert_eq!(reply.from, "+18665550001");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+18445550001").expect("number"))
    );
    assert_eq!(reply.body, "Hello, World!");
}

#[test]
fn delivery_receipts_are_skipped() {
    let body = fixture("telnyx/message-finalized.json");
    assert_eq!(
        receive(&telnyx(), &body, Some(&sign(NOW, &body)), NOW).expect("valid"),
        Received::Skipped {
            event: "message.finalized".into()
        }
    );
}

#[test]
fn wrong_missing_and_stale_signatures_are_unauthorized() {
    let body = fixture("telnyx/message-received.json");
    let wrong = receive(&telnyx(), &body, Some(&sign(NOW, b"{}")), NOW).expect_err("wrong");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = receive(&telnyx(), &body, None, NOW).expect_err("missing");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    let stale =
        receive(&telnyx(), &body, Some(&sign(NOW - 301, &body)), NOW - 301).expect_err("stale");
    assert!(
        matches!(stale, WebhookError::StaleTimestamp { .. }),
        "{stale}"
    );
    for error in [wrong, missing, stale] {
        assert_eq!(error.status(), 401);
    }
}

#[test]
fn unsigned_mode_accepts() {
    let body = fixture("telnyx/message-received.json");
    assert!(receive(&Telnyx::new(Signing::AcceptUnsigned), &body, None, NOW).is_ok());
}
