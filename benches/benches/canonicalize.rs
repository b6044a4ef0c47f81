//! Inbound canonicalization: ibiki's path for an already-canonical `to`
//! beside a full `phonenumber` parse and E.164 format of the same string.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use ibiki_benches::print_ratio;
use ibiki_core::Normalizer;

const INPUTS: [&str; 4] = [
    "+14155550100",
    "+442079460958",
    "+5511961234567",
    "+81312345678",
];

fn canonicalize(c: &mut Criterion) {
    let normalizer = Normalizer::new();
    let mut group = c.benchmark_group("canonicalize");
    group.bench_function("ibiki_fast_path", |b| {
        b.iter(|| {
            for s in INPUTS {
                black_box(normalizer.canonicalize_inbound(black_box(s)).ok());
            }
        })
    });
    group.bench_function("phonenumber_parse_format", |b| {
        b.iter(|| {
            for s in INPUTS {
                let parsed = phonenumber::parse(None, black_box(s)).ok();
                black_box(parsed.map(|p| p.format().mode(phonenumber::Mode::E164).to_string()));
            }
        })
    });
    group.bench_function("ibiki_formatted_input", |b| {
        b.iter(|| {
            black_box(
                normalizer
                    .canonicalize_inbound(black_box("+1 (415) 555-0100"))
                    .ok(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, canonicalize);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratio(
        "canonicalize",
        "phonenumber_parse_format",
        "ibiki_fast_path",
    );
}
