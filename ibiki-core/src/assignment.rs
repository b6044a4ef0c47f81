//! The assignment store contract: who owns which number.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::history::HistoryEvent;
use crate::page::{Page, PageRequest};
use crate::{ClientId, PhoneNumber};

/// What an assignment change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentChange {
    /// The client whose numbers changed.
    pub client: ClientId,
    /// Numbers the client gained, ascending.
    pub added: Vec<PhoneNumber>,
    /// Numbers the client lost, ascending.
    pub removed: Vec<PhoneNumber>,
    /// The client's numbers after the change, ascending.
    pub numbers: Vec<PhoneNumber>,
    /// Held replies this change delivered to the client's inbox (always 0 for
    /// a store that keeps no replies).
    pub released: u64,
}

impl AssignmentChange {
    /// How many numbers the client owns after the change.
    pub fn count(&self) -> usize {
        self.numbers.len()
    }
}

/// How an assignment change treats the client's current numbers
/// ([`AssignmentStore::change_numbers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The given numbers become the client's whole set: numbers it has that
    /// are not given are taken from it; an empty set takes every number.
    Replace,
    /// The given numbers are given to the client, which keeps the ones it has.
    Add,
    /// The given numbers are taken from the client; numbers it does not own
    /// are ignored.
    Remove,
}

impl Change {
    /// Its name in logs, traces, metric labels and the PostgreSQL schema:
    /// `replace`, `add` or `remove`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Add => "add",
            Self::Remove => "remove",
        }
    }
}

/// A client and the numbers it owns, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSummary {
    /// The client.
    #[serde(rename = "userId")]
    pub client: ClientId,
    /// Its numbers, sorted (at least one).
    #[serde(rename = "phoneNumbers")]
    pub numbers: Vec<PhoneNumber>,
}

impl ClientSummary {
    /// How many numbers it owns.
    pub fn count(&self) -> usize {
        self.numbers.len()
    }
}

/// Where phone number assignments live.
///
/// # Contract
///
/// Every implementation, checked by the conformance suite in
/// `ibiki_core::testing`:
/// - a number has at most one owner. A change that would give another
///   client's number to `client` fails with [`StoreError::Conflict`] listing
///   every such number and its owner, and changes nothing;
/// - each change is atomic: it happens entirely or not at all, and concurrent
///   readers see the state before it or after it;
/// - numbers are listed ascending ([`PhoneNumber`]'s order), clients by id;
///   a client with no numbers is not listed;
/// - if the store is also a [`ReplyStore`](crate::ReplyStore), a change that
///   assigns a number delivers the replies held for it in the same atomic step
///   and reports them in [`AssignmentChange::released`];
/// - each change records, in the same atomic step, one [`HistoryEvent`] per
///   number it assigns or takes, all at one instant no earlier than the
///   number's previous event; [`history`](Self::history) lists them oldest
///   first and [`owner_at`](Self::owner_at) answers from them. The history
///   is append-only.
///
/// Use it as `Arc<dyn AssignmentStore>` ([`DynAssignmentStore`]). `Arc<T>`,
/// `Box<T>` and `&T` are stores too when `T` is one (`dyn AssignmentStore`
/// included): every method, provided ones too, calls `T`'s.
#[async_trait]
pub trait AssignmentStore: Send + Sync + fmt::Debug {
    /// Changes the client's numbers as `change` says, in one atomic step:
    /// the one assignment change a store implements. `numbers` may hold
    /// duplicates; each counts once.
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError>;

