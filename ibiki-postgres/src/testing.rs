//! Helpers for tests against a real PostgreSQL server (feature `testing`).
//!
//! `DATABASE_URL` selects the server. Without it, tests that ask
//! [`database_url`] skip, saying so on stderr, unless `CI` is set (and not
//! "false"): then they fail. A server that is named but unreachable always
//! fails them ([`check_reachable`]). Each test works in a schema of its own
//! ([`unique_schema`]) that a [`SchemaGuard`] drops, so tests run in parallel
//! and leave nothing behind.

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

use crate::PostgresStore;

/// Prefix of every schema the tests create; `.ci/run` checks none is left.
pub const SCHEMA_PREFIX: &str = "ibiki_test_";

/// The server's URL, or `None` to skip (after saying so).
pub fn database_url() -> Option<String> {
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
            "\n*** {}: DATABASE_URL is not set, the PostgreSQL tests are SKIPPED \
             (they pass without testing anything). ***\n",
            std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "ibiki".to_owned())
        );
    });
}

/// Host, port and database of `url`, never its password.
pub fn describe(url: &str) -> String {
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
pub async fn check_reachable(url: &str) {
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
pub fn unique_schema() -> String {
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

/// Drops a schema when dropped; see `drop_schema`.
#[derive(Debug)]
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema the guard drops.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops `schema` on the server at `url` when the guard is dropped.
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }

    /// Gives the guard to `store`: the schema is dropped with the store's
    /// last clone, so a test hands the store itself to code that takes a
    /// store (the conformance suite) and nothing is left behind.
    pub fn attach(self, mut store: PostgresStore) -> PostgresStore {
        store.schema_guard = Some(Arc::new(self));
        store
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
pub async fn schema_exists(url: &str, schema: &str) -> bool {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("pg_namespace: {e}"))
}
