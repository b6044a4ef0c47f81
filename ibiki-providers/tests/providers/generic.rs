use http::Method;
use ibiki_core::PhoneNumber;
use ibiki_providers::ErrorKind;
use ibiki_providers::Provider;
use ibiki_providers::Received;
use ibiki_providers::SigningMode;
use ibiki_providers::WebhookError;
use ibiki_providers::WebhookRequest;
use ibiki_providers::generic::Generic;
use ibiki_providers::generic::GenericAuth;
use ibiki_providers::generic::GenericConfig;
use ibiki_providers::generic::GenericConfigError;
use ibiki_providers::generic::NumberStyle;
use proptest::prelude::*;

use super::{POST, at, fixture, headers, normalizer};

const URL: &str = "https://sms.example.com/webhooks/generic";
const NOW: i64 = 1_700_000_000;
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
/// What the guide's `openssl dgst -sha256 -hmac` prints for the guide's
/// body (`tests/fixtures/generic/kestrel-inbound.json`).
const README_SIGNATURE: &str =
    "sha256=c61d7cf86253714d90348ef1d5d0f50521a56f7d6c7aa48314bf0af463986d0b";

/// The guide's made-up gateway (`docs/src/providers.md`; `kestrel.json` is
/// `kestrel.toml` as JSON).
fn kestrel_config() -> GenericConfig {
    let json = String::from_utf8(fixture("generic/kestrel.json")).expect("utf-8");
    GenericConfig::from_json(&json).expect("the guide's configuration")
}

fn kestrel() -> Generic {
    Generic::new(kestrel_config(), false).expect("valid")
}

fn config(json: serde_json::Value) -> Result<Generic, GenericConfigError> {
    Generic::new(GenericConfig::from_json(&json.to_string())?, false)
}

fn receive(
    provider: &Generic,
    method: &Method,
    url: &str,
    pairs: &[(&str, &str)],
    body: &[u8],
) -> Result<Received, WebhookError> {
    let headers = headers(pairs);
    ibiki_providers::receive(
        provider,
        &normalizer(),
        &WebhookRequest::new(method, url, &headers, body, at(NOW)),
    )
}

fn post_kestrel(body: &[u8], signature: Option<&str>) -> Result<Received, WebhookError> {
    let mut pairs = vec![("content-type", JSON)];
    if let Some(signature) = signature {
        pairs.push(("x-kestrel-signature", signature));
    }
    receive(&kestrel(), &POST, URL, &pairs, body)
}

fn replies(received: Received) -> Vec<ibiki_core::InboundReply> {
    match received {
        Received::Replies(replies) => replies,
        Received::Skipped { event } => panic!("skipped: {event}"),
    }
}

fn refused(result: Result<Received, WebhookError>) -> WebhookError {
    match result {
        Ok(_) => panic!("accepted"),
        Err(error) => error,
    }
}

#[test]
fn the_readme_gateway_end_to_end() {
    let body = fixture("generic/kestrel-inbound.json");
    let [reply] = <[_; 1]>::try_from(replies(
        post_kestrel(&body, Some(README_SIGNATURE)).expect("signed as the guide signs"),
    ))
    .expect("one reply");
    assert_eq!(
        reply.message_id.as_ref().map(|id| id.as_str()),
        Some("ks-7f3a9c21")
    );
    // Digits without '+' are international (GB), not US national numbers.
    assert_eq!(reply.from, "+447911123456");
    assert_eq!(
        reply.to.number(),
        Some(PhoneNumber::parse_canonical("+447400123456").expect("number"))
    );
    assert_eq!(reply.body, "Yes, Thursday works");
    assert_eq!(reply.received_at, at(1_795_183_391));
    // The guide assigns the number through the admin API, as written there.
    assert_eq!(
        ibiki_core::Normalizer::new()
            .normalize("+44 7400 123456")
            .ok(),
        reply.to.number()
    );
    // The configuration's own signer agrees with openssl.
    let (header, value) = kestrel_config().auth.sign(&body).expect("HMAC");
    assert_eq!(
        (header.as_str(), value.as_str()),
        ("X-Kestrel-Signature", README_SIGNATURE)
    );
    let provider = kestrel();
    assert_eq!(provider.signing_mode(), SigningMode::Verify);
    assert_eq!(provider.success().status, 200);
    assert_eq!(provider.retry().status, 503);
}

