//! Live inbox readers and forwarding workers woken by the database: one
//! listening connection per store.
//!
//! The schema's triggers (`migrations/0006_inbox_notify.sql`) notify the
//! schema's [`channel`] with the client ids, one per line, whenever a
//! statement puts replies into inboxes, whichever process wrote; PostgreSQL
//! delivers it when the transaction commits. Each store keeps one connection of its own listening
//! there and wakes the readers of that client in its [`InboxSignals`].
//! The same connection listens on the schema's [`forward_channel`], where
//! the triggers of `migrations/0008_forwarding.sql` announce that a forward
//! became due now, and wakes the store's [`ForwardSignals`].
//!
//! A notification sent while nobody listens is lost, so every (re)connection
//! wakes every reader, who read again from their cursors, and the workers. A connection can
//! also die without a word (a failover that leaves it hanging, packets
//! dropped): a listener that heard nothing for [`IDLE_CHECK`] asks its
//! connection a `SELECT 1`, bounded like the pool's pings, and replaces it if
//! no answer comes. While no connection listens, every reader is woken at
//! each attempt to reconnect (at most [`RETRY_MAX`] apart), so a reply is
//! never held back for long. The task ends with the store's last clone.

use std::time::Duration;

use ibiki_core::{ClientId, ForwardSignals, InboxSignals};
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use crate::schema::Schema;

/// How long a listener hears nothing before checking its connection.
pub(crate) const IDLE_CHECK: Duration = Duration::from_secs(30);

/// The first wait before connecting again after a failure; it doubles up
/// to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);

/// The longest wait between two attempts to connect.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(10);

/// A connection that listened this long ends a run of failures: the next
/// one reconnects at once.
const STEADY: Duration = IDLE_CHECK;

const PREFIX: &str = "ibiki_inbox_";

const FORWARD_PREFIX: &str = "ibiki_forward_";

/// PostgreSQL's longest identifier, and so channel name, in bytes.
const MAX_CHANNEL: usize = 63;

/// The schema's notification channel, as its `inbox_channel()` function
/// names it: the prefix and the schema's name, or the prefix, `md5:` and
/// the name's MD5 in hex when the name is too long for a channel.
pub(crate) fn channel(schema: &Schema) -> String {
    named(PREFIX, schema)
}

/// The schema's channel of forwarding wake-ups, as its `forward_channel()`
/// function names it, in the same two forms.
pub(crate) fn forward_channel(schema: &Schema) -> String {
    named(FORWARD_PREFIX, schema)
}

fn named(prefix: &str, schema: &Schema) -> String {
    let name = schema.as_str();
    if prefix.len() + name.len() <= MAX_CHANNEL {
        return format!("{prefix}{name}");
    }
    use md5::Digest;
    let digest = md5::Md5::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}md5:{hex}")
}

/// What the listener needs: where to connect, what to listen to, whom to
/// wake, and how long each step may take.
pub(crate) struct Listener {
    pub(crate) options: PgConnectOptions,
    pub(crate) channel: String,
    pub(crate) signals: InboxSignals,
    /// The forwarding channel and the workers it wakes.
    pub(crate) forward_channel: String,
    pub(crate) forwards: ForwardSignals,
    /// Connecting and `LISTEN`: the store's call timeout.
    pub(crate) connect_within: Duration,
    /// The idle check's `SELECT 1`: the pool's ping bound.
    pub(crate) ping_within: Duration,
}

/// Why a listening connection was given up.
enum Ended {
    /// The store and all its clones are gone.
    StoreGone,
    /// The connection failed or stopped answering.
    Lost(String),
}

impl Listener {
    /// Listens, reconnecting as needed, until the sender of `alive` is gone
    /// (the store and all its clones dropped).
    pub(crate) async fn run(self, mut alive: watch::Receiver<()>) {
        let mut retry = Duration::ZERO;
        loop {
            if !retry.is_zero() {
                tokio::select! {
                    () = sleep(retry) => {}
                    _ = alive.changed() => return,
                }
            }
            let connected = tokio::select! {
                connected = self.connect() => connected,
                _ = alive.changed() => return,
            };
            // Connected or not, deliveries may have gone unheard: every
            // reader, and every worker, looks again.
            self.signals.notify_all();
            self.forwards.notify();
            match connected {
                Ok(mut listener) => {
                    let since = Instant::now();
                    match self.relay(&mut listener, &mut alive).await {
                        Ended::StoreGone => return,
                        Ended::Lost(why) => {
                            tracing::warn!(error = %why, "store listener: connection lost, reconnecting");
                        }
                    }
                    retry = if since.elapsed() >= STEADY {
                        Duration::ZERO
                    } else {
                        next(retry)
                    };
                }
                Err(why) => {
                    retry = next(retry);
                    tracing::warn!(
                        error = %why,
                        retry_ms = retry.as_millis() as u64,
                        "store listener: cannot listen; live readers and forwarding workers are woken at each attempt"
                    );
                }
            }
        }
    }

