//! Receiving replies, with group commit.
//!
//! Every receive is handed to one batching task per store, which records the
//! replies waiting (up to [`MAX_BATCH`]) in one transaction: one WAL flush
//! answers them all, and each caller gets its answer only after that commit.
//! A batch starts as soon as no other is committing, so an idle store waits
//! for nothing (a batch of one is one call of the schema's `receive`
//! function); replies that arrive while a batch commits form the next one.
//! Further batches (up to [`IN_FLIGHT`] at once, each on a connection of the
//! pool) start only when [`MAX_BATCH`] replies wait: on a machine short of
//! CPU, one batch at a time carries a burst in the fewest, largest
//! transactions, and the database's work per reply falls with the batch
//! size; more lanes keep replies moving when they arrive faster than that,
//! or while a batch waits for a lock.
//!
//! # A batch's transaction
//!
//! A batch is one call of the schema's `receive_batch` function
//! (`migrations/0004_receive_batch.sql`), sent on its own, outside any
//! `BEGIN`/`COMMIT`: the statement is the transaction, and the call returns
//! only after its commit (the server reports the commit's outcome before it
//! is ready for the next query, which the call waits for). One round trip
//! and one WAL flush per batch.
//! Inside, the function follows the lock order of the migrations
//! (`migrations/0001_assignments_and_replies.sql`), every statement of it
//! taking a new snapshot (READ COMMITTED):
//!
//! 1. the message ids already recorded are looked up (they are answered
//!    `Duplicate` and take no lock), and the number locks of the numbers of
//!    the other replies are taken, ascending (the keys of `lock_numbers`);
//! 2. the owners are read, after those locks: an assignment change of one of
//!    the numbers committed before, or waits until this batch commits and then
//!    releases what it held, exactly as for one receive; and the delivery
//!    locks of those owners are taken, in ascending key order, each once;
//! 3. one `INSERT` records the batch, numbering each owner's replies after its
//!    last position, in arrival order, the rows inserted in message id order
//!    (two batches holding the same ids wait for each other in the same
//!    order, never in a cycle).
//!
//! The order is number locks, then delivery locks, as for every other
//! transaction: a batch cannot deadlock with receives, assignment changes or
//! other batches. A batch holds several delivery locks where a single receive
//! holds one; they are the last locks it takes and are taken in one order.
//!
//! A message id twice in a batch is recorded once (the first copy; the other
//! is a `Duplicate`): the function finds the copies. A copy recorded by
//! another transaction after step 1 makes the insert skip a row: the function
//! raises [`SHORTFALL`], which undoes the whole statement (so no position is
//! left unused), and the batch is tried again, which now sees it.
//! When a batch fails with an error the server reported (a bad value, a
//! timeout), nothing of it was committed, and each of its replies is received
//! again on its own: one bad reply fails only its caller. Connection errors
//! fail the whole batch: whether its commit happened is unknown, as for a
//! single receive, and the provider's retry settles it by message id.
//!
//! # Deadlines
//!
//! Each receive must be answered within the store's call timeout, counted
//! from its call: waiting in the queue, for a lane, for a connection, and
//! the statement all count. A batch runs until the earliest deadline of its
//! replies; past it, the batch's connection is closed (it may be dead) and
//! every caller is answered "unavailable" (whether the commit happened is
//! unknown, as for a connection error), while the next batch goes ahead on
//! another connection. A caller that gave up is not recorded afterwards.

use std::fmt;
use std::sync::{Arc, Mutex};

use ibiki_core::{
    BoxError, ClientId, Destination, InboundReply, MessageId, PhoneNumber, Receipt, StoreError,
};
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use crate::deadline::{Db, DeadlineExceeded};
use crate::error::store_error;
use crate::sql::Statements;

/// The most replies recorded in one transaction.
pub(crate) const MAX_BATCH: usize = 64;

/// The most batches committing at once (each on a connection of its own);
/// all but the first start only with a full batch.
pub(crate) const IN_FLIGHT: usize = 4;

/// Receives waiting for the batching task, beyond which callers wait to queue.
const QUEUE: usize = 4 * MAX_BATCH;

/// Attempts of a batch whose insert met a copy committed meanwhile.
const ATTEMPTS: usize = 3;

/// The SQLSTATE `receive_batch` raises when a copy of one of its message ids
/// was committed meanwhile (see the migration).
const SHORTFALL: &str = "IBK01";

