//! The reply store contract: every inbound reply recorded once, in its
//! owner's inbox or held until its number is assigned.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::assignment::AssignmentStore;
use crate::delivery::{Delivery, DeliveryKind};
use crate::error::StoreError;
use crate::inbox_signal::InboxSignals;
use crate::page::{MAX_PAGE_LIMIT, Page, PageRequest};
use crate::{ClientId, Normalizer, PhoneNumber};

/// The provider's id of a message (Twilio's `MessageSid`), used to record a
/// retried webhook once.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(Arc<str>);

impl MessageId {
    /// Longest id accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates `id`: non-empty, at most [`MAX_LEN`](Self::MAX_LEN) bytes, no
    /// control characters.
    pub fn new(id: impl AsRef<str>) -> Result<Self, ReplyError> {
        let id = id.as_ref();
        if id.is_empty() || id.len() > Self::MAX_LEN || id.chars().any(char::is_control) {
            return Err(ReplyError::MessageId { max: Self::MAX_LEN });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({:?})", &*self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The number a reply was sent to, as routing saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Canonicalized; routed by this number.
    Number(PhoneNumber),
    /// Could not be read as a number; such replies are always held.
    Unparsed(String),
}

impl Destination {
    /// Which kind it is, for logs and traces (never the number itself,
    /// which is personal data): `number` or `unparsed`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Number(_) => "number",
            Self::Unparsed(_) => "unparsed",
        }
    }

    /// Canonicalizes a raw `to` with `normalizer`; never fails.
    pub fn from_raw(normalizer: &Normalizer, raw: &str) -> Self {
        match normalizer.canonicalize_inbound(raw) {
            Ok(number) => Self::Number(number),
            Err(_) => Self::Unparsed(raw.to_owned()),
        }
    }

    /// The canonical number, if it parsed.
    pub fn number(&self) -> Option<PhoneNumber> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Unparsed(_) => None,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => n.fmt(f),
            Self::Unparsed(raw) => f.write_str(raw),
        }
    }
}

impl Serialize for Destination {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why an inbound reply was rejected before reaching a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The message id is empty, too long or has control characters.
    #[error("message id must be 1 to {max} bytes without control characters")]
    MessageId {
        /// The limit in bytes.
        max: usize,
    },
    /// A field is longer than its limit.
    #[error("{field} is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// The field (`from`, `to` or `body`).
        field: &'static str,
        /// The limit in bytes.
        max: usize,
        /// The field's length in bytes.
        len: usize,
    },
}

/// A reply as a webhook carried it, before any check: each field by name,
/// as the text the provider sent. Every webhook format reads its payload
/// into this one shape; [`InboundReply::new`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawReply<'a> {
    /// The provider's message id, if it sends one.
    pub message_id: Option<&'a str>,
    /// The sender.
    pub from: &'a str,
    /// The number replied to, in any format.
    pub to: &'a str,
    /// The text (empty for an MMS without text).
    pub body: &'a str,
}

/// A reply as a provider posted it, checked, with its `to` canonicalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReply {
    /// The provider's message id; `None` means retries cannot be recognized.
    pub message_id: Option<MessageId>,
    /// The sender, as posted.
    pub from: String,
    /// The number replied to.
    pub to: Destination,
    /// The text.
    pub body: String,
    /// When the webhook received it.
    pub received_at: OffsetDateTime,
}

impl InboundReply {
    /// Longest `from` and raw `to`, in bytes, as kept (NULs replaced).
    pub const MAX_ADDRESS_LEN: usize = 256;
    /// Longest body, in bytes (a 10-part concatenated SMS is about 1.6 KB).
    pub const MAX_BODY_LEN: usize = 32 * 1024;

