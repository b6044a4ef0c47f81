//! The in-memory store for [ibiki](ibiki_core): a store for the
//! [`AssignmentStore`](ibiki_core::AssignmentStore) and
//! [`ReplyStore`](ibiki_core::ReplyStore) traits of `ibiki-core`.
//!
//! **Start here**: create a [`MemoryStore`] with [`MemoryStore::new`] and use
//! it through those traits (or as `Arc<ibiki_core::DynReplyStore>`); the
//! example on [`MemoryStore`] assigns a number and finds its owner. This
//! crate is not meant to be used without `ibiki-core`.
//!
//! [`MemoryStore`] passes the whole conformance suite. Nothing survives a
//! restart: production deployments use `ibiki-postgres`. It serves tests,
//! demos and single-process use.
//!
//! # Memory
//!
//! Routing reads one table from a number to a client index: four 15-byte
//! slots (number, owner, history head) to a 64-byte bucket, grown by an
//! eighth at 90% full, one chunk at a time (2 MiB huge pages past 2 MiB,
//! where the OS offers them, to spare the TLB on random hits). A client is an index
//! into dense arrays: its id, a 12-byte record, its numbers (8 bytes each)
//! in a shared arena. The ownership history keeps 12 bytes per change and,
//! from a number's second event on, 8 bytes per event; it is never pruned:
//! it grows with assignment changes, not with replies. Measured while
//! assigning 1M numbers to 200k clients: about 39 resident bytes per assigned
//! number, all in (`BENCHMARKS.md`, `cargo bench -p ibiki-benches --bench
//! lookup`). Replies are kept whole, plus about 40 bytes of index each.
//!
//! # Tracing
//!
//! With the `tracing` feature (on by default), receives and assignment
//! changes run in `tracing` spans at debug level (`receive`,
//! `change_numbers`), each closed by an event saying what came of it. They
//! carry the provider's message id, the client and counts, never a phone
//! number or a message body: `RUST_LOG=ibiki_memory=debug` shows them.
#![forbid(unsafe_code)]

mod chunked;
mod clients;
mod forward_store;
mod forwards;
mod history;
mod keys;
mod state;
mod store;
mod table;
#[cfg(feature = "tracing")]
mod trace;

pub use crate::store::MemoryStore;
