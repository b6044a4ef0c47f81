//! A store whose first claims and first outcomes fail, over a memory store;
//! it can also hold outcomes back, and counts the batches they come in.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ibiki_core::{
    AssignmentChange, AssignmentStore, AttemptOutcome, Change, ClaimRequest, ClientId,
    ClientSummary, EndpointPut, EndpointSecret, EndpointSecrets, EndpointState, EndpointUrl,
    Forward, ForwardClaim, ForwardSignals, ForwardStatus, ForwardStore, HeldTarget, HistoryEvent,
    InboundReply, InboxSignals, Lease, Page, PageRequest, PhoneNumber, Receipt, ReplyStore,
    StoreError, StoredReply,
};
use ibiki_memory::MemoryStore;
use time::OffsetDateTime;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Flaky {
    inner: Arc<MemoryStore>,
    claims_to_fail: AtomicU32,
    finishes_to_fail: AtomicU32,
    failed_claims: AtomicU32,
    failed_finishes: AtomicU32,
    /// Whether outcomes are recorded (`false`: `finish_all` waits).
    recording: watch::Sender<bool>,
    /// The size of each batch of outcomes, in order.
    batches: Mutex<Vec<usize>>,
}

impl Flaky {
    /// `inner`, whose next `claims` claims and `finishes` finishes fail.
    pub fn new(inner: Arc<MemoryStore>, claims: u32, finishes: u32) -> Self {
        Self {
            inner,
            claims_to_fail: AtomicU32::new(claims),
            finishes_to_fail: AtomicU32::new(finishes),
            failed_claims: AtomicU32::new(0),
            failed_finishes: AtomicU32::new(0),
            recording: watch::Sender::new(true),
            batches: Mutex::new(Vec::new()),
        }
    }

    /// Outcomes wait, unrecorded, until [`record_outcomes`](Self::record_outcomes).
    pub fn hold_outcomes(&self) {
        self.recording.send_replace(false);
    }

    pub fn record_outcomes(&self) {
        self.recording.send_replace(true);
    }

    /// The size of each batch `finish_all` was given so far.
    pub fn batches(&self) -> Vec<usize> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub fn failed_claims(&self) -> u32 {
        self.failed_claims.load(Ordering::SeqCst)
    }

    pub fn failed_finishes(&self) -> u32 {
        self.failed_finishes.load(Ordering::SeqCst)
    }
}

/// Takes one of `budget`'s failures, if any is left.
fn fail(budget: &AtomicU32, count: &AtomicU32) -> Result<(), StoreError> {
    let took = budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if took {
        count.fetch_add(1, Ordering::SeqCst);
        return Err(StoreError::Unavailable("the test's store is down".into()));
    }
    Ok(())
}

#[async_trait]
impl AssignmentStore for Flaky {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        self.inner.change_numbers(client, numbers, change).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.inner.numbers_of(client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_of(number).await
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_at(number, at).await
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.inner.history(number, page).await
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        self.inner.list_clients(prefix, page).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[async_trait]
impl ReplyStore for Flaky {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        self.inner.receive(reply).await
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        self.inner.inbox(client, page).await
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        self.inner.held(page).await
    }

    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError> {
        self.inner.deliver_held(id, target).await
    }

    async fn prune_delivered(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_delivered(before, limit).await
    }

    fn inbox_signals(&self) -> Option<InboxSignals> {
        self.inner.inbox_signals()
    }
}

#[async_trait]
impl ForwardStore for Flaky {
    async fn put_endpoint(
        &self,
        client: &ClientId,
        url: &EndpointUrl,
        enabled: bool,
        secret: EndpointSecret,
    ) -> Result<EndpointPut, StoreError> {
        self.inner.put_endpoint(client, url, enabled, secret).await
    }

    async fn endpoint(&self, client: &ClientId) -> Result<Option<EndpointState>, StoreError> {
        self.inner.endpoint(client).await
    }

    async fn endpoint_secrets(
        &self,
        client: &ClientId,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        self.inner.endpoint_secrets(client).await
    }

    async fn rotate_secret(
        &self,
        client: &ClientId,
        secret: EndpointSecret,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        self.inner.rotate_secret(client, secret).await
    }

    async fn delete_endpoint(&self, client: &ClientId) -> Result<bool, StoreError> {
        self.inner.delete_endpoint(client).await
    }

    async fn forwards(
        &self,
        client: &ClientId,
        status: Option<ForwardStatus>,
        page: &PageRequest,
    ) -> Result<Page<Forward>, StoreError> {
        self.inner.forwards(client, status, page).await
    }

    async fn forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        self.inner.forward(id).await
    }

    async fn retry_forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        self.inner.retry_forward(id).await
    }

    async fn replay(
        &self,
        client: &ClientId,
        since: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.replay(client, since).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ForwardClaim>, StoreError> {
        fail(&self.claims_to_fail, &self.failed_claims)?;
        self.inner.claim(request).await
    }

    async fn finish(&self, lease: Lease, outcome: &AttemptOutcome) -> Result<bool, StoreError> {
        fail(&self.finishes_to_fail, &self.failed_finishes)?;
        self.inner.finish(lease, outcome).await
    }

    async fn finish_all(
        &self,
        outcomes: &[(Lease, AttemptOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        if let Ok(mut batches) = self.batches.lock() {
            batches.push(outcomes.len());
        }
        let _ = self.recording.subscribe().wait_for(|on| *on).await;
        let mut recorded = Vec::with_capacity(outcomes.len());
        for (lease, outcome) in outcomes {
            recorded.push(self.finish(*lease, outcome).await?);
        }
        Ok(recorded)
    }

    async fn pending_forwards(&self) -> Result<u64, StoreError> {
        self.inner.pending_forwards().await
    }

    fn forward_signals(&self) -> Option<ForwardSignals> {
        self.inner.forward_signals()
    }
}
