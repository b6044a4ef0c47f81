//! One connection under the server's limits: its request headers must arrive
//! in time, it may stay idle between requests only so long, and a client
//! that takes none of its answer is let go.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a
//! keep-alive connection waits for its next request, so the idle timeout
//! could never be longer than it, and it cannot tell the two apart for the
//! metrics. Instead the connection's socket is wrapped (`Watched`), and
//! the service tells it when a request starts and when its answer has been
//! handed over in full; the socket then knows which deadline applies when
//! hyper waits to read:
//!
//! - a new connection, or a next request whose first byte came: the header
//!   read timeout, from then;
//! - between requests: the idle timeout, from the end of the last answer;
//! - while a request is in flight: none (the body read timeout is the
//!   router's; a handler or a live stream may take its time).
//!
//! And while hyper waits to write, the send timeout runs from the first
//! write that could not proceed until one does.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ibiki_http::{Metrics, Refusal};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::limits::{default_max_connections, open_file_limit};

/// The limits the server loop enforces on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a request's headers may take: from the moment the
    /// connection opened, or the first byte of a next request came.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a client may take none of its answer.
    pub send_timeout: Duration,
    /// Connections open at once, at most (each holds a file descriptor).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// 10 s, 60 s and 30 s, and a cap that leaves a tenth of the open-file
    /// limit free.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            max_connections: default_max_connections(open_file_limit()),
        }
    }
}

/// Serves HTTP/1 on `io` until the client leaves, a limit closes it, or
/// `stopping` completes (then the request in flight finishes first).
pub(crate) async fn serve_connection<T>(
    io: T,
    router: Router,
    limits: ConnectionLimits,
    metrics: Option<Metrics>,
    stopping: impl Future<Output = ()>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let phase = Arc::new(PhaseCell::new());
    let io = TokioIo::new(Watched::new(io, phase.clone(), limits, metrics));
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(phase.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            response.map(|response| response.map(|body| Body::new(Answer { body, in_flight })))
        }
    });
    let connection = http1::Builder::new()
        // Ours instead (see the module's documentation).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::pin!(stopping);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = &mut stopping => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::trace!(%error, "connection ended");
    }
}

/// Where a connection is, as far as its deadlines go.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a request's headers, since `since`.
    Head { since: Instant },
    /// `count` requests in flight (hyper answers one at a time; a count
    /// keeps this right whatever it does).
    Busy { count: usize },
    /// No request since `since`.
    Idle { since: Instant },
}

/// The phase, shared by the socket and the service.
#[derive(Debug)]
struct PhaseCell(Mutex<Shared>);

#[derive(Debug)]
struct Shared {
    phase: Phase,
    /// The task last left waiting to read: woken when a request's end
    /// starts the idle timeout, since hyper reads again only when woken.
    reader: Option<Waker>,
}

