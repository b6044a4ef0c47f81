//! One async function per rule of the store contracts. Each takes a fresh,
//! empty store and panics with a message naming the rule it found broken.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::{
    ClientId, Conflict, Cursor, Destination, HistoryEvent, InboundReply, Normalizer,
    OwnershipChange, Page, PageRequest, PhoneNumber, RawReply, Receipt, ReplyStore, StoreError,
    StoredReply,
};

/// A canonical number for tests.
pub fn number(text: &str) -> PhoneNumber {
    PhoneNumber::parse_canonical(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// A client id for tests.
pub fn client(id: &str) -> ClientId {
    ClientId::new(id).unwrap_or_else(|e| panic!("{id:?}: {e}"))
}

/// A reply to `to` with the given message id and body, received at a whole
/// second (`at` seconds after 2024-01-01) so every store keeps it exactly.
pub fn reply(message_id: Option<&str>, to: &str, body: &str, at: i64) -> InboundReply {
    let received = OffsetDateTime::from_unix_timestamp(1_704_067_200 + at)
        .unwrap_or_else(|e| panic!("timestamp {at}: {e}"));
    let raw = RawReply {
        message_id,
        from: "+15005550006",
        to,
        body,
    };
    InboundReply::new(&Normalizer::new(), raw, received).unwrap_or_else(|e| panic!("reply: {e}"))
}

/// Every reply in a client's inbox, read page by page (pages of 2, to
/// exercise the cursors).
pub async fn whole_inbox<S: ReplyStore + ?Sized>(store: &S, client: &ClientId) -> Vec<StoredReply> {
    read_all("inbox", async |page| store.inbox(client, page).await).await
}

/// Every held reply, read page by page.
pub async fn whole_held<S: ReplyStore + ?Sized>(store: &S) -> Vec<StoredReply> {
    read_all("held", async |page| store.held(page).await).await
}

/// A number's whole ownership history, read page by page.
pub async fn whole_history<S: ReplyStore + ?Sized>(
    store: &S,
    number: PhoneNumber,
) -> Vec<HistoryEvent> {
    read_all("history", async |page| store.history(number, page).await).await
}

/// Follows the cursors of a listing, two items a page, to its end.
async fn read_all<T: Clone>(
    what: &str,
    read: impl AsyncFn(&PageRequest) -> Result<Page<T>, StoreError>,
) -> Vec<T> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = read(&page).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        all.extend(got.items.iter().cloned());
        match page.next(&got) {
            Some(next) => page = next,
            None => return all,
        }
    }
}

/// `replies` without what only a store knows, as the [`Model`](super::model::Model)
/// keeps them: id 0, delivered at their reception.
pub fn comparable(replies: &[StoredReply]) -> Vec<StoredReply> {
    replies
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.id = 0;
            r.delivery.at = r.received_at;
            r
        })
        .collect()
}

