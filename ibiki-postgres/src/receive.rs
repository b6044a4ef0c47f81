//! Receiving replies, with group commit.
//!
//! Every receive is handed to one batching task per store. The task takes the
//! first reply waiting, then every other one already queued (up to
//! [`MAX_BATCH`]), and records them in one transaction: one WAL flush answers
//! them all, and each caller gets its answer only after that commit. Replies
//! that arrive while batches are committing queue up and form the next batch;
//! an idle store waits for nothing (a batch of one is the schema's `receive`
//! function, as before). At most [`IN_FLIGHT`] batches commit at once, each on
//! a connection of the pool.
//!
//! # A batch's transaction
//!
//! The statements follow the lock order of the migration
//! (`migrations/0001_assignments_and_replies.sql`), every statement taking a
//! new snapshot (READ COMMITTED):
//!
//! 1. the message ids already recorded are looked up (they are answered
//!    `Duplicate` and take no lock), and the number locks of all the batch's
//!    numbers are taken, ascending, with `lock_numbers`;
//! 2. the owners are read, after those locks: an assignment change of one of
//!    the numbers committed before, or waits until this batch commits and then
//!    releases what it held, exactly as for one receive; and the delivery
//!    locks of those owners are taken, in ascending key order;
//! 3. one `INSERT` records the batch, numbering each owner's replies after its
//!    last position, in message id order (two batches holding the same ids
//!    wait for each other in the same order, never in a cycle).
//!
//! The order is number locks, then delivery locks, as for every other
//! transaction: a batch cannot deadlock with receives, assignment changes or
//! other batches. A batch holds several delivery locks where a single receive
//! holds one; they are the last locks it takes and are taken in one order.
//!
//! A message id twice in a batch is recorded once (the first copy; the other
//! is a `Duplicate`). A copy recorded by another transaction after step 1
//! makes the insert skip a row: the transaction is rolled back (so no
//! position is left unused) and the batch tried again, which now sees it.
//! When a batch fails with an error the server reported (a bad value, a
//! timeout), nothing of it was committed, and each of its replies is received
//! again on its own: one bad reply fails only its caller. Connection errors
//! fail the whole batch: whether its commit happened is unknown, as for a
//! single receive, and the provider's retry settles it by message id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ibiki_core::{
    ClientId, Destination, InboundReply, MessageId, PhoneNumber, Receipt, StoreError,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::error::{is_transient, store_error};
use crate::sql::Statements;

/// The most replies recorded in one transaction.
pub(crate) const MAX_BATCH: usize = 64;

/// The most batches committing at once (each on a connection of its own).
pub(crate) const IN_FLIGHT: usize = 4;

/// Receives waiting for the batching task, beyond which callers wait to queue.
const QUEUE: usize = 4 * MAX_BATCH;

/// Attempts of a batch whose insert met a copy committed meanwhile.
const ATTEMPTS: usize = 3;

/// One receive waiting for its batch.
struct Job {
    reply: InboundReply,
    answer: oneshot::Sender<Result<Receipt, StoreError>>,
}

/// The store's handle on its batching task, started on the first receive
/// (on the runtime that runs it) and again if that runtime has gone.
#[derive(Default)]
pub(crate) struct Batcher {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Batcher {
    /// Records `reply` in the next batch and answers once that batch has
    /// committed.
    pub(crate) async fn receive(
        &self,
        pool: &PgPool,
        sql: &Arc<Statements>,
        reply: InboundReply,
    ) -> Result<Receipt, StoreError> {
        let (answer, answered) = oneshot::channel();
        let jobs = self.sender(pool, sql);
        if let Err(mpsc::error::SendError(job)) = jobs.send(Job { reply, answer }).await {
            // The task stopped with its runtime: record this one directly.
            return receive(pool, &sql.receive, job.reply).await;
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the receive batch stopped before committing".into(),
            ))
        })
    }

    fn sender(&self, pool: &PgPool, sql: &Arc<Statements>) -> mpsc::Sender<Job> {
        let mut jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*jobs {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(batching(receiver, pool.clone(), Arc::clone(sql)));
                *jobs = Some(sender.clone());
                sender
            }
        }
    }
}

