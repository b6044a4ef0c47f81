//! Noticing dead connections that nobody is using.
//!
//! sqlx 0.8 opens its sockets itself and exposes no socket option, so TCP
//! keepalive and `TCP_USER_TIMEOUT` cannot be set on the client's side. The
//! closest it allows is the protocol's own round trip (`Sync`, answered by
//! `ReadyForQuery`), bounded in time:
//!
//! - a task pings every idle connection of the pool every [`EVERY`] and
//!   closes those that do not answer within the ping bound, so a silent
//!   connection is gone within `EVERY` + the bound even when nothing uses it;
//! - the pool pings a connection it hands out after [`PING_IF_IDLE_FOR`] of
//!   rest, and every connection it takes back (sqlx's own check); both are
//!   bounded here, so neither waits on a dead socket.
//!
//! On the server's side, the session options set by the builder
//! (`tcp_keepalives_*`, `tcp_user_timeout`) make PostgreSQL end the backend
//! of a client that went silent, rolling back what it held.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio::sync::watch;
use tokio::time::timeout;

/// How often idle connections are pinged.
pub(crate) const EVERY: Duration = Duration::from_secs(5);

/// Connections idle for less than this are handed out without a ping: the
/// pool pings every connection when it comes back, so a recent one is alive
/// and a call costs one round trip, not two.
pub(crate) const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// The longest a ping may take: the call timeout, at most 5 s (a healthy
/// server answers a ping without touching a lock or the disk).
pub(crate) fn ping_bound(call_timeout: Duration) -> Duration {
    call_timeout.min(Duration::from_secs(5))
}

/// Whether `conn` answered a ping within `bound`.
pub(crate) async fn answers(conn: &mut PgConnection, bound: Duration) -> bool {
    matches!(timeout(bound, conn.ping()).await, Ok(Ok(())))
}

/// Pings the idle connections of `pool` every [`EVERY`] until the sender of
/// `alive` is gone (the store and all its clones dropped): then at once, so
/// that the pool, and its connections, go with the store.
pub(crate) async fn ping_idle(pool: PgPool, mut alive: watch::Receiver<()>, bound: Duration) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            // Err: the store is gone; it never sends otherwise.
            _ = alive.changed() => return,
        }
        if pool.is_closed() {
            return;
        }
        // Taken out all at once, so that none is pinged twice while another
        // waits; checked concurrently, so that one dead connection does not
        // keep the others out of the pool.
        let idle: Vec<_> = (0..pool.num_idle())
            .map_while(|_| pool.try_acquire())
            .collect();
        for conn in idle {
            tokio::spawn(check(conn, bound));
        }
    }
}

/// Returns `conn` to the pool if it answers, closes it otherwise.
async fn check(mut conn: PoolConnection<Postgres>, bound: Duration) {
    if !answers(&mut conn, bound).await {
        tracing::warn!(
            bound_ms = bound.as_millis() as u64,
            "an idle database connection did not answer a ping: closed"
        );
        drop(conn.detach());
    }
}
