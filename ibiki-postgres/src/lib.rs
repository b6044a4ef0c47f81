//! The PostgreSQL store for [ibiki](ibiki_core): a store for the
//! [`AssignmentStore`](ibiki_core::AssignmentStore),
//! [`ReplyStore`](ibiki_core::ReplyStore),
//! [`KeyStore`](ibiki_core::KeyStore) and
//! [`ForwardStore`](ibiki_core::ForwardStore) traits of `ibiki-core`.
//!
//! **Start here**: [`PostgresStore::connect`] (or
//! [`PostgresStore::builder`] for the schema and pool settings), then
//! [`PostgresStore::migrate`] once, then use the store through the
//! `ibiki-core` traits, as below.
//!
//! This crate is not meant to be used without `ibiki-core`: [`PostgresStore`]
//! implements its contracts and passes their whole conformance suite; the
//! application talks to it through those traits.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ibiki_core::DynReplyStore;
//! use ibiki_postgres::PostgresStore;
//!
//! let store = PostgresStore::connect("postgres://ibiki@db.internal/app").await?;
//! store.migrate().await?;
//! let store: Arc<DynReplyStore> = Arc::new(store);
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! The tables live in a schema of their own, `ibiki` unless
//! [`PostgresStoreBuilder::schema`] says otherwise, beside the application's
//! tables. Every statement names the schema explicitly (no `search_path`
//! change on the pool's connections); [`PostgresStore::migrate`] creates the
//! schema and applies the embedded migrations, keeping their history in the
//! schema's own `_sqlx_migrations` table.
//!
//! - `assignments`: one row per assigned number, the number as primary key
//!   (one owner per number, enforced by the database), checked to be
//!   canonical E.164; indexed by client.
//! - `replies`: every reply, with a unique provider message id (NULL allowed,
//!   never deduplicated), the canonical `to` or the raw text that did not
//!   parse, the owner (NULL while held) and its position in that owner's
//!   inbox, and how and when it was delivered (`delivery`, `delivered_at`,
//!   written by the same `INSERT` or `UPDATE` that places it); indexed for
//!   held replies by number and for inbox pages.
//! - `endpoints` and `forwards`: each client's own endpoint (URL, state,
//!   signing secrets) and one forward per reply that reached the inbox of a
//!   client with one, created by the same statement that put the reply there
//!   ([`ForwardStore`](ibiki_core::ForwardStore); see *Forwarding* below).
//! - `number_history`: every ownership change of every number, append-only,
//!   written by `change_numbers` in the same statement as the change, at one
//!   instant per change; its index `(phone_number, at DESC, seq DESC)`
//!   answers "owner of N at T" with one index-only scan
//!   ([`AssignmentStore::owner_at`](ibiki_core::AssignmentStore::owner_at)).
//!
//! # Receive racing an assignment
//!
//! A receive and an assignment change of the same number both take a
//! transaction-scoped advisory lock on the number (its digits as a `bigint`;
//! numbers in ascending order). Whichever comes second waits for the first to
//! commit, and then reads with a fresh snapshot (READ COMMITTED): a receive
//! that waited sees the new owner; an assignment that waited sees the held
//! reply and releases it. A lookup-then-insert without the lock, or one
//! statement whose snapshot predates the lock, would let a reply be held for
//! a number that was just assigned.
//!
//! Deliveries to one inbox also take the client's delivery lock, after the
//! number locks, and number the reply 1, 2, 3… under it: positions commit in
//! order, so a reader paging an inbox with a cursor never skips a reply. The
//! locks, their order and why they cannot deadlock are described in the
//! migration, `migrations/0001_assignments_and_replies.sql`.
//!
//! # Group commit
//!
//! Receives are recorded in batches: the store's batching task records every
//! reply waiting for it (up to 64) in one transaction, a few batches at a
//! time, so that concurrent webhooks share a WAL flush; each caller is
//! answered once its batch has committed, and an idle store answers a lone
//! reply at once. A batch takes its number locks first (ascending), then the
//! delivery locks of the owners: the lock order above, so batches cannot
//! deadlock with anything. A message id twice in a batch is recorded once,
//! and a reply the database refuses is retried alone, failing only its
//! caller.
//!
//! # Live readers
//!
//! Triggers on `replies` (migration `0006_inbox_notify.sql`) send a
//! `NOTIFY` with the client id whenever a statement delivers replies to
//! inboxes: receives, batches, releases, re-routes, by any process; it is
//! delivered when the transaction commits, on a channel of the schema's own.
//! Each store listens there on one connection of its own and wakes the
//! readers of that client in its
//! [`ReplyStore::inbox_signals`](ibiki_core::ReplyStore::inbox_signals), so
//! a caught-up live stream costs no query until its inbox gets a reply. On
//! every (re)connection it wakes every reader, since notifications sent
//! while it was not listening are lost; after 30 s without a notification it
//! checks the connection with a bounded `SELECT 1` and replaces it if no
//! answer comes. [`PostgresStoreBuilder::inbox_signals`] turns it off, and
//! with it the forwarding wake-ups the same connection hears (see below).
//!
//! # Forwarding
//!
//! [`ForwardStore`](ibiki_core::ForwardStore) (migration
//! `0008_forwarding.sql`): the statement that routes, releases or re-routes
//! a reply into the inbox of a client with an endpoint inserts the reply's
//! forward too, so both commit or neither, at no extra round trip. Creating
//! or deleting an endpoint takes the client's delivery lock, like every
//! delivery: a delivery sees the endpoint or committed before it existed,
//! and a deleted endpoint leaves no forward behind. A claim is one
//! statement (migration `0009_forwarding_batches.sql`): due forwards of
//! enabled endpoints, oldest first, locked with `FOR UPDATE SKIP LOCKED`
//! within the worker's room per endpoint, so concurrent workers never wait
//! for each other nor take the same forward. A batch of outcomes is one
//! statement too, each recorded only under the last claim's lease. Claims
//! and outcomes commit without waiting for the WAL flush: a crash of
//! PostgreSQL may forget the last of them, and the forward is attempted
//! again (the same `webhook-id`), never lost. Triggers
//! `NOTIFY` the schema's forwarding channel when a forward becomes due now,
//! and the store's listener wakes its
//! [`ForwardStore::forward_signals`](ibiki_core::ForwardStore::forward_signals).
//!
//! # Retention
//!
//! [`ReplyStore::prune_delivered`](ibiki_core::ReplyStore::prune_delivered)
//! deletes old delivered replies through the schema's `prune_delivered`
//! function, at most `limit` rows a transaction, found through an index on
//! the delivery time (`delivered_at`, written by every receive, release and
//! re-route; migration `0003_retention.sql`). Held replies and each inbox's
//! last reply stay. Deleted rows become free space after `VACUUM`
//! (autovacuum, or by hand after a large prune); the files do not shrink.
//! The guide's [Scaling](https://github.com/ibiki-rs/ibiki/blob/main/docs/src/scaling.md)
//! chapter says when this is needed and what comes after it.
//!
//! # Errors
//!
//! Connection failures, pool timeouts, server shutdowns, resource exhaustion,
//! serialization failures, deadlocks and statement timeouts are
//! [`StoreError::Unavailable`](ibiki_core::StoreError::Unavailable): a webhook
//! answers "retry later". Everything else is
//! [`StoreError::Backend`](ibiki_core::StoreError::Backend). The sqlx error is
//! kept as the source.
#![forbid(unsafe_code)]

mod assign;
mod builder;
mod deadline;
mod error;
mod forward;
mod import_table;
mod keepalive;
mod keys;
mod listen;
mod migrate;
mod read;
mod receive;
mod reroute;
mod retention;
mod schema;
mod sql;
mod store;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod trace;

pub use crate::builder::PostgresStoreBuilder;
pub use crate::deadline::DeadlineExceeded;
pub use crate::import_table::{
    IMPORT_NUMBERS_COLUMNS, ImportTable, ImportTableError, ImportTableReader, ImportTableShape,
};
pub use crate::schema::InvalidSchemaName;
pub use crate::store::PostgresStore;
