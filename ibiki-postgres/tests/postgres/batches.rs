//! Group commit: concurrent receives on one store share transactions, and
//! every receive contract still holds inside a batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ibiki_core::testing::{client, number, reply, whole_held, whole_inbox};
use ibiki_core::{AssignmentStore, ClientId, PhoneNumber, Receipt, ReplyStore, StoreError};
use sqlx::Executor;
use tokio::task::JoinSet;

use crate::support::{TestStore, fresh_store};

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// How many transactions recorded the replies: rows written by one
/// transaction share its `xmin`.
async fn transactions(test: &TestStore) -> (i64, i64) {
    let mut conn = test.connection().await;
    let statement = format!(
        "SELECT count(*), count(DISTINCT xmin::text) FROM {}.replies",
        test.schema()
    );
    sqlx::query_as(&statement)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends every reply at once, each from a task of its own.
async fn burst(
    store: &Arc<ibiki_postgres::PostgresStore>,
    replies: Vec<ibiki_core::InboundReply>,
) -> Vec<Result<Receipt, StoreError>> {
    let mut tasks = JoinSet::new();
    for (i, sent) in replies.into_iter().enumerate() {
        let store = Arc::clone(store);
        tasks.spawn(async move { (i, store.receive(sent).await) });
    }
    let mut answers: Vec<_> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// Many concurrent receives take far fewer transactions than replies, each
/// reply answered as it was recorded, in inboxes numbered without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receives_share_transactions() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = Arc::new(test.store().clone());
    let owner = client("acme");
    ok(
        store.add_numbers(&owner, &[number("+14155550100")]).await,
        "add",
    );
    let mut replies = Vec::new();
    for i in 0..400 {
        let to = if i % 4 == 0 {
            "+14155550199"
        } else {
            "+14155550100"
        };
        let id = format!("SM{i}");
        replies.push(reply(Some(&id), to, &id, i));
    }
    let answers = burst(&store, replies).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let receipt = ok(answer, "receive");
        let expected = if i % 4 == 0 {
            Receipt::Held
        } else {
            Receipt::Routed(owner.clone())
        };
        assert_eq!(receipt, expected, "SM{i}");
    }
    let (rows, transactions) = transactions(&test).await;
    assert_eq!(rows, 400);
    assert!(
        transactions < 200,
        "{transactions} transactions for 400 replies: not batched"
    );
    let inbox = whole_inbox(test.store(), &owner).await;
    assert_eq!(inbox.len(), 300);
    assert_eq!(whole_held(test.store()).await.len(), 100);
    let mut conn = test.connection().await;
    let positions: (i64, i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(DISTINCT delivery_seq), max(delivery_seq) FROM {}.replies \
         WHERE client_id = 'acme'",
        test.schema()
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(positions, (300, 300, 300), "positions 1..=300");
}

/// The same message id twice in one burst (so, often, in one batch) is
/// recorded once: one copy is routed, the other a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_id_twice_in_a_batch_is_recorded_once() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = Arc::new(test.store().clone());
    let owner = client("acme");
    ok(
        store.add_numbers(&owner, &[number("+14155550100")]).await,
        "add",
    );
    let mut replies = Vec::new();
    for i in 0..200 {
        let id = format!("SM{}", i / 2);
        replies.push(reply(Some(&id), "+14155550100", &id, i));
    }
    let answers = burst(&store, replies).await;
    let mut routed: HashMap<String, usize> = HashMap::new();
    for (i, answer) in answers.into_iter().enumerate() {
        match ok(answer, "receive") {
            Receipt::Routed(c) => {
                assert_eq!(c, owner);
                *routed.entry(format!("SM{}", i / 2)).or_default() += 1;
            }
            Receipt::Duplicate => {}
            Receipt::Held => panic!("held for an owned number"),
        }
    }
    assert_eq!(routed.len(), 100, "each id routed once");
    assert!(routed.values().all(|&n| n == 1), "{routed:?}");
    assert_eq!(whole_inbox(test.store(), &owner).await.len(), 100);
    let mut conn = test.connection().await;
    let shared: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT xmin::text FROM {}.replies GROUP BY 1 \
         HAVING count(*) > 1) AS t",
        test.schema()
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(shared > 0, "some replies shared a transaction");
}