/// The batching task: runs until every sender (the store and its clones) is
/// gone.
async fn batching(mut jobs: mpsc::Receiver<Job>, pool: PgPool, sql: Arc<Statements>) {
    let lanes = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = jobs.recv().await {
        // Waiting for a free lane lets the next batch gather meanwhile.
        let Ok(lane) = Arc::clone(&lanes).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let span = crate::trace::batch(batch.len());
        tokio::spawn(commit(pool.clone(), Arc::clone(&sql), batch, lane).instrument(span));
    }
}

/// Records a batch and answers its callers.
async fn commit(pool: PgPool, sql: Arc<Statements>, batch: Vec<Job>, _lane: OwnedSemaphorePermit) {
    if batch.len() == 1 {
        for job in batch {
            let _ = job
                .answer
                .send(receive(&pool, &sql.receive, job.reply).await);
        }
        return;
    }
    let replies: Vec<&InboundReply> = batch.iter().map(|job| &job.reply).collect();
    let mut outcome = Err(Failure::Shortfall);
    for _ in 0..ATTEMPTS {
        outcome = record(&pool, &sql, &replies).await;
        if !matches!(outcome, Err(Failure::Shortfall)) {
            break;
        }
    }
    match outcome {
        Ok(receipts) => {
            tracing::debug!(outcome = "committed", "receive batch");
            for (job, receipt) in batch.into_iter().zip(receipts) {
                let _ = job.answer.send(Ok(receipt));
            }
        }
        // Nothing was committed: each on its own, so that only a bad reply
        // fails.
        Err(Failure::Shortfall | Failure::Statement) => {
            tracing::debug!(outcome = "one_by_one", "receive batch");
            for job in batch {
                let _ = job
                    .answer
                    .send(receive(&pool, &sql.receive, job.reply).await);
            }
        }
        Err(Failure::Connection(error)) => {
            let error = Arc::new(error);
            let transient = is_transient(&error);
            tracing::debug!(outcome = "failed", error = %error, "receive batch");
            for job in batch {
                let shared = Box::new(BatchError(Arc::clone(&error)));
                let _ = job.answer.send(Err(if transient {
                    StoreError::Unavailable(shared)
                } else {
                    StoreError::Backend(shared)
                }));
            }
        }
    }
}

/// The error of a batch, shared by each of its callers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("recording a batch of replies failed: {0}")]
struct BatchError(#[source] Arc<sqlx::Error>);

/// Why a batch was not recorded.
enum Failure {
    /// A copy of a message id was recorded by another transaction meanwhile;
    /// rolled back.
    Shortfall,
    /// The server refused a statement; rolled back.
    Statement,
    /// Anything else: the connection, the pool. The commit may have happened.
    Connection(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(_) => Self::Statement,
            _ => Self::Connection(error),
        }
    }
}

