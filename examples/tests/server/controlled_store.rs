//! A store wrapper the tests control: it can be down (every call fails with
//! `StoreError::Unavailable`) and can hold `receive` calls at a gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, DynReplyStore, HeldTarget,
    HistoryEvent, InboundReply, Page, PageRequest, PhoneNumber, Receipt, ReplyStore, StoreError,
    StoredReply,
};
use ibiki_memory::MemoryStore;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

#[derive(Debug)]
pub(crate) struct ControlledStore {
    inner: Arc<DynReplyStore>,
    down: AtomicBool,
    /// When set, `receive` takes a permit first: with none available it waits.
    gate: Option<Arc<Semaphore>>,
    /// One permit per `receive` that reached the gate.
    arrived: Arc<Semaphore>,
}

impl ControlledStore {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(MemoryStore::new()),
            down: AtomicBool::new(false),
            gate: None,
            arrived: Arc::new(Semaphore::new(0)),
        }
    }

    /// A store whose `receive` waits for [`open_gate`](Self::open_gate).
    pub(crate) fn gated() -> Self {
        Self {
            gate: Some(Arc::new(Semaphore::new(0))),
            ..Self::new()
        }
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Waits until a `receive` is waiting at the gate.
    pub(crate) async fn arrived(&self) {
        self.arrived
            .acquire()
            .await
            .expect("open semaphore")
            .forget();
    }

    /// Lets one waiting `receive` through.
    pub(crate) fn open_gate(&self) {
        if let Some(gate) = &self.gate {
            gate.add_permits(1);
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the test store is down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl AssignmentStore for ControlledStore {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        self.check()?;
        self.inner.change_numbers(client, numbers, change).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.check()?;
        self.inner.numbers_of(client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        self.check()?;
        self.inner.owner_of(number).await
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        self.check()?;
        self.inner.owner_at(number, at).await
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.check()?;
        self.inner.history(number, page).await
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        self.check()?;
        self.inner.list_clients(prefix, page).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
}

#[async_trait]
impl ReplyStore for ControlledStore {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        self.check()?;
        if let Some(gate) = &self.gate {
            self.arrived.add_permits(1);
            gate.acquire().await.expect("open semaphore").forget();
        }
        self.inner.receive(reply).await
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        self.check()?;
        self.inner.inbox(client, page).await
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        self.check()?;
        self.inner.held(page).await
    }

    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError> {
        self.check()?;
        self.inner.deliver_held(id, target).await
    }

    async fn held_count(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.held_count().await
    }

    async fn prune_delivered(
        &self,
        before: time::OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_delivered(before, limit).await
    }
}
