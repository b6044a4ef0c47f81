//! `/webhooks/{provider}` through the router: the provider picked by name,
//! the URL it signed rebuilt, its answers sent back, and `/webhooks/sms`
//! pointing other providers' payloads to their own route.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use ibiki_core::Secret;
use ibiki_http::{AdminToken, App};
use ibiki_memory::MemoryStore;
use ibiki_providers::PublicUrl;
use ibiki_providers::Registry;
use ibiki_providers::Signing;
use ibiki_providers::telnyx::Telnyx;
use ibiki_providers::testing::{self as signing, TWILIO_EMPTY_TWIML, fixture};
use ibiki_providers::twilio::Twilio;
use ibiki_providers::vonage::Vonage;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const AUTH_TOKEN: &str = "12345";

fn app(public_url: Option<&str>) -> Router {
    let token: Secret = AUTH_TOKEN.parse().expect("secret");
    let registry = Registry::new()
        .with(Twilio::new(Signing::Verify(token)))
        .with(Telnyx::new(Signing::AcceptUnsigned))
        .with(Vonage::new(Signing::RefuseUnsigned));
    let mut app = App::new(
        Arc::new(MemoryStore::new()),
        AdminToken::new(ADMIN.parse().expect("token")),
    )
    .with_providers(registry);
    if let Some(url) = public_url {
        app = app.with_public_url(url.parse::<PublicUrl>().expect("public URL"));
    }
    app.router()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    allow: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.content_type, "application/json", "{}", self.body);
        serde_json::from_str(&self.body).expect("JSON")
    }
}

async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, allow) =
        (response.status(), header("content-type"), header("allow"));
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    Answer {
        status,
        content_type,
        allow,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn post(path: &str, content_type: &str) -> axum::http::request::Builder {
    Request::post(path).header("content-type", content_type)
}

fn twilio_request(host: &str, signed_url: &str) -> Request<Body> {
    let body = fixture("twilio/inbound.form");
    let signed = signing::twilio(AUTH_TOKEN, signed_url, &body);
    let mut request =
        post("/webhooks/twilio", "application/x-www-form-urlencoded").header("host", host);
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request.body(Body::from(signed.body)).expect("request")
}

async fn inbox_len(router: &Router, phone_number: &str) -> usize {
    let assign = serde_json::json!({"userId": "c1", "phoneNumbers": phone_number}).to_string();
    let request = post("/api/admin/update-phone-numbers", "application/json")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(assign))
        .expect("request");
    assert_eq!(call(router, request).await.status, StatusCode::OK);
    let request = Request::get("/api/clients/c1/messages")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("request");
    call(router, request).await.json()["messages"]
        .as_array()
        .expect("messages")
        .len()
}