    /// Makes `numbers` the client's whole set: the admin "update phone numbers"
    /// action. An empty slice removes every number.
    /// [`change_numbers`](Self::change_numbers) with [`Change::Replace`].
    async fn replace_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.change_numbers(client, numbers, Change::Replace).await
    }

    /// Gives `numbers` to the client, keeping the ones it has:
    /// [`change_numbers`](Self::change_numbers) with [`Change::Add`].
    async fn add_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.change_numbers(client, numbers, Change::Add).await
    }

    /// Takes `numbers` from the client; numbers it does not own are ignored:
    /// [`change_numbers`](Self::change_numbers) with [`Change::Remove`].
    async fn remove_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.change_numbers(client, numbers, Change::Remove).await
    }

    /// The client's numbers, ascending; empty for an unknown client.
    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError>;

    /// The owner of `number`, if any.
    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError>;

    /// The owner of `number` at `at`, from its history: the owner after the
    /// last change at or before `at` (at the instant of a change, the owner
    /// it made). `owner_at(number, now)` agrees with
    /// [`owner_of`](Self::owner_of).
    ///
    /// ```
    /// use ibiki_core::{AssignmentStore, ClientId, PhoneNumber};
    /// use ibiki_memory::MemoryStore;
    /// use time::OffsetDateTime;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let number: PhoneNumber = "+14155550100".parse()?;
    /// let before = OffsetDateTime::now_utc() - time::Duration::SECOND;
    /// store.add_numbers(&ClientId::new("acme")?, &[number]).await?;
    /// assert_eq!(store.owner_at(number, before).await?, None);
    /// let now = OffsetDateTime::now_utc();
    /// assert_eq!(store.owner_at(number, now).await?, store.owner_of(number).await?);
    /// # Ok(())
    /// # }
    /// ```
    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError>;

    /// The ownership changes of `number`, oldest first: every client that
    /// gained or lost it, and when. Empty for a number never assigned.
    ///
    /// ```
    /// use ibiki_core::{AssignmentStore, ClientId, OwnershipChange, PageRequest, PhoneNumber};
    /// use ibiki_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let (acme, globex) = (ClientId::new("acme")?, ClientId::new("globex")?);
    /// let number: PhoneNumber = "+14155550100".parse()?;
    /// store.add_numbers(&acme, &[number]).await?;
    /// store.remove_numbers(&acme, &[number]).await?;
    /// store.add_numbers(&globex, &[number]).await?;
    /// let page = store.history(number, &PageRequest::first(10)).await?;
    /// let changes: Vec<_> = page.items.iter().map(|e| (e.client.as_str(), e.change)).collect();
    /// assert_eq!(changes, [
    ///     ("acme", OwnershipChange::Assigned),
    ///     ("acme", OwnershipChange::Unassigned),
    ///     ("globex", OwnershipChange::Assigned),
    /// ]);
    /// # Ok(())
    /// # }
    /// ```
    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError>;

    /// Clients that own at least one number and whose id starts with
    /// `prefix` (`""`: every client), ordered by id, each with its numbers:
    /// one read for a whole page.
    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError>;

    /// Succeeds when the store can take a reply now (a health check): the
    /// same kind of check a receive needs, within the store's own deadline.
    /// A store must not succeed here while its receives cannot commit.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A type-erased [`AssignmentStore`], for `Arc<DynAssignmentStore>`.
pub type DynAssignmentStore = dyn AssignmentStore;

/// Implements [`AssignmentStore`] for a pointer to a store, every method
/// calling the pointee's (its overrides of the provided methods included).
macro_rules! deref_assignment_store {
    ($($pointer:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<'a, T: AssignmentStore + ?Sized> AssignmentStore for $pointer {
            async fn change_numbers(
                &self,
                client: &ClientId,
                numbers: &[PhoneNumber],
                change: Change,
            ) -> Result<AssignmentChange, StoreError> {
                (**self).change_numbers(client, numbers, change).await
            }

            async fn replace_numbers(
                &self,
                client: &ClientId,
                numbers: &[PhoneNumber],
            ) -> Result<AssignmentChange, StoreError> {
                (**self).replace_numbers(client, numbers).await
            }

            async fn add_numbers(
                &self,
                client: &ClientId,
                numbers: &[PhoneNumber],
            ) -> Result<AssignmentChange, StoreError> {
                (**self).add_numbers(client, numbers).await
            }

            async fn remove_numbers(
                &self,
                client: &ClientId,
                numbers: &[PhoneNumber],
            ) -> Result<AssignmentChange, StoreError> {
                (**self).remove_numbers(client, numbers).await
            }

            async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
                (**self).numbers_of(client).await
            }

            async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
                (**self).owner_of(number).await
            }

            async fn owner_at(
                &self,
                number: PhoneNumber,
                at: OffsetDateTime,
            ) -> Result<Option<ClientId>, StoreError> {
                (**self).owner_at(number, at).await
            }

            async fn history(
                &self,
                number: PhoneNumber,
                page: &PageRequest,
            ) -> Result<Page<HistoryEvent>, StoreError> {
                (**self).history(number, page).await
            }

            async fn list_clients(
                &self,
                prefix: &str,
                page: &PageRequest,
            ) -> Result<Page<ClientSummary>, StoreError> {
                (**self).list_clients(prefix, page).await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                (**self).ping().await
            }
        }
    )+};
}

deref_assignment_store!(Arc<T>, Box<T>, &'a T);