/// One receive waiting for its batch.
struct Job {
    reply: InboundReply,
    answer: oneshot::Sender<Result<Receipt, StoreError>>,
    /// When its caller stops waiting.
    deadline: Instant,
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
        db: &Db,
        sql: &Arc<Statements>,
        reply: InboundReply,
    ) -> Result<Receipt, StoreError> {
        let deadline = db.deadline();
        let late = || StoreError::from(DeadlineExceeded(db.timeout()));
        let (answer, answered) = oneshot::channel();
        let jobs = self.sender(db, sql);
        let job = Job {
            reply,
            answer,
            deadline,
        };
        match timeout_at(deadline, jobs.send(job)).await {
            Ok(Ok(())) => {}
            // The task stopped with its runtime: record this one directly.
            Ok(Err(mpsc::error::SendError(job))) => {
                return receive(db, &sql.receive, job.reply, deadline).await;
            }
            Err(_) => return Err(late()),
        }
        match timeout_at(deadline, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the receive batch stopped before committing".into(),
            )),
            Err(_) => Err(late()),
        }
    }

    fn sender(&self, db: &Db, sql: &Arc<Statements>) -> mpsc::Sender<Job> {
        let mut jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*jobs {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(batching(receiver, db.clone(), Arc::clone(sql)));
                *jobs = Some(sender.clone());
                sender
            }
        }
    }
}

/// The batching task: runs until every sender (the store and its clones) is
/// gone and every reply it took is handed to a batch. When a batch starts:
/// see the module documentation.
async fn batching(mut jobs: mpsc::Receiver<Job>, db: Db, sql: Arc<Statements>) {
    let lanes = Arc::new(Semaphore::new(IN_FLIGHT));
    let done = Arc::new(Notify::new());
    let mut waiting: Vec<Job> = Vec::new();
    let mut open = true;
    loop {
        if waiting.is_empty() {
            match jobs.recv().await {
                Some(job) => waiting.push(job),
                None => return,
            }
        }
        while open && waiting.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => waiting.push(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let idle = lanes.available_permits() == IN_FLIGHT;
        if idle || waiting.len() >= MAX_BATCH || !open {
            if let Ok(permit) = Arc::clone(&lanes).try_acquire_owned() {
                let batch = std::mem::take(&mut waiting);
                let lane = Lane {
                    permit: Some(permit),
                    done: Arc::clone(&done),
                };
                let span = crate::trace::batch(batch.len());
                tokio::spawn(commit(db.clone(), Arc::clone(&sql), batch, lane).instrument(span));
                continue;
            }
        }
        // A batch committed, or another reply arrived.
        tokio::select! {
            () = done.notified() => {}
            job = jobs.recv(), if open && waiting.len() < MAX_BATCH => match job {
                Some(job) => waiting.push(job),
                None => open = false,
            },
        }
    }
}

/// A committing batch's lane: dropped once its callers are answered, when it
/// frees the lane and wakes the batching task.
struct Lane {
    permit: Option<OwnedSemaphorePermit>,
    done: Arc<Notify>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Freed first: the task, woken, must find the lane free.
        drop(self.permit.take());
        self.done.notify_one();
    }
}

/// Records a batch and answers its callers.
async fn commit(db: Db, sql: Arc<Statements>, mut batch: Vec<Job>, _lane: Lane) {
    // A caller past its deadline was answered "unavailable" already.
    batch.retain(|job| !job.answer.is_closed());
    let Some(deadline) = batch.iter().map(|job| job.deadline).min() else {
        return;
    };
    if batch.len() == 1 {
        one_by_one(&db, &sql, batch).await;
        return;
    }
    let replies: Vec<&InboundReply> = batch.iter().map(|job| &job.reply).collect();
    let mut outcome = Err(Failure::Shortfall);
    for _ in 0..ATTEMPTS {
        outcome = record(&db, &sql, &replies, deadline).await;
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
            one_by_one(&db, &sql, batch).await;
        }
        Err(Failure::Unknown(error)) => {
            tracing::debug!(outcome = "failed", error = %error, "receive batch");
            let (transient, error) = match error {
                StoreError::Unavailable(source) => (true, source),
                StoreError::Backend(source) => (false, source),
                other => (false, Box::new(other) as BoxError),
            };
            let error = Arc::new(error);
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

/// Receives each reply in a transaction of its own and answers its caller,
/// each within its own deadline; a caller that gave up is skipped.
async fn one_by_one(db: &Db, sql: &Statements, batch: Vec<Job>) {
    for job in batch {
        if job.answer.is_closed() {
            continue;
        }
        let answer = receive(db, &sql.receive, job.reply, job.deadline).await;
        let _ = job.answer.send(answer);
    }
}

/// The error of a batch, shared by each of its callers.
#[derive(Debug, Clone)]
struct BatchError(Arc<BoxError>);

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recording a batch of replies failed: {}", self.0)
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&**self.0)
    }
}