impl PhaseCell {
    fn new() -> Self {
        Self(Mutex::new(Shared {
            phase: Phase::Head {
                since: Instant::now(),
            },
            reader: None,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes came: between requests, they start the next one's headers.
    fn bytes_read(&self) {
        let mut shared = self.lock();
        if let Phase::Idle { .. } = shared.phase {
            shared.phase = Phase::Head {
                since: Instant::now(),
            };
        }
    }

    /// When reading must have made progress by, and what passing it means;
    /// `waker` is woken if that changes while it waits.
    fn read_deadline(
        &self,
        limits: &ConnectionLimits,
        waker: &Waker,
    ) -> Option<(Instant, Refusal)> {
        let mut shared = self.lock();
        if !shared.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            shared.reader = Some(waker.clone());
        }
        match shared.phase {
            Phase::Head { since } => {
                Some((since + limits.header_read_timeout, Refusal::HeaderTimeout))
            }
            Phase::Idle { since } => Some((since + limits.idle_timeout, Refusal::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    fn request_started(&self) {
        let mut shared = self.lock();
        shared.phase = match shared.phase {
            Phase::Busy { count } => Phase::Busy { count: count + 1 },
            _ => Phase::Busy { count: 1 },
        };
    }

    fn request_ended(&self) {
        let mut shared = self.lock();
        shared.phase = match shared.phase {
            Phase::Busy { count } if count > 1 => Phase::Busy { count: count - 1 },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        };
        if let (Phase::Idle { .. }, Some(reader)) = (shared.phase, shared.reader.take()) {
            reader.wake();
        }
    }
}

/// One request in flight, from its headers until its answer's body is
/// dropped (sent in full, or given up with the connection).
struct InFlight(Arc<PhaseCell>);

impl InFlight {
    fn start(phase: Arc<PhaseCell>) -> Self {
        phase.request_started();
        Self(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// An answer's body, keeping its request in flight while it lives.
struct Answer {
    body: Body,
    in_flight: InFlight,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("phase", &self.in_flight.0)
            .finish()
    }
}

/// A connection's socket that fails a read or a write once the deadline of
/// the connection's phase has passed, counting why.
pub(crate) struct Watched<T> {
    io: T,
    phase: Arc<PhaseCell>,
    limits: ConnectionLimits,
    metrics: Option<Metrics>,
    /// Created on the first wait, reset after.
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// When a write could not proceed, and none has since: the deadline for
    /// the next to.
    write_blocked_until: Option<Instant>,
    /// The limit that closed the connection, once it did.
    closed_by: Option<Refusal>,
}

impl<T> Watched<T> {
    fn new(
        io: T,
        phase: Arc<PhaseCell>,
        limits: ConnectionLimits,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            io,
            phase,
            limits,
            metrics,
            read_timer: None,
            write_timer: None,
            write_blocked_until: None,
            closed_by: None,
        }
    }

    /// Pending until the phase's read deadline, then the error that closes
    /// the connection.
    fn poll_read_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.write_blocked_until.is_some() {
            // The answer waits for the client to take it: the send timeout
            // governs (and when it is taken, `wrote` has the task read again).
            return Poll::Pending;
        }
        let Some((deadline, reason)) = self.phase.read_deadline(&self.limits, cx.waker()) else {
            return Poll::Pending;
        };
        ready!(timer_at(&mut self.read_timer, deadline).poll(cx));
        Poll::Ready(self.close(reason))
    }

    /// Pending until the send timeout after the first blocked write, then
    /// the error that closes the connection.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = *self
            .write_blocked_until
            .get_or_insert_with(|| Instant::now() + self.limits.send_timeout);
        ready!(timer_at(&mut self.write_timer, deadline).poll(cx));
        Poll::Ready(self.close(Refusal::SendTimeout))
    }

    /// Counts `reason` once, and the error every later call gets.
    fn close(&mut self, reason: Refusal) -> io::Error {
        if self.closed_by.is_none() {
            self.closed_by = Some(reason);
            if let Some(metrics) = &self.metrics {
                metrics.refused(reason);
            }
            tracing::debug!(%reason, "connection closed by a limit");
        }
        io::Error::new(io::ErrorKind::TimedOut, reason.as_str())
    }

    /// A write's outcome: progress clears the send timeout; waiting starts
    /// or polls it.
    fn wrote<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                if self.write_blocked_until.take().is_some() {
                    // Reading may have a deadline again: hyper reads only
                    // when woken.
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_write_deadline(cx).map(Err),
        }
    }
}

/// `timer`, created or moved to `deadline`.
fn timer_at(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant) -> Pin<&mut Sleep> {
    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut()
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(reason) = this.closed_by {
            return Poll::Ready(Err(this.close(reason)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_read_deadline(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.wrote(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use ibiki_http::prometheus_client::encoding::text::encode;
    use ibiki_http::prometheus_client::registry::Registry;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    use super::*;

    const SHORT: Duration = Duration::from_millis(300);

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: SHORT,
            idle_timeout: SHORT,
            send_timeout: SHORT,
            max_connections: 1,
        }
    }

    /// A megabyte at `/big`; ten pieces 60 ms apart at `/slow`.
    fn router() -> Router {
        Router::new()
            .route("/big", get(|| async { vec![b'x'; 1 << 20] }))
            .route(
                "/slow",
                get(|| async {
                    let pieces = futures_util::stream::unfold(0, |i| async move {
                        (i < 10).then_some(())?;
                        tokio::time::sleep(Duration::from_millis(60)).await;
                        Some((Ok::<_, io::Error>(Bytes::from_static(b"piece\n")), i + 1))
                    });
                    Body::from_stream(pieces)
                }),
            )
    }

    /// One connection over an in-memory pipe of 1 KiB each way: the client's
    /// end, the metrics, and the connection's task (how long it lived).
    fn connect() -> (DuplexStream, Metrics, JoinHandle<Duration>) {
        let (client, server) = tokio::io::duplex(1024);
        let metrics = Metrics::new();
        let counted = Some(metrics.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            serve_connection(server, router(), limits(), counted, std::future::pending()).await;
            started.elapsed()
        });
        (client, metrics, task)
    }

    fn refused(metrics: &Metrics, reason: Refusal) -> u64 {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoded");
        let line = format!("ibiki_refusals_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line)?.parse().ok())
            .unwrap_or_else(|| panic!("{line} in {text}"))
    }

    async fn lived(task: JoinHandle<Duration>) -> Duration {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("closed")
            .expect("not panicked")
    }

    #[tokio::test]
    async fn headers_that_never_come_close_the_connection() {
        let (mut client, metrics, task) = connect();
        client
            .write_all(b"POST /big HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("written");
        let lived = lived(task).await;
        assert!(lived >= SHORT && lived < SHORT * 4, "{lived:?}");
        assert_eq!(refused(&metrics, Refusal::HeaderTimeout), 1);
        assert_eq!(refused(&metrics, Refusal::Idle), 0);
    }

    #[tokio::test]
    async fn a_client_that_reads_nothing_is_let_go() {
        let (mut client, metrics, task) = connect();
        client
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("written");
        let lived = lived(task).await;
        assert!(lived >= SHORT && lived < SHORT * 4, "{lived:?}");
        assert_eq!(refused(&metrics, Refusal::SendTimeout), 1);
        drop(client);
    }

    /// An answer that takes twice the idle and header timeouts to send, to a
    /// client that reads it: no deadline applies while it flows; after it,
    /// the idle timeout does.
    #[tokio::test]
    async fn a_long_answer_is_not_idle_and_idleness_after_it_is() {
        let (mut client, metrics, task) = connect();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("written");
        let mut answer = Vec::new();
        while !answer.ends_with(b"0\r\n\r\n") {
            let mut buf = [0; 256];
            let read = client.read(&mut buf).await.expect("read");
            assert_ne!(read, 0, "cut short: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..read]);
        }
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(text.matches("piece").count(), 10, "{text}");
        lived(task).await;
        assert_eq!(refused(&metrics, Refusal::Idle), 1);
        assert_eq!(refused(&metrics, Refusal::HeaderTimeout), 0);
    }
}
