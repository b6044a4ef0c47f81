//! `ibiki-server` processes on either store, and the HTTP calls the tests
//! make to them: numbers, endpoints, replies as a provider posts them, the
//! inbox, the deliveries and the metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::server_process::ServerProcess;

pub(crate) const TOKEN: &str = "forwarding-token";

/// Where the servers keep their state.
pub(crate) enum Store {
    /// Each server's own memory.
    Memory,
    /// A schema of its own on the `DATABASE_URL` server, dropped afterwards.
    #[cfg(feature = "postgres")]
    Postgres(Database),
}

#[cfg(feature = "postgres")]
pub(crate) struct Database {
    url: String,
    schema: String,
    _guard: ibiki_postgres::testing::SchemaGuard,
}

impl Store {
    /// A fresh schema; `None` to skip (no `DATABASE_URL`, and not in CI).
    #[cfg(feature = "postgres")]
    pub(crate) async fn postgres() -> Option<Self> {
        use ibiki_postgres::testing::{SchemaGuard, check_reachable, database_url, unique_schema};
        let url = database_url()?;
        check_reachable(&url).await;
        let schema = unique_schema();
        let guard = SchemaGuard::new(&url, &schema);
        Some(Self::Postgres(Database {
            url,
            schema,
            _guard: guard,
        }))
    }

