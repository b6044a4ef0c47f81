//! The HTTP edge of ibiki: what sits between a provider's webhook, an
//! admin's requests and a store.
//!
//! **Start here**: [`App`]. Give it a store and an admin authenticator, and mount
//! [`App::routes`] in your own axum `Router` (or serve [`App::router`], which
//! adds JSON 404/405 answers and request logging):
//!
//! - `POST /webhooks/sms` records each reply a provider posts, in the inbox of
//!   the client that owns the number replied to, or held until someone does;
//!   with a [`WebhookSecret`], only requests signed with `X-Ibiki-Signature`;
//! - `/webhooks/{provider}` serves each SMS provider given to
//!   [`App::with_providers`] as that provider sends, signs and expects to be
//!   answered (the `ibiki-providers` crate);
//! - `/api/admin/*` assigns numbers and inspects routing and held replies;
//! - `GET /api/admin/clients` lists the clients and their numbers;
//! - `/api/clients/{userId}/messages` reads a client's inbox,
//!   `/api/clients/{userId}/events` streams it live (Server-Sent Events) and
//!   `/api/clients/{userId}/phone-numbers` lists its numbers: what a client's
//!   own key opens;
//! - `/api/admin/clients/{userId}/keys` creates, lists and revokes a
//!   client's API keys;
//! - `/healthz` and `/openapi.json` ([`openapi_document`]);
//! - `GET /metrics`, behind the admin authentication: replies by outcome,
//!   receive latency, store errors, held replies, assignment changes and
//!   what the limits refused, in the Prometheus text format ([`Metrics`]);
//! - with [`App::pages`] (part of [`App::router`]), the dashboard: `/` lists
//!   the clients and edits their numbers and endpoints, `/held` shows the
//!   held replies, `/inbox/{userId}` a client's replies, live, and
//!   `/clients/{userId}/deliveries` the forwards of its replies, each
//!   retried by hand. Plain HTML and a few script modules embedded in the
//!   binary, under a strict Content-Security-Policy, talking to the same
//!   authenticated API.
//!
//! Every route has the router's [`Limits`]: a body read timeout (408) and
//! caps on open live streams (429); the limits on connections themselves
//! are the serving server's.
//!
//! Every `/api` route is guarded by one [`Authenticator`], which says who
//! the caller is: the operator (every route) or a client (its own
//! `/api/clients/{userId}/…` routes only, else 403). [`BearerAuth`] is the
//! default: the operator's [`AdminToken`] and clients' API keys (`ibk_…`,
//! created at `POST /api/admin/clients/{userId}/keys`); implement the trait
//! to put your own sessions there.
//!
//! ```
//! use std::sync::Arc;
//!
//! use ibiki_http::{AdminToken, App};
//! use ibiki_memory::MemoryStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = AdminToken::new("change-me".parse()?);
//! let ibiki = App::new(Arc::new(MemoryStore::new()), token).routes();
//! // Your own routes sit beside ibiki's; your fallback answers the rest.
//! let router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my service" }))
//!     .merge(ibiki);
//! # let _ = router;
//! # Ok(()) }
//! ```
//!
//! Without the default `axum` feature, the crate keeps only what does not
//! depend on a web framework: the `X-Ibiki-Signature` scheme
//! ([`WebhookSecret`]). The SMS providers' webhooks, verified and decoded
//! without any framework, are the `ibiki-providers` crate.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "axum")]
mod admin;
#[cfg(feature = "axum")]
mod app;
#[cfg(feature = "axum")]
mod auth;
#[cfg(feature = "axum")]
mod body_deadline;
#[cfg(feature = "axum")]
mod deliveries;
#[cfg(feature = "axum")]
mod endpoint;
#[cfg(feature = "axum")]
mod error;
#[cfg(feature = "axum")]
mod events;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "axum")]
mod held;
#[cfg(feature = "axum")]
mod history;
#[cfg(feature = "axum")]
mod inbox;
#[cfg(feature = "axum")]
mod keys;
#[cfg(feature = "axum")]
mod limits;
#[cfg(feature = "axum")]
mod metrics;
#[cfg(feature = "axum")]
mod openapi;
#[cfg(feature = "axum")]
mod pages;
#[cfg(feature = "axum")]
mod provider_webhook;
#[cfg(feature = "axum")]
mod request;
mod sms_signature;
#[cfg(feature = "axum")]
mod sms_webhook;
#[cfg(feature = "axum")]
mod stream_slots;

#[cfg(feature = "axum")]
pub use crate::app::{ADMIN_BODY_LIMIT, App, WEBHOOK_BODY_LIMIT};
#[cfg(feature = "axum")]
pub use crate::auth::{Access, AdminToken, Authenticator, BearerAuth, Caller};
#[cfg(feature = "axum")]
pub use crate::error::ApiError;
#[cfg(feature = "axum")]
pub use crate::events::POLL_INTERVAL;
#[cfg(feature = "axum")]
pub use crate::limits::{Limits, Refusal};
#[cfg(feature = "axum")]
pub use crate::metrics::{DeliveryOutcome, Metrics};
#[cfg(feature = "axum")]
pub use crate::openapi::document as openapi_document;
#[cfg(feature = "axum")]
pub use crate::pages::CONTENT_SECURITY_POLICY_VALUE;
pub use crate::sms_signature::{
    HEADER as SIGNATURE_HEADER, SignatureError, SignatureHeader,
    TOLERANCE_SECS as SIGNATURE_TOLERANCE_SECS, WebhookSecret,
};
/// The Prometheus client [`Metrics`] registers into, for an embedder's own
/// registry of the same version.
#[cfg(feature = "axum")]
pub use prometheus_client;

/// The workspace README's examples, compiled as doc tests here, where every
/// crate they use is a dependency.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// This crate's README examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;

/// The guide's Rust examples (`docs/src`), compiled as doc tests here too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/library.md")]
struct GuideLibraryDoctests;

/// The guide's embedding examples.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/embedding.md")]
struct GuideEmbeddingDoctests;
