//! Retention: deleting old delivered replies, in bounded batches.

use ibiki_core::StoreError;
use time::OffsetDateTime;

use crate::deadline::Db;

/// One call of the schema's `prune_delivered` function (migration
/// `0003_retention.sql`): one transaction deleting at most `limit` rows, so
/// that no lock is held long and no transaction grows large.
pub(crate) async fn prune_delivered(
    db: &Db,
    statement: &str,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    // PostgreSQL's integer is signed; more than i32::MAX rows is not a batch.
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let deleted: i64 = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_scalar(statement)
                .bind(before)
                .bind(limit)
                .fetch_one(conn)
        })
        .await?;
    // ROW_COUNT is never negative.
    Ok(u64::try_from(deleted).unwrap_or(0))
}