async fn held(router: &Router) -> Vec<Value> {
    let request = Request::get("/api/admin/held")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("request");
    call(router, request).await.json()["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

#[tokio::test]
async fn a_signed_delivery_is_recorded_once_and_answered_with_twiml() {
    let router = app(None);
    // No public URL: the URL is rebuilt from the Host header.
    let url = "http://sms.example.com/webhooks/twilio";
    for _ in 0..2 {
        let answer = call(&router, twilio_request("sms.example.com", url)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.content_type, "text/xml");
        assert_eq!(answer.body, TWILIO_EMPTY_TWIML);
    }
    assert_eq!(inbox_len(&router, "+14155550100").await, 1);
}

#[tokio::test]
async fn the_public_url_is_what_the_signature_covers() {
    let router = app(Some("https://public.example.com/ibiki"));
    let public = "https://public.example.com/ibiki/webhooks/twilio";
    let answer = call(&router, twilio_request("10.0.0.1:8080", public)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Signed for the Host header: not the URL Twilio called.
    let answer = call(
        &router,
        twilio_request("10.0.0.1:8080", "http://10.0.0.1:8080/webhooks/twilio"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_signature");
    assert_eq!(inbox_len(&router, "+14155550100").await, 1);
}

#[tokio::test]
async fn refusals_are_json_errors_and_record_nothing() {
    let router = app(None);
    let unknown = call(
        &router,
        post("/webhooks/nope", "application/json")
            .body(Body::from("{}"))
            .expect("request"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"], "unknown_provider");

    let wrong = call(
        &router,
        twilio_request("sms.example.com", "http://elsewhere/webhooks/twilio"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let body = wrong.json();
    assert_eq!(body["error"], "invalid_signature");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let get = call(
        &router,
        Request::get("/webhooks/telnyx")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.allow, "POST");
    assert_eq!(get.json()["error"], "method_not_allowed");

    // Vonage is configured to refuse unsigned requests.
    let refused = call(
        &router,
        Request::get("/webhooks/vonage?msisdn=447700900001&to=447700900000&text=hi")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"], "signatures_required");

    let large = vec![b'a'; ibiki_providers::MAX_BODY_BYTES + 1];
    let large = call(
        &router,
        post("/webhooks/telnyx", "application/json")
            .body(Body::from(large))
            .expect("request"),
    )
    .await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(large.json()["error"], "payload_too_large");

    let malformed = call(
        &router,
        post("/webhooks/telnyx", "application/json")
            .body(Body::from("{\"data\":"))
            .expect("request"),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["error"], "malformed_body");

    assert_eq!(inbox_len(&router, "+14155550100").await, 0);
}

#[tokio::test]
async fn a_skipped_event_is_acknowledged_and_not_recorded() {
    let router = app(None);
    let answer = call(
        &router,
        post("/webhooks/telnyx", "application/json")
            .body(Body::from(fixture("telnyx/message-finalized.json")))
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(inbox_len(&router, "+13125550001").await, 0);
}

/// Each provider's documented payload posted to `/webhooks/sms`.
fn other_payloads() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    vec![
        ("plivo", FORM, fixture("plivo/inbound.form")),
        // Plivo's MMS fields without Text.
        (
            "plivo",
            FORM,
            b"From=14155550001&To=14155550100&Type=mms&Body=hi&MessageUUID=1".to_vec(),
        ),
        ("vonage", FORM, fixture("vonage/inbound.form")),
        ("vonage", JSON, fixture("vonage/inbound.json")),
        ("telnyx", JSON, fixture("telnyx/message-received.json")),
        ("telnyx", JSON, fixture("telnyx/message-finalized.json")),
        ("bandwidth", JSON, fixture("bandwidth/message-received.json")),
        ("bandwidth", JSON, fixture("bandwidth/message-delivered.json")),
        ("infobip", JSON, fixture("infobip/inbound.json")),
        // Sinch's MO text: from, to and body, as ibiki's own JSON names them.
        ("sinch", JSON, fixture("sinch/mo-text.json")),
        ("sinch", JSON, fixture("sinch/mo-media.json")),
        ("messagebird", FORM, fixture("messagebird/vmn.query")),
        ("messagebird", FORM, fixture("messagebird/shortcode.query")),
        // MessageBird's incoming SMS, as a form and as JSON.
        (
            "messagebird",
            FORM,
            b"id=e8077d803532c0b5937c639b60216938&recipient=31612345678&originator=31687654321&body=This+is+an+incoming+message&createdDatetime=2016-05-03T14%3A26%3A57%2B00%3A00".to_vec(),
        ),
        (
            "messagebird",
            JSON,
            br#"{"originator":"31687654321","message":"This is an incoming message","recipient":"31612345678"}"#.to_vec(),
        ),
    ]
}

#[tokio::test]
async fn other_providers_payloads_on_webhooks_sms_name_their_route() {
    let router = app(None);
    for (provider, content_type, body) in other_payloads() {
        let answer = call(
            &router,
            post("/webhooks/sms", content_type)
                .body(Body::from(body))
                .expect("request"),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{provider}: {}",
            answer.body
        );
        let body = answer.json();
        assert_eq!(body["error"], "other_provider_payload", "{provider}");
        let route = format!("/webhooks/{provider}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(&route)),
            "{provider}: {body}"
        );
    }
    // Nothing was held or routed.
    assert_eq!(held(&router).await, Vec::<Value>::new());
}

#[tokio::test]
async fn ibikis_own_formats_still_route() {
    let router = app(None);
    let twilio_style = call(
        &router,
        post("/webhooks/sms", "application/x-www-form-urlencoded")
            .body(Body::from(fixture("twilio/inbound.form")))
            .expect("request"),
    )
    .await;
    assert_eq!(twilio_style.status, StatusCode::OK, "{}", twilio_style.body);
    let json = br#"{"messageId":"m2","from":"+15005550006","to":"+14155550100","body":"hi","type":"note"}"#;
    let own = call(
        &router,
        post("/webhooks/sms", "application/json")
            .body(Body::from(&json[..]))
            .expect("request"),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(held(&router).await.len(), 2);
}
