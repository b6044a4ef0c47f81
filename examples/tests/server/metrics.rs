//! `GET /metrics`: the counts after a known sequence, read back from the
//! exposition text, and who may read them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::controlled_store::ControlledStore;
use crate::harness::{TOKEN, TestServer, assert_error, reply, send, signature, unix_now};

store_tests!(a_known_sequence_is_counted_exactly);

/// One sample of the exposition: its labels and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (comments left out).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            let value = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("{line:?}"));
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

/// A scrape of the app's `/metrics`, with the admin token.
struct Scrape(Vec<Sample>);

impl Scrape {
    async fn of(server: &TestServer) -> Self {
        let response = server.get("/metrics").send().await.expect("scraped");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Self(parse(&response.text().await.expect("text")))
    }

    /// The value of the one sample of `name` with exactly `labels`; 0 when
    /// there is none (a series is only exposed once counted).
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<&Sample> = self
            .0
            .iter()
            .filter(|s| s.name == name && s.labels == labels)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} twice: {found:?}");
        found.first().map_or(0.0, |s| s.value)
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    #[track_caller]
    /// Replies to `/webhooks/sms` with `outcome`; held ones are those nobody
    /// owns (`reason="unowned"`).
    fn replies(&self, outcome: &str) -> f64 {
        let name = "ibiki_replies_received_total";
        match outcome {
            "held" => self.value(
                name,
                &[("route", "sms"), ("outcome", "held"), ("reason", "unowned")],
            ),
            _ => self.value(name, &[("route", "sms"), ("outcome", outcome)]),
        }
    }

    #[track_caller]
    fn rejected(&self, reason: &str) -> f64 {
        let labels = [
            ("route", "sms"),
            ("outcome", "rejected"),
            ("reason", reason),
        ];
        self.value("ibiki_replies_received_total", &labels)
    }

    #[track_caller]
    fn store_errors(&self, kind: &str) -> f64 {
        self.value("ibiki_store_errors_total", &[("kind", kind)])
    }
}

