//! Endpoints that fail: down then up, failing once, failing until the
//! schedule is spent and then retried by hand.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::burst::until_all_delivered;
use crate::check::{Times, assert_forwarded};
use crate::harness::{Server, Store, until};
use crate::receiver::{FAILURE, Mode, Receiver};

both_stores!(
    a_down_endpoint_gets_every_reply_once_up,
    a_failed_attempt_is_repeated_with_the_same_id_and_bytes,
    a_spent_schedule_fails_the_delivery_until_retried_by_hand,
);

const NUMBER: &str = "+14155550100";

async fn a_down_endpoint_gets_every_reply_once_up(store: Store) {
    const N: usize = 20;
    // Retries for a minute or more (each waits for the worker's next look,
    // at most a second): the endpoint comes back well before.
    let schedule = vec!["200ms"; 60].join(",");
    let server = Server::start(&store, &["--delivery-retry-schedule", &schedule]).await;
    let receiver = Receiver::down().await;
    let secret = server.client("acme", NUMBER, &receiver.url("/acme")).await;
    receiver.expect("/acme", &secret, Mode::Accept);
    for i in 0..N {
        server.reply(&format!("down-{i}"), NUMBER).await;
    }

    // Down: every reply pending, each attempted twice at least, refused.
    let down = until(
        "every delivery attempted twice while the endpoint is down",
        Duration::from_secs(60),
        || async {
            let deliveries = server.deliveries("acme").await;
            let retried = deliveries
                .iter()
                .filter(|d| d["attempts"].as_u64() >= Some(2))
                .count();
            if deliveries.len() == N && retried == N {
                Ok(deliveries)
            } else {
                Err(format!("{retried} of {} retried", deliveries.len()))
            }
        },
    )
    .await;
    for delivery in &down {
        assert_eq!(delivery["status"], "pending", "{delivery}");
        assert_eq!(delivery["lastStatus"], Value::Null, "{delivery}");
        assert!(
            delivery["lastError"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{delivery}"
        );
        assert!(delivery["nextAttemptAt"].is_string(), "{delivery}");
    }
    let endpoint = server.endpoint("acme").await;
    assert_eq!(endpoint["pending"], N, "{endpoint}");
    assert!(endpoint["failingSince"].is_string(), "{endpoint}");
    assert_eq!(endpoint["lastDeliveredAt"], Value::Null, "{endpoint}");
    // A claim counts the attempt in the store; the metric counts it when
    // it ends, a moment later.
    let metrics = server
        .metrics_when("every second attempt counted", |m| {
            m.attempt_failed() >= 2.0 * N as f64
        })
        .await;
    assert_eq!(metrics.pending(), N as f64);
    assert_eq!(metrics.delivered(), 0.0);
    assert_eq!(metrics.exhausted(), 0.0);

    // Up: everything arrives, once (nothing reached it while down).
    receiver.up().await;
    receiver
        .until_ids("/acme", N, Duration::from_secs(60))
        .await;
    let deliveries = until_all_delivered(&server, "acme", N).await;
    for delivery in &deliveries {
        assert!(delivery["attempts"].as_u64() >= Some(3), "{delivery}");
        assert_eq!(delivery["lastStatus"], 204, "{delivery}");
        assert_eq!(delivery["lastError"], Value::Null, "{delivery}");
    }
    let inbox = server.inbox("acme").await;
    assert_forwarded(&receiver.received("/acme"), &inbox, "acme", Times::Once);
    let endpoint = server.endpoint("acme").await;
    assert_eq!(endpoint["pending"], 0, "{endpoint}");
    assert_eq!(endpoint["failed"], 0, "{endpoint}");
    assert_eq!(endpoint["failingSince"], Value::Null, "{endpoint}");
    assert!(endpoint["lastDeliveredAt"].is_string(), "{endpoint}");
    let metrics = server
        .metrics_when("every delivery counted", |m| m.delivered() == N as f64)
        .await;
    assert_eq!(metrics.pending(), 0.0);
    assert_eq!(metrics.lag_count(), N as f64);
}

async fn a_failed_attempt_is_repeated_with_the_same_id_and_bytes(store: Store) {
    const N: usize = 3;
    let server = Server::start(&store, &["--delivery-retry-schedule", "200ms,200ms"]).await;
    let receiver = Receiver::start().await;
    let secret = server.client("acme", NUMBER, &receiver.url("/acme")).await;
    receiver.expect("/acme", &secret, Mode::FailFirst(500));
    for i in 0..N {
        server.reply(&format!("again-{i}"), NUMBER).await;
    }

    let deliveries = until_all_delivered(&server, "acme", N).await;
    for delivery in &deliveries {
        assert_eq!(delivery["attempts"], 2, "{delivery}");
        assert_eq!(delivery["lastStatus"], 200, "{delivery}");
        assert_eq!(delivery["lastError"], Value::Null, "{delivery}");
    }
    let received = receiver.received("/acme");
    let inbox = server.inbox("acme").await;
    let by_id = assert_forwarded(&received, &inbox, "acme", Times::AtLeastOnce);
    for (id, attempts) in &by_id {
        // assert_forwarded checked the bytes are the same.
        assert_eq!(attempts.len(), 2, "{id}: {attempts:?}");
        assert!(attempts[0].at < attempts[1].at);
    }
    let metrics = server
        .metrics_when("every delivery counted", |m| m.delivered() == N as f64)
        .await;
    assert_eq!(metrics.attempt_failed(), N as f64);
}

async fn a_spent_schedule_fails_the_delivery_until_retried_by_hand(store: Store) {
    let server = Server::start(&store, &["--delivery-retry-schedule", "100ms,100ms"]).await;
    let receiver = Receiver::start().await;
    let secret = server.client("acme", NUMBER, &receiver.url("/acme")).await;
    receiver.expect("/acme", &secret, Mode::Fail(500));
    server.reply("doomed", NUMBER).await;

    let failed = until("the delivery failed", Duration::from_secs(60), || async {
        let deliveries = server.deliveries("acme").await;
        match deliveries.as_slice() {
            [delivery] if delivery["status"] == "failed" => Ok(delivery.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The first attempt and one after each of the schedule's two waits.
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(failed["lastStatus"], 500, "{failed}");
    assert_eq!(failed["lastError"], FAILURE, "{failed}");
    assert_eq!(failed["nextAttemptAt"], Value::Null, "{failed}");
    let endpoint = server.endpoint("acme").await;
    assert_eq!(endpoint["pending"], 0, "{endpoint}");
    assert_eq!(endpoint["failed"], 1, "{endpoint}");
    assert!(endpoint["failingSince"].is_string(), "{endpoint}");
    assert_eq!(receiver.received("/acme").len(), 3);
    let metrics = server
        .metrics_when("the spent schedule counted", |m| m.exhausted() == 1.0)
        .await;
    assert_eq!(metrics.attempt_failed(), 2.0);
    assert_eq!(metrics.pending(), 0.0);

    // Fixed, then retried by hand.
    receiver.set_mode("/acme", Mode::Accept);
    let id = failed["id"].as_u64().expect("an id");
    let (status, body) = server.retry(id + 1000).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "delivery_not_found", "{body}");
    let (status, retried) = server.retry(id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["id"], id, "{retried}");
    assert_eq!(retried["status"], "pending", "{retried}");

    let deliveries = until_all_delivered(&server, "acme", 1).await;
    assert_eq!(deliveries[0]["attempts"], 4, "{:?}", deliveries[0]);
    assert_eq!(deliveries[0]["lastStatus"], 204, "{:?}", deliveries[0]);
    let received = receiver.received("/acme");
    assert_eq!(received.len(), 4);
    let inbox = server.inbox("acme").await;
    assert_forwarded(&received, &inbox, "acme", Times::AtLeastOnce);
    let endpoint = server.endpoint("acme").await;
    assert_eq!(endpoint["failed"], 0, "{endpoint}");
    assert_eq!(endpoint["failingSince"], Value::Null, "{endpoint}");
    assert!(endpoint["lastDeliveredAt"].is_string(), "{endpoint}");
}
