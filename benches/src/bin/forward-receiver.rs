//! A fast local receiver of forwarded replies, for the forwarding load test
//! (`scripts/loadtest/forwarding.sh`, BENCHMARKS.md §13).
//!
//! ```text
//! forward-receiver ADDR OUT.csv
//! ```
//!
//! Answers every `POST` with `204 No Content` at once, and records, per
//! request, when it arrived (this machine's clock, Unix nanoseconds), its
//! `webhook-id` and the body's `timestamp` (when the reply reached the
//! inbox, the database's clock on the same machine). It checks only that
//! the Standard Webhooks headers are there and the body has a timestamp
//! (`400` otherwise, counted), not the signature: it is to cost the machine
//! as little as it can. `GET /count` answers the number of requests taken.
//! On `SIGTERM` or `SIGINT` it writes `arrival_ns,webhook_id,recorded_ns`,
//! one line a request, to `OUT.csv`, and exits.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// One request taken.
struct Record {
    arrival_ns: i128,
    webhook_id: String,
    recorded_ns: i128,
}

#[derive(Default)]
struct State {
    records: Mutex<Vec<Record>>,
    taken: AtomicU64,
    refused: AtomicU64,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// The body's top-level `timestamp`, the first key of that name in the
/// rendered body (`{"type":…,"timestamp":"…","data":{…}}`).
fn timestamp_ns(body: &[u8]) -> Option<i128> {
    const KEY: &[u8] = b"\"timestamp\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    let text = std::str::from_utf8(&body[start..start + len]).ok()?;
    Some(
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()?
            .unix_timestamp_nanos(),
    )
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/count" {
        let taken = state.taken.load(Ordering::Relaxed);
        return Ok(answer(StatusCode::OK, format!("{taken}\n")));
    }
    if request.method() != Method::POST {
        return Ok(answer(StatusCode::METHOD_NOT_ALLOWED, ""));
    }
    let headers = request.headers();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let signed =
        headers.contains_key("webhook-signature") && headers.contains_key("webhook-timestamp");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST, "")),
    };
    let arrival_ns = now_ns();
    match (id, signed, timestamp_ns(&body)) {
        (Some(webhook_id), true, Some(recorded_ns)) => {
            state
                .records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Record {
                    arrival_ns,
                    webhook_id,
                    recorded_ns,
                });
            state.taken.fetch_add(1, Ordering::Relaxed);
            Ok(answer(StatusCode::NO_CONTENT, ""))
        }
        _ => {
            state.refused.fetch_add(1, Ordering::Relaxed);
            Ok(answer(StatusCode::BAD_REQUEST, "not a forwarded reply"))
        }
    }
}

fn write_csv(state: &State, path: &str) -> std::io::Result<usize> {
    let records = state.records.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "arrival_ns,webhook_id,recorded_ns")?;
    for r in records.iter() {
        writeln!(out, "{},{},{}", r.arrival_ns, r.webhook_id, r.recorded_ns)?;
    }
    out.flush()?;
    Ok(records.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: forward-receiver ADDR OUT.csv".into());
    };
    let addr: SocketAddr = addr.parse()?;
    // One thread: the receiver shares the machine with what it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        let state = Arc::new(State::default());
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        eprintln!("forward-receiver: listening on {addr}");
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let service = service_fn(move |request| handle(Arc::clone(&state), request));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
        let written = write_csv(&state, &out)?;
        eprintln!(
            "forward-receiver: {written} requests written to {out}, {} refused",
            state.refused.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
