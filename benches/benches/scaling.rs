//! The PostgreSQL store at 1M and at 10M assigned numbers (each with as many
//! stored replies, five per inbox), in the same run: owner lookup, receive and
//! an inbox page, beside a prepared `SELECT 1` round trip. With
//! `IBIKI_SCALE_PRUNE=1` it then prunes the 10M schema's replies down to the
//! newest ones through `ReplyStore::prune_delivered`, timing it, and measures
//! the same three again.
//!
//! Needs `DATABASE_URL`; without it, prints that it skipped. The data lives in
//! the schemas `ibiki_scale_1m` and `ibiki_scale_10m`, created by the store's
//! migrations and filled on first run with `INSERT … SELECT` from
//! `generate_series` (the only step that bypasses the store's API: going
//! through it would take hours at 10M), then reused. They take about 5 GB:
//! drop them with `DROP SCHEMA ibiki_scale_1m, ibiki_scale_10m CASCADE`.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{BenchmarkGroup, Criterion, criterion_group, measurement::WallTime};
use ibiki_benches::{Rng, print_ratio};
use ibiki_core::{
    AssignmentStore, ClientId, InboundReply, Normalizer, PageRequest, PhoneNumber, RawReply,
    ReplyStore,
};
use ibiki_postgres::PostgresStore;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::runtime::Runtime;

const FIRST: i64 = 12_012_000_000; // +12012000000 …, canonical E.164
/// Numbers per client, and so replies per inbox.
const PER_CLIENT: i64 = 5;
/// Loaded reply `g` was received and delivered at `EPOCH + g` ms
/// (2026-01-01 00:00 UTC, as the loading SQL says).
const EPOCH: i64 = 1_767_225_600;
/// Rows per loading statement.
const CHUNK: i64 = 1_000_000;

struct Scale {
    label: &'static str,
    schema: &'static str,
    numbers: i64,
}

const SCALES: [Scale; 2] = [
    Scale {
        label: "1M",
        schema: "ibiki_scale_1m",
        numbers: 1_000_000,
    },
    Scale {
        label: "10M",
        schema: "ibiki_scale_10m",
        numbers: 10_000_000,
    },
];

fn number(i: i64) -> PhoneNumber {
    PhoneNumber::from_u64((FIRST + i) as u64).expect("15 digits at most")
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or(0)
}

async fn run(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.expect(sql);
}

/// Numbers `0..n`, five per client; reply `g` goes to client `g % clients`,
/// its `g / clients`-th number, at position `g / clients + 1`: every inbox
/// holds five replies, received over the whole time range.
async fn fill(store: &PostgresStore, scale: &Scale) {
    let (pool, s, n) = (store.pool(), scale.schema, scale.numbers);
    let clients = n / PER_CLIENT;
    let assigned = count(pool, &format!("SELECT count(*) FROM {s}.assignments")).await;
    let replies = count(pool, &format!("SELECT count(*) FROM {s}.replies")).await;
    if assigned >= n && replies >= n {
        return;
    }
    for start in (0..n).step_by(CHUNK as usize) {
        let end = (start + CHUNK).min(n) - 1;
        let started = Instant::now();
        run(
            pool,
            &format!(
                "INSERT INTO {s}.assignments (phone_number, client_id) \
                 SELECT '+' || ({FIRST} + g)::text, 'client-' || (g / {PER_CLIENT}) \
                 FROM generate_series({start}, {end}) g ON CONFLICT DO NOTHING"
            ),
        )
        .await;
        run(
            pool,
            &format!(
                "INSERT INTO {s}.replies (message_id, to_number, from_address, body, \
                 received_at, client_id, delivery_seq, delivered_at) \
                 SELECT 'SM' || md5(g::text), \
                 '+' || ({FIRST} + (g % {clients}) * {PER_CLIENT} + g / {clients})::text, \
                 '+15005550006', 'Yes, Tuesday at 3 works for me. Thanks!', t, \
                 'client-' || (g % {clients}), g / {clients} + 1, t \
                 FROM generate_series({start}, {end}) g, \
                 LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + g * interval '1 ms' AS t) x \
                 ON CONFLICT DO NOTHING"
            ),
        )
        .await;
        println!(
            "scaling bench: {}: rows {start}..={end} loaded in {:.1} s",
            scale.label,
            started.elapsed().as_secs_f64()
        );
    }
    run(pool, &format!("VACUUM ANALYZE {s}.assignments")).await;
    run(pool, &format!("VACUUM ANALYZE {s}.replies")).await;
}

/// Table and index sizes, in MB and bytes per row.
async fn report_sizes(pool: &PgPool, scale: &Scale, label: &str) {
    let sql = format!(
        "SELECT c.relname::text, pg_total_relation_size(c.oid), pg_relation_size(c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{}' AND c.relkind IN ('r', 'i') ORDER BY c.relname",
        scale.schema
    );
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&sql).fetch_all(pool).await.expect("sizes");
    let replies = count(
        pool,
        &format!("SELECT count(*) FROM {}.replies", scale.schema),
    )
    .await;
    println!(
        "scaling bench: sizes at {label} ({} numbers, {replies} replies):",
        scale.numbers
    );
    for (name, total, own) in rows {
        println!(
            "  {name:32} total {:>8.1} MB  own {:>8.1} MB",
            total as f64 / 1e6,
            own as f64 / 1e6
        );
    }
}

