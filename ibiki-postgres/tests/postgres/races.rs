//! The races of the contract, each side on a pool (so connections) of its
//! own, over many rounds.

use std::collections::BTreeMap;
use std::sync::Arc;

use ibiki_core::testing::{client, number, reply, whole_held, whole_inbox};
use ibiki_core::{
    AssignmentStore, ClientId, Conflict, PageRequest, PhoneNumber, Receipt, ReplyStore, StoreError,
};
use tokio::task::JoinSet;

use crate::support::fresh_store;

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A reply sent to a number while another connection assigns that number
/// ends in the new owner's inbox: either routed there, or held and released
/// by that very assignment. Never held afterwards, never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receives_racing_assignments_end_in_the_inbox() {
    const LANES: usize = 8;
    const ROUNDS: usize = 40;
    let Some(test) = fresh_store().await else {
        return;
    };
    let receiver = Arc::new(test.second_store().await);
    let assigner = Arc::new(test.second_store().await);
    let mut lanes = JoinSet::new();
    for lane in 0..LANES {
        let (receiver, assigner) = (Arc::clone(&receiver), Arc::clone(&assigner));
        lanes.spawn(async move {
            let owner = client(&format!("c{}", lane % 3));
            for round in 0..ROUNDS {
                let n = number(&format!("+1628555{lane}{round:03}"));
                let id = format!("SM{lane}-{round}");
                let sent = reply(Some(&id), &n.to_string(), &id, round as i64);
                let wanted = [n];
                let (receipt, change) = tokio::join!(
                    receiver.receive(sent),
                    assigner.add_numbers(&owner, &wanted)
                );
                let (receipt, change) = (ok(receipt, "receive"), ok(change, "add"));
                match receipt {
                    Receipt::Routed(c) => {
                        assert_eq!(c, owner, "{id}");
                        assert_eq!(change.released, 0, "{id}: routed, nothing to release");
                    }
                    Receipt::Held => assert_eq!(change.released, 1, "{id}: held, then released"),
                    Receipt::Duplicate => panic!("{id}: a first send is no duplicate"),
                }
            }
        });
    }
    while let Some(joined) = lanes.join_next().await {
        joined.unwrap_or_else(|e| panic!("lane: {e}"));
    }
    assert!(whole_held(test.store()).await.is_empty(), "nothing held");
    let mut total = 0;
    for c in 0..3 {
        let owner = client(&format!("c{c}"));
        let inbox = whole_inbox(test.store(), &owner).await;
        let mut bodies: Vec<&str> = inbox.iter().map(|r| r.body.as_str()).collect();
        let received = bodies.len();
        bodies.sort_unstable();
        bodies.dedup();
        assert_eq!(bodies.len(), received, "a reply delivered twice to {owner}");
        for r in &inbox {
            let n = r.to.number().unwrap_or_else(|| panic!("parsed"));
            assert_eq!(
                ok(test.store().owner_of(n).await, "owner_of"),
                Some(owner.clone())
            );
        }
        total += received;
    }
    assert_eq!(total, LANES * ROUNDS, "every reply delivered once");
}

/// Receivers send (and resend) replies to a few numbers while assigners move
/// those numbers between clients, each on its own pool. Afterwards no reply
/// is held for an owned number, each is recorded once, and each routed reply
/// is in the inbox its receipt named.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receives_racing_reassignments_lose_nothing() {
    const RECEIVERS: usize = 4;
    const SENDS: usize = 120;
    let Some(test) = fresh_store().await else {
        return;
    };
    let numbers: Vec<PhoneNumber> = (0..6).map(|i| number(&format!("+3361234560{i}"))).collect();
    let clients: Vec<ClientId> = (0..3).map(|i| client(&format!("c{i}"))).collect();
    let mut tasks = JoinSet::new();
    for worker in 0..RECEIVERS {
        let (store, numbers) = (Arc::new(test.second_store().await), numbers.clone());
        tasks.spawn(async move {
            let mut routed = Vec::new();
            for i in 0..SENDS {
                let to = numbers[(i * 5 + worker) % numbers.len()].to_string();
                // Providers retry: every id is sent twice.
                let id = format!("w{worker}-{}", i / 2);
                let receipt = ok(
                    store.receive(reply(Some(&id), &to, &id, 0)).await,
                    "receive",
                );
                assert_eq!(receipt == Receipt::Duplicate, i % 2 == 1, "{id}");
                if let Receipt::Routed(c) = receipt {
                    routed.push((id, c));
                }
            }
            routed
        });
    }
    for worker in 0..2 {
        let store = Arc::new(test.second_store().await);
        let (numbers, clients) = (numbers.clone(), clients.clone());
        tasks.spawn(async move {
            for i in 0..60 {
                let n = numbers[(i + worker * 3) % numbers.len()];
                let from = &clients[i % clients.len()];
                let to = &clients[(i + 1) % clients.len()];
                ok(store.remove_numbers(from, &[n]).await, "remove");
                // Another assigner may hold it: a conflict is fine.
                match store.add_numbers(to, &[n]).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => panic!("add: {e}"),
                }
            }
            Vec::new()
        });
    }
    let mut routed: Vec<(String, ClientId)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        routed.extend(joined.unwrap_or_else(|e| panic!("task: {e}")));
    }
    let mut place: BTreeMap<String, Option<ClientId>> = BTreeMap::new();
    for c in &clients {
        for r in whole_inbox(test.store(), c).await {
            let twice = place.insert(r.body, Some(c.clone()));
            assert!(twice.is_none(), "recorded twice");
        }
    }
    for r in whole_held(test.store()).await {
        let n = r.to.number().unwrap_or_else(|| panic!("parsed"));
        let owner = ok(test.store().owner_of(n).await, "owner_of");
        assert_eq!(owner, None, "held reply to owned number {n}");
        assert!(place.insert(r.body, None).is_none(), "recorded twice");
    }
    assert_eq!(place.len(), RECEIVERS * SENDS / 2, "every message recorded");
    for (id, c) in routed {
        assert_eq!(
            place.get(&id),
            Some(&Some(c)),
            "{id} is where its receipt said"
        );
    }
}

