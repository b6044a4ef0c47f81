use http::Method;
use ibiki_core::PhoneNumber;
use ibiki_core::Secret;
use ibiki_providers::ErrorKind;
use ibiki_providers::Form;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::Signing;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::messagebird::MessageBird;
use ibiki_providers::testing::messagebird as mb;
use proptest::prelude::*;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{POST, at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/messagebird";
const KEY: &str = "PlLrKaqvZNRR5zAjm42ZT6q1SQxgbbGd";
const NOW: i64 = 1_700_000_000;
const FORM: &str = "application/x-www-form-urlencoded";

fn messagebird() -> MessageBird {
    MessageBird::new(Signing::Verify(KEY.parse::<Secret>().expect("secret")))
}

/// The JWT MessageBird sends for a request to `url` with `body`.
fn jwt(url: &str, body: &[u8]) -> String {
    mb::sign_jwt(
        KEY,
        &mb::claims(
            url,
            body,
            NOW,
            NOW + 60,
            "0f5f5bd6-1c0e-4bb1-a4c4-1e6b3a1f0c11",
        ),
    )
}

fn receive_with(
    provider: &MessageBird,
    method: &Method,
    url: &str,
    pairs: &[(&str, &str)],
    body: &[u8],
    now: i64,
) -> Result<Received, WebhookError> {
    let headers = headers(pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(method, url, &headers, body, at(now)),
    )
}

/// A form POST of `body`, signed with `token` if any.
fn post(body: &[u8], token: Option<&str>, now: i64) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", FORM)];
    if let Some(token) = token {
        pairs.push(("messagebird-signature-jwt", token));
    }
    receive_with(&messagebird(), &POST, URL, &pairs, body, now)
}

fn one_reply(received: Received) -> ibiki_core::InboundReply {
    let Received::Replies(replies) = received else {
        panic!("not a reply");
    };
    let [reply] = <[_; 1]>::try_from(replies).expect("one reply");
    reply
}

fn assert_vmn(received: Received) {
    assert_vmn_at(received, NOW);
}

fn assert_vmn_at(received: Received, now: i64) {
    let reply = one_reply(received);
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("e8077d803532c0b5937c639b60216938")
    );
    // Digits without '+' are international (NL), not US national numbers.
    assert_eq!(reply.from, "+31612345678");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+31642500190").expect("number"))
    );
    assert_eq!(reply.body, "This is an incoming message");
    assert_eq!(reply.received_at, at(now));
}

#[test]
fn documented_message_decodes_from_get_and_post() {
    let query = fixture("messagebird/vmn.query");
    let url = format!("{URL}?{}", String::from_utf8(query.clone()).expect("utf-8"));
    let token = jwt(&url, b"");
    assert_vmn(
        receive_with(
            &messagebird(),
            &Method::GET,
            &url,
            &[("messagebird-signature-jwt", &token)],
            b"",
            NOW,
        )
        .expect("GET"),
    );
    assert_vmn_at(
        post(&query, Some(&jwt(URL, &query)), NOW + 30).expect("form POST"),
        NOW + 30,
    );
    // A POST whose parameters stayed in the query, with no body.
    assert_vmn(
        receive_with(
            &messagebird(),
            &POST,
            &url,
            &[("messagebird-signature-jwt", &token)],
            b"",
            NOW,
        )
        .expect("POST without a body"),
    );
}

#[test]
fn documented_shortcode_message_decodes() {
    let query = fixture("messagebird/shortcode.query");
    let reply = one_reply(post(&query, Some(&jwt(URL, &query)), NOW).expect("valid"));
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("123456789")
    );
    assert_eq!(reply.from, "+31612345678");
    // A shortcode is not an international number: kept as sent.
    assert_eq!(reply.to.number(), None);
    assert_eq!(reply.body, "This is an incoming message");
    let form = Form::parse(&query);
    let message: ibiki_providers::messagebird::MessageBirdMessage =
        form.deserialize("MessageBird parameters").expect("decodes");
    assert_eq!(message.keyword.as_deref(), Some("MESSAGEBIRD"));
    assert_eq!(message.operator.as_deref(), Some("20401"));
    assert_eq!(message.receive_datetime.as_deref(), Some("20160503142657"));
}

#[test]
fn a_retried_delivery_keeps_its_id() {
    let query = fixture("messagebird/vmn.query");
    let first = one_reply(post(&query, Some(&jwt(URL, &query)), NOW).expect("first"));
    // MessageBird signs each attempt anew.
    let token = mb::sign_jwt(
        KEY,
        &mb::claims(URL, &query, NOW + 600, NOW + 660, "another-jti"),
    );
    let again = one_reply(post(&query, Some(&token), NOW + 600).expect("retry"));
    assert!(first.message_id.is_some());
    assert_eq!(first.message_id, again.message_id);
}

