//! The body read timeout: a request body must arrive whole within
//! [`Limits::body_read_timeout`](crate::Limits::body_read_timeout) of its
//! headers, else the answer is 408 and the connection is closed.
//!
//! A deadline on the whole body, not on the gap between two of its pieces:
//! a caller trickling one byte a second never waits long between pieces,
//! and would hold a handler (and its connection) for as long as it liked.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::app::App;
use crate::error::ApiError;
use crate::limits::Refusal;

/// Middleware: puts the deadline on the body; if it passed before the body
/// was read whole, answers 408 with `Connection: close`, whatever the
/// handler made of its unreadable body.
pub(crate) async fn limit_body_time(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let timeout = app.limits().body_read_timeout;
    let expired = Arc::new(AtomicBool::new(false));
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Instant::now() + timeout,
        sleep: None,
        expired: expired.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    app.metrics().refused(Refusal::BodyTimeout);
    let mut response = body_timeout().into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 408 `body_timeout`.
pub(crate) fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "the request body did not arrive within the body read timeout; nothing was recorded",
    )
}

/// Whether `error`, or an error it was caused by, is the body read timeout.
pub(crate) fn is_body_timeout(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The error a body past its deadline ends with.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl Error for BodyTimedOut {}

/// A body that fails once its deadline has passed, however steadily its
/// pieces arrive.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Started on the first wait: a body that is already there costs no
    /// timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn expire(&mut self) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.expired.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            return this.expire();
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.expire()
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
