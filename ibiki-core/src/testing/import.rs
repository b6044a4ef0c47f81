//! The import property: for random rows of an old system (valid, invalid and
//! empty entries, numbers repeated within a client and shared between
//! clients, invalid client ids) over a store where some numbers are already
//! owned and some have held replies, the import's report and the store after
//! it equal a reference model's; the dry run reports the same and changes
//! nothing; a second run changes nothing and reports every number as
//! already assigned.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::conformance::{client, number, reply, whole_held};
use super::property::run_property;
use crate::{
    ClientId, ImportPlan, ImportPlanner, ImportReport, ImportRow, Normalizer, PhoneNumber,
    PhoneNumbersInput, ReplyStore,
};

/// The numbers the rows and the store draw from.
pub const IMPORT_NUMBERS: [&str; 6] = [
    "+14155550100",
    "+14155550101",
    "+14155550102",
    "+14155550103",
    "+14155550104",
    "+14155550105",
];

/// Client ids of the rows: three valid, two the planner rejects.
pub const IMPORT_CLIENTS: [&str; 5] = ["acme", "globex", "initech", "", "tab\there"];

/// A client that owns numbers in the store but has no row.
const OUTSIDER: &str = "umbrella";

/// How entry `i` of the pool is written: 4 valid spellings per number (read
/// with the default region US), then invalid and empty entries.
fn entry(i: usize) -> (String, Option<usize>) {
    let numbers = IMPORT_NUMBERS.len();
    if i < 4 * numbers {
        let (n, style) = (i % numbers, i / numbers);
        let text = match style {
            0 => format!("+1 415 555 010{n}"),
            1 => format!("(415) 555-010{n}"),
            2 => format!("1415555010{n}"),
            _ => format!("+1415555010{n}"),
        };
        return (text, Some(n));
    }
    let others = ["+1111", "12", "call me", "+44 020 7946 0958", "", "   "];
    (others[(i - 4 * numbers) % others.len()].to_owned(), None)
}

const POOL: usize = 4 * IMPORT_NUMBERS.len() + 6;

/// One legacy row: a client (index into [`IMPORT_CLIENTS`]), entries (indexes
/// into the pool), written as one comma-separated text or as a list.
#[derive(Debug, Clone)]
pub struct LegacyRow {
    /// Index into [`IMPORT_CLIENTS`].
    pub client: usize,
    /// Indexes into the entry pool.
    pub entries: Vec<usize>,
    /// One comma-separated text rather than a list.
    pub as_text: bool,
}

/// A random case: rows, the owner in the store of each number before the
/// import (index into the valid clients, 3 being a client without rows), and
/// whether a reply to it is held.
#[derive(Debug, Clone)]
pub struct ImportCase {
    /// The rows, in reading order.
    pub rows: Vec<LegacyRow>,
    /// Owner of `IMPORT_NUMBERS[i]` before the import.
    pub owners: Vec<Option<usize>>,
    /// Whether a reply to `IMPORT_NUMBERS[i]` is held before the import.
    pub held: Vec<bool>,
}

fn case() -> impl Strategy<Value = ImportCase> {
    let row = (
        0..IMPORT_CLIENTS.len(),
        prop::collection::vec(0..POOL, 0..6),
        any::<bool>(),
    )
        .prop_map(|(client, entries, as_text)| LegacyRow {
            client,
            entries,
            as_text,
        });
    let n = IMPORT_NUMBERS.len();
    (
        prop::collection::vec(row, 0..8),
        prop::collection::vec(prop::option::weighted(0.3, 0..4usize), n),
        prop::collection::vec(prop::bool::weighted(0.3), n),
    )
        .prop_map(|(rows, owners, held)| ImportCase { rows, owners, held })
}

fn owner_name(i: usize) -> &'static str {
    IMPORT_CLIENTS
        .get(i)
        .filter(|_| i < 3)
        .copied()
        .unwrap_or(OUTSIDER)
}

/// The rows of a case as the planner reads them.
pub fn rows(case: &ImportCase) -> Vec<ImportRow> {
    case.rows
        .iter()
        .map(|row| {
            let texts: Vec<String> = row.entries.iter().map(|&e| entry(e).0).collect();
            let numbers = if row.as_text {
                PhoneNumbersInput::Text(texts.join(", "))
            } else {
                PhoneNumbersInput::List(texts)
            };
            ImportRow::new(IMPORT_CLIENTS[row.client], numbers)
        })
        .collect()
}

