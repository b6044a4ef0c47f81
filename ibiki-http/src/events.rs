//! `GET /api/clients/{userId}/events`: a client's inbox as a live stream of
//! Server-Sent Events.
//!
//! Server-Sent Events rather than WebSockets: the stream only flows one way,
//! is plain HTTP (proxies, the bearer header and the admin middleware apply
//! unchanged), and the format has resumption built in: each event's `id` is
//! the inbox cursor after its reply, and a client that reconnects sends the
//! last one back as `Last-Event-ID`.
//!
//! The stream reads the inbox by cursor, like a client paging
//! `/messages`. The store's contract makes that exact: an inbox lists replies
//! in delivery order and a released reply is delivered after everything
//! already there, so reading after a cursor neither skips nor repeats a
//! reply.
//!
//! A stream that has caught up waits for its client's wake-up when the store
//! offers them ([`ReplyStore::inbox_signals`]): an idle stream costs the
//! store nothing, however many are open, and a delivery by any server
//! process on the same database wakes it. It subscribes before its first
//! read, so a reply delivered between a read and the wait wakes it too.
//! With a store that offers none it reads again every [`POLL_INTERVAL`].
//!
//! [`ReplyStore::inbox_signals`]: ibiki_core::ReplyStore::inbox_signals

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use ibiki_core::{ClientId, Cursor, InboxSubscription, PageRequest, StoreError, StoredReply};
use serde::Deserialize;

use crate::admin::{client_id, path_segment};
use crate::app::App;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::request::parse_query;

/// How often a caught-up stream reads the inbox again when the store offers
/// no wake-ups ([`ReplyStore::inbox_signals`](ibiki_core::ReplyStore::inbox_signals)
/// is `None`).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a stream waits after a store failure before reading again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The reconnection delay the stream asks clients to use (`retry:`).
const CLIENT_RETRY: Duration = Duration::from_secs(1);

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The name of every reply event (`event: reply`).
pub(crate) const REPLY_EVENT: &str = "reply";

/// `?after=CURSOR`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<String>,
}

