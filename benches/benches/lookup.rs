//! Owner lookup in the memory store at 1k, 100k and 1M assigned numbers (five
//! per client), random hits and misses, canonicalization of the `to` string
//! included, beside a plain `HashMap<String, String>` and beside the replaced
//! system's approach (scan every client's list of numbers).
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group};
use ibiki_benches::{print_ratio, resident_bytes, us_numbers};
use ibiki_core::{AssignmentStore, ClientId, Normalizer, PhoneNumber};
use ibiki_memory::MemoryStore;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const PER_CLIENT: usize = 5;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn memory_store(numbers: &[PhoneNumber]) -> MemoryStore {
    let store = MemoryStore::new();
    block_on(async {
        for (i, chunk) in numbers.chunks(PER_CLIENT).enumerate() {
            let client = ClientId::new(format!("client-{i}")).expect("client id");
            store.replace_numbers(&client, chunk).await.expect("assign");
        }
    });
    store
}

/// Query strings: `count` E.164 texts of `numbers`, in random order.
fn queries(numbers: &[PhoneNumber], count: usize, seed: u64) -> Vec<String> {
    let mut rng = ibiki_benches::Rng::new(seed);
    (0..count)
        .map(|_| numbers[rng.below(numbers.len() as u64) as usize].to_string())
        .collect()
}

fn lookup(c: &mut Criterion) {
    let normalizer = Normalizer::new();
    for size in SIZES {
        let all = us_numbers(size + 10_000, size as u64);
        let (assigned, unassigned) = all.split_at(size);
        let store = memory_store(assigned);
        let hits = queries(assigned, 4096, 7);
        let misses = queries(unassigned, 4096, 11);
        let mut group = c.benchmark_group(format!("lookup_{size}"));
        group.bench_function("ibiki_hit", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % hits.len();
                let n = normalizer.canonicalize_inbound(black_box(&hits[i])).ok();
                black_box(n.and_then(|n| store.owner_of_sync(n)))
            })
        });
        group.bench_function("ibiki_miss", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % misses.len();
                let n = normalizer.canonicalize_inbound(black_box(&misses[i])).ok();
                black_box(n.and_then(|n| store.owner_of_sync(n)))
            })
        });
        let baseline: HashMap<String, String> = assigned
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), format!("client-{}", i / PER_CLIENT)))
            .collect();
        group.bench_function("hashmap_string_hit", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % hits.len();
                black_box(baseline.get(black_box(&hits[i])).cloned())
            })
        });
        drop(baseline);
        let replaced: Vec<(String, Vec<String>)> = assigned
            .chunks(PER_CLIENT)
            .enumerate()
            .map(|(i, c)| {
                (
                    format!("client-{i}"),
                    c.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(2));
        group.bench_with_input(
            BenchmarkId::new("scan_every_client_hit", size),
            &replaced,
            |b, r| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % hits.len();
                    let to = black_box(&hits[i]);
                    black_box(
                        r.iter()
                            .find(|(_, numbers)| numbers.iter().any(|n| n == to))
                            .map(|(c, _)| c.clone()),
                    )
                })
            },
        );
        group.finish();
        print_ratio(&format!("lookup_{size}"), "hashmap_string_hit", "ibiki_hit");
    }
}

/// Resident memory the store adds per assigned number, at 1M numbers.
fn bytes_per_number() {
    let numbers = us_numbers(1_000_000, 99);
    let before = resident_bytes();
    let store = memory_store(&numbers);
    let after = resident_bytes();
    let per = (after.saturating_sub(before)) as f64 / numbers.len() as f64;
    println!(
        "memory store at 1M numbers ({PER_CLIENT} per client): {per:.1} resident bytes per assigned number"
    );
    black_box(&store);
}

criterion_group!(benches, lookup);

fn main() {
    bytes_per_number();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