/// Why a batch was not recorded.
enum Failure {
    /// A copy of a message id was recorded by another transaction meanwhile;
    /// rolled back.
    Shortfall,
    /// The server refused a statement; rolled back.
    Statement,
    /// Anything else: the connection, the pool, the deadline. The commit may
    /// have happened.
    Unknown(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(error) if error.code().as_deref() == Some(SHORTFALL) => {
                Self::Shortfall
            }
            sqlx::Error::Database(_) => Self::Statement,
            _ => Self::Unknown(store_error(error)),
        }
    }
}

/// Records a batch in one statement, its own transaction, by `deadline`: a
/// receipt per reply, in order.
async fn record(
    db: &Db,
    sql: &Statements,
    replies: &[&InboundReply],
    deadline: Instant,
) -> Result<Vec<Receipt>, Failure> {
    let mut rows = Rows::default();
    for reply in replies {
        rows.push(reply);
    }
    let mut lease = db.lease_until(deadline).await.map_err(Failure::Unknown)?;
    let outcomes: Vec<(bool, Option<ClientId>)> = lease
        .within(|conn| {
            sqlx::query_as(&sql.receive_batch)
                .bind(&rows.message_ids)
                .bind(&rows.to_numbers)
                .bind(&rows.to_unparsed)
                .bind(&rows.from)
                .bind(&rows.bodies)
                .bind(&rows.received_at)
                .fetch_all(conn)
        })
        .await
        .map_err(|late| Failure::Unknown(late.into()))??;
    if outcomes.len() != replies.len() {
        // Committed, but not answered reply by reply: as for a lost
        // connection, the provider's retry settles each by message id.
        return Err(Failure::Unknown(StoreError::Backend(
            format!(
                "receive_batch answered {} rows for {} replies",
                outcomes.len(),
                replies.len()
            )
            .into(),
        )));
    }
    Ok(outcomes
        .into_iter()
        .map(|(duplicate, owner)| receipt(duplicate, owner))
        .collect())
}

/// The batch's replies, column by column, as `receive_batch` takes them.
#[derive(Default)]
struct Rows<'a> {
    message_ids: Vec<Option<&'a str>>,
    to_numbers: Vec<Option<PhoneNumber>>,
    to_unparsed: Vec<Option<&'a str>>,
    from: Vec<&'a str>,
    bodies: Vec<&'a str>,
    received_at: Vec<OffsetDateTime>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, reply: &'a InboundReply) {
        let (number, unparsed) = destination_columns(&reply.to);
        self.message_ids
            .push(reply.message_id.as_ref().map(MessageId::as_str));
        self.to_numbers.push(number);
        self.to_unparsed.push(unparsed);
        self.from.push(&reply.from);
        self.bodies.push(&reply.body);
        self.received_at.push(reply.received_at);
    }
}

/// One reply in a transaction of its own, by `deadline`: one call of the
/// schema's `receive` function, which routes and records it in one statement.
async fn receive(
    db: &Db,
    statement: &str,
    reply: InboundReply,
    deadline: Instant,
) -> Result<Receipt, StoreError> {
    let (to_number, to_unparsed) = destination_columns(&reply.to);
    let mut lease = db.lease_until(deadline).await?;
    let (duplicate, owner): (bool, Option<ClientId>) = lease
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(reply.message_id.as_ref().map(MessageId::as_str))
                .bind(to_number)
                .bind(to_unparsed)
                .bind(&reply.from)
                .bind(&reply.body)
                .bind(reply.received_at)
                .fetch_one(conn)
        })
        .await?;
    Ok(receipt(duplicate, owner))
}

/// The receipt of a reply the schema's `receive` or `receive_batch` answered
/// with `(duplicate, owner)`.
fn receipt(duplicate: bool, owner: Option<ClientId>) -> Receipt {
    match (duplicate, owner) {
        (true, _) => Receipt::Duplicate,
        (false, Some(client)) => Receipt::Routed(client),
        (false, None) => Receipt::Held,
    }
}

/// The destination as the schema's two columns: the number, or the text
/// that did not read as one.
fn destination_columns(to: &Destination) -> (Option<PhoneNumber>, Option<&str>) {
    match to {
        Destination::Number(number) => (Some(*number), None),
        Destination::Unparsed(raw) => (None, Some(raw.as_str())),
    }
}
