//! [`PostgresStore`]: the store traits over a connection pool.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, ForwardSignals, HeldTarget,
    HistoryEvent, InboundReply, InboxSignals, Page, PageRequest, PhoneNumber, Receipt, ReplyStore,
    StoreError, StoredReply,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::assign;
use crate::builder::PostgresStoreBuilder;
use crate::deadline::Db;
use crate::error::backend;
use crate::schema::Schema;
use crate::sql::Statements;
use crate::{keepalive, listen, migrate, read, receive, reroute, retention, trace};

/// Assignments and replies in PostgreSQL, in a schema of their own.
///
/// Assignment changes are one statement, a function the migration creates;
/// receives are recorded in batches, many replies to a transaction (group
/// commit: one WAL flush for all, each caller answered after it). Both take
/// per-number advisory locks so that a reply received while its number is
/// being assigned ends in the new owner's inbox (see the crate docs). Every
/// call has a deadline ([`PostgresStoreBuilder::call_timeout`]). A
/// connection of its own listens for deliveries by any process on the schema
/// and wakes the live inbox readers ([`ReplyStore::inbox_signals`]), and the
/// forwarding workers when a forward becomes due
/// ([`ForwardStore::forward_signals`](ibiki_core::ForwardStore::forward_signals)).
/// Cloning is cheap and shares the pool, the batches and the listener.
#[derive(Clone)]
pub struct PostgresStore {
    db: Db,
    /// Held by every clone; the idle-connection pings and the listener stop,
    /// and let go of their connections, as soon as the last is dropped.
    alive: Arc<watch::Sender<()>>,
    schema: Schema,
    sql: Arc<Statements>,
    receives: Arc<receive::Batcher>,
    /// The live readers' wake-ups, fed by the store's listener; `None`
    /// without one.
    signals: Option<InboxSignals>,
    /// The forwarding workers' wake-ups, fed by the same listener; `None`
    /// without one.
    forward_signals: Option<ForwardSignals>,
    /// Drops a test schema with the last clone (`testing::SchemaGuard::attach`);
    /// declared last, so the pool handle goes first.
    #[cfg(feature = "testing")]
    pub(crate) schema_guard: Option<Arc<crate::testing::SchemaGuard>>,
}

impl PostgresStore {
    /// The schema used unless another is chosen.
    pub const DEFAULT_SCHEMA: &'static str = "ibiki";

    /// The deadline of a call unless another is chosen
    /// ([`PostgresStoreBuilder::call_timeout`]).
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

