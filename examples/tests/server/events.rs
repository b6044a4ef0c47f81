//! `GET /api/admin/clients` and the live inbox,
//! `GET /api/clients/{userId}/events` (Server-Sent Events).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ibiki_core::DynReplyStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TOKEN, TestServer, assert_error, reply, send};

store_tests!(
    clients_are_listed_by_id_in_pages,
    a_reply_appears_in_the_open_stream_within_a_second,
    a_released_reply_appears_in_the_stream,
    resuming_neither_skips_nor_repeats,
    stream_requests_are_checked,
    shutdown_ends_the_open_streams,
);

/// The bound: a reply shows up within one second of being recorded.
const LIVE_WITHIN: Duration = Duration::from_secs(1);

async fn clients_are_listed_by_id_in_pages(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let (status, empty) = send(server.get("/api/admin/clients")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!({"clients": [], "next": null}));

    // Assigned out of order; "b" gets two numbers given unsorted.
    server.assign_ok("c", json!("+14155550103")).await;
    server
        .assign_ok("b", json!("+14155550102, +14155550101"))
        .await;
    server.assign_ok("a", json!("+14155550100")).await;
    server.assign_ok("e", json!("+14155550105")).await;
    server.assign_ok("d", json!("+14155550104")).await;
    // A client whose numbers were all taken away is not listed.
    server.assign_ok("d", json!([])).await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &after {
            Some(cursor) => format!("?limit=2&after={cursor}"),
            None => "?limit=2".to_owned(),
        };
        let (status, page) = send(server.get(&format!("/api/admin/clients{query}"))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let clients = page["clients"].as_array().expect("clients").clone();
        assert!(clients.len() <= 2, "{page}");
        if clients.is_empty() {
            assert_eq!(page["next"], Value::Null);
            break;
        }
        pages += 1;
        after = Some(page["next"].as_str().expect("a cursor").to_owned());
        seen.extend(clients);
    }
    assert_eq!(pages, 2);
    assert_eq!(
        seen,
        [
            json!({"userId": "a", "phoneNumbers": ["+14155550100"]}),
            json!({"userId": "b", "phoneNumbers": ["+14155550101", "+14155550102"]}),
            json!({"userId": "c", "phoneNumbers": ["+14155550103"]}),
            json!({"userId": "e", "phoneNumbers": ["+14155550105"]}),
        ]
    );

    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?after="] {
        let answer = send(server.get(&format!("/api/admin/clients{bad}"))).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{bad}: {}", answer.1);
    }
    let unauthorized = send(server.request(reqwest::Method::GET, "/api/admin/clients")).await;
    assert_error(&unauthorized, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn a_reply_appears_in_the_open_stream_within_a_second(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    server
        .webhook(&reply("SM0", "+14155550100", "before"))
        .await;
    let mut stream = EventStream::open(&server, "123", None, None).await;
    // Without a cursor the stream starts at the inbox's first reply.
    let first = stream.next_reply().await;
    assert_eq!(first.data["body"], "before");
    assert_eq!(first.data["messageId"], "SM0");

    let payload = reply("SM1", "+14155550100", "<b>live</b>");
    let (status, _) = server.webhook(&payload).await;
    assert_eq!(status, StatusCode::OK);
    let recorded = Instant::now();
    let live = stream.next_reply().await;
    assert!(
        recorded.elapsed() < LIVE_WITHIN,
        "took {:?}",
        recorded.elapsed()
    );
    assert_eq!(live.data["body"], "<b>live</b>");
    assert_eq!(live.data["from"], "+15005550006");
    assert_eq!(live.data["to"], "+14155550100");
    // Its id is the inbox cursor after it: /messages continues from there.
    let (_, after) =
        send(server.get(&format!("/api/clients/123/messages?after={}", live.id))).await;
    assert_eq!(after, json!({"messages": [], "next": null}));
    // Another client's reply is not in this stream.
    server.assign_ok("456", json!("+14155550199")).await;
    server.webhook(&reply("SM2", "+14155550199", "other")).await;
    server.webhook(&reply("SM3", "+14155550100", "mine")).await;
    assert_eq!(stream.next_reply().await.data["body"], "mine");
}

async fn a_released_reply_appears_in_the_stream(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    // Held: nobody owns the number yet.
    server
        .webhook(&reply("SM0", "+14155550100", "held first"))
        .await;
    let mut stream = EventStream::open(&server, "123", None, None).await;
    stream.expect_quiet(Duration::from_millis(600)).await;
    let released = server.assign_ok("123", json!("+14155550100")).await;
    assert_eq!(released["released"], 1);
    let assigned = Instant::now();
    let event = stream.next_reply().await;
    assert!(assigned.elapsed() < LIVE_WITHIN, "{:?}", assigned.elapsed());
    assert_eq!(event.data["body"], "held first");
}

async fn resuming_neither_skips_nor_repeats(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    for i in 0..3 {
        server
            .webhook(&reply(&format!("SM{i}"), "+14155550100", &i.to_string()))
            .await;
    }
    let mut stream = EventStream::open(&server, "123", None, None).await;
    let mut ids = Vec::new();
    for expected in ["0", "1"] {
        let event = stream.next_reply().await;
        assert_eq!(event.data["body"], expected);
        ids.push(event.id);
    }
    drop(stream);
    for i in 3..5 {
        server
            .webhook(&reply(&format!("SM{i}"), "+14155550100", &i.to_string()))
            .await;
    }
    // As a reconnecting EventSource does: the original URL (here with an
    // older `after`) and the last id seen, which wins.
    let mut resumed = EventStream::open(&server, "123", Some(&ids[0]), Some(&ids[1])).await;
    let bodies = resumed.bodies(3).await;
    assert_eq!(bodies, ["2", "3", "4"]);
    resumed.expect_quiet(Duration::from_millis(600)).await;

    // The ids are the inbox's cursors: `?after=` resumes the same way.
    let mut from_after = EventStream::open(&server, "123", Some(&ids[0]), None).await;
    assert_eq!(from_after.bodies(4).await, ["1", "2", "3", "4"]);
    // Every id continues right after its own reply.
    let mut from_start = EventStream::open(&server, "123", None, None).await;
    let mut previous: Option<String> = None;
    for expected in 0..5 {
        let event = from_start.next_reply().await;
        assert_eq!(event.data["body"], expected.to_string());
        let query = match &previous {
            Some(cursor) => format!("?limit=1&after={cursor}"),
            None => "?limit=1".to_owned(),
        };
        let (_, page) = send(server.get(&format!("/api/clients/123/messages{query}"))).await;
        assert_eq!(page["next"], event.id.as_str());
        previous = Some(event.id);
    }
}

async fn stream_requests_are_checked(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let unauthorized = server
        .request(reqwest::Method::GET, "/api/clients/123/events")
        .send()
        .await
        .expect("request");
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    for (path, header, code) in [
        ("/api/clients/123/events?after=", None, "invalid_cursor"),
        ("/api/clients/123/events?after=nope", None, "invalid_cursor"),
        (
            "/api/clients/123/events",
            Some("not-a-cursor"),
            "invalid_cursor",
        ),
        (
            "/api/clients/123/events?after=1&after=2",
            None,
            "invalid_query",
        ),
        ("/api/clients/%07/events", None, "invalid_user_id"),
    ] {
        let mut request = server.get(path);
        if let Some(id) = header {
            request = request.header("last-event-id", id);
        }
        let answer = send(request).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
}

async fn shutdown_ends_the_open_streams(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let mut stream = EventStream::open(&server, "123", None, None).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the server waits for the stream"
    );
    assert!(stream.ended().await, "the stream ends with the server");
}

/// Two servers on one PostgreSQL schema, as two processes would be: a reply
/// one of them records appears in the other's open stream.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_reply_appears_in_the_stream() {
    let Some(database) = crate::database::TestDatabase::create().await else {
        return;
    };
    let streaming = TestServer::start(database.open_store().await).await;
    let receiving = TestServer::start(database.open_store().await).await;
    streaming.assign_ok("123", json!("+14155550100")).await;
    let mut stream = EventStream::open(&streaming, "123", None, None).await;
    stream.expect_quiet(Duration::from_millis(300)).await;
    let (status, _) = receiving
        .webhook(&reply("SM1", "+14155550100", "from elsewhere"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let recorded = Instant::now();
    let event = stream.next_reply().await;
    assert!(recorded.elapsed() < LIVE_WITHIN, "{:?}", recorded.elapsed());
    assert_eq!(event.data["body"], "from elsewhere");
}

/// One event of the stream.
#[derive(Debug)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

/// An open `/events` response, read and parsed by hand (the format is
/// simple enough that the test checks it too).
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens the stream, with `?after=` and `Last-Event-ID` when given.
    async fn open(
        server: &TestServer,
        user_id: &str,
        after: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Self {
        let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let mut request = server
            .request(
                reqwest::Method::GET,
                &format!("/api/clients/{user_id}/events{query}"),
            )
            .bearer_auth(TOKEN)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Self::from(request.send().await.expect("stream opened"))
    }

    fn from(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().expect("ascii");
        assert_eq!(content_type, "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next complete event block, or `None` when the stream ended.
    async fn next_block(&mut self, within: Duration) -> Result<Option<String>, ()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return Ok(Some(block));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(chunk))) => {
                    self.buffer
                        .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => panic!("stream failed: {e}"),
            }
        }
    }

    /// The next event with data, skipping comments; within 2 s.
    async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            let block = self.next_block(within).await.ok()??;
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => id = value.to_owned(),
                    "event" => event = value.to_owned(),
                    "data" => data.push_str(value),
                    _ => {}
                }
            }
            if !data.is_empty() {
                let data = serde_json::from_str(&data).expect("JSON data");
                return Some(SseEvent { id, event, data });
            }
        }
    }

    async fn next_reply(&mut self) -> SseEvent {
        let event = self
            .next_event(Duration::from_secs(2))
            .await
            .expect("an event within 2 s");
        assert_eq!(event.event, "reply");
        assert!(!event.id.is_empty(), "every reply event has an id");
        event
    }

    async fn bodies(&mut self, count: usize) -> Vec<String> {
        let mut bodies = Vec::new();
        for _ in 0..count {
            let event = self.next_reply().await;
            bodies.push(event.data["body"].as_str().expect("body").to_owned());
        }
        bodies
    }

    /// No event for `duration`.
    async fn expect_quiet(&mut self, duration: Duration) {
        if let Some(event) = self.next_event(duration).await {
            panic!("unexpected event: {event:?}");
        }
    }

    /// Whether the server ended the stream (within 5 s).
    async fn ended(&mut self) -> bool {
        loop {
            match self.next_block(Duration::from_secs(5)).await {
                Ok(None) => return true,
                Ok(Some(_)) => {}
                Err(()) => return false,
            }
        }
    }
}

