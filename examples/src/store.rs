//! Choosing the store at start: memory, or PostgreSQL when a URL is given.

use std::sync::Arc;

use ibiki_core::{DynReplyStore, StoreError};
use ibiki_memory::MemoryStore;

use ibiki_http::Secret;

/// Opens the store: in memory without a database URL; PostgreSQL with one,
/// its tables in `schema`, migrated before the server takes any request.
pub async fn open_store(
    database_url: Option<&Secret>,
    schema: &str,
) -> Result<Arc<DynReplyStore>, StoreError> {
    match database_url {
        None => {
            tracing::info!("store: in memory (nothing survives a restart)");
            Ok(Arc::new(MemoryStore::new()))
        }
        Some(url) => open_postgres(url, schema).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &Secret, schema: &str) -> Result<Arc<DynReplyStore>, StoreError> {
    let store = ibiki_postgres::PostgresStore::builder(url.expose())
        .schema(schema)
        .connect()
        .await?;
    store.migrate().await?;
    tracing::info!(schema = %schema, "store: PostgreSQL, migrations applied");
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &Secret, _: &str) -> Result<Arc<DynReplyStore>, StoreError> {
    Err(StoreError::Backend(
        "a database URL was given, but this build has no PostgreSQL support \
         (the `postgres` feature of ibiki-examples)"
            .into(),
    ))
}
