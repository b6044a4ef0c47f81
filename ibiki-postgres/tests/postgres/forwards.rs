//! Forwarding on PostgreSQL: the forward store's rules and the forwarding
//! property, each case in a fresh schema; then what only a database shows:
//! forwards created in the statement that puts a reply into an inbox, on
//! every path; claims by workers on separate connections; leases that
//! expire; wake-ups through the database.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ibiki_core::testing::{client, number, reply, whole_inbox};
use ibiki_core::{
    AddressPolicy, AssignmentStore, AttemptOutcome, ClaimRequest, ClientId, EndpointSecret,
    EndpointUrl, ForwardClaim, ForwardSignals, ForwardStatus, ForwardStore, HeldTarget,
    InboxSignals, PageRequest, Receipt, ReplyStore, StoreError,
};
use ibiki_postgres::PostgresStore;
use sqlx::PgConnection;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::support::{TestStore, fresh_store};

ibiki_core::forward_store_tests!(|| async { fresh_store().await.map(TestStore::into_store) });

/// The bound a worker's wake-up is held to here; the goal is 100 ms, a
/// loaded test machine gets more.
const WITHIN: Duration = Duration::from_secs(1);
/// How long setting up (a listener connecting) may take on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn url(text: &str) -> EndpointUrl {
    EndpointUrl::parse(text, AddressPolicy::PublicOnly).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn secret() -> EndpointSecret {
    EndpointSecret::generate().unwrap_or_else(|e| panic!("random: {e}"))
}

async fn endpoint(store: &PostgresStore, owner: &ClientId, enabled: bool) {
    let hook = url(&format!("https://hooks.example.com/{owner}"));
    ok(
        store.put_endpoint(owner, &hook, enabled, secret()).await,
        "put_endpoint",
    );
}

async fn assign(store: &PostgresStore, owner: &ClientId, to: &str) {
    ok(store.add_numbers(owner, &[number(to)]).await, "assign");
}

async fn receipt(store: &PostgresStore, id: &str, to: &str) -> Receipt {
    ok(store.receive(reply(Some(id), to, id, 1)).await, "receive")
}

async fn receive(store: &PostgresStore, id: &str, to: &str) {
    let _ = receipt(store, id, to).await;
}

