//! The conformance suite every store passes: missing read, write, read back, update, list,
//! delete, and the ownership marker. It reads the store's [`Capabilities`] and skips
//! exactly what the store declares it cannot do: reading values back, holding scalar
//! values, recording a marker per secret. It runs against the `file` store in each layout
//! here, against the real servers in `vault.rs` and `aws.rs` (including `s3` and Vault
//! merge bundles), and against the contract-checked test servers in `github.rs`, `gcp.rs`
//! and `kubernetes.rs`.
//!
//! [`Capabilities`]: vss::store::Capabilities

use serde_json::json;
use vss::error::ErrorKind;
use vss::secret::{LiveSecret, LiveValue, SecretPath, SecretValue};
use vss::store::stats::Stats;
use vss::store::{AnyStore, OpenContext, Sessions, Store, StoreConfig, StoreDefaults, ValueShape};

/// A test path as the store names it: flat stores get one upper-case name
/// (`conformance/app/db` is `CONFORMANCE_APP_DB`).
fn path_in(flat: bool, p: &str) -> SecretPath {
    let name = if flat { p.replace('/', "_").to_uppercase() } else { p.to_string() };
    SecretPath::parse(&name).expect("valid test path")
}

/// Runs every check against an empty store location. `bundle` is the target when the
/// location is a merge bundle: everything in it belongs to that target, whoever writes.
/// Panics, naming the check, when the store breaks the contract.
pub async fn run(store: &AnyStore, bundle: Option<&str>) {
    let kind = store.kind();
    let caps = store.capabilities();
    let flat = caps.value_shape == ValueShape::FlatStrings;
    let path = |p: &str| path_in(flat, p);
    // A store that records its writes (a write-only store's ledger) does so once the
    // target's changes are applied, as the engine calls it.
    let settle = || async {
        store.finish().await.unwrap_or_else(|e| panic!("[{kind}] recording the writes failed: {e}"));
    };
    let owner =
        |writer: &'static str| -> Option<&str> { if !caps.ownership { None } else { Some(bundle.unwrap_or(writer)) } };
    // What a read must say of a value that was written.
    let check = |read: Option<LiveSecret>, written: &SecretValue, what: &str| {
        let read = read.unwrap_or_else(|| panic!("[{kind}] {what}: a written secret must read back"));
        match &read.value {
            LiveValue::Value(value) => {
                assert!(caps.reads_values, "[{kind}] {what}: a store that declares unreadable values returned one");
                assert!(value == written, "[{kind}] {what}: the value read back differs from the value written");
            }
            LiveValue::Fingerprint(fingerprint) => {
                let fingerprints =
                    store.fingerprints().unwrap_or_else(|| panic!("[{kind}] fingerprints without a key"));
                assert_eq!(
                    *fingerprint,
                    fingerprints.fingerprint_secret(written),
                    "[{kind}] {what}: the recorded fingerprint"
                );
            }
            other => assert!(!caps.reads_values, "[{kind}] {what}: a readable store returned {other:?}"),
        }
        read
    };
    let object = |value: serde_json::Value| match caps.value_shape {
        ValueShape::FlatStrings => SecretValue::new(json!(value.to_string())),
        // Held key by key as text: written as the store holds it, so it reads back the same.
        ValueShape::TextMap => caps.normalize(&SecretValue::new(value)),
        ValueShape::Any | ValueShape::Object | ValueShape::ObjectOrText => SecretValue::new(value),
    };

    let listed = store.list().await.unwrap_or_else(|e| panic!("[{kind}] list of an empty location failed: {e}"));
    assert!(listed.is_empty(), "[{kind}] the location must start empty, found {listed:?}");

    // A missing secret is None, not an error.
    let missing =
        store.read(&path("conformance/missing")).await.unwrap_or_else(|e| panic!("[{kind}] missing read failed: {e}"));
    assert!(missing.is_none(), "[{kind}] a missing secret must read as None");

    // Write, then read back the same value with the owner marker.
    let value = object(json!({"user": "app", "port": 5432, "nested": {"list": [1, "two"]}, "flag": true}));
    store
        .write(&path("conformance/app/db"), &value, "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    settle().await;
    let read = store.read(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
    let read = check(read, &value, "write");
    assert_eq!(read.owner.as_deref(), owner("Staging"), "[{kind}] the ownership marker must name the target");

    // Update replaces the value; the owner can change hands.
    let updated = object(json!({"user": "app", "port": 6432}));
    store
        .write(&path("conformance/app/db"), &updated, "Production")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] update failed: {e}"));
    settle().await;
    let read = store
        .read(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] read after update failed: {e}"));
    let read = check(read, &updated, "update");
    assert_eq!(read.owner.as_deref(), owner("Production"), "[{kind}] the marker must follow the last writer");

    // List returns every path below the location, sorted, and nothing else.
    store
        .write(&path("conformance/app/api"), &object(json!({"key": "k"})), "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    // A scalar secret, where the store can hold one; elsewhere it must be refused clearly.
    let scalar = SecretValue::new(json!("scalar secret"));
    let top = path("conformance/top");
    let objects_only = matches!(caps.value_shape, ValueShape::Object | ValueShape::TextMap);
    if objects_only {
        let refused = store.write(&top, &scalar, "Staging").await;
        assert!(
            refused.as_ref().is_err_and(|e| e.kind() == ErrorKind::Invalid),
            "[{kind}] a scalar must be refused as invalid"
        );
        let object = SecretValue::new(json!({"value": "scalar secret"}));
        store.write(&top, &object, "Staging").await.unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    } else {
        store.write(&top, &scalar, "Staging").await.unwrap_or_else(|e| panic!("[{kind}] scalar write failed: {e}"));
    }
    settle().await;
    let listed: Vec<String> = store
        .list()
        .await
        .unwrap_or_else(|e| panic!("[{kind}] list failed: {e}"))
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected: Vec<String> =
        ["conformance/app/api", "conformance/app/db", "conformance/top"].map(|p| path(p).to_string()).to_vec();
    assert_eq!(listed, expected, "[{kind}] list must return every path, sorted");
    if !objects_only {
        let read = store.read(&top).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
        check(read, &scalar, "a scalar secret");
    }

    // Delete removes the secret and its marker; deleting again is not an error.
    store.delete(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] delete failed: {e}"));
    store
        .delete(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] deleting a missing secret must succeed: {e}"));
    settle().await;
    let gone = store
        .read(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] read after delete failed: {e}"));
    assert!(gone.is_none(), "[{kind}] a deleted secret must be gone");
    store
        .write(&path("conformance/app/db"), &value, "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] re-create failed: {e}"));
    settle().await;
    let again = store.read(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
    assert_eq!(
        again.and_then(|s| s.owner).as_deref(),
        owner("Staging"),
        "[{kind}] a re-created secret carries the new marker"
    );

    for p in ["conformance/app/db", "conformance/app/api", "conformance/top"] {
        store.delete(&path(p)).await.unwrap_or_else(|e| panic!("[{kind}] cleanup delete failed: {e}"));
    }
    settle().await;
    let listed = store.list().await.unwrap_or_else(|e| panic!("[{kind}] list failed: {e}"));
    assert!(listed.is_empty(), "[{kind}] after deleting everything the location must list empty, found {listed:?}");
}

async fn file_store(dir: &std::path::Path, path: &str) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(serde_json::json!({"file": {"path": path}})).unwrap();
    let (stats, defaults, sessions) = (Stats::default(), StoreDefaults::default(), Sessions::default());
    let ctx =
        OpenContext { base_dir: dir, stats: &stats, defaults: &defaults, sessions: &sessions, fingerprints: None };
    AnyStore::open(&config, &ctx, None).await.unwrap()
}

#[tokio::test]
async fn file_store_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    run(&file_store(dir.path(), "secrets").await, None).await;
}

#[tokio::test]
async fn file_store_single_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    run(&file_store(dir.path(), "secrets.yaml").await, None).await;
}

#[tokio::test]
async fn file_store_single_json_file() {
    let dir = tempfile::tempdir().unwrap();
    run(&file_store(dir.path(), "nested/secrets.json").await, None).await;
}
