//! Provenance: for every top-level key of a target's desired secrets, the layer that set it
//! and the layers whose value it replaced (`vss explain`, and `pipeline --provenance` in
//! the JSON report). Pure: the layers come in merge order, each with its secrets.
//!
//! A target's layers are its parent's layers (recursively), then its own imports, in
//! order: exactly the order [`crate::merge::merge_all`] applies them. A key is *set* by
//! the last layer that has it; earlier layers that had it are *replaced* (or, when the
//! final value is a deep merge of several layers' objects or lists, *merged*). A `null`
//! that deletes (`merge: {null: delete}`) forgets the key's earlier layers.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::merge::NullMode;
use crate::secret::{Fingerprinter, SecretMap, SecretPath};

/// One layer of a target's desired state.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Where it comes from.
    pub origin: LayerOrigin,
    /// Its secrets.
    pub secrets: Arc<SecretMap>,
    /// What a `null` in it means (the merge options of the target that imports it).
    pub nulls: NullMode,
    /// Secrets (and keys) its selection moved: new path and key -> where the layer's
    /// source holds it.
    pub moved: BTreeMap<(SecretPath, Option<String>), crate::select::Moved>,
}

/// A target's desired state with the layers it was merged from, in merge order.
#[derive(Clone, Debug)]
pub struct Lineage {
    /// The layers.
    pub layers: Vec<Layer>,
    /// The desired state.
    pub desired: Arc<SecretMap>,
}

impl Lineage {
    /// Where every key (of the secret at `only`, when given) comes from: see [`explain`].
    pub fn explain(&self, only: Option<&SecretPath>, fingerprints: &Fingerprinter) -> Vec<KeyOrigin> {
        explain(&self.layers, &self.desired, only, fingerprints)
    }
}

/// Where a layer comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LayerOrigin {
    /// `source` or `target` (another target's merged result, imported).
    pub kind: LayerKind,
    /// The source's or the imported target's name.
    pub name: String,
    /// The target whose `imports` names it.
    pub imported_by: String,
    /// Where that import is written: `vss.yaml:12:15`.
    pub at: String,
    /// What the import takes and how it renames it, when it says (`include`, `rename`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// What a layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// A source.
    Source,
    /// Another target's merged result.
    Target,
}

impl std::fmt::Display for LayerOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            LayerKind::Source => "source",
            LayerKind::Target => "target",
        };
        write!(f, "{kind} `{}` ({}, imported by {})", self.name, self.at, self.imported_by)
    }
}

/// A layer's value of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LayerValue {
    /// The layer.
    #[serde(flatten)]
    pub layer: LayerOrigin,
    /// The keyed fingerprint of its value.
    pub fingerprint: String,
    /// Where the layer's source holds it, when a rename or prefix moved it:
    /// `payments/stripe` (key `secret_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

/// Where one key of one desired secret comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KeyOrigin {
    /// The secret's path.
    pub path: String,
    /// The top-level key; absent when the secret is not an object (the whole value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The keyed fingerprint of the desired value.
    pub fingerprint: String,
    /// The last layer that has it.
    pub set_by: LayerValue,
    /// Earlier layers that had it, in merge order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<LayerValue>,
    /// The desired value is a deep merge of several layers' values (objects merged key by
    /// key, lists appended), not the value of `set_by` alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merged: bool,
}

/// `vss explain --output json` (`schemas/explain.schema.json`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Explanation {
    /// The target.
    pub target: String,
    /// Every key of its desired secrets (or of the one asked about), by path then key.
    pub keys: Vec<KeyOrigin>,
}

/// The JSON Schema of [`Explanation`], as committed in `schemas/explain.schema.json`.
pub fn explain_schema() -> String {
    let schema = schemars::schema_for!(Explanation);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// Per secret path and top-level key (`None`: the whole value), the layers that had it,
/// by index, with their value.
type History<'a> = BTreeMap<(&'a SecretPath, Option<&'a str>), Vec<(usize, &'a Value)>>;