/// Two clients assigning the same numbers at once, on separate connections:
/// exactly one gets them all, the other a conflict for each, whatever order
/// the numbers are given in (the locks are taken in one order: no deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_assignments_of_a_number_have_one_winner() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let (a, b) = (test.second_store().await, test.second_store().await);
    let (acme, globex) = (client("acme"), client("globex"));
    for round in 0..100 {
        let n = number(&format!("+1629555{round:04}"));
        let m = number(&format!("+1629556{round:04}"));
        let (forward, backward) = ([n, m], [m, n]);
        let (got_a, got_b) = if round % 2 == 0 {
            tokio::join!(
                a.add_numbers(&acme, &forward),
                b.add_numbers(&globex, &backward)
            )
        } else {
            tokio::join!(
                a.add_numbers(&acme, &backward),
                b.replace_numbers(&globex, &forward)
            )
        };
        let (winner, lost) = match (got_a, got_b) {
            (Ok(_), Err(lost)) => (&acme, lost),
            (Err(lost), Ok(_)) => (&globex, lost),
            other => panic!("round {round}: exactly one wins, got {other:?}"),
        };
        let expected: Vec<Conflict> = [n, m]
            .into_iter()
            .map(|phone_number| Conflict {
                phone_number,
                owner: winner.clone(),
            })
            .collect();
        match lost {
            StoreError::Conflict(conflicts) => assert_eq!(conflicts, expected, "round {round}"),
            other => panic!("round {round}: the loser gets a conflict, got {other:?}"),
        }
        for number in [n, m] {
            let owner = ok(test.store().owner_of(number).await, "owner_of");
            assert_eq!(owner.as_ref(), Some(winner), "round {round}");
        }
    }
}

/// A reader polling an inbox with its cursor, while replies are routed to it
/// from several connections and held ones are released into it, sees every
/// reply, in the inbox's order: no delivery commits behind its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_polling_reader_never_skips_a_reply() {
    const SENDERS: usize = 4;
    const SENDS: usize = 60;
    let Some(test) = fresh_store().await else {
        return;
    };
    let acme = client("acme");
    let owned: Vec<PhoneNumber> = (0..4)
        .map(|i| number(&format!("+4915112345{i:02}")))
        .collect();
    let moving: Vec<PhoneNumber> = (4..8)
        .map(|i| number(&format!("+4915112345{i:02}")))
        .collect();
    ok(test.store().add_numbers(&acme, &owned).await, "add");
    let mut senders = JoinSet::new();
    for worker in 0..SENDERS {
        let store = test.second_store().await;
        let to: Vec<PhoneNumber> = owned.iter().chain(&moving).copied().collect();
        senders.spawn(async move {
            for i in 0..SENDS {
                let n = to[(i * 3 + worker) % to.len()].to_string();
                let id = format!("w{worker}-{i}");
                let receipt = ok(store.receive(reply(Some(&id), &n, &id, 0)).await, "receive");
                assert_ne!(receipt, Receipt::Duplicate, "{id}");
            }
        });
    }
    let assigner = test.second_store().await;
    let (assigner_acme, moving_numbers) = (acme.clone(), moving.clone());
    senders.spawn(async move {
        for i in 0..40 {
            let n = [moving_numbers[i % moving_numbers.len()]];
            ok(assigner.add_numbers(&assigner_acme, &n).await, "add");
            ok(assigner.remove_numbers(&assigner_acme, &n).await, "remove");
        }
    });
    let reader = test.second_store().await;
    let mut seen: Vec<String> = Vec::new();
    let mut page = PageRequest::first(7);
    while !senders.is_empty() {
        poll(&reader, &acme, &mut page, &mut seen).await;
        while let Some(joined) = senders.try_join_next() {
            joined.unwrap_or_else(|e| panic!("task: {e}"));
        }
    }
    // Hand the replies still held over too, then read to the end.
    ok(test.store().add_numbers(&acme, &moving).await, "add");
    while poll(&reader, &acme, &mut page, &mut seen).await > 0 {}
    let inbox: Vec<String> = whole_inbox(test.store(), &acme)
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(inbox.len(), SENDERS * SENDS, "every reply delivered");
    assert_eq!(seen, inbox, "the reader saw the inbox, in order");
}

/// Reads the page after `page`'s cursor into `seen` and moves the cursor on;
/// returns how many replies it read.
async fn poll(
    store: &impl ReplyStore,
    client: &ClientId,
    page: &mut PageRequest,
    seen: &mut Vec<String>,
) -> usize {
    let got = ok(store.inbox(client, page).await, "inbox");
    seen.extend(got.items.iter().map(|r| r.body.clone()));
    if let Some(next) = page.next(&got) {
        *page = next;
    }
    got.items.len()
}
