//! Choosing the store at start: memory, or PostgreSQL when a URL is given;
//! and the database flags the server, `import` and `prune` share.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ibiki_core::Secret;
use ibiki_core::{DynForwardStore, DynKeyStore, DynReplyStore, ForwardStore, KeyStore, StoreError};
use ibiki_memory::MemoryStore;

/// The database flags shared by the server, `import` and `prune` (the URL
/// stays with each: the server and `import` may run without one).
#[derive(Debug, Clone, Args)]
pub struct DatabaseFlags {
    /// PostgreSQL schema holding the tables (lowercase letters, digits and
    /// '_'); created by the migrations if needed.
    #[arg(long, env = "IBIKI_DATABASE_SCHEMA", default_value = "ibiki")]
    pub database_schema: String,

    /// Deadline of every database call: waiting for a connection, each
    /// statement and its commit (e.g. 5s, 500ms, 1m). A call past it fails at
    /// once (a webhook answers 503, "retry") and its connection is closed;
    /// this is what keeps the server answering when the network to the
    /// database goes silent. Longer than the slowest call: an import's
    /// largest client, a prune batch.
    #[arg(
        long,
        env = "IBIKI_DATABASE_TIMEOUT",
        default_value = "5s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub database_timeout: Duration,
}

/// The longest `--database-timeout`: past this, a silent database stalls
/// webhooks longer than providers wait for an answer anyway.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Reads `500ms`, `5s` or `1m`: a positive whole number and a unit.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let example = "a whole number with ms, s or m, e.g. 5s or 500ms";
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: {example}"))?;
    let timeout = match unit {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount.saturating_mul(60)),
        _ => return Err(format!("{text:?} has no unit: {example}")),
    };
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!("{text:?}: between 1ms and 10m"));
    }
    Ok(timeout)
}

/// One store, seen through the three contracts the server needs of it: the
/// replies (and assignments), the clients' API keys, and the forwards to
/// clients' endpoints.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Assignments, inboxes and held replies.
    pub replies: Arc<DynReplyStore>,
    /// Clients' API keys.
    pub keys: Arc<DynKeyStore>,
    /// Clients' endpoints and the forwards of their replies.
    pub forwards: Arc<DynForwardStore>,
}

impl Stores {
    /// The three views of `store`.
    pub fn new<S: ForwardStore + KeyStore + 'static>(store: S) -> Self {
        let store = Arc::new(store);
        Self {
            replies: store.clone(),
            keys: store.clone(),
            forwards: store,
        }
    }
}

/// Opens the store: in memory without a database URL; PostgreSQL with one,
/// as `flags` say, migrated before the server takes any request.
pub async fn open_store(
    database_url: Option<&Secret>,
    flags: &DatabaseFlags,
) -> Result<Stores, StoreError> {
    match database_url {
        None => {
            tracing::info!("store: in memory (nothing survives a restart)");
            Ok(Stores::new(MemoryStore::new()))
        }
        Some(url) => crate::postgres::open(url, flags).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_with_their_unit() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        for bad in [
            "",
            "5",
            "s",
            "0s",
            "-1s",
            "1.5s",
            "5 s",
            "11m",
            "5h",
            "9999999999999999999m",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }
}
