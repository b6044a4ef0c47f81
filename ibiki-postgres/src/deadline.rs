//! A deadline on every call of the store, enforced on the client side.
//!
//! A database whose network path goes silent (a failover that leaves
//! connections hanging, packets dropped without a reset) never answers and
//! never errors: without a deadline of its own, a call waits until the
//! operating system gives the socket up, about 15 minutes on Linux. So every
//! call of the store runs on a [`Lease`]: a pool connection taken and used
//! before one instant, the call's deadline. Past it the call fails as
//! [`StoreError::Unavailable`] (a webhook answers "retry"), and the connection
//! is closed, never returned to the pool: it may be dead, and its next user
//! would wait on it in turn. A lease dropped before its call finished (the
//! caller gave up) is closed the same way: the connection's state is unknown.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ibiki_core::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::time::{Instant, timeout_at};

use crate::error::store_error;

/// The pool and the deadline of each call on it.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: PgPool,
    timeout: Duration,
}

impl Db {
    pub(crate) fn new(pool: PgPool, timeout: Duration) -> Self {
        Self { pool, timeout }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The deadline of a call starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// A connection for a call starting now.
    pub(crate) async fn lease(&self) -> Result<Lease, StoreError> {
        self.lease_until(self.deadline()).await
    }

    /// A connection for a call that must be done by `deadline`; waiting for
    /// it counts against the deadline.
    pub(crate) async fn lease_until(&self, deadline: Instant) -> Result<Lease, StoreError> {
        match timeout_at(deadline, self.pool.acquire()).await {
            Ok(conn) => Ok(Lease {
                conn: Some(conn.map_err(store_error)?),
                settled: true,
                deadline,
                timeout: self.timeout,
            }),
            Err(_) => Err(DeadlineExceeded(self.timeout).into()),
        }
    }
}

/// A pool connection for one call. Returned to the pool when dropped, unless
/// a statement on it was cut short (deadline, or the caller gone): then it is
/// closed.
pub(crate) struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    /// False while a statement is in flight.
    settled: bool,
    deadline: Instant,
    timeout: Duration,
}

impl Lease {
    /// Runs `call` on the connection, within the call's deadline.
    ///
    /// `call` gets the connection borrowed for as long as the lease is, so
    /// that the statement may borrow its text and parameters from the caller.
    pub(crate) async fn run<'c, T, F, Fut>(&'c mut self, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(&'c mut PgConnection) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.within(call).await?.map_err(store_error)
    }

    /// [`run`](Self::run), keeping the statement's own error apart from the
    /// deadline, for a caller that tells database errors apart.
    pub(crate) async fn within<'c, T, F, Fut>(
        &'c mut self,
        call: F,
    ) -> Result<Result<T, sqlx::Error>, DeadlineExceeded>
    where
        F: FnOnce(&'c mut PgConnection) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let Self {
            conn,
            settled,
            deadline,
            timeout,
        } = self;
        let conn = conn.as_deref_mut().ok_or(DeadlineExceeded(*timeout))?;
        *settled = false;
        let outcome = timeout_at(*deadline, call(conn)).await;
        // Reached only if the statement finished or timed out; a future
        // dropped mid-statement leaves `settled` false.
        match outcome {
            Ok(result) => {
                *settled = true;
                Ok(result)
            }
            Err(_) => Err(DeadlineExceeded(*timeout)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.settled
            && let Some(conn) = self.conn.take()
        {
            // Out of the pool (which may open another at once), then the
            // socket closed without a goodbye: a dead peer would never read it.
            drop(conn.detach());
        }
    }
}

/// A database call that did not finish within its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded(pub Duration);

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database did not answer within {} ms (the call timeout); \
             its connection was closed",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

impl From<DeadlineExceeded> for StoreError {
    fn from(error: DeadlineExceeded) -> Self {
        StoreError::Unavailable(Box::new(error))
    }
}
