//! The live-reader rule of the [`ReplyStore`] contract: a store that offers
//! [`inbox_signals`](ReplyStore::inbox_signals) wakes a client's readers
//! after every change that puts a reply into its inbox.

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::conformance::{client, number, reply, whole_held, whole_inbox};
use crate::{ClientId, HeldTarget, InboxSubscription, Receipt, ReplyStore};

/// How long a store may take to report a delivery: its own write at once, a
/// database's notification within a round trip or two. Generous, for a
/// loaded test machine.
const WOKEN_WITHIN: Duration = Duration::from_secs(5);

/// Waits until a wake-up after which `client`'s inbox holds a reply with
/// `body`; panics after [`WOKEN_WITHIN`]. Wake-ups with nothing new (a store
/// may send some) are skipped, as a reader would.
async fn woken_with<S: ReplyStore>(
    store: &S,
    reader: &mut InboxSubscription,
    client: &ClientId,
    body: &str,
    what: &str,
) {
    let deadline = Instant::now() + WOKEN_WITHIN;
    loop {
        if timeout_at(deadline, reader.changed()).await.is_err() {
            panic!("{what}: the reader of {client} was not woken within {WOKEN_WITHIN:?}");
        }
        if whole_inbox(store, client)
            .await
            .iter()
            .any(|r| r.body == body)
        {
            return;
        }
    }
}

/// A routed receive, a release by an assignment change and both kinds of
/// re-route each wake the readers of the inbox the reply reached, and the
/// reply can be read once they are woken. A store without signals passes.
pub async fn inbox_signals_wake_the_receiving_client<S: ReplyStore>(store: S) {
    let Some(signals) = store.inbox_signals() else {
        return;
    };
    let acme = client("acme");
    let a = number("+14155550100");
    store
        .add_numbers(&acme, &[a])
        .await
        .unwrap_or_else(|e| panic!("add: {e}"));
    let mut reader = signals.subscribe(&acme);
    let mut second = signals.subscribe(&acme);

    let receipt = store
        .receive(reply(Some("SM1"), "+14155550100", "routed", 1))
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(receipt, Receipt::Routed(acme.clone()));
    woken_with(&store, &mut reader, &acme, "routed", "a routed receive").await;
    woken_with(&store, &mut second, &acme, "routed", "a second reader").await;

    for (id, to) in [
        ("SM2", "+14155550199"),
        ("SM3", "garbage"),
        ("SM4", "+14155550198"),
    ] {
        let receipt = store
            .receive(reply(Some(id), to, id, 2))
            .await
            .unwrap_or_else(|e| panic!("receive: {e}"));
        assert_eq!(receipt, Receipt::Held);
    }
    store
        .add_numbers(&acme, &[number("+14155550199")])
        .await
        .unwrap_or_else(|e| panic!("add: {e}"));
    woken_with(&store, &mut reader, &acme, "SM2", "a release").await;

    let held = whole_held(&store).await;
    let id_of = |body: &str| {
        held.iter()
            .find(|r| r.body == body)
            .map(|r| r.id)
            .unwrap_or_else(|| panic!("{body} is held"))
    };
    let to_acme = HeldTarget::Client(acme.clone());
    store
        .deliver_held(id_of("SM3"), &to_acme)
        .await
        .unwrap_or_else(|e| panic!("deliver_held: {e}"));
    woken_with(&store, &mut reader, &acme, "SM3", "a re-route to a client").await;
    store
        .deliver_held(id_of("SM4"), &HeldTarget::Number(a))
        .await
        .unwrap_or_else(|e| panic!("deliver_held: {e}"));
    woken_with(&store, &mut reader, &acme, "SM4", "a re-route to a number").await;
}