fn bodies(replies: &[StoredReply]) -> Vec<&str> {
    replies.iter().map(|r| r.body.as_str()).collect()
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// `receive`, panicking on a store error: the rules below are about where
/// replies go, not about failures.
trait ReceiveOk {
    async fn receive_ok(&self, reply: InboundReply) -> Receipt;
}

impl<S: ReplyStore + ?Sized> ReceiveOk for S {
    async fn receive_ok(&self, reply: InboundReply) -> Receipt {
        ok(self.receive(reply).await, "receive")
    }
}

fn conflicts<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Vec<Conflict> {
    match result {
        Err(StoreError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Replacing a client's set assigns every number, reports it, and routes a
/// reply to any of them, in any format, to that client.
pub async fn replace_assigns_every_number<S: ReplyStore>(store: S) {
    let acme = client("acme");
    let numbers = [
        number("+14155550102"),
        number("+14155550100"),
        number("+442079460958"),
    ];
    let change = ok(store.replace_numbers(&acme, &numbers).await, "replace");
    let sorted = vec![numbers[1], numbers[0], numbers[2]];
    assert_eq!(
        change.added, sorted,
        "added lists every new number, ascending"
    );
    assert!(change.removed.is_empty());
    assert_eq!(change.count(), 3);
    assert_eq!(change.numbers, sorted);
    assert_eq!(ok(store.numbers_of(&acme).await, "numbers_of"), sorted);
    // Routing reads the owner of the canonical `to` (see `ReplyStore::receive`).
    let normalizer = Normalizer::new();
    for to in ["+14155550100", "+1 (415) 555-0102", "tel:+44-20-7946-0958"] {
        let canonical = Destination::from_raw(&normalizer, to)
            .number()
            .unwrap_or_else(|| panic!("{to} is a number"));
        assert_eq!(
            ok(store.owner_of(canonical).await, "owner_of"),
            Some(acme.clone()),
            "reply to {to} reaches the owner"
        );
    }
    let unowned = number("+14155550199");
    assert_eq!(
        Destination::from_raw(&normalizer, "+14155550199"),
        Destination::Number(unowned)
    );
    assert_eq!(ok(store.owner_of(unowned).await, "owner_of"), None);
    assert!(matches!(
        Destination::from_raw(&normalizer, "not a number"),
        Destination::Unparsed(_)
    ));
}

/// Replace is the whole set: numbers left out are released, an empty set
/// removes all, and duplicates in the input count once.
pub async fn replace_is_the_whole_set<S: ReplyStore>(store: S) {
    let acme = client("acme");
    let (a, b, c) = (
        number("+14155550100"),
        number("+14155550101"),
        number("+14155550102"),
    );
    ok(store.replace_numbers(&acme, &[a, b, b]).await, "replace");
    let change = ok(store.replace_numbers(&acme, &[c, b]).await, "replace");
    assert_eq!((change.added, change.removed), (vec![c], vec![a]));
    assert_eq!(change.numbers, vec![b, c]);
    assert_eq!(
        ok(store.owner_of(a).await, "owner_of"),
        None,
        "a released number has no owner"
    );
    let change = ok(store.replace_numbers(&acme, &[]).await, "replace");
    assert_eq!(change.removed, vec![b, c]);
    assert_eq!(change.count(), 0);
    assert!(ok(store.numbers_of(&acme).await, "numbers_of").is_empty());
    let listed = ok(
        store.list_clients("", &PageRequest::first(10)).await,
        "list_clients",
    );
    assert!(
        listed.items.is_empty(),
        "a client without numbers is not listed"
    );
}

/// Add keeps what the client has; remove ignores numbers the client does not own.
pub async fn add_and_remove_report_what_changed<S: ReplyStore>(store: S) {
    let (acme, globex) = (client("acme"), client("globex"));
    let (a, b, c) = (
        number("+14155550100"),
        number("+14155550101"),
        number("+14155550102"),
    );
    ok(store.add_numbers(&acme, &[a]).await, "add");
    let change = ok(store.add_numbers(&acme, &[b, a]).await, "add");
    assert_eq!((change.added, change.numbers), (vec![b], vec![a, b]));
    ok(store.add_numbers(&globex, &[c]).await, "add");
    let change = ok(
        store
            .remove_numbers(&acme, &[a, c, number("+14155550199")])
            .await,
        "remove",
    );
    assert_eq!((change.removed, change.numbers), (vec![a], vec![b]));
    assert_eq!(
        ok(store.owner_of(c).await, "owner_of"),
        Some(globex),
        "another client's number stays"
    );
    assert_eq!(ok(store.owner_of(a).await, "owner_of"), None);
}

/// Taking another client's number fails with every conflict and its owner,
/// and changes nothing, whichever change asks.
pub async fn conflicts_are_listed_and_change_nothing<S: ReplyStore>(store: S) {
    let (acme, globex) = (client("acme"), client("globex"));
    let (a, b, c, d) = (
        number("+14155550100"),
        number("+14155550101"),
        number("+14155550102"),
        number("+14155550103"),
    );
    ok(store.replace_numbers(&acme, &[a, b]).await, "replace");
    ok(store.replace_numbers(&globex, &[d]).await, "replace");
    let expected = vec![
        Conflict {
            phone_number: a,
            owner: acme.clone(),
        },
        Conflict {
            phone_number: b,
            owner: acme.clone(),
        },
    ];
    assert_eq!(
        conflicts(store.replace_numbers(&globex, &[b, c, a]).await),
        expected
    );
    assert_eq!(
        conflicts(store.add_numbers(&globex, &[c, a, b]).await),
        expected
    );
    assert_eq!(
        ok(store.numbers_of(&globex).await, "numbers_of"),
        vec![d],
        "nothing changed"
    );
    assert_eq!(
        ok(store.owner_of(c).await, "owner_of"),
        None,
        "not even the free number"
    );
    assert_eq!(ok(store.numbers_of(&acme).await, "numbers_of"), vec![a, b]);
    ok(store.remove_numbers(&acme, &[a]).await, "remove");
    let change = ok(store.add_numbers(&globex, &[a]).await, "add");
    assert_eq!(change.numbers, vec![a, d], "a released number can be taken");
}

/// A reply to an owned number lands in the owner's inbox with every field kept.
pub async fn receive_routes_to_the_owner<S: ReplyStore>(store: S) {
    let acme = client("acme");
    ok(
        store
            .replace_numbers(&acme, &[number("+14155550100"), number("+14155550101")])
            .await,
        "replace",
    );
    let sent = reply(Some("SM1"), "+1 415 555 0101", "YES", 1);
    assert_eq!(
        store.receive_ok(sent.clone()).await,
        Receipt::Routed(acme.clone())
    );
    // Sub-microsecond times and NUL characters are normalized by
    // `InboundReply::new`; what it built comes back unchanged.
    let raw = RawReply {
        message_id: None,
        from: "+1500\u{0}5550006",
        to: "+14155550100",
        body: "a\u{0}b 🙂\n",
    };
    let odd = InboundReply::new(
        &Normalizer::new(),
        raw,
        OffsetDateTime::from_unix_timestamp_nanos(1_704_067_200_123_456_789)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(odd.body, "a\u{fffd}b 🙂\n");
    assert_eq!(odd.received_at.nanosecond(), 123_456_000);
    let receipt = store.receive_ok(odd.clone()).await;
    assert_eq!(receipt, Receipt::Routed(acme.clone()));
    let expected = vec![
        StoredReply::on_receipt(0, sent.clone(), true, sent.received_at),
        StoredReply::on_receipt(0, odd.clone(), true, odd.received_at),
    ];
    let inbox = whole_inbox(&store, &acme).await;
    assert_eq!(comparable(&inbox), expected);
    assert_ne!(inbox[0].id, inbox[1].id, "each reply its own id");
    assert!(whole_held(&store).await.is_empty());
}

/// Replies nobody owns, and replies whose number did not parse, are held.
pub async fn unowned_and_unparsed_replies_are_held<S: ReplyStore>(store: S) {
    assert_eq!(
        store
            .receive_ok(reply(Some("SM1"), "+14155550100", "one", 1))
            .await,
        Receipt::Held
    );
    assert_eq!(
        store
            .receive_ok(reply(Some("SM2"), "garbage", "two", 2))
            .await,
        Receipt::Held
    );
    let held = whole_held(&store).await;
    assert_eq!(bodies(&held), ["one", "two"]);
    assert_eq!(
        held[1].to,
        Destination::Unparsed("garbage".to_owned()),
        "an unparsed `to` is kept as posted"
    );
}

/// `held_count` is the size of the held area: held and unparsed replies
/// count, routed replies and retries do not, released replies stop counting.
pub async fn held_count_counts_the_held_area<S: ReplyStore>(store: S) {
    let acme = client("acme");
    let count = async || ok(store.held_count().await, "held_count");
    assert_eq!(count().await, 0, "an empty store holds nothing");
    ok(
        store.add_numbers(&acme, &[number("+14155550199")]).await,
        "add",
    );
    for (i, to) in ["+14155550100", "+14155550101", "+14155550100", "garbage"]
        .iter()
        .enumerate()
    {
        let id = format!("SM{i}");
        assert_eq!(
            store
                .receive_ok(reply(Some(&id), to, "held", i as i64))
                .await,
            Receipt::Held
        );
    }
    let _ = store
        .receive_ok(reply(Some("SM0"), "+14155550100", "retry", 9))
        .await;
    let _ = store
        .receive_ok(reply(Some("SM9"), "+14155550199", "routed", 10))
        .await;
    assert_eq!(
        count().await,
        4,
        "held and unparsed count, a retry and a routed reply do not"
    );
    assert_eq!(count().await as usize, whole_held(&store).await.len());
    let change = ok(
        store.add_numbers(&acme, &[number("+14155550100")]).await,
        "add",
    );
    assert_eq!(change.released, 2);
    assert_eq!(count().await, 2, "released replies are no longer held");
}

/// A message id is recorded once, wherever the first copy went; replies
/// without an id are always recorded.
pub async fn retried_message_ids_are_recorded_once<S: ReplyStore>(store: S) {
    let acme = client("acme");
    let a = number("+14155550100");
    assert_eq!(
        store
            .receive_ok(reply(Some("SM1"), "+14155550100", "held", 1))
            .await,
        Receipt::Held
    );
    ok(store.replace_numbers(&acme, &[a]).await, "replace");
    assert_eq!(
        store
            .receive_ok(reply(Some("SM1"), "+14155550100", "held", 1))
            .await,
        Receipt::Duplicate
    );
    assert_eq!(
        store
            .receive_ok(reply(Some("SM2"), "+14155550100", "routed", 2))
            .await,
        Receipt::Routed(acme.clone())
    );
    assert_eq!(
        store
            .receive_ok(reply(Some("SM2"), "+14155550100", "routed", 2))
            .await,
        Receipt::Duplicate
    );
    for _ in 0..2 {
        assert_eq!(
            store
                .receive_ok(reply(None, "+14155550100", "no id", 3))
                .await,
            Receipt::Routed(acme.clone())
        );
    }
    assert_eq!(
        bodies(&whole_inbox(&store, &acme).await),
        ["held", "routed", "no id", "no id"]
    );
    assert!(whole_held(&store).await.is_empty());
}

/// Assigning a number delivers the replies held for it, oldest first, in the
/// same step, and reports how many; replies to other numbers stay held.
pub async fn assignment_releases_held_replies_oldest_first<S: ReplyStore>(store: S) {
    let acme = client("acme");
    for (i, to) in [
        "+14155550100",
        "+14155550101",
        "+14155550100",
        "+14155550199",
    ]
    .iter()
    .enumerate()
    {
        let receipt = store
            .receive_ok(reply(
                Some(&format!("SM{i}")),
                to,
                &format!("r{i}"),
                i as i64,
            ))
            .await;
        assert_eq!(receipt, Receipt::Held);
    }
    let change = ok(
        store
            .replace_numbers(&acme, &[number("+14155550101"), number("+14155550100")])
            .await,
        "replace",
    );
    assert_eq!(change.released, 3);
    assert_eq!(
        bodies(&whole_inbox(&store, &acme).await),
        ["r0", "r1", "r2"]
    );
    assert_eq!(bodies(&whole_held(&store).await), ["r3"]);
    let change = ok(
        store.add_numbers(&acme, &[number("+14155550199")]).await,
        "add",
    );
    assert_eq!(change.released, 1, "add releases too");
    assert!(whole_held(&store).await.is_empty());
}

/// A released reply is delivered after what the inbox already holds, so a
/// reader continuing from its cursor sees it.
pub async fn released_replies_never_hide_behind_a_cursor<S: ReplyStore>(store: S) {
    let acme = client("acme");
    let receipt = store
        .receive_ok(reply(Some("old"), "+14155550101", "early, held", 1))
        .await;
    assert_eq!(receipt, Receipt::Held);
    ok(
        store
            .replace_numbers(&acme, &[number("+14155550100")])
            .await,
        "replace",
    );
    let receipt = store
        .receive_ok(reply(Some("new"), "+14155550100", "later, routed", 2))
        .await;
    assert_eq!(receipt, Receipt::Routed(acme.clone()));
    let first = ok(store.inbox(&acme, &PageRequest::first(10)).await, "inbox");
    assert_eq!(bodies(&first.items), ["later, routed"]);
    let cursor = first
        .next
        .clone()
        .unwrap_or_else(|| panic!("a non-empty page has a cursor"));
    ok(
        store.add_numbers(&acme, &[number("+14155550101")]).await,
        "add",
    );
    let after = PageRequest::new(10, Some(cursor)).unwrap_or_else(|e| panic!("{e}"));
    let rest = ok(store.inbox(&acme, &after).await, "inbox");
    assert_eq!(bodies(&rest.items), ["early, held"]);
}

/// Pages follow cursors to the end; a cursor the store did not issue is refused.
pub async fn pages_follow_cursors<S: ReplyStore>(store: S) {
    let acme = client("acme");
    ok(
        store
            .replace_numbers(&acme, &[number("+14155550100")])
            .await,
        "replace",
    );
    for i in 0..5 {
        let routed = store
            .receive_ok(reply(
                Some(&format!("SM{i}")),
                "+14155550100",
                &format!("r{i}"),
                i,
            ))
            .await;
        assert_eq!(routed, Receipt::Routed(acme.clone()));
        let held = store
            .receive_ok(reply(
                Some(&format!("H{i}")),
                "+14155550199",
                &format!("h{i}"),
                i,
            ))
            .await;
        assert_eq!(held, Receipt::Held);
    }
    assert_eq!(
        bodies(&whole_inbox(&store, &acme).await),
        ["r0", "r1", "r2", "r3", "r4"]
    );
    assert_eq!(
        bodies(&whole_held(&store).await),
        ["h0", "h1", "h2", "h3", "h4"]
    );
    let first: Page<StoredReply> = ok(store.inbox(&acme, &PageRequest::first(3)).await, "inbox");
    assert_eq!(bodies(&first.items), ["r0", "r1", "r2"]);
    let empty = ok(
        store.inbox(&client("nobody"), &PageRequest::first(3)).await,
        "inbox",
    );
    assert!(
        empty.items.is_empty() && empty.next.is_none(),
        "an unknown client has an empty inbox"
    );
    let past_end = PageRequest::new(3, Some(Cursor::from_position(1_000)));
    let past_end = past_end.unwrap_or_else(|e| panic!("{e}"));
    let page = ok(store.inbox(&acme, &past_end).await, "inbox");
    assert!(
        page.items.is_empty(),
        "a cursor past the end gives an empty page"
    );
    let not_a_client = PageRequest::new(3, Cursor::new("\u{1}".repeat(3)));
    let not_a_client = not_a_client.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            store.list_clients("", &not_a_client).await,
            Err(StoreError::InvalidCursor)
        ),
        "a client cursor that is no client id is refused"
    );
    for bad in ["not-a-cursor", "-1", "99999999999999999999999"] {
        let page = PageRequest::new(3, Cursor::new(bad)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(
                store.inbox(&acme, &page).await,
                Err(StoreError::InvalidCursor)
            ),
            "inbox cursor {bad}"
        );
        assert!(
            matches!(store.held(&page).await, Err(StoreError::InvalidCursor)),
            "held cursor {bad}"
        );
    }
}

/// Clients are listed by id, with their numbers, page by page; a prefix
/// keeps the ids that start with it.
pub async fn clients_are_listed_by_id<S: ReplyStore>(store: S) {
    for (i, id) in ["carol", "alice", "bob", "dave", "bobby", "bo%b", "bo_b"]
        .iter()
        .enumerate()
    {
        let n = number(&format!("+1415555010{i}"));
        ok(store.add_numbers(&client(id), &[n]).await, "add");
    }
    ok(
        store
            .add_numbers(&client("bob"), &[number("+14155550199")])
            .await,
        "add",
    );
    let first = ok(
        store.list_clients("", &PageRequest::first(2)).await,
        "list_clients",
    );
    let ids: Vec<(&str, Vec<PhoneNumber>)> = first
        .items
        .iter()
        .map(|s| (s.client.as_str(), s.numbers.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            ("alice", vec![number("+14155550101")]),
            ("bo%b", vec![number("+14155550105")]),
        ]
    );
    let list = async |prefix: &str, page: &PageRequest| {
        let got = ok(store.list_clients(prefix, page).await, "list_clients");
        let ids: Vec<String> = got
            .items
            .iter()
            .map(|s| s.client.as_str().to_owned())
            .collect();
        (ids, got)
    };
    let next = PageRequest::first(2)
        .next(&first)
        .unwrap_or_else(|| panic!("more clients follow"));
    let (ids, second) = list("", &next).await;
    assert_eq!(ids, ["bo_b", "bob"]);
    assert_eq!(
        second.items[1].numbers,
        [number("+14155550102"), number("+14155550199")],
        "a client's numbers, sorted"
    );
    // A prefix, paged; its '%' and '_' are characters, not patterns.
    let (ids, page) = list("bob", &PageRequest::first(1)).await;
    assert_eq!(ids, ["bob"]);
    let next = PageRequest::first(1)
        .next(&page)
        .unwrap_or_else(|| panic!("bobby follows"));
    assert_eq!(list("bob", &next).await.0, ["bobby"]);
    assert_eq!(list("bo%", &PageRequest::first(10)).await.0, ["bo%b"]);
    assert_eq!(list("bo_", &PageRequest::first(10)).await.0, ["bo_b"]);
    assert_eq!(list("c", &PageRequest::first(10)).await.0, ["carol"]);
    assert!(list("z", &PageRequest::first(10)).await.0.is_empty());
    assert!(list("carolyn", &PageRequest::first(10)).await.0.is_empty());
}

/// Unknown clients and numbers read as empty, and the store answers a ping.
pub async fn unknowns_read_as_empty<S: ReplyStore>(store: S) {
    ok(store.ping().await, "ping");
    assert!(ok(store.numbers_of(&client("nobody")).await, "numbers_of").is_empty());
    assert_eq!(
        ok(store.owner_of(number("+14155550100")).await, "owner_of"),
        None
    );
    let change = ok(
        store
            .remove_numbers(&client("nobody"), &[number("+14155550100")])
            .await,
        "remove",
    );
    assert!(change.removed.is_empty() && change.numbers.is_empty());
}

/// The race of the contract: replies received while their numbers are being
/// assigned all end in the owner's inbox, none in the held area.
pub async fn receive_racing_assignment_ends_in_the_inbox<S: ReplyStore + 'static>(store: S) {
    let store = Arc::new(store);
    let acme = client("acme");
    let numbers: Vec<PhoneNumber> = (0..40)
        .map(|i| number(&format!("+1415555{i:04}")))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, n) in numbers.iter().copied().enumerate() {
        let (assigner, acme) = (Arc::clone(&store), acme.clone());
        tasks.spawn(async move {
            ok(assigner.add_numbers(&acme, &[n]).await, "add");
        });
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let sent = reply(
                Some(&format!("SM{i}")),
                &n.to_string(),
                &format!("r{i}"),
                i as i64,
            );
            let receipt = store.receive_ok(sent).await;
            assert_ne!(receipt, Receipt::Duplicate);
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap_or_else(|e| panic!("task: {e}"));
    }
    assert!(
        whole_held(&*store).await.is_empty(),
        "no reply stuck in the held area"
    );
    assert_eq!(
        whole_inbox(&*store, &acme).await.len(),
        numbers.len(),
        "every reply delivered once"
    );
}

/// Many tasks receive (with retries) while others move numbers between
/// clients; afterwards every reply is in exactly one place and no held reply
/// is for an owned number.
pub async fn concurrent_receives_and_reassignments_lose_nothing<S: ReplyStore + 'static>(store: S) {
    let store = Arc::new(store);
    let numbers: Vec<PhoneNumber> = (0..8)
        .map(|i| number(&format!("+4420794609{i:02}")))
        .collect();
    let clients: Vec<ClientId> = (0..3).map(|i| client(&format!("c{i}"))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let store = Arc::clone(&store);
        let numbers = numbers.clone();
        tasks.spawn(async move {
            for i in 0..50usize {
                let to = numbers[(i * 7 + worker) % numbers.len()].to_string();
                // Every message id is sent twice, as providers retry.
                let id = format!("w{worker}-{}", i / 2);
                let receipt = store.receive_ok(reply(Some(&id), &to, &id, i as i64)).await;
                assert_eq!(
                    receipt == Receipt::Duplicate,
                    i % 2 == 1,
                    "the second send of an id is a duplicate"
                );
            }
        });
    }
    for worker in 0..2 {
        let (store, numbers, clients) = (Arc::clone(&store), numbers.clone(), clients.clone());
        tasks.spawn(async move {
            for i in 0..30usize {
                let who = &clients[(i + worker) % clients.len()];
                let pick: Vec<PhoneNumber> = numbers
                    .iter()
                    .copied()
                    .skip((i + worker) % 3)
                    .step_by(2 + i % 2)
                    .collect();
                // Conflicts are expected: other workers hold some of these numbers.
                let _ = store.replace_numbers(who, &pick).await;
                tokio::task::yield_now().await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap_or_else(|e| panic!("task: {e}"));
    }
    let mut everywhere: Vec<String> = Vec::new();
    for c in &clients {
        everywhere.extend(whole_inbox(&*store, c).await.into_iter().map(|r| r.body));
    }
    let held = whole_held(&*store).await;
    for r in &held {
        let n =
            r.to.number()
                .unwrap_or_else(|| panic!("all test numbers parse"));
        assert_eq!(
            ok(store.owner_of(n).await, "owner_of"),
            None,
            "held reply to owned number {n}"
        );
    }
    everywhere.extend(held.into_iter().map(|r| r.body));
    let total = everywhere.len();
    everywhere.sort();
    everywhere.dedup();
    assert_eq!(everywhere.len(), total, "no reply recorded twice");
    assert_eq!(total, 4 * 25, "every distinct message recorded");
}

/// Far in the future: `owner_at` then is the current owner.
fn far_future() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or_else(|e| panic!("{e}"))
}

fn changes(events: &[HistoryEvent]) -> Vec<(&str, OwnershipChange)> {
    events
        .iter()
        .map(|e| (e.client.as_str(), e.change))
        .collect()
}

/// Every change records who gained or lost each number, one instant per
/// change, oldest first; refused and empty changes record nothing.
pub async fn history_records_every_change<S: ReplyStore>(store: S) {
    use OwnershipChange::{Assigned, Unassigned};
    let (acme, globex) = (client("acme"), client("globex"));
    let (a, b, c) = (
        number("+14155550100"),
        number("+14155550101"),
        number("+14155550102"),
    );
    ok(store.add_numbers(&acme, &[a, b]).await, "add");
    ok(store.add_numbers(&acme, &[a]).await, "add again");
    let _ = conflicts(store.add_numbers(&globex, &[a, c]).await);
    ok(store.replace_numbers(&acme, &[b, c]).await, "replace");
    ok(store.remove_numbers(&acme, &[c]).await, "remove");
    ok(store.add_numbers(&globex, &[a]).await, "reassign");
    let history = whole_history(&store, a).await;
    assert_eq!(
        changes(&history),
        [
            ("acme", Assigned),
            ("acme", Unassigned),
            ("globex", Assigned)
        ],
        "history of {a}"
    );
    assert_eq!(
        changes(&whole_history(&store, b).await),
        [("acme", Assigned)]
    );
    let of_c = whole_history(&store, c).await;
    assert_eq!(
        changes(&of_c),
        [("acme", Assigned), ("acme", Unassigned)],
        "the refused change recorded nothing"
    );
    assert!(
        history.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first: {history:?}"
    );
    assert_eq!(
        history[1].at, of_c[0].at,
        "one change, one instant: replace took {a} and gave {c} together"
    );
    assert!(
        whole_history(&store, number("+14155550199"))
            .await
            .is_empty(),
        "a number never assigned has no history"
    );
    let first = ok(store.history(a, &PageRequest::first(2)).await, "history");
    assert_eq!(first.items, history[..2]);
    let next = PageRequest::first(2)
        .next(&first)
        .unwrap_or_else(|| panic!("a page has a cursor"));
    assert_eq!(
        ok(store.history(a, &next).await, "history").items,
        history[2..]
    );
    let bad = PageRequest::new(2, Cursor::new("not-a-cursor")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(store.history(a, &bad).await, Err(StoreError::InvalidCursor)),
        "a history cursor the store did not issue is refused"
    );
}

/// `owner_at` answers from the history: nobody before the first change, the
/// new owner at the instant of a change, and the current owner today.
pub async fn owner_at_follows_the_history<S: ReplyStore>(store: S) {
    let (acme, globex) = (client("acme"), client("globex"));
    let a = number("+14155550100");
    ok(store.add_numbers(&acme, &[a]).await, "add");
    ok(store.remove_numbers(&acme, &[a]).await, "remove");
    ok(store.add_numbers(&globex, &[a]).await, "add");
    let history = whole_history(&store, a).await;
    assert_eq!(history.len(), 3);
    let owner_at = async |at| ok(store.owner_at(a, at).await, "owner_at");
    let micro = time::Duration::microseconds(1);
    assert_eq!(
        owner_at(history[0].at - micro).await,
        None,
        "before any change"
    );
    let owners = [Some(acme.clone()), None, Some(globex.clone())];
    for (event, owner) in history.iter().zip(&owners) {
        assert_eq!(
            &owner_at(event.at).await,
            owner,
            "at the instant of {event:?}: the owner after it"
        );
    }
    for (pair, before) in history.windows(2).zip(&owners) {
        if pair[0].at < pair[1].at {
            assert_eq!(
                &owner_at(pair[1].at - micro).await,
                before,
                "just before {:?}",
                pair[1]
            );
        }
    }
    assert_eq!(owner_at(far_future()).await, Some(globex.clone()));
    assert_eq!(
        ok(
            store.owner_at(number("+14155550199"), far_future()).await,
            "owner_at"
        ),
        None,
        "a number never assigned"
    );
}

/// Each reply says how it was delivered: routed on receipt, held, unparsed,
/// or released by the assignment of its number at that assignment's
/// instant; and each has an id of its own. A reply's delivery instant is
/// the store's, not its `received_at` (a gateway's clock, here two years
/// earlier), and the owner at that instant is the client it went to.
pub async fn delivery_says_how_each_reply_arrived<S: ReplyStore>(store: S) {
    use crate::DeliveryKind::{Held, Released, Routed, Unparsed};
    let acme = client("acme");
    let (a, b) = (number("+14155550100"), number("+14155550101"));
    ok(store.add_numbers(&acme, &[a]).await, "add");
    // The store's clock may be another machine's: an hour of leeway still
    // tells it from the replies' own time in 2024.
    let leeway = time::Duration::hours(1);
    let before = OffsetDateTime::now_utc() - leeway;
    for (id, to) in [
        ("SM1", "+14155550100"),
        ("SM2", "+14155550101"),
        ("SM3", "garbage"),
    ] {
        let _ = store.receive_ok(reply(Some(id), to, id, 1)).await;
    }
    let held = whole_held(&store).await;
    let kinds: Vec<_> = held
        .iter()
        .map(|r| (r.body.as_str(), r.delivery.kind))
        .collect();
    assert_eq!(kinds, [("SM2", Held), ("SM3", Unparsed)]);
    let after = OffsetDateTime::now_utc() + leeway;
    assert!(
        held.iter()
            .all(|r| r.delivery.at >= before && r.delivery.at <= after),
        "held at the store's instant of receipt, not the reply's own time: {held:?}"
    );
    ok(store.add_numbers(&acme, &[b]).await, "add");
    let inbox = whole_inbox(&store, &acme).await;
    let kinds: Vec<_> = inbox
        .iter()
        .map(|r| (r.body.as_str(), r.delivery.kind))
        .collect();
    assert_eq!(kinds, [("SM1", Routed), ("SM2", Released)]);
    let routed_at = inbox[0].delivery.at;
    assert!(
        routed_at >= before && routed_at <= after && routed_at != inbox[0].received_at,
        "routed at the store's instant of receipt: {routed_at} (received {})",
        inbox[0].received_at
    );
    assert_eq!(
        ok(store.owner_at(a, routed_at).await, "owner_at"),
        Some(acme.clone()),
        "the owner at the delivery instant is the client it went to"
    );
    let assigned = whole_history(&store, b).await;
    assert_eq!(
        inbox[1].delivery.at, assigned[0].at,
        "released at the instant of the assignment"
    );
    let still = whole_held(&store).await;
    assert_eq!(still.len(), 1);
    let mut ids: Vec<u64> = inbox.iter().chain(&still).map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each reply its own id");
    assert_eq!(still[0].id, held[1].id, "an id stays with its reply");
    assert_eq!(inbox[1].id, held[0].id, "an id survives a release");
}

/// An operator moves one held reply to a client, or to a corrected number's
/// owner: it goes to the end of the inbox (never behind a reader's cursor),
/// re-routed at that instant, no ownership changes; an unknown id, a reply
/// delivered already and an unowned number are refused, changing nothing.
pub async fn held_replies_can_be_rerouted<S: ReplyStore>(store: S) {
    use crate::{DeliveryKind, HeldTarget};
    let acme = client("acme");
    let (a, b, c) = (
        number("+14155550100"),
        number("+14155550101"),
        number("+14155550102"),
    );
    ok(store.add_numbers(&acme, &[a]).await, "add");
    let _ = store
        .receive_ok(reply(Some("SM0"), "+14155550100", "routed", 0))
        .await;
    let first = ok(store.inbox(&acme, &PageRequest::first(10)).await, "inbox");
    let cursor = first.next.clone().unwrap_or_else(|| panic!("a cursor"));
    for (id, to) in [
        ("SM1", "garbage"),
        ("SM2", "+14155550101"),
        ("SM3", "+14155550102"),
    ] {
        assert_eq!(
            store.receive_ok(reply(Some(id), to, id, 1)).await,
            Receipt::Held
        );
    }
    let held = whole_held(&store).await;
    let (unparsed, to_b, to_c) = (held[0].id, held[1].id, held[2].id);
    let moved = ok(
        store
            .deliver_held(unparsed, &HeldTarget::Client(acme.clone()))
            .await,
        "deliver_held",
    );
    assert_eq!(
        (moved.body.as_str(), moved.delivery.kind),
        ("SM1", DeliveryKind::Rerouted)
    );
    assert_eq!(moved.id, unparsed, "the reply keeps its id");
    let after = PageRequest::new(10, Some(cursor)).unwrap_or_else(|e| panic!("{e}"));
    let rest = ok(store.inbox(&acme, &after).await, "inbox");
    assert_eq!(rest.items, [moved], "after the cursor, as listed");
    let moved = ok(
        store.deliver_held(to_b, &HeldTarget::Number(a)).await,
        "deliver_held",
    );
    assert_eq!(moved.to, Destination::Number(b), "its `to` is kept");
    assert_eq!(moved.delivery.kind, DeliveryKind::Rerouted);
    assert_eq!(
        bodies(&whole_inbox(&store, &acme).await),
        ["routed", "SM1", "SM2"]
    );
    assert_eq!(
        whole_history(&store, a).await.len(),
        1,
        "no ownership changed"
    );
    assert!(whole_history(&store, b).await.is_empty());
    assert_eq!(ok(store.owner_of(b).await, "owner_of"), None);

    let to_acme = HeldTarget::Client(acme.clone());
    let delivered = store.deliver_held(unparsed, &to_acme).await;
    let unknown = store.deliver_held(u64::MAX, &to_acme).await;
    let unowned = store.deliver_held(to_c, &HeldTarget::Number(c)).await;
    assert!(
        matches!(delivered, Err(StoreError::NotHeld(id)) if id == unparsed),
        "{delivered:?}"
    );
    assert!(
        matches!(unknown, Err(StoreError::NoSuchReply(u64::MAX))),
        "{unknown:?}"
    );
    assert!(
        matches!(unowned, Err(StoreError::Unowned(n)) if n == c),
        "{unowned:?}"
    );
    assert_eq!(
        bodies(&whole_held(&store).await),
        ["SM3"],
        "nothing else changed"
    );
    assert_eq!(whole_inbox(&store, &acme).await.len(), 3);
    let change = ok(store.add_numbers(&client("globex"), &[b, c]).await, "add");
    assert_eq!(
        change.released, 1,
        "a re-routed reply is not released again"
    );
}

/// Far enough ahead that every delivery so far counts as before it, whatever
/// the clocks of the test and the store's server.
fn after_everything() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(1)
}

/// Pruning deletes delivered replies oldest first, in batches of at most the
/// limit, never a held one and never an inbox's last; a cursor taken before
/// it still pages on, and later deliveries come after it. A reply released
/// from the held area counts from its release.
pub async fn pruning_keeps_cursors_and_held_replies<S: ReplyStore>(store: S) {
    let (acme, beta, late) = (client("acme"), client("beta"), client("late"));
    ok(
        store
            .replace_numbers(&acme, &[number("+14155550100")])
            .await,
        "replace",
    );
    ok(
        store
            .replace_numbers(&beta, &[number("+14155550101")])
            .await,
        "replace",
    );
    for (body, at) in [("a1", 1), ("a2", 2), ("a3", 3)] {
        let _ = store
            .receive_ok(reply(None, "+14155550100", body, at))
            .await;
    }
    for (body, at) in [("b1", 4), ("b2", 5)] {
        let _ = store
            .receive_ok(reply(None, "+14155550101", body, at))
            .await;
    }
    let _ = store
        .receive_ok(reply(None, "+14155550102", "held", 6))
        .await;
    let _ = store
        .receive_ok(reply(None, "not a number", "unparsed", 7))
        .await;
    let first = ok(store.inbox(&acme, &PageRequest::first(2)).await, "inbox");
    let cursor = PageRequest::first(2)
        .next(&first)
        .expect("a cursor after a2");

    let long_ago = OffsetDateTime::UNIX_EPOCH;
    assert_eq!(ok(store.prune_delivered(long_ago, 100).await, "prune"), 0);
    assert_eq!(
        ok(store.prune_delivered(after_everything(), 1).await, "prune"),
        1
    );
    assert_eq!(
        ok(
            store.prune_delivered(after_everything(), 100).await,
            "prune"
        ),
        2
    );
    assert_eq!(
        ok(
            store.prune_delivered(after_everything(), 100).await,
            "prune"
        ),
        0
    );

    assert_eq!(
        bodies(&whole_inbox(&store, &acme).await),
        ["a3"],
        "last one kept"
    );
    assert_eq!(
        bodies(&whole_inbox(&store, &beta).await),
        ["b2"],
        "last one kept"
    );
    assert_eq!(
        bodies(&whole_held(&store).await),
        ["held", "unparsed"],
        "held kept"
    );
    let _ = store.receive_ok(reply(None, "+14155550100", "a4", 8)).await;
    let after = ok(
        store.inbox(&acme, &cursor).await,
        "inbox after the old cursor",
    );
    assert_eq!(
        bodies(&after.items),
        ["a3", "a4"],
        "the old cursor pages on"
    );

    // Delivery instants are the store's: a3, no longer acme's last, was
    // delivered before `mid`; "held", received in 2024 but released after
    // `mid`, counts from its release, and late2 was routed after `mid`.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mid = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ok(
        store
            .replace_numbers(&late, &[number("+14155550102")])
            .await,
        "replace",
    );
    let _ = store
        .receive_ok(reply(None, "+14155550102", "late2", 9))
        .await;
    assert_eq!(ok(store.prune_delivered(mid, 100).await, "prune"), 1);
    assert_eq!(bodies(&whole_inbox(&store, &acme).await), ["a4"]);
    assert_eq!(bodies(&whole_inbox(&store, &late).await), ["held", "late2"]);
}

/// A pruned reply's message id is forgotten: a retry after pruning is
/// recorded again, while the ids of replies still stored stay duplicates.
pub async fn pruned_message_ids_are_recorded_again<S: ReplyStore>(store: S) {
    let acme = client("acme");
    ok(
        store
            .replace_numbers(&acme, &[number("+14155550100")])
            .await,
        "replace",
    );
    for (id, at) in [("SM1", 1), ("SM2", 2)] {
        let _ = store
            .receive_ok(reply(Some(id), "+14155550100", id, at))
            .await;
    }
    assert_eq!(
        ok(
            store.prune_delivered(after_everything(), 100).await,
            "prune"
        ),
        1
    );
    assert_eq!(
        store
            .receive_ok(reply(Some("SM2"), "+14155550100", "SM2", 2))
            .await,
        Receipt::Duplicate
    );
    assert_eq!(
        store
            .receive_ok(reply(Some("SM1"), "+14155550100", "SM1", 1))
            .await,
        Receipt::Routed(acme.clone())
    );
    assert_eq!(bodies(&whole_inbox(&store, &acme).await), ["SM2", "SM1"]);
}
