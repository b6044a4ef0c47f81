//! The [`ForwardStore`] contract: each reply that reaches an inbox is
//! forwarded to its client's own endpoint, at least once, whatever fails.
//!
//! A *forward* is one reply's delivery to its client's endpoint (the HTTP API
//! lists them as `deliveries`). The store creates it in the same atomic step
//! that puts the reply in the inbox, hands it to one worker at a time under a
//! lease, and records each attempt's outcome; the worker (`ibiki-forward`)
//! makes the HTTP request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::endpoint::{Endpoint, EndpointSecret, EndpointSecrets, EndpointState, EndpointUrl};
use crate::page::{Page, PageRequest};
use crate::reply::{MessageId, ReplyStore, StoredReply};
use crate::{ClientId, StoreError};

/// A trait object of [`ForwardStore`], as an application holds it.
pub type DynForwardStore = dyn ForwardStore;

/// Where a forward stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardStatus {
    /// Waiting for its next attempt, or in one.
    Pending,
    /// An attempt got a `2xx`: done.
    Delivered,
    /// Every scheduled attempt failed; it stays listed and can be retried by
    /// hand ([`ForwardStore::retry_forward`]).
    Failed,
}

impl ForwardStatus {
    /// The status as the JSON spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status named by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// One reply's delivery to its client's endpoint, as it is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forward {
    /// The store's id of the forward: unique, never reused.
    pub id: u64,
    /// The client whose endpoint it goes to.
    #[serde(skip)]
    pub client: ClientId,
    /// The reply's provider message id.
    pub message_id: Option<MessageId>,
    /// The reply's inbox id ([`StoredReply::id`]).
    pub reply_id: u64,
    /// Where it stands.
    pub status: ForwardStatus,
    /// Attempts started so far (an attempt cut short by a lost worker
    /// counts).
    pub attempts: u32,
    /// When the last attempt was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When the next attempt is due; `None` once delivered or failed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed: the response body (truncated) or the
    /// connection error.
    pub last_error: Option<String>,
}

/// What a worker asks [`ForwardStore::claim`] for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// At most this many forwards.
    pub limit: u32,
    /// How long the worker holds each: past it, another worker may claim
    /// the forward again (the first one is presumed dead).
    pub lease: Duration,
    /// At most this many forwards of one client's endpoint in flight in the
    /// worker, counting `in_flight`: one slow endpoint cannot take every
    /// slot.
    pub per_endpoint: u32,
    /// The worker's forwards in flight now, by client.
    pub in_flight: Vec<(ClientId, u32)>,
}

impl ClaimRequest {
    /// How many more forwards of `client` the worker may take.
    pub fn room_for(&self, client: &ClientId) -> u32 {
        let busy = self
            .in_flight
            .iter()
            .find(|(c, _)| c == client)
            .map_or(0, |(_, n)| *n);
        self.per_endpoint.saturating_sub(busy)
    }
}

/// Proof that a worker holds a forward: its id and which claim of it this
/// is. An outcome recorded under a lease that another claim replaced is
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The forward.
    pub forward: u64,
    /// Its attempt number under this claim (1 for the first).
    pub attempt: u32,
}

/// A claimed forward: everything the worker needs for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardClaim {
    /// What to record the outcome under.
    pub lease: Lease,
    /// The client whose endpoint it goes to.
    pub client: ClientId,
    /// The endpoint's URL now.
    pub url: EndpointUrl,
    /// The secrets to sign with now.
    pub secrets: EndpointSecrets,
    /// The reply, as its inbox lists it.
    pub reply: StoredReply,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A `2xx`, with its status.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Anything else.
    Failed {
        /// The HTTP status, if a response came.
        status: Option<u16>,
        /// The response body (truncated) or the connection error.
        error: String,
        /// When to try again, from now; `None`: the schedule is spent, the
        /// forward is [`ForwardStatus::Failed`].
        retry_in: Option<Duration>,
    },
}

/// An endpoint just set ([`ForwardStore::put_endpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPut {
    /// The endpoint as it is now.
    pub endpoint: Endpoint,
    /// The secret, when this call created the endpoint: shown once here,
    /// then only through [`ForwardStore::endpoint_secrets`].
    pub created_secret: Option<EndpointSecret>,
}

