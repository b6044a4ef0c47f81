//! `MemoryStore::receive`, the webhook's store call: routed to an owner of
//! one of 1,000 assigned numbers, held for an unassigned one, and a retry
//! recognized as a duplicate. Run with and without the memory store's
//! `tracing` feature to see what its spans cost when no subscriber wants
//! them:
//!
//! ```sh
//! cargo bench -p ibiki-benches --bench receive
//! cargo bench -p ibiki-benches --bench receive --no-default-features
//! ```
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ibiki_benches::us_numbers;
use ibiki_core::{AssignmentStore, ClientId, InboundReply, Normalizer, RawReply, ReplyStore};
use ibiki_memory::MemoryStore;
use time::OffsetDateTime;

const ASSIGNED: usize = 1_000;
const PER_CLIENT: usize = 5;
/// Receives into one store before a fresh one, so the replies kept stay
/// within memory whatever the iteration count.
const PER_STORE: u64 = 100_000;

/// Polls a future that never waits (the memory store's calls) to completion.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn store(assigned: &[ibiki_core::PhoneNumber]) -> MemoryStore {
    let store = MemoryStore::new();
    for (i, chunk) in assigned.chunks(PER_CLIENT).enumerate() {
        let client = ClientId::new(format!("client-{i}")).expect("client id");
        now(store.replace_numbers(&client, chunk)).expect("assign");
    }
    store
}

/// Replies to `to`, each with a message id of its own.
fn replies(to: &[String], count: usize, prefix: &str) -> Vec<InboundReply> {
    let normalizer = Normalizer::new();
    let received = OffsetDateTime::UNIX_EPOCH;
    (0..count)
        .map(|i| {
            let id = format!("{prefix}{i}");
            let raw = RawReply {
                message_id: Some(&id),
                from: "+15005550006",
                to: &to[i % to.len()],
                body: "yes",
            };
            InboundReply::new(&normalizer, raw, received).expect("reply")
        })
        .collect()
}

/// Receives `iters` of `replies` (cycling, a fresh store every
/// [`PER_STORE`]), timing the receives only.
fn receive_all(
    assigned: &[ibiki_core::PhoneNumber],
    replies: &[InboundReply],
    iters: u64,
) -> Duration {
    let mut took = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let store = store(assigned);
        let round = (iters - done).min(PER_STORE);
        let inputs: Vec<InboundReply> = (0..round)
            .map(|i| replies[(i as usize) % replies.len()].clone())
            .collect();
        let started = Instant::now();
        for reply in inputs {
            let _ = black_box(now(store.receive(black_box(reply))).expect("receive"));
        }
        took += started.elapsed();
        done += round;
    }
    took
}

fn receive(c: &mut Criterion) {
    let numbers = us_numbers(ASSIGNED + 1_000, 3);
    let (assigned, unassigned) = numbers.split_at(ASSIGNED);
    let text = |numbers: &[ibiki_core::PhoneNumber]| -> Vec<String> {
        numbers.iter().map(ToString::to_string).collect()
    };
    // Ids repeat after this many, so the routed and held runs see distinct
    // ids within each store.
    let routed = replies(&text(assigned), PER_STORE as usize, "R");
    let held = replies(&text(unassigned), PER_STORE as usize, "H");
    let mut group = c.benchmark_group("receive");
    group.bench_function("routed", |b| {
        b.iter_custom(|iters| receive_all(assigned, &routed, iters));
    });
    group.bench_function("held", |b| {
        b.iter_custom(|iters| receive_all(assigned, &held, iters));
    });
    let store = store(assigned);
    let retry = routed[0].clone();
    let _ = now(store.receive(retry.clone())).expect("first copy");
    group.bench_function("duplicate", |b| {
        b.iter(|| black_box(now(store.receive(black_box(retry.clone()))).expect("receive")));
    });
    group.finish();
}

criterion_group!(benches, receive);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
