//! The server binary when the network to PostgreSQL fails: a black hole (no
//! byte passes, nothing is reset), a silent failover (open connections hang
//! forever, new ones work) and a reset. Every answer comes within
//! `--database-timeout` + 1 s, the servers recover without a restart, and a
//! provider that retries until 2xx loses nothing and records nothing twice.
//! And a live stream whose server's listening connection went silent hears
//! again once the listener has checked it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::time::sleep;

use crate::process::{DEADLINE, Database, Sent, Server, assert_exactly_once, provider};

/// What "within the deadline + 1 s" allows.
const ANSWER_WITHIN: Duration = DEADLINE.saturating_add(Duration::from_secs(1));
const HOLE: Duration = Duration::from_secs(30);
/// How soon after a silent failover signed webhooks must route again.
const RECOVERY: Duration = Duration::from_secs(15);

/// Servers on `database` with the number assigned, and a provider sending
/// to them until told to stop.
struct Scenario {
    servers: Arc<Vec<Server>>,
    stop: Arc<AtomicBool>,
    sender: tokio::task::JoinHandle<Sent>,
}

impl Scenario {
    async fn start(database: &Database, servers: usize, prefix: &'static str) -> Self {
        let mut started = Vec::new();
        for _ in 0..servers {
            started.push(Server::start(database).await);
        }
        started[0].assign().await;
        let servers = Arc::new(started);
        let stop = Arc::new(AtomicBool::new(false));
        let sender = tokio::spawn(provider(
            Arc::clone(&servers),
            prefix,
            Arc::clone(&stop),
            ANSWER_WITHIN,
        ));
        // Traffic before the fault.
        sleep(Duration::from_secs(1)).await;
        Self {
            servers,
            stop,
            sender,
        }
    }

    /// Stops the provider once everything it sent is answered, and checks
    /// the inbox through every server.
    async fn finish(self) -> Sent {
        sleep(Duration::from_secs(1)).await;
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.sender.await.expect("the provider finished");
        for server in self.servers.iter() {
            assert_exactly_once(&server.inbox_counts().await, &sent.ids);
        }
        sent
    }
}

