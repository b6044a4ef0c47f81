//! Shared pieces of the benchmarks: deterministic inputs, and the ratios each
//! benchmark prints from the estimates criterion wrote in the same run.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use ibiki_core::PhoneNumber;

/// A small deterministic generator (xorshift64*), so every run measures the
/// same inputs without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// `count` distinct US numbers, `+1 2XX 5XX XXXX` style, in random order.
pub fn us_numbers(count: usize, seed: u64) -> Vec<PhoneNumber> {
    let mut rng = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let area = 201 + rng.below(700);
        let exchange = 201 + rng.below(700);
        let line = rng.below(10_000);
        let value = 10_000_000_000 + area * 10_000_000 + exchange * 10_000 + line;
        if seen.insert(value) {
            out.extend(PhoneNumber::from_u64(value));
        }
    }
    out
}

/// Resident memory of this process, in bytes (Linux; 0 elsewhere).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The median criterion measured for `group/bench` in this run, in ns.
pub fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let dir = criterion_dir()
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(dir).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...
    let median = text.split("\"median\"").nth(1)?;
    let value = median.split("\"point_estimate\":").nth(1)?;
    value.split([',', '}']).next()?.trim().parse().ok()
}

fn criterion_dir() -> PathBuf {
    if let Ok(home) = std::env::var("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// Prints `a / b` (how many times slower `a` is than `b`) from this run's medians.
pub fn print_ratio(group: &str, slow: &str, fast: &str) {
    match (median_ns(group, slow), median_ns(group, fast)) {
        (Some(s), Some(f)) if f > 0.0 => {
            println!(
                "ratio {group}: {slow} / {fast} = {:.1}x ({s:.1} ns vs {f:.1} ns)",
                s / f
            )
        }
        _ => println!("ratio {group}: {slow} / {fast}: no estimates (filtered out?)"),
    }
}
