//! Three `ibiki-server` processes on one PostgreSQL schema, under a few
//! seconds of load: replies posted round-robin with a provider's retries
//! (any non-2xx answer or connection error is sent again, to the next
//! process), numbers moved between clients through another process
//! meanwhile, and one process killed with SIGKILL and restarted. Afterwards
//! every reply is in exactly one place, and that place is right. And two
//! processes: a reply one receives reaches a live stream on the other within
//! a second.
//!
//! Needs `DATABASE_URL` (skipped without it, unless `CI` is set).
#![cfg(all(unix, feature = "postgres"))]

#[path = "support/server_process.rs"]
mod server_process;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ibiki_postgres::testing::{SchemaGuard, check_reachable, database_url, unique_schema};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::sleep;

use crate::server_process::ServerProcess;

const TOKEN: &str = "cluster-token";
/// How long replies are posted.
const LOAD: Duration = Duration::from_secs(4);
/// Concurrent senders, as a provider's delivery workers.
const SENDERS: usize = 12;
/// Numbers in play; the last `UNASSIGNED` start without an owner.
const NUMBERS: usize = 30;
const UNASSIGNED: usize = 5;
const CLIENTS: usize = 5;

fn number(i: usize) -> String {
    format!("+14155550{:03}", 100 + i)
}

fn client(i: usize) -> String {
    format!("client-{i}")
}

/// A running `ibiki-server` on the shared schema.
async fn start_server(url: &str, schema: &str) -> ServerProcess {
    let env = [
        ("DATABASE_URL", url),
        ("IBIKI_DATABASE_SCHEMA", schema),
        ("IBIKI_ADMIN_TOKEN", TOKEN),
    ];
    ServerProcess::start(&[], &env).await
}

/// The current address of each process (a restarted one listens elsewhere).
type Addresses = Arc<RwLock<Vec<String>>>;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A tiny deterministic generator, one per sender.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What the senders saw.
#[derive(Default)]
struct Sent {
    /// message id -> number it was sent to.
    to: HashMap<String, String>,
    /// Attempts that failed and were sent again.
    retries: usize,
    /// Answers from the restarted process.
    after_restart: usize,
}

/// Posts replies until `stop`, each retried on the next process until one
/// answers 2xx, as a provider does.
async fn sender(
    id: usize,
    addresses: Addresses,
    turn: Arc<AtomicUsize>,
    restarted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Sent {
    let http = http();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0001));
    let mut sent = Sent::default();
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let message_id = format!("m-{id}-{k}");
        let to = number(rng.below(NUMBERS));
        let payload =
            json!({"messageId": message_id, "from": "+15005550006", "to": to, "body": message_id});
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut target = turn.fetch_add(1, Ordering::Relaxed);
        loop {
            let index = target % 3;
            let base = addresses.read().expect("addresses")[index].clone();
            let answer = http
                .post(format!("{base}/webhooks/sms"))
                .json(&payload)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    assert!(
                        ["routed", "held", "duplicate"]
                            .contains(&body["status"].as_str().unwrap_or("")),
                        "{body}"
                    );
                    if index == 0 && restarted.load(Ordering::Relaxed) {
                        sent.after_restart += 1;
                    }
                    break;
                }
                _ => {
                    sent.retries += 1;
                    assert!(Instant::now() < deadline, "{message_id} never accepted");
                    target += 1;
                    sleep(Duration::from_millis(5)).await;
                }
            }
        }
        sent.to.insert(message_id, to);
    }
    sent
}

/// Moves numbers between clients through one process until `stop`; returns
/// each number's owners in commit order (`None` while unassigned).
async fn reassigner(base: String, stop: Arc<AtomicBool>) -> (Vec<Vec<Option<String>>>, usize) {
    let http = http();
    let mut owners: Vec<Option<usize>> = (0..NUMBERS)
        .map(|i| (i < NUMBERS - UNASSIGNED).then_some(i % CLIENTS))
        .collect();
    let mut history: Vec<Vec<Option<String>>> =
        owners.iter().map(|o| vec![o.map(client)]).collect();
    let mut released = 0;
    let set_of = |owners: &[Option<usize>], c: usize| -> Vec<String> {
        (0..NUMBERS)
            .filter(|&i| owners[i] == Some(c))
            .map(number)
            .collect()
    };
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let n = (round * 7) % NUMBERS;
        let change = match owners[n] {
            // Unassigned: give it to the next client.
            None => {
                let next = round % CLIENTS;
                owners[n] = Some(next);
                next
            }
            // Owned: release it (its replies are held until the next round
            // that picks it).
            Some(current) => {
                owners[n] = None;
                current
            }
        };
        let body = json!({"userId": client(change), "phoneNumbers": set_of(&owners, change)});
        let response = http
            .post(format!("{base}/api/admin/update-phone-numbers"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin request");
        let status = response.status();
        let answer: Value = response.json().await.expect("admin JSON");
        assert_eq!(status, StatusCode::OK, "{answer}");
        released += answer["released"].as_u64().expect("released") as usize;
        history[n].push(owners[n].map(client));
        sleep(Duration::from_millis(20)).await;
    }
    (history, released)
}

/// Every reply of a listing, following the cursors.
async fn all_pages(http: &reqwest::Client, base: &str, path: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let url = format!("{base}{path}?limit=1000{after}");
        let response = http.get(url).bearer_auth(TOKEN).send().await.expect("list");
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.expect("page JSON");
        let messages = page["messages"].as_array().expect("messages");
        if messages.is_empty() {
            return all;
        }
        all.extend(messages.iter().cloned());
        after = format!("&after={}", page["next"].as_str().expect("next cursor"));
    }
}

