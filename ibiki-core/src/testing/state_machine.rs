//! The state-machine property: random interleavings of assignment changes and
//! receives (with retried message ids) run against a store and the
//! [`Model`]; after every step both agree on everything observable, and every
//! reply is in exactly one place. The ownership history is checked at every
//! step too: each number's events match the model's, and `owner_at` just
//! before and at the instant the store gave a change answers the model's
//! owner before and after it.

use std::collections::BTreeMap;
use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::conformance::{
    client, comparable, number, reply, whole_held, whole_history, whole_inbox,
};
use super::model::Model;
use super::property::run_property;
use crate::{Change, ClientId, PageRequest, PhoneNumber, ReplyStore, StoreError};

/// Numbers the operations draw from: few, so that they collide.
pub const NUMBERS: [&str; 6] = [
    "+14155550100",
    "+14155550101",
    "+14155550102",
    "+442079460958",
    "+4930123456",
    "+61212345678",
];
/// Clients the operations draw from.
pub const CLIENTS: [&str; 3] = ["acme", "globex", "initech"];

/// One step of a run.
#[derive(Debug, Clone)]
pub enum Op {
    /// An assignment change of client `CLIENTS[client]` with `NUMBERS[i]` for each index.
    Assign {
        /// Index into the clients.
        client: usize,
        /// Replace, add or remove.
        change: Change,
        /// Indexes into the numbers.
        numbers: Vec<usize>,
    },
    /// A reply; `to` is an index into the numbers or, past them, unparseable text.
    Receive {
        /// Message id `SM{id}`, or none.
        id: Option<u8>,
        /// Index into the numbers; `NUMBERS.len()` means an unparseable `to`.
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let change = prop_oneof![
        Just(Change::Replace),
        Just(Change::Add),
        Just(Change::Remove)
    ];
    prop_oneof![
        2 => (0..CLIENTS.len(), change, prop::collection::vec(0..NUMBERS.len(), 0..4))
            .prop_map(|(client, change, numbers)| Op::Assign { client, change, numbers }),
        3 => (prop::option::weighted(0.8, 0u8..12), 0..=NUMBERS.len())
            .prop_map(|(id, to)| Op::Receive { id, to }),
    ]
}

/// Runs the property against stores made by `factory` (one fresh store per
/// case): `cases` sequences of up to 50 steps; `PROPTEST_CASES` overrides
/// `cases`. Panics with the smallest failing sequence.
pub fn state_machine_property<S, F, Fut>(factory: F, cases: u32)
where
    S: ReplyStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    run_property(
        factory,
        cases,
        prop::collection::vec(op(), 1..=50),
        "sequence",
        async |store, ops: &Vec<Op>| run_ops(store, ops).await,
    );
}

/// Applies `ops` in order to `store` (fresh and empty) and to a [`Model`],
/// and checks after every step that both agree on everything observable.
/// The property's body, and the fuzz target `store_ops`'.
pub async fn run_ops<S: ReplyStore>(store: &S, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let numbers: Vec<PhoneNumber> = NUMBERS.iter().map(|n| number(n)).collect();
    for (step, op) in ops.iter().enumerate() {
        let before = model.clone();
        match op {
            Op::Assign {
                client: c,
                change,
                numbers: picked,
            } => {
                let who = client(CLIENTS[*c]);
                let picked: Vec<PhoneNumber> = picked.iter().map(|&i| numbers[i]).collect();
                let expected = model.change(&who, &picked, *change);
                let got = match change {
                    Change::Replace => store.replace_numbers(&who, &picked).await,
                    Change::Add => store.add_numbers(&who, &picked).await,
                    Change::Remove => store.remove_numbers(&who, &picked).await,
                };
                match (got, expected) {
                    (Ok(got), Ok(expected)) => prop_assert_eq!(got, expected, "step {}", step),
                    (Err(StoreError::Conflict(got)), Err(expected)) => {
                        prop_assert_eq!(got, expected, "conflicts at step {}", step)
                    }
                    (got, expected) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: store {got:?}, model {expected:?}"
                        )));
                    }
                }
            }
            Op::Receive { id, to } => {
                let id = id.map(|i| format!("SM{i}"));
                let to = NUMBERS.get(*to).copied().unwrap_or("not a number");
                let sent = reply(id.as_deref(), to, &format!("step {step}"), step as i64);
                let got = store
                    .receive(sent.clone())
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.receive(sent), "receipt at step {}", step);
            }
        }
        check(store, &model, &numbers)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {step}: {e}")))?;
        check_history(store, &before, &model, &numbers)
            .await
            .map_err(|e| TestCaseError::fail(format!("history after step {step}: {e}")))?;
    }
    Ok(())
}

