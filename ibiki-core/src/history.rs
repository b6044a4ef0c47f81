//! Ownership history: who gained or lost a number, and when.

use serde::Serialize;
use time::OffsetDateTime;

use crate::ClientId;

/// Whether a client gained or lost a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnershipChange {
    /// The client became the number's owner.
    Assigned,
    /// The client stopped owning the number.
    Unassigned,
}

impl OwnershipChange {
    /// `"assigned"` or `"unassigned"`, as the JSON and the PostgreSQL store
    /// spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Unassigned => "unassigned",
        }
    }
}

/// One change of a number's owner, as
/// [`AssignmentStore::history`](crate::AssignmentStore::history) lists it.
///
/// Every assignment change records one event per number it assigns or takes,
/// all at the same instant, in the same atomic step as the change. Events are
/// never changed or removed. Two events of one number at the same instant
/// (two changes within a microsecond) keep the order the changes happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    /// The client that gained or lost the number.
    #[serde(rename = "userId")]
    pub client: ClientId,
    /// Gained or lost.
    pub change: OwnershipChange,
    /// When, in whole microseconds (what every store keeps).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