/// Every forward of the schema, by hand: (reply id, client, status).
async fn all_forwards(test: &TestStore) -> Vec<(i64, String, String)> {
    let mut conn = test.connection().await;
    sqlx::query_as(&format!(
        "SELECT reply_id, client_id, status FROM {}.forwards ORDER BY reply_id",
        test.schema()
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("forwards: {e}"))
}

/// The reply ids with a forward.
async fn forwarded(test: &TestStore) -> Vec<u64> {
    all_forwards(test)
        .await
        .into_iter()
        .map(|(reply, _, _)| u64::try_from(reply).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The ids of a client's inbox.
async fn inbox_ids(store: &PostgresStore, owner: &ClientId) -> Vec<u64> {
    whole_inbox(store, owner)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn request(limit: u32, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        limit,
        lease,
        per_endpoint: 1000,
        in_flight: Vec::new(),
    }
}

/// Routed by one receive, by a batch, released by an assignment, re-routed
/// by an operator: each reply that reaches the inbox of a client with an
/// endpoint has one forward; held replies, clients without an endpoint and
/// duplicates have none.
#[tokio::test]
async fn every_way_into_an_inbox_creates_the_forward() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let (acme, globex) = (client("acme"), client("globex"));
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    assign(store, &globex, "+14155550101").await;

    // One receive (the schema's `receive`), its duplicate, and a client
    // without an endpoint.
    assert_eq!(
        receipt(store, "SM1", "+14155550100").await,
        Receipt::Routed(acme.clone())
    );
    assert_eq!(
        receipt(store, "SM1", "+14155550100").await,
        Receipt::Duplicate
    );
    receive(store, "SM2", "+14155550101").await;
    assert_eq!(forwarded(&test).await, inbox_ids(store, &acme).await);

    // A batch (the schema's `receive_batch`), called by hand so that it is
    // one: a routed reply, a copy of it, a recorded duplicate, a held one.
    let mut conn = test.connection().await;
    let rows: Vec<(bool, Option<String>)> = sqlx::query_as(&format!(
        "SELECT duplicate, owner FROM {}.receive_batch($1::text[], $2::text[], $3::text[], \
         $4::text[], $5::text[], $6::timestamptz[])",
        test.schema()
    ))
    .bind(["SM3", "SM3", "SM1", "SM4", "SM5"])
    .bind([
        "+14155550100",
        "+14155550100",
        "+14155550100",
        "+14155550199",
        "+14155550101",
    ])
    .bind([None::<&str>; 5])
    .bind(["+15005550006"; 5])
    .bind(["a", "b", "c", "d", "e"])
    .bind([time::OffsetDateTime::now_utc(); 5])
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("receive_batch: {e}"));
    let duplicates: Vec<bool> = rows.iter().map(|(d, _)| *d).collect();
    assert_eq!(duplicates, [false, true, true, false, false]);
    assert_eq!(forwarded(&test).await, inbox_ids(store, &acme).await);
    assert_eq!(inbox_ids(store, &acme).await.len(), 2);

    // Released by an assignment.
    assert_eq!(receipt(store, "SM6", "+14155550199").await, Receipt::Held);
    let change = ok(
        store.add_numbers(&acme, &[number("+14155550199")]).await,
        "release",
    );
    assert_eq!(change.released, 2, "SM4 and SM6");
    assert_eq!(forwarded(&test).await, inbox_ids(store, &acme).await);

    // Re-routed by an operator, to a client with an endpoint and to one
    // without.
    assert_eq!(receipt(store, "SM7", "+14155550198").await, Receipt::Held);
    assert_eq!(receipt(store, "SM8", "+14155550198").await, Receipt::Held);
    let held = ibiki_core::testing::whole_held(store).await;
    let rerouted = ok(
        store
            .deliver_held(held[0].id, &HeldTarget::Client(acme.clone()))
            .await,
        "deliver_held",
    );
    ok(
        store
            .deliver_held(held[1].id, &HeldTarget::Client(globex.clone()))
            .await,
        "deliver_held",
    );
    let acme_inbox = inbox_ids(store, &acme).await;
    assert_eq!(acme_inbox.last(), Some(&rerouted.id));
    assert_eq!(forwarded(&test).await, acme_inbox);
    assert_eq!(acme_inbox.len(), 5);
    let forwards = all_forwards(&test).await;
    assert!(
        forwards
            .iter()
            .all(|(_, owner, status)| owner == "acme" && status == "pending"),
        "{forwards:?}"
    );
    assert_eq!(ok(store.pending_forwards().await, "pending"), 5);
}

/// The forward is written by the same statement as the reply: when its
/// insert fails, the reply is not recorded either, on every path.
#[tokio::test]
async fn a_reply_and_its_forward_commit_together() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    assert_eq!(receipt(store, "SM0", "+14155550199").await, Receipt::Held);
    let mut conn = test.connection().await;
    // Every new forward refused from now on.
    sqlx::raw_sql(&format!(
        "ALTER TABLE {}.forwards ADD CONSTRAINT refused CHECK (false) NOT VALID",
        test.schema()
    ))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("constraint: {e}"));
    let refused = store
        .receive(reply(Some("SM1"), "+14155550100", "x", 1))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    assert!(
        inbox_ids(store, &acme).await.is_empty(),
        "no reply without its forward"
    );
    let release = store.add_numbers(&acme, &[number("+14155550199")]).await;
    assert!(release.is_err(), "{release:?}");
    assert!(inbox_ids(store, &acme).await.is_empty());
    let held = ibiki_core::testing::whole_held(store).await;
    let reroute = store
        .deliver_held(held[0].id, &HeldTarget::Client(acme.clone()))
        .await;
    assert!(reroute.is_err(), "{reroute:?}");
    assert!(inbox_ids(store, &acme).await.is_empty());
    assert_eq!(ibiki_core::testing::whole_held(store).await.len(), 1);
    // A client without an endpoint gets no forward, so nothing is refused.
    let globex = client("globex");
    assign(store, &globex, "+14155550101").await;
    assert_eq!(
        receipt(store, "SM2", "+14155550101").await,
        Receipt::Routed(globex)
    );
}

