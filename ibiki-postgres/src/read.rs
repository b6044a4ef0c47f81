//! Reads: owners, a client's numbers, and the cursor-paged listings.
//!
//! Cursors are positions: an inbox's delivery position, the held area's
//! arrival id, a client id for the client list. Each page's cursor is its
//! last item's.

use ibiki_core::{
    ClientId, ClientSummary, Cursor, Delivery, DeliveryKind, Destination, HistoryEvent, MessageId,
    OwnershipChange, Page, PageRequest, PhoneNumber, StoreError, StoredReply,
};
use time::OffsetDateTime;

use crate::deadline::Db;
use crate::error::backend;
use crate::sql::Statements;

pub(crate) async fn owner_of(
    db: &Db,
    statement: &str,
    number: PhoneNumber,
) -> Result<Option<ClientId>, StoreError> {
    db.lease()
        .await?
        .run(|conn| {
            sqlx::query_scalar(statement)
                .bind(number)
                .fetch_optional(conn)
        })
        .await
}

/// The owner at `at`: the last event at or before it, when an assignment.
pub(crate) async fn owner_at(
    db: &Db,
    statement: &str,
    number: PhoneNumber,
    at: OffsetDateTime,
) -> Result<Option<ClientId>, StoreError> {
    let last: Option<(ClientId, String)> = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(number)
                .bind(at)
                .fetch_optional(conn)
        })
        .await?;
    match last {
        Some((client, change)) => {
            Ok((ownership(&change)? == OwnershipChange::Assigned).then_some(client))
        }
        None => Ok(None),
    }
}

/// A page of a number's history; the cursor is the last event's `seq`.
pub(crate) async fn history(
    db: &Db,
    statement: &str,
    number: PhoneNumber,
    page: &PageRequest,
) -> Result<Page<HistoryEvent>, StoreError> {
    let after = after_position(page)?;
    let rows: Vec<(ClientId, String, OffsetDateTime, i64)> = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(number)
                .bind(after)
                .bind(limit(page))
                .fetch_all(conn)
        })
        .await?;
    let next = match rows.last() {
        Some(last) => Some(Cursor::from_position(
            u64::try_from(last.3).map_err(backend)?,
        )),
        None => None,
    };
    let items = rows
        .into_iter()
        .map(|(client, change, at, _)| {
            Ok(HistoryEvent {
                client,
                change: ownership(&change)?,
                at,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Page { items, next })
}

fn ownership(change: &str) -> Result<OwnershipChange, StoreError> {
    match change {
        "assigned" => Ok(OwnershipChange::Assigned),
        "unassigned" => Ok(OwnershipChange::Unassigned),
        other => Err(backend(format!("unknown ownership change {other:?}"))),
    }
}

pub(crate) async fn numbers_of(
    db: &Db,
    statement: &str,
    client: &ClientId,
) -> Result<Vec<PhoneNumber>, StoreError> {
    let mut numbers: Vec<PhoneNumber> = db
        .lease()
        .await?
        .run(|conn| sqlx::query_scalar(statement).bind(client).fetch_all(conn))
        .await?;
    // SQL sorts the text; the contract wants PhoneNumber's numeric order.
    numbers.sort_unstable();
    Ok(numbers)
}

pub(crate) async fn list_clients(
    db: &Db,
    sql: &Statements,
    prefix: &str,
    page: &PageRequest,
) -> Result<Page<ClientSummary>, StoreError> {
    let after = match page.after() {
        None => String::new(),
        Some(cursor) => ClientId::new(cursor.as_str())
            .map_err(|_| StoreError::InvalidCursor)?
            .as_str()
            .to_owned(),
    };
    let rows: Vec<(ClientId, Vec<PhoneNumber>)> = db
        .lease()
        .await?
        .run(|conn| match prefix_end(prefix) {
            None => sqlx::query_as(&sql.list_clients)
                .bind(after)
                .bind(limit(page))
                .bind(prefix)
                .fetch_all(conn),
            Some(end) => sqlx::query_as(&sql.list_clients_prefixed)
                .bind(after)
                .bind(limit(page))
                .bind(prefix)
                .bind(end)
                .fetch_all(conn),
        })
        .await?;
    let items: Vec<ClientSummary> = rows
        .into_iter()
        .map(|(client, numbers)| ClientSummary { client, numbers })
        .collect();
    let next = items.last().and_then(|s| Cursor::new(s.client.as_str()));
    Ok(Page { items, next })
}

/// Where the ids starting with `prefix` end, in code point order: the ids
/// in `[prefix, end)` are exactly those. `end` is the prefix with its last
/// character incremented, trailing U+10FFFF (which has no successor)
/// dropped; `None` when nothing bounds them (`""`, or only U+10FFFF: every
/// id from the prefix on starts with it).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut end: Vec<char> = prefix.chars().collect();
    while let Some(last) = end.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            end.push(next);
            return Some(end.into_iter().collect());
        }
    }
    None
}

