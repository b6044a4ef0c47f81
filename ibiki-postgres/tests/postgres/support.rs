//! Test stores on a real server, each in a schema of its own that is dropped
//! with the store (see `ibiki_postgres::testing` for the rules on
//! `DATABASE_URL` and `CI`).

use std::time::Duration;

use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, InboundReply, Page,
    PageRequest, PhoneNumber, Receipt, ReplyStore, StoreError, StoredReply, async_trait,
};
use ibiki_postgres::PostgresStore;
pub(crate) use ibiki_postgres::testing::{
    SchemaGuard, check_reachable, database_url, describe, schema_exists, unique_schema,
};
use sqlx::{Connection, PgConnection};

/// A fresh, empty, migrated store in its own schema; `None` to skip.
pub(crate) async fn fresh_store() -> Option<TestStore> {
    let url = database_url()?;
    check_reachable(&url).await;
    Some(TestStore::create(&url).await)
}

/// A [`PostgresStore`] whose schema is dropped when it is.
#[derive(Debug)]
pub(crate) struct TestStore {
    store: PostgresStore,
    // Declared after `store`, so the pool is closed first.
    cleanup: SchemaGuard,
}

impl TestStore {
    pub(crate) async fn create(url: &str) -> Self {
        let schema = unique_schema();
        let cleanup = SchemaGuard::new(url, &schema);
        // Two connections: enough for the concurrency tests to race. A larger
        // pool would open a new connection for almost every call of a
        // sequential test, while the previous one is still being returned.
        let store = PostgresStore::builder(url)
            .schema(&schema)
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", describe(url)));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate {schema}: {e}"));
        Self { store, cleanup }
    }

    pub(crate) fn store(&self) -> &PostgresStore {
        &self.store
    }

    pub(crate) fn url(&self) -> &str {
        self.cleanup.url()
    }

    /// The schema, quoted for SQL text.
    pub(crate) fn schema(&self) -> String {
        format!("\"{}\"", self.store.schema())
    }

    /// Another store on the same schema with a pool of its own: separate
    /// connections.
    pub(crate) async fn second_store(&self) -> PostgresStore {
        PostgresStore::builder(self.url())
            .schema(self.store.schema())
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// A connection of its own, for statements by hand.
    pub(crate) async fn connection(&self) -> PgConnection {
        PgConnection::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }
}

#[async_trait]
impl AssignmentStore for TestStore {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        self.store.change_numbers(client, numbers, change).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.store.numbers_of(client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        self.store.owner_of(number).await
    }

    async fn list_clients(&self, page: &PageRequest) -> Result<Page<ClientSummary>, StoreError> {
        self.store.list_clients(page).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

#[async_trait]
impl ReplyStore for TestStore {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        self.store.receive(reply).await
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        self.store.inbox(client, page).await
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        self.store.held(page).await
    }
}
