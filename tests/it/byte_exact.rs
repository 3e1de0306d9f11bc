//! Values are copied byte-exact: a property test writes arbitrary strings (including
//! strings that look like JSON) and objects holding long, big and oddly written numbers
//! through every store, against the real servers, and reads them back. A store that can
//! hold a value returns it unchanged (for Secrets Manager, the `SecretString` itself is
//! compared, for GCP the payload the server holds, and for Kubernetes each data key's
//! bytes); one that cannot (Vault's 64-bit floats, its objects-only shape) refuses it
//! when the plan is made; none alters it. The same values go through merge and diff
//! unchanged. Without the servers these tests fail: run `tests/run`.
#![cfg(all(feature = "aws", feature = "vault", feature = "gcp", feature = "kubernetes"))]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use vss::diff::{ChangeKind, DiffOptions, diff};
use vss::merge::{MergeOptions, merge_maps};
use vss::secret::{LiveSecret, LiveState, SecretMap, SecretPath, SecretValue};
use vss::store::{AnyStore, Store};

/// A JSON number as text, as people write them: long integers, long fractions with
/// trailing zeros, exponents in either case.
fn number_text() -> impl Strategy<Value = String> {
    let integer = prop_oneof!["0", "[1-9][0-9]{0,40}"];
    let fraction = prop::option::of("\\.[0-9]{1,25}");
    let exponent = prop::option::of("[eE][+-]?[1-9][0-9]{0,2}");
    (any::<bool>(), integer, fraction, exponent).prop_map(|(minus, i, f, e)| {
        format!("{}{i}{}{}", if minus { "-" } else { "" }, f.unwrap_or_default(), e.unwrap_or_default())
    })
}

/// A secret value: a string (any text, or one that reads as JSON), or an object whose
/// values are numbers, nested objects and lists of numbers.
fn secret_value() -> impl Strategy<Value = Value> {
    let json_looking = prop_oneof![
        number_text(),
        number_text().prop_map(|n| format!("\"{n}\"")),
        number_text().prop_map(|n| format!("[{n}, \"x\"]")),
        Just("true".to_string()),
        Just("null".to_string()),
        Just(" {\"not\": \"trimmed\"}".to_string()),
    ];
    let string = prop_oneof![any::<String>(), json_looking].prop_map(Value::String);
    let leaf = prop_oneof![
        3 => number_text().prop_map(|n| serde_json::from_str::<Value>(&n).expect("valid JSON number")),
        1 => any::<String>().prop_map(Value::String),
        1 => any::<bool>().prop_map(Value::Bool),
    ];
    let member = leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 1..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let object = prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_.-]{0,10}", member, 1..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![string, object]
}

fn path(p: &str) -> SecretPath {
    SecretPath::parse(p).unwrap()
}

/// Writes `value` to `store` at `at` and reads it back; the value is refused instead when
/// the store's contract says it cannot hold it. Returns what was read back.
async fn through(store: &AnyStore, at: &str, value: &SecretValue) -> Result<Option<SecretValue>, TestCaseError> {
    let caps = store.capabilities();
    if caps.accepts(value).is_err() {
        return Ok(None);
    }
    let wanted = caps.normalize(value);
    store
        .write(&path(at), value, "T")
        .await
        .map_err(|e| TestCaseError::fail(format!("[{}] write: {e}", store.kind())))?;
    let read = store.read(&path(at)).await.map_err(|e| TestCaseError::fail(format!("[{}] read: {e}", store.kind())))?;
    let read = read.and_then(LiveSecret::into_value);
    prop_assert!(read.as_ref() == Some(&wanted), "[{}] the value read back is not the value written", store.kind());
    Ok(read)
}

/// Merge of the value alone, over an empty layer, and diff against itself change nothing.
fn merge_and_diff_keep(value: &SecretValue) -> Result<(), TestCaseError> {
    let layer: SecretMap = [(path("a"), value.clone())].into();
    let merged = merge_maps(SecretMap::new(), &layer, MergeOptions::default());
    prop_assert!(merged == layer, "merge altered the value");
    let merged = merge_maps(layer.clone(), &SecretMap::new(), MergeOptions::default());
    prop_assert!(merged == layer, "merging an empty layer altered the value");
    let live: LiveState = [(path("a"), LiveSecret::with_value(value.clone(), Some("T".into())))].into();
    let options = DiffOptions { delete_orphans: true, owner: "T", fingerprints: None };
    let changes = diff(&live, &layer, options).changes;
    prop_assert!(changes.iter().all(|c| c.kind == ChangeKind::Unchanged), "a value differs from itself");
    Ok(())
}

