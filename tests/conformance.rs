//! The store conformance suite against the `file` store, in each of its layouts. (Vault
//! runs it against a real server in `tests/vault.rs`.)

use vss::store::stats::Stats;
use vss::store::{AnyStore, OpenContext, Sessions, StoreConfig, StoreDefaults};

async fn file_store(dir: &std::path::Path, path: &str) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(serde_json::json!({"file": {"path": path}})).unwrap();
    let (stats, defaults, sessions) = (Stats::default(), StoreDefaults::default(), Sessions::default());
    let ctx = OpenContext { base_dir: dir, stats: &stats, defaults: &defaults, sessions: &sessions };
    AnyStore::open(&config, &ctx).await.unwrap()
}

#[tokio::test]
async fn file_store_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    vss::store::conformance::run(&file_store(dir.path(), "secrets").await).await;
}

#[tokio::test]
async fn file_store_single_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    vss::store::conformance::run(&file_store(dir.path(), "secrets.yaml").await).await;
}

#[tokio::test]
async fn file_store_single_json_file() {
    let dir = tempfile::tempdir().unwrap();
    vss::store::conformance::run(&file_store(dir.path(), "nested/secrets.json").await).await;
}