    /// Connects to `url` with the default settings and the `ibiki` schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Settings for a store on `url`, a `postgres://` URL.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(url.into())
    }

    /// A store on an existing pool, its tables in `schema`, each call within
    /// [`DEFAULT_CALL_TIMEOUT`](Self::DEFAULT_CALL_TIMEOUT).
    ///
    /// The pool's connections must run READ COMMITTED transactions
    /// (PostgreSQL's default); the store's functions refuse to run otherwise,
    /// since their locking relies on it. The pool is used as it was built:
    /// its idle connections are not pinged, and sqlx's check of a returning
    /// connection is not bounded; [`builder`](Self::builder) sets both up.
    ///
    /// Called on a Tokio runtime, the store also listens for deliveries on a
    /// connection of its own, as [`PostgresStoreBuilder::inbox_signals`]
    /// describes; elsewhere it offers no signals.
    pub fn from_pool(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        Ok(Self::new(
            pool,
            Schema::new(schema).map_err(backend)?,
            Self::DEFAULT_CALL_TIMEOUT,
            true,
        ))
    }

    /// The store; with `listen`, and on a Tokio runtime, its listener too.
    pub(crate) fn new(pool: PgPool, schema: Schema, call_timeout: Duration, listen: bool) -> Self {
        let sql = Arc::new(Statements::new(&schema));
        let mut store = Self {
            db: Db::new(pool, call_timeout),
            alive: Arc::new(watch::Sender::new(())),
            schema,
            sql,
            receives: Arc::default(),
            signals: None,
            forward_signals: None,
            #[cfg(feature = "testing")]
            schema_guard: None,
        };
        if listen && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let signals = InboxSignals::new();
            let forwards = ForwardSignals::new();
            let listener = listen::Listener {
                options: (*store.pool().connect_options()).clone(),
                channel: listen::channel(&store.schema),
                signals: signals.clone(),
                forward_channel: listen::forward_channel(&store.schema),
                forwards: forwards.clone(),
                connect_within: call_timeout,
                ping_within: keepalive::ping_bound(call_timeout),
            };
            runtime.spawn(listener.run(store.alive()));
            store.signals = Some(signals);
            store.forward_signals = Some(forwards);
        }
        store
    }

    /// Creates the schema if needed and applies the embedded migrations
    /// (`migrations/`), on a connection of its own. Idempotent; concurrent
    /// calls for one schema wait for each other.
    ///
    /// Connecting is bounded by the call timeout; the migrations themselves
    /// are not (an upgrade of a large table may rightly take longer).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::migrate_with(
            &self.db.pool().connect_options(),
            &self.schema,
            self.db.timeout(),
        )
        .await
    }

    /// Whether [`migrate`](Self::migrate) has created the store's tables in
    /// its schema (any version of them), within the call timeout.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        let table = format!("{}.assignments", self.schema.quoted());
        let mut lease = self.db.lease().await?;
        lease
            .run(|conn| {
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(&table)
                    .fetch_one(conn)
            })
            .await
    }

    /// Waits until every change committed so far on this server is on disk:
    /// one durable commit, whose flush covers all earlier ones. A store built
    /// with [`synchronous_commit(false)`](PostgresStoreBuilder::synchronous_commit)
    /// calls it before reporting its work done; otherwise it costs one commit.
    pub async fn sync(&self) -> Result<(), StoreError> {
        // txid_current() gives the transaction an id, so its commit is
        // written to the WAL and, with synchronous_commit on, flushed with
        // everything before it.
        let statement = "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT";
        let mut lease = self.db.lease().await?;
        lease
            .run(|conn| sqlx::raw_sql(statement).execute(conn))
            .await
            .map(drop)
    }

    /// The pool, for the application's own queries (which the call timeout
    /// does not bound).
    pub fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    /// The deadline of each call.
    pub fn call_timeout(&self) -> Duration {
        self.db.timeout()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn sql(&self) -> &Statements {
        &self.sql
    }

    pub(crate) fn forward_signals_of(&self) -> Option<ForwardSignals> {
        self.forward_signals.clone()
    }

    pub(crate) fn alive(&self) -> watch::Receiver<()> {
        self.alive.subscribe()
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        self.schema.as_str()
    }
}

/// Shows the schema and the pool's state, never the connection settings
/// (they may hold a password).
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("connections", &self.pool().size())
            .field("idle", &self.pool().num_idle())
            .field("call_timeout", &self.db.timeout())
            .finish_non_exhaustive()
    }
}

/// Whether this session's transactions may write.
const WRITABLE: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'";

#[async_trait]
impl AssignmentStore for PostgresStore {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        let work = assign::change(&self.db, &self.sql.change_numbers, client, numbers, change);
        trace::change(client, change, numbers.len(), work).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        read::numbers_of(&self.db, &self.sql.numbers_of, client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        read::owner_of(&self.db, &self.sql.owner_of, number).await
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        read::owner_at(&self.db, &self.sql.owner_at, number, at).await
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        read::history(&self.db, &self.sql.history, number, page).await
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        read::list_clients(&self.db, &self.sql, prefix, page).await
    }

    /// What a receive needs: a connection of the pool and an answer within
    /// the call timeout, from a server that accepts writes (not a standby,
    /// not read-only).
    async fn ping(&self) -> Result<(), StoreError> {
        let mut lease = self.db.lease().await?;
        let writable: bool = lease
            .run(|conn| sqlx::query_scalar(WRITABLE).fetch_one(conn))
            .await?;
        if writable {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the database accepts no writes (a standby, or read-only)".into(),
            ))
        }
    }
}

#[async_trait]
impl ReplyStore for PostgresStore {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        trace::receive(reply, |reply| {
            self.receives.receive(&self.db, &self.sql, reply)
        })
        .await
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        read::inbox(&self.db, &self.sql.inbox, client, page).await
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        read::held(&self.db, &self.sql.held, page).await
    }

    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError> {
        reroute::deliver_held(&self.db, &self.sql, id, target).await
    }

    async fn held_count(&self) -> Result<u64, StoreError> {
        read::held_count(&self.db, &self.sql.held_count).await
    }

    async fn prune_delivered(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        retention::prune_delivered(&self.db, &self.sql.prune_delivered, before, limit).await
    }

    /// Fed by the store's listener: deliveries by any process on the schema.
    fn inbox_signals(&self) -> Option<InboxSignals> {
        self.signals.clone()
    }
}