#[test]
fn every_store_returns_a_value_exactly_or_refuses_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let u = crate::aws::unique("exact");
    let (file_dir, file_yaml, file_json, sm, s3, vault) = rt.block_on(async {
        let bucket = crate::aws::unique("exact");
        crate::aws::s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
        let sources = vec!["s".to_string()];
        let bundle = vss::store::Bundle { target: "T", sources: &sources };
        let file = |p: &str| json!({"file": {"path": dir.path().join(p).to_str().unwrap()}});
        (
            crate::aws::open(file("dir"), None).await,
            crate::aws::open(file("all.yaml"), None).await,
            crate::aws::open(file("all.json"), None).await,
            crate::aws::open(json!({"aws": {"prefix": format!("{u}/")}}), None).await,
            crate::aws::open(json!({"s3": {"bucket": bucket}}), Some(bundle)).await,
            crate::vault::open_default(json!({"path": format!("secret/{u}")})).await,
        )
    });
    let sm_client = rt.block_on(crate::aws::sm(None));
    let gcp_server = crate::gcp_server::GcpServer::start();
    let gcp = rt.block_on(crate::gcp::open(&gcp_server, json!({"project": "exact"})));
    let kube_server = crate::kube_server::KubeServer::start(&["exact"]);
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    std::fs::write(&kubeconfig, kube_server.kubeconfig(&[("test", "exact")])).unwrap();
    let kube = rt.block_on(crate::kubernetes::open_with(&kubeconfig, json!({})));
    let mut runner = TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() });
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&secret_value(), |value| {
            let at = format!("v/{}", case.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let value = SecretValue::new(value);
            merge_and_diff_keep(&value)?;
            rt.block_on(async {
                for store in [&file_dir, &file_yaml, &file_json, &s3] {
                    let read = through(store, &at, &value).await?;
                    prop_assert!(read.is_some(), "[{}] refused a value it can hold", store.kind());
                }
                // Kubernetes holds objects, key by key: a string as its bytes, anything else
                // as its JSON text (read back as that text).
                let read = through(&kube, &at, &value).await?;
                prop_assert_eq!(read.is_some(), value.is_object(), "[kubernetes] holds exactly the objects");
                if let Value::Object(map) = value.expose() {
                    let held = kube_server.secrets("exact")[&at.replace('/', "-")].data.clone();
                    prop_assert_eq!(held.len(), map.len());
                    for (key, member) in map {
                        let bytes = match member {
                            Value::String(text) => text.into_bytes(),
                            other => SecretValue::new(other).canonical().as_bytes().to_vec(),
                        };
                        prop_assert!(held.get(&key) == Some(&bytes), "[kubernetes] key `{}` is not held exactly", key);
                    }
                }
                // Secrets Manager holds any string but the empty one (its API's minimum
                // length is 1) as itself, and an object as its JSON with every number's text.
                let empty = value.canonical() == "\"\"";
                let read = through(&sm, &at, &value).await?;
                prop_assert_eq!(read.is_none(), empty, "Secrets Manager refuses exactly the empty string");
                if empty {
                    return Ok(());
                }
                let raw = sm_client.get_secret_value().secret_id(format!("{u}/{at}")).send().await.unwrap();
                let expected = match value.expose() {
                    Value::String(s) => s,
                    _ => value.canonical().to_string(),
                };
                prop_assert_eq!(raw.secret_string(), Some(expected.as_str()));
                // GCP Secret Manager the same, its payload compared as the server holds it.
                let read = through(&gcp, &at, &value).await?;
                prop_assert!(read.is_some(), "[gcp] refused a value it can hold");
                let id = at.replace('/', "--");
                let held = gcp_server.secrets("exact").get(&id).and_then(|s| s.latest());
                prop_assert_eq!(held.as_deref(), Some(expected.as_str()));
                // Vault holds objects only, and numbers as 64-bit floats: what it accepts
                // comes back exactly; the rest is refused, never rounded.
                through(&vault, &at, &value).await?;
                Ok(())
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
