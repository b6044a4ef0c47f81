//! Posts replies to the example server's `POST /webhooks/sms` at a fixed
//! rate, for the forwarding load test (`scripts/loadtest/forwarding.sh`,
//! BENCHMARKS.md §13), where `wrk` only posts as fast as it can.
//!
//! ```text
//! paced-post ADDR RATE SECONDS CONNECTIONS NUMBERS RUN
//! ```
//!
//! Request `i` is due at `start + i / RATE` (open loop: a late answer does
//! not push the next request back, as long as one of the `CONNECTIONS`
//! keep-alive connections is free). Each is a reply to a random one of the
//! `NUMBERS` assigned numbers, in the formula of `scripts/loadtest/fill.py`,
//! with message id `fw-RUN-i`. Prints the requests sent, their answers, the
//! rate achieved, and the latency from each request's due time to its
//! answer (p50, p99, max).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use ibiki_benches::Rng;
use tokio::net::TcpStream;
use tokio::time::Instant;

const AREAS: [u64; 10] = [201, 212, 213, 312, 415, 617, 646, 718, 917, 305];

/// Number `i` of `scripts/loadtest/fill.py`.
fn number(i: u64) -> String {
    let area = AREAS[usize::try_from(i % 10).unwrap_or(0)];
    let exchange = 200 + (i / 10) % 800;
    let line = i / 8000;
    format!("+1{area}{exchange}{line:04}")
}

struct Plan {
    addr: SocketAddr,
    start: Instant,
    interval: Duration,
    total: u64,
    numbers: u64,
    run: String,
    next: AtomicU64,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    /// Microseconds from each request's due time to its answer.
    latencies: Vec<u64>,
}

async fn connect(addr: SocketAddr) -> std::io::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn connection(plan: Arc<Plan>, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(seed);
    let mut sender = None;
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.total {
            return tally;
        }
        let due = plan.start + plan.interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let to = number(rng.below(plan.numbers));
        let body = format!(
            r#"{{"messageId":"fw-{}-{i}","from":"+15005550006","to":"{to}","body":"load test"}}"#,
            plan.run
        );
        let request = Request::post("/webhooks/sms")
            .header("host", plan.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let answered = async {
            if sender.is_none() {
                sender = Some(connect(plan.addr).await?);
            }
            let Some(s) = sender.as_mut() else {
                return Err(std::io::Error::other("no connection"));
            };
            let response = s
                .send_request(request)
                .await
                .map_err(std::io::Error::other)?;
            let status = response.status();
            response
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?;
            Ok(status)
        }
        .await;
        match answered {
            Ok(status) if status.is_success() => tally.ok += 1,
            Ok(_) => tally.non_2xx += 1,
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
        let took = Instant::now().saturating_duration_since(due);
        tally
            .latencies
            .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, rate, seconds, connections, numbers, run] = args.as_slice() else {
        return Err("usage: paced-post ADDR RATE SECONDS CONNECTIONS NUMBERS RUN".into());
    };
    let addr: SocketAddr = addr.parse()?;
    let rate: f64 = rate.parse()?;
    let seconds: f64 = seconds.parse()?;
    let connections: u64 = connections.parse()?;
    let numbers: u64 = numbers.parse()?;
    if rate <= 0.0 || seconds <= 0.0 || connections == 0 || numbers == 0 {
        return Err("RATE, SECONDS, CONNECTIONS and NUMBERS must be positive".into());
    }
    // One thread: the generator shares the machine with what it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let plan = Arc::new(Plan {
            addr,
            start: Instant::now() + Duration::from_millis(50),
            interval: Duration::from_secs_f64(1.0 / rate),
            total: (rate * seconds).round() as u64,
            numbers,
            run: run.clone(),
            next: AtomicU64::new(0),
        });
        let tasks: Vec<_> = (0..connections)
            .map(|c| tokio::spawn(connection(Arc::clone(&plan), 0x9e37_79b9 + c)))
            .collect();
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await?;
            all.ok += t.ok;
            all.non_2xx += t.non_2xx;
            all.errors += t.errors;
            all.latencies.extend(t.latencies);
        }
        let elapsed = plan.start.elapsed().as_secs_f64();
        all.latencies.sort_unstable();
        let sent = all.ok + all.non_2xx + all.errors;
        println!(
            "sent {sent} in {elapsed:.2} s: {:.0} req/s (asked {rate:.0}); 2xx {}, non-2xx {}, errors {}; \
             latency from due time p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            sent as f64 / elapsed,
            all.ok,
            all.non_2xx,
            all.errors,
            percentile(&all.latencies, 50.0),
            percentile(&all.latencies, 99.0),
            percentile(&all.latencies, 100.0),
        );
        Ok(())
    })
}
