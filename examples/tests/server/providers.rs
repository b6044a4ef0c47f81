//! Each provider's documented delivery, signed as that provider signs it,
//! posted to `/webhooks/{provider}` of a real server configured with the
//! provider's key by its flag: recorded in the right inbox once, answered as
//! the provider expects; a wrong, missing or stale signature gets 401 and
//! records nothing; a store failure gets the provider's retry answer.
//!
//! One entry of [`cases`] per provider.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use ibiki_providers::generic::GenericConfig;
use ibiki_providers::testing::{self as signing, Signed, fixture, fixture_path};
use ibiki_providers::vonage::SignatureMethod;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::controlled_store::ControlledStore;
use crate::harness::{Options, TestServer, assert_error, send, unix_now};

store_tests!(each_provider_delivers_end_to_end);

/// The public URL every test server is configured with: what URL-signed
/// schemes sign.
const PUBLIC_URL: &str = "https://sms.example.com";

/// Which key a request is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// The one the server is configured with.
    Right,
    /// Another one.
    Wrong,
}

/// Signs a body for a URL at a time (Unix seconds).
type SignFn = fn(Key, &str, &[u8], u64) -> Signed;

/// One provider, its fixture, its signing and what it should produce.
struct Case {
    name: &'static str,
    /// The documented payload, from `ibiki-providers/tests/fixtures/`.
    body: fn() -> Vec<u8>,
    content_type: &'static str,
    /// The server flags setting this provider's key.
    key_flags: fn() -> Vec<String>,
    /// Signs `body` for `url` at `signed_at` (Unix seconds).
    sign: SignFn,
    /// Whether a 401 carries a `WWW-Authenticate` challenge (HTTP Basic).
    challenge: bool,
    /// Whether the signature covers a time, so that a stale one is refused.
    signs_time: bool,
    /// The reply as recorded.
    message_id: &'static str,
    from: &'static str,
    to: &'static str,
    text: &'static str,
    /// The success answer: status, content type and body.
    success: (u16, Option<&'static str>, &'static str),
    /// The answer to a store failure.
    retry: u16,
}

