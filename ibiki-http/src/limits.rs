//! What one caller can take from the router: how long a request body may
//! take to arrive, and how many live inbox streams may be open.
//!
//! These are the router's own limits, so every server that mounts ibiki's
//! routes gets them. The limits on connections themselves (how long the
//! headers may take, how long an idle keep-alive connection stays, a client
//! that reads nothing, how many connections) belong to the server that owns
//! the sockets; the workspace README shows them for `axum::serve` and hyper.

use std::time::Duration;

/// The router's limits, given to [`App::with_limits`](crate::App::with_limits).
///
/// ```
/// use std::time::Duration;
///
/// use ibiki_http::Limits;
///
/// let mut limits = Limits::default();
/// limits.body_read_timeout = Duration::from_secs(10);
/// limits.max_streams_per_client = 4;
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A body not complete within this time of its headers is answered 408
    /// and its connection closed; the handler never sees it, so nothing is
    /// recorded. A provider's webhook body arrives in milliseconds: this
    /// only ever stops a caller that trickles one.
    pub body_read_timeout: Duration,
    /// Open `/api/clients/{userId}/events` streams of one client, at most;
    /// the next is answered 429 with `Retry-After`.
    pub max_streams_per_client: usize,
    /// Open live streams in all, every client together, at most; the next
    /// is answered 429 with `Retry-After`.
    pub max_streams: usize,
}

impl Limits {
    /// The default [`body_read_timeout`](Self::body_read_timeout).
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// The default [`max_streams_per_client`](Self::max_streams_per_client):
    /// a few browser tabs and a worker or two.
    pub const DEFAULT_MAX_STREAMS_PER_CLIENT: usize = 16;

    /// The default [`max_streams`](Self::max_streams).
    pub const DEFAULT_MAX_STREAMS: usize = 4096;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            max_streams_per_client: Self::DEFAULT_MAX_STREAMS_PER_CLIENT,
            max_streams: Self::DEFAULT_MAX_STREAMS,
        }
    }
}

/// What a limit refused or cut short, as `/metrics` counts it
/// (`ibiki_refusals_total{reason}`, [`Metrics::refused`](crate::Metrics::refused)).
///
/// The router counts [`BodyTimeout`](Self::BodyTimeout) and
/// [`MaxStreams`](Self::MaxStreams) itself; the others are the server's, which
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// A connection whose request headers did not arrive in time, closed.
    HeaderTimeout,
    /// A request whose body did not arrive in time: 408, connection closed.
    BodyTimeout,
    /// A keep-alive connection without a request for too long, closed.
    Idle,
    /// A connection whose client took none of its answer for too long,
    /// closed.
    SendTimeout,
    /// A connection past the server's cap, closed as soon as accepted.
    MaxConnections,
    /// A live stream past a cap (per client or in all): 429.
    MaxStreams,
}

impl Refusal {
    /// Every reason: each shows in `/metrics` from the start, at 0.
    pub(crate) const ALL: [Self; 6] = [
        Self::HeaderTimeout,
        Self::BodyTimeout,
        Self::Idle,
        Self::SendTimeout,
        Self::MaxConnections,
        Self::MaxStreams,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::Idle => "idle",
            Self::SendTimeout => "send_timeout",
            Self::MaxConnections => "max_connections",
            Self::MaxStreams => "max_streams",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
