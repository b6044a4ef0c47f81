//! The in-memory store for [ibiki](ibiki_core): tests, demos and
//! single-process use.
//!
//! [`MemoryStore`] implements [`AssignmentStore`](ibiki_core::AssignmentStore)
//! and [`ReplyStore`](ibiki_core::ReplyStore) and passes the whole
//! conformance suite. Nothing survives a restart: production deployments use
//! `ibiki-postgres`. This crate is not meant to be used on its own: use it
//! through the traits of `ibiki-core`.
//!
//! # Memory
//!
//! Routing reads one hash map from a number (8 bytes) to a client index
//! (4 bytes); each client keeps its numbers in a sorted vector (8 bytes each).
//! Measured at 1M assigned numbers, see the workspace's `BENCHMARKS.md`.
//! Replies are kept whole, plus about 40 bytes of index each.
#![forbid(unsafe_code)]

mod state;
mod store;

pub use crate::store::MemoryStore;

/// The workspace README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
