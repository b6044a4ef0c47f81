//! [`MemoryStore`]: the traits over a lock around [`State`].

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, ForwardSignals, HeldTarget,
    HistoryEvent, InboundReply, InboxSignals, Page, PageRequest, PhoneNumber, Receipt, ReplyStore,
    StoreError, StoredReply,
};
use time::OffsetDateTime;

use crate::keys::KeyLock;
use crate::state::State;

/// Assignments and replies in memory, behind one reader-writer lock.
///
/// Routing lookups share the lock; receives and assignment changes take it
/// alone, which makes each of them atomic and serializes a receive with an
/// assignment of its number, as the [`ReplyStore`] contract requires.
///
/// ```
/// use ibiki_core::{AssignmentStore, ClientId, PhoneNumber};
/// use ibiki_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let client = ClientId::new("42")?;
/// let number: PhoneNumber = "+14155550100".parse()?;
/// store.add_numbers(&client, &[number]).await?;
/// assert_eq!(store.owner_of(number).await?, Some(client));
/// # Ok(())
/// # }
/// ```
///
/// Live readers ([`ReplyStore::inbox_signals`]) are woken in-process, by
/// the store's own receives, releases and re-routes; so are forwarding
/// workers ([`ForwardStore::forward_signals`](ibiki_core::ForwardStore::forward_signals)).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
    signals: InboxSignals,
    pub(crate) forward_signals: ForwardSignals,
    keys: KeyLock,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lock is only poisoned by a panic inside `State`, whose every change
    /// is checked before it is made; the data stays consistent, so go on.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn keys(&self) -> &KeyLock {
        &self.keys
    }

    /// The owner of `number`, without the async machinery: the routing hot path
    /// for code that holds a `MemoryStore` directly.
    pub fn owner_of_sync(&self, number: PhoneNumber) -> Option<ClientId> {
        self.read().owner_of(number).cloned()
    }
}

#[async_trait]
impl AssignmentStore for MemoryStore {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        #[cfg(feature = "tracing")]
        let _span = crate::trace::change(client, change, numbers.len());
        // The lock is released at the end of the statement: a woken reader
        // finds the released replies.
        let result = self.write().change(client, numbers, change);
        if result.as_ref().is_ok_and(|change| change.released > 0) {
            self.signals.notify(client);
            self.forward_signals.notify();
        }
        #[cfg(feature = "tracing")]
        crate::trace::changed(&result);
        result
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        Ok(self.read().numbers_of(client))
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        Ok(self.owner_of_sync(number))
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        Ok(self.read().owner_at(number, at).cloned())
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.read().history(number, page)
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        self.read().list_clients(prefix, page)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl ReplyStore for MemoryStore {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        #[cfg(feature = "tracing")]
        let _span = crate::trace::receive(&reply);
        let result = self.write().receive(reply);
        if let Ok(Receipt::Routed(client)) = &result {
            self.signals.notify(client);
            self.forward_signals.notify();
        }
        #[cfg(feature = "tracing")]
        crate::trace::received(&result);
        result
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        self.read().inbox(client, page)
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        self.read().held(page)
    }

    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError> {
        let (reply, client) = self.write().deliver_held(id, target)?;
        self.signals.notify(&client);
        self.forward_signals.notify();
        Ok(reply)
    }

    async fn held_count(&self) -> Result<u64, StoreError> {
        Ok(self.read().held_count())
    }

    async fn prune_delivered(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        Ok(self.write().prune_delivered(before, limit))
    }

    fn inbox_signals(&self) -> Option<InboxSignals> {
        Some(self.signals.clone())
    }
}