/// The plan of a case, read with the default region US.
pub fn plan(case: &ImportCase) -> ImportPlan {
    let us = "US".parse().unwrap_or_else(|e| panic!("{e}"));
    let mut planner = ImportPlanner::new(Normalizer::new().with_default_region(us));
    for row in rows(case) {
        planner.push(row);
    }
    planner.finish()
}

/// What the model expects: the report (reasons left out of `invalid`, which
/// lists `(userId, index, input)`) and every number's owner afterwards.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    clients: u64,
    entries: u64,
    empty_rows: u64,
    duplicates: u64,
    assigned: u64,
    already_assigned: u64,
    released: u64,
    invalid: Vec<(String, usize, String)>,
    contested: Vec<(PhoneNumber, Vec<ClientId>)>,
    conflicts: Vec<(PhoneNumber, ClientId, ClientId)>,
}

impl Expected {
    fn of(report: &ImportReport) -> Self {
        Self {
            clients: report.clients,
            entries: report.entries,
            empty_rows: report.empty_rows,
            duplicates: report.duplicates,
            assigned: report.assigned,
            already_assigned: report.already_assigned,
            released: report.released,
            invalid: report
                .invalid
                .iter()
                .map(|i| (i.user_id.clone(), i.index, i.input.clone()))
                .collect(),
            contested: report
                .contested
                .iter()
                .map(|c| (c.phone_number, c.user_ids.clone()))
                .collect(),
            conflicts: report
                .conflicts
                .iter()
                .map(|c| (c.phone_number, c.user_id.clone(), c.owner_user_id.clone()))
                .collect(),
        }
    }
}

/// The reference: the rules of the import written over plain maps.
fn model(
    case: &ImportCase,
    owners: &BTreeMap<PhoneNumber, ClientId>,
) -> (Expected, BTreeMap<PhoneNumber, ClientId>) {
    let numbers: Vec<PhoneNumber> = IMPORT_NUMBERS.iter().map(|n| number(n)).collect();
    let mut expected = Expected {
        clients: 0,
        entries: 0,
        empty_rows: 0,
        duplicates: 0,
        assigned: 0,
        already_assigned: 0,
        released: 0,
        invalid: Vec::new(),
        contested: Vec::new(),
        conflicts: Vec::new(),
    };
    let mut clients: BTreeSet<usize> = BTreeSet::new();
    let mut claims: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for row in &case.rows {
        let entries: Vec<(usize, String, Option<usize>)> = row
            .entries
            .iter()
            .map(|&e| entry(e))
            .enumerate()
            .filter(|(_, (text, _))| !text.trim().is_empty())
            .map(|(index, (text, n))| (index, text.trim().to_owned(), n))
            .collect();
        if entries.is_empty() {
            expected.empty_rows += 1;
            continue;
        }
        clients.insert(row.client);
        expected.entries += entries.len() as u64;
        let valid_client = row.client < 3;
        for (index, text, n) in entries {
            match n {
                Some(n) if valid_client => {
                    if !claims.entry(n).or_default().insert(row.client) {
                        expected.duplicates += 1;
                    }
                }
                _ => {
                    let user = IMPORT_CLIENTS[row.client].to_owned();
                    expected.invalid.push((user, index, text));
                }
            }
        }
    }
    expected.clients = clients.len() as u64;
    let mut after = owners.clone();
    for (&n, claimants) in &claims {
        let who: Vec<ClientId> = claimants
            .iter()
            .map(|&c| client(IMPORT_CLIENTS[c]))
            .collect();
        if who.len() > 1 {
            expected.contested.push((numbers[n], who));
            continue;
        }
        let claimant = who[0].clone();
        match owners.get(&numbers[n]) {
            Some(owner) if *owner == claimant => expected.already_assigned += 1,
            Some(owner) => {
                expected
                    .conflicts
                    .push((numbers[n], claimant, owner.clone()));
            }
            None => {
                expected.assigned += 1;
                expected.released += u64::from(case.held[n]);
                after.insert(numbers[n], claimant);
            }
        }
    }
    expected.contested.sort();
    expected.conflicts.sort();
    (expected, after)
}

