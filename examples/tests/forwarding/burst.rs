//! Bursts: every reply delivered exactly once, by one server, or shared by
//! three on one database; counted in the metrics.

use std::time::Duration;

use serde_json::Value;

use crate::check::{Times, assert_forwarded};
use crate::harness::{Server, Store, burst, until};
use crate::receiver::{Mode, Receiver};

both_stores!(a_burst_is_delivered_once_each);

/// How long a burst may take to be delivered, on a loaded machine.
const DELIVERED_WITHIN: Duration = Duration::from_secs(90);

/// Waits until every one of `user`'s `n` deliveries is recorded delivered;
/// returns them.
pub(crate) async fn until_all_delivered(server: &Server, user: &str, n: usize) -> Vec<Value> {
    until(
        &format!("{user}'s {n} deliveries recorded delivered"),
        DELIVERED_WITHIN,
        || async {
            let deliveries = server.deliveries(user).await;
            let delivered = deliveries
                .iter()
                .filter(|d| d["status"] == "delivered")
                .count();
            if deliveries.len() == n && delivered == n {
                Ok(deliveries)
            } else {
                Err(format!("{delivered} of {} delivered", deliveries.len()))
            }
        },
    )
    .await
}

async fn a_burst_is_delivered_once_each(store: Store) {
    const N: usize = 500;
    let receiver = Receiver::start().await;
    let server = Server::start(&store, &[]).await;
    let secret = server
        .client("acme", "+14155550100", &receiver.url("/acme"))
        .await;
    receiver.expect("/acme", &secret, Mode::Accept);
    let before = server.metrics().await;
    assert_eq!(before.delivered(), 0.0);
    assert_eq!(before.lag_count(), 0.0);
    assert_eq!(before.pending(), 0.0);

    burst(&[&server], "+14155550100", N, |i| format!("burst-{i}")).await;
    receiver.until_ids("/acme", N, DELIVERED_WITHIN).await;
    let deliveries = until_all_delivered(&server, "acme", N).await;

    let inbox = server.inbox("acme").await;
    assert_eq!(inbox.len(), N);
    assert_forwarded(&receiver.received("/acme"), &inbox, "acme", Times::Once);
    for delivery in &deliveries {
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        assert_eq!(delivery["lastStatus"], 204, "{delivery}");
        assert_eq!(delivery["lastError"], Value::Null, "{delivery}");
        assert_eq!(delivery["nextAttemptAt"], Value::Null, "{delivery}");
    }
    let endpoint = server.endpoint("acme").await;
    assert_eq!(endpoint["pending"], 0, "{endpoint}");
    assert_eq!(endpoint["failed"], 0, "{endpoint}");
    assert_eq!(endpoint["failingSince"], Value::Null, "{endpoint}");
    assert!(endpoint["lastDeliveredAt"].is_string(), "{endpoint}");

    let after = server
        .metrics_when("every delivery counted", |m| m.delivered() == N as f64)
        .await;
    assert_eq!(after.lag_count(), N as f64);
    assert_eq!(after.attempt_failed(), 0.0);
    assert_eq!(after.exhausted(), 0.0);
    assert_eq!(after.pending(), 0.0);
}

/// Three servers on one schema, replies posted to each in turn for three
/// clients: every reply delivered exactly once, the work shared.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_share_a_burst_and_deliver_each_once() {
    const PER_CLIENT: usize = 100;
    let Some(store) = Store::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (a, b, c) = tokio::join!(
        Server::start(&store, &[]),
        Server::start(&store, &[]),
        Server::start(&store, &[]),
    );
    let clients = [
        ("north", "+14155550101"),
        ("south", "+14155550102"),
        ("west", "+14155550103"),
    ];
    for (user, number) in clients {
        let path = format!("/{user}");
        let secret = b.client(user, number, &receiver.url(&path)).await;
        // A moment per request, so that no one server drains a backlog
        // before the others wake.
        receiver.expect(&path, &secret, Mode::Hold(Duration::from_millis(20)));
    }

    let servers = [&a, &b, &c];
    tokio::join!(
        burst(&servers, clients[0].1, PER_CLIENT, |i| format!("n-{i}")),
        burst(&servers, clients[1].1, PER_CLIENT, |i| format!("s-{i}")),
        burst(&servers, clients[2].1, PER_CLIENT, |i| format!("w-{i}")),
    );
    for (i, (user, _)) in clients.into_iter().enumerate() {
        let path = format!("/{user}");
        receiver
            .until_ids(&path, PER_CLIENT, DELIVERED_WITHIN)
            .await;
        let deliveries = until_all_delivered(servers[i], user, PER_CLIENT).await;
        assert!(
            deliveries.iter().all(|d| d["attempts"] == 1),
            "{deliveries:?}"
        );
        let inbox = c.inbox(user).await;
        assert_eq!(inbox.len(), PER_CLIENT);
        assert_forwarded(&receiver.received(&path), &inbox, user, Times::Once);
    }

    let total = (PER_CLIENT * clients.len()) as f64;
    let delivered = until(
        "the servers' metrics count every delivery",
        Duration::from_secs(10),
        || async {
            let mut each = Vec::new();
            for server in servers {
                each.push(server.metrics().await.delivered());
            }
            if each.iter().sum::<f64>() == total {
                Ok(each)
            } else {
                Err(format!("delivered by each: {each:?}"))
            }
        },
    )
    .await;
    assert!(
        delivered.iter().filter(|&&n| n > 0.0).count() >= 2,
        "one server did all the work: {delivered:?}"
    );
    for server in servers {
        // Read from the store: the same on every server.
        assert_eq!(server.metrics().await.pending(), 0.0);
    }
}