#[test]
fn a_retried_delivery_keeps_its_id() {
    let body = fixture("generic/kestrel-inbound.json");
    let first = replies(post_kestrel(&body, Some(README_SIGNATURE)).expect("first"));
    let again = replies(post_kestrel(&body, Some(README_SIGNATURE)).expect("again"));
    assert!(first[0].message_id.is_some());
    assert_eq!(first[0].message_id, again[0].message_id);
}

#[test]
fn batches_give_one_reply_per_message_and_name_the_bad_one() {
    let body = br#"{"messages":[
        {"msg_id":"a","sender":"447700900001","recipient":"447400123456","content":{"text":"one"},"received":1700000000},
        {"msg_id":7,"sender":"447700900002","recipient":"447400123456","content":{"text":"two"},"received":"2023-11-14T22:13:20+00:00"}
    ]}"#;
    let sign = |body: &[u8]| kestrel_config().auth.sign(body).expect("HMAC").1;
    let replies = replies(post_kestrel(body, Some(&sign(body))).expect("batch"));
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[1].message_id.as_ref().map(|id| id.as_str()),
        Some("7")
    );
    assert_eq!(replies[0].received_at, at(NOW));
    let empty = br#"{"messages":[]}"#;
    assert!(matches!(
        post_kestrel(empty, Some(&sign(empty))),
        Ok(Received::Skipped { .. })
    ));
    let bad = br#"{"messages":[{"msg_id":"a","sender":"1","recipient":"2","content":{"text":"x"},"received":"now"},
        {"msg_id":"b","recipient":"2","content":{"text":"x"},"received":"now"}]}"#;
    let error = refused(post_kestrel(bad, Some(&sign(bad))));
    assert_eq!(error.status(), 400);
    assert!(
        error.to_string().contains("/messages/0/received"),
        "{error}"
    );
    let missing = br#"{"messages":[{"msg_id":"b","recipient":"2","content":{"text":"x"}}]}"#;
    let error = refused(post_kestrel(missing, Some(&sign(missing))));
    assert!(error.to_string().contains("/messages/0/sender"), "{error}");
}

#[test]
fn wrong_missing_and_malformed_signatures_are_unauthorized() {
    let body = fixture("generic/kestrel-inbound.json");
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("Thursday", "Friday");
    let wrong = refused(post_kestrel(tampered.as_bytes(), Some(README_SIGNATURE)));
    assert!(matches!(wrong, WebhookError::BadSignature), "{wrong}");
    let missing = refused(post_kestrel(&body, None));
    assert!(
        matches!(missing, WebhookError::MissingSignature { header } if header == "x-kestrel-signature"),
        "{missing}"
    );
    assert!(missing.to_string().contains("x-kestrel-signature"));
    let unprefixed = refused(post_kestrel(
        &body,
        Some(README_SIGNATURE.trim_start_matches("sha256=")),
    ));
    assert!(
        matches!(unprefixed, WebhookError::MalformedSignature { .. }),
        "{unprefixed}"
    );
    let not_hex = refused(post_kestrel(&body, Some("sha256=zz")));
    for error in [wrong, missing, unprefixed, not_hex] {
        assert_eq!(error.status(), 401, "{error}");
    }
}

