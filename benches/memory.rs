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
    // The data size: the JSON of both maps, `{"path":value,...}`, counted without holding it.
    let json_size = |map: &vss::secret::SecretMap| -> u64 {
        let entries: usize =
            map.iter().map(|(p, v)| serde_json::to_string(p.as_str()).unwrap().len() + 1 + v.canonical().len()).sum();
        (entries + map.len().saturating_sub(1) + 2) as u64
    };
    let data_bytes = json_size(&base) + json_size(&layer);
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
