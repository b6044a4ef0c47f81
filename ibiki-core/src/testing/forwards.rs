//! The rules of the [`ForwardStore`] contract, one async function each, run
//! by [`forward_store_tests!`](crate::forward_store_tests) against a fresh
//! store, and the forwarding property.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::testing::property::run_property;
use crate::testing::{client, number, reply, whole_inbox};
use crate::{
    AddressPolicy, AttemptOutcome, ClaimRequest, ClientId, EndpointSecret, EndpointUrl, Forward,
    ForwardClaim, ForwardStatus, ForwardStore, HeldTarget, Lease, PageRequest, StoreError,
};

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

fn url(path: &str) -> EndpointUrl {
    EndpointUrl::parse(&format!("https://{path}"), AddressPolicy::PublicOnly)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn secret() -> EndpointSecret {
    EndpointSecret::generate().unwrap_or_else(|e| panic!("secret: {e}"))
}

async fn endpoint<S: ForwardStore + ?Sized>(store: &S, id: &str, enabled: bool) {
    let url = url(&format!("{id}.example.com/sms"));
    ok(
        store
            .put_endpoint(&client(id), &url, enabled, secret())
            .await,
        "put_endpoint",
    );
}

/// Every forward of `id`, page by page (pages of 2, to exercise cursors).
async fn all_forwards<S: ForwardStore + ?Sized>(
    store: &S,
    id: &str,
    status: Option<ForwardStatus>,
) -> Vec<Forward> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = ok(store.forwards(&client(id), status, &page).await, "forwards");
        all.extend(got.items.iter().cloned());
        match page.next(&got) {
            Some(next) => page = next,
            None => return all,
        }
    }
}

/// A claim of up to `limit`, with `per_endpoint` and nothing in flight.
fn request(limit: u32, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        limit,
        lease,
        per_endpoint: limit,
        in_flight: Vec::new(),
    }
}

const LONG: Duration = Duration::from_secs(600);

async fn claim<S: ForwardStore + ?Sized>(
    store: &S,
    limit: u32,
    lease: Duration,
) -> Vec<ForwardClaim> {
    ok(store.claim(&request(limit, lease)).await, "claim")
}

fn delivered() -> AttemptOutcome {
    AttemptOutcome::Delivered { status: 200 }
}

fn failed(retry_in: Option<Duration>) -> AttemptOutcome {
    AttemptOutcome::Failed {
        status: Some(500),
        error: "down".to_owned(),
        retry_in,
    }
}

