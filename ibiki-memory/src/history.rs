//! Ownership history: every assignment and unassignment of each number,
//! appended under the store's lock by the change that made it.
//!
//! One `change` has one instant and one client for all its numbers, so both
//! are kept once per change (12 bytes). A number's events hang off the
//! routing table's entry (its `head`): a number assigned once and never
//! changed since (most of them) needs nothing more, the head names the change
//! itself; from its second event on, each event is 8 bytes in one
//! append-only log (the change, and the number's previous event).

use ibiki_core::{ClientId, Cursor, HistoryEvent, OwnershipChange, Page, PageRequest, StoreError};
use time::OffsetDateTime;

use crate::chunked::ChunkedVec;

/// A head with this bit names the number's only event: its assignment by
/// the change in the other bits. Without it, a head is an index in the log.
const ONLY: u32 = 1 << 31;
/// An event's `change` with this bit is an unassignment.
const UNASSIGNED: u32 = 1 << 31;
/// No previous event.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Event {
    /// The change's index, [`UNASSIGNED`] set for an unassignment.
    change: u32,
    /// The number's previous event, or [`NONE`].
    prev: u32,
}

#[derive(Debug)]
pub(crate) struct History {
    /// Each change's instant, microseconds since the epoch.
    ats: ChunkedVec<i64>,
    /// Each change's client index.
    clients: ChunkedVec<u32>,
    events: ChunkedVec<Event>,
    /// The latest instant recorded: the clock may step back, the history may not.
    last: OffsetDateTime,
}

impl Default for History {
    fn default() -> Self {
        Self {
            ats: ChunkedVec::default(),
            clients: ChunkedVec::default(),
            events: ChunkedVec::default(),
            last: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// The clock in whole microseconds: the resolution the PostgreSQL store
/// keeps instants at.
pub(crate) fn clock_micros() -> OffsetDateTime {
    let clock = OffsetDateTime::now_utc();
    clock
        .replace_nanosecond(clock.nanosecond() / 1_000 * 1_000)
        .unwrap_or(clock)
}

fn micros(at: OffsetDateTime) -> i64 {
    // Instants are whole microseconds of years -9999..=9999: they fit.
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn instant(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn full() -> StoreError {
    StoreError::Backend("the ownership history is full".into())
}

/// One event as read back: the change's index and whether it assigned.
#[derive(Debug, Clone, Copy)]
struct Read {
    change: u32,
    assigned: bool,
}

impl History {
    /// The instant of a change made now: the clock in whole microseconds (what
    /// the PostgreSQL store keeps), never before the last one recorded.
    pub(crate) fn now(&mut self) -> OffsetDateTime {
        self.last = self.last.max(clock_micros());
        self.last
    }

    /// Checks that a change of `events` events fits, before anything changes.
    pub(crate) fn reserve(&self, events: usize) -> Result<(), StoreError> {
        // Each event may take two log entries (the first event moves there).
        let needed = self.events.len().saturating_add(events.saturating_mul(2));
        if self.ats.len() >= (ONLY - 1) as usize || needed >= (ONLY - 1) as usize {
            return Err(full());
        }
        Ok(())
    }

    /// Starts a change by `client` at `at`; returns its index for
    /// [`History::push`]. Call [`History::reserve`] first.
    pub(crate) fn change(&mut self, at: OffsetDateTime, client: u32) -> u32 {
        self.clients.push(client);
        self.ats.push(micros(at)) as u32
    }

    /// Appends an event of `change` to the history whose head is `head`
    /// (`None` for a number without history); returns the new head.
    pub(crate) fn push(&mut self, head: Option<u32>, change: u32, assigned: bool) -> u32 {
        let kind = if assigned { 0 } else { UNASSIGNED };
        let prev = match head {
            None if assigned => return ONLY | change,
            None => NONE,
            Some(head) if head & ONLY != 0 => self.events.push(Event {
                change: head & !ONLY,
                prev: NONE,
            }) as u32,
            Some(head) => head,
        };
        self.events.push(Event {
            change: change | kind,
            prev,
        }) as u32
    }

    /// The events from `head` back, newest first.
    fn newest_first(&self, head: u32) -> impl Iterator<Item = Read> + '_ {
        let mut next = Some(head);
        std::iter::from_fn(move || {
            let head = next.take()?;
            if head & ONLY != 0 {
                return Some(Read {
                    change: head & !ONLY,
                    assigned: true,
                });
            }
            let event = self.events.get(head as usize)?;
            next = (event.prev != NONE).then_some(event.prev);
            Some(Read {
                change: event.change & !UNASSIGNED,
                assigned: event.change & UNASSIGNED == 0,
            })
        })
    }

    fn at(&self, change: u32) -> Option<i64> {
        self.ats.get(change as usize).copied()
    }

    fn client(&self, change: u32) -> Option<u32> {
        self.clients.get(change as usize).copied()
    }

    /// The client index owning the number whose head is `head` at `at`.
    pub(crate) fn owner_at(&self, head: u32, at: OffsetDateTime) -> Option<u32> {
        let at = micros(at);
        let last = self
            .newest_first(head)
            .find(|e| self.at(e.change).is_some_and(|t| t <= at))?;
        if last.assigned {
            self.client(last.change)
        } else {
            None
        }
    }

    /// A page of the events of the number whose head is `head` (`None`:
    /// none), oldest first; the cursor is a position in that list. `client`
    /// names a client index.
    pub(crate) fn page<'a>(
        &self,
        head: Option<u32>,
        page: &PageRequest,
        client: impl Fn(u32) -> Option<&'a ClientId>,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let mut events: Vec<Read> = head
            .map(|h| self.newest_first(h).collect())
            .unwrap_or_default();
        events.reverse();
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
                let client = self
                    .client(e.change)
                    .and_then(&client)
                    .ok_or_else(|| StoreError::Backend("a history event has no client".into()))?;
                let at = self
                    .at(e.change)
                    .ok_or_else(|| StoreError::Backend("a history event has no instant".into()))?;
                Ok(HistoryEvent {
                    client: client.clone(),
                    change: if e.assigned {
                        OwnershipChange::Assigned
                    } else {
                        OwnershipChange::Unassigned
                    },
                    at: instant(at),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page {
            items,
            next: (end > start).then(|| Cursor::from_position(end as u64)),
        })
    }
}
