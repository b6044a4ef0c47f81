//! The routes of `App::router()`, driven in-process with `oneshot` over an
//! in-memory store: statuses, JSON answers and error codes, one module per
//! resource. No socket, no server binary.

mod assignments;
mod auth;
mod down_store;
mod events;
mod forwarding;
mod held;
mod history;
mod inbox;
mod keys;
mod limits;
mod meta;
mod sms_webhook;
mod support;
mod webhook_signatures;
