//! Secrets as data: [`SecretPath`], the redacting [`SecretValue`], the [`SecretMap`] a
//! target's desired state is made of, value equality (numbers by their exact text), and
//! keyed [`Fingerprinter`] hashes that let a report show "this value changed" without
//! showing the value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// A secret's location relative to its store root: `/`-separated, non-empty segments,
/// no `.` or `..`, no leading or trailing `/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SecretPath(String);

impl SecretPath {
    /// Normalises and checks `raw`: leading, trailing and repeated `/` are dropped.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(format!("`{raw}` is not a secret path: it is empty"));
        }
        for segment in &segments {
            if *segment == "." || *segment == ".." {
                return Err(format!("`{raw}` is not a secret path: `{segment}` segments are not allowed"));
            }
            if segment.chars().any(char::is_control) {
                return Err(format!("`{}` is not a secret path: it contains a control character", raw.escape_debug()));
            }
        }
        Ok(Self(segments.join("/")))
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for SecretPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        SecretPath::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A secret's value: usually a JSON object (the KV2 `data` map, a parsed `SecretString`),
/// possibly a scalar. It has no `Display`, and its `Debug` prints `<redacted>`, so a value
/// cannot end up in a log line or an error message by accident.
///
/// It is held as canonical JSON text ([`canonical_json`]: sorted keys, numbers exactly as
/// read), shared behind an `Arc`: about as small in memory as the JSON itself, cloned
/// without copying, compared as text, and parsed only where a merge or a key-level diff
/// needs the structure.
#[derive(Clone)]
pub struct SecretValue(Arc<str>);

impl Default for SecretValue {
    fn default() -> Self {
        Self(Arc::from("null"))
    }
}

impl SecretValue {
    /// Wraps a JSON value (canonicalised).
    pub fn new(value: Value) -> Self {
        let mut text = String::new();
        canonical_json(&value, &mut text);
        Self(Arc::from(text))
    }

    /// The JSON value, parsed. Never print it.
    pub fn expose(&self) -> Value {
        serde_json::from_str(&self.0).expect("canonical JSON parses")
    }

    /// The canonical JSON text. Never print it.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.0.starts_with('{')
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }

    /// The JSON value, owned. Never print it.
    pub fn into_inner(self) -> Value {
        self.expose()
    }

    /// The top-level keys when the value is an object, sorted.
    pub fn keys(&self) -> Option<Vec<String>> {
        self.expose().as_object().map(|map| map.keys().cloned().collect())
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(SecretValue::new)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl From<Value> for SecretValue {
    fn from(value: Value) -> Self {
        Self::new(value)
    }
}

/// A set of secrets: path -> value, sorted by path.
pub type SecretMap = BTreeMap<SecretPath, SecretValue>;

/// What a store's read says of a secret's value.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveValue {
    /// The value as stored.
    Value(SecretValue),
    /// A keyed fingerprint of the value, as recorded when vss wrote it (a store that keeps
    /// a hash rather than the value); compared with the desired value's fingerprint.
    Fingerprint(String),
    /// Present, but the store never returns values (GitHub secrets): only its version or
    /// `updated_at`. The diff reports such a secret as `unverified`, never as unchanged.
    Unreadable {
        /// The store's version or `updated_at` of the secret, when it has one.
        version: Option<String>,
    },
    /// Written by someone else since vss last wrote it (the store's `updated_at` is newer
    /// than vss's record): its value is unknown and taken to differ, so the diff reports
    /// it as modified, with the reason `drift`.
    Overwritten,
}

/// A secret as a store holds it, with the ownership marker it carries, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSecret {
    /// What the read says of its value.
    pub value: LiveValue,
    /// The target named by the secret's `managed-by=vss` marker, when it has one.
    pub owner: Option<String>,
    /// The store's metadata of the secret (tags, description, encryption key) differs from
    /// what the config asks for.
    pub drift: bool,
    /// The store's version of the secret as read (a KV2 version, a Secrets Manager version
    /// id, GitHub's `updated_at`), when it has one: a plan file records it, and applying
    /// the plan checks it is still the same.
    pub version: Option<String>,
}

impl LiveSecret {
    /// A secret read with its value.
    pub fn with_value(value: SecretValue, owner: Option<String>) -> Self {
        Self { value: LiveValue::Value(value), owner, drift: false, version: None }
    }

    /// The same secret, read at the store's `version`.
    pub fn at_version(self, version: impl ToString) -> Self {
        Self { version: Some(version.to_string()), ..self }
    }

    /// The value, when the store returned it.
    pub fn value(&self) -> Option<&SecretValue> {
        match &self.value {
            LiveValue::Value(value) => Some(value),
            _ => None,
        }
    }

    /// The value, when the store returned it.
    pub fn into_value(self) -> Option<SecretValue> {
        match self.value {
            LiveValue::Value(value) => Some(value),
            _ => None,
        }
    }
}

/// What a store holds below a location: path -> live secret.
pub type LiveState = BTreeMap<SecretPath, LiveSecret>;

