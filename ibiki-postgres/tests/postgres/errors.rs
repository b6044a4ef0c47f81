//! Failures: which ones a webhook retries (`Unavailable`), which not
//! (`Backend`), and what the store shows of its settings.

use std::error::Error as _;
use std::net::TcpListener;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ibiki_core::testing::{number, reply, whole_held};
use ibiki_core::{AssignmentStore, ReplyStore, StoreError};
use ibiki_postgres::{InvalidSchemaName, PostgresStore};
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::support::fresh_store;

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .port()
}

/// No server: `Unavailable` (retry later) once the acquire timeout is up,
/// with sqlx's error as the source. Needs no database.
#[tokio::test]
async fn no_server_is_unavailable_quickly() {
    let url = format!("postgres://ibiki@127.0.0.1:{}/ibiki", closed_port());
    let started = Instant::now();
    let result = PostgresStore::builder(url)
        .acquire_timeout(Duration::from_millis(300))
        .connect()
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(e @ StoreError::Unavailable(_)) => assert!(e.source().is_some()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

/// Bad settings are the caller's to fix: `Backend`, never a retry. Needs no
/// database.
#[tokio::test]
async fn bad_settings_are_backend_errors() {
    let bad_schema = PostgresStore::builder("postgres://ibiki@127.0.0.1/ibiki")
        .schema("Robert'); DROP TABLE students;--")
        .connect()
        .await;
    match bad_schema {
        Err(StoreError::Backend(e)) => assert!(e.downcast_ref::<InvalidSchemaName>().is_some()),
        other => panic!("expected Backend, got {other:?}"),
    }
    let bad_url = PostgresStore::connect("not a url").await;
    assert!(
        matches!(bad_url, Err(StoreError::Backend(_))),
        "{bad_url:?}"
    );
    let pool = PgPoolOptions::new().connect_lazy_with(PgConnectOptions::new());
    let from_pool = PostgresStore::from_pool(pool, "pg_catalog");
    assert!(
        matches!(from_pool, Err(StoreError::Backend(_))),
        "{from_pool:?}"
    );
}

/// `Debug` shows the schema and the pool, never the password. Needs no
/// database.
#[tokio::test]
async fn debug_shows_no_secrets() {
    let options = PgConnectOptions::from_str("postgres://ibiki:hunter2-secret@db.internal/app")
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = PgPoolOptions::new().connect_lazy_with(options);
    let store = PostgresStore::from_pool(pool, "sms").unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{store:?}");
    assert!(shown.contains("\"sms\""), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let builder = PostgresStore::builder("postgres://ibiki:hunter2-secret@db.internal/app");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

/// A receive waits for the number's lock; past the statement timeout it
/// gives up with `Unavailable` and records nothing.
#[tokio::test]
async fn a_statement_timeout_is_unavailable() {
    let Some(test) = fresh_store().await else {
        return;
    };
    // A number no other test uses: the lock is database-wide.
    let to = "+19995550123";
    let mut holder = test.connection().await;
    let lock = format!(
        "BEGIN; SELECT pg_advisory_xact_lock({})",
        number(to).as_u64()
    );
    holder
        .execute(&*lock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::builder(test.url())
        .schema(test.store().schema())
        .statement_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = store.receive(reply(Some("SM1"), to, "hi", 0)).await;
    holder
        .execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(whole_held(&store).await.is_empty(), "nothing recorded");
    let retried = store.receive(reply(Some("SM1"), to, "hi", 0)).await;
    assert_eq!(
        retried.ok(),
        Some(ibiki_core::Receipt::Held),
        "a retry works"
    );
}

/// A closed pool is `Unavailable`.
#[tokio::test]
async fn a_closed_pool_is_unavailable() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.second_store().await;
    store.pool().close().await;
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
}