/// A claim hands out the reply as the inbox lists it, the endpoint's URL
/// and its secrets; a delivered forward is not claimed again.
#[tokio::test]
async fn a_claim_carries_what_the_attempt_needs() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    receive(store, "SM1", "+14155550100").await;
    let claims = ok(
        store.claim(&request(10, Duration::from_secs(60))).await,
        "claim",
    );
    let [claim] = claims.as_slice() else {
        panic!("one claim: {claims:?}");
    };
    assert_eq!(claim.lease.attempt, 1);
    assert_eq!(claim.client, acme);
    assert_eq!(claim.url.as_str(), "https://hooks.example.com/acme");
    assert_eq!(
        Some(claim.secrets.clone()),
        ok(store.endpoint_secrets(&acme).await, "secrets")
    );
    assert_eq!(
        whole_inbox(store, &acme).await,
        std::slice::from_ref(&claim.reply)
    );
    let delivered = AttemptOutcome::Delivered { status: 204 };
    assert!(ok(store.finish(claim.lease, &delivered).await, "finish"));
    assert!(
        !ok(store.finish(claim.lease, &delivered).await, "again"),
        "an outcome is recorded once per lease"
    );
    let forward = ok(store.forward(claim.lease.forward).await, "forward");
    let forward = forward.unwrap_or_else(|| panic!("the forward"));
    assert_eq!(forward.status, ForwardStatus::Delivered);
    assert_eq!(forward.last_status, Some(204));
    assert_eq!(forward.next_attempt_at, None);
    assert!(ok(store.claim(&request(10, Duration::ZERO)).await, "claim").is_empty());
    let state = ok(store.endpoint(&acme).await, "endpoint");
    let state = state.unwrap_or_else(|| panic!("the endpoint"));
    assert!(state.last_delivered_at.is_some());
    assert_eq!((state.pending, state.failed), (0, 0));
}

/// Two workers, each on a store (a pool) of its own, claim concurrently:
/// no forward is handed to both while its lease holds, and every forward is
/// handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_forward() {
    const REPLIES: usize = 300;
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let owners = [client("acme"), client("globex"), client("initech")];
    for (i, owner) in owners.iter().enumerate() {
        endpoint(store, owner, true).await;
        assign(store, owner, &format!("+1415555010{i}")).await;
    }
    let sender = Arc::new(test.second_store().await);
    let mut sends = JoinSet::new();
    for i in 0..REPLIES {
        let sender = Arc::clone(&sender);
        sends.spawn(async move {
            let id = format!("SM{i}");
            let to = format!("+1415555010{}", i % 3);
            let _ = ok(
                sender.receive(reply(Some(&id), &to, &id, 1)).await,
                "receive",
            );
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent.unwrap_or_else(|e| panic!("send: {e}"));
    }
    let mut workers = JoinSet::new();
    for _ in 0..4 {
        let worker = test.second_store().await;
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claims = ok(
                    worker.claim(&request(7, Duration::from_secs(60))).await,
                    "claim",
                );
                if claims.is_empty() {
                    return mine;
                }
                mine.extend(claims.into_iter().map(|c| c.lease));
            }
        });
    }
    let mut seen = BTreeSet::new();
    while let Some(claimed) = workers.join_next().await {
        for lease in claimed.unwrap_or_else(|e| panic!("worker: {e}")) {
            assert_eq!(lease.attempt, 1, "{lease:?}");
            assert!(seen.insert(lease.forward), "{lease:?} handed out twice");
        }
    }
    assert_eq!(seen.len(), REPLIES);
}

