//! Live readers woken through the database: a delivery by any store on the
//! schema wakes the readers of that client, on every store of the schema,
//! and nobody else; a listener whose connection is cut reconnects and wakes
//! everyone.

use std::time::{Duration, Instant};

use ibiki_core::testing::{client, number, reply};
use ibiki_core::{AssignmentStore, ClientId, InboxSignals, InboxSubscription, ReplyStore};
use ibiki_postgres::PostgresStore;
use tokio::time::timeout;

use crate::support::{SchemaGuard, TestStore, fresh_store, unique_schema};

/// The bound a live reader is promised.
const WITHIN: Duration = Duration::from_secs(1);
/// How long setting up (a listener connecting) may take on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

fn signals_of(store: &PostgresStore) -> InboxSignals {
    store
        .inbox_signals()
        .unwrap_or_else(|| panic!("a connected store offers signals"))
}

async fn assign(store: &PostgresStore, client: &ClientId, to: &str) {
    store
        .add_numbers(client, &[number(to)])
        .await
        .unwrap_or_else(|e| panic!("assign: {e}"));
}

async fn receive(store: &PostgresStore, id: &str, to: &str) {
    let _ = store
        .receive(reply(Some(id), to, id, 1))
        .await
        .unwrap_or_else(|e| panic!("receive {id}: {e}"));
}

/// Waits for a wake-up of `reader`, at most `within`; how long it took.
async fn woken(reader: &mut InboxSubscription, within: Duration, what: &str) -> Duration {
    let started = Instant::now();
    timeout(within, reader.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: not woken within {within:?}"));
    started.elapsed()
}

/// A fence: once a fresh reader of `fence` is woken by a delivery `via`
/// makes, `signals`' listener has handled every notification committed
/// before it (a listener hears them in commit order).
async fn fence(signals: &InboxSignals, via: &PostgresStore, fence: &str, to: &str) {
    let fence = client(fence);
    let mut reader = signals.subscribe(&fence);
    assign(via, &fence, to).await;
    receive(via, &format!("{fence}-reply"), to).await;
    woken(&mut reader, SETTLE, "the fence").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_by_another_store_wakes_its_client_only() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let Some(other_schema) = fresh_store().await else {
        return;
    };
    let here = test.store();
    let elsewhere = test.second_store().await;
    let (acme, globex) = (client("acme"), client("globex"));
    assign(here, &acme, "+14155550100").await;
    assign(here, &globex, "+14155550101").await;
    assign(other_schema.store(), &acme, "+14155550100").await;
    let signals = signals_of(here);
    // The listener is up, its first wake-up given.
    fence(&signals, &elsewhere, "fence-0", "+14155550190").await;

    let mut a = signals.subscribe(&acme);
    let mut g = signals.subscribe(&globex);
    receive(&elsewhere, "SM1", "+14155550100").await;
    let took = woken(&mut a, WITHIN, "acme's reader, by another store").await;
    eprintln!("woken {took:?} after the other store's receive returned");
    fence(&signals, &elsewhere, "fence-1", "+14155550191").await;
    assert!(!g.has_changed(), "a reply for acme woke globex's reader");

    receive(&elsewhere, "SM2", "+14155550101").await;
    woken(&mut g, WITHIN, "globex's reader").await;
    fence(&signals, &elsewhere, "fence-2", "+14155550192").await;
    assert!(!a.has_changed(), "a reply for globex woke acme's reader");

    // The same client id in another schema of the same database.
    receive(other_schema.store(), "SM3", "+14155550100").await;
    fence(&signals, &elsewhere, "fence-3", "+14155550193").await;
    assert!(
        !a.has_changed(),
        "another schema's reply woke acme's reader"
    );
    // A held reply delivers nothing either.
    receive(&elsewhere, "SM4", "+14155550199").await;
    fence(&signals, &elsewhere, "fence-4", "+14155550194").await;
    assert!(
        !a.has_changed() && !g.has_changed(),
        "a held reply woke a reader"
    );
    // Its release does, for its new owner only.
    assign(&elsewhere, &globex, "+14155550199").await;
    woken(&mut g, WITHIN, "globex's reader, by a release").await;
    fence(&signals, &elsewhere, "fence-5", "+14155550195").await;
    assert!(!a.has_changed(), "a release to globex woke acme's reader");
}

/// A statement that delivers to many clients names them all in as few
/// notifications as PostgreSQL's payload limit allows: each reader is woken,
/// nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_names_many_clients() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let signals = signals_of(store);
    fence(&signals, store, "fence-0", "+14155550190").await;
    // 150 ids of 124 bytes: about 18.7 KB, three payloads.
    let ids: Vec<String> = (0..150)
        .map(|i| format!("{i:03}-{}", "x".repeat(120)))
        .collect();
    let mut readers: Vec<InboxSubscription> = ids
        .iter()
        .map(|id| signals.subscribe(&client(id)))
        .collect();
    let stranger = signals.subscribe(&client("stranger"));
    let mut conn = test.connection().await;
    // What the triggers call for a statement that delivered to all of them.
    sqlx::query(&format!("SELECT {}.notify_clients($1)", test.schema()))
        .bind(&ids)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("notify_clients: {e}"));
    for (reader, id) in readers.iter_mut().zip(&ids) {
        woken(reader, WITHIN, id).await;
    }
    fence(&signals, store, "fence-1", "+14155550191").await;
    assert!(!stranger.has_changed(), "a client nobody named was woken");
}