/// Probes until a signed webhook is routed; panics after `within`.
async fn routes_again(server: &Server, probe: &str, since: Instant, within: Duration) {
    for attempt in 1.. {
        let (answer, _) = server.post_reply(&format!("{probe}-{attempt}")).await;
        if let Ok((StatusCode::OK, body)) = &answer
            && body["status"] == "routed"
        {
            return;
        }
        assert!(
            since.elapsed() < within,
            "still not routing {:?} after the fault: {answer:?}",
            since.elapsed()
        );
        sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_black_hole_answers_503_within_the_deadline_and_loses_nothing() {
    let Some(database) = Database::create().await else {
        return;
    };
    let scenario = Scenario::start(&database, 1, "hole").await;
    let server = &scenario.servers[0];

    database.proxy.black_hole();
    let hole = Instant::now();
    let mut probes = 0;
    while hole.elapsed() < HOLE - ANSWER_WITHIN * 2 {
        probes += 1;
        let (status, took) = server.health().await;
        assert_eq!(
            status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "probe {probes}"
        );
        assert!(took < ANSWER_WITHIN, "/healthz took {took:?}");
        let (answer, took) = server.post_reply(&format!("hole-probe-{probes}")).await;
        let status = answer.map(|(status, _)| status).ok();
        assert_eq!(
            status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "probe {probes}"
        );
        assert!(took < ANSWER_WITHIN, "a webhook took {took:?}");
    }
    sleep(HOLE.saturating_sub(hole.elapsed())).await;
    database.proxy.heal();

    let healed = Instant::now();
    routes_again(server, "after-hole", healed, RECOVERY).await;
    assert_eq!(server.health().await.0, Some(StatusCode::OK));
    let sent = scenario.finish().await;
    assert!(sent.failed_attempts > 0, "the provider met the hole");
}

#[tokio::test]
async fn two_servers_route_again_after_a_silent_failover_and_a_reset() {
    let Some(database) = Database::create().await else {
        return;
    };
    let scenario = Scenario::start(&database, 2, "failover").await;

    database.proxy.silent_failover();
    let failover = Instant::now();
    for (i, server) in scenario.servers.iter().enumerate() {
        routes_again(server, &format!("failover-probe-{i}"), failover, RECOVERY).await;
    }
    // The connections left hanging are given up, not waited on: by now every
    // server answers within the deadline again, health included.
    for server in scenario.servers.iter() {
        let (status, took) = server.health().await;
        assert_eq!(status, Some(StatusCode::OK));
        assert!(took < ANSWER_WITHIN, "/healthz took {took:?}");
    }

    database.proxy.reset_all();
    let reset = Instant::now();
    for (i, server) in scenario.servers.iter().enumerate() {
        routes_again(server, &format!("reset-probe-{i}"), reset, RECOVERY).await;
    }
    let sent = scenario.finish().await;
    assert!(!sent.ids.is_empty());
}

#[tokio::test]
async fn an_idle_server_replaces_its_dead_connections_before_they_are_needed() {
    let Some(database) = Database::create().await else {
        return;
    };
    let server = Server::start(&database).await;
    server.assign().await;
    // Connections in the pool, idle afterwards.
    for i in 0..4 {
        let (answer, _) = server.post_reply(&format!("warm-{i}")).await;
        assert!(matches!(answer, Ok((StatusCode::OK, _))), "{answer:?}");
    }

    database.proxy.silent_failover();
    // The idle connections are pinged every 5 s, each ping bounded by the
    // deadline: by now every one left hanging has been found and closed.
    sleep(Duration::from_secs(5) + DEADLINE + Duration::from_secs(3)).await;
    let (answer, took) = server.post_reply("after-idle").await;
    assert!(
        matches!(&answer, Ok((StatusCode::OK, body)) if body["status"] == "routed"),
        "{answer:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "the first webhook took {took:?}"
    );
}

/// How long a store's listener hears nothing before it checks its
/// connection (`ibiki-postgres`, `listen.rs`).
const LISTENER_IDLE_CHECK: Duration = Duration::from_secs(30);

/// The connection a server listens for deliveries on goes silent with the
/// others. Nothing reports it, but after a quiet spell the listener's bounded
/// `SELECT 1` finds it dead: it listens on a new connection and wakes the
/// stream, which finds the reply another server received meanwhile.
#[tokio::test]
async fn a_stream_hears_again_after_its_listening_connection_went_silent() {
    let Some(database) = Database::create().await else {
        return;
    };
    let streaming = Server::start(&database).await;
    streaming.assign().await;
    let mut stream = streaming.open_stream().await;
    let (answer, _) = streaming.post_reply("before").await;
    assert!(matches!(answer, Ok((StatusCode::OK, _))), "{answer:?}");
    stream.until("\"before\"", Duration::from_secs(1)).await;
    // The stream's read after that event done: it waits for a wake-up.
    sleep(Duration::from_secs(1)).await;

    database.proxy.silent_failover();
    let failover = Instant::now();
    // Its connections open after the failover: they work.
    let receiving = Server::start(&database).await;
    routes_again(&receiving, "meanwhile", failover, RECOVERY).await;
    // The check, at most 30 s after the last notification heard ("before"),
    // its ping bounded by the deadline, then a read through a pool that
    // replaced its own hanging connections.
    let within = LISTENER_IDLE_CHECK + DEADLINE + Duration::from_secs(8);
    stream.until("\"meanwhile-", within).await;
    let heard = failover.elapsed();
    eprintln!("heard again {heard:?} after the failover");
    assert!(
        heard > LISTENER_IDLE_CHECK - Duration::from_secs(2),
        "woken by something else than the listener's check, after {heard:?}"
    );
}
