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
    if !written_by_this_run(&dir) {
        return None;
    }
    let text = std::fs::read_to_string(dir).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...
    let median = text.split("\"median\"").nth(1)?;
    let value = median.split("\"point_estimate\":").nth(1)?;
    value.split([',', '}']).next()?.trim().parse().ok()
}

/// Whether `file` was written after this process started: a group filtered
/// out of this run leaves an earlier run's estimates behind, which must not
/// be reported as this run's. Where the start time cannot be read (not
/// Linux), every file counts.
fn written_by_this_run(file: &std::path::Path) -> bool {
    let Ok(written) = std::fs::metadata(file).and_then(|m| m.modified()) else {
        return false;
    };
    process_start().is_none_or(|start| written >= start)
}

/// This process's start, from `/proc` (clock ticks after boot, assumed 100
/// per second as on every Linux build in use, and the boot time).
fn process_start() -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not.
    let ticks: u64 = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())?;
    // Whole seconds at both ends: one second early, never late.
    let start = boot + ticks / 100;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(start.saturating_sub(1)))
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_started_moments_ago() {
        let start = super::process_start().expect("/proc is readable");
        let age = SystemTime::now()
            .duration_since(start)
            .expect("started in the past");
        assert!(age < Duration::from_secs(600), "started {age:?} ago");
    }

    #[test]
    fn an_earlier_runs_file_is_not_this_runs() {
        let dir = std::env::temp_dir().join(format!("ibiki-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("estimates.json");
        std::fs::write(&file, "{}").expect("write");
        assert!(super::written_by_this_run(&file));
        let old = std::fs::File::options()
            .write(true)
            .open(&file)
            .expect("open");
        old.set_modified(SystemTime::now() - Duration::from_secs(86_400))
            .expect("set mtime");
        assert!(!super::written_by_this_run(&file) || super::process_start().is_none());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
