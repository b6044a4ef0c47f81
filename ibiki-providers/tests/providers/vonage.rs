use http::Method;
use ibiki_core::PhoneNumber;
use ibiki_providers::Form;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::testing::compute::vonage::compute_signature;
use ibiki_providers::vonage::SignatureMethod;
use ibiki_providers::vonage::Vonage;
use ibiki_providers::vonage::VonageKey;

use super::{at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/vonage";
const SECRET: &str = "my_secret_key_for_testing";
const SIGNED_AT: i64 = 1_578_787_200;

fn vonage() -> Vonage {
    Vonage::new(Signing::Verify(VonageKey {
        secret: SECRET.parse().expect("secret"),
        method: SignatureMethod::Sha256Hmac,
    }))
}

fn sig(pairs: &[(String, String)]) -> String {
    compute_signature(SECRET, SignatureMethod::Sha256Hmac, pairs)
}

/// The form fixture with its signature appended.
fn signed_form() -> String {
    let form = String::from_utf8(fixture("vonage/inbound.form")).expect("utf-8");
    format!("{form}&sig={}", sig(Form::parse(form.as_bytes()).pairs()))
}

fn receive(
    method: &Method,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<Received, WebhookError> {
    let pairs: Vec<(&str, &str)> = content_type
        .map(|ct| ("content-type", ct))
        .into_iter()
        .collect();
    let headers = headers(&pairs);
    ibiki_providers::receive(
        &vonage(),
        &normalizer(),
        &WebhookRequest::new(method, url, &headers, body, at(now)),
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
        Some("0A0000000123ABCD1")
    );
    // Digits without '+' are international, not US national numbers.
    assert_eq!(reply.from, "+447700900001");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+447700900000").expect("number"))
    );
    assert_eq!(reply.body, "Hello world");
}

#[test]
fn documented_message_decodes_from_get_form_and_json() {
    let query = signed_form();
    let url = format!("{URL}?{query}");
    assert_documented(receive(&Method::GET, &url, None, b"", SIGNED_AT).expect("GET"));
    assert_documented(
        receive(
            &Method::POST,
            URL,
            Some("application/x-www-form-urlencoded"),
            query.as_bytes(),
            SIGNED_AT,
        )
        .expect("form POST"),
    );
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&fixture("vonage/inbound.json")).expect("JSON");
    let pairs: Vec<(String, String)> = json
        .iter()
        .map(|(n, v)| (n.clone(), v.as_str().expect("strings").to_owned()))
        .collect();
    json.insert("sig".into(), sig(&pairs).into());
    let body = serde_json::to_vec(&json).expect("JSON");
    assert_documented(
        receive(
            &Method::POST,
            URL,
            Some("application/json"),
            &body,
            SIGNED_AT,
        )
        .expect("JSON POST"),
    );
}

#[test]
fn wrong_missing_and_stale_signatures_are_unauthorized() {
    let form = "application/x-www-form-urlencoded";
    let tampered = signed_form().replace("Hello+world", "Hello+there");
    let wrong = receive(
        &Method::POST,
        URL,
        Some(form),
        tampered.as_bytes(),
        SIGNED_AT,
    )
    .expect_err("tampered");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let unsigned = fixture("vonage/inbound.form");
    let missing =
        receive(&Method::POST, URL, Some(form), &unsigned, SIGNED_AT).expect_err("unsigned");
    assert!(
        matches!(missing, WebhookError::MissingSignature { .. }),
        "{missing}"
    );
    let stale = receive(
        &Method::POST,
        URL,
        Some(form),
        signed_form().as_bytes(),
        SIGNED_AT + 301,
    )
    .expect_err("stale");
    assert!(
        matches!(stale, WebhookError::StaleTimestamp { .. }),
        "{stale}"
    );
    for error in [wrong, missing, stale] {
        assert_eq!(error.status(), 401);
    }
}

#[test]
fn answers_are_204_and_503() {
    assert_eq!(vonage().success().status, 204);
    assert_eq!(vonage().retry().status, 503);
}
