//! The pipeline benchmark at a tiny scale, in the default test run, so its code cannot
//! rot: every scenario runs once against the real servers and produces its table row.
#![cfg(all(feature = "aws", feature = "vault"))]

#[path = "../../benches/harness.rs"]
mod harness;

use harness::{Env, Scale};

#[tokio::test(flavor = "multi_thread")]
async fn every_benchmark_scenario_runs() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run tests/run"));
    let work = tempfile::tempdir().unwrap();
    let env = Env {
        vault: var("VSS_TEST_VAULT_ADDR"),
        token: var("VSS_TEST_VAULT_TOKEN"),
        aws: Some(var("VSS_TEST_AWS_ENDPOINT")),
        vss: env!("CARGO_BIN_EXE_vss").into(),
        python: Some(var("VSS_TEST_PYTHON").into()),
        runs: 1,
        work: work.path().to_path_buf(),
        tag: format!("smoke-{}", std::process::id()),
    };
    let tiny = Scale { targets: 3, secrets: 4, keys: 2, sources: 2, depth: 2, parallel: 4 };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/per_secret.py");
    let mut rows = harness::openbao(&env, tiny).await;
    rows.extend(harness::latency(&env, tiny, &script).await);
    rows.extend(harness::moto(&env, tiny).await);
    rows.extend(harness::file_store(&env, 50));
    let table = harness::table(&rows);
    assert_eq!(rows.len(), 4 + 1 + 4 + 2, "{table}");
    // The no-op re-runs write nothing: the one property that holds at any scale.
    for row in rows.iter().filter(|r| r.scenario.contains("no-op")) {
        assert!(row.notes.starts_with("writes 0;") || row.notes == "writes 0", "{table}");
    }
    assert!(rows.iter().all(|r| !r.vss.is_empty() && r.vss.iter().all(|s| *s > 0.0)), "{table}");
}