    /// Checks `raw` (the message id, the field limits) and canonicalizes
    /// its `to` with `normalizer`; a `to` that is no number is kept as it
    /// came ([`Destination::Unparsed`]).
    ///
    /// So that every store can keep a reply exactly as it gives it back, NUL
    /// characters (which PostgreSQL `text` cannot hold, and which mean nothing
    /// in an SMS) become U+FFFD, and `received_at` is truncated to whole
    /// microseconds.
    ///
    /// ```
    /// use ibiki_core::{InboundReply, Normalizer, RawReply};
    ///
    /// let raw = RawReply {
    ///     message_id: Some("SM1"),
    ///     from: "+15005550006",
    ///     to: "+1 (415) 555-0100",
    ///     body: "Yes",
    /// };
    /// let reply = InboundReply::new(&Normalizer::new(), raw, time::OffsetDateTime::now_utc())?;
    /// assert_eq!(reply.to.to_string(), "+14155550100");
    /// # Ok::<(), ibiki_core::ReplyError>(())
    /// ```
    pub fn new(
        normalizer: &Normalizer,
        raw: RawReply<'_>,
        received_at: OffsetDateTime,
    ) -> Result<Self, ReplyError> {
        let message_id = raw.message_id.map(MessageId::new).transpose()?;
        // The limits hold for what is kept: a NUL grows to three bytes.
        let (from, to, body) = (
            without_nul(raw.from.to_owned()),
            without_nul(raw.to.to_owned()),
            without_nul(raw.body.to_owned()),
        );
        check_len("from", &from, Self::MAX_ADDRESS_LEN)?;
        check_len("to", &to, Self::MAX_ADDRESS_LEN)?;
        check_len("body", &body, Self::MAX_BODY_LEN)?;
        let micros = received_at.nanosecond() / 1_000 * 1_000;
        Ok(Self {
            message_id,
            from,
            to: Destination::from_raw(normalizer, &to),
            body,
            received_at: received_at
                .replace_nanosecond(micros)
                .unwrap_or(received_at),
        })
    }
}

fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}")
    } else {
        text
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ReplyError> {
    if value.len() > max {
        return Err(ReplyError::TooLong {
            field,
            max,
            len: value.len(),
        });
    }
    Ok(())
}

/// A recorded reply, as inbox and held listings return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredReply {
    /// The store's id of the reply: stable, unique within the store, never
    /// reused; what [`ReplyStore::deliver_held`] takes.
    pub id: u64,
    /// The provider's message id.
    pub message_id: Option<MessageId>,
    /// The sender, as posted.
    pub from: String,
    /// The number replied to: canonical E.164 where it parsed.
    pub to: Destination,
    /// The text.
    pub body: String,
    /// When the webhook received it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// How and when it was delivered (or that it is still held).
    pub delivery: Delivery,
}

impl StoredReply {
    /// `reply` as a store keeps it under `id`, delivered as `delivery` says.
    pub fn new(id: u64, reply: InboundReply, delivery: Delivery) -> Self {
        Self {
            id,
            message_id: reply.message_id,
            from: reply.from,
            to: reply.to,
            body: reply.body,
            received_at: reply.received_at,
            delivery,
        }
    }

    /// `reply` as kept on receipt: routed (`routed`) or held, at `at`, the
    /// store's instant of receipt (not the reply's `received_at`, which may
    /// be the gateway's clock).
    pub fn on_receipt(id: u64, reply: InboundReply, routed: bool, at: OffsetDateTime) -> Self {
        let delivery = Delivery {
            kind: DeliveryKind::on_receipt(&reply.to, routed),
            at,
        };
        Self::new(id, reply, delivery)
    }
}

/// Where an operator delivers a held reply
/// ([`ReplyStore::deliver_held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldTarget {
    /// Into this client's inbox.
    Client(ClientId),
    /// Into the inbox of this number's current owner: a corrected `to`. The
    /// number's ownership does not change, nor does the reply's `to`.
    Number(PhoneNumber),
}

/// Where a received reply went.
#[must_use = "a receipt says whether the reply reached a client or was held"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Recorded in this client's inbox.
    Routed(ClientId),
    /// Recorded in the held area: nobody owns the number (or it did not parse).
    Held,
    /// A reply with the same message id was already recorded; nothing changed.
    Duplicate,
}

