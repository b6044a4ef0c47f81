//! PostgreSQL stores for the tests, each in a schema of its own that is
//! dropped afterwards, with `ibiki_postgres::testing` (which also says how
//! `DATABASE_URL` and `CI` decide whether they run).

use std::sync::Arc;
use std::time::Duration;

use ibiki_core::DynReplyStore;
use ibiki_core::Secret;
use ibiki_examples::open_store;
use ibiki_examples::store::DatabaseFlags;
pub(crate) use ibiki_postgres::testing::{
    SchemaGuard, check_reachable, database_url, unique_schema,
};

/// A test database: the URL and a fresh schema, dropped with this value.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    url: String,
    schema: String,
    _cleanup: SchemaGuard,
}

impl TestDatabase {
    /// A fresh schema on the `DATABASE_URL` server; `None` to skip.
    pub(crate) async fn create() -> Option<Self> {
        let url = database_url()?;
        check_reachable(&url).await;
        let schema = unique_schema();
        Some(Self {
            _cleanup: SchemaGuard::new(&url, &schema),
            url,
            schema,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// The store the server opens for `--database-url`: connected and
    /// migrated by the server's own code.
    pub(crate) async fn open_store(&self) -> Arc<DynReplyStore> {
        let url: Secret = self.url.parse().expect("non-empty URL");
        let flags = DatabaseFlags {
            database_schema: self.schema.clone(),
            database_timeout: Duration::from_secs(30),
        };
        open_store(Some(&url), &flags)
            .await
            .unwrap_or_else(|e| panic!("open the PostgreSQL store in {}: {e}", self.schema))
            .replies
    }
}