/// Wake-ups for forwarding workers: a forward may have become due now.
///
/// Stores notify after each change that makes a forward due at once (a
/// reply reaching an inbox, a retry, a replay, an endpoint enabled), where
/// they can know of it; workers also read on a timer, so a missed wake-up
/// only delays.
#[derive(Clone, Default)]
pub struct ForwardSignals(Arc<Notify>);

impl ForwardSignals {
    /// A fresh set of wake-ups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the waiting workers (or the next one to wait).
    pub fn notify(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }

    /// Completes at the next [`notify`](Self::notify).
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

impl fmt::Debug for ForwardSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForwardSignals(..)")
    }
}

/// Clients' endpoints and the forwards of their replies.
///
/// # Contract
///
/// Every implementation guarantees, and the conformance suite
/// ([`forward_store_tests!`](crate::forward_store_tests)) checks:
/// - **one forward per reply, in the same atomic step**: a reply that
///   reaches the inbox of a client with an endpoint (routed by
///   [`receive`](ReplyStore::receive), released by an assignment, re-routed by
///   [`deliver_held`](ReplyStore::deliver_held)) gets exactly one forward,
///   created with it: a crash leaves both or neither. A duplicate receive
///   creates none; a client without an endpoint gets none;
/// - **one worker at a time**: [`claim`](Self::claim) hands out due forwards
///   of enabled endpoints, oldest due first, each under a lease; a leased
///   forward is not handed out again until its lease ends, and then under a
///   new [`Lease`], so the outcome of the superseded claim is refused;
/// - **outcomes**: a delivered forward is never claimed again; a failed
///   attempt with `retry_in` is due again after it; one without is
///   [`Failed`](ForwardStatus::Failed) until retried by hand;
/// - a disabled endpoint's forwards wait as pending, and nothing is dropped;
///   a deleted endpoint's forwards are dropped, its replies stay;
/// - a rotated secret keeps signing beside the new one for
///   [`PREVIOUS_SECRET_GRACE`](crate::PREVIOUS_SECRET_GRACE).
#[async_trait]
pub trait ForwardStore: ReplyStore {
    /// Creates `client`'s endpoint (signing with `secret`) or changes its URL
    /// and state (keeping its secret).
    async fn put_endpoint(
        &self,
        client: &ClientId,
        url: &EndpointUrl,
        enabled: bool,
        secret: EndpointSecret,
    ) -> Result<EndpointPut, StoreError>;

    /// `client`'s endpoint and how forwarding to it goes.
    async fn endpoint(&self, client: &ClientId) -> Result<Option<EndpointState>, StoreError>;

    /// The secrets that sign `client`'s requests now.
    async fn endpoint_secrets(
        &self,
        client: &ClientId,
    ) -> Result<Option<EndpointSecrets>, StoreError>;

    /// Replaces `client`'s secret with `secret`; the one it replaces keeps
    /// signing for [`PREVIOUS_SECRET_GRACE`](crate::PREVIOUS_SECRET_GRACE).
    /// `None` when `client` has no endpoint.
    async fn rotate_secret(
        &self,
        client: &ClientId,
        secret: EndpointSecret,
    ) -> Result<Option<EndpointSecrets>, StoreError>;

    /// Deletes `client`'s endpoint and drops its forwards (the replies stay
    /// in the inbox); `false` when it had none.
    async fn delete_endpoint(&self, client: &ClientId) -> Result<bool, StoreError>;

    /// `client`'s forwards, oldest first, of one status or all.
    async fn forwards(
        &self,
        client: &ClientId,
        status: Option<ForwardStatus>,
        page: &PageRequest,
    ) -> Result<Page<Forward>, StoreError>;

    /// Forward `id`, if it exists.
    async fn forward(&self, id: u64) -> Result<Option<Forward>, StoreError>;

    /// Makes forward `id` due now, whatever its status (a delivered one is
    /// sent again); its attempts keep counting. A forward in flight keeps
    /// its lease. `None` when there is no such forward.
    async fn retry_forward(&self, id: u64) -> Result<Option<Forward>, StoreError>;

