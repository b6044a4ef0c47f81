//! Starts the real application on 127.0.0.1:0 and talks HTTP to it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hmac::{Hmac, Mac};
use ibiki_core::{DynReplyStore, Normalizer};
use ibiki_examples::{Config, serve};
use ibiki_http::{AdminToken, App, WebhookSecret};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test server uses.
pub(crate) const TOKEN: &str = "test-admin-token";

/// The webhook secret of signed test servers.
pub(crate) const SECRET: &str = "test-webhook-secret";

/// A running server and a client for it.
pub(crate) struct TestServer {
    base: String,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

/// How to configure a test server.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) signed: bool,
    pub(crate) region: Option<&'static str>,
    /// The server's provider flags (`--twilio-auth-token`, `--public-url`,
    /// `--require-signatures`...), read as the binary reads them.
    pub(crate) provider_flags: Vec<String>,
}

impl TestServer {
    /// Unsigned webhooks, no default region.
    pub(crate) async fn start(store: Arc<DynReplyStore>) -> Self {
        Self::start_with(store, Options::default()).await
    }

    /// Webhooks must be signed with [`SECRET`].
    pub(crate) async fn start_signed(store: Arc<DynReplyStore>) -> Self {
        let options = Options {
            signed: true,
            ..Options::default()
        };
        Self::start_with(store, options).await
    }

    pub(crate) async fn start_with(store: Arc<DynReplyStore>, options: Options) -> Self {
        let token = AdminToken::new(TOKEN.parse().expect("non-empty token"));
        let mut normalizer = Normalizer::new();
        if let Some(region) = options.region {
            normalizer = normalizer.with_default_region(region.parse().expect("known region"));
        }
        let mut app = App::new(store, token).with_normalizer(normalizer);
        let args = std::iter::once("ibiki-server".to_owned()).chain(options.provider_flags);
        let config = Config::try_parse_from(args).expect("valid provider flags");
        if options.signed {
            app = app.with_webhook_secret(WebhookSecret::new(SECRET.parse().expect("secret")));
        } else if config.providers.require_signatures {
            app = app.refuse_unsigned_webhooks();
        }
        app = config.providers.apply(app).expect("valid providers");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stop) = oneshot::channel::<()>();
        // A dropped sender stops the server too; the live streams end first.
        let (closed, closing) = tokio::sync::watch::channel(());
        let stopped = async move {
            let _ = stop.await;
            drop(closed);
        };
        let mut streams_closing = closing.clone();
        let app = app.with_shutdown(async move {
            let _ = streams_closing.changed().await;
        });
        let mut server_closing = closing;
        let server_stopped = async move {
            let _ = server_closing.changed().await;
        };
        tokio::spawn(stopped);
        let task = tokio::spawn(serve(listener, app.router(), server_stopped));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Self {
            base: format!("http://{address}"),
            http,
            shutdown: Some(shutdown),
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without credentials.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A GET with the admin token.
    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.request(reqwest::Method::GET, path).bearer_auth(TOKEN)
    }

    /// A JSON POST with the admin token.
    pub(crate) fn post_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(reqwest::Method::POST, path)
            .bearer_auth(TOKEN)
            .json(body)
    }

    /// `POST /api/admin/update-phone-numbers`.
    pub(crate) async fn assign(&self, user_id: &str, phone_numbers: Value) -> (StatusCode, Value) {
        let body = json!({"userId": user_id, "phoneNumbers": phone_numbers});
        send(self.post_json("/api/admin/update-phone-numbers", &body)).await
    }

    /// Assigns and expects success.
    pub(crate) async fn assign_ok(&self, user_id: &str, phone_numbers: Value) -> Value {
        let (status, body) = self.assign(user_id, phone_numbers).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The client's numbers, as the API lists them.
    pub(crate) async fn numbers_of(&self, user_id: &str) -> Value {
        let (status, body) =
            send(self.get(&format!("/api/admin/clients/{user_id}/phone-numbers"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["phoneNumbers"].clone()
    }

    /// A JSON webhook, unsigned.
    pub(crate) async fn webhook(&self, payload: &Value) -> (StatusCode, Value) {
        send(self.webhook_raw("application/json", payload.to_string())).await
    }

    /// A webhook with any content type and body, unsigned.
    pub(crate) fn webhook_raw(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> RequestBuilder {
        self.request(reqwest::Method::POST, "/webhooks/sms")
            .header("content-type", content_type)
            .body(body)
    }

    /// A webhook signed with [`SECRET`] at `timestamp`.
    pub(crate) fn webhook_signed(
        &self,
        content_type: &str,
        body: &str,
        timestamp: u64,
    ) -> RequestBuilder {
        self.webhook_raw(content_type, body.to_owned())
            .header("x-ibiki-signature", signature(SECRET, timestamp, body))
    }

    /// Every message of a listing (`/api/clients/{id}/messages` or
    /// `/api/admin/held`), following the cursors with pages of `limit`.
    pub(crate) async fn all_pages(&self, path: &str, limit: usize) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let query = match &after {
                Some(cursor) => format!("?limit={limit}&after={cursor}"),
                None => format!("?limit={limit}"),
            };
            let (status, body) = send(self.get(&format!("{path}{query}"))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let messages = body["messages"].as_array().expect("messages").clone();
            if messages.is_empty() {
                assert_eq!(
                    body["next"],
                    Value::Null,
                    "an empty page has no next cursor"
                );
                return all;
            }
            after = Some(
                body["next"]
                    .as_str()
                    .expect("a cursor after a full page")
                    .to_owned(),
            );
            all.extend(messages);
        }
    }

    /// A client's whole inbox.
    pub(crate) async fn inbox(&self, user_id: &str) -> Vec<Value> {
        self.all_pages(&format!("/api/clients/{user_id}/messages"), 1000)
            .await
    }

    /// Every held reply.
    pub(crate) async fn held(&self) -> Vec<Value> {
        self.all_pages("/api/admin/held", 1000).await
    }

    /// Stops accepting connections and waits for the requests in flight.
    pub(crate) async fn shutdown(mut self) -> io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task).await.expect("server task")
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }

    pub(crate) fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Sends and reads the JSON answer; every answer of this server is JSON.
pub(crate) async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body read");
    assert_eq!(
        content_type, "application/json",
        "status {status}, body {text:?}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, body)
}

/// Asserts an error answer: its status, its code, and a message.
#[track_caller]
pub(crate) fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error has a message: {body}"
    );
}

/// The header a provider sends: HMAC-SHA256 of `<t>.<body>`, computed here
/// independently of the server's code.
pub(crate) fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A reply as a provider posts it in JSON.
pub(crate) fn reply(message_id: &str, to: &str, body: &str) -> Value {
    json!({"messageId": message_id, "from": "+15005550006", "to": to, "body": body})
}

/// A fresh in-memory store.
pub(crate) fn memory_store() -> Arc<DynReplyStore> {
    Arc::new(ibiki_memory::MemoryStore::new())
}
