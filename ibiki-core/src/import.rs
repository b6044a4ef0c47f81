//! Bringing assignments over from another system: rows of `(client id, raw
//! numbers)` are read into an [`ImportPlan`], which is then checked against a
//! store ([`ImportPlan::dry_run`]) or applied to it ([`ImportPlan::apply`]).
//!
//! The rules, for an operator moving a live system:
//! - each entry is normalized like admin input (the same [`Normalizer`] and
//!   the same reasons), one by one: a client's bad entries are listed and do
//!   not stop its good ones;
//! - valid numbers are **added** to what the client owns: an import never
//!   removes an assignment;
//! - a number claimed by two or more clients of the rows is *contested*: it
//!   goes to none of them, and every claimant is listed;
//! - a number another client already owns in the store is a *conflict*: it is
//!   not moved, and its owner is listed;
//! - each client's change is one [`AssignmentStore::add_numbers`] call, atomic
//!   and releasing the replies held for its numbers: an interrupted run
//!   leaves whole clients, and running the same rows again completes it;
//! - a second run over the same rows changes nothing and reports every number
//!   as already assigned.
//!
//! ```
//! use ibiki_core::{AssignmentStore, ClientId, ImportPlanner, ImportRow, Normalizer};
//! use ibiki_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let normalizer = Normalizer::new().with_default_region("US".parse()?);
//! let mut planner = ImportPlanner::new(normalizer);
//! planner.push(ImportRow::new("acme", "+1 415 555 0100, (415) 555-0101, +1111"));
//! planner.push(ImportRow::new("globex", vec!["14155550102", "415 555 0100"]));
//! let plan = planner.finish();
//!
//! let store = MemoryStore::new();
//! let report = plan.apply(&store).await?;
//! assert_eq!(report.assigned, 2); // (415) 555-0101 to acme, 14155550102 to globex
//! assert_eq!(report.invalid.len(), 1); // +1111
//! assert_eq!(report.contested.len(), 1); // +14155550100, claimed by both
//! assert_eq!(store.numbers_of(&ClientId::new("acme")?).await?.len(), 1);
//!
//! // Running it again changes nothing.
//! let again = plan.apply(&store).await?;
//! assert_eq!((again.assigned, again.already_assigned), (0, 2));
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Serialize, Serializer};

use crate::error::{ClientIdError, NumberError, StoreError};
use crate::{AssignmentStore, ClientId, Normalizer, PhoneNumber, PhoneNumbersInput};

#[cfg(feature = "csv")]
mod csv_rows;
#[cfg(feature = "csv")]
pub use self::csv_rows::{CSV_CLIENT_HEADER, CSV_NUMBERS_HEADER, CsvError, CsvRows};

/// Clients applied at once by [`ImportPlan::apply`] and
/// [`ImportPlan::dry_run`]: enough to keep a database pool busy, few enough
/// to leave room for the traffic of a live server.
pub const DEFAULT_IMPORT_CONCURRENCY: usize = 8;

/// One row of the old system: a client id and its numbers as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The client id as the old system stored it; checked by the planner.
    pub client: String,
    /// The numbers: one comma-separated text, or a list of entries. Empty
    /// entries are skipped; a row without any entry is counted as empty.
    pub numbers: PhoneNumbersInput,
}

impl ImportRow {
    /// A row.
    pub fn new(client: impl Into<String>, numbers: impl Into<PhoneNumbersInput>) -> Self {
        Self {
            client: client.into(),
            numbers: numbers.into(),
        }
    }
}

/// Why an entry was left out as invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The entry is not a valid number (the reason admin input gets).
    #[error(transparent)]
    Number(#[from] NumberError),
    /// The row's client id is not a valid [`ClientId`]: none of its entries
    /// can be imported.
    #[error("invalid client id: {0}")]
    ClientId(#[from] ClientIdError),
}

/// An entry that was not imported because it is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidImport {
    /// The row's client id, as read.
    pub user_id: String,
    /// 0-based index of the entry in that row's list, empty entries included.
    pub index: usize,
    /// The entry's text, trimmed.
    pub input: String,
    /// Why it was left out.
    #[serde(serialize_with = "display")]
    pub reason: InvalidReason,
}