/// A lease that ends without an outcome: the forward is claimed again under
/// a new attempt number, and the first worker's late outcome is refused.
#[tokio::test]
async fn an_expired_lease_is_superseded() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    receive(store, "SM1", "+14155550100").await;
    let lease = Duration::from_millis(300);
    let first = one_claim(store, lease).await;
    assert_eq!(first.lease.attempt, 1);
    assert!(
        ok(store.claim(&request(10, lease)).await, "claim").is_empty(),
        "leased: not handed out again"
    );
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let second = one_claim(store, lease).await;
    assert_eq!(second.lease.forward, first.lease.forward);
    assert_eq!(second.lease.attempt, 2);
    let failed = AttemptOutcome::Failed {
        status: Some(503),
        error: "busy".into(),
        retry_in: Some(Duration::ZERO),
    };
    assert!(
        !ok(store.finish(first.lease, &failed).await, "late finish"),
        "the superseded lease's outcome is refused"
    );
    let forward = ok(store.forward(first.lease.forward).await, "forward");
    let forward = forward.unwrap_or_else(|| panic!("the forward"));
    assert_eq!((forward.attempts, forward.last_status), (2, None));
    assert!(ok(store.finish(second.lease, &failed).await, "finish"));
    // Retried at once: due again, as attempt 3.
    let third = one_claim(store, lease).await;
    assert_eq!(third.lease.attempt, 3);
    let spent = AttemptOutcome::Failed {
        status: None,
        error: "connection refused".into(),
        retry_in: None,
    };
    assert!(ok(store.finish(third.lease, &spent).await, "finish"));
    let forward = ok(store.forward(first.lease.forward).await, "forward");
    let forward = forward.unwrap_or_else(|| panic!("the forward"));
    assert_eq!(forward.status, ForwardStatus::Failed);
    assert_eq!(forward.last_error.as_deref(), Some("connection refused"));
    let state = ok(store.endpoint(&acme).await, "endpoint");
    let state = state.unwrap_or_else(|| panic!("the endpoint"));
    assert!(state.failing_since.is_some());
    assert_eq!((state.pending, state.failed), (0, 1));
}

/// A forward that commits while a claim is under way, after the claim's
/// statement began but before `claim_forwards` read the due forwards, is
/// handed out with its reply, not leased and left out. Here the claim waits
/// for the `forwards` table, which another transaction holds while it
/// receives a reply, then commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_committed_while_a_claim_starts_is_handed_out() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    receive(store, "SM0", "+14155550100").await;
    let schema = test.schema();
    let mut holder = test.connection().await;
    let mut run = async |sql: String| {
        sqlx::query(&sql)
            .execute(&mut holder)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    run("BEGIN".to_owned()).await;
    run(format!(
        "LOCK TABLE {schema}.forwards IN ACCESS EXCLUSIVE MODE"
    ))
    .await;
    let claiming = {
        let store = store.clone();
        tokio::spawn(async move { store.claim(&request(10, Duration::from_secs(60))).await })
    };
    // The claim has begun and waits for the table.
    let mut watcher = test.connection().await;
    let deadline = Instant::now() + SETTLE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '%claim_forwards%'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"));
        if waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the claim never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run(format!(
        "SELECT * FROM {schema}.receive('SM1', '+14155550100', NULL, '+15005550006', 'hi', now())"
    ))
    .await;
    run("COMMIT".to_owned()).await;

    let claims = timeout(SETTLE, claiming)
        .await
        .unwrap_or_else(|_| panic!("the claim never ended"))
        .unwrap_or_else(|e| panic!("claim task: {e}"));
    let claims = ok(claims, "claim");
    let leased = all_forwards(&test).await;
    assert_eq!(
        claims.len(),
        2,
        "the forwards leased ({leased:?}) are not all handed out: {claims:?}"
    );
    assert!(
        claims
            .iter()
            .all(|c| c.lease.attempt == 1 && c.client == acme)
    );
    let replies: Vec<_> = claims.iter().map(|c| c.reply.clone()).collect();
    assert_eq!(whole_inbox(store, &acme).await, replies);
}

async fn one_claim(store: &PostgresStore, lease: Duration) -> ForwardClaim {
    let mut claims = ok(store.claim(&request(10, lease)).await, "claim");
    assert_eq!(claims.len(), 1, "{claims:?}");
    claims.remove(0)
}

/// At most `per_endpoint` of one client in flight, counting the worker's:
/// a client with a backlog at the head of the queue leaves room for the
/// others.
#[tokio::test]
async fn a_backlog_does_not_hide_other_clients() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let (acme, globex) = (client("acme"), client("globex"));
    for (owner, to) in [(&acme, "+14155550100"), (&globex, "+14155550101")] {
        endpoint(store, owner, true).await;
        assign(store, owner, to).await;
    }
    // More than a claim's window (migration 0009) of acme's: the claim
    // reads on, past the window, to globex's.
    for i in 0..100 {
        receive(store, &format!("A{i}"), "+14155550100").await;
    }
    receive(store, "G1", "+14155550101").await;
    receive(store, "G2", "+14155550101").await;
    let claims = ok(
        store
            .claim(&ClaimRequest {
                limit: 10,
                lease: Duration::from_secs(60),
                per_endpoint: 3,
                in_flight: vec![(acme.clone(), 1)],
            })
            .await,
        "claim",
    );
    let of = |owner: &ClientId| claims.iter().filter(|c| &c.client == owner).count();
    assert_eq!((of(&acme), of(&globex)), (2, 2), "{claims:?}");
    // Oldest due first: acme's two, then globex's.
    let replies: Vec<&str> = claims.iter().map(|c| c.reply.body.as_str()).collect();
    assert_eq!(replies, ["A0", "A1", "G1", "G2"]);
}