#[test]
fn wrong_missing_and_expired_signatures_are_unauthorized() {
    let query = fixture("messagebird/vmn.query");
    let token = jwt(URL, &query);
    let tampered = String::from_utf8(query.clone())
        .expect("utf-8")
        .replace("incoming", "outgoing");
    let wrong = post(tampered.as_bytes(), Some(&token), NOW).expect_err("tampered");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let other_key = mb::sign_jwt("not-the-key", &mb::claims(URL, &query, NOW, NOW + 60, "j"));
    let forged = post(&query, Some(&other_key), NOW).expect_err("other key");
    assert!(matches!(forged, WebhookError::BadSignature), "{forged}");
    let other_url = jwt("https://evil.example/webhooks/messagebird", &query);
    let moved = post(&query, Some(&other_url), NOW).expect_err("other URL");
    assert!(matches!(moved, WebhookError::BadSignature), "{moved}");
    let missing = post(&query, None, NOW).expect_err("unsigned");
    assert!(
        matches!(missing, WebhookError::MissingSignature { header } if header == mb::SIGNATURE_JWT_HEADER),
        "{missing}"
    );
    let expired = post(&query, Some(&token), NOW + 66).expect_err("expired");
    assert!(
        matches!(expired, WebhookError::StaleTimestamp { .. }),
        "{expired}"
    );
    let garbled = post(&query, Some("not.a.jwt"), NOW).expect_err("garbled");
    for error in [wrong, forged, moved, missing, expired, garbled] {
        assert_eq!(error.status(), 401, "{error}");
    }
}

#[test]
fn the_deprecated_signature_is_accepted_unless_jwt_only() {
    let query = fixture("messagebird/vmn.query");
    let timestamp = NOW.to_string();
    let signature = mb::legacy_signature(KEY, &timestamp, "", &query);
    let pairs = [
        ("content-type", FORM),
        ("messagebird-signature", signature.as_str()),
        ("messagebird-request-timestamp", timestamp.as_str()),
    ];
    assert_vmn(receive_with(&messagebird(), &POST, URL, &pairs, &query, NOW).expect("legacy"));
    let stale =
        receive_with(&messagebird(), &POST, URL, &pairs, &query, NOW + 11).expect_err("stale");
    assert!(
        matches!(stale, WebhookError::StaleTimestamp { .. }),
        "{stale}"
    );
    let tampered = [&query[..], b"&x=1"].concat();
    let wrong =
        receive_with(&messagebird(), &POST, URL, &pairs, &tampered, NOW).expect_err("tampered");
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let refused = receive_with(&messagebird().jwt_only(), &POST, URL, &pairs, &query, NOW)
        .expect_err("JWT only");
    assert!(
        matches!(refused, WebhookError::MissingSignature { .. }),
        "{refused}"
    );
    // The query is signed too.
    let url = format!("{URL}?ref=1");
    let signature = mb::legacy_signature(KEY, &timestamp, "ref=1", &query);
    let pairs = [
        ("content-type", FORM),
        ("messagebird-signature", signature.as_str()),
        ("messagebird-request-timestamp", timestamp.as_str()),
    ];
    receive_with(&messagebird(), &POST, &url, &pairs, &query, NOW).expect("query signed");
    let error =
        receive_with(&messagebird(), &POST, URL, &pairs, &query, NOW).expect_err("query dropped");
    assert_eq!(error.status(), 401);
}

#[derive(Deserialize)]
struct SdkCase {
    name: String,
    method: String,
    secret: Option<String>,
    url: String,
    payload: Option<String>,
    timestamp: String,
    token: String,
    valid: bool,
    reason: Option<String>,
}

