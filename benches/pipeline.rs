//! `cargo bench --bench pipeline`: the pipeline against real servers, as ratios (see
//! `harness.rs`). Run it through `bench/run`, which starts the servers.
//!
//! Environment: `VSS_TEST_VAULT_ADDR`, `VSS_TEST_VAULT_TOKEN`, `VSS_TEST_AWS_ENDPOINT`,
//! `VSS_TEST_PYTHON` (set by the server script); `VSS_BENCH_RUNS` (default 3).

mod harness;

use harness::{Env, Scale};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test discovery: nothing to list
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run bench/run"));
    let work = tempfile::tempdir().expect("a scratch directory");
    let env = Env {
        vault: var("VSS_TEST_VAULT_ADDR"),
        token: var("VSS_TEST_VAULT_TOKEN"),
        aws: std::env::var("VSS_TEST_AWS_ENDPOINT").ok(),
        vss: env!("CARGO_BIN_EXE_vss").into(),
        python: std::env::var("VSS_TEST_PYTHON").ok().map(Into::into),
        runs: std::env::var("VSS_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3),
        work: work.path().to_path_buf(),
        tag: format!("bench-{}", std::process::id()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/per_secret.py");
    let openbao = Scale { targets: 50, secrets: 200, keys: 10, sources: 4, depth: 5, parallel: 32 };
    let latency = Scale { targets: 10, secrets: 40, keys: 10, sources: 2, depth: 2, parallel: 32 };
    let moto = Scale { targets: 10, secrets: 100, keys: 10, sources: 1, depth: 1, parallel: 16 };
    let mut rows = Vec::new();
    runtime.block_on(async {
        eprintln!("OpenBao: {} targets x {} secrets, {} runs ...", openbao.targets, openbao.secrets, env.runs);
        rows.extend(harness::openbao(&env, openbao).await);
        eprintln!("20 ms latency: vss and the per-secret script ...");
        rows.extend(harness::latency(&env, latency, &script).await);
        eprintln!("moto Secrets Manager: {} targets x {} secrets ...", moto.targets, moto.secrets);
        rows.extend(harness::moto(&env, moto).await);
    });
    eprintln!("file store: 20,000 secrets ...");
    rows.extend(harness::file_store(&env, 20_000));
    println!("{}", harness::table(&rows));
}
