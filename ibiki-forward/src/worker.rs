//! The forwarding loop of one process: claim due forwards, attempt them
//! concurrently, record each outcome.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use ibiki_core::ForwardStore;
use ibiki_core::{
    AttemptOutcome, ClaimRequest, ClientId, DynForwardStore, ForwardClaim, ForwardSignals, Lease,
};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{Id, JoinError, JoinSet};

use crate::schedule::RetrySchedule;
use crate::sender::{Attempt, Sender, SenderConfig};

/// How a [`Worker`] takes its share of the forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Attempts in flight at once, over every endpoint; `0` turns the
    /// worker off ([`Worker::run`] returns at once).
    pub concurrency: u32,
    /// Attempts in flight at once to one client's endpoint, so that a slow
    /// endpoint holds at most this many of the slots (`0` is taken as
    /// `1`).
    pub per_endpoint: u32,
    /// How long a claimed forward is the worker's: past it, the worker is
    /// presumed dead and the forward is claimed again (by any worker). It
    /// must cover an attempt ([`SenderConfig::timeout`]) and recording its
    /// outcome; [`lease_for`](Self::lease_for) gives one that does.
    pub lease: Duration,
    /// How often the store is read for due forwards when nothing wakes the
    /// worker: forwards whose retry came due, and everything when the store
    /// offers no [`ForwardSignals`].
    pub poll_interval: Duration,
}

impl WorkerConfig {
    /// The default [`concurrency`](Self::concurrency).
    pub const DEFAULT_CONCURRENCY: u32 = 64;
    /// The default [`per_endpoint`](Self::per_endpoint).
    pub const DEFAULT_PER_ENDPOINT: u32 = 4;
    /// The default [`poll_interval`](Self::poll_interval).
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

    /// The lease for attempts of at most `timeout`: twice the timeout plus
    /// 15 seconds (45 seconds for the default 15-second timeout).
    pub fn lease_for(timeout: Duration) -> Duration {
        timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(15))
    }

    /// The defaults, with the lease for `sender`'s timeout.
    pub fn for_sender(sender: &SenderConfig) -> Self {
        Self {
            lease: Self::lease_for(sender.timeout),
            ..Self::default()
        }
    }
}

impl Default for WorkerConfig {
    /// 64 attempts at once, 4 per endpoint, the lease for the default
    /// timeout (45 s), a read every second.
    fn default() -> Self {
        Self {
            concurrency: Self::DEFAULT_CONCURRENCY,
            per_endpoint: Self::DEFAULT_PER_ENDPOINT,
            lease: Self::lease_for(SenderConfig::DEFAULT_TIMEOUT),
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
        }
    }
}

/// What became of an attempt, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    /// The endpoint took the reply.
    Delivered,
    /// It failed, and the forward will be attempted again.
    AttemptFailed,
    /// It failed, and so did every scheduled attempt: the forward is
    /// failed.
    Exhausted,
}

impl AttemptResult {
    /// The result as metrics label it: `delivered`, `attempt_failed`,
    /// `exhausted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::AttemptFailed => "attempt_failed",
            Self::Exhausted => "exhausted",
        }
    }

    fn of(outcome: &AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::Delivered { .. } => Self::Delivered,
            AttemptOutcome::Failed {
                retry_in: Some(_), ..
            } => Self::AttemptFailed,
            AttemptOutcome::Failed { retry_in: None, .. } => Self::Exhausted,
        }
    }
}

/// Told of each attempt a [`Worker`] makes: what an embedder implements to
/// count them. Both methods do nothing unless implemented; they are called
/// on the attempt's task and should return quickly.
pub trait ForwardObserver: Send + Sync {
    /// An attempt ended as `result`, after `duration`.
    fn attempt(&self, result: AttemptResult, duration: Duration) {
        let _ = (result, duration);
    }

    /// A reply was delivered `lag` after it reached the inbox
    /// ([`Delivery::at`](ibiki_core::Delivery::at)).
    fn delivered(&self, lag: Duration) {
        let _ = lag;
    }
}

/// A [`ForwardObserver`] that ignores everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoopObserver;

impl ForwardObserver for NoopObserver {}