/// A number claimed by two or more clients: assigned to none of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contested {
    /// The number.
    pub phone_number: PhoneNumber,
    /// Every client that claims it, by id.
    pub user_ids: Vec<ClientId>,
}

/// A number the store already gives to another client: not moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportConflict {
    /// The number.
    pub phone_number: PhoneNumber,
    /// The client the rows give it to.
    pub user_id: ClientId,
    /// The client that owns it in the store.
    pub owner_user_id: ClientId,
}

fn display<T: fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// What an import did, or would do in a dry run.
///
/// Every non-empty entry read is counted once in exactly one of `assigned`,
/// `already_assigned`, `duplicates`, `invalid`, a claimant of `contested` or
/// `conflicts` ([`accounted`](Self::accounted) equals `entries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Whether this is what would happen (nothing was changed).
    pub dry_run: bool,
    /// Distinct clients read with at least one entry.
    pub clients: u64,
    /// Non-empty entries read.
    pub entries: u64,
    /// Rows without any entry (NULL, empty text, empty list): skipped.
    pub empty_rows: u64,
    /// Entries repeating a number the same client already listed.
    pub duplicates: u64,
    /// Numbers given to their client (in a dry run: that would be).
    pub assigned: u64,
    /// Numbers the client already owned.
    pub already_assigned: u64,
    /// Held replies delivered by the assignments (0 in a dry run).
    pub released: u64,
    /// Invalid entries, in reading order.
    pub invalid: Vec<InvalidImport>,
    /// Numbers claimed by two or more clients, ascending.
    pub contested: Vec<Contested>,
    /// Numbers another client owns in the store, ascending.
    pub conflicts: Vec<ImportConflict>,
}

impl ImportReport {
    /// True when every entry was imported or already there (or was a
    /// duplicate of one that was): nothing was left out.
    pub fn is_complete(&self) -> bool {
        self.invalid.is_empty() && self.contested.is_empty() && self.conflicts.is_empty()
    }

    /// Entries the report accounts for; always equals `entries`.
    pub fn accounted(&self) -> u64 {
        let contested: usize = self.contested.iter().map(|c| c.user_ids.len()).sum();
        self.assigned
            + self.already_assigned
            + self.duplicates
            + self.invalid.len() as u64
            + contested as u64
            + self.conflicts.len() as u64
    }
}

/// Who claims a number: almost always one client, so no allocation for it.
#[derive(Debug)]
enum Claim {
    One(u32),
    Many(Vec<u32>),
}

/// Reads rows one at a time into an [`ImportPlan`].
///
/// Memory grows with the distinct numbers and clients read, not with the
/// rows' text: rows can stream from a reader in batches.
#[derive(Debug)]
pub struct ImportPlanner {
    normalizer: Normalizer,
    clients: Vec<(ClientId, Vec<PhoneNumber>)>,
    index: HashMap<ClientId, u32>,
    claims: HashMap<PhoneNumber, Claim>,
    bad_clients: HashSet<String>,
    invalid: Vec<InvalidImport>,
    rows: u64,
    entries: u64,
    empty_rows: u64,
    duplicates: u64,
}

impl ImportPlanner {
    /// A planner normalizing with `normalizer` (the one admin input uses).
    pub fn new(normalizer: Normalizer) -> Self {
        Self {
            normalizer,
            clients: Vec::new(),
            index: HashMap::new(),
            claims: HashMap::new(),
            bad_clients: HashSet::new(),
            invalid: Vec::new(),
            rows: 0,
            entries: 0,
            empty_rows: 0,
            duplicates: 0,
        }
    }