#[test]
fn base64_sha1_hmacs_verify() {
    let provider = config(serde_json::json!({
        "format": "form",
        "fields": {"message_id": "id", "from": "from", "to": "to", "text": "text"},
        "auth": {"type": "hmac", "header": "X-Sig", "algorithm": "sha1", "encoding": "base64", "secret": "s3"}
    }))
    .expect("valid");
    let body = b"id=1&from=%2B447700900001&to=%2B447400123456&text=hi";
    let (_, signature) = provider.config().auth.sign(body).expect("HMAC");
    assert_eq!(signature.len(), 28, "base64 of 20 bytes");
    let pairs = [("content-type", FORM), ("x-sig", signature.as_str())];
    let [reply] = <[_; 1]>::try_from(replies(
        receive(&provider, &POST, URL, &pairs, body).expect("signed"),
    ))
    .expect("one");
    assert_eq!(reply.body, "hi");
    let error = refused(receive(&provider, &POST, URL, &pairs, b"id=2"));
    assert_eq!(error.status(), 401);
}

#[test]
fn tokens_and_basic_credentials_are_checked() {
    let fields =
        serde_json::json!({"message_id": "id", "from": "from", "to": "to", "text": "text"});
    let token = config(serde_json::json!({
        "format": "query", "fields": fields, "numbers": "e164",
        "auth": {"type": "token", "header": "X-Token", "token": "t0ken"}
    }))
    .expect("valid");
    let url = format!("{URL}?id=1&from=%2B447700900001&to=%2B447400123456&text=hi");
    receive(&token, &Method::GET, &url, &[("x-token", "t0ken")], b"").expect("right token");
    for pairs in [&[("x-token", "t0ke")][..], &[("x-token", "t0ken2")], &[]] {
        let error = refused(receive(&token, &Method::GET, &url, pairs, b""));
        assert_eq!(error.status(), 401, "{pairs:?}: {error}");
    }
    let basic = config(serde_json::json!({
        "format": "query", "fields": fields,
        "auth": {"type": "basic", "username": "gateway", "password": "pa:ss"}
    }))
    .expect("valid");
    // base64("gateway:pa:ss")
    let right = "Basic Z2F0ZXdheTpwYTpzcw==";
    receive(&basic, &Method::GET, &url, &[("authorization", right)], b"").expect("right");
    for value in [
        "Basic Z2F0ZXdheTpwYXNz",
        "Bearer Z2F0ZXdheTpwYTpzcw==",
        "Basic !!",
        "Basic",
    ] {
        let error = refused(receive(
            &basic,
            &Method::GET,
            &url,
            &[("authorization", value)],
            b"",
        ));
        assert_eq!(error.status(), 401, "{value}: {error}");
    }
    let error = refused(receive(&basic, &Method::GET, &url, &[], b""));
    assert!(
        matches!(error, WebhookError::MissingSignature { .. }),
        "{error}"
    );
}

