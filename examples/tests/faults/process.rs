//! `ibiki-server` processes on PostgreSQL through a [`FaultProxy`], and a
//! provider-style sender that posts signed replies until each is answered
//! 2xx.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ibiki_core::Secret;
use ibiki_http::WebhookSecret;
use ibiki_postgres::testing::{SchemaGuard, check_reachable, database_url, unique_schema};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::sleep;

use crate::proxy::FaultProxy;
use crate::server_process::ServerProcess;

pub(crate) const TOKEN: &str = "faults-token";
pub(crate) const SECRET: &str = "faults-webhook-secret";
/// `--database-timeout` of the servers under test.
pub(crate) const DEADLINE: Duration = Duration::from_secs(2);
pub(crate) const CLIENT: &str = "acme";
pub(crate) const NUMBER: &str = "+14155550142";

/// A schema of its own on the `DATABASE_URL` server, reached through a
/// fault proxy; `None` to skip.
pub(crate) struct Database {
    pub(crate) proxy: FaultProxy,
    pub(crate) schema: String,
    url: String,
    _cleanup: SchemaGuard,
}

impl Database {
    pub(crate) async fn create() -> Option<Self> {
        let direct = database_url()?;
        check_reachable(&direct).await;
        let schema = unique_schema();
        let cleanup = SchemaGuard::new(&direct, &schema);
        let upstream = host_port(&direct);
        let proxy = FaultProxy::start(&upstream).await;
        let url = direct.replacen(&upstream, &proxy.addr().to_string(), 1);
        Some(Self {
            proxy,
            schema,
            url,
            _cleanup: cleanup,
        })
    }

    /// The URL through the proxy.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// A running `ibiki-server` on the database through the proxy.
pub(crate) struct Server {
    _process: ServerProcess,
    pub(crate) base: String,
}

impl Server {
    pub(crate) async fn start(database: &Database) -> Self {
        let timeout = format!("{}ms", DEADLINE.as_millis());
        let args = [
            "--database-url",
            database.url(),
            "--database-schema",
            &database.schema,
            "--database-timeout",
            &timeout,
        ];
        let env = [
            ("IBIKI_ADMIN_TOKEN", TOKEN),
            ("IBIKI_WEBHOOK_SECRET", SECRET),
        ];
        let process = ServerProcess::start(&args, &env).await;
        Self {
            base: process.base.clone(),
            _process: process,
        }
    }

    /// Gives [`NUMBER`] to [`CLIENT`].
    pub(crate) async fn assign(&self) {
        let response = http()
            .post(format!("{}/api/admin/update-phone-numbers", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({"userId": CLIENT, "phoneNumbers": NUMBER}))
            .send()
            .await
            .expect("assign");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// `GET /healthz`: its status and how long it took.
    pub(crate) async fn health(&self) -> (Option<StatusCode>, Duration) {
        let started = Instant::now();
        let answer = http().get(format!("{}/healthz", self.base)).send().await;
        (answer.ok().map(|r| r.status()), started.elapsed())
    }

    /// One signed reply to [`NUMBER`]: the answer's status and body, and how
    /// long it took.
    pub(crate) async fn post_reply(
        &self,
        message_id: &str,
    ) -> (Result<(StatusCode, Value), reqwest::Error>, Duration) {
        let body = json!({"messageId": message_id, "from": "+15005550006", "to": NUMBER,
            "body": message_id})
        .to_string();
        let secret = WebhookSecret::new(SECRET.parse::<Secret>().expect("a secret"));
        let signature = secret.sign(unix_now(), body.as_bytes());
        let started = Instant::now();
        let answer = async {
            let response = http()
                .post(format!("{}/webhooks/sms", self.base))
                .header("content-type", "application/json")
                .header("x-ibiki-signature", signature)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            Ok((status, response.json().await.unwrap_or(Value::Null)))
        }
        .await;
        (answer, started.elapsed())
    }

    /// [`CLIENT`]'s live inbox stream, open, its greeting read.
    pub(crate) async fn open_stream(&self) -> LiveStream {
        let response = http()
            .get(format!("{}/api/clients/{CLIENT}/events", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = LiveStream {
            response,
            seen: String::new(),
        };
        stream.until("ibiki inbox", Duration::from_secs(10)).await;
        stream
    }

    /// Message id → times it is in [`CLIENT`]'s inbox.
    pub(crate) async fn inbox_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}/api/clients/{CLIENT}/messages?limit=1000", self.base);
            if let Some(cursor) = &after {
                url.push_str(&format!("&after={cursor}"));
            }
            let page: Value = http()
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("inbox")
                .json()
                .await
                .expect("inbox JSON");
            for message in page["messages"].as_array().expect("messages") {
                let id = message["messageId"].as_str().expect("messageId").to_owned();
                *counts.entry(id).or_insert(0) += 1;
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return counts,
            }
        }
    }
}

/// An open `/events` stream, read as text.
pub(crate) struct LiveStream {
    response: reqwest::Response,
    seen: String,
}

impl LiveStream {
    /// Reads until the stream holds `needle`; panics after `within`.
    pub(crate) async fn until(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(other) => panic!("the stream ended before {needle}: {other:?}"),
                Err(_) => panic!("{needle} not in the stream within {within:?}"),
            }
        }
    }
}

/// A client that gives up on an answer long after any deadline of the
/// server's, so a hung request shows as slow, not as an error.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// What a provider-style sender did.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub(crate) ids: Vec<String>,
    pub(crate) failed_attempts: usize,
}

/// Posts `prefix-1`, `prefix-2`, … to `servers` in turn until `stop`, each
/// sent again (to the next server, after a pause) until answered 2xx, as a
/// provider retries; every answer must come within `answer_within`.
pub(crate) async fn provider(
    servers: Arc<Vec<Server>>,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    answer_within: Duration,
) -> Sent {
    let mut sent = Sent::default();
    let mut turn = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{prefix}-{}", sent.ids.len() + 1);
        let give_up = Instant::now() + Duration::from_secs(120);
        loop {
            turn += 1;
            let (answer, took) = servers[turn % servers.len()].post_reply(&id).await;
            assert!(took < answer_within, "{id} answered after {took:?}");
            match answer {
                Ok((status, body)) if status.is_success() => {
                    let outcome = body["status"].as_str().unwrap_or_default();
                    assert!(["routed", "duplicate"].contains(&outcome), "{id}: {body}");
                    break;
                }
                Ok((status, body)) => {
                    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{id}: {body}");
                }
                Err(error) => panic!("{id}: no answer: {error}"),
            }
            sent.failed_attempts += 1;
            assert!(Instant::now() < give_up, "{id} never accepted");
            sleep(Duration::from_millis(200)).await;
        }
        sent.ids.push(id);
        sleep(Duration::from_millis(20)).await;
    }
    sent
}

/// Each id exactly once in the inbox, and nothing else there.
pub(crate) fn assert_exactly_once(inbox: &BTreeMap<String, usize>, ids: &[String]) {
    let twice: Vec<_> = inbox.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let missing: Vec<_> = ids.iter().filter(|id| !inbox.contains_key(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
}
