//! [`PostgresStoreBuilder`]: the pool and session settings of a store.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ibiki_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::PostgresStore;
use crate::error::{backend, store_error};
use crate::keepalive::{self, PING_IF_IDLE_FOR};
use crate::schema::Schema;

/// Session options that make the server end the backend of a client whose
/// network went silent (keepalive probes after 10 s idle, every 5 s, two
/// missed; unacknowledged data given up after 20 s), rolling back what it
/// held. They apply to TCP connections only.
const SERVER_KEEPALIVE: [(&str, &str); 4] = [
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "2"),
    ("tcp_user_timeout", "20000"),
];

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
///     .call_timeout(Duration::from_secs(3))
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
    call_timeout: Duration,
    statement_timeout: Option<Duration>,
    synchronous_commit: bool,
    inbox_signals: bool,
}

impl PostgresStoreBuilder {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            schema: PostgresStore::DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            call_timeout: PostgresStore::DEFAULT_CALL_TIMEOUT,
            statement_timeout: None,
            synchronous_commit: true,
            inbox_signals: true,
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

    /// The deadline of every call of the store (default 5 s), enforced on
    /// the client's side: waiting for a connection, the statements and the
    /// commit all count against it. A call past it fails with
    /// [`StoreError::Unavailable`] at once, and its connection is closed,
    /// never returned to the pool. This is what keeps a webhook answering
    /// "retry" when the network to the database goes silent (a failover that
    /// leaves connections hanging), where the server's `statement_timeout`
    /// never reaches the client.
    ///
    /// It also bounds the pings that check a connection before it is handed
    /// out, after it comes back, and every 5 s while it is idle (at most 5 s
    /// each), so a silent connection is closed within about 10 s even when
    /// nothing uses it. Migrations ([`PostgresStore::migrate`]) are bounded
    /// in connecting only: they may rightly take longer.
    ///
    /// Must be longer than the slowest call expected: an import's largest
    /// client, a prune batch.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
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

    /// Whether the store wakes live inbox readers (default `true`): one more
    /// connection, outside the pool, listens for the deliveries of every
    /// process on the schema (`LISTEN`, see
    /// [`ReplyStore::inbox_signals`](ibiki_core::ReplyStore::inbox_signals)),
    /// so that a caught-up reader waits instead of reading again on a timer.
    /// It checks itself with a bounded `SELECT 1` after 30 s without a
    /// notification and reconnects when that fails, waking every reader.
    ///
    /// The same connection wakes the store's forwarding workers when a
    /// forward becomes due
    /// ([`ForwardStore::forward_signals`](ibiki_core::ForwardStore::forward_signals)).
    ///
    /// Turn it off for a store that serves no live readers and runs no
    /// forwarding workers (an import, a prune), or behind a pooler in
    /// transaction mode, where a `LISTEN` hears nothing: readers then poll,
    /// and workers read on their timer.
    pub fn inbox_signals(mut self, on: bool) -> Self {
        self.inbox_signals = on;
        self
    }

    /// Opens the pool and one connection to check the settings, within the
    /// acquire timeout and the call timeout, whichever is shorter. Does not
    /// create or migrate the schema: see [`PostgresStore::migrate`].
    ///
    /// Starts tasks on the current Tokio runtime that ping the idle
    /// connections and listen for deliveries; they end with the last clone
    /// of the store.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let schema = Schema::new(&self.schema).map_err(backend)?;
        let options = self.connect_options()?;
        let connect_within = self.acquire_timeout.min(self.call_timeout);
        check_server(&options, connect_within).await?;
        let bound = keepalive::ping_bound(self.call_timeout);
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(connect_within)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    // A dead connection is closed and another one used.
                    Ok(meta.idle_for < PING_IF_IDLE_FOR || keepalive::answers(conn, bound).await)
                })
            })
            // Before sqlx's own (unbounded) ping of a returning connection.
            .after_release(move |conn, _| {
                Box::pin(async move { Ok(keepalive::answers(conn, bound).await) })
            })
            .connect_lazy_with(options);
        let store = PostgresStore::new(pool, schema, self.call_timeout, self.inbox_signals);
        tokio::spawn(keepalive::ping_idle(
            store.pool().clone(),
            store.alive(),
            bound,
        ));
        Ok(store)
    }

    fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        check_scheme(&self.url)?;
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
        session.extend(
            SERVER_KEEPALIVE
                .iter()
                .map(|&(name, value)| (name, value.to_owned())),
        );
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

/// The schemes of a PostgreSQL URL; sqlx reads any other as one too, and a
/// `mysql://` URL would fail later as a missing database.
fn check_scheme(url: &str) -> Result<(), StoreError> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    if matches!(scheme, "postgres" | "postgresql") {
        return Ok(());
    }
    let got = if scheme.is_empty() {
        "it has no scheme".to_owned()
    } else {
        format!("not {scheme}://")
    };
    Err(backend(format!(
        "a PostgreSQL URL starts with postgres:// or postgresql://, {got} \
         (e.g. postgres://user@localhost:5432/database)"
    )))
}

/// Opens one connection within `within` and closes it: the pool would report
/// any failure as "pool timed out", without the server or the cause.
async fn check_server(options: &PgConnectOptions, within: Duration) -> Result<(), StoreError> {
    let server = match options.get_socket() {
        Some(socket) => format!("the socket {}", socket.display()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match tokio::time::timeout(within, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            // The answer is in; a failed goodbye only drops the socket.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(source))) => {
            Err(StoreError::Unavailable(Box::new(ConnectError::Failed {
                server,
                source,
            })))
        }
        Ok(Err(error)) => Err(store_error(error)),
        Err(_) => Err(StoreError::Unavailable(Box::new(ConnectError::Silent {
            server,
            millis: within.as_millis(),
        }))),
    }
}

/// Why the first connection to the server failed, and where it was.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("cannot connect to PostgreSQL at {server}: {source}")]
    Failed {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to PostgreSQL at {server}: no answer within {millis} ms")]
    Silent { server: String, millis: u128 },
}

/// Leaves the URL out: it may hold a password.
impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("synchronous_commit", &self.synchronous_commit)
            .field("inbox_signals", &self.inbox_signals)
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
        const KEEPALIVE: &str = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 \
                                 -c tcp_keepalives_count=2 -c tcp_user_timeout=20000";
        let isolation = r"-c default_transaction_isolation=read\ committed";
        let options = PostgresStore::builder("postgres://db/app")
            .statement_timeout(Duration::from_micros(10))
            .connect_options()
            .expect("valid url");
        assert_eq!(
            options.get_options(),
            Some(format!("{isolation} {KEEPALIVE} -c statement_timeout=1").as_str())
        );
        assert_eq!(options.get_application_name(), Some("ibiki"));
        let options = PostgresStore::builder("postgres://db/app")
            .synchronous_commit(false)
            .connect_options()
            .expect("valid url");
        assert_eq!(
            options.get_options(),
            Some(format!("{isolation} {KEEPALIVE} -c synchronous_commit=off").as_str())
        );
    }
}
