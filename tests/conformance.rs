//! The store conformance suite against the `file` store, in each of its layouts.

use vss::store::stats::Stats;
use vss::store::{AnyStore, OpenContext, StoreConfig};

async fn file_store(dir: &std::path::Path, path: &str) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(serde_json::json!({"file": {"path": path}})).unwrap();
    AnyStore::open(&config, &OpenContext { base_dir: dir, stats: &Stats::default() }).unwrap()
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
