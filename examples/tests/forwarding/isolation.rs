//! A slow endpoint holds its own attempts only: another client's replies go
//! through meanwhile, each within a second.

use std::time::{Duration, Instant};

use crate::burst::until_all_delivered;
use crate::check::{Times, assert_forwarded};
use crate::harness::{Server, Store, until};
use crate::receiver::{Mode, Receiver};

both_stores!(a_slow_endpoint_holds_up_no_other);

/// `--delivery-endpoint-concurrency`'s default.
const PER_ENDPOINT: usize = 4;

async fn a_slow_endpoint_holds_up_no_other(store: Store) {
    const SLOW: usize = 12;
    const FAST: usize = 10;
    // Room for 8 attempts, 4 of them to one endpoint; an attempt may take
    // 20 s, far longer than this test's window.
    let flags = ["--delivery-concurrency", "8", "--delivery-timeout", "20s"];
    let server = Server::start(&store, &flags).await;
    let receiver = Receiver::start().await;
    let secret = server
        .client("slow", "+14155550101", &receiver.url("/slow"))
        .await;
    receiver.expect("/slow", &secret, Mode::Hold(Duration::from_secs(120)));
    let secret = server
        .client("fast", "+14155550102", &receiver.url("/fast"))
        .await;
    receiver.expect("/fast", &secret, Mode::Accept);

    for i in 0..SLOW {
        server.reply(&format!("slow-{i}"), "+14155550101").await;
    }
    until(
        "the slow endpoint's slots taken",
        Duration::from_secs(30),
        || async {
            match receiver.in_flight("/slow") {
                PER_ENDPOINT => Ok(()),
                n => Err(format!("{n} in flight")),
            }
        },
    )
    .await;
    let window = Instant::now();

    let mut lags = Vec::new();
    for i in 0..FAST {
        server.reply(&format!("fast-{i}"), "+14155550102").await;
        let posted = Instant::now();
        let received = receiver
            .until_ids("/fast", i + 1, Duration::from_secs(30))
            .await;
        let arrived = received.last().expect("a request").at;
        lags.push(arrived.saturating_duration_since(posted));
    }
    assert!(
        lags.iter().all(|lag| *lag < Duration::from_secs(1)),
        "a reply to the fast endpoint took over a second: {lags:?}"
    );
    until_all_delivered(&server, "fast", FAST).await;
    let inbox = server.inbox("fast").await;
    assert_forwarded(&receiver.received("/fast"), &inbox, "fast", Times::Once);

    // Meanwhile the slow endpoint had its 4 attempts, never more, all still
    // waiting for an answer (the window is shorter than the timeout).
    assert!(
        window.elapsed() < Duration::from_secs(15),
        "the window outgrew the timeout"
    );
    assert_eq!(receiver.most_in_flight("/slow"), PER_ENDPOINT);
    assert_eq!(receiver.in_flight("/slow"), PER_ENDPOINT);
    assert_eq!(receiver.received("/slow").len(), PER_ENDPOINT);
    let slow = server.endpoint("slow").await;
    assert_eq!(slow["pending"], SLOW, "{slow}");
    assert_eq!(slow["lastDeliveredAt"], serde_json::Value::Null, "{slow}");
}
