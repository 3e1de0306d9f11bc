//! In-memory microbenchmarks: deep merge and diff of 100,000 secrets x 10 keys, and
//! config load + graph of 2,000 targets. Target: merge + diff of 100k secrets < 1 s.

mod data;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use vss::diff::{DiffOptions, diff};
use vss::merge::{MergeOptions, merge_all};
use vss::secret::{LiveSecret, LiveState};

fn merge_and_diff(c: &mut Criterion) {
    let base = data::secrets(100_000, 10, "base");
    let layer = data::overlay(&base, 10);
    let live: LiveState =
        base.iter().map(|(p, v)| (p.clone(), LiveSecret::with_value(v.clone(), Some("T".into())))).collect();
    let mut group = c.benchmark_group("100k secrets x 10 keys");
    group.sample_size(10);
    group.bench_function("merge", |b| {
        b.iter(|| black_box(merge_all(base.clone(), [&layer], MergeOptions::default())));
    });
    let desired = merge_all(base.clone(), [&layer], MergeOptions::default());
    group.bench_function("diff", |b| {
        b.iter(|| {
            black_box(diff(&live, &desired, DiffOptions { delete_orphans: true, owner: "T", fingerprints: None }))
        });
    });
    group.bench_function("merge + diff", |b| {
        b.iter(|| {
            let desired = merge_all(base.clone(), [&layer], MergeOptions::default());
            black_box(diff(&live, &desired, DiffOptions { delete_orphans: true, owner: "T", fingerprints: None }))
        });
    });
    group.finish();
}

fn config_load(c: &mut Criterion) {
    let text = data::config_text(2_000, 20, 5);
    let mut group = c.benchmark_group("config");
    group.sample_size(20);
    group.bench_function("load + graph, 2,000 targets", |b| {
        b.iter(|| black_box(vss::config::load_str("bench.yaml", text.clone(), Path::new("."), &|_| None).unwrap()));
    });
    // Loading is linear: 40,000 targets (target: under 2 s).
    let large = data::config_text(40_000, 20, 5);
    group.sample_size(10);
    group.bench_function("load + graph, 40,000 targets", |b| {
        b.iter(|| black_box(vss::config::load_str("bench.yaml", large.clone(), Path::new("."), &|_| None).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, merge_and_diff, config_load);
criterion_main!(benches);
