//! Cursor paging.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest page a store returns.
pub const MAX_PAGE_LIMIT: usize = 1_000;

/// An opaque position in a listing, issued by a store with a [`Page`] and
/// handed back to continue after it. Stores document their encoding only to
/// themselves; callers pass cursors through unchanged.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// Largest cursor accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Wraps a cursor received from a caller; `None` if it is empty or too long
    /// to be one a store issued.
    pub fn new(cursor: impl Into<String>) -> Option<Self> {
        let cursor = cursor.into();
        (!cursor.is_empty() && cursor.len() <= Self::MAX_LEN).then_some(Self(cursor))
    }

    /// A cursor for a numeric position (what both bundled stores use).
    pub fn from_position(position: u64) -> Self {
        Self(position.to_string())
    }

    /// The numeric position of a cursor made by [`from_position`](Self::from_position).
    pub fn position(&self) -> Option<u64> {
        let canonical = !self.0.starts_with('0') || self.0 == "0";
        canonical.then(|| self.0.parse().ok()).flatten()
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.0)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which page to read: at most `limit` items after `after` (from the start
/// when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: usize,
    after: Option<Cursor>,
}

/// A page limit outside `1..=MAX_PAGE_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page limit must be between 1 and {max}, got {limit}", max = MAX_PAGE_LIMIT)]
pub struct PageLimitError {
    /// The rejected limit.
    pub limit: usize,
}

impl PageRequest {
    /// A request for `limit` items after `after`.
    pub fn new(limit: usize, after: Option<Cursor>) -> Result<Self, PageLimitError> {
        if (1..=MAX_PAGE_LIMIT).contains(&limit) {
            Ok(Self { limit, after })
        } else {
            Err(PageLimitError { limit })
        }
    }

    /// The first page, `limit` clamped into `1..=MAX_PAGE_LIMIT`.
    pub fn first(limit: usize) -> Self {
        Self {
            limit: limit.clamp(1, MAX_PAGE_LIMIT),
            after: None,
        }
    }

    /// The page after `page`'s last item, with the same limit; `None` when
    /// `page` was empty.
    pub fn next<T>(&self, page: &Page<T>) -> Option<Self> {
        page.next.clone().map(|after| Self {
            limit: self.limit,
            after: Some(after),
        })
    }

    /// Most items to return.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Where to start.
    pub fn after(&self) -> Option<&Cursor> {
        self.after.as_ref()
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where to continue: after this page's last item, even when nothing
    /// follows it yet (so a poller can ask again later); `None` only for an
    /// empty page, where the caller keeps the cursor it sent.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_positions() {
        assert!(PageRequest::new(0, None).is_err());
        assert!(PageRequest::new(1_001, None).is_err());
        assert_eq!(PageRequest::new(1_000, None).map(|p| p.limit()), Ok(1_000));
        assert_eq!(PageRequest::first(5_000).limit(), MAX_PAGE_LIMIT);
        assert_eq!(Cursor::from_position(42).position(), Some(42));
        assert_eq!(Cursor::new("042").and_then(|c| c.position()), None);
        assert_eq!(Cursor::new("x").and_then(|c| c.position()), None);
        assert!(Cursor::new("").is_none());
        assert!(Cursor::new("9".repeat(257)).is_none());
    }
}