    /// Makes every reply that reached `client`'s inbox at or after `since`
    /// due now: a new forward where it has none, its forward again where it
    /// has one (still one per reply). Returns how many; `None` when `client`
    /// has no endpoint.
    async fn replay(
        &self,
        client: &ClientId,
        since: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError>;

    /// Leases due forwards of enabled endpoints, oldest due first, within
    /// the request's caps; each claim counts as an attempt.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ForwardClaim>, StoreError>;

    /// Records an attempt's outcome; `false` (and nothing changes) when
    /// `lease` was superseded by a later claim.
    async fn finish(&self, lease: Lease, outcome: &AttemptOutcome) -> Result<bool, StoreError>;

    /// Records several attempts' outcomes, in order: for each, what
    /// [`finish`](Self::finish) would answer. Workers record through this,
    /// so that a store can write a batch at once (PostgreSQL: one statement
    /// and one commit for the batch, all or nothing).
    ///
    /// The default calls `finish` for each in turn. It is not atomic: on an
    /// error, the outcomes before it are recorded, and a second call refuses
    /// them (`false`), as it refuses any outcome recorded once.
    async fn finish_all(
        &self,
        outcomes: &[(Lease, AttemptOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut recorded = Vec::with_capacity(outcomes.len());
        for (lease, outcome) in outcomes {
            recorded.push(self.finish(*lease, outcome).await?);
        }
        Ok(recorded)
    }

    /// How many forwards are pending across every endpoint: a gauge read at
    /// each scrape.
    async fn pending_forwards(&self) -> Result<u64, StoreError>;

    /// The wake-ups of this store's workers, if it offers them; `None`:
    /// workers read on a timer only.
    fn forward_signals(&self) -> Option<ForwardSignals> {
        None
    }
}

/// Implements [`ForwardStore`] for a pointer to a store, every method calling
/// the pointee's.
macro_rules! deref_forward_store {
    ($($pointer:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<'a, T: ForwardStore + ?Sized> ForwardStore for $pointer {
            async fn put_endpoint(
                &self,
                client: &ClientId,
                url: &EndpointUrl,
                enabled: bool,
                secret: EndpointSecret,
            ) -> Result<EndpointPut, StoreError> {
                (**self).put_endpoint(client, url, enabled, secret).await
            }

            async fn endpoint(&self, client: &ClientId) -> Result<Option<EndpointState>, StoreError> {
                (**self).endpoint(client).await
            }

            async fn endpoint_secrets(
                &self,
                client: &ClientId,
            ) -> Result<Option<EndpointSecrets>, StoreError> {
                (**self).endpoint_secrets(client).await
            }

            async fn rotate_secret(
                &self,
                client: &ClientId,
                secret: EndpointSecret,
            ) -> Result<Option<EndpointSecrets>, StoreError> {
                (**self).rotate_secret(client, secret).await
            }

            async fn delete_endpoint(&self, client: &ClientId) -> Result<bool, StoreError> {
                (**self).delete_endpoint(client).await
            }

            async fn forwards(
                &self,
                client: &ClientId,
                status: Option<ForwardStatus>,
                page: &PageRequest,
            ) -> Result<Page<Forward>, StoreError> {
                (**self).forwards(client, status, page).await
            }

            async fn forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
                (**self).forward(id).await
            }

            async fn retry_forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
                (**self).retry_forward(id).await
            }

            async fn replay(
                &self,
                client: &ClientId,
                since: OffsetDateTime,
            ) -> Result<Option<u64>, StoreError> {
                (**self).replay(client, since).await
            }

            async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ForwardClaim>, StoreError> {
                (**self).claim(request).await
            }

            async fn finish(
                &self,
                lease: Lease,
                outcome: &AttemptOutcome,
            ) -> Result<bool, StoreError> {
                (**self).finish(lease, outcome).await
            }

            async fn finish_all(
                &self,
                outcomes: &[(Lease, AttemptOutcome)],
            ) -> Result<Vec<bool>, StoreError> {
                (**self).finish_all(outcomes).await
            }

            async fn pending_forwards(&self) -> Result<u64, StoreError> {
                (**self).pending_forwards().await
            }

            fn forward_signals(&self) -> Option<ForwardSignals> {
                (**self).forward_signals()
            }
        }
    )+};
}

deref_forward_store!(Arc<T>, Box<T>, &'a T);
