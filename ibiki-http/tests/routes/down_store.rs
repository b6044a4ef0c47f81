//! A store that is down: every call fails with `StoreError::Unavailable`,
//! what a database out of reach reports.

use async_trait::async_trait;
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, HeldTarget, HistoryEvent,
    InboundReply, Page, PageRequest, PhoneNumber, Receipt, ReplyStore, StoreError, StoredReply,
};
use time::OffsetDateTime;

/// The backend detail every failure carries: it must stay out of answers.
pub(crate) const DETAIL: &str = "the test store is down";

/// Fails every call.
#[derive(Debug)]
pub(crate) struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable(DETAIL.into()))
}

#[async_trait]
impl AssignmentStore for DownStore {
    async fn change_numbers(
        &self,
        _: &ClientId,
        _: &[PhoneNumber],
        _: Change,
    ) -> Result<AssignmentChange, StoreError> {
        down()
    }

    async fn numbers_of(&self, _: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        down()
    }

    async fn owner_of(&self, _: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        down()
    }

    async fn owner_at(
        &self,
        _: PhoneNumber,
        _: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        down()
    }

    async fn history(
        &self,
        _: PhoneNumber,
        _: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        down()
    }

    async fn list_clients(
        &self,
        _: &str,
        _: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        down()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        down()
    }
}

#[async_trait]
impl ReplyStore for DownStore {
    async fn receive(&self, _: InboundReply) -> Result<Receipt, StoreError> {
        down()
    }

    async fn inbox(&self, _: &ClientId, _: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        down()
    }

    async fn held(&self, _: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        down()
    }

    async fn deliver_held(&self, _: u64, _: &HeldTarget) -> Result<StoredReply, StoreError> {
        down()
    }

    async fn prune_delivered(&self, _: OffsetDateTime, _: u32) -> Result<u64, StoreError> {
        down()
    }
}