/// Records a batch in one transaction: a receipt per reply, in order.
async fn record(
    pool: &PgPool,
    sql: &Statements,
    replies: &[&InboundReply],
) -> Result<Vec<Receipt>, Failure> {
    // The first copy of each message id in the batch; later copies point to it.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    let mut copy_of: Vec<Option<usize>> = Vec::with_capacity(replies.len());
    for (i, reply) in replies.iter().enumerate() {
        let copy = reply
            .message_id
            .as_ref()
            .and_then(|id| match first_of.entry(id.as_str()) {
                std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                    None
                }
            });
        copy_of.push(copy);
    }
    let ids: Vec<&str> = first_of.keys().copied().collect();
    let numbers: Vec<PhoneNumber> = replies
        .iter()
        .filter_map(|reply| match reply.to {
            Destination::Number(number) => Some(number),
            Destination::Unparsed(_) => None,
        })
        .collect();

    let mut tx = pool.begin().await?;
    // 1. Already recorded (no lock needed), and the number locks.
    let recorded: Vec<String> = sqlx::query_scalar(&sql.batch_lock_numbers)
        .bind(&numbers)
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
    let recorded: std::collections::HashSet<&str> = recorded.iter().map(String::as_str).collect();
    // 2. The owners, read after the locks, and their delivery locks.
    let owners: Vec<(PhoneNumber, ClientId)> = if numbers.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(&sql.batch_owners)
            .bind(&numbers)
            .fetch_all(&mut *tx)
            .await?
    };
    let owners: HashMap<PhoneNumber, ClientId> = owners.into_iter().collect();

    // What to insert: the first copy of each reply not recorded yet.
    let mut receipts: Vec<Option<Receipt>> = vec![None; replies.len()];
    let mut rows = Rows::default();
    for (i, reply) in replies.iter().enumerate() {
        let id = reply.message_id.as_ref().map(MessageId::as_str);
        if copy_of[i].is_some() || id.is_some_and(|id| recorded.contains(id)) {
            receipts[i] = Some(Receipt::Duplicate);
            continue;
        }
        let owner = match &reply.to {
            Destination::Number(number) => owners.get(number).cloned(),
            Destination::Unparsed(_) => None,
        };
        receipts[i] = Some(match &owner {
            Some(client) => Receipt::Routed(client.clone()),
            None => Receipt::Held,
        });
        rows.push(reply, owner);
    }
    if !rows.is_empty() {
        // 3. The rows, numbered in each inbox.
        let inserted = sqlx::query(&sql.batch_insert)
            .bind(&rows.message_ids)
            .bind(&rows.to_numbers)
            .bind(&rows.to_unparsed)
            .bind(&rows.from)
            .bind(&rows.bodies)
            .bind(&rows.received_at)
            .bind(&rows.owners)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted != rows.len() as u64 {
            tx.rollback().await?;
            return Err(Failure::Shortfall);
        }
    }
    tx.commit().await?;
    Ok(receipts
        .into_iter()
        .map(|receipt| receipt.unwrap_or(Receipt::Duplicate))
        .collect())
}

/// The batch's new rows, column by column, as the insert binds them.
#[derive(Default)]
struct Rows<'a> {
    message_ids: Vec<Option<&'a str>>,
    to_numbers: Vec<Option<PhoneNumber>>,
    to_unparsed: Vec<Option<&'a str>>,
    from: Vec<&'a str>,
    bodies: Vec<&'a str>,
    received_at: Vec<OffsetDateTime>,
    owners: Vec<Option<ClientId>>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, reply: &'a InboundReply, owner: Option<ClientId>) {
        let (number, unparsed) = match &reply.to {
            Destination::Number(number) => (Some(*number), None),
            Destination::Unparsed(raw) => (None, Some(raw.as_str())),
        };
        self.message_ids
            .push(reply.message_id.as_ref().map(MessageId::as_str));
        self.to_numbers.push(number);
        self.to_unparsed.push(unparsed);
        self.from.push(&reply.from);
        self.bodies.push(&reply.body);
        self.received_at.push(reply.received_at);
        self.owners.push(owner);
    }

    fn len(&self) -> usize {
        self.message_ids.len()
    }

    fn is_empty(&self) -> bool {
        self.message_ids.is_empty()
    }
}

/// One reply in a transaction of its own: one call of the schema's `receive`
/// function, which routes and records it in one statement.
pub(crate) async fn receive(
    pool: &PgPool,
    statement: &str,
    reply: InboundReply,
) -> Result<Receipt, StoreError> {
    let (to_number, to_unparsed) = match &reply.to {
        Destination::Number(number) => (Some(*number), None),
        Destination::Unparsed(raw) => (None, Some(raw.as_str())),
    };
    let (duplicate, owner): (bool, Option<ClientId>) = sqlx::query_as(statement)
        .bind(reply.message_id.as_ref().map(MessageId::as_str))
        .bind(to_number)
        .bind(to_unparsed)
        .bind(&reply.from)
        .bind(&reply.body)
        .bind(reply.received_at)
        .fetch_one(pool)
        .await
        .map_err(store_error)?;
    Ok(match (duplicate, owner) {
        (true, _) => Receipt::Duplicate,
        (false, Some(client)) => Receipt::Routed(client),
        (false, None) => Receipt::Held,
    })
}