/// The dashboard's pages and files: served without a token (they hold no
/// data), each with the strict policy headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_strict_headers() {
    let server = TestServer::start(crate::harness::memory_store()).await;
    for (path, content_type, contains) in [
        ("/", "text/html; charset=utf-8", "Admin token"),
        ("/held", "text/html; charset=utf-8", "Held replies"),
        (
            "/inbox/some%20client",
            "text/html; charset=utf-8",
            "inbox.js",
        ),
        (
            "/assets/app.css",
            "text/css; charset=utf-8",
            "prefers-color-scheme",
        ),
        (
            "/assets/api.js",
            "text/javascript; charset=utf-8",
            "textContent",
        ),
        (
            "/assets/clients.js",
            "text/javascript; charset=utf-8",
            "update-phone-numbers",
        ),
        (
            "/assets/held.js",
            "text/javascript; charset=utf-8",
            "/api/admin/held",
        ),
        (
            "/assets/inbox.js",
            "text/javascript; charset=utf-8",
            "Last-Event-ID",
        ),
        (
            "/clients/some%20client/deliveries",
            "text/html; charset=utf-8",
            "deliveries.js",
        ),
        (
            "/assets/deliveries.js",
            "text/javascript; charset=utf-8",
            "/api/admin/deliveries/",
        ),
        ("/assets/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = server
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(
            header("content-security-policy"),
            ibiki_http::CONTENT_SECURITY_POLICY_VALUE,
            "{path}"
        );
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let body = response.text().await.expect("body");
        assert!(body.contains(contains), "{path}");
    }
    // Unknown pages and files are the API's JSON 404.
    for path in [
        "/assets/nope.js",
        "/inbox",
        "/inbox/a/b",
        "/clients/a",
        "/clients/a/b/deliveries",
    ] {
        let answer = send(server.request(reqwest::Method::GET, path)).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }
}