/// A claim reads a window of the due forwards, never the whole backlog,
/// even on a connection that made and kept its plans while the table was
/// empty (statistics lag a queue's swings; migration 0009): no sequential
/// scan, and a few rows fetched where 2,000 are due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reads_a_window_whatever_its_plans_were_made_for() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    let s = test.schema();
    let claim = format!("SELECT forward_id FROM {s}.claim_forwards(10, 60, 1000, '{{}}', '{{}}')");
    let mut conn = test.connection().await;
    for _ in 0..10 {
        let none: Vec<i64> = sqlx::query_scalar(&claim)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("claim: {e}"));
        assert!(none.is_empty());
    }
    let mut receives = JoinSet::new();
    for i in 0..2_000 {
        let store = store.clone();
        receives.spawn(async move { receive(&store, &format!("R{i}"), "+14155550100").await });
    }
    while let Some(done) = receives.join_next().await {
        done.unwrap_or_else(|e| panic!("receive: {e}"));
    }
    // In a transaction, so that its counters (pg_stat_xact_user_tables)
    // are this claim's alone; rolled back.
    let mut tx = sqlx::Connection::begin(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("begin: {e}"));
    let claimed: Vec<i64> = sqlx::query_scalar(&claim)
        .fetch_all(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(claimed.len(), 10);
    let (seq_scans, fetched): (i64, i64) = sqlx::query_as(
        "SELECT seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables \
         WHERE schemaname = $1 AND relname = 'forwards'",
    )
    .bind(store.schema())
    .fetch_one(&mut *tx)
    .await
    .unwrap_or_else(|e| panic!("counters: {e}"));
    assert_eq!(seq_scans, 0, "the claim scanned the forwards table");
    assert!(
        fetched < 200,
        "the claim fetched {fetched} forwards to take 10 of 2,000"
    );
}

/// Creating and deleting an endpoint while its client's replies arrive
/// leaves no forward without an endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_changing_under_receives_leave_no_stray_forward() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    assign(store, &acme, "+14155550100").await;
    let sender = Arc::new(test.second_store().await);
    let sending = tokio::spawn(async move {
        for i in 0..200 {
            let id = format!("SM{i}");
            let _ = ok(
                sender
                    .receive(reply(Some(&id), "+14155550100", &id, 1))
                    .await,
                "receive",
            );
        }
    });
    let admin = test.second_store().await;
    for round in 0..30 {
        endpoint(&admin, &acme, true).await;
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        ok(admin.delete_endpoint(&acme).await, "delete");
    }
    sending.await.unwrap_or_else(|e| panic!("sender: {e}"));
    assert!(
        all_forwards(&test).await.is_empty(),
        "forwards outlived their endpoint"
    );
    // The replies stay; with an endpoint again, a replay forwards them all.
    endpoint(store, &acme, true).await;
    let since = time::OffsetDateTime::UNIX_EPOCH;
    assert_eq!(ok(store.replay(&acme, since).await, "replay"), Some(200));
    assert_eq!(forwarded(&test).await, inbox_ids(store, &acme).await);
    assert_eq!(
        ok(store.replay(&client("nobody"), since).await, "replay"),
        None
    );
}