/// Where every top-level key of `desired` (or of the secret at `only`) comes from, given
/// the layers it was merged from, in order. Sorted by path, then key.
pub fn explain(
    layers: &[Layer],
    desired: &SecretMap,
    only: Option<&SecretPath>,
    fingerprints: &Fingerprinter,
) -> Vec<KeyOrigin> {
    let wanted = |path: &SecretPath| only.is_none_or(|o| o == path);
    // Values are held as canonical text: parse the ones asked about, once.
    let parsed: Vec<Vec<(&SecretPath, Value)>> = layers
        .iter()
        .map(|l| l.secrets.iter().filter(|(p, _)| wanted(p)).map(|(p, v)| (p, v.expose())).collect())
        .collect();
    // (path, key) -> the layers that had it since it was last deleted, with their value.
    let mut history: History<'_> = BTreeMap::new();
    for (index, (layer, secrets)) in layers.iter().zip(&parsed).enumerate() {
        for (path, value) in secrets {
            let path = *path;
            let forget_all = |history: &mut History<'_>| {
                history.retain(|(p, _), _| *p != path);
            };
            match value {
                Value::Null if layer.nulls == NullMode::Delete => forget_all(&mut history),
                Value::Object(map) => {
                    // An object replaces a scalar value of the secret.
                    history.remove(&(path, None));
                    for (key, v) in map {
                        let entry = history.entry((path, Some(key.as_str()))).or_default();
                        if v.is_null() && layer.nulls == NullMode::Delete {
                            entry.clear();
                        } else {
                            entry.push((index, v));
                        }
                    }
                }
                other => {
                    // A scalar or a list replaces an object (lists merge with lists).
                    forget_all(&mut history);
                    history.entry((path, None)).or_default().push((index, other));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (path, value) in desired.iter().filter(|(p, _)| wanted(p)) {
        let value = value.expose();
        let finals: Vec<(Option<&str>, &Value)> = match &value {
            Value::Object(map) => map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
            other => vec![(None, other)],
        };
        for (key, final_value) in finals {
            let Some(entries) = history.get(&(path, key)).filter(|e| !e.is_empty()) else { continue };
            let value_of = |&(index, v): &(usize, &Value)| {
                let moved = &layers[index].moved;
                let from = key
                    .and_then(|k| moved.get(&(path.clone(), Some(k.to_string()))))
                    .or_else(|| moved.get(&(path.clone(), None)));
                LayerValue {
                    layer: layers[index].origin.clone(),
                    fingerprint: fingerprints.fingerprint(v),
                    renamed_from: from.map(|m| match (&m.key, key) {
                        (Some(old), Some(new)) if old != new => format!("`{}` key `{old}`", m.path),
                        _ => format!("`{}`", m.path),
                    }),
                }
            };
            let (last, earlier) = entries.split_last().expect("not empty");
            out.push(KeyOrigin {
                path: path.to_string(),
                key: key.map(str::to_string),
                fingerprint: fingerprints.fingerprint(final_value),
                set_by: value_of(last),
                replaced: earlier.iter().map(value_of).collect(),
                merged: last.1 != final_value,
            });
        }
    }
    out
}

/// `vss explain`'s text: per secret, each key with the layer that set it, and the layers
/// it replaced.
pub fn render(target: &str, origins: &[KeyOrigin]) -> String {
    let mut out = String::new();
    let mut path = None;
    let width = origins.iter().map(|o| o.key.as_deref().unwrap_or("(value)").len()).max().unwrap_or(0);
    for origin in origins {
        if path != Some(&origin.path) {
            out.push_str(&format!("{target}  {}\n", origin.path));
            path = Some(&origin.path);
        }
        let key = origin.key.as_deref().unwrap_or("(value)");
        let how = if origin.merged { "merged, last from" } else { "set by" };
        out.push_str(&format!("  {key:width$}  {}  {how} {}", origin.fingerprint, origin.set_by.layer));
        if let Some(from) = &origin.set_by.renamed_from {
            out.push_str(&format!(", renamed from {from}"));
        }
        if let Some(options) = &origin.set_by.layer.options {
            out.push_str(&format!(", taking {}", options_text(options)));
        }
        out.push('\n');
        for earlier in &origin.replaced {
            let verb = if origin.merged { "with" } else { "replaced" };
            out.push_str(&format!("  {:width$}  {}  {verb} {}\n", "", earlier.fingerprint, earlier.layer));
        }
    }
    if origins.is_empty() {
        out.push_str(&format!("{target}: no desired secret\n"));
    }
    out
}

/// An import's options on one line: `include [payments/**], prefix third-party/`.
fn options_text(options: &Value) -> String {
    let mut parts = Vec::new();
    for (key, value) in options.as_object().into_iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                format!("[{}]", items.iter().map(|i| i.as_str().unwrap_or_default()).collect::<Vec<_>>().join(", "))
            }
            Value::Object(map) => {
                let pairs: Vec<String> = map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k} -> {s}"),
                        other => format!("{k} {}", options_text(&serde_json::json!({"": other})).trim_start()),
                    })
                    .collect();
                format!("{{{}}}", pairs.join(", "))
            }
            other => other.to_string(),
        };
        parts.push(if key.is_empty() { text } else { format!("{key} {text}") });
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use serde_json::json;

    fn map(entries: &[(&str, Value)]) -> SecretMap {
        entries.iter().map(|(p, v)| (SecretPath::parse(p).unwrap(), SecretValue::new(v.clone()))).collect()
    }

    fn layer(name: &str, secrets: &SecretMap, nulls: NullMode) -> Layer {
        let origin = LayerOrigin {
            kind: LayerKind::Source,
            name: name.into(),
            imported_by: "T".into(),
            at: format!("vss.yaml:{}:1", name.len()),
            options: None,
        };
        Layer { origin, secrets: Arc::new(secrets.clone()), nulls, moved: BTreeMap::new() }
    }

    #[test]
    fn the_last_layer_sets_a_key_and_earlier_ones_are_replaced_or_merged() {
        let fp = Fingerprinter::with_key(b"k");
        let base = map(&[("app/db", json!({"user": "u", "password": "p1", "opts": {"a": 1}})), ("flag", json!("on"))]);
        let prod = map(&[("app/db", json!({"password": "p2", "opts": {"b": 2}}))]);
        let cleanup = map(&[("app/db", json!({"user": null}))]);
        let layers = [
            layer("base", &base, NullMode::Delete),
            layer("prod", &prod, NullMode::Delete),
            layer("c", &cleanup, NullMode::Delete),
        ];
        let desired = crate::merge::merge_all(
            SecretMap::new(),
            [&base, &prod, &cleanup],
            crate::merge::MergeOptions { nulls: NullMode::Delete, ..Default::default() },
        );
        let origins = explain(&layers, &desired, None, &fp);
        let keys: Vec<(&str, Option<&str>)> = origins.iter().map(|o| (o.path.as_str(), o.key.as_deref())).collect();
        assert_eq!(keys, [("app/db", Some("opts")), ("app/db", Some("password")), ("flag", None)], "user was deleted");
        let password = &origins[1];
        assert_eq!(password.set_by.layer.name, "prod");
        assert_eq!(password.replaced.iter().map(|r| r.layer.name.as_str()).collect::<Vec<_>>(), ["base"]);
        assert_eq!(password.fingerprint, fp.fingerprint(&json!("p2")));
        assert_eq!(password.replaced[0].fingerprint, fp.fingerprint(&json!("p1")));
        assert!(!password.merged);
        assert!(origins[0].merged, "opts is {{a, b}}: merged from both");
        assert_eq!(origins[2].set_by.layer.name, "base");

        let only = explain(&layers, &desired, Some(&SecretPath::parse("flag").unwrap()), &fp);
        assert_eq!(only.len(), 1);
        let text = render("T", &origins);
        assert!(text.contains("password  hmac:"), "{text}");
        assert!(text.contains("set by source `prod` (vss.yaml:4:1, imported by T)"), "{text}");
        assert!(text.contains("replaced source `base`"), "{text}");
        assert!(!text.contains("p2") && !text.contains("\"u\""), "no value: {text}");
    }
}