#[test]
fn sdk_jwt_test_cases() {
    // php-rest-api tests/Unit/Data/webhooksignature.json, shared with the
    // Go SDK (signature_jwt/testdata/reference.json).
    let cases: Vec<SdkCase> =
        serde_json::from_slice(&fixture("messagebird/webhooksignature.json")).expect("JSON");
    assert_eq!(cases.len(), 44);
    for case in &cases {
        let now = OffsetDateTime::parse(
            &case.timestamp,
            &time::format_description::well_known::Rfc3339,
        )
        .expect("timestamp");
        let secret = case
            .secret
            .as_deref()
            .unwrap_or("random-secret-to-not-fail-test");
        let payload = case.payload.as_deref().unwrap_or("").as_bytes();
        let result = mb::verify_jwt(secret, &case.token, &case.url, payload, now);
        match (&result, case.valid) {
            (Ok(claims), true) => assert_eq!(claims.iss, "MessageBird", "{}", case.name),
            (Err(error), false) => {
                assert_eq!(error.status(), 401, "{}: {error}", case.name);
                let reason = case.reason.as_deref().unwrap_or("");
                let stale = reason.contains("nbf") || reason.contains("exp");
                assert_eq!(
                    matches!(error, WebhookError::StaleTimestamp { .. }),
                    stale,
                    "{}: {error} for {reason}",
                    case.name
                );
            }
            _ => panic!(
                "{}: expected valid={}, got {result:?}",
                case.name, case.valid
            ),
        }
        // Through the provider, for the methods MessageBird uses: a valid
        // token gets past the signature (the SDK cases carry no message).
        let method: Method = case.method.parse().expect("method");
        if case.valid && (method == Method::GET || method == Method::POST) {
            let provider =
                MessageBird::new(Signing::Verify(secret.parse::<Secret>().expect("secret")));
            let pairs = [
                ("content-type", FORM),
                ("messagebird-signature-jwt", &case.token),
            ];
            let headers = headers(&pairs);
            let request = WebhookRequest::new(&method, &case.url, &headers, payload, now);
            let error = ibiki_providers::receive(&provider, &normalizer(), &request)
                .expect_err("no message in the SDK cases");
            assert_eq!(
                error.kind(),
                ErrorKind::BadRequest,
                "{}: {error}",
                case.name
            );
        }
    }
}

#[test]
fn malformed_requests_are_bad_requests() {
    let unsigned = MessageBird::new(Signing::AcceptUnsigned);
    let post = |content_type: &str, body: &[u8]| {
        receive_with(
            &unsigned,
            &POST,
            URL,
            &[("content-type", content_type)],
            body,
            NOW,
        )
    };
    let missing = post(FORM, b"id=1&recipient=31642500190&body=hi").expect_err("no originator");
    assert!(missing.to_string().contains("originator"), "{missing}");
    let no_to = post(FORM, b"id=1&originator=31612345678&body=hi").expect_err("no recipient");
    assert!(no_to.to_string().contains("recipient"), "{no_to}");
    let empty_id = post(FORM, b"id=&originator=1&recipient=2").expect_err("empty id");
    assert!(empty_id.to_string().contains("id"), "{empty_id}");
    let long = format!(
        "id=1&originator=1&recipient=2&body={}",
        "x".repeat(ibiki_core::InboundReply::MAX_BODY_LEN + 1)
    );
    let Err(too_long) = post(FORM, long.as_bytes()) else {
        panic!("a text over the limit was accepted");
    };
    for error in [missing, no_to, empty_id, too_long] {
        assert_eq!(error.status(), 400, "{error}");
    }
    let json = post("application/json", br#"{"id":"1"}"#).expect_err("JSON");
    assert_eq!(json.status(), 415);
    let put = receive_with(&unsigned, &Method::PUT, URL, &[], b"", NOW).expect_err("PUT");
    assert_eq!(put.status(), 405);
}

#[test]
fn unsigned_mode_accepts_and_refuse_mode_refuses() {
    let query = fixture("messagebird/vmn.query");
    let pairs = [("content-type", FORM)];
    let accepted = receive_with(
        &MessageBird::new(Signing::AcceptUnsigned),
        &POST,
        URL,
        &pairs,
        &query,
        NOW,
    );
    assert_vmn(accepted.expect("accepted"));
    let refused = receive_with(
        &MessageBird::new(Signing::RefuseUnsigned),
        &POST,
        URL,
        &pairs,
        &query,
        NOW,
    )
    .expect_err("refused");
    assert_eq!(refused.code(), "signatures_required");
    assert_eq!(messagebird().success().status, 200);
    assert_eq!(messagebird().retry().status, 503);
}

proptest! {
    #[test]
    fn any_request_is_answered_without_panic(
        get in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        token in "[A-Za-z0-9._=-]{0,80}",
    ) {
        let method = if get { Method::GET } else { POST };
        let url = if get {
            format!("{URL}?{}", String::from_utf8_lossy(&body))
        } else {
            URL.to_owned()
        };
        for provider in [messagebird(), MessageBird::new(Signing::AcceptUnsigned)] {
            let pairs = [("content-type", FORM), ("messagebird-signature-jwt", token.as_str())];
            let result = receive_with(&provider, &method, &url, &pairs, &body, NOW);
            if let Err(error) = result {
                prop_assert!(error.status().is_client_error());
            }
        }
        // Signed as MessageBird signs, any form is verified, then decoded.
        let signed = jwt(URL, &body);
        let pairs = [("content-type", FORM), ("messagebird-signature-jwt", signed.as_str())];
        if let Err(error) = receive_with(&messagebird(), &POST, URL, &pairs, &body, NOW) {
            prop_assert_ne!(error.kind(), ErrorKind::Unauthorized, "{}", error);
        }
    }
}