/// A reply routed, released or re-routed into the inbox of a client with an
/// endpoint gets exactly one forward; a duplicate, a held reply or a client
/// without an endpoint gets none.
pub async fn forwards_are_created_with_the_reply<S: ForwardStore>(store: S) {
    let (acme, bob) = (client("acme"), client("bob"));
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    ok(
        store.add_numbers(&bob, &[number("+14155550101")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;

    let _ = ok(
        store
            .receive(reply(Some("m1"), "+14155550100", "routed", 1))
            .await,
        "receive",
    );
    let _ = ok(
        store
            .receive(reply(Some("m1"), "+14155550100", "again", 2))
            .await,
        "receive",
    );
    let _ = ok(
        store
            .receive(reply(None, "+14155550101", "to bob", 3))
            .await,
        "receive",
    );
    let _ = ok(
        store.receive(reply(None, "+14155550102", "held", 4)).await,
        "receive",
    );
    let _ = ok(
        store
            .receive(reply(None, "not a number", "unparsed", 5))
            .await,
        "receive",
    );
    let forwards = all_forwards(&store, "acme", None).await;
    assert_eq!(
        forwards.len(),
        1,
        "one forward for the routed reply, none for its duplicate"
    );
    let inbox = whole_inbox(&store, &acme).await;
    assert_eq!(forwards[0].reply_id, inbox[0].id);
    assert_eq!(
        forwards[0].message_id.as_ref().map(|m| m.as_str()),
        Some("m1")
    );
    assert_eq!(forwards[0].status, ForwardStatus::Pending);
    assert_eq!(forwards[0].attempts, 0);
    assert!(
        all_forwards(&store, "bob", None).await.is_empty(),
        "bob has no endpoint"
    );

    ok(
        store.add_numbers(&acme, &[number("+14155550102")]).await,
        "release",
    );
    let held = ok(store.held(&PageRequest::first(10)).await, "held").items;
    let moved = ok(
        store
            .deliver_held(held[0].id, &HeldTarget::Client(acme.clone()))
            .await,
        "deliver_held",
    );
    let forwards = all_forwards(&store, "acme", None).await;
    let inbox = whole_inbox(&store, &acme).await;
    assert_eq!(inbox.len(), 3);
    let mut forwarded: Vec<u64> = forwards.iter().map(|f| f.reply_id).collect();
    forwarded.sort_unstable();
    let mut in_inbox: Vec<u64> = inbox.iter().map(|r| r.id).collect();
    in_inbox.sort_unstable();
    assert_eq!(
        forwarded, in_inbox,
        "released and re-routed replies get their forwards"
    );
    assert!(forwards.iter().any(|f| f.reply_id == moved.id));
    assert_eq!(ok(store.pending_forwards().await, "pending_forwards"), 3);
}

/// A claimed forward is leased to one worker: not handed out again until
/// its lease ends, then under a new lease; the superseded lease's outcome is
/// refused and changes nothing.
pub async fn claims_lease_each_forward_to_one_worker<S: ForwardStore>(store: S) {
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;
    let _ = ok(
        store.receive(reply(None, "+14155550100", "hi", 1)).await,
        "receive",
    );

    let first = claim(&store, 10, Duration::from_millis(1)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].lease.attempt, 1);
    assert_eq!(first[0].client, acme);
    let inbox = whole_inbox(&store, &acme).await;
    assert_eq!(
        first[0].reply, inbox[0],
        "the claim carries the reply as the inbox lists it"
    );
    assert_eq!(first[0].url, url("acme.example.com/sms"));

    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = claim(&store, 10, LONG).await;
    assert_eq!(second.len(), 1, "an ended lease is claimed again");
    assert_eq!(second[0].lease.attempt, 2);
    assert!(
        claim(&store, 10, LONG).await.is_empty(),
        "a live lease is not"
    );
    assert!(
        !ok(store.finish(first[0].lease, &delivered()).await, "finish"),
        "the superseded lease's outcome is refused"
    );
    let forward = ok(store.forward(second[0].lease.forward).await, "forward");
    assert_eq!(
        forward.map(|f| (f.status, f.attempts)),
        Some((ForwardStatus::Pending, 2))
    );
    assert!(ok(
        store.finish(second[0].lease, &delivered()).await,
        "finish"
    ));
    assert!(
        !ok(store.finish(second[0].lease, &failed(None)).await, "finish"),
        "an outcome is recorded once"
    );
}

/// Delivered is final; a failure with a retry is due after it; a failure
/// without one is `failed` until retried by hand, and attempts keep
/// counting.
pub async fn outcomes_settle_forwards<S: ForwardStore>(store: S) {
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;
    let _ = ok(
        store.receive(reply(None, "+14155550100", "one", 1)).await,
        "receive",
    );
    let _ = ok(
        store.receive(reply(None, "+14155550100", "two", 2)).await,
        "receive",
    );

    let claims = claim(&store, 10, LONG).await;
    assert_eq!(claims.len(), 2);
    let (one, two) = (claims[0].lease, claims[1].lease);
    assert!(ok(store.finish(one, &delivered()).await, "finish"));
    assert!(ok(
        store
            .finish(two, &failed(Some(Duration::from_millis(200))))
            .await,
        "finish"
    ));
    let state = ok(store.endpoint(&acme).await, "endpoint").unwrap_or_else(|| panic!("endpoint"));
    assert!(state.last_delivered_at.is_some());
    assert!(
        state.failing_since.is_some(),
        "a failed attempt marks the endpoint failing"
    );
    assert_eq!((state.pending, state.failed), (1, 0));
    let retrying =
        ok(store.forward(two.forward).await, "forward").unwrap_or_else(|| panic!("forward"));
    assert_eq!(retrying.status, ForwardStatus::Pending);
    assert_eq!(retrying.last_status, Some(500));
    assert_eq!(retrying.last_error.as_deref(), Some("down"));
    assert!(retrying.next_attempt_at > retrying.last_attempt_at);
    assert!(
        claim(&store, 10, LONG).await.is_empty(),
        "not due before its retry"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = claim(&store, 10, LONG).await;
    assert_eq!(
        again.iter().map(|c| c.lease.forward).collect::<Vec<_>>(),
        [two.forward]
    );
    assert!(ok(
        store.finish(again[0].lease, &failed(None)).await,
        "finish"
    ));
    let spent =
        ok(store.forward(two.forward).await, "forward").unwrap_or_else(|| panic!("forward"));
    assert_eq!(
        (spent.status, spent.attempts, spent.next_attempt_at),
        (ForwardStatus::Failed, 2, None)
    );
    assert!(
        claim(&store, 10, LONG).await.is_empty(),
        "failed and delivered are final"
    );
    assert_eq!(ok(store.pending_forwards().await, "pending_forwards"), 0);
    let state = ok(store.endpoint(&acme).await, "endpoint").unwrap_or_else(|| panic!("endpoint"));
    assert_eq!((state.pending, state.failed), (0, 1));

    let retried = ok(store.retry_forward(two.forward).await, "retry");
    assert_eq!(retried.map(|f| f.status), Some(ForwardStatus::Pending));
    let by_hand = claim(&store, 10, LONG).await;
    assert_eq!(by_hand.len(), 1, "a retried forward is due at once");
    assert_eq!(by_hand[0].lease.attempt, 3, "attempts keep counting");
    assert!(ok(
        store.finish(by_hand[0].lease, &delivered()).await,
        "finish"
    ));
    let state = ok(store.endpoint(&acme).await, "endpoint").unwrap_or_else(|| panic!("endpoint"));
    assert_eq!(
        state.failing_since, None,
        "a delivery ends the failing spell"
    );
    assert_eq!(ok(store.retry_forward(u64::MAX / 2).await, "retry"), None);
    assert_eq!(ok(store.forward(u64::MAX / 2).await, "forward"), None);
}

/// A batch of outcomes is recorded as one outcome after another would be:
/// each answered on its own (a superseded lease, or a second outcome of one
/// lease, is refused and changes nothing), and an endpoint's state is the
/// one its last outcome in the batch leaves.
pub async fn outcomes_are_recorded_in_batches<S: ForwardStore>(store: S) {
    for (id, to) in [("acme", "+14155550100"), ("bob", "+14155550101")] {
        ok(
            store.add_numbers(&client(id), &[number(to)]).await,
            "assign",
        );
        endpoint(&store, id, true).await;
        for n in 0..2 {
            let _ = ok(store.receive(reply(None, to, "x", n)).await, "receive");
        }
    }
    assert!(ok(store.finish_all(&[]).await, "finish_all").is_empty());
    let stale = claim(&store, 1, Duration::ZERO).await;
    assert_eq!(stale.len(), 1);
    let claims = claim(&store, 10, LONG).await;
    assert_eq!(claims.len(), 4, "the ended lease is claimed again");
    let lease_of = |id: &str, n: usize| {
        claims
            .iter()
            .filter(|c| c.client == client(id))
            .nth(n)
            .map(|c| c.lease)
            .unwrap_or_else(|| panic!("{id}: claim {n}"))
    };
    let later = Some(Duration::from_secs(600));
    let batch = [
        (stale[0].lease, delivered()),
        (lease_of("acme", 0), delivered()),
        (lease_of("acme", 1), failed(later)),
        (lease_of("bob", 0), failed(later)),
        (lease_of("bob", 1), delivered()),
        (lease_of("bob", 1), failed(None)),
    ];
    assert_eq!(
        ok(store.finish_all(&batch).await, "finish_all"),
        [false, true, true, true, true, false],
        "each outcome answered as `finish` would, in order"
    );
    let status =
        async |lease: Lease| ok(store.forward(lease.forward).await, "forward").map(|f| f.status);
    for (lease, expected) in [
        (lease_of("acme", 0), ForwardStatus::Delivered),
        (lease_of("acme", 1), ForwardStatus::Pending),
        (lease_of("bob", 0), ForwardStatus::Pending),
        (lease_of("bob", 1), ForwardStatus::Delivered),
    ] {
        assert_eq!(status(lease).await, Some(expected), "{lease:?}");
    }
    let state = async |id: &str| {
        ok(store.endpoint(&client(id)).await, "endpoint")
            .unwrap_or_else(|| panic!("{id}: endpoint"))
    };
    let acme = state("acme").await;
    assert!(acme.last_delivered_at.is_some());
    assert!(
        acme.failing_since.is_some(),
        "acme's last outcome failed: it is failing"
    );
    let bob = state("bob").await;
    assert!(bob.last_delivered_at.is_some());
    assert_eq!(
        bob.failing_since, None,
        "bob's last outcome was delivered: it is not failing"
    );
    assert!(
        claim(&store, 10, LONG).await.is_empty(),
        "nothing due: two delivered, two waiting for their retry"
    );
}

/// A disabled endpoint's forwards wait; enabled again, they go. A deleted
/// endpoint's forwards are dropped, and its replies stay in the inbox.
pub async fn disabled_endpoints_wait_and_deleted_ones_drop<S: ForwardStore>(store: S) {
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    endpoint(&store, "acme", false).await;
    let _ = ok(
        store.receive(reply(None, "+14155550100", "hi", 1)).await,
        "receive",
    );
    assert_eq!(
        all_forwards(&store, "acme", Some(ForwardStatus::Pending))
            .await
            .len(),
        1
    );
    assert!(
        claim(&store, 10, LONG).await.is_empty(),
        "paused: nothing is attempted"
    );

    endpoint(&store, "acme", true).await;
    let claims = claim(&store, 10, LONG).await;
    assert_eq!(claims.len(), 1, "enabled again: the queued forward goes");

    assert!(ok(store.delete_endpoint(&acme).await, "delete"));
    assert!(
        !ok(store.delete_endpoint(&acme).await, "delete"),
        "deleted once"
    );
    assert_eq!(ok(store.endpoint(&acme).await, "endpoint"), None);
    assert_eq!(
        ok(store.forward(claims[0].lease.forward).await, "forward"),
        None
    );
    assert!(
        !ok(store.finish(claims[0].lease, &delivered()).await, "finish"),
        "a dropped forward's outcome is refused"
    );
    assert_eq!(whole_inbox(&store, &acme).await.len(), 1, "the reply stays");
    let _ = ok(
        store.receive(reply(None, "+14155550100", "after", 2)).await,
        "receive",
    );
    assert!(all_forwards(&store, "acme", None).await.is_empty());
    assert_eq!(ok(store.pending_forwards().await, "pending_forwards"), 0);
}

/// A claim takes at most `limit` forwards, and at most the worker's room for
/// each endpoint: a busy client's backlog leaves room for the others.
pub async fn claims_respect_the_per_endpoint_cap<S: ForwardStore>(store: S) {
    let (acme, bob) = (client("acme"), client("bob"));
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    ok(
        store.add_numbers(&bob, &[number("+14155550101")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;
    endpoint(&store, "bob", true).await;
    for i in 0..5 {
        let _ = ok(
            store.receive(reply(None, "+14155550100", "a", i)).await,
            "receive",
        );
    }
    for i in 5..7 {
        let _ = ok(
            store.receive(reply(None, "+14155550101", "b", i)).await,
            "receive",
        );
    }
    let request = ClaimRequest {
        limit: 10,
        lease: LONG,
        per_endpoint: 2,
        in_flight: vec![(acme.clone(), 1)],
    };
    let claims = ok(store.claim(&request).await, "claim");
    let count = |who: &ClientId| claims.iter().filter(|c| &c.client == who).count();
    assert_eq!((count(&acme), count(&bob)), (1, 2));
    let claims = claim(&store, 2, LONG).await;
    assert_eq!(claims.len(), 2, "at most the limit");
    let inbox = whole_inbox(&store, &acme).await;
    assert_eq!(claims[0].reply.id, inbox[1].id, "oldest due first");
}

/// A created endpoint shows its secret once; a changed one keeps it; a
/// rotated one signs beside its successor.
pub async fn secrets_are_kept_and_rotated<S: ForwardStore>(store: S) {
    let acme = client("acme");
    let first = secret();
    let put = ok(
        store
            .put_endpoint(&acme, &url("a.example.com/"), true, first.clone())
            .await,
        "put_endpoint",
    );
    assert_eq!(put.created_secret.as_ref(), Some(&first));
    assert!(put.endpoint.enabled);
    let changed = ok(
        store
            .put_endpoint(&acme, &url("b.example.com/"), false, secret())
            .await,
        "put_endpoint",
    );
    assert_eq!(changed.created_secret, None, "a change keeps the secret");
    assert_eq!(changed.endpoint.created_at, put.endpoint.created_at);
    assert_eq!(changed.endpoint.url, url("b.example.com/"));
    let secrets =
        ok(store.endpoint_secrets(&acme).await, "secrets").unwrap_or_else(|| panic!("secrets"));
    assert_eq!((secrets.current, secrets.previous), (first.clone(), None));

    let second = secret();
    let rotated = ok(store.rotate_secret(&acme, second.clone()).await, "rotate");
    let rotated = rotated.unwrap_or_else(|| panic!("rotate"));
    assert_eq!(
        (rotated.current, rotated.previous),
        (second.clone(), Some(first))
    );
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    ok(
        store
            .put_endpoint(&acme, &url("b.example.com/"), true, secret())
            .await,
        "enable",
    );
    let _ = ok(
        store.receive(reply(None, "+14155550100", "hi", 1)).await,
        "receive",
    );
    let claims = claim(&store, 1, LONG).await;
    assert_eq!(
        claims[0].secrets.current, second,
        "both secrets sign during the grace"
    );
    assert!(claims[0].secrets.previous.is_some());
    assert_eq!(
        ok(
            store.rotate_secret(&client("bob"), secret()).await,
            "rotate"
        ),
        None
    );
    assert_eq!(
        ok(store.endpoint_secrets(&client("bob")).await, "secrets"),
        None
    );
}

/// Replay makes each inbox reply since an instant due again: a new forward
/// where it had none, the same one again where it had one.
pub async fn replay_queues_each_reply_once<S: ForwardStore>(store: S) {
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    assert_eq!(
        ok(
            store.replay(&acme, time::OffsetDateTime::UNIX_EPOCH).await,
            "replay"
        ),
        None
    );
    let _ = ok(
        store
            .receive(reply(None, "+14155550100", "before", 1))
            .await,
        "receive",
    );
    endpoint(&store, "acme", true).await;
    let _ = ok(
        store.receive(reply(None, "+14155550100", "after", 2)).await,
        "receive",
    );
    let claims = claim(&store, 10, LONG).await;
    assert_eq!(
        claims.len(),
        1,
        "a reply from before the endpoint has no forward"
    );
    assert!(ok(
        store.finish(claims[0].lease, &delivered()).await,
        "finish"
    ));

    let inbox = whole_inbox(&store, &acme).await;
    let queued = ok(store.replay(&acme, inbox[0].delivery.at).await, "replay");
    assert_eq!(queued, Some(2));
    let forwards = all_forwards(&store, "acme", None).await;
    assert_eq!(forwards.len(), 2, "still one forward per reply");
    assert!(forwards.iter().all(|f| f.status == ForwardStatus::Pending));
    let later = inbox[1].delivery.at + time::Duration::seconds(1);
    assert_eq!(ok(store.replay(&acme, later).await, "replay"), Some(0));
    assert_eq!(claim(&store, 10, LONG).await.len(), 2);
}

/// Forwards are listed per client, oldest first, filtered by status, page by
/// page; a foreign cursor is refused.
pub async fn forwards_are_listed_by_status<S: ForwardStore>(store: S) {
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;
    for i in 0..5 {
        let _ = ok(
            store.receive(reply(None, "+14155550100", "x", i)).await,
            "receive",
        );
    }
    let claims = claim(&store, 2, LONG).await;
    for c in &claims {
        assert!(ok(store.finish(c.lease, &delivered()).await, "finish"));
    }
    let all = all_forwards(&store, "acme", None).await;
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(
        all_forwards(&store, "acme", Some(ForwardStatus::Delivered))
            .await
            .len(),
        2
    );
    assert_eq!(
        all_forwards(&store, "acme", Some(ForwardStatus::Pending))
            .await
            .len(),
        3
    );
    assert!(
        all_forwards(&store, "acme", Some(ForwardStatus::Failed))
            .await
            .is_empty()
    );
    assert!(all_forwards(&store, "bob", None).await.is_empty());
    let foreign =
        PageRequest::new(2, crate::Cursor::new("not-a-cursor")).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        store.forwards(&acme, None, &foreign).await,
        Err(StoreError::InvalidCursor)
    ));
}

/// A store with worker wake-ups wakes them when a reply reaches an inbox of
/// a client with an endpoint.
pub async fn forward_signals_wake_workers<S: ForwardStore>(store: S) {
    let Some(signals) = store.forward_signals() else {
        return;
    };
    let acme = client("acme");
    ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "assign",
    );
    endpoint(&store, "acme", true).await;
    // Whatever the setup signalled is spent first.
    let _ = tokio::time::timeout(Duration::from_millis(200), signals.notified()).await;
    let woken = signals.notified();
    let _ = ok(
        store.receive(reply(None, "+14155550100", "hi", 1)).await,
        "receive",
    );
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .unwrap_or_else(|_| panic!("no wake-up within 5 s of a forwarded reply"));
}

/// One step of the forwarding property.
#[derive(Debug, Clone)]
pub enum ForwardOp {
    /// A reply to number `to` (an index into the property's numbers).
    Receive {
        /// The number.
        to: usize,
    },
    /// Client `client` gets number `number`.
    Assign {
        /// The client.
        client: usize,
        /// The number.
        number: usize,
    },
    /// The oldest held reply goes to client `client`.
    Reroute {
        /// The client.
        client: usize,
    },
    /// A worker claims up to `limit` with a lease that ends at once
    /// (`expiring`) or not.
    Claim {
        /// How many.
        limit: u32,
        /// Whether the lease ends at once.
        expiring: bool,
    },
    /// The outcome of outstanding claim `claim` (modulo their count).
    Finish {
        /// Which claim.
        claim: usize,
        /// 0: delivered, 1: failed with a retry due now, 2: failed for good.
        outcome: u8,
    },
}

const PROPERTY_NUMBERS: [&str; 3] = ["+14155550100", "+14155550101", "+14155550102"];
/// Clients 0 and 1 have endpoints; client 2 has none.
const PROPERTY_CLIENTS: [&str; 3] = ["acme", "bob", "carol"];

fn forward_op() -> impl Strategy<Value = ForwardOp> {
    prop_oneof![
        3 => (0..3usize).prop_map(|to| ForwardOp::Receive { to }),
        1 => (0..3usize, 0..3usize).prop_map(|(client, number)| ForwardOp::Assign { client, number }),
        1 => (0..3usize).prop_map(|client| ForwardOp::Reroute { client }),
        2 => (1..4u32, any::<bool>()).prop_map(|(limit, expiring)| ForwardOp::Claim { limit, expiring }),
        2 => (0..8usize, 0..3u8).prop_map(|(claim, outcome)| ForwardOp::Finish { claim, outcome }),
    ]
}

/// Runs the forwarding property against stores made by `factory`: under any
/// interleaving of receives, assignments, re-routes, claims, lease expiries
/// and outcomes, once the workers have drained the queue, every inbox reply
/// of a client with an endpoint has exactly one forward, `delivered` or
/// `failed`, and a client without one has none.
pub fn forwarding_property<S, F, Fut>(factory: F, cases: u32)
where
    S: ForwardStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    run_property(
        factory,
        cases,
        prop::collection::vec(forward_op(), 1..=40),
        "sequence",
        async |store, ops: &Vec<ForwardOp>| run_forward_ops(store, ops).await,
    );
}

async fn run_forward_ops<S: ForwardStore>(
    store: &S,
    ops: &[ForwardOp],
) -> Result<(), TestCaseError> {
    let store_error = |e: StoreError| TestCaseError::fail(format!("store: {e}"));
    for id in &PROPERTY_CLIENTS[..2] {
        endpoint(store, id, true).await;
    }
    let mut outstanding: Vec<Lease> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            ForwardOp::Receive { to } => {
                let _ = store
                    .receive(reply(None, PROPERTY_NUMBERS[to], "x", step as i64))
                    .await
                    .map_err(store_error)?;
            }
            ForwardOp::Assign {
                client: c,
                number: n,
            } => {
                // A conflict changes nothing: fine for this property.
                match store
                    .add_numbers(&client(PROPERTY_CLIENTS[c]), &[number(PROPERTY_NUMBERS[n])])
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(store_error(e)),
                }
            }
            ForwardOp::Reroute { client: c } => {
                let held = store
                    .held(&PageRequest::first(1))
                    .await
                    .map_err(store_error)?;
                if let Some(first) = held.items.first() {
                    let target = HeldTarget::Client(client(PROPERTY_CLIENTS[c]));
                    store
                        .deliver_held(first.id, &target)
                        .await
                        .map_err(store_error)?;
                }
            }
            ForwardOp::Claim { limit, expiring } => {
                let lease = if expiring { Duration::ZERO } else { LONG };
                let claims = store
                    .claim(&request(limit, lease))
                    .await
                    .map_err(store_error)?;
                outstanding.extend(claims.iter().map(|c| c.lease));
            }
            ForwardOp::Finish { claim, outcome } => {
                if outstanding.is_empty() {
                    continue;
                }
                let lease = outstanding.remove(claim % outstanding.len());
                let outcome = match outcome {
                    0 => delivered(),
                    1 => failed(Some(Duration::ZERO)),
                    _ => failed(None),
                };
                store.finish(lease, &outcome).await.map_err(store_error)?;
            }
        }
    }
    // The workers drain the queue: claims whose outcomes are lost (their
    // leases end at once), then claims that deliver.
    let lost: Vec<_> = outstanding
        .into_iter()
        .map(|lease| (lease, failed(Some(Duration::ZERO))))
        .collect();
    store.finish_all(&lost).await.map_err(store_error)?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    for _ in 0..1_000 {
        let claims = store
            .claim(&request(100, LONG))
            .await
            .map_err(store_error)?;
        if claims.is_empty() {
            break;
        }
        let outcomes: Vec<_> = claims.iter().map(|c| (c.lease, delivered())).collect();
        store.finish_all(&outcomes).await.map_err(store_error)?;
    }
    prop_assert_eq!(
        store.pending_forwards().await.map_err(store_error)?,
        0,
        "drained"
    );
    for (i, id) in PROPERTY_CLIENTS.iter().enumerate() {
        let inbox = whole_inbox(store, &client(id)).await;
        let forwards = all_forwards(store, id, None).await;
        let mut per_reply: HashMap<u64, usize> = HashMap::new();
        for f in &forwards {
            prop_assert!(
                matches!(f.status, ForwardStatus::Delivered | ForwardStatus::Failed),
                "{:?} ended {:?}",
                f,
                f.status
            );
            *per_reply.entry(f.reply_id).or_default() += 1;
        }
        if i < 2 {
            prop_assert_eq!(
                per_reply.len(),
                inbox.len(),
                "{}: a forward per inbox reply",
                id
            );
            for r in &inbox {
                prop_assert_eq!(
                    per_reply.get(&r.id),
                    Some(&1),
                    "{}: reply {} forwarded once",
                    id,
                    r.id
                );
            }
        } else {
            prop_assert!(forwards.is_empty(), "{} has no endpoint", id);
        }
    }
    Ok(())
}

/// Sequences the forwarding property runs by default.
pub const FORWARDING_CASES: u32 = 64;

/// Expands to one test per rule of the [`ForwardStore`] contract and the
/// forwarding property, against stores from `$factory`.
#[macro_export]
macro_rules! forward_store_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            forwards_are_created_with_the_reply,
            claims_lease_each_forward_to_one_worker,
            outcomes_settle_forwards,
            outcomes_are_recorded_in_batches,
            disabled_endpoints_wait_and_deleted_ones_drop,
            claims_respect_the_per_endpoint_cap,
            secrets_are_kept_and_rotated,
            replay_queues_each_reply_once,
            forwards_are_listed_by_status,
            forward_signals_wake_workers
        );

        #[test]
        fn forwarding_property() {
            $crate::testing::forwarding_property($factory, $crate::testing::FORWARDING_CASES);
        }
    };
}
