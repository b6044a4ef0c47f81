//! The server binary and its import under database network faults, through
//! a fault-injecting TCP proxy between them and PostgreSQL (`DATABASE_URL`;
//! skipped without it, unless `CI` is set); and the proxy itself.

mod proxy;
mod proxy_tests;

#[cfg(all(unix, feature = "postgres"))]
mod import;
#[cfg(all(unix, feature = "postgres"))]
mod network;
#[cfg(all(unix, feature = "postgres"))]
mod process;
#[cfg(all(unix, feature = "postgres"))]
#[path = "../support/server_process.rs"]
mod server_process;
