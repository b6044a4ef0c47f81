//! The upgrade that replies were lost in before: a client that owned one
//! number is given ten. Every reply sent to any of the ten, before or after the
//! upgrade, must end in its inbox exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, reply, send};

store_tests!(every_reply_across_ten_numbers_arrives_exactly_once);

const NUMBERS: usize = 10;
const BEFORE_UPGRADE: usize = 300;
const TOTAL: usize = 1_500;
const WORKERS: usize = 8;

fn number(i: usize) -> String {
    format!("+1415555{:04}", 100 + i % NUMBERS)
}

/// The `to` of reply `i`, in one of the forms providers post.
fn posted_to(i: usize) -> String {
    let digits = 100 + i % NUMBERS;
    match i % 4 {
        0 => number(i),
        1 => format!("+1 (415) 555-{digits:04}"),
        2 => format!("tel:+1-415-555-{digits:04}"),
        _ => format!("+1.415.555.{digits:04}"),
    }
}

/// Posts reply `i` (JSON or form, alternately); every fifth is retried, as a
/// provider does when it misses an answer.
async fn post(server: &TestServer, i: usize) {
    let id = format!("SM{i:05}");
    let to = posted_to(i);
    let body = format!("reply {i}");
    let attempts = if i % 5 == 0 { 2 } else { 1 };
    for attempt in 0..attempts {
        let (status, answer) = if i % 2 == 0 {
            server.webhook(&reply(&id, &to, &body)).await
        } else {
            let form = serde_urlencoded_form(&[
                ("MessageSid", &id),
                ("From", "+15005550006"),
                ("To", &to),
                ("Body", &body),
            ]);
            send(server.webhook_raw("application/x-www-form-urlencoded", form)).await
        };
        assert_eq!(status, StatusCode::OK, "{answer}");
        if attempt > 0 {
            assert_eq!(answer, json!({"status": "duplicate"}), "retry of {id}");
        }
    }
}

fn serde_urlencoded_form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn every_reply_across_ten_numbers_arrives_exactly_once(store: Arc<DynReplyStore>) {
    let server = Arc::new(TestServer::start(store).await);
    // Before the upgrade the client owns only the first number; another
    // client's traffic runs alongside.
    server.assign_ok("123", json!(number(0))).await;
    server.assign_ok("other", json!("+14155559999")).await;

    for i in 0..BEFORE_UPGRADE {
        post(&server, i).await;
    }
    let held = server.held().await.len();
    assert_eq!(
        held,
        BEFORE_UPGRADE - BEFORE_UPGRADE / NUMBERS,
        "replies to numbers 2-10 wait"
    );

    // The upgrade: all ten, written the way an admin types them.
    let all: Vec<String> = (0..NUMBERS)
        .map(|i| format!("+1 415 555 {:04}", 100 + i))
        .collect();
    let answer = server.assign_ok("123", json!(all.join(", "))).await;
    assert_eq!(answer["count"], NUMBERS);
    assert_eq!(answer["released"], held);

    // The rest, concurrently, with the other client's replies interleaved.
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let server = server.clone();
        workers.spawn(async move {
            for i in (BEFORE_UPGRADE + worker..TOTAL).step_by(WORKERS) {
                post(&server, i).await;
                if i % 50 == 0 {
                    let other = reply(&format!("OTHER{i}"), "+14155559999", "not for 123");
                    assert_eq!(server.webhook(&other).await.1["userId"], "other");
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }

    let inbox = server.all_pages("/api/clients/123/messages", 100).await;
    let ids: Vec<&str> = inbox
        .iter()
        .map(|m| m["messageId"].as_str().expect("id"))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), TOTAL, "every reply once");
    assert_eq!(unique.len(), TOTAL, "no reply twice");
    let expected: BTreeSet<String> = (0..TOTAL).map(|i| format!("SM{i:05}")).collect();
    assert!(
        unique.iter().all(|id| expected.contains(*id)),
        "only this client's replies"
    );

    let mut per_number: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &inbox {
        *per_number
            .entry(message["to"].as_str().expect("to"))
            .or_default() += 1;
    }
    let counts: Vec<usize> = per_number.values().copied().collect();
    assert_eq!(per_number.len(), NUMBERS, "{per_number:?}");
    assert_eq!(
        counts,
        vec![TOTAL / NUMBERS; NUMBERS],
        "canonical `to`, evenly spread"
    );
    assert!(server.held().await.is_empty());
    let other: Vec<Value> = server.inbox("other").await;
    assert_eq!(
        other.len(),
        (BEFORE_UPGRADE..TOTAL).filter(|i| i % 50 == 0).count()
    );
}