/// Replay: a forward for each reply delivered since the instant, new or
/// made due again, still one per reply; a disabled endpoint's forwards wait.
#[tokio::test]
async fn replay_and_retry_make_forwards_due_again() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    assign(store, &acme, "+14155550100").await;
    receive(store, "SM1", "+14155550100").await;
    endpoint(store, &acme, false).await;
    receive(store, "SM2", "+14155550100").await;
    assert_eq!(forwarded(&test).await.len(), 1, "SM2 only");
    assert!(
        ok(
            store.claim(&request(10, Duration::from_secs(60))).await,
            "claim"
        )
        .is_empty(),
        "a disabled endpoint's forwards wait"
    );
    endpoint(store, &acme, true).await;
    let claimed = one_claim(store, Duration::from_secs(60)).await;
    assert!(ok(
        store
            .finish(claimed.lease, &AttemptOutcome::Delivered { status: 200 })
            .await,
        "finish"
    ));
    let inbox = whole_inbox(store, &acme).await;
    let since = inbox[1].delivery.at;
    assert_eq!(ok(store.replay(&acme, since).await, "replay"), Some(1));
    let again = one_claim(store, Duration::from_secs(60)).await;
    assert_eq!(
        again.lease,
        ibiki_core::Lease {
            attempt: 2,
            ..claimed.lease
        }
    );
    let since = inbox[0].delivery.at;
    assert_eq!(ok(store.replay(&acme, since).await, "replay"), Some(2));
    assert_eq!(forwarded(&test).await, inbox_ids(store, &acme).await);
    // SM2's forward is in flight: it keeps its lease; SM1's is new.
    let claims = ok(
        store.claim(&request(10, Duration::from_secs(60))).await,
        "claim",
    );
    let bodies: Vec<&str> = claims.iter().map(|c| c.reply.body.as_str()).collect();
    assert_eq!(bodies, ["SM1"]);
    // A failed forward retried by hand is due at once, its attempts kept.
    let spent = AttemptOutcome::Failed {
        status: Some(500),
        error: "oops".into(),
        retry_in: None,
    };
    assert!(ok(store.finish(claims[0].lease, &spent).await, "finish"));
    let retried = ok(store.retry_forward(claims[0].lease.forward).await, "retry");
    let retried = retried.unwrap_or_else(|| panic!("the forward"));
    assert_eq!(
        (retried.status, retried.attempts),
        (ForwardStatus::Pending, 1)
    );
    assert_eq!(retried.last_status, Some(500));
    assert_eq!(
        one_claim(store, Duration::from_secs(60))
            .await
            .lease
            .attempt,
        2
    );
    assert_eq!(ok(store.retry_forward(u64::MAX).await, "retry"), None);
}

/// Listing: oldest first, by status, with cursors; a bad cursor is refused.
#[tokio::test]
async fn forwards_are_listed_by_client_and_status() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    for i in 0..5 {
        receive(store, &format!("SM{i}"), "+14155550100").await;
    }
    let first = one_claim_of(store, 1).await;
    assert!(ok(
        store
            .finish(first.lease, &AttemptOutcome::Delivered { status: 200 })
            .await,
        "finish"
    ));
    let mut ids = Vec::new();
    let mut page = PageRequest::new(2, None).unwrap_or_else(|e| panic!("{e}"));
    loop {
        let got = ok(store.forwards(&acme, None, &page).await, "forwards");
        ids.extend(got.items.iter().map(|f| f.id));
        match got.next {
            Some(next) if !got.items.is_empty() => {
                page = PageRequest::new(2, Some(next)).unwrap_or_else(|e| panic!("{e}"));
            }
            _ => break,
        }
    }
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let all = PageRequest::new(100, None).unwrap_or_else(|e| panic!("{e}"));
    let delivered = ok(
        store
            .forwards(&acme, Some(ForwardStatus::Delivered), &all)
            .await,
        "delivered",
    );
    assert_eq!(delivered.items.len(), 1);
    assert_eq!(delivered.items[0].id, first.lease.forward);
    assert_eq!(
        delivered.items[0].message_id.as_ref().map(|m| m.as_str()),
        Some("SM0")
    );
    let pending = ok(
        store
            .forwards(&acme, Some(ForwardStatus::Pending), &all)
            .await,
        "pending",
    );
    assert_eq!(pending.items.len(), 4);
    let bad = ibiki_core::Cursor::new("not-a-position").unwrap_or_else(|| panic!("a cursor"));
    let bad = PageRequest::new(2, Some(bad)).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        store.forwards(&acme, None, &bad).await,
        Err(StoreError::InvalidCursor)
    ));
    assert!(
        ok(
            store.forwards(&client("nobody"), None, &all).await,
            "nobody"
        )
        .items
        .is_empty()
    );
}

