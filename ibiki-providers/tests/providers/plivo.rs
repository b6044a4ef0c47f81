use http::Method;
use ibiki_core::PhoneNumber;
use ibiki_providers::Form;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::plivo::Plivo;
use ibiki_providers::testing::compute::plivo::compute_signature;

use super::{POST, at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/plivo";
const TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
const NONCE: &str = "05429567804466091622";

fn plivo() -> Plivo {
    Plivo::new(Signing::Verify(TOKEN.parse().expect("token")))
}

fn receive(
    method: &Method,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Received, WebhookError> {
    let mut pairs = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-plivo-signature-v3-nonce", NONCE),
    ];
    if let Some(signature) = signature {
        pairs.push(("x-plivo-signature-v3", signature));
    }
    let headers = headers(&pairs);
    ibiki_providers::receive(
        &plivo(),
        &normalizer(),
        &WebhookRequest::new(method, url, &headers, body, at(1_700_000_000)),
    )
}

fn assert_documented(received: Received) {
    let Received::Replies(replies) = received else {
        panic!("not a reply");
    };
    let [reply] = replies.as_slice() else {
        panic!("one reply expected");
    };
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("2c9ba6b8-6b2b-11ee-9d87-0242ac110004")
    );
    assert_eq!(reply.from, "+14155550001");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+14155550100").expect("number"))
    );
    // Plivo's field is `Text`, not `Body`.
    assert_eq!(reply.body, "Hi from Plivo");
}

#[test]
fn documented_message_decodes_from_post_and_get() {
    let body = fixture("plivo/inbound.form");
    let params = Form::parse(&body);
    let signature = compute_signature(TOKEN, &POST, URL, params.pairs(), NONCE);
    assert_documented(receive(&POST, URL, &body, Some(&signature)).expect("POST"));

    let url = format!("{URL}?{}", String::from_utf8(body).expect("utf-8"));
    let signature = compute_signature(TOKEN, &Method::GET, &url, &[], NONCE);
    assert_documented(receive(&Method::GET, &url, b"", Some(&signature)).expect("GET"));
}

#[test]
fn wrong_and_missing_signatures_are_unauthorized() {
    let body = fixture("plivo/inbound.form");
    let other_url = compute_signature(
        TOKEN,
        &POST,
        "https://elsewhere.example.com/webhooks/plivo",
        Form::parse(&body).pairs(),
        NONCE,
    );
    let wrong = receive(&POST, URL, &body, Some(&other_url)).expect_err("other URL");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = receive(&POST, URL, &body, None).expect_err("unsigned");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    for error in [wrong, missing] {
        assert_eq!(error.status(), 401);
    }
}

#[test]
fn answers_are_xml_and_503() {
    let success = plivo().success();
    assert_eq!(success.status, 200);
    assert_eq!(success.content_type, Some("application/xml"));
    assert!(success.body.contains("<Response>"));
    assert_eq!(plivo().retry().status, 503);
}
