//! Admin normalization of a 100-number list: all in one region (national
//! format), and spread over 30 regions (international format), beside the
//! `phonenumber` crate's parser on the same 30-region list, whose 100-entry
//! global regex cache thrashes once input mixes regions.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use ibiki_benches::print_ratio;
use ibiki_core::{Normalizer, PhoneNumbersInput};
use phonenumber::metadata::DATABASE;

const REGIONS: [&str; 30] = [
    "US", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "CH", "AT", "SE", "NO", "DK", "FI", "PL", "PT",
    "IE", "RU", "UA", "TR", "JP", "CN", "IN", "AU", "NZ", "BR", "AR", "MX", "ZA", "SG",
];

/// Example numbers of the region in international format (`+CC NSN`),
/// varied in their last digit.
fn examples(region: &str) -> Vec<String> {
    let meta = DATABASE.by_id(region).expect("region in metadata");
    let kinds = [phonenumber::Type::FixedLine, phonenumber::Type::Mobile];
    let base: Vec<String> = kinds
        .iter()
        .filter_map(|&k| meta.descriptors().get(k)?.example().map(str::to_owned))
        .collect();
    (0..10)
        .flat_map(|d| {
            base.iter()
                .map(move |ex| format!("+{} {}{d}", meta.country_code(), &ex[..ex.len() - 1]))
        })
        .collect()
}

fn mixed_list(normalizer: &Normalizer) -> Vec<String> {
    let per_region: Vec<Vec<String>> = REGIONS
        .iter()
        .map(|r| {
            examples(r)
                .into_iter()
                .filter(|n| normalizer.normalize(n).is_ok())
                .collect()
        })
        .collect();
    // Round-robin over the regions, each number once, until 100.
    let mut list = Vec::new();
    for round in 0..per_region.iter().map(Vec::len).max().unwrap_or(0) {
        list.extend(
            per_region
                .iter()
                .filter_map(|numbers| numbers.get(round).cloned()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    list.retain(|n| seen.insert(normalizer.normalize(n).ok()));
    list.truncate(100);
    list
}

fn normalize(c: &mut Criterion) {
    let us = Normalizer::new().with_default_region("US".parse().expect("US"));
    let one_region: Vec<String> = (0..100)
        .map(|i| format!("(415) 555-{:04}", 100 + i))
        .collect();
    let mixed = mixed_list(&Normalizer::new());
    let one_input = PhoneNumbersInput::List(one_region.clone());
    let mixed_input = PhoneNumbersInput::List(mixed.clone());
    assert_eq!(us.normalize_list(&one_input).map(|v| v.len()), Ok(100));
    assert_eq!(
        Normalizer::new()
            .normalize_list(&mixed_input)
            .map(|v| v.len()),
        Ok(100)
    );

    let mut group = c.benchmark_group("normalize_list");
    group.bench_function("ibiki_one_region", |b| {
        b.iter(|| black_box(us.normalize_list(black_box(&one_input))))
    });
    let plain = Normalizer::new();
    group.bench_function("ibiki_30_regions", |b| {
        b.iter(|| black_box(plain.normalize_list(black_box(&mixed_input))))
    });
    group.bench_function("phonenumber_one_region", |b| {
        b.iter(|| {
            for n in &one_region {
                let p = phonenumber::parse(Some(phonenumber::country::Id::US), black_box(n)).ok();
                black_box(p.map(|p| p.is_valid()));
            }
        })
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("phonenumber_30_regions", |b| {
        b.iter(|| {
            for n in &mixed {
                let p = phonenumber::parse(None, black_box(n)).ok();
                black_box(p.map(|p| p.is_valid()));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, normalize);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratio("normalize_list", "ibiki_30_regions", "ibiki_one_region");
    print_ratio(
        "normalize_list",
        "phonenumber_30_regions",
        "ibiki_30_regions",
    );
}