async fn one_claim_of(store: &PostgresStore, limit: u32) -> ForwardClaim {
    let mut claims = ok(
        store.claim(&request(limit, Duration::from_secs(60))).await,
        "claim",
    );
    assert!(!claims.is_empty());
    claims.remove(0)
}

/// A rotated secret signs beside the new one until its grace ends.
#[tokio::test]
async fn a_rotated_secret_signs_during_its_grace() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    let first = secret();
    let hook = url("https://hooks.example.com/acme");
    let put = ok(
        store.put_endpoint(&acme, &hook, true, first.clone()).await,
        "put",
    );
    assert_eq!(put.created_secret.as_ref(), Some(&first));
    let again = ok(
        store.put_endpoint(&acme, &hook, false, secret()).await,
        "put",
    );
    assert_eq!(again.created_secret, None, "the secret is kept");
    assert_eq!(again.endpoint.created_at, put.endpoint.created_at);
    let second = secret();
    let rotated = ok(store.rotate_secret(&acme, second.clone()).await, "rotate");
    let rotated = rotated.unwrap_or_else(|| panic!("the endpoint"));
    assert_eq!(
        (&rotated.current, rotated.previous.as_ref()),
        (&second, Some(&first))
    );
    assert_eq!(
        ok(store.endpoint_secrets(&acme).await, "secrets"),
        Some(rotated)
    );
    // The grace ends.
    let mut conn = test.connection().await;
    expire_previous(&test, &mut conn).await;
    let now = ok(store.endpoint_secrets(&acme).await, "secrets");
    assert_eq!(now.map(|s| s.previous), Some(None));
    assert_eq!(
        ok(
            store.rotate_secret(&client("nobody"), secret()).await,
            "rotate"
        ),
        None
    );
}

async fn expire_previous(test: &TestStore, conn: &mut PgConnection) {
    sqlx::query(&format!(
        "UPDATE {}.endpoints SET previous_until = now() - interval '1 second'",
        test.schema()
    ))
    .execute(conn)
    .await
    .unwrap_or_else(|e| panic!("expire: {e}"));
}

fn forward_signals_of(store: &PostgresStore) -> ForwardSignals {
    store
        .forward_signals()
        .unwrap_or_else(|| panic!("a connected store offers forwarding signals"))
}

/// Once a reader of `fence` is woken by a delivery `via` makes, the
/// store's listener has handled every notification committed before (a
/// listener hears them in commit order), forwarding ones included.
async fn fence(signals: &InboxSignals, via: &PostgresStore, fence: &str, to: &str) {
    let fence = client(fence);
    let mut reader = signals.subscribe(&fence);
    assign(via, &fence, to).await;
    receive(via, &format!("{fence}-reply"), to).await;
    timeout(SETTLE, reader.changed())
        .await
        .unwrap_or_else(|_| panic!("the fence: not woken"));
}

/// Whether a wake-up is waiting: consumes it. (A notify also leaves a
/// permit for the next wait when it woke a waiter.)
async fn drain(signals: &ForwardSignals) -> bool {
    timeout(Duration::from_millis(20), signals.notified())
        .await
        .is_ok()
}