    /// A connection of its own (a pool of one, which `PgListener` needs),
    /// listening on the channel, within the connect bound.
    async fn connect(&self) -> Result<PgListener, String> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(self.connect_within)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_lazy_with(self.options.clone());
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is this task's to replace, and to report.
            listener.eager_reconnect(false);
            // The inbox channel last: its `LISTEN` is the statement
            // `pg_stat_activity` shows for the connection.
            listener.listen(&self.forward_channel).await?;
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match timeout(self.connect_within, listening).await {
            Ok(Ok(listener)) => Ok(listener),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.connect_within.as_millis()
            )),
        }
    }

    /// Wakes readers per notification until the connection is lost or the
    /// store is gone.
    async fn relay(&self, listener: &mut PgListener, alive: &mut watch::Receiver<()>) -> Ended {
        loop {
            let heard = tokio::select! {
                heard = timeout(IDLE_CHECK, listener.try_recv()) => heard,
                _ = alive.changed() => return Ended::StoreGone,
            };
            match heard {
                Ok(Ok(Some(notification))) => {
                    self.wake(&notification);
                    while let Some(notification) = listener.next_buffered() {
                        self.wake(&notification);
                    }
                }
                Ok(Ok(None)) => return Ended::Lost("the connection closed".to_owned()),
                Ok(Err(e)) => return Ended::Lost(e.to_string()),
                // Quiet for a while: is anyone still at the other end?
                Err(_) => {
                    let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                    let answered = tokio::select! {
                        answered = timeout(self.ping_within, ping) => answered,
                        _ = alive.changed() => return Ended::StoreGone,
                    };
                    match answered {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(e.to_string()),
                        Err(_) => {
                            return Ended::Lost(format!(
                                "no answer to a ping within {} ms",
                                self.ping_within.as_millis()
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Wakes the workers for a notification on the forwarding channel, the
    /// readers of the clients named (one per line) for one on the inbox
    /// channel.
    fn wake(&self, notification: &PgNotification) {
        if notification.channel() == self.forward_channel {
            self.forwards.notify();
            return;
        }
        for line in notification.payload().split('\n') {
            match ClientId::new(line) {
                Ok(client) => self.signals.notify(&client),
                // Not from the schema's triggers (someone else's NOTIFY on
                // the channel): nothing to wake.
                Err(_) => {
                    tracing::debug!("store listener: a notification line that names no client")
                }
            }
        }
    }
}

/// The wait after one more failure.
fn next(retry: Duration) -> Duration {
    (retry * 2).clamp(RETRY_MIN, RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> Schema {
        Schema::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn channels_are_per_schema_and_fit() {
        assert_eq!(channel(&schema("ibiki")), "ibiki_inbox_ibiki");
        let longest_plain = "a".repeat(MAX_CHANNEL - PREFIX.len());
        assert_eq!(
            channel(&schema(&longest_plain)),
            format!("{PREFIX}{longest_plain}")
        );
        // md5('a' * 52), as PostgreSQL's md5() gives it.
        let long = "a".repeat(MAX_CHANNEL - PREFIX.len() + 1);
        assert_eq!(
            channel(&schema(&long)),
            "ibiki_inbox_md5:b6fe77c19f0f0f4946c761d62585bfea"
        );
        for name in ["ibiki", &longest_plain, &long, &"z".repeat(63)] {
            assert!(channel(&schema(name)).len() <= MAX_CHANNEL, "{name}");
        }
        assert_ne!(channel(&schema(&long)), channel(&schema(&"b".repeat(52))));
    }

    #[test]
    fn forwarding_channels_are_per_schema_and_fit() {
        assert_eq!(forward_channel(&schema("ibiki")), "ibiki_forward_ibiki");
        // The longest name the migration's forward_channel() keeps whole.
        let longest_plain = "a".repeat(49);
        assert_eq!(
            forward_channel(&schema(&longest_plain)),
            format!("{FORWARD_PREFIX}{longest_plain}")
        );
        let long = "a".repeat(52);
        assert_eq!(
            forward_channel(&schema(&long)),
            "ibiki_forward_md5:b6fe77c19f0f0f4946c761d62585bfea"
        );
        for name in ["ibiki", &longest_plain, &"a".repeat(50), &"z".repeat(63)] {
            assert!(
                forward_channel(&schema(name)).len() <= MAX_CHANNEL,
                "{name}"
            );
            assert_ne!(forward_channel(&schema(name)), channel(&schema(name)));
        }
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        assert_eq!(next(Duration::ZERO), RETRY_MIN);
        assert_eq!(next(RETRY_MIN), RETRY_MIN * 2);
        assert_eq!(next(RETRY_MAX), RETRY_MAX);
    }
}
