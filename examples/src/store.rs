//! Choosing the store at start: memory, or PostgreSQL when a URL is given.

use std::sync::Arc;

use ibiki_core::{DynReplyStore, StoreError};
use ibiki_memory::MemoryStore;

use crate::config::Secret;

/// Opens the store the configuration names.
pub async fn open_store(database_url: Option<&Secret>) -> Result<Arc<DynReplyStore>, StoreError> {
    match database_url {
        None => {
            tracing::info!("store: in memory (nothing survives a restart)");
            Ok(Arc::new(MemoryStore::new()))
        }
        Some(_) => Err(StoreError::Backend(
            "this build has no PostgreSQL support".into(),
        )),
    }
}