/// How long a store error holds the loop back, at first; it doubles with
/// each error in a row, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Outcomes queued for recording, at most, per slot of
/// [`WorkerConfig::concurrency`].
const UNRECORDED_PER_SLOT: usize = 4;
/// Outcomes recorded in one call of the store, at most.
const MAX_BATCH: usize = 1_000;
/// Tries at recording an outcome before the lease is left to expire.
const FINISH_TRIES: u32 = 3;
/// At shutdown, how long past the sender's timeout the attempts in flight
/// may take to finish and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The forwarding loop of one process: claims due forwards from the store,
/// attempts each with the [`Sender`] (concurrently, within the
/// [`WorkerConfig`]'s limits), and records each outcome, with the
/// [`RetrySchedule`]'s next delay when it failed. Outcomes are recorded by
/// one task, in batches ([`ForwardStore::finish_all`]): those of the attempts
/// that end while a batch is being written go together in the next. An
/// attempt's slot is free once its request is over and its outcome queued
/// (at most four per slot wait to be recorded): the forward stays leased
/// until the outcome is recorded.
///
/// Any number of workers, in any number of processes, can share a store:
/// each forward is leased to one at a time. A forward is delivered at least
/// once: a worker that dies, or cannot record an outcome, leaves the lease
/// to expire, and the forward is attempted again. So a receiver may see a
/// request twice, always with the same `webhook-id`.
///
/// ```no_run
/// use std::sync::Arc;
/// use ibiki_forward::{RetrySchedule, Sender, SenderConfig, Worker, WorkerConfig};
/// use ibiki_core::DynForwardStore;
///
/// # async fn run(store: Arc<DynForwardStore>) -> Result<(), ibiki_forward::SenderError> {
/// let sender = Sender::new(SenderConfig::default())?;
/// let worker = Worker::new(store, sender, RetrySchedule::default(), WorkerConfig::default());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let forwarding = tokio::spawn(worker.run(async {
///     let _ = stopped.await;
/// }));
/// // ... and at shutdown:
/// let _ = stop.send(());
/// let _ = forwarding.await;
/// # Ok(()) }
/// ```
pub struct Worker {
    shared: Shared,
    config: WorkerConfig,
}

struct Shared {
    store: Arc<DynForwardStore>,
    sender: Sender,
    schedule: RetrySchedule,
    observer: Arc<dyn ForwardObserver>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("store", &self.shared.store)
            .field("sender", &self.shared.sender)
            .field("schedule", &self.shared.schedule)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker forwarding `store`'s due forwards with `sender`, retrying
    /// failures on `schedule`.
    pub fn new(
        store: Arc<DynForwardStore>,
        sender: Sender,
        schedule: RetrySchedule,
        config: WorkerConfig,
    ) -> Self {
        let needed = sender
            .config()
            .timeout
            .saturating_add(Duration::from_secs(5));
        if config.lease < needed {
            tracing::warn!(
                lease = ?config.lease,
                timeout = ?sender.config().timeout,
                "the forwarding lease is barely longer than an attempt may take: \
                 attempts may overlap (see WorkerConfig::lease_for)"
            );
        }
        Self {
            shared: Shared {
                store,
                sender,
                schedule,
                observer: Arc::new(NoopObserver),
            },
            config,
        }
    }

    /// Tells `observer` of each attempt.
    pub fn with_observer(mut self, observer: Arc<dyn ForwardObserver>) -> Self {
        self.shared.observer = observer;
        self
    }