#[test]
fn number_styles_and_formats() {
    let fields = serde_json::json!({"from": "From", "to": "To", "text": "Body"});
    let digits = config(serde_json::json!({
        "format": "form", "fields": fields, "numbers": "international-digits",
        "auth": {"type": "none"}
    }))
    .expect("valid");
    assert_eq!(digits.config().numbers, NumberStyle::InternationalDigits);
    assert_eq!(digits.signing_mode(), SigningMode::AcceptUnsigned);
    let body = b"From=447700900001&To=447400123456&Body=hi";
    let reply =
        &replies(receive(&digits, &POST, URL, &[("content-type", FORM)], body).expect("ok"))[0];
    assert_eq!(reply.from, "+447700900001");
    assert_eq!(reply.message_id, None);
    // As E.164, the same digits are not given a '+'.
    let e164 = config(serde_json::json!({
        "format": "form", "fields": fields, "auth": {"type": "none"}
    }))
    .expect("valid");
    let reply = &replies(receive(&e164, &POST, URL, &[], body).expect("ok"))[0];
    assert_eq!(reply.from, "447700900001");
    // Forms are not JSON, and the reverse.
    assert_eq!(
        refused(receive(&e164, &POST, URL, &[("content-type", JSON)], body)).status(),
        415
    );
    let kestrel_form = refused(receive(
        &kestrel(),
        &POST,
        URL,
        &[("content-type", FORM)],
        body,
    ));
    assert_eq!(kestrel_form.status(), 415);
    assert_eq!(
        refused(receive(&kestrel(), &Method::GET, URL, &[], b"")).status(),
        405
    );
    // Signatures required, none configured: every request refused.
    let required = Generic::new(e164.config().clone(), true).expect("valid");
    assert_eq!(required.signing_mode(), SigningMode::RefuseUnsigned);
    let error = refused(receive(&required, &POST, URL, &[], body));
    assert_eq!(error.code(), "signatures_required");
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let provider = config(serde_json::json!({
        "format": "json",
        "fields": {"message_id": "/id", "from": "/from", "to": "/to", "text": "/text"},
        "auth": {"type": "none"}
    }))
    .expect("valid");
    for (body, names) in [
        (&b"not json"[..], "JSON"),
        (br#"{"id":"1","to":"+2","text":"x"}"#, "/from"),
        (
            br#"{"id":"1","from":{"n":1},"to":"+2","text":"x"}"#,
            "/from",
        ),
        (br#"{"id":"","from":"+1","to":"+2","text":"x"}"#, "/id"),
        (br#"{"id":"1","from":"+1","to":"+2","text":null}"#, "/text"),
        (br#"[1,2]"#, "/id"),
    ] {
        let error = refused(receive(
            &provider,
            &POST,
            URL,
            &[("content-type", JSON)],
            body,
        ));
        assert_eq!(error.kind(), ErrorKind::BadRequest, "{error}");
        assert!(error.to_string().contains(names), "{names}: {error}");
    }
    let long = serde_json::json!({"id": "1", "from": "+1", "to": "+2", "text": "x".repeat(ibiki_core::InboundReply::MAX_BODY_LEN + 1)});
    let error = refused(receive(
        &provider,
        &POST,
        URL,
        &[],
        long.to_string().as_bytes(),
    ));
    assert!(error.to_string().contains("/text"), "{error}");
    let batch = config(serde_json::json!({
        "format": "json", "messages": "/results",
        "fields": {"from": "/from", "to": "/to", "text": "/text"},
        "auth": {"type": "none"}
    }))
    .expect("valid");
    let error = refused(receive(&batch, &POST, URL, &[], br#"{"results":{}}"#));
    assert!(error.to_string().contains("/results"), "{error}");
    let error = refused(receive(&batch, &POST, URL, &[], br#"{}"#));
    assert!(
        matches!(error, WebhookError::MissingField { .. }),
        "{error}"
    );
}

#[test]
fn configurations_are_checked_with_clear_errors() {
    let fields = serde_json::json!({"from": "/from", "to": "/to", "text": "/text"});
    let none = serde_json::json!({"type": "none"});
    let cases = [
        (
            serde_json::json!({"format": "json", "fields": {"from": "from", "to": "/to", "text": "/text"}, "auth": none}),
            "fields.from = \"from\" is not a JSON pointer",
        ),
        (
            serde_json::json!({"format": "json", "fields": {"from": "/a~2", "to": "/to", "text": "/text"}, "auth": none}),
            "not a JSON pointer",
        ),
        (
            serde_json::json!({"format": "form", "fields": {"from": "", "to": "to", "text": "text"}, "auth": none}),
            "fields.from must name a parameter",
        ),
        (
            serde_json::json!({"format": "form", "messages": "/m", "fields": {"from": "f", "to": "t", "text": "x"}, "auth": none}),
            "needs format = \"json\"",
        ),
        (
            serde_json::json!({"format": "json", "messages": "m", "fields": fields, "auth": none}),
            "messages",
        ),
        (
            serde_json::json!({"format": "query", "fields": {"from": "f", "to": "t", "text": "x"},
                "auth": {"type": "hmac", "header": "X-S", "secret": "s"}}),
            "signs the body",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields,
                "auth": {"type": "hmac", "header": "X S", "secret": "s"}}),
            "not a valid HTTP header name",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields,
                "auth": {"type": "token", "header": "X-T", "token": ""}}),
            "must not be empty",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields,
                "auth": {"type": "basic", "username": "a:b", "password": "p"}}),
            "without ':'",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields, "auth": {"type": "oauth"}}),
            "unknown variant `oauth`",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields, "auth": {"type": "hmac", "header": "X", "secret": "s", "encoding": "hex", "extra": 1}}),
            "unknown field `extra`",
        ),
        (
            serde_json::json!({"format": "xml", "fields": fields, "auth": none}),
            "unknown variant `xml`",
        ),
        (
            serde_json::json!({"format": "json", "fields": {"from": "/f", "to": "/t", "body": "/b"}, "auth": none}),
            "unknown field `body`",
        ),
        (
            serde_json::json!({"format": "json", "fields": fields}),
            "missing field `auth`",
        ),
    ];
    for (json, expected) in cases {
        let error = config(json.clone()).expect_err("refused");
        assert!(error.to_string().contains(expected), "{json}: {error}");
    }
    // Secrets never show in Debug output.
    let debug = format!("{:?}", kestrel());
    assert!(!debug.contains("kestrel-webhook-secret"), "{debug}");
    assert!(matches!(kestrel_config().auth, GenericAuth::Hmac { .. }));
}