/// Whether replies to one number, in recording order, went where its owner
/// history says: each to the owner when it was recorded, or, recorded while
/// unassigned, to the next owner (still held if there is none).
fn follows_history(history: &[Option<String>], inboxes: &[Option<String>]) -> Result<(), String> {
    // The owner a reply recorded at step k ends with.
    let destination = |k: usize| history[k..].iter().find_map(Clone::clone);
    let mut step = 0;
    for (i, inbox) in inboxes.iter().enumerate() {
        match (step..history.len()).find(|&k| destination(k) == *inbox) {
            Some(k) => step = k,
            None => {
                return Err(format!(
                    "reply {i} went to {inbox:?}, not possible after step {step} of {history:?}"
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_one_database_kill_9_and_reassignments() {
    let Some(url) = database_url() else {
        return;
    };
    check_reachable(&url).await;
    let schema = unique_schema();
    let _guard = SchemaGuard::new(&url, &schema);

    // Three processes migrate the same schema at once.
    let (a, b, c) = tokio::join!(
        start_server(&url, &schema),
        start_server(&url, &schema),
        start_server(&url, &schema)
    );
    let addresses: Addresses = Arc::new(RwLock::new(vec![
        a.base.clone(),
        b.base.clone(),
        c.base.clone(),
    ]));
    let http = http();
    for i in 0..CLIENTS {
        let numbers: Vec<String> = (0..NUMBERS - UNASSIGNED)
            .filter(|n| n % CLIENTS == i)
            .map(number)
            .collect();
        let response = http
            .post(format!("{}/api/admin/update-phone-numbers", b.base))
            .bearer_auth(TOKEN)
            .json(&json!({"userId": client(i), "phoneNumbers": numbers}))
            .send()
            .await
            .expect("assign");
        assert_eq!(response.status(), StatusCode::OK);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let turn = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|id| {
            tokio::spawn(sender(
                id,
                addresses.clone(),
                turn.clone(),
                restarted.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Assignments go through the second process, which is never killed.
    let reassigner = tokio::spawn(reassigner(b.base.clone(), stop.clone()));

    sleep(LOAD / 3).await;
    a.kill().await;
    sleep(Duration::from_millis(300)).await;
    let a = start_server(&url, &schema).await;
    addresses.write().expect("addresses")[0] = a.base.clone();
    restarted.store(true, Ordering::Relaxed);
    sleep(LOAD * 2 / 3).await;
    stop.store(true, Ordering::Relaxed);

    let mut sent = HashMap::new();
    let (mut retries, mut after_restart) = (0, 0);
    for task in senders {
        let part = task.await.expect("sender");
        retries += part.retries;
        after_restart += part.after_restart;
        sent.extend(part.to);
    }
    let (history, released) = reassigner.await.expect("reassigner");
    let changes: usize = history.iter().map(|h| h.len() - 1).sum();
    eprintln!(
        "cluster: {} replies, {retries} retried attempts, {after_restart} answered by the \
         restarted process, {changes} assignment changes releasing {released}",
        sent.len()
    );
    assert!(sent.len() > 300, "some load: {}", sent.len());
    assert!(retries > 0, "the kill cut or refused some requests");
    assert!(after_restart > 0, "the restarted process served");
    assert!(
        changes > 20 && released > 0,
        "{changes} changes, {released} released"
    );

    // Each reply in exactly one inbox or held, through the API of the
    // restarted process.
    let mut found: HashMap<String, (Option<String>, String)> = HashMap::new();
    let mut places = Vec::new();
    for i in 0..CLIENTS {
        places.push((
            Some(client(i)),
            format!("/api/clients/{}/messages", client(i)),
        ));
    }
    places.push((None, "/api/admin/held".to_owned()));
    for (owner, path) in places {
        for message in all_pages(&http, &a.base, &path).await {
            let id = message["messageId"].as_str().expect("id").to_owned();
            let to = message["to"].as_str().expect("to").to_owned();
            assert_eq!(message["body"], id.as_str(), "{message}");
            let earlier = found.insert(id.clone(), (owner.clone(), to));
            assert!(earlier.is_none(), "{id} twice: {earlier:?} and {owner:?}");
        }
    }
    let sent_ids: BTreeSet<&String> = sent.keys().collect();
    let found_ids: BTreeSet<&String> = found.keys().collect();
    assert_eq!(
        sent_ids.difference(&found_ids).count(),
        0,
        "lost replies: {:?}",
        sent_ids.difference(&found_ids).take(10).collect::<Vec<_>>()
    );
    assert_eq!(found_ids.len(), sent_ids.len(), "replies nobody sent");
    for (id, (_, to)) in &found {
        assert_eq!(&sent[id], to, "{id}");
    }

    // Right place: per number, in the order the database recorded them
    // (the number's lock orders receives and assignment changes), the
    // replies follow the owner history.
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT message_id, to_number, client_id FROM \"{schema}\".replies ORDER BY id"
    ))
    .fetch_all(&pool)
    .await
    .expect("replies");
    let mut by_number: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (id, to, owner) in &rows {
        assert_eq!(found[id].0, *owner, "{id}: API and table agree");
        by_number.entry(to.clone()).or_default().push(owner.clone());
    }
    for (i, history) in history.iter().enumerate() {
        let inboxes = by_number.remove(&number(i)).unwrap_or_default();
        if let Err(e) = follows_history(history, &inboxes) {
            panic!("{}: {e}", number(i));
        }
    }
    // Inbox positions are 1..n in every inbox: nothing skipped or doubled.
    let gaps: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT client_id, count(*), max(delivery_seq) FROM \"{schema}\".replies \
         WHERE client_id IS NOT NULL GROUP BY client_id HAVING count(*) <> max(delivery_seq)"
    ))
    .fetch_all(&pool)
    .await
    .expect("positions");
    assert!(gaps.is_empty(), "{gaps:?}");
    pool.close().await;
    drop((a, b, c));
}

/// A live stream on one process gets a reply another process received
/// within a second, each time: the database's notification wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_received_by_another_process_reaches_an_open_stream_within_a_second() {
    let Some(url) = database_url() else {
        return;
    };
    check_reachable(&url).await;
    let schema = unique_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let (streaming, receiving) =
        tokio::join!(start_server(&url, &schema), start_server(&url, &schema));
    let http = http();
    let response = http
        .post(format!("{}/api/admin/update-phone-numbers", streaming.base))
        .bearer_auth(TOKEN)
        .json(&json!({"userId": client(0), "phoneNumbers": [number(0)]}))
        .send()
        .await
        .expect("assign");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = http
        .get(format!(
            "{}/api/clients/{}/events",
            streaming.base,
            client(0)
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stream opened");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    read_until(
        &mut stream,
        &mut seen,
        "ibiki inbox",
        Duration::from_secs(5),
    )
    .await;
    let mut took = Vec::new();
    for i in 0..5 {
        let id = format!("elsewhere-{i}");
        let payload = json!({"messageId": id, "from": "+15005550006", "to": number(0), "body": id});
        let answer = http
            .post(format!("{}/webhooks/sms", receiving.base))
            .json(&payload)
            .send()
            .await
            .expect("webhook");
        assert_eq!(answer.status(), StatusCode::OK);
        let answered = Instant::now();
        read_until(
            &mut stream,
            &mut seen,
            &format!("\"{id}\""),
            Duration::from_secs(1),
        )
        .await;
        took.push(answered.elapsed());
        // Quiet between replies: each one is heard, not found by a read of
        // the one before.
        sleep(Duration::from_millis(300)).await;
    }
    eprintln!("another process's replies reached the stream after {took:?}");
}

/// Reads `response` into `seen` until it holds `needle`; panics after `within`.
async fn read_until(
    response: &mut reqwest::Response,
    seen: &mut String,
    needle: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(other) => panic!("the stream ended before {needle}: {other:?}"),
            Err(_) => panic!("{needle} not in the stream within {within:?}"),
        }
    }
}

#[test]
fn the_history_check_can_fail() {
    let a = Some("a".to_owned());
    let b = Some("b".to_owned());
    let history = [a.clone(), None, b.clone()];
    assert!(follows_history(&history, &[a.clone(), b.clone(), b.clone()]).is_ok());
    // Recorded while unassigned, then released to b.
    assert!(follows_history(&history, std::slice::from_ref(&b)).is_ok());
    // Back to a after b took over.
    assert!(follows_history(&history, &[b.clone(), a.clone()]).is_err());
    // Held although b owns it now.
    assert!(follows_history(&history, &[None]).is_err());
    assert!(follows_history(&[a.clone(), None], &[a, None]).is_ok());
}
