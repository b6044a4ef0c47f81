//! PostgreSQL stores for the tests, each in a schema of its own that is
//! dropped afterwards (the approach of `ibiki-postgres`'s own tests).
//!
//! `DATABASE_URL` selects the server. Without it the PostgreSQL variants skip,
//! saying so on stderr, unless `CI` is set (and not "false"): then they fail.
//! A server that is named but unreachable always fails them.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ibiki_core::DynReplyStore;
use ibiki_examples::{Secret, open_store};
use sqlx::{Connection, Executor, PgConnection};

/// Prefix of every test schema; `.ci/run` checks that none is left.
const SCHEMA_PREFIX: &str = "ibiki_test_";

/// The server's URL, or `None` to skip (after saying so).
pub(crate) fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "CI is set but DATABASE_URL is not: the example server's PostgreSQL tests \
             cannot be skipped in CI"
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

/// Straight to stderr: the harness swallows the output of passing tests, and
/// a skip must be seen.
fn say_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** ibiki-examples: DATABASE_URL is not set, the example server's PostgreSQL \
             tests are SKIPPED (they pass without testing anything). ***\n"
        );
    });
}

/// Fails once, clearly, when the named server cannot be reached.
async fn check_reachable(url: &str) {
    static REACHABLE: tokio::sync::OnceCell<Result<(), String>> =
        tokio::sync::OnceCell::const_new();
    let checked = REACHABLE
        .get_or_init(|| async {
            match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url)).await {
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
        panic!("no PostgreSQL server reachable at DATABASE_URL: {e}");
    }
}

/// A schema name no other test or test process uses.
pub(crate) fn unique_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static STARTED: OnceLock<u128> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{SCHEMA_PREFIX}srv_{}_{started}_{n}", std::process::id())
}

/// A test database: the URL and a fresh schema, dropped with this value.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    url: String,
    schema: String,
}

impl TestDatabase {
    /// A fresh schema on the `DATABASE_URL` server; `None` to skip.
    pub(crate) async fn create() -> Option<Self> {
        let url = database_url()?;
        check_reachable(&url).await;
        Some(Self {
            url,
            schema: unique_schema(),
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
        open_store(Some(&url), &self.schema)
            .await
            .unwrap_or_else(|e| panic!("open the PostgreSQL store in {}: {e}", self.schema))
    }
}

impl Drop for TestDatabase {
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

/// Drops `schema` and waits until it is gone. `Drop` cannot wait on the
/// test's runtime, so one janitor thread with a runtime and a connection of
/// its own drops every schema.
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
    let mut connection: Option<PgConnection> = None;
    for (url, schema, done) in requests {
        let result = runtime.block_on(drop_on(&mut connection, &url, &schema));
        if result.is_err() {
            connection = None;
        }
        let _ = done.send(result);
    }
}

async fn drop_on(
    connection: &mut Option<PgConnection>,
    url: &str,
    schema: &str,
) -> Result<(), String> {
    if connection.is_none() {
        *connection = Some(
            PgConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let Some(conn) = connection.as_mut() else {
        return Err("no connection".to_owned());
    };
    // A server still shutting down may hold a lock for a moment.
    let sql = format!("SET lock_timeout = '30s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    conn.execute(&*sql)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