/// 3 routed, 2 held, 1 duplicate, 2 rejected (a bad signature, a bad
/// payload), a conflict, an assignment that releases the 2 held, and a third
/// held reply an operator re-routes.
async fn a_known_sequence_is_counted_exactly(store: Arc<DynReplyStore>) {
    let server = TestServer::start_signed(store).await;
    let signed = async |payload: serde_json::Value| {
        let body = payload.to_string();
        let answer = send(server.webhook_signed("application/json", &body, unix_now())).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
        answer.1["status"].as_str().expect("status").to_owned()
    };
    server.assign_ok("acme", json!("+14155550100")).await;
    for id in ["SM1", "SM2", "SM3"] {
        assert_eq!(signed(reply(id, "+14155550100", "yes")).await, "routed");
    }
    for id in ["SM4", "SM5"] {
        assert_eq!(signed(reply(id, "+14155550101", "later")).await, "held");
    }
    assert_eq!(
        signed(reply("SM1", "+14155550100", "yes")).await,
        "duplicate"
    );
    let body = reply("SM6", "+14155550100", "forged").to_string();
    let forged = server
        .webhook_raw("application/json", body.clone())
        .header("x-ibiki-signature", signature("wrong", unix_now(), &body));
    assert_error(
        &send(forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    );
    let garbage = "{not json";
    let garbage = server.webhook_signed("application/json", garbage, unix_now());
    assert_error(
        &send(garbage).await,
        StatusCode::BAD_REQUEST,
        "invalid_payload",
    );
    let conflict = server.assign("other", json!("+14155550100")).await;
    assert_error(&conflict, StatusCode::CONFLICT, "phone_number_conflict");

    let before = Scrape::of(&server).await;
    assert_eq!(before.value("ibiki_held_replies", &[]), 2.0);
    assert_eq!(before.value("ibiki_held_replies_rerouted_total", &[]), 0.0);

    let released = server
        .assign_ok("acme", json!("+14155550100, +14155550101"))
        .await;
    assert_eq!(released["released"], 2);
    assert_eq!(signed(reply("SM7", "+14155550199", "stray")).await, "held");
    let stray = &server.held().await[0]["id"];
    let (status, moved) = crate::reroute::deliver(&server, stray, json!({"userId": "acme"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");

    let after = Scrape::of(&server).await;
    assert_eq!(after.replies("routed"), 3.0);
    assert_eq!(after.replies("held"), 3.0);
    assert_eq!(after.replies("duplicate"), 1.0);
    assert_eq!(after.replies("failed"), 0.0);
    assert_eq!(after.rejected("bad_signature"), 1.0);
    assert_eq!(after.rejected("bad_payload"), 1.0);
    let latency = "ibiki_reply_receive_duration_seconds_count";
    assert_eq!(
        after.value(latency, &[]),
        7.0,
        "one per reply the store saw"
    );
    let bucket = [("le", "+Inf")];
    let le_inf = after.value("ibiki_reply_receive_duration_seconds_bucket", &bucket);
    assert_eq!(le_inf, 7.0);
    assert_eq!(
        after.value("ibiki_held_replies", &[]),
        0.0,
        "all released or re-routed"
    );
    let changes = [("change", "replace")];
    assert_eq!(after.value("ibiki_assignment_changes_total", &changes), 2.0);
    assert_eq!(after.value("ibiki_numbers_assigned_total", &[]), 2.0);
    assert_eq!(after.value("ibiki_numbers_unassigned_total", &[]), 0.0);
    assert_eq!(after.value("ibiki_held_replies_released_total", &[]), 2.0);
    assert_eq!(after.value("ibiki_held_replies_rerouted_total", &[]), 1.0);
    assert_eq!(after.store_errors("conflict"), 1.0);
    assert_eq!(after.store_errors("unavailable"), 0.0);
}

#[tokio::test]
async fn metrics_need_the_admin_token() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    let answer = send(server.request(Method::GET, "/metrics")).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = server
        .request(Method::GET, "/metrics")
        .bearer_auth(format!("{TOKEN}-not"));
    assert_error(&send(wrong).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(Scrape::of(&server).await.has("ibiki_held_replies"));
}

#[tokio::test]
async fn store_failures_are_counted_by_kind() {
    let store = Arc::new(ControlledStore::new());
    let server = TestServer::start(store.clone()).await;
    store.set_down(true);
    let payload = reply("SM1", "+14155550100", "during an outage");
    assert_eq!(
        server.webhook(&payload).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, _) = send(server.get("/api/admin/held")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let down = Scrape::of(&server).await;
    assert!(
        !down.has("ibiki_held_replies"),
        "no gauge rather than a stale one"
    );
    // The webhook, the listing and this scrape's count of the held replies.
    assert_eq!(down.store_errors("unavailable"), 3.0);
    assert_eq!(down.replies("failed"), 1.0);

    store.set_down(false);
    assert_eq!(server.webhook(&payload).await.0, StatusCode::OK);
    let up = Scrape::of(&server).await;
    assert_eq!(up.store_errors("unavailable"), 3.0);
    assert_eq!(up.replies("held"), 1.0);
    assert_eq!(up.value("ibiki_held_replies", &[]), 1.0);
}

/// A provider's replies are counted under its name, a route naming no
/// provider under `unknown`, and a store failure on a provider's route (whose
/// answer is the provider's own retry answer) as a store error too.
#[tokio::test]
async fn provider_routes_are_counted_by_name() {
    let store = Arc::new(ControlledStore::new());
    let server = TestServer::start(store.clone()).await;
    let body = ibiki_providers::testing::fixture("twilio/inbound.form");
    let twilio = || {
        server
            .request(Method::POST, "/webhooks/twilio")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
    };
    // No key configured: unsigned requests are accepted.
    assert_eq!(
        twilio().send().await.expect("sent").status(),
        StatusCode::OK
    );
    let unknown = server.request(Method::POST, "/webhooks/nope").body("x");
    assert_eq!(send(unknown).await.0, StatusCode::NOT_FOUND);
    store.set_down(true);
    let retry = twilio().send().await.expect("sent").status();
    assert!(retry.is_server_error(), "{retry}");
    store.set_down(false);

    let scrape = Scrape::of(&server).await;
    let twilio = |outcome| [("route", "twilio"), ("outcome", outcome)];
    let received = "ibiki_replies_received_total";
    let held = [
        ("route", "twilio"),
        ("outcome", "held"),
        ("reason", "unowned"),
    ];
    assert_eq!(scrape.value(received, &held), 1.0);
    assert_eq!(scrape.value(received, &twilio("failed")), 1.0);
    let unknown = [
        ("route", "unknown"),
        ("outcome", "rejected"),
        ("reason", "unknown_provider"),
    ];
    assert_eq!(scrape.value(received, &unknown), 1.0);
    assert_eq!(scrape.store_errors("unavailable"), 1.0);
    assert_eq!(scrape.replies("held"), 0.0, "not under sms");
}