    /// Rows read so far, empty ones included.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads one row. Rows of the same client add up.
    pub fn push(&mut self, row: ImportRow) {
        self.rows += 1;
        let entries: Vec<(usize, &str)> = row
            .numbers
            .entries()
            .filter(|(_, entry)| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            self.empty_rows += 1;
            return;
        }
        self.entries += entries.len() as u64;
        let client = match ClientId::new(&row.client) {
            Ok(client) => client,
            Err(e) => {
                self.bad_clients.insert(row.client.clone());
                self.invalid
                    .extend(entries.iter().map(|&(index, input)| InvalidImport {
                        user_id: row.client.clone(),
                        index,
                        input: input.to_owned(),
                        reason: InvalidReason::ClientId(e.clone()),
                    }));
                return;
            }
        };
        let at = match self.index.get(&client) {
            Some(&at) => at,
            None => {
                let at = u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
                self.index.insert(client.clone(), at);
                self.clients.push((client, Vec::new()));
                at
            }
        };
        for (index, input) in entries {
            match self.normalizer.normalize(input) {
                Ok(number) => self.claim(at, number),
                Err(reason) => self.invalid.push(InvalidImport {
                    user_id: row.client.clone(),
                    index,
                    input: input.to_owned(),
                    reason: reason.into(),
                }),
            }
        }
    }

    fn claim(&mut self, at: u32, number: PhoneNumber) {
        let new = match self.claims.get_mut(&number) {
            None => {
                self.claims.insert(number, Claim::One(at));
                true
            }
            Some(Claim::One(first)) if *first == at => false,
            Some(claim @ Claim::One(_)) => {
                if let Claim::One(first) = *claim {
                    *claim = Claim::Many(vec![first, at]);
                }
                true
            }
            Some(Claim::Many(all)) if all.contains(&at) => false,
            Some(Claim::Many(all)) => {
                all.push(at);
                true
            }
        };
        if new {
            if let Some((_, numbers)) = self.clients.get_mut(at as usize) {
                numbers.push(number);
            }
        } else {
            self.duplicates += 1;
        }
    }

    /// Finds the contested numbers and fixes what each client gets.
    pub fn finish(self) -> ImportPlan {
        let mut contested: Vec<Contested> = self
            .claims
            .iter()
            .filter_map(|(&phone_number, claim)| match claim {
                Claim::One(_) => None,
                Claim::Many(all) => {
                    let mut user_ids: Vec<ClientId> = all
                        .iter()
                        .filter_map(|&at| self.clients.get(at as usize))
                        .map(|(client, _)| client.clone())
                        .collect();
                    user_ids.sort();
                    Some(Contested {
                        phone_number,
                        user_ids,
                    })
                }
            })
            .collect();
        contested.sort_by_key(|c| c.phone_number);
        let claims = self.claims;
        let clients = self
            .clients
            .into_iter()
            .map(|(client, mut numbers)| {
                numbers.retain(|n| matches!(claims.get(n), Some(Claim::One(_))));
                numbers.sort_unstable();
                (client, numbers)
            })
            .collect();
        ImportPlan {
            clients,
            contested,
            invalid: self.invalid,
            client_count: self.index.len() as u64 + self.bad_clients.len() as u64,
            entries: self.entries,
            empty_rows: self.empty_rows,
            duplicates: self.duplicates,
        }
    }
}

/// What an import will try: each client's uncontested valid numbers, and
/// what was left out while reading. Built by [`ImportPlanner`].
#[derive(Debug, Clone)]
pub struct ImportPlan {
    clients: Vec<(ClientId, Vec<PhoneNumber>)>,
    contested: Vec<Contested>,
    invalid: Vec<InvalidImport>,
    client_count: u64,
    entries: u64,
    empty_rows: u64,
    duplicates: u64,
}

/// How one client fared.
#[derive(Debug, Default)]
struct Outcome {
    assigned: u64,
    already_assigned: u64,
    released: u64,
    conflicts: Vec<ImportConflict>,
}

impl ImportPlan {
    /// Each client with the numbers it is to get, ascending; clients in the
    /// order they were first read. A client whose numbers are all contested
    /// is listed with none.
    pub fn clients(&self) -> &[(ClientId, Vec<PhoneNumber>)] {
        &self.clients
    }

    /// The numbers claimed by two or more clients, ascending.
    pub fn contested(&self) -> &[Contested] {
        &self.contested
    }

    /// The invalid entries, in reading order.
    pub fn invalid(&self) -> &[InvalidImport] {
        &self.invalid
    }

    /// Adds each client's numbers to `store`, [`DEFAULT_IMPORT_CONCURRENCY`] clients
    /// at a time.
    ///
    /// A store failure stops the import and is returned: the clients done by
    /// then are done whole, and running the same plan again completes it.
    pub async fn apply<S>(&self, store: &S) -> Result<ImportReport, StoreError>
    where
        S: AssignmentStore + ?Sized,
    {
        self.run(store, false, DEFAULT_IMPORT_CONCURRENCY, &|| {})
            .await
    }

