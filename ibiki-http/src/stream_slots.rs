//! The caps on open live streams: per client and in all. A stream holds a
//! slot from before its first read until its body is dropped (its client
//! left, it ended, or the server closed it), so a refused stream costs the
//! store nothing.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use ibiki_core::ClientId;

use crate::error::ApiError;
use crate::limits::Limits;

/// How long a refused stream is asked to wait (`Retry-After`): slots free
/// only as other streams end, so retrying at once is pointless.
pub(crate) const STREAM_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The open streams, counted against the caps.
#[derive(Debug)]
pub(crate) struct StreamSlots {
    per_client: usize,
    total: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only clients with an open stream: at most `total` entries.
    by_client: HashMap<ClientId, usize>,
}

impl StreamSlots {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            per_client: limits.max_streams_per_client,
            total: limits.max_streams,
            open: Mutex::default(),
        }
    }

    /// A slot for one more stream of `client`, or the 429 that says which
    /// cap is full.
    pub(crate) fn take(self: &Arc<Self>, client: &ClientId) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.total {
            return Err(too_many(format!(
                "the server has {} live streams open, its most",
                self.total
            )));
        }
        let of_client = open.by_client.get(client).copied().unwrap_or(0);
        if of_client >= self.per_client {
            return Err(too_many(format!(
                "this client has {} live streams open, its most; close one first",
                self.per_client
            )));
        }
        open.total += 1;
        open.by_client.insert(client.clone(), of_client + 1);
        Ok(StreamSlot {
            slots: self.clone(),
            client: client.clone(),
        })
    }

    fn give_back(&self, client: &ClientId) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_client.get_mut(client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_client.remove(client);
            }
        }
    }
}

/// 429 `too_many_streams`, with `Retry-After`.
fn too_many(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message)
        .retry_after(STREAM_RETRY_AFTER)
}

/// One open stream's place, given back when dropped.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    slots: Arc<StreamSlots>,
    client: ClientId,
}

impl StreamSlot {
    /// `response`, its body holding this slot until it is dropped.
    pub(crate) fn hold(self, response: Response) -> Response {
        response.map(|inner| Body::new(Holding { inner, _slot: self }))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.slots.give_back(&self.client);
    }
}

/// A body that keeps a slot while it lives.
struct Holding {
    inner: Body,
    _slot: StreamSlot,
}

impl HttpBody for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(per_client: usize, total: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots::new(&Limits {
            max_streams_per_client: per_client,
            max_streams: total,
            ..Limits::default()
        }))
    }

    fn client(id: &str) -> ClientId {
        ClientId::new(id).expect("a client id")
    }

    #[test]
    fn each_cap_holds_and_a_dropped_slot_frees_its_place() {
        let slots = slots(2, 3);
        let (a, b) = (client("a"), client("b"));
        let first = slots.take(&a).expect("1st of a");
        let _second = slots.take(&a).expect("2nd of a");
        let refused = slots.take(&a).expect_err("a is full");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.message().contains("this client"), "{refused:?}");
        let _third = slots.take(&b).expect("b has room");
        let refused = slots.take(&b).expect_err("the server is full");
        assert!(refused.message().contains("the server"), "{refused:?}");
        drop(first);
        let _again = slots.take(&b).expect("a slot was freed");
        let open = slots.open.lock().expect("not poisoned");
        assert_eq!(open.total, 3);
        assert_eq!(open.by_client.len(), 2);
    }

    #[test]
    fn no_client_is_kept_once_its_streams_are_gone() {
        let slots = slots(16, 100);
        let taken: Vec<_> = (0..50)
            .map(|i| slots.take(&client(&format!("c{i}"))).expect("room"))
            .collect();
        drop(taken);
        let open = slots.open.lock().expect("not poisoned");
        assert_eq!((open.total, open.by_client.len()), (0, 0));
    }

    #[test]
    fn zero_caps_refuse_every_stream() {
        assert!(slots(0, 10).take(&client("a")).is_err());
        assert!(slots(10, 0).take(&client("a")).is_err());
    }
}