/// A schema name too long for a channel of its own: the listener and the
/// triggers agree on the hashed name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_schema_name_has_a_channel_too() {
    let Some(url) = ibiki_postgres::testing::database_url() else {
        return;
    };
    let mut schema = unique_schema();
    schema.push('_');
    while schema.len() < 63 {
        schema.push('x');
    }
    let guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::builder(&url)
        .schema(&schema)
        .max_connections(2)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    let store = guard.attach(store);
    let signals = signals_of(&store);
    // Heard at all, then within the bound.
    fence(&signals, &store, "fence", "+14155550190").await;
    let acme = client("acme");
    assign(&store, &acme, "+14155550100").await;
    let mut reader = signals.subscribe(&acme);
    receive(&store, "SM1", "+14155550100").await;
    woken(&mut reader, WITHIN, "a reply on a hashed channel").await;
}

/// The listener's connection ended by the server: it connects again, wakes
/// every reader (what was sent meanwhile is lost), and hears deliveries
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_listener_reconnects_and_wakes_everyone() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let store = test.store();
    let signals = signals_of(store);
    fence(&signals, store, "fence-0", "+14155550190").await;
    let (acme, globex) = (client("acme"), client("globex"));
    assign(store, &acme, "+14155550100").await;
    let mut a = signals.subscribe(&acme);
    let mut g = signals.subscribe(&globex);
    assert_eq!(
        terminate_listeners(&test).await,
        1,
        "one listener per store"
    );
    woken(&mut a, SETTLE, "acme's reader, after the reconnection").await;
    woken(&mut g, SETTLE, "globex's reader, after the reconnection").await;
    fence(&signals, store, "fence-1", "+14155550191").await;
    drop((a, g));
    let mut a = signals.subscribe(&acme);
    receive(store, "SM1", "+14155550100").await;
    woken(&mut a, WITHIN, "acme's reader, on the new connection").await;
}

/// The listener and its connection go with the store's last clone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_stops_with_the_last_clone() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let signals = signals_of(test.store());
    fence(&signals, test.store(), "fence", "+14155550190").await;
    let mut conn = test.connection().await;
    let listening = format!("LISTEN \"ibiki_inbox_{}\"", test.store().schema());
    let listeners: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE query = $1")
            .bind(&listening)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listeners.len(), 1, "one listener: {listeners:?}");
    let clone = test.store().clone();
    drop(test);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        backend_alive(&mut conn, listeners[0]).await,
        "a clone still holds the store"
    );
    drop(clone);
    let deadline = Instant::now() + SETTLE;
    while backend_alive(&mut conn, listeners[0]).await {
        assert!(
            Instant::now() < deadline,
            "the listener's connection outlived the store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn backend_alive(conn: &mut sqlx::PgConnection, pid: i32) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
        .bind(pid)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"))
}

/// Ends the backends listening on `test`'s schema's channel; how many.
async fn terminate_listeners(test: &TestStore) -> usize {
    let mut conn = test.connection().await;
    let channel = format!("ibiki_inbox_{}", test.store().schema());
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query = 'LISTEN \"' || $1 || '\"'",
    )
    .bind(&channel)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("pg_terminate_backend: {e}"));
    ended.into_iter().filter(|&ended| ended).count()
}