proptest! {
    #[test]
    fn hmac_verifies_iff_the_body_is_unchanged(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (_, signature) = kestrel_config().auth.sign(&body).expect("HMAC");
        let verdict = |body: &[u8]| {
            post_kestrel(body, Some(&signature)).map_err(|error| error.kind())
        };
        // The original is past the signature (it may not decode).
        prop_assert_ne!(verdict(&body).err(), Some(ErrorKind::Unauthorized));
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(flip);
        } else {
            let i = index.index(changed.len());
            changed[i] ^= flip;
        }
        prop_assert_eq!(verdict(&changed).err(), Some(ErrorKind::Unauthorized));
    }

    #[test]
    fn any_body_is_answered_without_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        json in any::<bool>(),
    ) {
        let providers = [
            kestrel(),
            config(serde_json::json!({
                "format": "json", "messages": "",
                "fields": {"message_id": "/i", "from": "/f", "to": "/t", "text": "/x", "received_at": "/r"},
                "numbers": "international-digits", "auth": {"type": "none"}
            })).expect("valid"),
            config(serde_json::json!({
                "format": "form",
                "fields": {"from": "f", "to": "t", "text": "x", "received_at": "r"},
                "auth": {"type": "none"}
            })).expect("valid"),
        ];
        let content_type = if json { JSON } else { FORM };
        for provider in &providers {
            if let Err(error) = receive(provider, &POST, URL, &[("content-type", content_type)], &body) {
                prop_assert!(error.status().is_client_error(), "{}", error);
            }
        }
    }

    #[test]
    fn any_json_message_is_answered_without_panic(
        from in prop_oneof![Just(serde_json::Value::Null), any::<i64>().prop_map(serde_json::Value::from), ".{0,30}".prop_map(serde_json::Value::from)],
        text in ".{0,50}",
        received in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), ".{0,30}"],
    ) {
        let provider = config(serde_json::json!({
            "format": "json",
            "fields": {"from": "/f", "to": "/t", "text": "/x", "received_at": "/r"},
            "numbers": "international-digits", "auth": {"type": "none"}
        })).expect("valid");
        let body = serde_json::json!({"f": from, "t": "447400123456", "x": text, "r": received});
        if let Err(error) = receive(&provider, &POST, URL, &[], body.to_string().as_bytes()) {
            prop_assert_eq!(error.kind(), ErrorKind::BadRequest, "{}", error);
        }
    }
}
