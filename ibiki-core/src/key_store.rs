//! The [`KeyStore`] contract: clients' API keys, kept as digests.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{ApiKey, ClientId, KeyDigest, StoreError};

/// A trait object of [`KeyStore`], as an application holds it.
pub type DynKeyStore = dyn KeyStore;

/// How stale [`KeyInfo::last_used_at`] may be: a store records a key's use
/// at most once per this interval, so authenticating never writes per request.
pub const KEY_USE_RESOLUTION: Duration = Duration::from_secs(60);

/// A key as it is listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The store's id of the key, unique across clients.
    pub id: u64,
    /// The client the key lets in.
    #[serde(skip)]
    pub client: ClientId,
    /// The key's first characters ([`ApiKey::prefix`]).
    pub prefix: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last authenticated a request, up to [`KEY_USE_RESOLUTION`]
    /// late; `None` before its first use.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A key just created: the only moment its text exists outside the client's
/// hands.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The key, to show once.
    pub key: ApiKey,
    /// What the store keeps of it.
    pub info: KeyInfo,
}

/// Clients' API keys.
///
/// Every implementation guarantees, and the conformance suite
/// ([`key_store_tests!`](crate::key_store_tests)) checks:
/// - a created key authenticates as its client, and only as it;
/// - a revoked key stops authenticating at once, for every reader of the
///   store (on PostgreSQL: every server sharing the database);
/// - the key's text is never stored: the store sees its [`KeyDigest`] and
///   prefix only;
/// - revoking is scoped to the key's client: another client's key id is
///   unknown.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// Records a key of `client`, known by its digest and prefix.
    async fn add_key(
        &self,
        client: &ClientId,
        digest: &KeyDigest,
        prefix: &str,
    ) -> Result<KeyInfo, StoreError>;

    /// `client`'s keys, oldest first.
    async fn keys_of(&self, client: &ClientId) -> Result<Vec<KeyInfo>, StoreError>;

    /// Revokes key `id` of `client`; `false` when `client` has no such key.
    async fn revoke_key(&self, client: &ClientId, id: u64) -> Result<bool, StoreError>;

    /// The client a presented key belongs to, if it is live, noting its use
    /// (at most once per [`KEY_USE_RESOLUTION`]).
    async fn key_owner(&self, digest: &KeyDigest) -> Result<Option<ClientId>, StoreError>;

    /// Creates a key for `client`: generates it, records its digest, and
    /// returns it, for the one time it is shown.
    ///
    /// ```
    /// use ibiki_core::{ApiKey, ClientId, KeyStore};
    /// use ibiki_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let acme = ClientId::new("acme")?;
    /// let created = store.create_key(&acme).await?;
    /// let presented = ApiKey::parse(created.key.expose())?;
    /// assert_eq!(store.key_owner(&presented.digest()).await?, Some(acme.clone()));
    ///
    /// store.revoke_key(&acme, created.info.id).await?;
    /// assert_eq!(store.key_owner(&presented.digest()).await?, None);
    /// # Ok(())
    /// # }
    /// ```
    async fn create_key(&self, client: &ClientId) -> Result<NewKey, StoreError> {
        let key = ApiKey::generate().map_err(|e| StoreError::Backend(Box::new(e)))?;
        let info = self.add_key(client, &key.digest(), key.prefix()).await?;
        Ok(NewKey { key, info })
    }
}

/// Implements [`KeyStore`] for a pointer to a store, every method calling
/// the pointee's.
macro_rules! deref_key_store {
    ($($pointer:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<'a, T: KeyStore + ?Sized> KeyStore for $pointer {
            async fn add_key(
                &self,
                client: &ClientId,
                digest: &KeyDigest,
                prefix: &str,
            ) -> Result<KeyInfo, StoreError> {
                (**self).add_key(client, digest, prefix).await
            }

            async fn keys_of(&self, client: &ClientId) -> Result<Vec<KeyInfo>, StoreError> {
                (**self).keys_of(client).await
            }

            async fn revoke_key(&self, client: &ClientId, id: u64) -> Result<bool, StoreError> {
                (**self).revoke_key(client, id).await
            }

            async fn key_owner(&self, digest: &KeyDigest) -> Result<Option<ClientId>, StoreError> {
                (**self).key_owner(digest).await
            }
        }
    )+};
}

deref_key_store!(Arc<T>, Box<T>, &'a T);