/// Writes `value` as canonical JSON: sorted keys, no whitespace, every number exactly as
/// its text was read (`1.10` stays `1.10`, `12345678901234567890123` keeps every digit), so
/// that equal values have the same bytes and no value is altered on its way.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Keyed hashes of values (HMAC-SHA256, truncated to 16 hex digits): equal values get equal
/// fingerprints within one key, and a fingerprint does not let anyone guess the value.
#[derive(Clone)]
pub struct Fingerprinter {
    key: Vec<u8>,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(<key redacted>)")
    }
}

impl Fingerprinter {
    /// The environment variable holding a stable fingerprint key.
    pub const KEY_VAR: &'static str = "VSS_FINGERPRINT_KEY";

    /// A fingerprinter keyed by `key`.
    pub fn with_key(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// Keyed by `VSS_FINGERPRINT_KEY` when set and non-empty, else by a random per-run key
    /// (fingerprints are then comparable only within one run).
    pub fn from_env() -> Self {
        match std::env::var(Self::KEY_VAR) {
            Ok(key) if !key.is_empty() => Self::with_key(key.as_bytes()),
            _ => Self::with_key(&rand::random::<[u8; 32]>()),
        }
    }

    /// Keyed by `VSS_FINGERPRINT_KEY`, when it is set and non-empty: fingerprints that stay
    /// comparable from one run to the next (write-only stores record them).
    pub fn stable() -> Option<Self> {
        std::env::var(Self::KEY_VAR).ok().filter(|k| !k.is_empty()).map(|k| Self::with_key(k.as_bytes()))
    }

    /// The fingerprint of a value, e.g. `hmac:3f9a0c1d2b4e5f60`.
    pub fn fingerprint(&self, value: &Value) -> String {
        let mut canonical = String::new();
        canonical_json(value, &mut canonical);
        self.fingerprint_canonical(&canonical)
    }

    /// The fingerprint of a secret value (its canonical text).
    pub fn fingerprint_secret(&self, value: &SecretValue) -> String {
        self.fingerprint_canonical(value.canonical())
    }

    fn fingerprint_canonical(&self, canonical: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("hmac:{}", hex::encode(&digest[..8]))
    }
}

/// A config string that must never be printed (tokens, secret ids).
#[derive(Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl JsonSchema for Sensitive {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sensitive".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "A credential; write `${VAR}` to read it from the environment."})
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_normalised_and_checked() {
        assert_eq!(SecretPath::parse("/app//db/").unwrap().as_str(), "app/db");
        assert!(SecretPath::parse("").is_err());
        assert!(SecretPath::parse("//").is_err());
        assert!(SecretPath::parse("a/../b").is_err());
        assert!(SecretPath::parse("a/\n").is_err());
    }

    #[test]
    fn credentials_are_redacted_in_debug() {
        assert_eq!(format!("{:?}", Sensitive("s3cr3t".into())), "<redacted>");
    }

    #[test]
    fn debug_of_a_value_is_redacted() {
        let value = SecretValue::new(json!({"password": "hunter2"}));
        assert_eq!(format!("{value:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(value)), "Some(<redacted>)");
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn secret_values_compare_as_canonical_text_and_round_trip() {
        let a = SecretValue::new(parse(r#"{"b": [1, 2.0, "x"], "a": {"z": null, "y": 1e3}}"#));
        let b = SecretValue::new(parse(r#"{"a": {"y": 1e3, "z": null}, "b": [1, 2.0, "x"]}"#));
        assert!(a == b, "key order and whitespace do not matter");
        assert_eq!(a.canonical(), r#"{"a":{"y":1e+3,"z":null},"b":[1,2.0,"x"]}"#);
        assert!(SecretValue::new(json!(1.5)) != SecretValue::new(json!(1)));
        assert!(SecretValue::new(json!({})).is_object() && SecretValue::new(json!(null)).is_null());
        assert_eq!(SecretValue::new(json!({"b": 1, "a": 2})).keys(), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(SecretValue::new(json!(u64::MAX)).expose(), json!(u64::MAX));
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        for text in ["12345678901234567890123", "1.10", "1.0", "-0", "1e+400", "0.1e-7", "98765432109876543210"] {
            let value = SecretValue::new(parse(&format!(r#"{{"n": {text}}}"#)));
            assert_eq!(value.canonical(), format!(r#"{{"n":{text}}}"#));
            assert_eq!(SecretValue::new(value.expose()), value, "{text} survives a parse");
        }
        assert!(SecretValue::new(parse("1")) != SecretValue::new(parse("1.0")), "1.0 is not the text 1");
        // The one rewrite: an exponent is spelled `e` with its sign, the same number.
        assert_eq!(SecretValue::new(parse("[1E5, 2e-3]")).canonical(), "[1e+5,2e-3]");
    }

    #[test]
    fn fingerprints_are_keyed_and_value_equal() {
        let a = Fingerprinter::with_key(b"k1");
        let b = Fingerprinter::with_key(b"k2");
        assert_eq!(a.fingerprint(&json!({"x": 1, "y": 2})), a.fingerprint(&json!({"y": 2, "x": 1})));
        assert_ne!(a.fingerprint(&json!({"x": 1})), b.fingerprint(&json!({"x": 1})));
        assert_ne!(a.fingerprint(&json!({"x": 1})), a.fingerprint(&json!({"x": 2})));
        assert!(a.fingerprint(&json!("hunter2")).starts_with("hmac:"));
        assert_eq!(a.fingerprint(&json!(1)).len(), "hmac:".len() + 16);
    }
}
