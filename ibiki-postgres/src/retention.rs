//! Retention: deleting old delivered replies, in bounded batches.

use ibiki_core::StoreError;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::store_error;

/// One call of the schema's `prune_delivered` function (migration
/// `0003_retention.sql`): one transaction deleting at most `limit` rows, so
/// that no lock is held long and no transaction grows large.
pub(crate) async fn prune_delivered(
    pool: &PgPool,
    statement: &str,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    // PostgreSQL's integer is signed; more than i32::MAX rows is not a batch.
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let deleted: i64 = sqlx::query_scalar(statement)
        .bind(before)
        .bind(limit)
        .fetch_one(pool)
        .await
        .map_err(store_error)?;
    // ROW_COUNT is never negative.
    Ok(u64::try_from(deleted).unwrap_or(0))
}
