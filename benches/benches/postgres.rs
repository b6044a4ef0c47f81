//! The PostgreSQL store against a real server, with 1M assigned numbers
//! (200k clients x 5): owner lookup, receive (the webhook's whole store work)
//! and replacing one client's 5 numbers, each beside a prepared `SELECT 1`
//! round trip on the same pool, and beside the replaced system's design (a
//! `text[]` column queried with `= ANY`) at the same size.
//!
//! Needs `DATABASE_URL`; without it, prints that it skipped. The data lives in
//! the schemas `ibiki_bench` and `ibiki_bench_legacy`, built on first run and
//! reused after.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use ibiki_benches::{Rng, print_ratio};
use ibiki_core::{
    AssignmentStore, ClientId, InboundReply, Normalizer, PhoneNumber, RawReply, ReplyStore,
};
use ibiki_postgres::PostgresStore;
use sqlx::PgPool;
use tokio::runtime::Runtime;

const NUMBERS: i64 = 1_000_000;
const FIRST: i64 = 12_012_000_000; // +12012000000 …, canonical E.164
const SCHEMA: &str = "ibiki_bench";
const LEGACY: &str = "ibiki_bench_legacy";

fn number(i: i64) -> PhoneNumber {
    PhoneNumber::from_u64((FIRST + i) as u64).expect("15 digits at most")
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or(0)
}

/// Fills both schemas once; later runs reuse them.
async fn prepare(store: &PostgresStore) {
    let pool = store.pool();
    let assigned = count(pool, &format!("SELECT count(*) FROM {SCHEMA}.assignments")).await;
    if assigned < NUMBERS {
        println!("postgres bench: assigning {NUMBERS} numbers (once)");
        let fill = format!(
            "INSERT INTO {SCHEMA}.assignments (phone_number, client_id) \
             SELECT '+' || ({FIRST} + g)::text, 'client-' || (g / 5) \
             FROM generate_series(0, {NUMBERS} - 1) g ON CONFLICT DO NOTHING"
        );
        sqlx::query(&fill)
            .execute(pool)
            .await
            .expect("fill assignments");
        sqlx::query(&format!("ANALYZE {SCHEMA}.assignments"))
            .execute(pool)
            .await
            .expect("analyze");
    }
    let legacy = count(pool, &format!("SELECT count(*) FROM {LEGACY}.clients")).await;
    if legacy < NUMBERS / 5 {
        println!("postgres bench: building the text[] design (once)");
        for sql in [
            format!("DROP SCHEMA IF EXISTS {LEGACY} CASCADE"),
            format!("CREATE SCHEMA {LEGACY}"),
            format!(
                "CREATE TABLE {LEGACY}.clients (id text PRIMARY KEY, assigned_phone_numbers text[] NOT NULL)"
            ),
            format!(
                "INSERT INTO {LEGACY}.clients SELECT 'client-' || c, \
                 ARRAY(SELECT '+' || ({FIRST} + c * 5 + k)::text FROM generate_series(0, 4) k) \
                 FROM generate_series(0, {NUMBERS} / 5 - 1) c"
            ),
            format!(
                "CREATE INDEX clients_numbers_gin ON {LEGACY}.clients USING gin (assigned_phone_numbers)"
            ),
            format!("ANALYZE {LEGACY}.clients"),
        ] {
            sqlx::query(&sql)
                .execute(pool)
                .await
                .expect("legacy schema");
        }
    }
    let inserts = format!(
        "CREATE TABLE IF NOT EXISTS {LEGACY}.inserts \
         (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)"
    );
    sqlx::query(&inserts)
        .execute(pool)
        .await
        .expect("inserts table");
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("postgres bench SKIPPED: set DATABASE_URL to run it against a real server");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let store = rt.block_on(async {
        let store = PostgresStore::builder(url)
            .schema(SCHEMA)
            .max_connections(4)
            .connect()
            .await;
        let store = store.expect("connect to DATABASE_URL");
        store.migrate().await.expect("migrate");
        prepare(&store).await;
        store
    });
    let pool = store.pool().clone();
    let normalizer = Normalizer::new();
    let mut rng = Rng::new(42);
    let run = std::process::id();
    let sent = AtomicU64::new(0);

    let mut group = c.benchmark_group("postgres");
    group.bench_function("select_1", |b| {
        b.to_async(&rt).iter(|| async {
            let one: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&pool)
                .await
                .expect("select 1");
            black_box(one)
        })
    });
    // The floor of any durable write: one single-row INSERT and its commit
    // (with the server's synchronous_commit, an fsync of the WAL).
    let insert_sql = format!("INSERT INTO {LEGACY}.inserts (body) VALUES ($1)");
    group.bench_function("insert_commit", |b| {
        b.to_async(&rt).iter(|| {
            let (pool, sql) = (&pool, &insert_sql);
            async move {
                black_box(
                    sqlx::query(sql)
                        .bind("bench")
                        .execute(pool)
                        .await
                        .expect("insert"),
                )
            }
        })
    });
    group.bench_function("owner_lookup", |b| {
        b.to_async(&rt).iter(|| {
            let n = number(rng.below(NUMBERS as u64) as i64);
            let store = &store;
            async move { black_box(store.owner_of(n).await.expect("lookup")) }
        })
    });
    group.bench_function("receive", |b| {
        b.to_async(&rt).iter(|| {
            let to = number(rng.below(NUMBERS as u64) as i64).to_string();
            let id = format!("bench-{run}-{}", sent.fetch_add(1, Ordering::Relaxed));
            let raw = RawReply {
                message_id: Some(&id),
                from: "+15005550006",
                to: &to,
                body: "bench",
            };
            let reply = InboundReply::new(&normalizer, raw, time::OffsetDateTime::now_utc())
                .expect("reply");
            let store = &store;
            async move { black_box(store.receive(reply).await.expect("receive")) }
        })
    });
    let client = ClientId::new("bench-replace").expect("client");
    let sets: [Vec<PhoneNumber>; 2] = [
        (0..5).map(|k| number(NUMBERS + k)).collect(),
        (5..10).map(|k| number(NUMBERS + k)).collect(),
    ];
    let flips = AtomicU64::new(0);
    group.bench_function("replace_5_numbers", |b| {
        b.to_async(&rt).iter(|| {
            let set = &sets[(flips.fetch_add(1, Ordering::Relaxed) % 2) as usize];
            let (store, client) = (&store, &client);
            async move { black_box(store.replace_numbers(client, set).await.expect("replace")) }
        })
    });
    let legacy_sql =
        format!("SELECT id FROM {LEGACY}.clients WHERE $1 = ANY(assigned_phone_numbers)");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("legacy_text_array_any", |b| {
        b.to_async(&rt).iter(|| {
            let n = number(rng.below(NUMBERS as u64) as i64).to_string();
            let (pool, sql) = (&pool, &legacy_sql);
            async move {
                let owner: Option<String> = sqlx::query_scalar(sql)
                    .bind(n)
                    .fetch_optional(pool)
                    .await
                    .expect("legacy");
                black_box(owner)
            }
        })
    });
    group.finish();
    for bench in [
        "owner_lookup",
        "insert_commit",
        "receive",
        "replace_5_numbers",
    ] {
        print_ratio("postgres", bench, "select_1");
    }
    print_ratio("postgres", "receive", "insert_commit");
    print_ratio("postgres", "legacy_text_array_any", "owner_lookup");
}

criterion_group!(benches, postgres);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