    /// Runs the loop until `shutdown` completes: then claims nothing more,
    /// and lets the attempts in flight end and be recorded, for at most the
    /// sender's timeout and a few seconds; any still running then are
    /// dropped, and their leases expire.
    ///
    /// When a claim finds nothing to do, the loop waits for the store's
    /// [`ForwardSignals`], an attempt ending, or the poll interval. A store
    /// error is logged (with `tracing`) and the loop backs off briefly; it
    /// never ends the loop.
    pub async fn run<F: Future<Output = ()>>(self, shutdown: F) {
        if self.config.concurrency == 0 {
            tracing::info!("forwarding is off (concurrency 0)");
            return;
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let config = self.config;
        // A channel allocates as it fills: a large concurrency costs nothing
        // up front.
        let capacity = usize::try_from(config.concurrency)
            .unwrap_or(usize::MAX)
            .saturating_mul(UNRECORDED_PER_SLOT)
            .min(Semaphore::MAX_PERMITS);
        let (recorder, outcomes) = mpsc::channel(capacity);
        let recording = tokio::spawn(record_outcomes(
            Arc::clone(&self.shared.store),
            outcomes,
            capacity.min(MAX_BATCH),
        ));
        let shared = Arc::new(self.shared);
        let signals = shared.store.forward_signals();
        let mut flight = InFlight::default();
        let mut errors = 0u32;
        loop {
            while let Some(joined) = flight.tasks.try_join_next_with_id() {
                flight.ended(joined);
            }
            let free = config.concurrency.saturating_sub(flight.len());
            if free > 0 {
                let request = ClaimRequest {
                    limit: free,
                    lease: config.lease,
                    per_endpoint: config.per_endpoint.max(1),
                    in_flight: flight.by_client(),
                };
                let claimed = tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    claimed = shared.store.claim(&request) => claimed,
                };
                match claimed {
                    Ok(claims) => {
                        errors = 0;
                        for claim in claims {
                            flight.start(&shared, &recorder, claim);
                        }
                    }
                    Err(error) => {
                        errors = errors.saturating_add(1);
                        tracing::warn!(%error, "claiming forwards failed; retrying shortly");
                    }
                }
            }
            let wait = if errors > 0 {
                backoff(errors)
            } else {
                config.poll_interval
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = flight.tasks.join_next_with_id() => flight.ended(joined),
                () = signaled(signals.as_ref()), if errors == 0 => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        let in_flight = flight.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                "forwarding stops: waiting for the attempts in flight"
            );
        }
        let limit = shared
            .sender
            .config()
            .timeout
            .saturating_add(SHUTDOWN_GRACE);
        let drained = tokio::time::timeout(limit, async {
            while let Some(joined) = flight.tasks.join_next_with_id().await {
                flight.ended(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                cut_short = flight.len(),
                "forwarding stopped with attempts in flight: their leases will expire \
                 and they will be attempted again"
            );
            flight.tasks.abort_all();
            while flight.tasks.join_next().await.is_some() {}
        }
        // The recorder ends once every attempt's handle on it is gone.
        drop(recorder);
        if tokio::time::timeout(SHUTDOWN_GRACE, recording)
            .await
            .is_err()
        {
            tracing::warn!("forwarding stopped before the last outcomes were recorded");
        }
    }
}

/// The attempts in flight, and whose they are.
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<()>,
    clients: HashMap<Id, ClientId>,
    per_client: HashMap<ClientId, u32>,
}

impl InFlight {
    fn len(&self) -> u32 {
        u32::try_from(self.tasks.len()).unwrap_or(u32::MAX)
    }

    fn by_client(&self) -> Vec<(ClientId, u32)> {
        self.per_client
            .iter()
            .map(|(client, n)| (client.clone(), *n))
            .collect()
    }

    fn start(
        &mut self,
        shared: &Arc<Shared>,
        recorder: &mpsc::Sender<Outcome>,
        claim: ForwardClaim,
    ) {
        let client = claim.client.clone();
        let task = self
            .tasks
            .spawn(attempt(Arc::clone(shared), recorder.clone(), claim));
        self.clients.insert(task.id(), client.clone());
        *self.per_client.entry(client).or_default() += 1;
    }

    fn ended(&mut self, joined: Result<(Id, ()), JoinError>) {
        let id = match joined {
            Ok((id, ())) => id,
            Err(error) => {
                if error.is_panic() {
                    tracing::error!(%error, "a forwarding attempt panicked; its lease will expire");
                }
                error.id()
            }
        };
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&client);
            }
        }
    }
}

async fn signaled(signals: Option<&ForwardSignals>) {
    match signals {
        Some(signals) => signals.notified().await,
        None => std::future::pending().await,
    }
}

