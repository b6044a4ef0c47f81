//! The ibiki example webhook server, as a library so tests can start the real
//! binary's configuration on any listener.
//!
//! Everything HTTP lives in [`ibiki_http`]; this crate only chooses the
//! store from the configuration ([`open_store`]), reads flags ([`Config`]),
//! builds the SMS providers from them ([`providers()`](fn@providers)) and serves ([`run`]):
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use ibiki_examples::{serve, shutdown_signal};
//! use ibiki_http::{AdminToken, App};
//! use ibiki_memory::MemoryStore;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = AdminToken::new("change-me".parse()?);
//! let app = App::new(Arc::new(MemoryStore::new()), token);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app.router(), shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! The modules, each a thin adapter between flags and the library crates:
//!
//! - [`config`]: the server's flags and environment variables;
//! - [`store`]: the database flags every command shares, and the choice of
//!   store (memory, or PostgreSQL with a URL);
//! - [`postgres`]: what needs the `postgres` feature, and its stand-ins
//!   without it;
//! - [`providers`](mod@providers): the SMS providers' flags, turned into
//!   `ibiki_providers` values;
//! - [`limits`]: the timeouts and caps, as flags;
//! - [`forwarding`]: forwarding replies to clients' endpoints: the flags and
//!   the worker;
//! - [`server`]: starting, serving and stopping: the accept loop and its
//!   connection cap;
//! - [`connection`]: one connection under the timeouts;
//! - [`import`] and [`prune`]: the `import` and `prune` subcommands.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod forwarding;
pub mod import;
pub mod limits;
pub mod postgres;
pub mod providers;
pub mod prune;
pub mod server;
pub mod store;

pub use crate::config::Config;
pub use crate::connection::ConnectionLimits;
pub use crate::forwarding::ForwardingFlags;
pub use crate::limits::LimitFlags;
pub use crate::providers::{ProviderConfigError, ProviderFlags, Providers, providers};
pub use crate::server::{Connections, run, serve, shutdown_signal};
pub use crate::store::{Stores, open_store};
