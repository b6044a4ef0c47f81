//! A pointer to a store is a store that calls the pointee's methods, its
//! overrides of the provided ones included.

#![cfg(feature = "testing")]

use std::sync::Arc;

use ibiki_core::testing::{client, number};
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, DynAssignmentStore, Page,
    PageRequest, PhoneNumber, StoreError,
};

/// Answers every assignment change with an error naming the method called.
#[derive(Debug)]
struct Named;

fn called(name: &str) -> StoreError {
    StoreError::Backend(name.into())
}

#[async_trait::async_trait]
impl AssignmentStore for Named {
    async fn change_numbers(
        &self,
        _: &ClientId,
        _: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        Err(called(&format!("change_numbers({change:?})")))
    }

    async fn replace_numbers(
        &self,
        _: &ClientId,
        _: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        Err(called("replace_numbers"))
    }

    async fn numbers_of(&self, _: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        Err(called("numbers_of"))
    }

    async fn owner_of(&self, _: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        Err(called("owner_of"))
    }

    async fn owner_at(
        &self,
        _: PhoneNumber,
        _: time::OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        Err(called("owner_at"))
    }

    async fn history(
        &self,
        _: PhoneNumber,
        _: &PageRequest,
    ) -> Result<Page<ibiki_core::HistoryEvent>, StoreError> {
        Err(called("history"))
    }

    async fn list_clients(
        &self,
        _: &str,
        _: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        Err(called("list_clients"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(called("ping"))
    }
}

async fn calls(store: &impl AssignmentStore) -> Vec<String> {
    let (who, numbers) = (client("acme"), [number("+14155550100")]);
    let results = [
        store.replace_numbers(&who, &numbers).await.map(drop),
        store.add_numbers(&who, &numbers).await.map(drop),
        store.remove_numbers(&who, &numbers).await.map(drop),
        store
            .change_numbers(&who, &numbers, Change::Replace)
            .await
            .map(drop),
        store.numbers_of(&who).await.map(drop),
        store.owner_of(numbers[0]).await.map(drop),
        store
            .owner_at(numbers[0], time::OffsetDateTime::UNIX_EPOCH)
            .await
            .map(drop),
        store
            .history(numbers[0], &PageRequest::first(1))
            .await
            .map(drop),
        store
            .list_clients("", &PageRequest::first(1))
            .await
            .map(drop),
        store.ping().await,
    ];
    results
        .into_iter()
        .map(|r| r.err().map(|e| e.to_string()).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn pointers_call_the_pointee_and_its_overrides() {
    let direct = calls(&Named).await;
    assert!(
        direct[0].contains("replace_numbers") && direct[1].contains("change_numbers(Add)"),
        "{direct:?}"
    );
    let local = Named;
    let boxed: Box<DynAssignmentStore> = Box::new(Named);
    assert_eq!(calls(&Arc::new(Named)).await, direct);
    assert_eq!(calls(&Box::new(Named)).await, direct);
    assert_eq!(calls(&boxed).await, direct);
    assert_eq!(calls(&Arc::<DynAssignmentStore>::from(boxed)).await, direct);
    assert_eq!(calls(&&local).await, direct);
    let borrowed: &DynAssignmentStore = &local;
    assert_eq!(calls(&borrowed).await, direct);
}
