//! The server's limits as flags: a timeout on every phase of a request, and
//! caps on what callers can hold open.
//!
//! The connection-level ones (headers, keep-alive idle, a client that reads
//! nothing, the connection count) are enforced by the server loop
//! ([`crate::server`], [`crate::connection`]); the body read timeout and the
//! live stream caps by `ibiki_http` ([`ibiki_http::Limits`]), so that an
//! embedding server has them too.

use std::time::Duration;

use clap::Args;

use crate::connection::ConnectionLimits;
use crate::store::parse_timeout;

/// The limits of `ibiki-server`.
#[derive(Debug, Clone, Args)]
pub struct LimitFlags {
    /// A connection whose request headers are not complete this long after
    /// it opened, or after the first byte of its next request, is closed
    /// (e.g. 10s, 500ms).
    #[arg(
        long,
        env = "IBIKI_HEADER_READ_TIMEOUT",
        default_value = "10s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub header_read_timeout: Duration,

    /// A request whose whole body has not arrived this long after its
    /// headers is answered 408 and its connection closed; nothing is
    /// recorded.
    #[arg(
        long,
        env = "IBIKI_BODY_READ_TIMEOUT",
        default_value = "30s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub body_read_timeout: Duration,

    /// A keep-alive connection with no request for this long is closed.
    #[arg(
        long,
        env = "IBIKI_IDLE_TIMEOUT",
        default_value = "60s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub idle_timeout: Duration,

    /// A connection whose client takes none of its answer for this long is
    /// closed: a client that stops reading cannot hold a response, or a live
    /// stream, forever.
    #[arg(
        long,
        env = "IBIKI_SEND_TIMEOUT",
        default_value = "30s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub send_timeout: Duration,

    /// Connections open at once, at most; past it, a new connection is
    /// closed as soon as it is accepted. Default: the open-file limit
    /// (`ulimit -n`) less a tenth of it (at least 128) for the database
    /// pool, the metrics listener and files.
    #[arg(
        long,
        env = "IBIKI_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "COUNT"
    )]
    pub max_connections: Option<u32>,

    /// Open /api/clients/{userId}/events streams of one client, at most; the
    /// next is answered 429 with Retry-After.
    #[arg(
        long,
        env = "IBIKI_MAX_STREAMS_PER_CLIENT",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "COUNT"
    )]
    pub max_streams_per_client: u32,

    /// Open live streams in all, at most; the next is answered 429 with
    /// Retry-After. Default: half of --max-connections, so streams never
    /// take every connection from the webhooks.
    #[arg(
        long,
        env = "IBIKI_MAX_STREAMS",
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "COUNT"
    )]
    pub max_streams: Option<u32>,
}

impl LimitFlags {
    /// What the server loop enforces.
    pub fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            send_timeout: self.send_timeout,
            max_connections: self.max_connections(),
        }
    }

    /// What the router enforces.
    pub fn router(&self) -> ibiki_http::Limits {
        let mut limits = ibiki_http::Limits::default();
        limits.body_read_timeout = self.body_read_timeout;
        limits.max_streams_per_client = self.max_streams_per_client as usize;
        limits.max_streams = match self.max_streams {
            Some(count) => count as usize,
            None => (self.max_connections() / 2).max(1),
        };
        limits
    }

    fn max_connections(&self) -> usize {
        match self.max_connections {
            Some(count) => count as usize,
            None => default_max_connections(open_file_limit()),
        }
    }
}

/// The most connections a default allows, whatever the open-file limit.
const MOST_CONNECTIONS: u64 = 1 << 20;

/// Descriptors kept back from connections at the least (when the limit
/// allows): the database pool and its listener, the metrics listener's
/// connections, log and import files.
const MIN_RESERVE: u64 = 128;

/// The default connection cap for an open-file limit of `open_files`: a
/// tenth of it, and at least 128, stays free (half, for a tiny
/// limit).
pub fn default_max_connections(open_files: u64) -> usize {
    let reserve = (open_files / 10).max(MIN_RESERVE.min(open_files / 2));
    let cap = open_files
        .saturating_sub(reserve)
        .clamp(1, MOST_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The process's open-file limit (the soft one, which is enforced).
#[cfg(unix)]
pub fn open_file_limit() -> u64 {
    match rlimit::Resource::NOFILE.get_soft() {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "open-file limit unknown: assuming 1024");
            1024
        }
    }
}

/// The process's open-file limit: unknown here, so the common default.
#[cfg(not(unix))]
pub fn open_file_limit() -> u64 {
    1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_the_database_and_files() {
        assert_eq!(default_max_connections(20_000), 18_000);
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(100), 50);
        assert_eq!(default_max_connections(1), 1);
        assert_eq!(default_max_connections(0), 1);
        assert_eq!(default_max_connections(u64::MAX), 1 << 20);
        for limit in [256, 1000, 4096, 65_536, 1 << 20] {
            let cap = default_max_connections(limit) as u64;
            assert!(limit - cap >= 128, "{limit}: {cap}");
        }
    }
}
