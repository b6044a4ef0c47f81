use ibiki_core::PhoneNumber;
use ibiki_core::Secret;
use ibiki_providers::Form;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::testing::compute::twilio::compute_signature;
use ibiki_providers::twilio::Twilio;

use super::{POST, at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/twilio";
const TOKEN: &str = "12345";

fn twilio() -> Twilio {
    Twilio::new(Signing::Verify(TOKEN.parse::<Secret>().expect("secret")))
}

fn signed(body: &[u8]) -> String {
    compute_signature(TOKEN, URL, Form::parse(body).pairs())
}

fn receive(
    provider: &Twilio,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        pairs.push(("x-twilio-signature", signature));
    }
    let headers = headers(&pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(&POST, URL, &headers, body, at(1_700_000_000)),
    )
}

#[test]
fn documented_message_decodes() {
    let body = fixture("twilio/inbound.form");
    let Received::Replies(replies) =
        receive(&twilio(), &body, Some(&signed(&body))).expect("valid")
    else {
        panic!("not a reply");
    };
    let [reply] = replies.as_slice() else {
        panic!("one reply expected");
    };
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("SM1f0e8ae6ade43cb3c0ce4525424e404f")
    );
    assert_eq!(reply.from, "+15005550006");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+14155550100").expect("number"))
    );
    assert_eq!(reply.body, "STOP please");
    assert_eq!(reply.received_at, at(1_700_000_000));
}

#[test]
fn wrong_and_missing_signatures_are_unauthorized() {
    let body = fixture("twilio/inbound.form");
    let wrong =
        receive(&twilio(), &body, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")).expect_err("refused");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = receive(&twilio(), &body, None).expect_err("refused");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    assert_eq!(missing.status(), 401);
    // A changed body no longer matches.
    let tampered = [&body[..], b"&Body=x"].concat();
    assert!(matches!(
        receive(&twilio(), &tampered, Some(&signed(&body))),
        Err(WebhookError::BadSignature)
    ));
}

#[test]
fn unsigned_mode_accepts_and_refuse_mode_refuses() {
    let body = fixture("twilio/inbound.form");
    assert!(receive(&Twilio::new(Signing::AcceptUnsigned), &body, None).is_ok());
    let refused = receive(
        &Twilio::new(Signing::RefuseUnsigned),
        &body,
        Some(&signed(&body)),
    )
    .expect_err("refused");
    assert_eq!(refused.code(), "signatures_required");
    assert_eq!(refused.status(), 401);
}

#[test]
fn answers_are_twiml_and_503() {
    let success = twilio().success();
    assert_eq!(success.status, 200);
    assert_eq!(success.content_type, Some("text/xml"));
    assert!(success.body.ends_with("<Response/>"));
    assert_eq!(twilio().retry().status, 503);
}