/// How many replies are held.
pub(crate) async fn held_count(db: &Db, statement: &str) -> Result<u64, StoreError> {
    let count: i64 = db
        .lease()
        .await?
        .run(|conn| sqlx::query_scalar(statement).fetch_one(conn))
        .await?;
    u64::try_from(count).map_err(backend)
}

/// A client's inbox page: `statement` binds the client, the position to
/// start after, and the limit.
pub(crate) async fn inbox(
    db: &Db,
    statement: &str,
    client: &ClientId,
    page: &PageRequest,
) -> Result<Page<StoredReply>, StoreError> {
    let after = after_position(page)?;
    let rows: Vec<ReplyRow> = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(client)
                .bind(after)
                .bind(limit(page))
                .fetch_all(conn)
        })
        .await?;
    into_page(rows)
}

/// A held area page: `statement` binds the position to start after and the
/// limit.
pub(crate) async fn held(
    db: &Db,
    statement: &str,
    page: &PageRequest,
) -> Result<Page<StoredReply>, StoreError> {
    let after = after_position(page)?;
    let rows: Vec<ReplyRow> = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(after)
                .bind(limit(page))
                .fetch_all(conn)
        })
        .await?;
    into_page(rows)
}

/// The reply `id`, as listed.
pub(crate) async fn reply(
    db: &Db,
    statement: &str,
    id: i64,
) -> Result<Option<StoredReply>, StoreError> {
    let row: Option<ReplyRow> = db
        .lease()
        .await?
        .run(|conn| sqlx::query_as(statement).bind(id).fetch_optional(conn))
        .await?;
    row.map(ReplyRow::into_stored).transpose()
}

/// The position a page starts after: 0 for the first page.
pub(crate) fn after_position(page: &PageRequest) -> Result<i64, StoreError> {
    match page.after() {
        None => Ok(0),
        Some(cursor) => cursor
            .position()
            .and_then(|p| i64::try_from(p).ok())
            .ok_or(StoreError::InvalidCursor),
    }
}

pub(crate) fn limit(page: &PageRequest) -> i64 {
    // At most MAX_PAGE_LIMIT.
    i64::try_from(page.limit()).unwrap_or(i64::MAX)
}

/// A reply as listed: the columns of `sql::REPLY_COLUMNS` and a position.
#[derive(sqlx::FromRow)]
pub(crate) struct ReplyRow {
    id: i64,
    message_id: Option<String>,
    to_number: Option<PhoneNumber>,
    to_unparsed: Option<String>,
    from_address: String,
    body: String,
    received_at: OffsetDateTime,
    /// NULL for replies recorded before migration 0002.
    delivery: Option<String>,
    delivered_at: Option<OffsetDateTime>,
    delivered: bool,
    position: i64,
}

fn into_page(rows: Vec<ReplyRow>) -> Result<Page<StoredReply>, StoreError> {
    let next = match rows.last() {
        Some(last) => Some(Cursor::from_position(
            u64::try_from(last.position).map_err(backend)?,
        )),
        None => None,
    };
    let items = rows
        .into_iter()
        .map(ReplyRow::into_stored)
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

impl ReplyRow {
    pub(crate) fn into_stored(self) -> Result<StoredReply, StoreError> {
        let to = match (self.to_number, self.to_unparsed) {
            (Some(number), _) => Destination::Number(number),
            (None, Some(raw)) => Destination::Unparsed(raw),
            (None, None) => return Err(backend("a stored reply has no destination")),
        };
        let kind = match &self.delivery {
            Some(name) => DeliveryKind::from_name(name)
                .ok_or_else(|| backend(format!("unknown delivery kind {name:?}")))?,
            None if self.delivered => DeliveryKind::Delivered,
            None => DeliveryKind::on_receipt(&to, false),
        };
        Ok(StoredReply {
            id: u64::try_from(self.id).map_err(backend)?,
            delivery: Delivery {
                kind,
                at: self.delivered_at.unwrap_or(self.received_at),
            },
            message_id: self
                .message_id
                .map(MessageId::new)
                .transpose()
                .map_err(backend)?,
            from: self.from_address,
            to,
            body: self.body,
            received_at: self.received_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::prefix_end;

    #[test]
    fn ends_of_prefixes() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    proptest! {
        /// A string is in `[prefix, end)` exactly when it starts with the
        /// prefix (byte order is code point order in UTF-8, as in COLLATE "C").
        #[test]
        fn the_range_is_the_prefix(
            prefix in "[a\u{10FFFF}\u{D7FF}]{0,3}",
            tail in "\\PC{0,3}",
            other in "[a-c\u{10FFFF}\u{D7FF}\u{E000}]{0,4}",
        ) {
            let within = |id: &str| {
                id >= prefix.as_str() && prefix_end(&prefix).is_none_or(|end| id < end.as_str())
            };
            let extended = format!("{prefix}{tail}");
            prop_assert!(within(&extended));
            prop_assert_eq!(within(&other), other.starts_with(&prefix));
        }
    }
}