/// A reply the database refuses fails alone: the other replies of its batch
/// are recorded. (A trigger refuses one body; no reply the types allow is
/// refused by the schema itself.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_reply_does_not_fail_its_batch() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let schema = test.schema();
    let mut conn = test.connection().await;
    conn.execute(&*format!(
        "CREATE FUNCTION {schema}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.body = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_poison BEFORE INSERT ON {schema}.replies \
         FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_poison()"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(test.store().clone());
    let owner = client("acme");
    ok(
        store.add_numbers(&owner, &[number("+14155550100")]).await,
        "add",
    );
    for round in 0..5 {
        let mut replies = Vec::new();
        for i in 0..60 {
            let id = format!("SM{round}-{i}");
            let body = if i == 30 { "poison" } else { id.as_str() };
            replies.push(reply(Some(&id), "+14155550100", body, i));
        }
        let answers = burst(&store, replies).await;
        for (i, answer) in answers.into_iter().enumerate() {
            if i == 30 {
                assert!(matches!(answer, Err(StoreError::Backend(_))), "{answer:?}");
            } else {
                assert_eq!(ok(answer, "receive"), Receipt::Routed(owner.clone()));
            }
        }
    }
    assert_eq!(whole_inbox(test.store(), &owner).await.len(), 5 * 59);
}

/// A burst of receives while numbers move between clients on other
/// connections: no deadlock, every reply recorded once, each where its
/// receipt said, in the inbox of the owner when it was recorded or, recorded
/// while unassigned, of the next owner; held only for unassigned numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receive_bursts_with_numbers_moving_lose_nothing() {
    const NUMBERS: usize = 12;
    const REPLIES: usize = 3000;
    const CONCURRENT: usize = 96;
    let Some(test) = fresh_store().await else {
        return;
    };
    let numbers: Vec<PhoneNumber> = (0..NUMBERS)
        .map(|i| number(&format!("+336123456{i:02}")))
        .collect();
    let clients: Vec<ClientId> = (0..4).map(|i| client(&format!("c{i}"))).collect();
    // Receives through one store (its batches), on a larger pool.
    let receiver = Arc::new(test.second_store().await);
    let mut tasks = JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..CONCURRENT {
        let (receiver, numbers, next) = (Arc::clone(&receiver), numbers.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut receipts = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= REPLIES {
                    return receipts;
                }
                let id = format!("r{i}");
                let to = numbers[(i * 7) % NUMBERS].to_string();
                let receipt = ok(
                    receiver.receive(reply(Some(&id), &to, &id, 0)).await,
                    "receive",
                );
                assert_ne!(receipt, Receipt::Duplicate, "{id}");
                receipts.push((id, receipt));
            }
        });
    }
    // Two assigners, each moving its own half of the numbers: remove from
    // one client, add to the next (held in between).
    let mut assigners = JoinSet::new();
    for half in 0..2 {
        let store = Arc::new(test.second_store().await);
        let (numbers, clients) = (numbers.clone(), clients.clone());
        assigners.spawn(async move {
            let mut history: BTreeMap<usize, Vec<Option<ClientId>>> = BTreeMap::new();
            let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
            for round in 0..80 {
                let k = half + 2 * (round % (NUMBERS / 2));
                let n = numbers[k];
                if let Some(c) = owner.remove(&k) {
                    ok(store.remove_numbers(&clients[c], &[n]).await, "remove");
                    history.entry(k).or_insert_with(|| vec![None]).push(None);
                } else {
                    let c = (round + half) % clients.len();
                    ok(store.add_numbers(&clients[c], &[n]).await, "add");
                    owner.insert(k, c);
                    history
                        .entry(k)
                        .or_insert_with(|| vec![None])
                        .push(Some(clients[c].clone()));
                }
            }
            history
        });
    }
    let mut receipts = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        receipts.extend(joined.unwrap_or_else(|e| panic!("receiver: {e}")));
    }
    let mut history: BTreeMap<usize, Vec<Option<ClientId>>> = BTreeMap::new();
    while let Some(joined) = assigners.join_next().await {
        history.extend(joined.unwrap_or_else(|e| panic!("assigner: {e}")));
    }
    assert_eq!(receipts.len(), REPLIES);

    // Exactly once, where the receipt said (or released from held).
    let mut place: HashMap<String, Option<ClientId>> = HashMap::new();
    for c in &clients {
        for r in whole_inbox(test.store(), c).await {
            assert!(place.insert(r.body, Some(c.clone())).is_none(), "twice");
        }
    }
    for r in whole_held(test.store()).await {
        let n = r.to.number().unwrap_or_else(|| panic!("parsed"));
        let owner = ok(test.store().owner_of(n).await, "owner_of");
        assert_eq!(owner, None, "held reply to owned number {n}");
        assert!(place.insert(r.body, None).is_none(), "twice");
    }
    assert_eq!(place.len(), REPLIES, "every reply recorded");
    for (id, receipt) in &receipts {
        if let Receipt::Routed(c) = receipt {
            assert_eq!(place[id].as_ref(), Some(c), "{id} where its receipt said");
        }
    }
    // In recording order per number, the replies follow its owner history.
    let mut conn = test.connection().await;
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT body, to_number, client_id FROM {}.replies ORDER BY id",
        test.schema()
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut by_number: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for (_, to, owner) in rows {
        by_number.entry(to).or_default().push(owner);
    }
    for (k, n) in numbers.iter().enumerate() {
        let owners: Vec<Option<String>> = history
            .get(&k)
            .map(|h| {
                h.iter()
                    .map(|c| c.as_ref().map(|c| c.as_str().to_owned()))
                    .collect()
            })
            .unwrap_or_else(|| vec![None]);
        let destination = |step: usize| owners[step..].iter().find_map(Clone::clone);
        let mut step = 0;
        for (i, inbox) in by_number
            .remove(&n.to_string())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            step = (step..owners.len())
                .find(|&s| destination(s) == *inbox)
                .unwrap_or_else(|| {
                    panic!("{n}: reply {i} to {inbox:?} after step {step} of {owners:?}")
                });
        }
    }
    let (rows, transactions) = transactions(&test).await;
    assert!(
        transactions < rows,
        "{transactions} transactions for {rows} rows"
    );
}

