//! A server killed with SIGKILL mid-delivery, on PostgreSQL: the attempts it
//! had in flight are made again (after their lease) by the server started in
//! its place, every reply is delivered at least once, and a repeat carries
//! the same `webhook-id` and bytes.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::burst::until_all_delivered;
use crate::check::{Times, assert_forwarded};
use crate::harness::{Server, Store, burst, until};
use crate::receiver::{Mode, Receiver};

const NUMBER: &str = "+14155550100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_is_replaced_and_nothing_is_lost() {
    const N: usize = 150;
    /// Requests answered before the endpoint stops answering.
    const ANSWERED: usize = 40;
    let Some(store) = Store::postgres().await else {
        return;
    };
    // A 2 s timeout: a lease of 19 s (twice the timeout and 15 s).
    let flags = [
        "--delivery-timeout",
        "2s",
        "--delivery-retry-schedule",
        "200ms",
    ];
    let receiver = Receiver::start().await;
    let first = Server::start(&store, &flags).await;
    let secret = first.client("acme", NUMBER, &receiver.url("/acme")).await;
    // The first requests are answered; later ones hang, so the server is
    // surely killed with attempts in flight.
    receiver.expect("/acme", &secret, Mode::HangAfter(ANSWERED));
    burst(&[&first], NUMBER, N, |i| format!("crash-{i}")).await;
    until(
        "the endpoint's slots all hanging",
        Duration::from_secs(60),
        || async {
            let hanging = receiver.received("/acme").len().saturating_sub(ANSWERED);
            if hanging >= 4 {
                Ok(())
            } else {
                Err(format!("{hanging} hanging"))
            }
        },
    )
    .await;
    first.kill().await;
    let at_kill = receiver.received("/acme");
    let unanswered: BTreeSet<String> = at_kill[ANSWERED..].iter().map(|r| r.id.clone()).collect();

    receiver.set_mode("/acme", Mode::Accept);
    let second = Server::start(&store, &flags).await;
    receiver
        .until_ids("/acme", N, Duration::from_secs(90))
        .await;
    let deliveries = until_all_delivered(&second, "acme", N).await;

    let received = receiver.received("/acme");
    let inbox = second.inbox("acme").await;
    assert_eq!(inbox.len(), N);
    let by_id = assert_forwarded(&received, &inbox, "acme", Times::AtLeastOnce);
    for (id, attempts) in &by_id {
        if unanswered.contains(*id) {
            // Never answered: sent again by the second server.
            assert!(attempts.len() >= 2, "{id} not sent again");
            assert!(
                attempts
                    .iter()
                    .any(|r| r.at > at_kill[at_kill.len() - 1].at),
                "{id} not sent again after the kill"
            );
        } else {
            assert_eq!(attempts.len(), 1, "{id} answered, yet sent again");
        }
    }
    for delivery in &deliveries {
        let id = format!("msg_{}", delivery["replyId"]);
        let attempts = delivery["attempts"].as_u64().expect("attempts");
        if unanswered.contains(&id) {
            assert!(attempts >= 2, "{delivery}");
        } else {
            assert_eq!(attempts, 1, "{delivery}");
        }
    }
    let endpoint = second.endpoint("acme").await;
    assert_eq!(endpoint["pending"], 0, "{endpoint}");
    assert_eq!(second.metrics().await.pending(), 0.0);
}