impl Receipt {
    /// The outcome's name in logs, traces, metric labels and webhook
    /// answers: `routed`, `held` or `duplicate`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Routed(_) => "routed",
            Self::Held => "held",
            Self::Duplicate => "duplicate",
        }
    }

    /// The client whose inbox the reply reached, if it was routed.
    pub const fn client(&self) -> Option<&ClientId> {
        match self {
            Self::Routed(client) => Some(client),
            Self::Held | Self::Duplicate => None,
        }
    }
}

/// Where replies live: a client's inbox, or the held area.
///
/// # Contract
///
/// On top of [`AssignmentStore`]'s, every implementation guarantees, and the
/// conformance suite in `ibiki_core::testing` checks:
/// - [`receive`](Self::receive) routes and records in one atomic step: into
///   the inbox of the number's owner at that moment, or into the held area;
/// - a message id is recorded once; receiving it again returns
///   [`Receipt::Duplicate`] and changes nothing. Replies without an id are
///   always recorded;
/// - an assignment change moves the replies held for the numbers it assigns
///   into the new owner's inbox, oldest first, in the same atomic step;
/// - **a reply received while its number is being assigned ends in the new
///   owner's inbox, never in the held area**: receive and assignment must be
///   serialized per number (a lock, or serializable transactions), since a
///   lookup followed by an insert lets the assignment's release run between
///   them;
/// - an inbox lists replies in the order they were delivered to it, oldest
///   first; a released reply is delivered after everything already there, so
///   a reader paging with a cursor never skips one. A cursor past the end
///   gives an empty page;
/// - the held area lists replies in the order received. It is an operator's
///   view, not a queue: a reply received while a page is read may appear
///   before that page's cursor.
///
/// # Live readers
///
/// A store that can tell when a reply reaches an inbox offers
/// [`inbox_signals`](Self::inbox_signals): a reader that has caught up waits
/// on its client's signal instead of reading again on a timer. Such a store
/// wakes a client's readers after every change that puts a reply into that
/// client's inbox, once the reply can be read: a routed receive, a release by
/// an assignment change, a [`deliver_held`](Self::deliver_held); also
/// changes made through other handles on the same data (another process on
/// the same database) where the store can know of them, and it wakes every
/// reader when it may have missed some. Wake-ups may be spurious, never
/// missing. A store without signals (the default) leaves readers to poll.
#[async_trait]
pub trait ReplyStore: AssignmentStore {
    /// Routes and records one reply, in one atomic step.
    ///
    /// # Routing
    ///
    /// The one routing rule, which every store follows and the conformance
    /// suite (`ibiki_core::testing`, feature `testing`) checks:
    ///
    /// 1. A reply whose message id is already recorded is not recorded again:
    ///    [`Receipt::Duplicate`], and nothing changes. Replies without an id
    ///    are always recorded (`retried_message_ids_are_recorded_once`).
    /// 2. Otherwise a reply whose `to` is a number
    ///    ([`Destination::Number`], canonicalized by [`InboundReply::new`]
    ///    with [`Normalizer::canonicalize_inbound`], so every format a
    ///    provider posts finds the number an admin assigned) goes to the end
    ///    of the inbox of the client that owns that number **at the moment
    ///    the reply is recorded**: [`Receipt::Routed`] with that client
    ///    (`receive_routes_to_the_owner`, `replace_assigns_every_number`,
    ///    `receive_racing_assignment_ends_in_the_inbox`,
    ///    `concurrent_receives_and_reassignments_lose_nothing`).
    /// 3. A reply to a number nobody owns is held: [`Receipt::Held`]
    ///    (`unowned_and_unparsed_replies_are_held`) until an assignment of
    ///    the number releases it (`assignment_releases_held_replies_oldest_first`).
    /// 4. A reply whose `to` could not be read as a number
    ///    ([`Destination::Unparsed`]) is held under the raw text as posted:
    ///    [`Receipt::Held`], and no assignment releases it
    ///    (`unowned_and_unparsed_replies_are_held`).
    ///
    /// `state_machine_property` checks all four against the reference model
    /// on random sequences of receives and assignment changes.
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError>;

    /// A client's inbox, oldest delivery first.
    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError>;

    /// Replies nobody owns yet, oldest first.
    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError>;