const FORM: &str = "application/x-www-form-urlencoded";
/// Not a content type: the parameters are sent as a `GET` query.
const QUERY: &str = "GET query";
/// What the server labels an empty `200` with.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "twilio",
            body: || fixture("twilio/inbound.form"),
            content_type: FORM,
            key_flags: || flags("--twilio-auth-token", TWILIO_TOKEN),
            sign: sign_twilio,
            challenge: false,
            signs_time: false,
            message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f",
            from: "+15005550006",
            to: "+14155550100",
            text: "STOP please",
            success: (200, Some("text/xml"), signing::TWILIO_EMPTY_TWIML),
            retry: 503,
        },
        Case {
            name: "telnyx",
            body: || fixture("telnyx/message-received.json"),
            content_type: "application/json",
            key_flags: || {
                let public = telnyx_key(Key::Right).verifying_key().to_bytes();
                flags("--telnyx-public-key", &signing::base64_encode(&public))
            },
            sign: sign_telnyx,
            challenge: false,
            signs_time: true,
            message_id: "7ee4241c-f127-47e5-9c34-3aac291f8058",
            from: "+18665550001",
            to: "+18445550001",
            text: "Hello, World!",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
        Case {
            name: "vonage",
            // Vonage's documented `to` is in Ofcom's drama range (07700 900xxx),
            // which the numbering metadata rightly calls invalid: it would be
            // held, not routed. A real UK mobile number stands in for it.
            body: || {
                let body = String::from_utf8(fixture("vonage/inbound.form")).expect("UTF-8");
                body.replace("&to=447700900000&", "&to=447400123456&")
                    .into_bytes()
            },
            content_type: FORM,
            key_flags: || {
                let mut flags = flags("--vonage-signature-secret", VONAGE_SECRET);
                flags.extend(["--vonage-signature-method".into(), "sha256".into()]);
                flags
            },
            sign: sign_vonage,
            challenge: false,
            signs_time: true,
            message_id: "0A0000000123ABCD1",
            from: "+447700900001",
            to: "+447400123456",
            text: "Hello world",
            success: (204, None, ""),
            retry: 503,
        },
        Case {
            name: "vonage",
            // The same parameters as a GET query, Vonage's default method.
            body: || {
                let body = String::from_utf8(fixture("vonage/inbound.form")).expect("UTF-8");
                body.replace("&to=447700900000&", "&to=447400123456&")
                    .replace("=0A0000000123ABCD1&", "=0A0000000123ABCD2&")
                    .into_bytes()
            },
            content_type: QUERY,
            key_flags: || {
                let mut flags = flags("--vonage-signature-secret", VONAGE_SECRET);
                flags.extend(["--vonage-signature-method".into(), "sha256".into()]);
                flags
            },
            sign: sign_vonage,
            challenge: false,
            signs_time: true,
            message_id: "0A0000000123ABCD2",
            from: "+447700900001",
            to: "+447400123456",
            text: "Hello world",
            success: (204, None, ""),
            retry: 503,
        },
        Case {
            name: "plivo",
            body: || fixture("plivo/inbound.form"),
            content_type: FORM,
            key_flags: || flags("--plivo-auth-token", PLIVO_TOKEN),
            sign: sign_plivo,
            challenge: false,
            signs_time: false,
            message_id: "2c9ba6b8-6b2b-11ee-9d87-0242ac110004",
            from: "+14155550001",
            to: "+14155550100",
            text: "Hi from Plivo",
            success: (200, Some("application/xml"), signing::PLIVO_EMPTY_XML),
            retry: 503,
        },
        Case {
            name: "bandwidth",
            body: || fixture("bandwidth/message-received.json"),
            content_type: "application/json",
            key_flags: || {
                let mut flags = flags("--bandwidth-username", BASIC_USER);
                flags.extend(["--bandwidth-password".into(), BASIC_PASSWORD.into()]);
                flags
            },
            sign: sign_basic,
            challenge: true,
            signs_time: false,
            message_id: "14762070468292kw2fuqty55yp2b2",
            from: "+12345678901",
            to: "+12345678902",
            text: "Hey, check this out!",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
        Case {
            name: "sinch",
            body: || fixture("sinch/mo-text.json"),
            content_type: "application/json",
            key_flags: || flags("--sinch-webhook-secret", SINCH_SECRET),
            sign: sign_sinch,
            challenge: false,
            signs_time: true,
            message_id: "01W4FFL35P4NC4K35SMSBATCH8",
            from: "+12015555555",
            to: "+12017777777",
            text: "Hello John! 👋",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
        Case {
            name: "messagebird",
            body: || fixture("messagebird/vmn.query"),
            content_type: FORM,
            key_flags: || flags("--messagebird-signing-key", MESSAGEBIRD_KEY),
            sign: sign_messagebird,
            challenge: false,
            signs_time: true,
            message_id: "e8077d803532c0b5937c639b60216938",
            from: "+31612345678",
            to: "+31642500190",
            text: "This is an incoming message",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
        Case {
            name: "infobip",
            body: || fixture("infobip/inbound.json"),
            content_type: "application/json",
            key_flags: || {
                let mut flags = flags("--infobip-username", BASIC_USER);
                flags.extend(["--infobip-password".into(), BASIC_PASSWORD.into()]);
                flags
            },
            sign: sign_basic,
            challenge: true,
            signs_time: false,
            message_id: "817790313235066447",
            from: "+385916242493",
            to: "+385921004026",
            text: "QUIZ Correct answer is Paris",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
        Case {
            name: "generic",
            body: || fixture("generic/kestrel-inbound.json"),
            content_type: "application/json",
            // The guide's made-up gateway (docs/src/providers.md), its configuration file as printed.
            key_flags: || {
                let path = fixture_path("generic/kestrel.toml");
                flags("--generic-config", &path.display().to_string())
            },
            sign: sign_generic,
            challenge: false,
            signs_time: false,
            message_id: "ks-7f3a9c21",
            from: "+447911123456",
            to: "+447400123456",
            text: "Yes, Thursday works",
            success: (200, Some(TEXT_PLAIN), ""),
            retry: 503,
        },
    ]
}

const TWILIO_TOKEN: &str = "twilio-auth-token";
const VONAGE_SECRET: &str = "vonage-signature-secret";
const PLIVO_TOKEN: &str = "plivo-auth-token";
const BASIC_USER: &str = "callbacks";
const BASIC_PASSWORD: &str = "callback-password";
const SINCH_SECRET: &str = "sinch-webhook-secret";
const MESSAGEBIRD_KEY: &str = "messagebird-signing-key";

fn flags(flag: &str, value: &str) -> Vec<String> {
    vec![flag.to_owned(), value.to_owned()]
}

fn key_text(key: Key, right: &str) -> String {
    match key {
        Key::Right => right.to_owned(),
        Key::Wrong => format!("{right}-but-wrong"),
    }
}

fn sign_twilio(key: Key, url: &str, body: &[u8], _: u64) -> Signed {
    signing::twilio(&key_text(key, TWILIO_TOKEN), url, body)
}

fn sign_telnyx(key: Key, _: &str, body: &[u8], signed_at: u64) -> Signed {
    signing::telnyx(&telnyx_key(key), signed_at, body)
}

fn telnyx_key(key: Key) -> ed25519_dalek::SigningKey {
    signing::telnyx_key([if key == Key::Right { 7 } else { 8 }; 32])
}

fn sign_vonage(key: Key, _: &str, body: &[u8], signed_at: u64) -> Signed {
    let secret = key_text(key, VONAGE_SECRET);
    signing::vonage(&secret, SignatureMethod::Sha256Hmac, signed_at, body)
}

fn sign_plivo(key: Key, url: &str, body: &[u8], _: u64) -> Signed {
    let nonce = "31627761595286130198";
    signing::plivo(&key_text(key, PLIVO_TOKEN), &Method::POST, url, body, nonce)
}

fn sign_basic(key: Key, _: &str, body: &[u8], _: u64) -> Signed {
    signing::basic(BASIC_USER, &key_text(key, BASIC_PASSWORD), body)
}

fn sign_sinch(key: Key, _: &str, body: &[u8], signed_at: u64) -> Signed {
    let nonce = "01FJA8B4A7BM43YGWSG9GBV067";
    signing::sinch(&key_text(key, SINCH_SECRET), signed_at, nonce, body)
}

fn sign_messagebird(key: Key, url: &str, body: &[u8], signed_at: u64) -> Signed {
    let not_before = i64::try_from(signed_at).expect("a recent time");
    signing::messagebird(&key_text(key, MESSAGEBIRD_KEY), url, body, not_before)
}

/// The generic gateway's, as its file configures it.
fn sign_generic(key: Key, _: &str, body: &[u8], _: u64) -> Signed {
    let text = String::from_utf8(fixture("generic/kestrel.json")).expect("UTF-8");
    let text = text.replace(
        "kestrel-webhook-secret",
        &key_text(key, "kestrel-webhook-secret"),
    );
    let config = GenericConfig::from_json(&text).expect("the gateway's file");
    signing::generic(&config.auth, body)
}

/// A server with every case's key and the public URL, plus `extra` flags.
async fn server(store: Arc<DynReplyStore>, extra: &[&str]) -> TestServer {
    let mut provider_flags = flags("--public-url", PUBLIC_URL);
    let mut configured = std::collections::BTreeSet::new();
    // A provider with several cases (Vonage's POST and GET) is configured once.
    for case in cases()
        .into_iter()
        .filter(|case| configured.insert(case.name))
    {
        provider_flags.extend((case.key_flags)());
    }
    provider_flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    let options = Options {
        provider_flags,
        ..Options::default()
    };
    TestServer::start_with(store, options).await
}

/// A provider's answer: status, content type and body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

impl Case {
    /// Whether the server serves it without its key flag (the generic
    /// gateway exists only through its file).
    fn served_without_key(&self) -> bool {
        self.name != "generic"
    }

    fn path(&self) -> String {
        format!("/webhooks/{}", self.name)
    }

    fn url(&self) -> String {
        format!("{PUBLIC_URL}{}", self.path())
    }

    fn signed(&self, key: Key, signed_at: u64) -> Signed {
        (self.sign)(key, &self.url(), &(self.body)(), signed_at)
    }

    fn unsigned(&self) -> Signed {
        Signed {
            body: (self.body)(),
            headers: Vec::new(),
        }
    }

    fn request(&self, server: &TestServer, signed: Signed) -> reqwest::RequestBuilder {
        let mut request = if self.content_type == QUERY {
            let query = String::from_utf8(signed.body).expect("a query");
            server.request(Method::GET, &format!("{}?{query}", self.path()))
        } else {
            server
                .request(Method::POST, &self.path())
                .header("content-type", self.content_type)
                .body(signed.body)
        };
        for (name, value) in signed.headers {
            request = request.header(name, value);
        }
        request
    }

    async fn post(&self, server: &TestServer, signed: Signed) -> Answer {
        let response = self
            .request(server, signed)
            .send()
            .await
            .expect("request sent");
        Answer {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: response.text().await.expect("body"),
        }
    }

    fn success(&self) -> Answer {
        let (status, content_type, body) = self.success;
        Answer {
            status,
            content_type: content_type.map(str::to_owned),
            body: body.to_owned(),
        }
    }

    fn client(&self) -> String {
        if self.content_type == QUERY {
            format!("client-{}-get", self.name)
        } else {
            format!("client-{}", self.name)
        }
    }

    /// Asserts the client's inbox holds exactly this case's reply, `count`
    /// times (0 or 1), and nothing is held.
    async fn assert_recorded(&self, server: &TestServer, count: usize) {
        let inbox = server.inbox(&self.client()).await;
        assert_eq!(inbox.len(), count, "{}: {inbox:?}", self.name);
        for reply in inbox {
            let expected = json!({
                "messageId": self.message_id,
                "from": self.from,
                "to": self.to,
                "body": self.text,
            });
            let mut reply: Value = reply;
            let fields = reply.as_object_mut().expect("an object");
            fields.remove("receivedAt");
            fields.remove("id");
            let delivery = fields.remove("delivery").expect("delivery");
            assert_eq!(delivery["kind"], "routed", "{}", self.name);
            assert_eq!(reply, expected, "{}", self.name);
        }
        assert_eq!(server.held().await, Vec::<Value>::new(), "{}", self.name);
    }
}

async fn each_provider_delivers_end_to_end(store: Arc<DynReplyStore>) {
    let server = server(store, &[]).await;
    for case in cases() {
        server.assign_ok(&case.client(), json!(case.to)).await;
        let now = unix_now();

        let wrong = send(case.request(&server, case.signed(Key::Wrong, now))).await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_signature");
        let missing = case.request(&server, case.unsigned()).send().await;
        let missing = missing.expect("request sent");
        let challenge = missing.headers().get("www-authenticate").cloned();
        assert_eq!(
            challenge.is_some(),
            case.challenge,
            "{}: {challenge:?}",
            case.name
        );
        let missing = send(case.request(&server, case.unsigned())).await;
        assert_error(&missing, StatusCode::UNAUTHORIZED, "missing_signature");
        if case.signs_time {
            // Two days: past every provider's tolerance (Sinch's is a day).
            let stale = case.signed(Key::Right, now - 2 * 86_400);
            let stale = send(case.request(&server, stale)).await;
            assert_error(&stale, StatusCode::UNAUTHORIZED, "stale_timestamp");
        }
        case.assert_recorded(&server, 0).await;

        // The delivery, then the provider's retry of it.
        for _ in 0..2 {
            let answer = case.post(&server, case.signed(Key::Right, now)).await;
            assert_eq!(answer, case.success(), "{}", case.name);
        }
        case.assert_recorded(&server, 1).await;
        // The number is free for the next provider's fixture.
        server.assign_ok(&case.client(), json!([])).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_gets_each_providers_retry_answer() {
    let store = Arc::new(ControlledStore::new());
    let server = server(store.clone(), &[]).await;
    for case in cases() {
        server.assign_ok(&case.client(), json!(case.to)).await;
        let now = unix_now();
        store.set_down(true);
        let answer = case.post(&server, case.signed(Key::Right, now)).await;
        assert_eq!(answer.status, case.retry, "{}: {answer:?}", case.name);
        store.set_down(false);
        case.assert_recorded(&server, 0).await;
        // The provider delivers again: recorded this time, once.
        let answer = case.post(&server, case.signed(Key::Right, now)).await;
        assert_eq!(answer, case.success(), "{}", case.name);
        case.assert_recorded(&server, 1).await;
        server.assign_ok(&case.client(), json!([])).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_signatures_refuse_providers_without_a_key() {
    let store = crate::harness::memory_store();
    let options = Options {
        provider_flags: vec!["--require-signatures".into()],
        ..Options::default()
    };
    let server = TestServer::start_with(store, options).await;
    for case in cases().into_iter().filter(Case::served_without_key) {
        server.assign_ok(&case.client(), json!(case.to)).await;
        for signed in [case.signed(Key::Right, unix_now()), case.unsigned()] {
            let answer = send(case.request(&server, signed)).await;
            assert_error(&answer, StatusCode::UNAUTHORIZED, "signatures_required");
        }
        case.assert_recorded(&server, 0).await;
        server.assign_ok(&case.client(), json!([])).await;
    }
    // The generic gateway is not served without its file.
    let answer = send(server.request(Method::POST, "/webhooks/generic")).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "unknown_provider");
    // ibiki's own webhook too, without --webhook-secret.
    let answer = server
        .webhook(&crate::harness::reply("SM1", "+14155550100", "hi"))
        .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "signatures_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_a_provider_accepts_unsigned_deliveries() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    for case in cases().into_iter().filter(Case::served_without_key) {
        server.assign_ok(&case.client(), json!(case.to)).await;
        let answer = case.post(&server, case.unsigned()).await;
        assert_eq!(answer, case.success(), "{}", case.name);
        server.assign_ok(&case.client(), json!([])).await;
    }
}
