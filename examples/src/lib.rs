//! The ibiki example webhook server, as a library so tests can start the real
//! application on any listener.
//!
//! - `POST /webhooks/sms` records each reply a provider posts, in the inbox of
//!   the client that owns the number replied to, or held until someone does;
//! - `/api/admin/*` assigns numbers and inspects routing and held replies;
//! - `/api/clients/{userId}/messages` reads a client's inbox.
//!
//! The store is chosen at start ([`open_store`]): in memory, or PostgreSQL
//! (`ibiki-postgres`, the default `postgres` feature) when a database URL is
//! given. The application only sees `Arc<DynReplyStore>`.
//!
//! Every `/api` route takes one admin bearer token. An embedding application
//! puts its own per-client authentication in front of the `/api` routes: this
//! server trusts whoever holds the token to read every inbox.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use ibiki_examples::{AdminToken, App, serve, shutdown_signal};
//! use ibiki_memory::MemoryStore;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = AdminToken::new("change-me".parse()?);
//! let app = App::new(Arc::new(MemoryStore::new()), token);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app.router(), shutdown_signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inbox;
pub mod openapi;
mod request;
pub mod server;
pub mod signature;
pub mod store;
mod webhook;

pub use crate::app::App;
pub use crate::auth::AdminToken;
pub use crate::config::{Config, Secret};
pub use crate::server::{run, serve, shutdown_signal};
pub use crate::signature::WebhookSecret;
pub use crate::store::open_store;
