//! [`PostgresStoreBuilder`]: the pool and session settings of a store.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ibiki_core::StoreError;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::PostgresStore;
use crate::error::{backend, store_error};
use crate::schema::Schema;

/// Connections idle for less than this are used without a ping first: the
/// pool pings every connection when it comes back, so a recent one is alive
/// and a receive costs one round trip, not two.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Settings for [`PostgresStore::builder`]; [`connect`](Self::connect) opens
/// the pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), ibiki_core::StoreError> {
/// use std::time::Duration;
/// use ibiki_postgres::PostgresStore;
///
/// let store = PostgresStore::builder("postgres://ibiki@db.internal/app")
///     .schema("sms")
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(2))
///     .statement_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `connect`"]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Option<Duration>,
    synchronous_commit: bool,
}

impl PostgresStoreBuilder {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            schema: PostgresStore::DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            synchronous_commit: true,
        }
    }

    /// The schema holding ibiki's tables (default `ibiki`), beside the
    /// application's own. Checked by [`connect`](Self::connect): lowercase
    /// ASCII letters, digits and `_`, at most 63 bytes, not starting with a
    /// digit or `pg_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Most connections the pool opens (default 10).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a call waits for a connection before failing with
    /// [`StoreError::Unavailable`] (default 5 s); also bounds `connect`.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The server's `statement_timeout` for the pool's connections (default:
    /// the server's). It bounds lock waits too; a statement that hits it fails
    /// with [`StoreError::Unavailable`].
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Whether a change waits for its commit to reach the disk (default
    /// `true`, PostgreSQL's `synchronous_commit`). With `false` each commit
    /// returns before its WAL is flushed: many small changes go several times
    /// faster, and a server crash may lose the last fraction of a second of
    /// them (whole transactions, never part of one). For bulk work such as an
    /// import, which then calls [`PostgresStore::sync`] before it reports;
    /// never for a server answering webhooks, which must not acknowledge a
    /// reply that is not on disk.
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }

    /// Opens the pool and one connection to check the settings. Does not
    /// create or migrate the schema: see [`PostgresStore::migrate`].
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let schema = Schema::new(&self.schema).map_err(backend)?;
        let options = self.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    // A dead connection is closed and another one used.
                    Ok(meta.idle_for < PING_IF_IDLE_FOR || conn.ping().await.is_ok())
                })
            })
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(PostgresStore::new(pool, schema))
    }

    fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        let mut options = PgConnectOptions::from_str(&self.url).map_err(store_error)?;
        if options.get_application_name().is_none() {
            options = options.application_name("ibiki");
        }
        // Startup options split on spaces; a backslash keeps one. READ
        // COMMITTED is what the store's locking relies on, whatever the
        // database's default.
        let mut session = vec![(
            "default_transaction_isolation",
            r"read\ committed".to_owned(),
        )];
        if let Some(timeout) = self.statement_timeout {
            // 0 would disable the timeout.
            let millis = timeout.as_millis().max(1);
            session.push(("statement_timeout", millis.to_string()));
        }
        if !self.synchronous_commit {
            session.push(("synchronous_commit", "off".to_owned()));
        }
        Ok(options.options(session))
    }
}

/// Leaves the URL out: it may hold a password.
impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("synchronous_commit", &self.synchronous_commit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url() {
        let builder = PostgresStore::builder("postgres://ibiki:hunter2@db/app");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"ibiki\""), "{shown}");
    }

    #[test]
    fn session_options() {
        let options = PostgresStore::builder("postgres://db/app")
            .statement_timeout(Duration::from_micros(10))
            .connect_options()
            .expect("valid url");
        assert_eq!(
            options.get_options(),
            Some(r"-c default_transaction_isolation=read\ committed -c statement_timeout=1")
        );
        assert_eq!(options.get_application_name(), Some("ibiki"));
        let options = PostgresStore::builder("postgres://db/app")
            .synchronous_commit(false)
            .connect_options()
            .expect("valid url");
        assert_eq!(
            options.get_options(),
            Some(r"-c default_transaction_isolation=read\ committed -c synchronous_commit=off")
        );
    }
}