    /// Moves the held reply `id` into the inbox `target` names, in one atomic
    /// step, and returns it as delivered: an operator's way out for a reply
    /// no assignment will release (an unparsed `to`, a number posted in a
    /// form no admin input produces, a client that wrote to the wrong
    /// number).
    ///
    /// The reply goes to the end of the inbox, like a released reply, so a
    /// reader paging with a cursor sees it. Its delivery kind becomes
    /// [`DeliveryKind::Rerouted`] at the instant of the move: that is the
    /// record of the re-route. It is a delivery, not an ownership change: no
    /// number changes hands, and the number's history is unchanged.
    ///
    /// Errors, each changing nothing: [`StoreError::NoSuchReply`],
    /// [`StoreError::NotHeld`] (delivered already), and
    /// [`StoreError::Unowned`] for a [`HeldTarget::Number`] nobody owns.
    ///
    /// ```
    /// use ibiki_core::{ClientId, DeliveryKind, HeldTarget, InboundReply, Normalizer};
    /// use ibiki_core::{PageRequest, RawReply, ReplyStore};
    /// use ibiki_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// let raw = RawReply { message_id: None, from: "+15005550006", to: "4155550100?", body: "hi" };
    /// let lost = InboundReply::new(&Normalizer::new(), raw, now)?;
    /// store.receive(lost).await?;
    /// let held = store.held(&PageRequest::first(10)).await?.items;
    /// assert_eq!(held[0].delivery.kind, DeliveryKind::Unparsed);
    /// let acme = ClientId::new("acme")?;
    /// let moved = store.deliver_held(held[0].id, &HeldTarget::Client(acme.clone())).await?;
    /// assert_eq!(moved.delivery.kind, DeliveryKind::Rerouted);
    /// assert_eq!(store.inbox(&acme, &PageRequest::first(10)).await?.items, [moved]);
    /// # Ok(())
    /// # }
    /// ```
    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError>;

    /// How many replies are held right now: what a monitoring gauge reads at
    /// each scrape, so it is right across processes sharing one store.
    ///
    /// The default pages through [`held`](Self::held), reading every held
    /// reply; stores override it with a count of their own.
    ///
    /// ```
    /// use ibiki_core::{InboundReply, Normalizer, RawReply, ReplyStore};
    /// use ibiki_memory::MemoryStore;
    /// use time::OffsetDateTime;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let now = OffsetDateTime::now_utc();
    /// let raw = RawReply { to: "+14155550100", body: "hi", ..RawReply::default() };
    /// let reply = InboundReply::new(&Normalizer::new(), raw, now)?;
    /// let _ = store.receive(reply).await?;
    /// assert_eq!(store.held_count().await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    async fn held_count(&self) -> Result<u64, StoreError> {
        let mut count = 0u64;
        let mut page = PageRequest::first(MAX_PAGE_LIMIT);
        loop {
            let got = self.held(&page).await?;
            count += got.items.len() as u64;
            match page.next(&got) {
                Some(next) => page = next,
                None => return Ok(count),
            }
        }
    }

    /// Deletes up to `limit` replies delivered to an inbox before `before`,
    /// oldest delivery first, and returns how many: retention, so that the
    /// store stays bounded. Call it until it returns 0; each call is one
    /// short transaction.
    ///
    /// - Held replies are never deleted, however old: they have not reached
    ///   anyone yet.
    /// - A reply counts from its [`delivery`](StoredReply::delivery)'s `at`:
    ///   a routed reply from its reception, a released one from its release,
    ///   a re-routed one from the re-route.
    /// - The last reply of each inbox is kept, so positions keep counting up
    ///   and a client's cursor stays valid: paging after a pruned position
    ///   goes on with the next reply still stored, and nothing delivered
    ///   after the prune is skipped (`pruning_keeps_cursors_and_held_replies`).
    /// - A pruned reply's message id is forgotten: a provider retrying it
    ///   afterwards records it again as new
    ///   (`pruned_message_ids_are_recorded_again`). Keep `before` older than
    ///   the longest retry window of the providers in use (a day for the
    ///   common ones).
    ///
    /// ```
    /// # async fn demo(store: &dyn ibiki_core::ReplyStore) -> Result<(), ibiki_core::StoreError> {
    /// use time::{Duration, OffsetDateTime};
    ///
    /// // Keep 30 days of delivered replies.
    /// let before = OffsetDateTime::now_utc() - Duration::days(30);
    /// while store.prune_delivered(before, 10_000).await? > 0 {}
    /// # Ok(())
    /// # }
    /// ```
    async fn prune_delivered(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;

    /// The wake-ups of this store's live inbox readers, if it offers them
    /// (see [Live readers](Self#live-readers)); `None` (the default): readers
    /// read again on a timer.
    ///
    /// ```
    /// use ibiki_core::{AssignmentStore, ClientId, InboundReply, Normalizer, RawReply, ReplyStore};
    /// use ibiki_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let acme = ClientId::new("acme")?;
    /// store.add_numbers(&acme, &["+14155550100".parse()?]).await?;
    /// let signals = store.inbox_signals().ok_or("the memory store offers signals")?;
    /// let mut reader = signals.subscribe(&acme);
    /// let raw = RawReply { to: "+14155550100", body: "hi", ..RawReply::default() };
    /// let _ = store.receive(InboundReply::new(&Normalizer::new(), raw, time::OffsetDateTime::now_utc())?).await?;
    /// reader.changed().await; // woken: acme's inbox got a reply
    /// # Ok(())
    /// # }
    /// ```
    fn inbox_signals(&self) -> Option<InboxSignals> {
        None
    }
}

