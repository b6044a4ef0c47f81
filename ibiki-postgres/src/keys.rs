//! Clients' API keys: the `api_keys` table of migration 0005.

use async_trait::async_trait;
use ibiki_core::{ClientId, KEY_USE_RESOLUTION, KeyDigest, KeyInfo, KeyStore, StoreError};
use time::OffsetDateTime;

use crate::PostgresStore;
use crate::error::backend;

/// A key row: id, client, prefix, created, last used.
type KeyRow = (
    i64,
    ClientId,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

fn info((id, client, prefix, created_at, last_used_at): KeyRow) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        id: u64::try_from(id).map_err(backend)?,
        client,
        prefix,
        created_at,
        last_used_at,
    })
}

/// The resolution of `last_used_at`, in seconds, for the lookup's statement.
fn resolution_secs() -> f64 {
    KEY_USE_RESOLUTION.as_secs_f64()
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn add_key(
        &self,
        client: &ClientId,
        digest: &KeyDigest,
        prefix: &str,
    ) -> Result<KeyInfo, StoreError> {
        let row: KeyRow = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().add_key)
                    .bind(client)
                    .bind(&digest.as_bytes()[..])
                    .bind(prefix)
                    .fetch_one(conn)
            })
            .await?;
        info(row)
    }

    async fn keys_of(&self, client: &ClientId) -> Result<Vec<KeyInfo>, StoreError> {
        let rows: Vec<KeyRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().keys_of)
                    .bind(client)
                    .fetch_all(conn)
            })
            .await?;
        rows.into_iter().map(info).collect()
    }

    async fn revoke_key(&self, client: &ClientId, id: u64) -> Result<bool, StoreError> {
        // Ids are bigint identities: a larger one names no key.
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        let deleted = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query(&self.sql().revoke_key)
                    .bind(client)
                    .bind(id)
                    .execute(conn)
            })
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// One statement: the lookup by the digest's unique index, and the
    /// renewal of `last_used_at` when it is older than the resolution.
    async fn key_owner(&self, digest: &KeyDigest) -> Result<Option<ClientId>, StoreError> {
        self.db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_scalar(&self.sql().key_owner)
                    .bind(&digest.as_bytes()[..])
                    .bind(resolution_secs())
                    .fetch_optional(conn)
            })
            .await
    }
}
