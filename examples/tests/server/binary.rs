//! The `ibiki-server` binary itself: configuration from flags and the
//! environment, the printed token, start-up failures, SIGTERM, and (with
//! `DATABASE_URL`) PostgreSQL across a restart.
#![cfg(unix)]

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tokio::time::timeout;

use crate::harness::{assert_error, reply, send};

/// Every variable the server reads, so the tests' environment cannot leak in.
const SETTINGS: [&str; 9] = [
    "IBIKI_LISTEN",
    "IBIKI_METRICS_LISTEN",
    "DATABASE_URL",
    "IBIKI_DATABASE_SCHEMA",
    "IBIKI_DEFAULT_REGION",
    "IBIKI_BARE_DIGITS",
    "IBIKI_ADMIN_TOKEN",
    "IBIKI_WEBHOOK_SECRET",
    "RUST_LOG",
];

fn server_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ibiki-server"));
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running `ibiki-server` process.
struct Process {
    child: Child,
    stderr: Lines<BufReader<ChildStderr>>,
    base: String,
    http: reqwest::Client,
}

impl Process {
    /// Starts the binary on a free port and waits until it listens.
    async fn start(mut command: Command) -> Self {
        command.args(["--listen", "127.0.0.1:0"]);
        let mut child = command.spawn().expect("spawn ibiki-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut stderr = BufReader::new(stderr).lines();
        let address = timeout(Duration::from_secs(60), async {
            while let Some(line) = stderr.next_line().await.expect("read stderr") {
                if let Some((_, address)) = line.split_once("listening address=") {
                    return address.trim().to_owned();
                }
            }
            panic!("ibiki-server exited before listening");
        })
        .await
        .expect("listening within 60 s");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self {
            child,
            stderr,
            base: format!("http://{address}"),
            http,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// The first stdout line: the generated token.
    async fn printed_token(&mut self) -> String {
        let stdout = self.child.stdout.take().expect("piped stdout");
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .expect("read stdout")
            .expect("a line on stdout");
        let (label, token) = line.rsplit_once(": ").expect("label: token");
        assert!(label.starts_with("admin token (generated"), "{line}");
        token.to_owned()
    }

    /// Sends SIGTERM and returns the exit status and the rest of stderr.
    async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("running").to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(killed.expect("kill").success());
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stderr.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        let status = timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s")
            .expect("exit status");
        (status, rest)
    }
}

#[tokio::test]
async fn a_generated_token_is_printed_and_sigterm_stops_cleanly() {
    let mut server = Process::start(server_command()).await;
    let token = server.printed_token().await;
    assert_eq!(token.len(), 64, "{token}");

    let (status, body) = send(server.request(Method::GET, "/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let held = server.request(Method::GET, "/api/admin/held");
    assert_error(&send(held).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let held = server
        .request(Method::GET, "/api/admin/held")
        .bearer_auth(&token);
    assert_eq!(send(held).await.0, StatusCode::OK);

    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[tokio::test]
async fn settings_come_from_flags_or_the_environment() {
    let mut command = server_command();
    command
        .env("IBIKI_ADMIN_TOKEN", "from-env")
        .env("IBIKI_WEBHOOK_SECRET", "secret")
        .args(["--default-region", "gb"]);
    let server = Process::start(command).await;
    let assign = json!({"userId": "uk", "phoneNumbers": "020 7946 0958"});
    let request = server
        .request(Method::POST, "/api/admin/update-phone-numbers")
        .bearer_auth("from-env")
        .json(&assign);
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phoneNumbers"], json!(["+442079460958"]));
    let unsigned =
        server
            .request(Method::POST, "/webhooks/sms")
            .json(&reply("SM1", "+442079460958", "hi"));
    assert_error(
        &send(unsigned).await,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    );
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

/// `--metrics-listen` serves `/metrics` on an address of its own without the
/// token; the API port still wants it.
#[tokio::test]
async fn metrics_listen_serves_metrics_without_the_token() {
    let mut command = server_command();
    command
        .env("IBIKI_ADMIN_TOKEN", "metrics-token")
        .args(["--metrics-listen", "127.0.0.1:0"]);
    let mut server = Process::start(command).await;
    let address = timeout(Duration::from_secs(30), async {
        while let Some(line) = server.stderr.next_line().await.expect("read stderr") {
            if let Some((_, address)) = line.split_once("without the admin token address=") {
                return address.trim().to_owned();
            }
        }
        panic!("ibiki-server exited before serving /metrics");
    })
    .await
    .expect("serving /metrics within 30 s");
    let webhook =
        server
            .request(Method::POST, "/webhooks/sms")
            .json(&reply("SM1", "+14155550100", "held"));
    assert_eq!(send(webhook).await.1, json!({"status": "held"}));

    let scrape = server
        .http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("scraped");
    assert_eq!(scrape.status(), StatusCode::OK);
    let text = scrape.text().await.expect("text");
    assert!(text.contains("\nibiki_held_replies 1\n"), "{text}");
    assert!(
        text.contains(
            "ibiki_replies_received_total{route=\"sms\",outcome=\"held\",reason=\"unowned\"} 1\n"
        ),
        "{text}"
    );
    let unauthenticated = server.request(Method::GET, "/metrics");
    assert_error(
        &send(unauthenticated).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn bad_settings_stop_it_at_start() {
    for args in [
        vec!["--default-region", "XX"],
        vec!["--admin-token", ""],
        vec!["--listen", "nowhere"],
        vec!["--database-url", "postgres://127.0.0.1:1/none"],
        vec![
            "--database-url",
            "postgres://127.0.0.1:1/none",
            "--database-schema",
            "Bad-Name",
        ],
    ] {
        let mut command = server_command();
        command.args(&args);
        let output = timeout(Duration::from_secs(60), command.output())
            .await
            .expect("exits within 60 s")
            .expect("run ibiki-server");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("listening"), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?}: says why");
    }
}

/// The PostgreSQL mode of the real binary: a URL is all it takes, and what it
/// recorded is still there after a restart.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_mode_keeps_replies_across_a_restart() {
    let Some(database) = crate::database::TestDatabase::create().await else {
        return;
    };
    let start = || {
        let mut command = server_command();
        command
            .env("DATABASE_URL", database.url())
            .env("IBIKI_DATABASE_SCHEMA", database.schema())
            .env("IBIKI_ADMIN_TOKEN", "pg-token");
        Process::start(command)
    };
    let server = start().await;
    let assign = json!({"userId": "123", "phoneNumbers": "+14155550100"});
    let request = server
        .request(Method::POST, "/api/admin/update-phone-numbers")
        .bearer_auth("pg-token")
        .json(&assign);
    assert_eq!(send(request).await.0, StatusCode::OK);
    let webhook =
        server
            .request(Method::POST, "/webhooks/sms")
            .json(&reply("SM1", "+14155550100", "kept"));
    assert_eq!(
        send(webhook).await.1,
        json!({"status": "routed", "userId": "123"})
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");

    let server = start().await;
    let inbox = server
        .request(Method::GET, "/api/clients/123/messages")
        .bearer_auth("pg-token");
    let (status, body) = send(inbox).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"][0]["body"], "kept");
    let retry =
        server
            .request(Method::POST, "/webhooks/sms")
            .json(&reply("SM1", "+14155550100", "kept"));
    assert_eq!(send(retry).await.1, json!({"status": "duplicate"}));
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

/// Runs the binary with `args` until it exits: its stderr and how long it
/// took.
async fn failed_start(args: &[&str]) -> (String, Duration) {
    let mut command = server_command();
    command.args(args);
    let started = std::time::Instant::now();
    let output = timeout(Duration::from_secs(60), command.output())
        .await
        .expect("exits within 60 s")
        .expect("run ibiki-server");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains("listening"), "{args:?}: {stderr}");
    (stderr, started.elapsed())
}

#[tokio::test]
async fn start_up_mistakes_say_their_cause_and_fix() {
    let (stderr, _) = failed_start(&["--listen", "8080"]).await;
    assert!(stderr.contains("127.0.0.1:8080"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("its address").to_string();
    let (stderr, _) = failed_start(&["--listen", &address]).await;
    assert!(
        stderr.contains(&format!("cannot listen on {address}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");

    let (stderr, took) = failed_start(&["--database-url", "mysql://root@127.0.0.1:1/app"]).await;
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(stderr.contains("not mysql://"), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "refused before connecting: {took:?}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("its address").port();
    drop(closed);
    let url = format!("postgres://ibiki@127.0.0.1:{port}/app");
    let (stderr, took) = failed_start(&["--database-url", &url]).await;
    assert!(
        stderr.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn a_misspelled_query_parameter_is_named_by_the_binary() {
    let mut command = server_command();
    command.args(["--admin-token", "t0ken"]);
    let server = Process::start(command).await;
    let answer = send(
        server
            .request(Method::GET, "/api/clients/a/messages?limt=5")
            .bearer_auth("t0ken"),
    )
    .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_query");
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`limt`") && message.contains("`limit` or `after`"),
        "{message}"
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}

/// Digits without '+' in a reply's `to`, as several gateways send them: read
/// as international without a default region, as national with
/// `--bare-digits national`, where a `to` that cannot be read is held with one
/// warning naming the reason (never the number) and counted by reason.
#[tokio::test]
async fn bare_digits_follow_the_flag_and_unreadable_ones_are_held_with_a_reason() {
    let assign = json!({"userId": "acme", "phoneNumbers": "+14155550101"});
    let bare =
        json!({"messageId": "SM1", "from": "+15005550006", "to": "14155550101", "body": "hi"});

    let mut command = server_command();
    command.env("IBIKI_ADMIN_TOKEN", "t");
    let server = Process::start(command).await;
    let request = server.request(Method::POST, "/api/admin/update-phone-numbers");
    assert_eq!(
        send(request.bearer_auth("t").json(&assign)).await.0,
        StatusCode::OK
    );
    let routed = send(server.request(Method::POST, "/webhooks/sms").json(&bare)).await;
    assert_eq!(
        routed,
        (
            StatusCode::OK,
            json!({"status": "routed", "userId": "acme"})
        )
    );
    server.terminate().await;

    let mut command = server_command();
    command
        .env("IBIKI_ADMIN_TOKEN", "t")
        .env("IBIKI_BARE_DIGITS", "national");
    let server = Process::start(command).await;
    let request = server.request(Method::POST, "/api/admin/update-phone-numbers");
    assert_eq!(
        send(request.bearer_auth("t").json(&assign)).await.0,
        StatusCode::OK
    );
    let held = send(server.request(Method::POST, "/webhooks/sms").json(&bare)).await;
    assert_eq!(held, (StatusCode::OK, json!({"status": "held"})));
    let scrape = server.request(Method::GET, "/metrics").bearer_auth("t");
    let text = scrape
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text");
    let series = "ibiki_replies_received_total{route=\"sms\",outcome=\"held\",\
                  reason=\"unreadable_destination\"} 1\n";
    assert!(text.contains(series), "{text}");
    let (status, stderr) = server.terminate().await;
    assert!(status.success());
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("reply held: its destination is not a readable number"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("no country code"),
        "the reason: {}",
        warnings[0]
    );
    assert!(
        !warnings[0].contains("4155550101"),
        "never the number: {}",
        warnings[0]
    );
}

/// The header and signature Kestrel (the fixture gateway) sends with
/// `body`, from its configuration's own signer.
fn kestrel_signature(body: &[u8]) -> (String, String) {
    let path = ibiki_providers::testing::fixture_path("generic/kestrel.json");
    let text = std::fs::read_to_string(path).expect("the gateway's file");
    let config = ibiki_providers::generic::GenericConfig::from_json(&text).expect("valid");
    config.auth.sign(body).expect("an HMAC gateway")
}

/// Several configured gateways: each file's `name` is served at
/// `/webhooks/{name}`, a file without one at `/webhooks/generic`; a name
/// that is taken is refused at start.
#[tokio::test]
async fn several_gateways_are_served_by_name_and_names_stay_unique() {
    let dir = std::env::temp_dir().join(format!("ibiki-gateways-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let original = ibiki_providers::testing::fixture_path("generic/kestrel.toml");
    let text = std::fs::read_to_string(&original).expect("fixture");
    let named = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, format!("name = \"{name}\"\n{text}")).expect("written");
        path.display().to_string()
    };
    let kestrel = named("kestrel");
    let unnamed = original.display().to_string();

    let mut command = server_command();
    command.env("IBIKI_ADMIN_TOKEN", "t").args([
        "--generic-config",
        &kestrel,
        "--generic-config",
        &unnamed,
    ]);
    let server = Process::start(command).await;
    let body = ibiki_providers::testing::fixture("generic/kestrel-inbound.json");
    let (header, signature) = kestrel_signature(&body);
    for path in ["/webhooks/kestrel", "/webhooks/generic"] {
        let signed = server
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .header(&header, &signature)
            .body(body.clone());
        let response = signed.send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let unsigned = server
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.clone());
        let response = unsigned.send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let held = server
        .request(Method::GET, "/api/admin/held")
        .bearer_auth("t");
    let (status, held) = send(held).await;
    assert_eq!(status, StatusCode::OK);
    let messages = held["messages"].as_array().map(Vec::len);
    assert_eq!(
        messages,
        Some(1),
        "the reply once, by its message id: {held}"
    );
    let scrape = server.request(Method::GET, "/metrics").bearer_auth("t");
    let text = scrape
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text");
    assert!(text.contains("route=\"kestrel\""), "{text}");
    server.terminate().await;

    let twilio = named("twilio");
    let (stderr, _) = failed_start(&["--generic-config", &twilio]).await;
    assert!(
        stderr.contains("/webhooks/twilio is already served"),
        "{stderr}"
    );
    let (stderr, _) =
        failed_start(&["--generic-config", &unnamed, "--generic-config", &unnamed]).await;
    assert!(
        stderr.contains("/webhooks/generic is already served"),
        "{stderr}"
    );
    let bad = named("Kestrel!");
    let (stderr, _) = failed_start(&["--generic-config", &bad]).await;
    assert!(
        stderr.contains("lowercase letters, digits and '-'"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instants: a gateway's own time is the reply's `receivedAt`, and
/// `delivery.at` is when the store routed it, so the owner at `delivery.at`
/// is the client that received it (at the gateway's time, nobody owned the
/// number yet).
#[tokio::test]
async fn delivery_at_is_the_stores_instant_and_names_the_owner() {
    let config = ibiki_providers::testing::fixture_path("generic/kestrel.toml");
    let mut command = server_command();
    command
        .env("IBIKI_ADMIN_TOKEN", "t")
        .args(["--generic-config", &config.display().to_string()]);
    let server = Process::start(command).await;
    let assign = json!({"userId": "789", "phoneNumbers": "+44 7400 123456"});
    let request = server.request(Method::POST, "/api/admin/update-phone-numbers");
    assert_eq!(
        send(request.bearer_auth("t").json(&assign)).await.0,
        StatusCode::OK
    );
    let body = ibiki_providers::testing::fixture("generic/kestrel-inbound.json");
    let (header, signature) = kestrel_signature(&body);
    let posted = server
        .request(Method::POST, "/webhooks/generic")
        .header("content-type", "application/json")
        .header(header, signature)
        .body(body);
    assert_eq!(posted.send().await.expect("sent").status(), StatusCode::OK);

    let inbox = server
        .request(Method::GET, "/api/clients/789/messages")
        .bearer_auth("t");
    let (_, inbox) = send(inbox).await;
    let message = &inbox["messages"][0];
    assert_eq!(
        message["receivedAt"], "2026-11-20T14:03:11Z",
        "the gateway's time"
    );
    let delivered = message["delivery"]["at"]
        .as_str()
        .expect("an instant")
        .to_owned();
    assert!(
        delivered.as_str() > "2026-11-21",
        "the store's instant: {message}"
    );
    let at = |instant: &str| {
        let path = format!("/api/admin/routes/%2B447400123456?at={instant}");
        server.request(Method::GET, &path).bearer_auth("t")
    };
    let (status, owner) = send(at(&delivered)).await;
    assert_eq!(status, StatusCode::OK, "{owner}");
    assert_eq!(
        owner["userId"], "789",
        "the owner at delivery.at received it"
    );
    let (_, before) = send(at("2026-11-20T14:03:11Z")).await;
    assert_eq!(before["userId"], serde_json::Value::Null, "{before}");
    server.terminate().await;
}
