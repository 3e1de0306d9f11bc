//! Peak memory of merging and diffing 100,000 secrets x 10 keys, compared with the size of
//! the data (its JSON). Target: peak RSS < 3x the data size. Linux only (reads
//! /proc/self/status); each step's resident memory is printed, to show where it goes.

mod data;

use vss::diff::{DiffOptions, diff};
use vss::merge::{MergeOptions, merge_all};
use vss::secret::{LiveSecret, LiveState};

fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Counts bytes written, to size JSON without holding it.
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn main() {
    let baseline = kib("VmRSS:") * 1024;
    let step = |name: &str| println!("  after {name:<28} RSS {:>7.1} MiB", mib(kib("VmRSS:") * 1024 - baseline));
    let base = data::secrets(100_000, 10, "base");
    step("the source (100k x 10 keys)");
    let layer = data::overlay(&base, 10);
    step("the overlay (10k secrets)");
    let mut count = Count(0);
    serde_json::to_writer(&mut count, &base).unwrap();
    serde_json::to_writer(&mut count, &layer).unwrap();
    let data_bytes = count.0;
    let live: LiveState =
        base.iter().map(|(p, v)| (p.clone(), LiveSecret::with_value(v.clone(), Some("T".into())))).collect();
    step("the live state");
    let desired = merge_all(base, [&layer], MergeOptions::default());
    step("the merge");
    let plan = diff(&live, &desired, DiffOptions { delete_orphans: true, owner: "T", fingerprints: None });
    step("the diff");
    let peak = kib("VmHWM:") * 1024 - baseline;
    println!("changes: {}", plan.changes.len());
    println!("data (JSON of the inputs): {:.1} MiB", mib(data_bytes));
    println!("peak RSS over baseline: {:.1} MiB", mib(peak));
    println!("ratio peak / data: {:.2} (target < 3)", peak as f64 / data_bytes as f64);
}
