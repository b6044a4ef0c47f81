//! How a stored reply was delivered: the answer to "why did this reply go
//! there?".

use serde::Serialize;
use time::OffsetDateTime;

use crate::reply::Destination;

/// How a reply reached the place it is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeliveryKind {
    /// Delivered to its number's owner on receipt.
    Routed,
    /// Held on receipt (nobody owned the number), then delivered by the
    /// assignment of the number.
    Released,
    /// Still held: nobody has owned the number since it arrived.
    Held,
    /// Still held: its `to` could not be read as a number, so no assignment
    /// can release it (an operator can re-route it).
    Unparsed,
    /// Held, then delivered by an operator to a client of their choice
    /// ([`ReplyStore::deliver_held`](crate::ReplyStore::deliver_held)); the
    /// number's ownership did not change.
    Rerouted,
    /// Delivered before the store recorded how (a reply recorded before the
    /// PostgreSQL store's migration 0002): routed or released, unknown which.
    Delivered,
}

impl DeliveryKind {
    /// The kind as the JSON spells it: `"routed"`, `"released"`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::Released => "released",
            Self::Held => "held",
            Self::Unparsed => "unparsed",
            Self::Rerouted => "rerouted",
            Self::Delivered => "delivered",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Routed,
            Self::Released,
            Self::Held,
            Self::Unparsed,
            Self::Rerouted,
            Self::Delivered,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }

    /// How a reply to `to` is kept on receipt: routed when it has an owner,
    /// else held (unparsed when `to` is no number).
    pub fn on_receipt(to: &Destination, routed: bool) -> Self {
        match (routed, to) {
            (true, _) => Self::Routed,
            (false, Destination::Number(_)) => Self::Held,
            (false, Destination::Unparsed(_)) => Self::Unparsed,
        }
    }
}

/// How and when a reply was delivered, as `"delivery": {"kind", "at"}` in
/// the message JSON.
///
/// `at` is when the reply got its current kind: the time it was received for
/// `routed`, `held`, `unparsed` (and `delivered`), the instant of the
/// assignment for `released`, of the operator's re-route for `rerouted`.
///
/// ```
/// use ibiki_core::{Delivery, DeliveryKind};
///
/// let at = time::OffsetDateTime::from_unix_timestamp(1_704_067_200)?;
/// let released = Delivery { kind: DeliveryKind::Released, at };
/// assert_eq!(
///     serde_json::to_value(released)?,
///     serde_json::json!({"kind": "released", "at": "2024-01-01T00:00:00Z"})
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// How.
    pub kind: DeliveryKind,
    /// When the store gave it that kind, by the store's clock (never the
    /// reply's `received_at`, which may be a gateway's): on receipt, or at
    /// the assignment or re-route that delivered it.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
