//! A client's endpoint: a local HTTP server that checks every request's
//! Standard Webhooks signature with the `standardwebhooks` crate, records
//! what it got (`webhook-id`, body, when), and answers as each path is told.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use standardwebhooks::Webhook;
use tokio::net::TcpListener;

/// How a path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `204` at once.
    Accept,
    /// This status, every time.
    Fail(u16),
    /// This status to the first request of each `webhook-id`, `200` to the
    /// later ones.
    FailFirst(u16),
    /// `204` after this long.
    Hold(Duration),
    /// `204` at once to the path's first this many requests; the later
    /// ones are never answered (within the test).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    HangAfter(usize),
}

/// One request, as it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// `webhook-id`.
    pub(crate) id: String,
    pub(crate) body: Bytes,
    /// When it arrived.
    pub(crate) at: Instant,
    /// Whether its signature verified with the path's secret.
    pub(crate) verified: Result<(), String>,
}

impl Received {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct Paths {
    /// The secret each path's requests are signed with.
    secrets: HashMap<String, String>,
    modes: HashMap<String, Mode>,
    received: Vec<Received>,
    /// Requests being answered now, and the most at once, by path.
    in_flight: HashMap<String, usize>,
    most_in_flight: HashMap<String, usize>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Paths>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Paths> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The receiver; a path it was not told of answers `204`, and fails the
/// signature check.
#[derive(Clone)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    shared: Shared,
}

impl Receiver {
    /// Listening on 127.0.0.1, on a port of its own.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let receiver = Self {
            addr: listener.local_addr().expect("local address"),
            shared: Shared::default(),
        };
        receiver.serve(listener);
        receiver
    }

    /// Not listening yet, at an address nothing listens on: a port the
    /// system handed out and this test gave back, for [`up`](Self::up) to
    /// take again. A connection to it is refused meanwhile.
    pub(crate) async fn down() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self {
            addr: listener.local_addr().expect("local address"),
            shared: Shared::default(),
        }
    }

    /// Starts listening, at the address of [`down`](Self::down).
    pub(crate) async fn up(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .unwrap_or_else(|e| panic!("{} taken meanwhile: {e}", self.addr));
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(self.shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
    }

    /// The URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests to `path` are checked against `secret` (`whsec_…`) and
    /// answered as `mode` says.
    pub(crate) fn expect(&self, path: &str, secret: &str, mode: Mode) {
        let mut paths = self.shared.lock();
        paths.secrets.insert(path.to_owned(), secret.to_owned());
        paths.modes.insert(path.to_owned(), mode);
    }

    /// From now on, `path` answers as `mode` says.
    pub(crate) fn set_mode(&self, path: &str, mode: Mode) {
        self.shared.lock().modes.insert(path.to_owned(), mode);
    }

    /// Every request to `path` so far, in arrival order.
    pub(crate) fn received(&self, path: &str) -> Vec<Received> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Requests to `path` being answered now.
    pub(crate) fn in_flight(&self, path: &str) -> usize {
        self.shared.lock().in_flight.get(path).copied().unwrap_or(0)
    }

    /// The most requests to `path` that were being answered at once.
    pub(crate) fn most_in_flight(&self, path: &str) -> usize {
        self.shared
            .lock()
            .most_in_flight
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `path` has had requests with `n` different ids; panics
    /// with what it had after `limit`, or at once on a request whose
    /// signature did not verify.
    pub(crate) async fn until_ids(&self, path: &str, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received(path);
            if let Some(forged) = received.iter().find(|r| r.verified.is_err()) {
                panic!("{path}: a signature did not verify: {forged:?}");
            }
            if distinct_ids(&received) >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {n} replies received in {limit:?} ({} requests)",
                distinct_ids(&received),
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many different `webhook-id`s `received` has.
pub(crate) fn distinct_ids(received: &[Received]) -> usize {
    received
        .iter()
        .map(|r| r.id.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Counts a request in flight on its path until dropped.
struct InFlight {
    shared: Shared,
    path: String,
}

impl InFlight {
    fn new(shared: &Shared, path: &str) -> Self {
        let mut paths = shared.lock();
        let now = {
            let n = paths.in_flight.entry(path.to_owned()).or_default();
            *n += 1;
            *n
        };
        let most = paths.most_in_flight.entry(path.to_owned()).or_default();
        *most = (*most).max(now);
        Self {
            shared: shared.clone(),
            path: path.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().in_flight.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn receive(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let _in_flight = InFlight::new(&shared, &path);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (mode, earlier, seen_before, verified) = {
        let mut paths = shared.lock();
        let verified = match paths.secrets.get(&path) {
            Some(secret) => Webhook::new(secret)
                .and_then(|webhook| webhook.verify(&body, &headers))
                .map_err(|e| format!("{e:?}")),
            None => Err(format!("no secret for {path}")),
        };
        let earlier: Vec<&Received> = paths.received.iter().filter(|r| r.path == path).collect();
        let seen_before = earlier.iter().any(|r| r.id == id);
        let earlier = earlier.len();
        paths.received.push(Received {
            path: path.clone(),
            id,
            body,
            at,
            verified: verified.clone(),
        });
        let mode = paths.modes.get(&path).copied().unwrap_or(Mode::Accept);
        (mode, earlier, seen_before, verified)
    };
    if verified.is_err() {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let status = match mode {
        Mode::Accept => 204,
        Mode::Fail(status) => status,
        Mode::FailFirst(status) if !seen_before => status,
        Mode::FailFirst(_) => 200,
        Mode::Hold(delay) => {
            tokio::time::sleep(delay).await;
            204
        }
        Mode::HangAfter(answered) if earlier < answered => 204,
        Mode::HangAfter(_) => {
            tokio::time::sleep(HANG).await;
            204
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    let body = if status.is_success() { "" } else { FAILURE };
    (status, body)
}

/// How long a hanging request waits: longer than any test.
const HANG: Duration = Duration::from_secs(600);

/// The body of every answer that is not a `2xx`.
pub(crate) const FAILURE: &str = "the endpoint is failing";
