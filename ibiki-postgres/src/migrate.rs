//! Creating and upgrading the schema with the embedded migrations.

use std::time::Duration;

use ibiki_core::StoreError;
use sqlx::{Connection, Executor, PgConnection};
use tokio::time::timeout;

use crate::deadline::DeadlineExceeded;
use crate::error::{migrate_error, store_error};
use crate::schema::Schema;

/// First key of the session advisory lock that serializes migrations of one
/// schema ("ibk" 03; the migration's SQL lists the other kinds).
const MIGRATION_LOCK: i32 = 0x6962_6b03;

/// Runs the migrations on `conn`, which is not returned to any pool: it gets
/// `search_path` set to the schema, so the migrations (written without a
/// schema) and sqlx's `_sqlx_migrations` history land in it.
pub(crate) async fn migrate(conn: &mut PgConnection, schema: &Schema) -> Result<(), StoreError> {
    // Two processes migrating the same schema wait for each other; different
    // schemas migrate in parallel, so sqlx's database-wide lock is not used.
    sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind(MIGRATION_LOCK)
        .bind(schema.as_str())
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    let quoted = schema.quoted();
    conn.execute(&*format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted}; SET search_path TO {quoted}"
    ))
    .await
    .map_err(store_error)?;
    // The migrations in `migrations/`, compiled in.
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_locking(false);
    migrator.run(&mut *conn).await.map_err(migrate_error)
}

/// Opens a connection like the pool's, migrates, closes it (which also
/// releases the lock).
/// Connecting must succeed within `connect_timeout`.
pub(crate) async fn migrate_with(
    options: &sqlx::postgres::PgConnectOptions,
    schema: &Schema,
    connect_timeout: Duration,
) -> Result<(), StoreError> {
    let mut conn = timeout(connect_timeout, PgConnection::connect_with(options))
        .await
        .map_err(|_| DeadlineExceeded(connect_timeout))?
        .map_err(store_error)?;
    let result = migrate(&mut conn, schema).await;
    // The result is what matters; a failed close only drops the socket.
    let _ = conn.close().await;
    result
}
