//! Test stores on a real server, each in a schema of its own that is dropped
//! with the store.
//!
//! `DATABASE_URL` selects the server. Without it the tests skip, saying so on
//! stderr, unless `CI` is set (and not "false"): then they fail. A server that
//! is named but unreachable always fails them.

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ibiki_core::{
    AssignmentChange, AssignmentStore, ClientId, ClientSummary, InboundReply, Page, PageRequest,
    PhoneNumber, Receipt, ReplyStore, StoreError, StoredReply, async_trait,
};
use ibiki_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

/// Prefix of every schema the tests create; `.ci/run` checks none is left.
pub(crate) const SCHEMA_PREFIX: &str = "ibiki_test_";

/// The server's URL, or `None` to skip (after saying so).
pub(crate) fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "CI is set but DATABASE_URL is not: the PostgreSQL tests cannot be skipped in CI \
             (.ci/postgres.sh starts a server and exports DATABASE_URL)"
        ),
        _ => {
            say_skipped();
            None
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Written to stderr directly: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
fn say_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** ibiki-postgres: DATABASE_URL is not set, the PostgreSQL tests are SKIPPED \
             (they pass without testing anything). ***\n"
        );
    });
}

/// Host, port and database of `url`, never its password.
pub(crate) fn describe(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "an unparseable DATABASE_URL".to_owned(),
    }
}

/// Fails loudly, once per process, when the named server cannot be reached,
/// rather than after each test's pool timeout.
async fn check_reachable(url: &str) {
    static REACHABLE: tokio::sync::OnceCell<Result<(), String>> =
        tokio::sync::OnceCell::const_new();
    let checked = REACHABLE
        .get_or_init(|| async {
            let connect = PgConnection::connect(url);
            match tokio::time::timeout(Duration::from_secs(10), connect).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer in 10 s".to_owned()),
            }
        })
        .await;
    if let Err(e) = checked {
        panic!(
            "no PostgreSQL server reachable at {} (DATABASE_URL): {e}",
            describe(url)
        );
    }
}

/// A schema name no other test, property case or concurrent test process
/// uses.
pub(crate) fn unique_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static STARTED: OnceLock<u128> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{SCHEMA_PREFIX}{}_{started}_{n}", std::process::id())
}

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
        &self.cleanup.url
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

/// Drops a schema when dropped; see [`drop_schema`].
#[derive(Debug)]
pub(crate) struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    pub(crate) fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if let Err(e) = drop_schema(&self.url, &self.schema) {
            let message = format!("could not drop test schema {}: {e}", self.schema);
            if std::thread::panicking() {
                let _ = writeln!(std::io::stderr(), "{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

type DropRequest = (String, String, mpsc::Sender<Result<(), String>>);

/// Drops `schema` and waits until it is gone. `Drop` cannot wait for the
/// test's runtime (it may be the one running it), so one janitor thread with
/// a runtime and a connection of its own drops every schema; its warm
/// connection drops one in a few milliseconds, a new one would take tens.
fn drop_schema(url: &str, schema: &str) -> Result<(), String> {
    static JANITOR: OnceLock<Mutex<mpsc::Sender<DropRequest>>> = OnceLock::new();
    let janitor = JANITOR.get_or_init(|| {
        let (requests, received) = mpsc::channel::<DropRequest>();
        std::thread::spawn(move || janitor(received));
        Mutex::new(requests)
    });
    let (done, result) = mpsc::channel();
    janitor
        .lock()
        .map_err(|_| "the janitor's lock is poisoned".to_owned())?
        .send((url.to_owned(), schema.to_owned(), done))
        .map_err(|_| "the janitor thread is gone".to_owned())?;
    result
        .recv()
        .map_err(|_| "the janitor thread is gone".to_owned())?
}

fn janitor(requests: mpsc::Receiver<DropRequest>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let mut connection: Option<(String, PgConnection)> = None;
    for (url, schema, done) in requests {
        let result = runtime.block_on(drop_on(&mut connection, &url, &schema));
        if result.is_err() {
            // Start from a new connection next time.
            connection = None;
        }
        let _ = done.send(result);
    }
}

async fn drop_on(
    connection: &mut Option<(String, PgConnection)>,
    url: &str,
    schema: &str,
) -> Result<(), String> {
    if connection.as_ref().is_none_or(|(u, _)| u != url) {
        let conn = PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        *connection = Some((url.to_owned(), conn));
    }
    let Some((_, conn)) = connection.as_mut() else {
        return Err("no connection".to_owned());
    };
    // A statement the test abandoned may still hold a lock for a moment.
    let sql = format!("SET lock_timeout = '30s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    conn.execute(&*sql)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether `schema` exists on the server at `url`.
pub(crate) async fn schema_exists(url: &str, schema: &str) -> bool {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("pg_namespace: {e}"))
}

#[async_trait]
impl AssignmentStore for TestStore {
    async fn replace_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.store.replace_numbers(client, numbers).await
    }

    async fn add_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.store.add_numbers(client, numbers).await
    }

    async fn remove_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
    ) -> Result<AssignmentChange, StoreError> {
        self.store.remove_numbers(client, numbers).await
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
