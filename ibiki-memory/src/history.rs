//! Ownership history: every assignment and unassignment of each number,
//! appended under the store's lock by the change that made it.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use ibiki_core::{
    ClientId, Cursor, HistoryEvent, OwnershipChange, Page, PageRequest, PhoneNumber, StoreError,
};
use time::OffsetDateTime;

/// One event, with the client as its index in the store's client list.
#[derive(Debug, Clone, Copy)]
struct Event {
    client: u32,
    change: OwnershipChange,
    at: OffsetDateTime,
}

/// Each number's events, oldest first.
#[derive(Debug)]
pub(crate) struct History {
    events: HashMap<PhoneNumber, Vec<Event>, RandomState>,
    /// The latest instant recorded: the clock may step back, the history may not.
    last: OffsetDateTime,
}

impl Default for History {
    fn default() -> Self {
        Self {
            events: HashMap::default(),
            last: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

impl History {
    /// The instant of a change made now: the clock in whole microseconds (what
    /// the PostgreSQL store keeps), never before the last one recorded.
    pub(crate) fn now(&mut self) -> OffsetDateTime {
        let clock = OffsetDateTime::now_utc();
        let clock = clock
            .replace_nanosecond(clock.nanosecond() / 1_000 * 1_000)
            .unwrap_or(clock);
        self.last = self.last.max(clock);
        self.last
    }

    /// Records that `client` lost `removed` and gained `added` at `at`.
    pub(crate) fn record(
        &mut self,
        at: OffsetDateTime,
        client: u32,
        added: &[PhoneNumber],
        removed: &[PhoneNumber],
    ) {
        let changes = removed
            .iter()
            .map(|&n| (n, OwnershipChange::Unassigned))
            .chain(added.iter().map(|&n| (n, OwnershipChange::Assigned)));
        for (number, change) in changes {
            self.events
                .entry(number)
                .or_default()
                .push(Event { client, change, at });
        }
    }

    /// The client index owning `number` at `at`, if any.
    pub(crate) fn owner_at(&self, number: PhoneNumber, at: OffsetDateTime) -> Option<u32> {
        let events = self.events.get(&number)?;
        let upto = events.partition_point(|e| e.at <= at);
        let last = events[..upto].last()?;
        (last.change == OwnershipChange::Assigned).then_some(last.client)
    }

    /// A page of `number`'s events; the cursor is a position in its list.
    /// `client` names a client index.
    pub(crate) fn page<'a>(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
        client: impl Fn(u32) -> Option<&'a ClientId>,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let events = self
            .events
            .get(&number)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = match page.after() {
            None => 0,
            Some(cursor) => cursor
                .position()
                .and_then(|p| usize::try_from(p).ok())
                .ok_or(StoreError::InvalidCursor)?
                .min(events.len()),
        };
        let end = (start + page.limit()).min(events.len());
        let items = events[start..end]
            .iter()
            .map(|e| {
                let client = client(e.client)
                    .ok_or_else(|| StoreError::Backend("a history event has no client".into()))?;
                Ok(HistoryEvent {
                    client: client.clone(),
                    change: e.change,
                    at: e.at,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page {
            items,
            next: (end > start).then(|| Cursor::from_position(end as u64)),
        })
    }
}
