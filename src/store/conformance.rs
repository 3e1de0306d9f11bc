//! The conformance suite every store passes: missing read, write, read back, update, list,
//! delete, and the ownership marker. It runs against the `file` store in the unit tests and
//! against each real server in the integration tests.
//!
//! ```no_run
//! # async fn example(store: vss::store::AnyStore) {
//! vss::store::conformance::run(&store).await; // `store` must start empty
//! # }
//! ```

use serde_json::json;

use crate::secret::{SecretPath, SecretValue};
use crate::store::{AnyStore, Store, StoreError};

fn path(p: &str) -> SecretPath {
    SecretPath::parse(p).expect("valid test path")
}

/// Runs every check against an empty store location. Panics, naming the check, when the
/// store breaks the contract.
pub async fn run(store: &AnyStore) {
    let kind = store.kind();
    let listed = store.list().await.unwrap_or_else(|e| panic!("[{kind}] list of an empty location failed: {e}"));
    assert!(listed.is_empty(), "[{kind}] the location must start empty, found {listed:?}");

    // A missing secret is None, not an error.
    let missing =
        store.read(&path("conformance/missing")).await.unwrap_or_else(|e| panic!("[{kind}] missing read failed: {e}"));
    assert!(missing.is_none(), "[{kind}] a missing secret must read as None");

    // Write, then read back the same value with the owner marker.
    let value = SecretValue::new(json!({"user": "app", "port": 5432, "nested": {"list": [1, "two"]}, "flag": true}));
    store
        .write(&path("conformance/app/db"), &value, "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    let read = store.read(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
    let read = read.unwrap_or_else(|| panic!("[{kind}] a written secret must read back"));
    assert!(read.value == value, "[{kind}] the value read back differs from the value written");
    assert_eq!(read.owner.as_deref(), Some("Staging"), "[{kind}] the ownership marker must name the target");

    // Update replaces the value; the owner can change hands.
    let updated = SecretValue::new(json!({"user": "app", "port": 6432}));
    store
        .write(&path("conformance/app/db"), &updated, "Production")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] update failed: {e}"));
    let read = store
        .read(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] read after update failed: {e}"));
    let read = read.unwrap_or_else(|| panic!("[{kind}] an updated secret must read back"));
    assert!(read.value == updated, "[{kind}] an update must replace the whole value");
    assert_eq!(read.owner.as_deref(), Some("Production"), "[{kind}] the marker must follow the last writer");

    // List returns every path below the location, sorted, and nothing else.
    store
        .write(&path("conformance/app/api"), &SecretValue::new(json!({"key": "k"})), "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    // A scalar secret, where the store can hold one; elsewhere it must be refused clearly.
    let scalar = SecretValue::new(json!("scalar secret"));
    let top = path("conformance/top");
    if store.capabilities().scalar_values {
        store.write(&top, &scalar, "Staging").await.unwrap_or_else(|e| panic!("[{kind}] scalar write failed: {e}"));
    } else {
        let refused = store.write(&top, &scalar, "Staging").await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "[{kind}] a scalar must be refused as invalid");
        let object = SecretValue::new(json!({"value": "scalar secret"}));
        store.write(&top, &object, "Staging").await.unwrap_or_else(|e| panic!("[{kind}] write failed: {e}"));
    }
    let listed: Vec<String> = store
        .list()
        .await
        .unwrap_or_else(|e| panic!("[{kind}] list failed: {e}"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        ["conformance/app/api", "conformance/app/db", "conformance/top"],
        "[{kind}] list must return every path, sorted"
    );
    if store.capabilities().scalar_values {
        let read = store.read(&top).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
        assert!(read.is_some_and(|s| s.value == scalar), "[{kind}] a scalar secret must read back");
    }

    // Delete removes the secret and its marker; deleting again is not an error.
    store.delete(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] delete failed: {e}"));
    store
        .delete(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] deleting a missing secret must succeed: {e}"));
    let gone = store
        .read(&path("conformance/app/db"))
        .await
        .unwrap_or_else(|e| panic!("[{kind}] read after delete failed: {e}"));
    assert!(gone.is_none(), "[{kind}] a deleted secret must be gone");
    store
        .write(&path("conformance/app/db"), &value, "Staging")
        .await
        .unwrap_or_else(|e| panic!("[{kind}] re-create failed: {e}"));
    let again = store.read(&path("conformance/app/db")).await.unwrap_or_else(|e| panic!("[{kind}] read failed: {e}"));
    assert_eq!(
        again.and_then(|s| s.owner).as_deref(),
        Some("Staging"),
        "[{kind}] a re-created secret carries the new marker"
    );

    for p in ["conformance/app/db", "conformance/app/api", "conformance/top"] {
        store.delete(&path(p)).await.unwrap_or_else(|e| panic!("[{kind}] cleanup delete failed: {e}"));
    }
    let listed = store.list().await.unwrap_or_else(|e| panic!("[{kind}] list failed: {e}"));
    assert!(listed.is_empty(), "[{kind}] after deleting everything the location must list empty, found {listed:?}");
}
