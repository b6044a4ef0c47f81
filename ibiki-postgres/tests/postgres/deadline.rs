//! The call timeout: a call the database does not answer in time fails as
//! `Unavailable` at its deadline, its connection is closed rather than
//! handed to the next call, and a reply whose commit outcome was unknown is
//! recorded once when the provider retries it.
//!
//! A statement is kept from finishing by holding, on a connection of the
//! test's own, the advisory lock of the number it receives for (its digits,
//! migration 0001). The numbers here are used by no other test: the lock is
//! database-wide.

use std::error::Error as _;
use std::time::{Duration, Instant};

use ibiki_core::testing::{client, number, reply, whole_inbox};
use ibiki_core::{AssignmentStore, Change, Receipt, ReplyStore, StoreError};
use ibiki_postgres::{DeadlineExceeded, PostgresStore};
use sqlx::{Connection, PgConnection};

use crate::support::{TestStore, fresh_store};

const TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for scheduling on a loaded machine.
const SLACK: Duration = Duration::from_millis(1500);

/// A store on `test`'s schema whose calls time out after [`TIMEOUT`].
async fn impatient(test: &TestStore, connections: u32) -> PostgresStore {
    PostgresStore::builder(test.url())
        .schema(test.store().schema())
        .max_connections(connections)
        .call_timeout(TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Holds the number lock of `digits` until the connection commits.
async fn hold_number_lock(test: &TestStore, digits: &str) -> PgConnection {
    let mut conn = test.connection().await;
    sqlx::raw_sql(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({})",
        digits.trim_start_matches('+')
    ))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("lock: {e}"));
    conn
}

async fn release(mut conn: PgConnection) {
    sqlx::raw_sql("COMMIT")
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    let _ = conn.close().await;
}

/// Whether `error` is `Unavailable` because a deadline passed.
fn timed_out(error: &StoreError) -> bool {
    let StoreError::Unavailable(_) = error else {
        return false;
    };
    let mut cause = error.source();
    while let Some(error) = cause {
        if error.downcast_ref::<DeadlineExceeded>().is_some() {
            return true;
        }
        cause = error.source();
    }
    false
}

#[tokio::test]
async fn a_call_past_its_deadline_fails_and_frees_its_connection() {
    let Some(test) = fresh_store().await else {
        return;
    };
    // One connection: a call after the timeout can only succeed if the
    // stuck one left the pool.
    let store = impatient(&test, 1).await;
    let (alice, stuck) = (client("alice"), "+13125550171");
    store
        .change_numbers(&alice, &[number(stuck)], Change::Add)
        .await
        .unwrap_or_else(|e| panic!("assign: {e}"));
    let lock = hold_number_lock(&test, stuck).await;

    let started = Instant::now();
    let error = store
        .receive(reply(Some("SM-stuck"), stuck, "waits", 1))
        .await
        .expect_err("the number lock is held");
    let waited = started.elapsed();
    assert!(timed_out(&error), "{error:?}");
    assert!(
        (TIMEOUT..TIMEOUT + SLACK).contains(&waited),
        "answered after {waited:?}"
    );

    let started = Instant::now();
    let owner = store
        .owner_of(number(stuck))
        .await
        .unwrap_or_else(|e| panic!("a call after the timeout: {e}"));
    assert_eq!(owner, Some(alice.clone()));
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());

    // The abandoned statement still runs on the server and commits once the
    // lock is free: the provider's retry is then a duplicate, never a copy.
    release(lock).await;
    let retried = retry_until_answered(&store, || reply(Some("SM-stuck"), stuck, "waits", 1)).await;
    assert!(
        matches!(retried, Receipt::Duplicate | Receipt::Routed(_)),
        "{retried:?}"
    );
    assert_eq!(whole_inbox(&store, &alice).await.len(), 1);
}

#[tokio::test]
async fn a_batch_past_its_deadline_answers_every_reply_and_the_next_goes_ahead() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = impatient(&test, 4).await;
    let bob = client("bob");
    let (stuck, free) = ("+13125550172", "+13125550173");
    store
        .change_numbers(&bob, &[number(stuck), number(free)], Change::Add)
        .await
        .unwrap_or_else(|e| panic!("assign: {e}"));
    let lock = hold_number_lock(&test, stuck).await;

    // Replies to both numbers at once: those batched with a stuck one wait
    // with it, and every one is answered by its deadline.
    let started = Instant::now();
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let to = if i % 2 == 0 { stuck } else { free };
            tokio::spawn(async move {
                store
                    .receive(reply(Some(&format!("SM-{i}")), to, "x", i))
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("receive task"));
    }
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "answered after {:?}",
        started.elapsed()
    );
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(receipt) => assert!(i % 2 == 1, "reply {i} to the locked number: {receipt:?}"),
            Err(error) => assert!(timed_out(error), "reply {i}: {error:?}"),
        }
    }

    // The lock is still held: a reply to the other number commits at once.
    let started = Instant::now();
    let next = store
        .receive(reply(Some("SM-next"), free, "next", 20))
        .await
        .unwrap_or_else(|e| panic!("the next batch: {e}"));
    assert_eq!(next, Receipt::Routed(bob.clone()));
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());

    // Every reply retried until answered is in the inbox exactly once.
    release(lock).await;
    for i in 0..16 {
        let to = if i % 2 == 0 { stuck } else { free };
        let receipt =
            retry_until_answered(&store, || reply(Some(&format!("SM-{i}")), to, "x", i)).await;
        assert!(
            matches!(receipt, Receipt::Duplicate | Receipt::Routed(_)),
            "{receipt:?}"
        );
    }
    let mut ids: Vec<String> = whole_inbox(&store, &bob)
        .await
        .into_iter()
        .filter_map(|stored| stored.message_id.map(|id| id.as_str().to_owned()))
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..16).map(|i| format!("SM-{i}")).collect();
    expected.push("SM-next".into());
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_read_only_server_is_not_healthy() {
    let Some(test) = fresh_store().await else {
        return;
    };
    assert!(test.store().ping().await.is_ok());
    let read_only = format!(
        "{}{}options=-c%20default_transaction_read_only%3Don",
        test.url(),
        if test.url().contains('?') { '&' } else { '?' }
    );
    let store = PostgresStore::builder(read_only)
        .schema(test.store().schema())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    match store.ping().await {
        Err(StoreError::Unavailable(reason)) => {
            assert!(reason.to_string().contains("accepts no writes"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Sends `reply()` again, as a provider does, until the store answers.
async fn retry_until_answered(
    store: &PostgresStore,
    reply: impl Fn() -> ibiki_core::InboundReply,
) -> Receipt {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        match store.receive(reply()).await {
            Ok(receipt) => return receipt,
            Err(error) if Instant::now() < give_up => {
                assert!(error.is_store_failure(), "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("still failing after 30 s: {error:?}"),
        }
    }
}
