//! Test stores on a real server, each in a schema of its own that is dropped
//! with the store (see `ibiki_postgres::testing` for the rules on
//! `DATABASE_URL` and `CI`).

use std::time::Duration;

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

/// A [`PostgresStore`] whose schema is dropped with it, and the server's URL.
#[derive(Debug)]
pub(crate) struct TestStore {
    store: PostgresStore,
    url: String,
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
            .call_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", describe(url)));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate {schema}: {e}"));
        Self {
            store: cleanup.attach(store),
            url: url.to_owned(),
        }
    }

    pub(crate) fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// The store alone, still dropping its schema with its last clone.
    pub(crate) fn into_store(self) -> PostgresStore {
        self.store
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
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
            .call_timeout(Duration::from_secs(30))
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