    fn args(&self) -> Vec<String> {
        match self {
            Self::Memory => Vec::new(),
            #[cfg(feature = "postgres")]
            Self::Postgres(database) => vec![
                "--database-url".to_owned(),
                database.url.clone(),
                "--database-schema".to_owned(),
                database.schema.clone(),
            ],
        }
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A running `ibiki-server` (killed when dropped) and a client for it.
pub(crate) struct Server {
    process: ServerProcess,
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Server {
    /// The binary on `store`, allowing endpoints on this machine, with
    /// `flags` (the forwarding flags a test needs).
    pub(crate) async fn start(store: &Store, flags: &[&str]) -> Self {
        let store_args = store.args();
        let mut args: Vec<&str> = store_args.iter().map(String::as_str).collect();
        args.push("--allow-private-endpoints");
        args.extend_from_slice(flags);
        let process = ServerProcess::start(&args, &[("IBIKI_ADMIN_TOKEN", TOKEN)]).await;
        Self {
            base: process.base.clone(),
            process,
            http: http(),
        }
    }

    /// SIGKILL.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) async fn kill(self) {
        self.process.kill().await;
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(body)
    }

    /// Gives `number` to `user`.
    pub(crate) async fn assign(&self, user: &str, number: &str) {
        let body = json!({"userId": user, "phoneNumbers": number});
        let (status, answer) = send(self.send_json(
            reqwest::Method::POST,
            "/api/admin/update-phone-numbers",
            &body,
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    /// Creates `user`'s endpoint at `url`; its secret.
    pub(crate) async fn create_endpoint(&self, user: &str, url: &str) -> String {
        let (status, answer) = send(self.send_json(
            reqwest::Method::PUT,
            &format!("/api/admin/clients/{user}/endpoint"),
            &json!({"url": url}),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["url"], url, "{answer}");
        let secret = answer["secret"]
            .as_str()
            .unwrap_or_else(|| panic!("a new endpoint's secret: {answer}"));
        assert!(secret.starts_with("whsec_"), "{answer}");
        secret.to_owned()
    }

    /// A client with `number` and an endpoint at `url`; its secret.
    pub(crate) async fn client(&self, user: &str, number: &str, url: &str) -> String {
        self.assign(user, number).await;
        self.create_endpoint(user, url).await
    }

    /// `GET /api/admin/clients/{user}/endpoint`.
    pub(crate) async fn endpoint(&self, user: &str) -> Value {
        let (status, answer) = send(self.get(&format!("/api/admin/clients/{user}/endpoint"))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// One reply to `to`, posted as a provider does; expects it routed.
    pub(crate) async fn reply(&self, message_id: &str, to: &str) {
        let payload =
            json!({"messageId": message_id, "from": "+15005550006", "to": to, "body": message_id});
        let (status, answer) = send(
            self.http
                .post(format!("{}/webhooks/sms", self.base))
                .json(&payload),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], "routed", "{answer}");
    }

    /// `GET /api/admin/clients/{user}/deliveries`, every page.
    pub(crate) async fn deliveries(&self, user: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/api/admin/clients/{user}/deliveries?limit=1000{after}");
            let (status, page) = send(self.get(&path)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let deliveries = page["deliveries"].as_array().expect("deliveries");
            all.extend(deliveries.iter().cloned());
            match page["next"].as_str() {
                Some(next) if !deliveries.is_empty() => after = format!("&after={next}"),
                _ => return all,
            }
        }
    }

    /// `POST /api/admin/deliveries/{id}/retry`.
    pub(crate) async fn retry(&self, id: u64) -> (StatusCode, Value) {
        send(
            self.http
                .post(format!("{}/api/admin/deliveries/{id}/retry", self.base))
                .bearer_auth(TOKEN),
        )
        .await
    }

    /// `user`'s whole inbox.
    pub(crate) async fn inbox(&self, user: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/api/clients/{user}/messages?limit=1000{after}");
            let (status, page) = send(self.get(&path)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let messages = page["messages"].as_array().expect("messages");
            if messages.is_empty() {
                return all;
            }
            all.extend(messages.iter().cloned());
            after = format!("&after={}", page["next"].as_str().expect("a cursor"));
        }
    }

    /// A scrape of `/metrics`.
    pub(crate) async fn metrics(&self) -> Metrics {
        let response = self.get("/metrics").send().await.expect("scraped");
        assert_eq!(response.status(), StatusCode::OK);
        Metrics::parse(&response.text().await.expect("metrics text"))
    }

    /// Scrapes until `ready` holds: a worker counts an attempt just after
    /// recording it, so a count may trail the store by a moment.
    pub(crate) async fn metrics_when(
        &self,
        what: &str,
        ready: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        until(what, Duration::from_secs(10), || async {
            let metrics = self.metrics().await;
            if ready(&metrics) {
                Ok(metrics)
            } else {
                Err(format!("{:?}", metrics.0))
            }
        })
        .await
    }
}

/// Posts `n` replies to `to`, `message_id(i)` each, eight at a time,
/// spread over `servers` in turn.
pub(crate) async fn burst(
    servers: &[&Server],
    to: &str,
    n: usize,
    message_id: impl Fn(usize) -> String,
) {
    let targets: Arc<Vec<(String, reqwest::Client)>> = Arc::new(
        servers
            .iter()
            .map(|s| (s.base.clone(), s.http.clone()))
            .collect(),
    );
    let ids: Arc<Vec<String>> = Arc::new((0..n).map(message_id).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = JoinSet::new();
    for _ in 0..8 {
        let (targets, ids, next, to) = (targets.clone(), ids.clone(), next.clone(), to.to_owned());
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { return };
                let (base, http) = &targets[i % targets.len()];
                let payload =
                    json!({"messageId": id, "from": "+15005550006", "to": to, "body": id});
                let (status, answer) =
                    send(http.post(format!("{base}/webhooks/sms")).json(&payload)).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                assert_eq!(answer["status"], "routed", "{answer}");
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.expect("a sender");
    }
}

/// Sends and reads the JSON answer.
pub(crate) async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}, {e}: {text:?}"));
    (status, body)
}

/// Polls `check` until it gives a value, or panics after `limit` with the
/// last thing it said.
pub(crate) async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The samples of a Prometheus text exposition, by series
/// (`name{labels}` as written).
pub(crate) struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
                let value = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
                (series.to_owned(), value)
            })
            .collect();
        Self(samples)
    }

    /// The value of `series` (`name` or `name{label="value"}`).
    #[track_caller]
    pub(crate) fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in the metrics: {:?}", self.0.keys()))
    }

    pub(crate) fn delivered(&self) -> f64 {
        self.get(r#"ibiki_deliveries_total{outcome="delivered"}"#)
    }

    pub(crate) fn attempt_failed(&self) -> f64 {
        self.get(r#"ibiki_deliveries_total{outcome="attempt_failed"}"#)
    }

    pub(crate) fn exhausted(&self) -> f64 {
        self.get(r#"ibiki_deliveries_total{outcome="exhausted"}"#)
    }

    pub(crate) fn lag_count(&self) -> f64 {
        self.get("ibiki_delivery_lag_seconds_count")
    }

    pub(crate) fn pending(&self) -> f64 {
        self.get("ibiki_deliveries_pending")
    }
}