/// Runs the property against stores made by `factory` (one fresh store per
/// case); `PROPTEST_CASES` overrides `cases`. Panics with the smallest
/// failing case.
pub fn import_property<S, F, Fut>(factory: F, cases: u32)
where
    S: ReplyStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    run_property(factory, cases, case(), "case", check_import);
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// The property's body for one case, against a fresh, empty store.
pub async fn check_import<S: ReplyStore>(
    store: &S,
    case: &ImportCase,
) -> Result<(), TestCaseError> {
    let numbers: Vec<PhoneNumber> = IMPORT_NUMBERS.iter().map(|n| number(n)).collect();
    let mut owners: BTreeMap<PhoneNumber, ClientId> = BTreeMap::new();
    for (n, owner) in case.owners.iter().enumerate() {
        if let Some(o) = owner {
            let who = client(owner_name(*o));
            store.add_numbers(&who, &[numbers[n]]).await.map_err(fail)?;
            owners.insert(numbers[n], who);
        }
    }
    let mut held = 0;
    for (n, &h) in case.held.iter().enumerate() {
        if h && !owners.contains_key(&numbers[n]) {
            let sent = reply(None, IMPORT_NUMBERS[n], &format!("held {n}"), n as i64);
            let receipt = store.receive(sent).await.map_err(fail)?;
            prop_assert_eq!(receipt, crate::Receipt::Held, "reply to {} held", n);
            held += 1;
        }
    }
    let case = ImportCase {
        // A number owned before the import has no held reply.
        held: case
            .held
            .iter()
            .enumerate()
            .map(|(n, &h)| h && !owners.contains_key(&numbers[n]))
            .collect(),
        ..case.clone()
    };
    let (expected, after) = model(&case, &owners);
    let plan = plan(&case);

    let dry = plan.dry_run(store).await.map_err(fail)?;
    prop_assert!(dry.dry_run);
    prop_assert_eq!(
        Expected::of(&dry),
        Expected {
            released: 0,
            ..expected_clone(&expected)
        },
        "dry run"
    );
    check_owners(store, &numbers, &owners, "after the dry run").await?;

    let report = plan.apply(store).await.map_err(fail)?;
    prop_assert!(!report.dry_run);
    prop_assert_eq!(Expected::of(&report), expected_clone(&expected), "import");
    prop_assert_eq!(report.accounted(), report.entries, "totals add up");
    prop_assert_eq!(
        report.is_complete(),
        expected.invalid.is_empty()
            && expected.contested.is_empty()
            && expected.conflicts.is_empty()
    );
    check_owners(store, &numbers, &after, "after the import").await?;
    let still_held = whole_held(store).await.len() as u64;
    prop_assert_eq!(still_held, held - report.released, "held replies released");

    let again = plan.apply(store).await.map_err(fail)?;
    prop_assert_eq!(again.assigned, 0, "second run assigned");
    prop_assert_eq!(again.released, 0, "second run released");
    prop_assert_eq!(
        again.already_assigned,
        report.assigned + report.already_assigned,
        "second run: every number already assigned"
    );
    prop_assert_eq!(&again.conflicts, &report.conflicts, "second run conflicts");
    prop_assert_eq!(&again.contested, &report.contested, "second run contested");
    check_owners(store, &numbers, &after, "after the second run").await?;
    Ok(())
}

fn expected_clone(e: &Expected) -> Expected {
    Expected {
        invalid: e.invalid.clone(),
        contested: e.contested.clone(),
        conflicts: e.conflicts.clone(),
        ..*e
    }
}

async fn check_owners<S: ReplyStore>(
    store: &S,
    numbers: &[PhoneNumber],
    expected: &BTreeMap<PhoneNumber, ClientId>,
    when: &str,
) -> Result<(), TestCaseError> {
    for &n in numbers {
        let owner = store.owner_of(n).await.map_err(fail)?;
        prop_assert_eq!(owner.as_ref(), expected.get(&n), "owner of {} {}", n, when);
    }
    Ok(())
}