fn backoff(errors: u32) -> Duration {
    let doublings = errors.saturating_sub(1).min(8);
    BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// One attempt, from the request to the recorded outcome.
async fn attempt(shared: Arc<Shared>, recorder: mpsc::Sender<Outcome>, claim: ForwardClaim) {
    let attempt = shared.sender.send(&claim).await;
    let retry_in = if attempt.is_delivered() {
        None
    } else {
        shared.schedule.delay_after(claim.lease.attempt)
    };
    let outcome = attempt.outcome(retry_in);
    let result = AttemptResult::of(&outcome);
    log(&claim, &attempt, result, retry_in);
    // The slot is free once the outcome is queued: the request is over, and
    // the forward stays leased until its outcome is recorded. A full queue
    // (the store slower than the endpoints) holds the slot meanwhile.
    let _ = recorder
        .send(Outcome {
            lease: claim.lease,
            outcome,
        })
        .await;
    shared.observer.attempt(result, attempt.duration);
    if result == AttemptResult::Delivered {
        let lag = OffsetDateTime::now_utc() - claim.reply.delivery.at;
        shared
            .observer
            .delivered(Duration::try_from(lag).unwrap_or_default());
    }
}

fn log(claim: &ForwardClaim, attempt: &Attempt, result: AttemptResult, retry_in: Option<Duration>) {
    let (forward, number) = (claim.lease.forward, claim.lease.attempt);
    let (client, kind, status) = (claim.client.as_str(), attempt.kind.as_str(), attempt.status);
    let duration = attempt.duration;
    let error = attempt.error.as_deref().unwrap_or_default();
    match result {
        AttemptResult::Delivered => tracing::debug!(
            forward,
            attempt = number,
            client,
            status,
            ?duration,
            "reply forwarded"
        ),
        AttemptResult::AttemptFailed => tracing::info!(
            forward,
            attempt = number,
            client,
            kind,
            status,
            ?duration,
            ?retry_in,
            error,
            "forwarding attempt failed; it will be retried"
        ),
        AttemptResult::Exhausted => tracing::warn!(
            forward,
            attempt = number,
            client,
            kind,
            status,
            ?duration,
            error,
            "forwarding failed: every scheduled attempt failed"
        ),
    }
}

/// An attempt's outcome on its way to the store.
struct Outcome {
    lease: Lease,
    outcome: AttemptOutcome,
}

/// Records the outcomes sent on `queue`, up to `batch` at once: those that
/// arrive while a batch is being written go in the next one, so the store
/// writes one batch per round trip however many attempts end meanwhile.
async fn record_outcomes(
    store: Arc<DynForwardStore>,
    mut queue: mpsc::Receiver<Outcome>,
    batch: usize,
) {
    let mut waiting = Vec::new();
    while queue.recv_many(&mut waiting, batch.max(1)).await > 0 {
        let outcomes: Vec<_> = waiting.drain(..).map(|o| (o.lease, o.outcome)).collect();
        finish(store.as_ref(), &outcomes).await;
    }
}

/// Records `outcomes`, trying again briefly on a store error; past that,
/// their leases expire and the forwards are attempted again.
async fn finish(store: &DynForwardStore, outcomes: &[(Lease, AttemptOutcome)]) {
    for tried in 1..=FINISH_TRIES {
        match store.finish_all(outcomes).await {
            Ok(recorded) => {
                for ((lease, _), _) in outcomes.iter().zip(recorded).filter(|(_, r)| !r) {
                    tracing::info!(
                        forward = lease.forward,
                        attempt = lease.attempt,
                        "the lease ended before the outcome was recorded: \
                         the forward was claimed again"
                    );
                }
                return;
            }
            Err(error) if tried < FINISH_TRIES => {
                tracing::warn!(
                    outcomes = outcomes.len(),
                    %error,
                    "recording forwarding attempts failed; trying again"
                );
                tokio::time::sleep(backoff(tried)).await;
            }
            Err(error) => tracing::error!(
                outcomes = outcomes.len(),
                %error,
                "recording forwarding attempts failed: their leases will expire \
                 and the forwards will be attempted again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(100), MAX_BACKOFF);
    }

    #[test]
    fn the_default_lease_covers_an_attempt() {
        let config = WorkerConfig::default();
        assert_eq!(config.lease, Duration::from_secs(45));
        let sender = SenderConfig {
            timeout: Duration::from_secs(2),
            ..SenderConfig::default()
        };
        assert_eq!(
            WorkerConfig::for_sender(&sender).lease,
            Duration::from_secs(19)
        );
    }

    #[test]
    fn results_are_named() {
        let failed = |retry_in| AttemptOutcome::Failed {
            status: Some(500),
            error: String::new(),
            retry_in,
        };
        assert_eq!(
            AttemptResult::of(&failed(Some(Duration::from_secs(1)))).as_str(),
            "attempt_failed"
        );
        assert_eq!(AttemptResult::of(&failed(None)).as_str(), "exhausted");
        assert_eq!(
            AttemptResult::of(&AttemptOutcome::Delivered { status: 204 }).as_str(),
            "delivered"
        );
    }
}