/// `GET /api/clients/{userId}/events`.
#[utoipa::path(
    get,
    path = "/api/clients/{userId}/events",
    tag = "inbox",
    security(("bearer" = [])),
    params(
        ("userId" = String, Path, description = "The client", min_length = 1, example = "123"),
        ("after" = Option<String>, Query, min_length = 1, max_length = 256,
            description = "Start after this cursor (a `next` of `/messages`, or an event's `id`); \
                from the inbox's first reply without one"),
        ("Last-Event-ID" = Option<String>, Header, min_length = 1, max_length = 256,
            description = "The `id` of the last event received: resumes after it, and wins over `after`"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Never-ending stream of Server-Sent Events: one `reply` event per reply \
                delivered to the inbox, oldest first, each with the reply as JSON `data` (the \
                `StoredReply` schema) and the cursor after it as `id`; a comment every 15 s \
                while nothing arrives."),
        (status = 400, description = "Invalid `userId`, `after`, `Last-Event-ID` or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token or key", body = ErrorBody),
        (status = 403, description = "Another client's key", body = ErrorBody),
        (status = 404, description = "No such route (an empty `userId`)", body = ErrorBody),
        (status = 429, description = "As many streams are open as allowed, for this client or \
            on the server; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 503, description = "The store is unavailable; retry later", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let client = client_id(&path_segment(path)?)?;
    let after = resume_cursor(&headers, query.as_deref())?;
    let slot = app.stream_slot(&client)?;
    // Before the first read: a delivery after it wakes the stream.
    let wake = app.store().inbox_signals().map(|s| s.subscribe(&client));
    // The first read happens before the answer, so a cursor the store does
    // not know, or a store that does not answer, is an error status rather
    // than a stream that dies at once.
    let first = next_reply(&app, &client, after.as_ref()).await?;
    let stream = reply_stream(app.clone(), client, after, first, wake);
    let response = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(slot.hold(response.into_response()))
}

/// Where to start: `Last-Event-ID` if present (a reconnecting `EventSource`
/// keeps its original URL), else `?after=`, else the inbox's start.
fn resume_cursor(headers: &HeaderMap, query: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    let query: EventsQuery = parse_query(query)?;
    let invalid = |what: &str| {
        ApiError::bad_request(
            "invalid_cursor",
            format!("`{what}` is not a cursor this server issued"),
        )
    };
    if let Some(value) = headers.get("last-event-id") {
        let text = value.to_str().map_err(|_| invalid("Last-Event-ID"))?;
        // An empty Last-Event-ID is what a browser sends before any event
        // carried an id: no position yet.
        if !text.is_empty() {
            return Cursor::new(text)
                .map(Some)
                .ok_or_else(|| invalid("Last-Event-ID"));
        }
    }
    query
        .after
        .map(|text| Cursor::new(text).ok_or_else(|| invalid("after")))
        .transpose()
}

/// The reply after `after`, and the cursor after it.
async fn next_reply(
    app: &App,
    client: &ClientId,
    after: Option<&Cursor>,
) -> Result<Option<(StoredReply, Cursor)>, StoreError> {
    // One reply per read: each event carries the cursor right after its own
    // reply, which only a page of one gives.
    let page = PageRequest::new(1, after.cloned())
        .unwrap_or_else(|e| unreachable!("1 is a valid page limit: {e}"));
    let mut page = app.store().inbox(client, &page).await?;
    Ok(match (page.items.pop(), page.next) {
        (Some(reply), Some(next)) => Some((reply, next)),
        _ => None,
    })
}

/// The state of one stream between two events.
struct StreamState {
    app: Arc<App>,
    client: ClientId,
    after: Option<Cursor>,
    /// A reply already read and not yet sent.
    ready: Option<(StoredReply, Cursor)>,
    /// The first event (the reconnection delay) is not sent yet.
    greet: bool,
    /// The client's wake-ups, taken before the first read; `None`: poll.
    wake: Option<InboxSubscription>,
}

impl StreamState {
    /// Waits until the inbox may hold something new.
    async fn caught_up(&mut self) {
        match &mut self.wake {
            Some(wake) => wake.changed().await,
            None => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

fn reply_stream(
    app: Arc<App>,
    client: ClientId,
    after: Option<Cursor>,
    first: Option<(StoredReply, Cursor)>,
    wake: Option<InboxSubscription>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let closing = app.closing();
    let state = StreamState {
        app,
        client,
        after,
        ready: first,
        greet: true,
        wake,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        if state.greet {
            state.greet = false;
            let hello = Event::default().comment("ibiki inbox").retry(CLIENT_RETRY);
            return Some((Ok(hello), state));
        }
        loop {
            if let Some((reply, next)) = state.ready.take() {
                state.after = Some(next.clone());
                return Some((Ok(reply_event(&reply, &next)), state));
            }
            match next_reply(&state.app, &state.client, state.after.as_ref()).await {
                Ok(Some(found)) => state.ready = Some(found),
                Ok(None) => state.caught_up().await,
                Err(StoreError::InvalidCursor) => {
                    // Only a cursor the store issued gets here: nothing to
                    // continue from, so end and let the client start over.
                    tracing::warn!(client = %state.client, "inbox stream: cursor rejected");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(client = %state.client, error = %e, "inbox stream: store failed");
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                }
            }
        }
    });
    until_closing(events, closing)
}

/// `event: reply`, the reply as JSON, and the cursor after it as `id`.
fn reply_event(reply: &StoredReply, next: &Cursor) -> Event {
    let data = serde_json::to_string(reply)
        .unwrap_or_else(|e| unreachable!("a stored reply serializes: {e}"));
    let event = Event::default().event(REPLY_EVENT).data(data);
    if is_event_id(next.as_str()) {
        event.id(next.as_str())
    } else {
        // A store's cursor with a line break or NUL cannot be an SSE id;
        // the bundled stores' cursors are digits or client ids, which cannot.
        tracing::warn!("inbox stream: a cursor that cannot be an event id");
        event
    }
}

/// Whether `id` can be an SSE `id` field.
fn is_event_id(id: &str) -> bool {
    !id.contains(['\0', '\r', '\n'])
}

/// `events`, ended when the app closes its streams.
fn until_closing<S>(
    events: S,
    closing: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = S::Item> + Send + 'static
where
    S: Stream + Send + 'static,
    S::Item: Send,
{
    use futures_util::StreamExt;
    events.take_until(Box::pin(closing))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_last_event_id(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_str(id).expect("header"));
        headers
    }

    #[test]
    fn last_event_id_wins_over_after() {
        let cursor = |headers: &HeaderMap, query| {
            resume_cursor(headers, query).map(|c| c.map(|c| c.as_str().to_owned()))
        };
        let none = HeaderMap::new();
        assert_eq!(cursor(&none, None).ok(), Some(None));
        assert_eq!(cursor(&none, Some("after=7")).ok(), Some(Some("7".into())));
        let resumed = with_last_event_id("9");
        assert_eq!(
            cursor(&resumed, Some("after=7")).ok(),
            Some(Some("9".into()))
        );
        // A browser's empty Last-Event-ID: no position, the URL's cursor holds.
        let empty = with_last_event_id("");
        assert_eq!(cursor(&empty, Some("after=7")).ok(), Some(Some("7".into())));
        for (headers, query) in [
            (&none, "after="),
            (&none, "after=1&after=2"),
            (&with_last_event_id(&"9".repeat(257)), ""),
        ] {
            assert_eq!(
                cursor(headers, Some(query)).err().map(|e| e.code()),
                Some(if query == "after=1&after=2" {
                    "invalid_query"
                } else {
                    "invalid_cursor"
                }),
                "{query}"
            );
        }
    }

    proptest::proptest! {
        /// Any query and any Last-Event-ID bytes: a cursor or a 400, never a
        /// panic; a cursor that is not an SSE id never becomes one.
        #[test]
        fn any_resume_input_is_answered(
            query in ".{0,300}",
            id in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&id) {
                headers.insert("last-event-id", value);
            }
            match resume_cursor(&headers, Some(&query)) {
                Ok(Some(cursor)) => proptest::prop_assert!(
                    !cursor.as_str().is_empty() && cursor.as_str().len() <= Cursor::MAX_LEN
                ),
                Ok(None) => {}
                Err(e) => proptest::prop_assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST),
            }
        }
    }

    #[test]
    fn event_ids() {
        assert!(is_event_id("42"));
        assert!(is_event_id("client 7"));
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert!(!is_event_id(bad), "{bad:?}");
        }
    }
}