/// Assigns +14155550100 to `owner`, then receives `message_id` for it on a
/// connection of its own in a transaction left open: the copy is recorded,
/// not committed, and holds the number's lock until the caller commits.
async fn uncommitted_copy(
    test: &TestStore,
    owner: &ClientId,
    message_id: &str,
) -> sqlx::PgConnection {
    ok(
        test.store()
            .add_numbers(owner, &[number("+14155550100")])
            .await,
        "add",
    );
    let mut copy = test.connection().await;
    copy.execute("BEGIN")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    copy.execute(&*format!(
        "SELECT {}.receive('{message_id}', '+14155550100', NULL, 'f', 'copy', now())",
        test.schema()
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    copy
}

/// `receive_batch` meeting a copy of one of its message ids that another
/// transaction commits after the batch read the recorded ids: it raises
/// IBK01, and none of the batch is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_committed_meanwhile_undoes_the_batch() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let schema = test.schema();
    let mut copy = uncommitted_copy(&test, &client("acme"), "SMx").await;
    let mut batch = test.connection().await;
    let statement = format!(
        "SELECT duplicate, owner FROM {schema}.receive_batch(ARRAY['SMa', 'SMx', 'SMb'], \
         ARRAY['+14155550100', '+14155550100', '+14155550100'], ARRAY[NULL, NULL, NULL]::text[], \
         ARRAY['f', 'f', 'f'], ARRAY['a', 'x', 'b'], ARRAY[now(), now(), now()])"
    );
    let waiting = tokio::spawn(async move {
        let result: Result<Vec<(bool, Option<String>)>, sqlx::Error> =
            sqlx::query_as(&statement).fetch_all(&mut batch).await;
        (result, batch)
    });
    // The batch has read the recorded ids and waits for the number lock.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    copy.execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (result, mut batch) = waiting.await.unwrap_or_else(|e| panic!("{e}"));
    match result {
        Err(sqlx::Error::Database(error)) => assert_eq!(error.code().as_deref(), Some("IBK01")),
        other => panic!("expected IBK01, got {other:?}"),
    }
    let rows: (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), max(delivery_seq) FROM {schema}.replies"
    ))
    .fetch_one(&mut batch)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows, (1, 1), "only the copy, at position 1");
}

/// Through the store: replies waiting behind an uncommitted copy of one of
/// them are answered once it commits, that one as a duplicate, the others
/// routed, at positions without gaps. (The first reply waits alone for the
/// number lock; 64 more waiting start a full batch, which reads the recorded
/// ids before the copy commits, meets it in its insert (IBK01) and is tried
/// again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_behind_a_copy_is_tried_again() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let schema = test.schema();
    let owner = client("acme");
    let mut copy = uncommitted_copy(&test, &owner, "SM30").await;
    let store = Arc::new(test.second_store().await);
    let replies = (0..100)
        .map(|i| {
            let id = format!("SM{i}");
            reply(Some(&id), "+14155550100", &id, i)
        })
        .collect();
    let answers = tokio::spawn(async move { burst(&store, replies).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    copy.execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answers = answers.await.unwrap_or_else(|e| panic!("{e}"));
    for (i, answer) in answers.into_iter().enumerate() {
        let expected = if i == 30 {
            Receipt::Duplicate
        } else {
            Receipt::Routed(owner.clone())
        };
        assert_eq!(ok(answer, "receive"), expected, "SM{i}");
    }
    let inbox = whole_inbox(test.store(), &owner).await;
    assert_eq!(inbox.len(), 100);
    let positions: (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(DISTINCT delivery_seq), max(delivery_seq) FROM {schema}.replies"
    ))
    .fetch_one(&mut copy)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(positions, (100, 100), "positions 1..=100");
}
