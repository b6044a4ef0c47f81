//! Clients' API keys in memory: digests and prefixes, never the keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use ibiki_core::{ClientId, KEY_USE_RESOLUTION, KeyDigest, KeyInfo, KeyStore, StoreError};
use time::OffsetDateTime;

use crate::MemoryStore;
use crate::history::clock_micros;

/// Every live key by id, and the id of each digest.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    by_id: BTreeMap<u64, (KeyInfo, KeyDigest)>,
    by_digest: HashMap<KeyDigest, u64>,
    last_id: u64,
}

/// A key's lock apart from the routing state's: authenticating never waits
/// for a receive or an assignment.
#[derive(Debug, Default)]
pub(crate) struct KeyLock(RwLock<Keys>);

impl KeyLock {
    /// Poisoned only by a panic between two infallible map updates: go on.
    fn read(&self) -> RwLockReadGuard<'_, Keys> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keys> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Keys {
    fn add(&mut self, client: &ClientId, digest: &KeyDigest, prefix: &str) -> KeyInfo {
        self.last_id += 1;
        let info = KeyInfo {
            id: self.last_id,
            client: client.clone(),
            prefix: prefix.to_owned(),
            created_at: clock_micros(),
            last_used_at: None,
        };
        self.by_id.insert(info.id, (info.clone(), *digest));
        self.by_digest.insert(*digest, info.id);
        info
    }

    fn revoke(&mut self, client: &ClientId, id: u64) -> bool {
        if self
            .by_id
            .get(&id)
            .is_none_or(|(key, _)| key.client != *client)
        {
            return false;
        }
        if let Some((_, digest)) = self.by_id.remove(&id) {
            self.by_digest.remove(&digest);
        }
        true
    }

    /// The key's owner, and whether its recorded use is older than the
    /// resolution (so the caller takes the write lock to renew it).
    fn owner(&self, digest: &KeyDigest, now: OffsetDateTime) -> Option<(u64, ClientId, bool)> {
        let id = *self.by_digest.get(digest)?;
        let (key, _) = self.by_id.get(&id)?;
        let stale = key
            .last_used_at
            .is_none_or(|at| now - at >= KEY_USE_RESOLUTION);
        Some((id, key.client.clone(), stale))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn add_key(
        &self,
        client: &ClientId,
        digest: &KeyDigest,
        prefix: &str,
    ) -> Result<KeyInfo, StoreError> {
        Ok(self.keys().write().add(client, digest, prefix))
    }

    async fn keys_of(&self, client: &ClientId) -> Result<Vec<KeyInfo>, StoreError> {
        let keys = self.keys().read();
        Ok(keys
            .by_id
            .values()
            .filter(|(key, _)| key.client == *client)
            .map(|(key, _)| key.clone())
            .collect())
    }

    async fn revoke_key(&self, client: &ClientId, id: u64) -> Result<bool, StoreError> {
        Ok(self.keys().write().revoke(client, id))
    }

    async fn key_owner(&self, digest: &KeyDigest) -> Result<Option<ClientId>, StoreError> {
        let now = clock_micros();
        let found = self.keys().read().owner(digest, now);
        let Some((id, client, stale)) = found else {
            return Ok(None);
        };
        if stale {
            if let Some((key, _)) = self.keys().write().by_id.get_mut(&id) {
                key.last_used_at = Some(now);
            }
        }
        Ok(Some(client))
    }
}
