//! Everything the binary needs from PostgreSQL, in one place: with the
//! `postgres` feature, the store and the old system's table; without it,
//! the same functions answer that this build has no PostgreSQL support.

use std::sync::Arc;

use ibiki_core::Secret;
use ibiki_core::{DynReplyStore, ImportPlanner, StoreError};
use indicatif::ProgressBar;

use crate::import::ImportArgs;
use crate::server::StartError;
use crate::store::{DatabaseFlags, Stores};

#[cfg(not(feature = "postgres"))]
pub use self::disabled::*;
#[cfg(feature = "postgres")]
pub use self::enabled::*;

#[cfg(feature = "postgres")]
mod enabled {
    use ibiki_memory::MemoryStore;
    use ibiki_postgres::{ImportTable, PostgresStore, PostgresStoreBuilder};

    use super::*;

    /// A store whose commits do not wait for the disk, until [`sync`](Self::sync).
    pub struct Unsynced(PostgresStore);

    impl Unsynced {
        /// Waits until every change made is on disk.
        pub async fn sync(&self) -> Result<(), StoreError> {
            self.0.sync().await
        }
    }

    fn builder(url: &Secret, flags: &DatabaseFlags) -> PostgresStoreBuilder {
        PostgresStore::builder(url.expose())
            .schema(&flags.database_schema)
            .acquire_timeout(flags.database_timeout)
            .call_timeout(flags.database_timeout)
    }

    /// The store, migrated.
    pub async fn open(url: &Secret, flags: &DatabaseFlags) -> Result<Stores, StoreError> {
        let store = builder(url, flags).connect().await?;
        store.migrate().await?;
        tracing::info!(
            schema = %flags.database_schema,
            timeout_ms = flags.database_timeout.as_millis() as u64,
            "store: PostgreSQL, migrations applied"
        );
        Ok(Stores::new(store))
    }

    /// The store, migrated, committing without waiting for the disk (several
    /// times faster for an import); [`Unsynced::sync`] makes it all durable
    /// with one commit. A crash before that loses whole clients only, and
    /// running the import again restores them.
    pub async fn open_unsynced(
        url: &Secret,
        flags: &DatabaseFlags,
    ) -> Result<(Arc<DynReplyStore>, Option<Unsynced>), StartError> {
        // An import serves no live readers: no listening connection.
        let store = builder(url, flags)
            .synchronous_commit(false)
            .inbox_signals(false)
            .connect()
            .await?;
        store.migrate().await?;
        Ok((Arc::new(store.clone()), Some(Unsynced(store))))
    }

    /// The store as it is, changing nothing, not even the schema: an empty
    /// store in memory while ibiki's tables do not exist yet.
    pub async fn open_read_only(
        url: &Secret,
        flags: &DatabaseFlags,
    ) -> Result<Arc<DynReplyStore>, StartError> {
        let store = builder(url, flags).inbox_signals(false).connect().await?;
        if store.is_migrated().await? {
            return Ok(Arc::new(store));
        }
        tracing::warn!(
            schema = store.schema(),
            "ibiki's tables do not exist yet: checking against an empty store"
        );
        Ok(Arc::new(MemoryStore::new()))
    }

    /// Reads every row of the old system's table at `url` into `planner`.
    pub async fn read_table(
        args: &ImportArgs,
        url: &Secret,
        planner: &mut ImportPlanner,
        bar: &ProgressBar,
    ) -> Result<(), StartError> {
        let mut table = ImportTable::new();
        if let Some(name) = &args.table {
            table = table.table(name);
        }
        if let Some(column) = &args.client_column {
            table = table.client_column(column);
        }
        if let Some(column) = &args.numbers_column {
            table = table.numbers_column(column);
        }
        let mut reader = table.open(url.expose()).await?;
        tracing::info!(
            table = args.table.as_deref().unwrap_or(ImportTable::DEFAULT_TABLE),
            column = reader.numbers_column(),
            shape = ?reader.shape(),
            "reading the old system's table"
        );
        while let Some(rows) = reader.next_batch().await? {
            bar.inc(rows.len() as u64);
            rows.into_iter().for_each(|row| planner.push(row));
        }
        Ok(())
    }
}

#[cfg(not(feature = "postgres"))]
mod disabled {
    use super::*;

    const MISSING: &str = "a database URL was given, but this build has no PostgreSQL \
                           support (the `postgres` feature of ibiki-examples)";

    /// Never made: this build has no PostgreSQL support.
    pub enum Unsynced {}

    impl Unsynced {
        /// Never called.
        pub async fn sync(&self) -> Result<(), StoreError> {
            match *self {}
        }
    }

    /// Refused: no PostgreSQL support.
    pub async fn open(_: &Secret, _: &DatabaseFlags) -> Result<Stores, StoreError> {
        Err(StoreError::Backend(MISSING.into()))
    }

    /// Refused: no PostgreSQL support.
    pub async fn open_unsynced(
        _: &Secret,
        _: &DatabaseFlags,
    ) -> Result<(Arc<DynReplyStore>, Option<Unsynced>), StartError> {
        Err(MISSING.into())
    }

    /// Refused: no PostgreSQL support.
    pub async fn open_read_only(
        _: &Secret,
        _: &DatabaseFlags,
    ) -> Result<Arc<DynReplyStore>, StartError> {
        Err(MISSING.into())
    }

    /// Refused: no PostgreSQL support.
    pub async fn read_table(
        _: &ImportArgs,
        _: &Secret,
        _: &mut ImportPlanner,
        _: &ProgressBar,
    ) -> Result<(), StartError> {
        Err("--from-database needs PostgreSQL support (the `postgres` feature)".into())
    }
}
