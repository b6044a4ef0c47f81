//! ibiki routes SMS replies to the client that owns the number replied to.
//!
//! **Start here**: pick a store (`ibiki-memory` for tests and demos,
//! `ibiki-postgres` for production), turn admin input into numbers with
//! [`Normalizer::normalize_list`], assign them with
//! [`AssignmentStore::replace_numbers`], and record each reply a provider
//! posts with [`ReplyStore::receive`]; the example below does all of it. For
//! the HTTP side (webhooks, admin routes), use `ibiki-http`.
//!
//! A reseller assigns phone numbers to clients; a client owns any number of
//! them. Each reply a provider posts to the webhook lands in the inbox of the
//! client that owns its `to` number, exactly once; a reply to a number nobody
//! owns yet is held and delivered the moment the number is assigned.
//!
//! This crate holds what every store shares:
//! - [`PhoneNumber`], [`ClientId`] and the [`Normalizer`] that turns admin
//!   input (`"+1 415 555 0100, (415) 555-0101"`) and provider input into
//!   canonical E.164;
//! - the [`AssignmentStore`] contract (who owns which number) and the
//!   [`ReplyStore`] contract (inboxes and the held area), whose
//!   [`receive`](ReplyStore::receive) states the routing rule every store
//!   follows;
//! - [`InboxSignals`], the wake-ups a store gives live inbox readers
//!   ([`ReplyStore::inbox_signals`]) so that they wait instead of polling;
//! - the [`ForwardStore`] contract: each reply that reaches an inbox is
//!   forwarded to its client's own [`Endpoint`], created in the same atomic
//!   step, leased to one worker at a time (`ibiki-forward` sends them);
//! - the import of another system's assignments ([`ImportPlanner`]);
//! - with the `testing` feature, the conformance suite every store runs
//!   (`testing`, [`conformance_tests!`]): a store of your own implements both
//!   traits and runs it.
//!
//! # Example
//!
//! ```
//! use ibiki_core::{ClientId, InboundReply, Normalizer, PageRequest, PhoneNumbersInput, Receipt};
//! use ibiki_core::RawReply;
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
//! // Who owns a number, in any format a provider posts it...
//! let number = normalizer.canonicalize_inbound("+1 (415) 555-0101")?;
//! assert_eq!(store.owner_of(number).await?, Some(client.clone()));
//!
//! // ...is where receive records a reply to it, in one atomic step.
//! let now = time::OffsetDateTime::now_utc();
//! let raw = RawReply { message_id: None, from: "+15005550006", to: "+14155550101", body: "STOP" };
//! let reply = InboundReply::new(&normalizer, raw, now)?;
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

mod api_key;
mod assignment;
mod client_id;
mod delivery;
mod endpoint;
mod error;
mod forward_store;
mod history;
mod import;
mod inbox_signal;
mod key_store;
mod normalize;
mod page;
mod phone_number;
mod reply;
mod secret;
#[cfg(feature = "sqlx")]
mod sqlx;
#[cfg(feature = "testing")]
pub mod testing;

pub use crate::api_key::{ApiKey, KeyDigest, KeyFormatError};
pub use crate::assignment::{
    AssignmentChange, AssignmentStore, Change, ClientSummary, DynAssignmentStore,
};
pub use crate::client_id::ClientId;
pub use crate::delivery::{Delivery, DeliveryKind};
pub use crate::endpoint::{
    AddressPolicy, Endpoint, EndpointSecret, EndpointSecrets, EndpointState, EndpointUrl,
    EndpointUrlError, PREVIOUS_SECRET_GRACE, SecretFormatError,
};
pub use crate::error::{
    BoxError, CanonicalError, ClientIdError, Conflict, InvalidEntry, NormalizeError, NumberError,
    StoreError,
};
pub use crate::forward_store::{
    AttemptOutcome, ClaimRequest, DynForwardStore, EndpointPut, Forward, ForwardClaim,
    ForwardSignals, ForwardStatus, ForwardStore, Lease,
};
pub use crate::history::{HistoryEvent, OwnershipChange};
#[cfg(feature = "csv")]
pub use crate::import::{CSV_CLIENT_HEADER, CSV_NUMBERS_HEADER, CsvError, CsvRows};
pub use crate::import::{
    Contested, DEFAULT_IMPORT_CONCURRENCY, ImportConflict, ImportPlan, ImportPlanner, ImportReport,
    ImportRow, InvalidImport, InvalidReason,
};
pub use crate::inbox_signal::{InboxSignals, InboxSubscription};
pub use crate::key_store::{DynKeyStore, KEY_USE_RESOLUTION, KeyInfo, KeyStore, NewKey};
pub use crate::normalize::{
    BareDigits, MAX_ENTRY_CHARS, Normalizer, PhoneNumbersInput, Region, UnknownRegion, Validation,
};
pub use crate::page::{Cursor, MAX_PAGE_LIMIT, Page, PageLimitError, PageRequest};
pub use crate::phone_number::PhoneNumber;
pub use crate::reply::{
    Destination, DynReplyStore, HeldTarget, InboundReply, MessageId, RawReply, Receipt, ReplyError,
    ReplyStore, StoredReply,
};
pub use crate::secret::{EmptySecret, Secret};
