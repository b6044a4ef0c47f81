//! The memory store wakes the readers of the inbox a reply reached, and no
//! other: exactly, since it signals in-process after each change.

use futures_util::FutureExt;
use ibiki_core::testing::{client, number, reply, whole_held};
use ibiki_core::{AssignmentStore, HeldTarget, InboxSubscription, ReplyStore};
use ibiki_memory::MemoryStore;

/// Whether a wake-up is waiting, consuming it.
fn woken(reader: &mut InboxSubscription) -> bool {
    reader.changed().now_or_never().is_some()
}

#[tokio::test]
async fn each_delivery_wakes_its_inbox_only() {
    let store = MemoryStore::new();
    let signals = store
        .inbox_signals()
        .expect("the memory store offers signals");
    let (acme, globex) = (client("acme"), client("globex"));
    store
        .add_numbers(&acme, &[number("+14155550100")])
        .await
        .expect("add");
    store
        .add_numbers(&globex, &[number("+14155550101")])
        .await
        .expect("add");
    let mut a = signals.subscribe(&acme);
    let mut g = signals.subscribe(&globex);

    let _ = store
        .receive(reply(Some("SM1"), "+14155550100", "to acme", 1))
        .await;
    assert!(woken(&mut a), "routed to acme");
    assert!(!woken(&mut g), "globex's reader sleeps");

    // A retry, a held reply and a refused change deliver nothing.
    let _ = store
        .receive(reply(Some("SM1"), "+14155550100", "to acme", 1))
        .await;
    let _ = store
        .receive(reply(Some("SM2"), "+14155550199", "held", 2))
        .await;
    let _ = store
        .receive(reply(Some("SM3"), "nonsense", "unparsed", 3))
        .await;
    let conflict = store
        .add_numbers(&globex, &[number("+14155550100"), number("+14155550199")])
        .await;
    assert!(conflict.is_err());
    store
        .add_numbers(&acme, &[number("+14155550102")])
        .await
        .expect("an assignment that releases nothing");
    assert!(!woken(&mut a) && !woken(&mut g), "nothing was delivered");

    store
        .add_numbers(&globex, &[number("+14155550199")])
        .await
        .expect("release");
    assert!(woken(&mut g), "released to globex");
    assert!(!woken(&mut a));

    let unparsed = whole_held(&store).await[0].id;
    store
        .deliver_held(unparsed, &HeldTarget::Number(number("+14155550100")))
        .await
        .expect("re-route");
    assert!(woken(&mut a), "re-routed to acme, the number's owner");
    assert!(!woken(&mut g));

    drop((a, g));
    assert_eq!(signals.watched_clients(), 0, "readers gone, registry empty");
}
