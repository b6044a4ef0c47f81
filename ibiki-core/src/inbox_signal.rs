//! Wake-ups for live inbox readers: a reply reached this client's inbox,
//! look again.
//!
//! A reader that has caught up with an inbox (a live stream) has nothing to
//! do until a reply is delivered to that inbox. Reading again on a timer
//! costs one query per reader per tick, however quiet the inboxes; waiting on
//! the client's signal costs nothing until a store reports a delivery
//! ([`ReplyStore::inbox_signals`](crate::ReplyStore::inbox_signals)).
//!
//! A wake-up carries no reply, only "look again from your cursor": the inbox
//! stays the one source of truth, so a wake-up with nothing new is harmless
//! and several deliveries before a reader looks collapse into one wake-up.
//! Nothing is lost between a reader's read and its wait: it subscribes
//! first, and [`InboxSubscription::changed`] returns at once for any wake-up
//! since the subscription was made or since it last returned.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::ClientId;

/// A registry of the clients someone is waiting on, each with its own
/// signal, so that a delivery wakes the readers of that one inbox and no
/// other. Cloning is cheap and shares the registry.
///
/// A client is in the registry only while a subscription to it exists: a
/// notify for an inbox nobody reads is one lookup, and the registry's size
/// follows the open readers, not every client ever seen.
///
/// ```
/// use ibiki_core::{ClientId, InboxSignals};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let signals = InboxSignals::new();
/// let acme = ClientId::new("acme")?;
/// let mut reader = signals.subscribe(&acme); // before reading the inbox
/// // ... read the inbox: caught up ...
/// signals.notify(&ClientId::new("globex")?);
/// assert!(!reader.has_changed(), "another client's delivery");
/// signals.notify(&acme);
/// reader.changed().await; // returns at once: the delivery came after the subscription
/// drop(reader);
/// assert_eq!(signals.watched_clients(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InboxSignals {
    watched: Arc<Mutex<HashMap<ClientId, watch::Sender<()>>>>,
}

impl InboxSignals {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts waiting on `client`'s inbox: the subscription sees every
    /// [`notify`](Self::notify) of `client` and every
    /// [`notify_all`](Self::notify_all) from now on. Subscribe before reading
    /// the inbox, so that a delivery between the read and the wait wakes it.
    pub fn subscribe(&self, client: &ClientId) -> InboxSubscription {
        let mut watched = self.lock();
        let receiver = match watched.get(client) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(());
                watched.insert(client.clone(), sender);
                receiver
            }
        };
        InboxSubscription {
            client: client.clone(),
            receiver,
            signals: self.clone(),
        }
    }

    /// Wakes every subscription to `client`, and no other: a reply reached
    /// its inbox. Call it once the delivery can be read.
    pub fn notify(&self, client: &ClientId) {
        if let Some(sender) = self.lock().get(client) {
            sender.send_replace(());
        }
    }

    /// Wakes every subscription: deliveries may have gone unreported (a lost
    /// connection to the database that reports them).
    pub fn notify_all(&self) {
        for sender in self.lock().values() {
            sender.send_replace(());
        }
    }

    /// How many clients have at least one subscription.
    pub fn watched_clients(&self) -> usize {
        self.lock().len()
    }

    /// Every change under the lock is a single map operation, complete or
    /// not made: a panic elsewhere leaves the map consistent, so go on.
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, watch::Sender<()>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for InboxSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxSignals")
            .field("watched_clients", &self.watched_clients())
            .finish()
    }
}

/// A wait on one client's inbox ([`InboxSignals::subscribe`]); leaves the
/// registry when dropped.
pub struct InboxSubscription {
    client: ClientId,
    receiver: watch::Receiver<()>,
    signals: InboxSignals,
}

impl InboxSubscription {
    /// The client whose inbox this waits on.
    pub fn client(&self) -> &ClientId {
        &self.client
    }

    /// Waits for a wake-up: returns at once if one came since the
    /// subscription was made or since this last returned, else at the next.
    /// Cancel-safe: a wait dropped before it returned consumes nothing.
    pub async fn changed(&mut self) {
        // The sender lives in the registry while this subscription does (it
        // is removed only with the last subscription), so this never fails;
        // if it did, waiting forever is what an inbox nobody writes to means.
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a wake-up came that [`changed`](Self::changed) has not
    /// returned for yet.
    pub fn has_changed(&self) -> bool {
        self.receiver.has_changed().unwrap_or(false)
    }
}

impl Drop for InboxSubscription {
    fn drop(&mut self) {
        let mut watched = self.signals.lock();
        // Subscriptions are made and dropped under the lock: a count of one
        // is this subscription alone.
        if watched
            .get(&self.client)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            watched.remove(&self.client);
        }
    }
}

