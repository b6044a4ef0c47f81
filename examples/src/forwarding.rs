//! Forwarding each reply to its client's endpoint: the flags, and the worker
//! the server runs beside its routes (`ibiki-forward`), counted in the app's
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ibiki_core::{AddressPolicy, DynForwardStore};
use ibiki_forward::{
    AttemptResult, ForwardObserver, RetrySchedule, Sender, SenderConfig, Worker, WorkerConfig,
};
use ibiki_http::{DeliveryOutcome, Metrics};

use crate::store::parse_timeout;

/// The flags of forwarding.
#[derive(Debug, Clone, Args)]
pub struct ForwardingFlags {
    /// Delivery attempts in flight in this process, at most; 0 turns the
    /// sender off here (an API-only server: the others deliver).
    #[arg(
        long,
        env = "IBIKI_DELIVERY_CONCURRENCY",
        default_value_t = 64,
        value_name = "N"
    )]
    pub delivery_concurrency: u32,

    /// Delivery attempts in flight to one client's endpoint, at most: a slow
    /// endpoint holds these and never the other clients' slots.
    #[arg(
        long,
        env = "IBIKI_DELIVERY_ENDPOINT_CONCURRENCY",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N"
    )]
    pub delivery_endpoint_concurrency: u32,

    /// How long one delivery attempt may take, connecting included; longer
    /// is a failed attempt (e.g. 15s, 500ms).
    #[arg(
        long,
        env = "IBIKI_DELIVERY_TIMEOUT",
        default_value = "15s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub delivery_timeout: Duration,

    /// The waits after each failed attempt, in order, each ±10 %; after the
    /// last, the delivery is failed until retried by hand.
    #[arg(
        long,
        env = "IBIKI_DELIVERY_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h",
        value_name = "DELAYS"
    )]
    pub delivery_retry_schedule: RetrySchedule,

    /// Lets endpoints name loopback, private and link-local addresses
    /// (refused otherwise, against server-side request forgery): for
    /// development and tests, where the receiver runs on this machine.
    #[arg(long, env = "IBIKI_ALLOW_PRIVATE_ENDPOINTS")]
    pub allow_private_endpoints: bool,
}

impl ForwardingFlags {
    /// Which endpoint addresses are allowed.
    pub fn policy(&self) -> AddressPolicy {
        if self.allow_private_endpoints {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        }
    }

    /// The worker these flags describe, over `store`, counted in `metrics`;
    /// `None` when the sender is off in this process.
    pub fn worker(
        &self,
        store: Arc<DynForwardStore>,
        metrics: Metrics,
    ) -> Result<Option<Worker>, ibiki_forward::SenderError> {
        if self.delivery_concurrency == 0 {
            tracing::info!("forwarding: off in this process (--delivery-concurrency 0)");
            return Ok(None);
        }
        let sender = Sender::new(SenderConfig {
            timeout: self.delivery_timeout,
            policy: self.policy(),
            ..SenderConfig::default()
        })?;
        let config = WorkerConfig {
            concurrency: self.delivery_concurrency,
            per_endpoint: self.delivery_endpoint_concurrency,
            ..WorkerConfig::for_sender(sender.config())
        };
        tracing::info!(
            concurrency = config.concurrency,
            per_endpoint = config.per_endpoint,
            timeout = ?self.delivery_timeout,
            schedule = %self.delivery_retry_schedule,
            private_endpoints = self.allow_private_endpoints,
            "forwarding replies to clients' endpoints"
        );
        let worker = Worker::new(store, sender, self.delivery_retry_schedule.clone(), config)
            .with_observer(Arc::new(Counted(metrics)));
        Ok(Some(worker))
    }
}

/// The worker's attempts, in the app's metrics.
struct Counted(Metrics);

impl ForwardObserver for Counted {
    fn attempt(&self, result: AttemptResult, took: Duration) {
        let outcome = match result {
            AttemptResult::Delivered => DeliveryOutcome::Delivered,
            AttemptResult::AttemptFailed => DeliveryOutcome::AttemptFailed,
            AttemptResult::Exhausted => DeliveryOutcome::Exhausted,
        };
        self.0.delivery_attempt(outcome, took);
    }

    fn delivered(&self, lag: Duration) {
        self.0.delivery_lag(lag);
    }
}
