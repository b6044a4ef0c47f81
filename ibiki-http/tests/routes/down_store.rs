//! A store that is down: every call fails with `StoreError::Unavailable`,
//! what a database out of reach reports.
//!
//! The store traits are `async_trait` traits; their methods are written out
//! here as the boxed futures that macro makes, so that no dependency is added
//! for one test store.

use std::future::{Future, ready};
use std::pin::Pin;

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

/// What an `async_trait` method returns.
type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

fn down<'a, T: Send + 'a>() -> Answer<'a, T> {
    Box::pin(ready(Err(StoreError::Unavailable(DETAIL.into()))))
}

impl AssignmentStore for DownStore {
    fn change_numbers<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        _: &'life1 ClientId,
        _: &'life2 [PhoneNumber],
        _: Change,
    ) -> Answer<'async_trait, AssignmentChange>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn numbers_of<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _: &'life1 ClientId,
    ) -> Answer<'async_trait, Vec<PhoneNumber>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn owner_of<'life0, 'async_trait>(
        &'life0 self,
        _: PhoneNumber,
    ) -> Answer<'async_trait, Option<ClientId>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn owner_at<'life0, 'async_trait>(
        &'life0 self,
        _: PhoneNumber,
        _: OffsetDateTime,
    ) -> Answer<'async_trait, Option<ClientId>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn history<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _: PhoneNumber,
        _: &'life1 PageRequest,
    ) -> Answer<'async_trait, Page<HistoryEvent>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn list_clients<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _: &'life1 PageRequest,
    ) -> Answer<'async_trait, Page<ClientSummary>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn ping<'life0, 'async_trait>(&'life0 self) -> Answer<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }
}

impl ReplyStore for DownStore {
    fn receive<'life0, 'async_trait>(&'life0 self, _: InboundReply) -> Answer<'async_trait, Receipt>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn inbox<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        _: &'life1 ClientId,
        _: &'life2 PageRequest,
    ) -> Answer<'async_trait, Page<StoredReply>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn held<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _: &'life1 PageRequest,
    ) -> Answer<'async_trait, Page<StoredReply>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn deliver_held<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _: u64,
        _: &'life1 HeldTarget,
    ) -> Answer<'async_trait, StoredReply>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }

    fn prune_delivered<'life0, 'async_trait>(
        &'life0 self,
        _: OffsetDateTime,
        _: u32,
    ) -> Answer<'async_trait, u64>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        down()
    }
}