impl fmt::Debug for InboxSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxSubscription")
            .field("client", &self.client)
            .field("has_changed", &self.has_changed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;
    use proptest::prelude::*;

    use super::*;

    fn client(id: &str) -> ClientId {
        ClientId::new(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether `changed` returns at once, consuming the wake-up if so.
    fn woken(subscription: &mut InboxSubscription) -> bool {
        subscription.changed().now_or_never().is_some()
    }

    #[test]
    fn a_notify_wakes_its_client_only() {
        let signals = InboxSignals::new();
        let (acme, globex) = (client("acme"), client("globex"));
        let mut a1 = signals.subscribe(&acme);
        let mut a2 = signals.subscribe(&acme);
        let mut g = signals.subscribe(&globex);
        assert!(!woken(&mut a1) && !woken(&mut g), "nothing yet");
        signals.notify(&acme);
        assert!(woken(&mut a1) && woken(&mut a2), "every reader of acme");
        assert!(!woken(&mut g), "not globex's");
        assert!(!woken(&mut a1), "one wake-up, consumed");
        signals.notify(&client("nobody"));
        assert_eq!(
            signals.watched_clients(),
            2,
            "an unwatched notify adds nothing"
        );
        signals.notify_all();
        assert!(woken(&mut a1) && woken(&mut a2) && woken(&mut g));
    }

    #[test]
    fn deliveries_before_a_look_collapse_and_none_is_lost() {
        let signals = InboxSignals::new();
        let acme = client("acme");
        signals.notify(&acme);
        let mut reader = signals.subscribe(&acme);
        assert!(
            !woken(&mut reader),
            "what came before is read, not signalled"
        );
        // Between the reader's read and its wait.
        signals.notify(&acme);
        signals.notify(&acme);
        assert!(reader.has_changed());
        assert!(woken(&mut reader));
        assert!(!woken(&mut reader), "two deliveries, one look");
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_when_notified() {
        let signals = InboxSignals::new();
        let acme = client("acme");
        let mut reader = signals.subscribe(&acme);
        let notifier = signals.clone();
        let acme2 = acme.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            notifier.notify(&acme2);
        });
        tokio::time::timeout(Duration::from_secs(5), reader.changed())
            .await
            .unwrap_or_else(|_| panic!("not woken"));
    }

    #[test]
    fn the_last_subscription_leaves_the_registry() {
        let signals = InboxSignals::new();
        let acme = client("acme");
        let first = signals.subscribe(&acme);
        let second = signals.subscribe(&acme);
        drop(first);
        assert_eq!(signals.watched_clients(), 1, "one reader left");
        drop(second);
        assert_eq!(signals.watched_clients(), 0);
        // A new reader starts a new signal, and gets woken by it.
        let mut third = signals.subscribe(&acme);
        signals.notify(&acme);
        assert!(woken(&mut third));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Subscribe(usize),
        /// Drops the live subscription at this index (modulo their count).
        Drop(usize),
        Notify(usize),
        NotifyAll,
        /// Checks the subscription at this index, consuming its wake-up.
        Look(usize),
    }

    const CLIENTS: usize = 4;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..CLIENTS).prop_map(Op::Subscribe),
            2 => any::<usize>().prop_map(Op::Drop),
            3 => (0..CLIENTS).prop_map(Op::Notify),
            1 => Just(Op::NotifyAll),
            3 => any::<usize>().prop_map(Op::Look),
        ]
    }

    proptest! {
        /// Against a model: a notify of client A wakes every subscription of
        /// A and none of another client; notify_all wakes all; a wake-up is
        /// seen once; the registry holds exactly the clients with a live
        /// subscription.
        #[test]
        fn the_registry_follows_the_model(ops in prop::collection::vec(op(), 1..80)) {
            let signals = InboxSignals::new();
            let clients: Vec<ClientId> = (0..CLIENTS).map(|i| client(&format!("c{i}"))).collect();
            // Each live subscription with its client and whether a wake-up waits.
            let mut live: Vec<(InboxSubscription, usize, bool)> = Vec::new();
            for op in ops {
                match op {
                    Op::Subscribe(c) => live.push((signals.subscribe(&clients[c]), c, false)),
                    Op::Drop(i) if !live.is_empty() => {
                        let i = i % live.len();
                        drop(live.swap_remove(i));
                    }
                    Op::Drop(_) => {}
                    Op::Notify(c) => {
                        signals.notify(&clients[c]);
                        for entry in live.iter_mut().filter(|e| e.1 == c) {
                            entry.2 = true;
                        }
                    }
                    Op::NotifyAll => {
                        signals.notify_all();
                        for entry in &mut live {
                            entry.2 = true;
                        }
                    }
                    Op::Look(i) if !live.is_empty() => {
                        let i = i % live.len();
                        let (subscription, c, pending) = &mut live[i];
                        prop_assert_eq!(subscription.client(), &clients[*c]);
                        prop_assert_eq!(woken(subscription), *pending);
                        *pending = false;
                    }
                    Op::Look(_) => {}
                }
                for (subscription, _, pending) in &live {
                    prop_assert_eq!(subscription.has_changed(), *pending);
                }
                let mut watched: Vec<usize> = live.iter().map(|e| e.1).collect();
                watched.sort_unstable();
                watched.dedup();
                prop_assert_eq!(signals.watched_clients(), watched.len());
            }
            drop(live);
            prop_assert_eq!(signals.watched_clients(), 0);
        }
    }
}