    /// What [`apply`](Self::apply) would do to `store` as it is now, changing
    /// nothing (`released` stays 0).
    pub async fn dry_run<S>(&self, store: &S) -> Result<ImportReport, StoreError>
    where
        S: AssignmentStore + ?Sized,
    {
        self.run(store, true, DEFAULT_IMPORT_CONCURRENCY, &|| {})
            .await
    }

    /// [`apply`](Self::apply) (or [`dry_run`](Self::dry_run) when `dry_run`)
    /// with `concurrency` clients at a time (at least 1), calling `progress`
    /// after each client.
    pub async fn run<S>(
        &self,
        store: &S,
        dry_run: bool,
        concurrency: usize,
        progress: &(dyn Fn() + Sync),
    ) -> Result<ImportReport, StoreError>
    where
        S: AssignmentStore + ?Sized,
    {
        let outcomes: Vec<Outcome> = stream::iter(&self.clients)
            .map(|(client, numbers)| async move {
                let outcome = if dry_run {
                    check_client(store, client, numbers).await
                } else {
                    apply_client(store, client, numbers).await
                };
                progress();
                outcome
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let mut report = ImportReport {
            dry_run,
            clients: self.client_count,
            entries: self.entries,
            empty_rows: self.empty_rows,
            duplicates: self.duplicates,
            assigned: 0,
            already_assigned: 0,
            released: 0,
            invalid: self.invalid.clone(),
            contested: self.contested.clone(),
            conflicts: Vec::new(),
        };
        for outcome in outcomes {
            report.assigned += outcome.assigned;
            report.already_assigned += outcome.already_assigned;
            report.released += outcome.released;
            report.conflicts.extend(outcome.conflicts);
        }
        report.conflicts.sort_by_key(|c| c.phone_number);
        Ok(report)
    }
}

/// Adds the client's numbers in one atomic change; numbers another client
/// owns are taken out (the store lists them all) and the rest added.
async fn apply_client<S>(
    store: &S,
    client: &ClientId,
    numbers: &[PhoneNumber],
) -> Result<Outcome, StoreError>
where
    S: AssignmentStore + ?Sized,
{
    let mut wanted = numbers.to_vec();
    let mut outcome = Outcome::default();
    while !wanted.is_empty() {
        match store.add_numbers(client, &wanted).await {
            Ok(change) => {
                outcome.assigned = change.added.len() as u64;
                outcome.already_assigned = (wanted.len() - change.added.len()) as u64;
                outcome.released = change.released;
                break;
            }
            Err(StoreError::Conflict(conflicts)) => {
                let before = wanted.len();
                wanted.retain(|n| conflicts.iter().all(|c| c.phone_number != *n));
                if wanted.len() == before {
                    return Err(StoreError::Backend(
                        format!("the store refused {client}'s numbers without naming a conflict")
                            .into(),
                    ));
                }
                outcome
                    .conflicts
                    .extend(conflicts.into_iter().map(|c| ImportConflict {
                        phone_number: c.phone_number,
                        user_id: client.clone(),
                        owner_user_id: c.owner,
                    }));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

/// What [`apply_client`] would do, from reads only.
async fn check_client<S>(
    store: &S,
    client: &ClientId,
    numbers: &[PhoneNumber],
) -> Result<Outcome, StoreError>
where
    S: AssignmentStore + ?Sized,
{
    let mut outcome = Outcome::default();
    if numbers.is_empty() {
        return Ok(outcome);
    }
    let owned: HashSet<PhoneNumber> = store.numbers_of(client).await?.into_iter().collect();
    for &number in numbers {
        if owned.contains(&number) {
            outcome.already_assigned += 1;
            continue;
        }
        match store.owner_of(number).await? {
            Some(owner) if owner != *client => outcome.conflicts.push(ImportConflict {
                phone_number: number,
                user_id: client.clone(),
                owner_user_id: owner,
            }),
            Some(_) => outcome.already_assigned += 1,
            None => outcome.assigned += 1,
        }
    }
    Ok(outcome)
}