/// A type-erased [`ReplyStore`], for `Arc<DynReplyStore>`.
pub type DynReplyStore = dyn ReplyStore;

/// Implements [`ReplyStore`] for a pointer to a store, every method calling
/// the pointee's; [`AssignmentStore`] is implemented beside that trait.
macro_rules! deref_reply_store {
    ($($pointer:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<'a, T: ReplyStore + ?Sized> ReplyStore for $pointer {
            async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
                (**self).receive(reply).await
            }

            async fn inbox(
                &self,
                client: &ClientId,
                page: &PageRequest,
            ) -> Result<Page<StoredReply>, StoreError> {
                (**self).inbox(client, page).await
            }

            async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
                (**self).held(page).await
            }

            async fn deliver_held(
                &self,
                id: u64,
                target: &HeldTarget,
            ) -> Result<StoredReply, StoreError> {
                (**self).deliver_held(id, target).await
            }

            async fn held_count(&self) -> Result<u64, StoreError> {
                (**self).held_count().await
            }

            async fn prune_delivered(
                &self,
                before: OffsetDateTime,
                limit: u32,
            ) -> Result<u64, StoreError> {
                (**self).prune_delivered(before, limit).await
            }

            fn inbox_signals(&self) -> Option<InboxSignals> {
                (**self).inbox_signals()
            }
        }
    )+};
}

deref_reply_store!(Arc<T>, Box<T>, &'a T);

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `decode_webhook` fuzz target: the limits were checked
    /// before NULs became U+FFFD (3 bytes), so a kept `to` could reach 768.
    #[test]
    fn limits_hold_after_nul_replacement() {
        let normalizer = Normalizer::new();
        let now = OffsetDateTime::UNIX_EPOCH;
        let nuls = "\0".repeat(100);
        for (from, to, body) in [
            (nuls.as_str(), "x", ""),
            ("x", nuls.as_str(), ""),
            ("x", "x", &*"\0".repeat(InboundReply::MAX_BODY_LEN / 2)),
        ] {
            let raw = RawReply {
                message_id: None,
                from,
                to,
                body,
            };
            let error = InboundReply::new(&normalizer, raw, now);
            assert!(
                matches!(error, Err(ReplyError::TooLong { .. })),
                "{error:?}"
            );
        }
        let from = "\0".repeat(85);
        let raw = RawReply {
            from: &from,
            to: "x",
            ..RawReply::default()
        };
        let kept = InboundReply::new(&normalizer, raw, now).expect("255 bytes once replaced");
        assert_eq!(kept.from, "\u{fffd}".repeat(85));
    }
}