/// A reply for a client with an enabled endpoint wakes the workers of
/// every store on the schema; one without an endpoint, or with a disabled
/// one, wakes nobody; enabling it does, as does a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_woken_when_a_forward_is_due() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let worker = test.second_store().await;
    let store = test.store();
    let inbox = worker
        .inbox_signals()
        .unwrap_or_else(|| panic!("inbox signals"));
    let forwards = forward_signals_of(&worker);
    let (acme, globex) = (client("acme"), client("globex"));
    endpoint(store, &acme, true).await;
    assign(store, &acme, "+14155550100").await;
    assign(store, &globex, "+14155550101").await;
    fence(&inbox, store, "fence-0", "+14155550190").await;
    assert!(
        drain(&forwards).await,
        "the listener's connection wakes the workers"
    );
    while drain(&forwards).await {}

    let started = Instant::now();
    let woken = forwards.notified();
    receive(store, "SM1", "+14155550100").await;
    let received = started.elapsed();
    timeout(WITHIN, woken)
        .await
        .unwrap_or_else(|_| panic!("not woken within {WITHIN:?} of a receive"));
    eprintln!(
        "a worker woken {:?} after the receive was called ({received:?} to receive)",
        started.elapsed()
    );
    // `notify` leaves a permit behind the waiter it woke.
    while drain(&forwards).await {}

    // Nothing to forward: nobody woken.
    receive(store, "SM2", "+14155550101").await;
    endpoint(store, &acme, false).await;
    receive(store, "SM3", "+14155550100").await;
    fence(&inbox, store, "fence-1", "+14155550191").await;
    assert!(!drain(&forwards).await, "woken with nothing to claim");

    // Enabled again, with SM3 due.
    endpoint(store, &acme, true).await;
    timeout(WITHIN, forwards.notified())
        .await
        .unwrap_or_else(|_| panic!("not woken by the endpoint enabled"));
    while drain(&forwards).await {}

    // A claim and a retry later wakes nobody; an outcome due at once, a
    // retry by hand of a failed forward do.
    let claims = ok(
        worker.claim(&request(10, Duration::from_secs(60))).await,
        "claim",
    );
    assert_eq!(claims.len(), 2);
    let later = AttemptOutcome::Failed {
        status: Some(500),
        error: "later".into(),
        retry_in: Some(Duration::from_secs(3600)),
    };
    assert!(ok(worker.finish(claims[0].lease, &later).await, "finish"));
    fence(&inbox, store, "fence-2", "+14155550192").await;
    assert!(!drain(&forwards).await, "woken by a claim or a later retry");
    let now = AttemptOutcome::Failed {
        status: Some(500),
        error: "now".into(),
        retry_in: Some(Duration::ZERO),
    };
    assert!(ok(worker.finish(claims[1].lease, &now).await, "finish"));
    timeout(WITHIN, forwards.notified())
        .await
        .unwrap_or_else(|_| panic!("not woken by an outcome due at once"));
    while drain(&forwards).await {}
    ok(worker.retry_forward(claims[0].lease.forward).await, "retry");
    timeout(WITHIN, forwards.notified())
        .await
        .unwrap_or_else(|_| panic!("not woken by a retry"));
}

/// The claim and the pending count read the partial index of pending
/// forwards, never the delivered ones: 20,000 delivered, 10 pending.
#[tokio::test]
async fn claims_read_the_due_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let acme = client("acme");
    endpoint(store, &acme, true).await;
    let s = test.schema();
    let mut conn = test.connection().await;
    let fill = format!(
        "INSERT INTO {s}.replies (to_number, from_address, body, received_at, client_id, \
         delivery_seq, delivery, delivered_at) \
         SELECT '+14155550100', '+15005550006', 'x', now(), 'acme', g, 'routed', now() \
         FROM generate_series(1, 20010) AS g; \
         INSERT INTO {s}.forwards (reply_id, client_id, status, next_attempt_at) \
         SELECT r.id, r.client_id, CASE WHEN r.delivery_seq <= 20000 THEN 'delivered' \
         ELSE 'pending' END, CASE WHEN r.delivery_seq > 20000 THEN now() END \
         FROM {s}.replies AS r; \
         ANALYZE {s}.replies; ANALYZE {s}.forwards"
    );
    sqlx::raw_sql(&fill)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The due forwards as `claim_forwards` reads them.
    let due = format!(
        "EXPLAIN SELECT f.id, f.client_id \
         FROM {s}.forwards AS f JOIN {s}.endpoints AS e ON e.client_id = f.client_id \
         WHERE f.status = 'pending' AND f.next_attempt_at <= now() \
         AND (f.leased_until IS NULL OR f.leased_until < now()) AND e.enabled \
         ORDER BY f.next_attempt_at, f.id"
    );
    let count = format!("EXPLAIN SELECT count(*) FROM {s}.forwards WHERE status = 'pending'");
    for explain in [due, count] {
        let lines: Vec<String> = sqlx::query_scalar(&explain)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{explain}: {e}"));
        let shown = lines.join("\n");
        assert!(shown.contains("forwards_due_idx"), "{shown}");
    }
    assert_eq!(ok(store.pending_forwards().await, "pending"), 10);
    assert_eq!(
        ok(
            store.claim(&request(5, Duration::from_secs(60))).await,
            "claim"
        )
        .len(),
        5
    );
}
