//! ibiki routes SMS replies to the client that owns the number replied to.
//!
//! A reseller assigns phone numbers to clients; a client owns any number of
//! them. Each reply a provider posts to the webhook lands in the inbox of the
//! client that owns its `to` number, exactly once; a reply to a number nobody
//! owns yet is held and delivered the moment the number is assigned.
//!
//! This crate holds what every store shares:
//! - [`PhoneNumber`], [`ClientId`] and the [`Normalizer`] that turns admin
//!   input (`"+1 415 555 0100, (415) 555-0101"`) and provider input into
//!   canonical E.164 ([`normalize`]);
//! - the [`AssignmentStore`] contract (who owns which number, [`store`]) and
//!   the [`ReplyStore`] contract (inboxes and the held area, [`reply`]);
//! - the routing function [`route`] ([`routing`]);
//! - the import of another system's assignments ([`import`]);
//! - with the `testing` feature, the conformance suite every store runs.
//!
//! Stores live in their own crates: `ibiki-memory` and `ibiki-postgres`.
//!
//! # Example
//!
//! ```
//! use ibiki_core::{ClientId, InboundReply, Normalizer, PageRequest, PhoneNumbersInput, Receipt};
//! use ibiki_core::{ReplyStore, AssignmentStore};
//! use ibiki_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let normalizer = Normalizer::new().with_default_region("US".parse()?);
//! let store = MemoryStore::new();
//!
//! // The admin assigns two numbers to a client.
//! let client = ClientId::new("client-42")?;
//! let input = PhoneNumbersInput::from("+1 415 555 0100, +1 415 555 0101");
//! let numbers = normalizer.normalize_list(&input)?;
//! let change = store.replace_numbers(&client, &numbers).await?;
//! assert_eq!(change.count(), 2);
//!
//! // A provider posts a reply to the second number: route finds its owner...
//! let route = ibiki_core::route(&store, &normalizer, "+1 (415) 555-0101").await?;
//! assert_eq!(route.owner(), Some(&client));
//!
//! // ...and receive routes and records it in one atomic step.
//! let now = time::OffsetDateTime::now_utc();
//! let reply = InboundReply::new(&normalizer, None, "+15005550006", "+14155550101", "STOP", now)?;
//! assert_eq!(store.receive(reply).await?, Receipt::Routed(client.clone()));
//!
//! // The reply is in the client's inbox.
//! let inbox = store.inbox(&client, &PageRequest::first(100)).await?;
//! assert_eq!(inbox.items[0].body, "STOP");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod client_id;
pub mod error;
pub mod import;
pub mod normalize;
pub mod page;
mod phone_number;
pub mod reply;
pub mod routing;
#[cfg(feature = "sqlx")]
mod sqlx;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use async_trait::async_trait;

pub use crate::client_id::ClientId;
pub use crate::error::{
    BoxError, CanonicalError, ClientIdError, Conflict, InvalidEntry, NormalizeError, NumberError,
    StoreError,
};
pub use crate::import::{
    Contested, ImportConflict, ImportPlan, ImportPlanner, ImportReport, ImportRow, InvalidImport,
    InvalidReason,
};
#[cfg(feature = "csv")]
pub use crate::import::{CsvError, CsvRows};
pub use crate::normalize::{
    BareDigits, Normalizer, PhoneNumbersInput, Region, UnknownRegion, Validation,
};
pub use crate::page::{Cursor, MAX_PAGE_LIMIT, Page, PageLimitError, PageRequest};
pub use crate::phone_number::PhoneNumber;
pub use crate::reply::{
    Destination, DynReplyStore, InboundReply, MessageId, Receipt, ReplyError, ReplyStore,
    StoredReply,
};
pub use crate::routing::{Route, route};
pub use crate::store::{AssignmentChange, AssignmentStore, ClientSummary, DynAssignmentStore};
