//! The whole conformance suite through PgBouncer in transaction pooling mode.
//! Opt-in: `IBIKI_PGBOUNCER_URL` names a PgBouncer in front of the
//! `DATABASE_URL` server; without it every test here says it skipped and
//! passes. `docs/src/scaling.md` has the configuration and what needs it.
//!
//! Migrations go straight to the server: they hold a session advisory lock
//! and set `search_path` for the session, which a transaction pooler does
//! not keep between statements.

use std::time::Duration;

use ibiki_postgres::PostgresStore;

use crate::support::{SchemaGuard, check_reachable, database_url, describe, unique_schema};

/// A fresh store whose pool goes through PgBouncer, migrated directly;
/// `None` to skip.
async fn pooled_store() -> Option<PostgresStore> {
    let Some(pooled) = std::env::var("IBIKI_PGBOUNCER_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!(
            "pgbouncer test SKIPPED: set IBIKI_PGBOUNCER_URL to a PgBouncer in front of DATABASE_URL"
        );
        return None;
    };
    let direct = database_url()?;
    check_reachable(&direct).await;
    let schema = unique_schema();
    let cleanup = SchemaGuard::new(&direct, &schema);
    let migrator = PostgresStore::builder(&direct)
        .schema(&schema)
        .max_connections(1)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", describe(&direct)));
    migrator
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate {schema}: {e}"));
    migrator.pool().close().await;
    let store = PostgresStore::builder(&pooled)
        .schema(&schema)
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect through {}: {e}", describe(&pooled)));
    Some(cleanup.attach(store))
}

ibiki_core::conformance_tests!(pooled_store);