/// The store shows exactly what the model holds, and each reply is in one place.
async fn check<S: ReplyStore>(
    store: &S,
    model: &Model,
    numbers: &[PhoneNumber],
) -> Result<(), TestCaseError> {
    for &n in numbers {
        let owner = store
            .owner_of(n)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(owner.as_ref(), model.owners.get(&n), "owner of {}", n);
    }
    let mut places: Vec<String> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    let every: Vec<ClientId> = CLIENTS.iter().map(|c| client(c)).collect();
    for who in &every {
        let numbers_of = store
            .numbers_of(who)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(numbers_of, model.numbers_of(who), "numbers of {}", who);
        let inbox = whole_inbox(store, who).await;
        let expected = model.inboxes.get(who).cloned().unwrap_or_default();
        prop_assert_eq!(&comparable(&inbox), &expected, "inbox of {}", who);
        ids.extend(inbox.iter().map(|r| r.id));
        places.extend(inbox.into_iter().map(|r| r.body));
    }
    let listed = whole_client_list(store).await?;
    prop_assert_eq!(listed, model_client_list(model), "listed clients");
    let held = whole_held(store).await;
    prop_assert_eq!(&comparable(&held), &model.held, "held area");
    ids.extend(held.iter().map(|r| r.id));
    places.extend(held.into_iter().map(|r| r.body));
    ids.sort_unstable();
    ids.dedup();
    prop_assert_eq!(ids.len(), places.len(), "two replies share an id");
    let total = places.len();
    places.sort();
    places.dedup();
    prop_assert_eq!(places.len(), total, "a reply is in two places");
    Ok(())
}

/// Each number's history matches the model's; the events this step added
/// share one instant `T`, at which `owner_at` gives the model's owner after
/// the step, and just before which (when `T` is after the previous event) it
/// gives the owner before. Today's `owner_at` is the model's owner.
async fn check_history<S: ReplyStore>(
    store: &S,
    before: &Model,
    model: &Model,
    numbers: &[PhoneNumber],
) -> Result<(), TestCaseError> {
    let fail = |e: StoreError| TestCaseError::fail(e.to_string());
    let far = time::OffsetDateTime::from_unix_timestamp(253_402_300_799)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for &n in numbers {
        let today = store.owner_at(n, far).await.map_err(fail)?;
        prop_assert_eq!(
            today.as_ref(),
            model.owners.get(&n),
            "owner_at today of {}",
            n
        );
        let old = before.history.get(&n).map_or(0, Vec::len);
        let expected = model.history.get(&n).cloned().unwrap_or_default();
        if expected.len() == old {
            continue;
        }
        let got = whole_history(store, n).await;
        let changes: Vec<_> = got.iter().map(|e| (e.client.clone(), e.change)).collect();
        prop_assert_eq!(&changes, &expected, "history of {}", n);
        let at = got[old].at;
        prop_assert!(
            got[old..].iter().all(|e| e.at == at),
            "one change, one instant"
        );
        prop_assert!(old == 0 || got[old - 1].at <= at, "history out of order");
        let after = store.owner_at(n, at).await.map_err(fail)?;
        prop_assert_eq!(
            after.as_ref(),
            model.owners.get(&n),
            "owner_at the change of {}",
            n
        );
        if old == 0 || got[old - 1].at < at {
            let just_before = at - time::Duration::microseconds(1);
            let prior = store.owner_at(n, just_before).await.map_err(fail)?;
            prop_assert_eq!(
                prior.as_ref(),
                before.owners.get(&n),
                "owner_at before {}",
                n
            );
        }
    }
    Ok(())
}

/// Every listed client with its count, read page by page.
async fn whole_client_list<S: ReplyStore>(
    store: &S,
) -> Result<Vec<(ClientId, usize)>, TestCaseError> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store
            .list_clients("", &page)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        all.extend(got.items.iter().map(|s| (s.client.clone(), s.count())));
        match page.next(&got) {
            Some(next) => page = next,
            None => return Ok(all),
        }
    }
}

/// Clients that own a number, by id, with how many.
fn model_client_list(model: &Model) -> Vec<(ClientId, usize)> {
    let mut counts: BTreeMap<ClientId, usize> = BTreeMap::new();
    for owner in model.owners.values() {
        *counts.entry(owner.clone()).or_default() += 1;
    }
    counts.into_iter().collect()
}
