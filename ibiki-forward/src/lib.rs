//! Forwards each reply that reaches a client's [ibiki](ibiki_core) inbox to
//! the client's own endpoint: an HTTP `POST`, signed as [Standard
//! Webhooks](https://www.standardwebhooks.com/) specify, retried on a
//! schedule, at least once.
//!
//! The store creates a forward with each reply that reaches the inbox of a
//! client with an endpoint ([`ForwardStore`](ibiki_core::ForwardStore));
//! this crate sends them:
//!
//! - [`Worker`] is the loop of one process: it claims due forwards from the
//!   store under a lease, attempts them concurrently (at most
//!   [`WorkerConfig::concurrency`] at once, [`WorkerConfig::per_endpoint`]
//!   per client), and records the outcomes, in batches, with the next delay
//!   of their [`RetrySchedule`]. Any number of workers can share a store. A
//!   [`ForwardObserver`] counts the attempts for metrics.
//! - [`Sender`] makes one attempt: the body of [`render_body`], the
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` headers,
//!   a `2xx` within the timeout or a failure with the response's (truncated)
//!   body or the connection error ([`Attempt`]).
//! - [`GuardedResolver`] keeps requests off loopback, private and
//!   link-local addresses ([`AddressPolicy`](ibiki_core::AddressPolicy)),
//!   checking every address a host name resolves to when each connection is
//!   made, and connecting only to the addresses it checked.
//!
//! The worker needs nothing but a store and a Tokio runtime: an embedder can
//! run it in their own process, beside their own server or on its own.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ibiki_core::DynForwardStore;
//! use ibiki_forward::{RetrySchedule, Sender, SenderConfig, Worker, WorkerConfig};
//!
//! # async fn run(store: Arc<DynForwardStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::new(SenderConfig::default())?;
//! let schedule: RetrySchedule = "5s,5m,30m,2h,5h,10h,10h".parse()?;
//! let worker = Worker::new(store, sender, schedule, WorkerConfig::default());
//! worker.run(std::future::pending()).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod guard;
mod payload;
mod schedule;
mod sender;
mod worker;

pub use crate::guard::{AddressRefused, GuardedResolver, ResolveError, check_literal};
pub use crate::payload::{EVENT_TYPE, render_body, webhook_id};
pub use crate::schedule::{RetrySchedule, ScheduleError, ScheduleErrorReason};
pub use crate::sender::{
    Attempt, AttemptKind, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
    MAX_ERROR_BODY, Sender, SenderConfig, SenderError,
};
pub use crate::worker::{AttemptResult, ForwardObserver, NoopObserver, Worker, WorkerConfig};

/// This crate's README examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