async fn open(url: &str, scale: &Scale) -> PostgresStore {
    let store = PostgresStore::builder(url)
        .schema(scale.schema)
        .max_connections(4)
        .connect()
        .await
        .expect("connect to DATABASE_URL");
    store.migrate().await.expect("migrate");
    fill(&store, scale).await;
    report_sizes(store.pool(), scale, scale.label).await;
    store
}

/// Owner lookup, receive and an inbox page at `label`, on random numbers
/// and clients of `numbers`.
fn measure(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    store: &PostgresStore,
    numbers: i64,
    label: &str,
) {
    let normalizer = Normalizer::new();
    let mut rng = Rng::new(42);
    let run = std::process::id();
    let sent = AtomicU64::new(0);
    group.bench_function(format!("owner_lookup_{label}"), |b| {
        b.to_async(rt).iter(|| {
            let n = number(rng.below(numbers as u64) as i64);
            async move { black_box(store.owner_of(n).await.expect("lookup")) }
        })
    });
    group.bench_function(format!("receive_{label}"), |b| {
        b.to_async(rt).iter(|| {
            let to = number(rng.below(numbers as u64) as i64).to_string();
            let id = format!(
                "scale-{run}-{label}-{}",
                sent.fetch_add(1, Ordering::Relaxed)
            );
            let raw = RawReply {
                message_id: Some(&id),
                from: "+15005550006",
                to: &to,
                body: "bench",
            };
            let reply =
                InboundReply::new(&normalizer, raw, OffsetDateTime::now_utc()).expect("reply");
            async move { black_box(store.receive(reply).await.expect("receive")) }
        })
    });
    let page = PageRequest::first(50);
    group.bench_function(format!("inbox_page_{label}"), |b| {
        b.to_async(rt).iter(|| {
            let client = rng.below((numbers / PER_CLIENT) as u64);
            let client = ClientId::new(format!("client-{client}")).expect("client");
            let page = &page;
            async move { black_box(store.inbox(&client, page).await.expect("inbox")) }
        })
    });
}

/// Prunes the 10M schema's replies delivered before the newest 1M, timing
/// it, and vacuums: what an operator's retention job does.
fn prune(rt: &Runtime, store: &PostgresStore, scale: &Scale) {
    let keep = scale.numbers / 10;
    let before = OffsetDateTime::from_unix_timestamp(EPOCH).expect("2026")
        + time::Duration::milliseconds(scale.numbers - keep);
    let limit = 10_000;
    let started = Instant::now();
    let mut deleted = 0;
    let mut calls = 0;
    rt.block_on(async {
        loop {
            let n = store
                .prune_delivered(before, limit)
                .await
                .expect("prune_delivered");
            deleted += n;
            calls += 1;
            if n == 0 {
                break;
            }
        }
    });
    let pruned = started.elapsed();
    println!(
        "scaling bench: pruned {deleted} replies in {calls} calls of at most {limit}: \
         {:.1} s, {:.0} replies/s",
        pruned.as_secs_f64(),
        deleted as f64 / pruned.as_secs_f64()
    );
    let started = Instant::now();
    rt.block_on(run(
        store.pool(),
        &format!("VACUUM ANALYZE {}.replies", scale.schema),
    ));
    println!(
        "scaling bench: VACUUM ANALYZE after pruning: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn scaling(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("scaling bench SKIPPED: set DATABASE_URL to run it against a real server");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let stores: Vec<PostgresStore> = SCALES
        .iter()
        .map(|scale| rt.block_on(open(&url, scale)))
        .collect();
    let pool = stores[0].pool().clone();

    let mut group = c.benchmark_group("scaling");
    group.bench_function("select_1", |b| {
        b.to_async(&rt).iter(|| async {
            let one: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&pool)
                .await
                .expect("select 1");
            black_box(one)
        })
    });
    for (scale, store) in SCALES.iter().zip(&stores) {
        measure(&mut group, &rt, store, scale.numbers, scale.label);
    }
    let pruning = std::env::var("IBIKI_SCALE_PRUNE").is_ok_and(|v| v == "1");
    if pruning {
        prune(&rt, &stores[1], &SCALES[1]);
        rt.block_on(report_sizes(stores[1].pool(), &SCALES[1], "10M, pruned"));
        measure(&mut group, &rt, &stores[1], SCALES[1].numbers, "10M_pruned");
    }
    group.finish();
    for bench in ["owner_lookup", "receive", "inbox_page"] {
        print_ratio("scaling", &format!("{bench}_1M"), "select_1");
        print_ratio("scaling", &format!("{bench}_10M"), &format!("{bench}_1M"));
        if pruning {
            print_ratio(
                "scaling",
                &format!("{bench}_10M_pruned"),
                &format!("{bench}_10M"),
            );
        }
    }
}

criterion_group!(benches, scaling);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
