//! Pure deep merge (the rules are in the README, *Merge semantics*). No I/O, no async: the same inputs give the same output.
//!
//! - object + object: merged key by key, recursively; a key on one side only is kept;
//! - list + list: `append` (default: the later list's items after the earlier's),
//!   `replace` (the later list wins) or `union` (append the later items not already there);
//! - anything else (scalars, type conflicts): the later value replaces the earlier;
//! - `null`: `keep` (default: null is a value like any other) or `delete` (JSON Merge
//!   Patch tombstone: a later `null` removes the key, or the whole secret).
//!
//! Merging with an empty layer is the identity, and the result does not depend on how
//! layers are grouped (associativity) as long as the layers agree on the type at each
//! position: "later wins" on a type conflict is not associative (`[1]`, then `2`, then
//! `[3]` gives `[3]` left to right, but `[1, 3]` when the last two merge first). Nor is
//! `null: delete`, as in JSON Merge Patch. vss always merges left to right, so the result
//! is well defined either way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::{SecretMap, SecretValue};

/// How two lists merge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListMode {
    /// The later list's items after the earlier's.
    #[default]
    Append,
    /// The later list replaces the earlier.
    Replace,
    /// The earlier list, then the later list's items not already in the result.
    Union,
}

/// What a `null` in a later layer means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NullMode {
    /// `null` is an ordinary value and replaces the earlier value.
    #[default]
    Keep,
    /// `null` removes the key (or, at the top level, the whole secret).
    Delete,
}

/// `merge:` — deep-merge semantics.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MergeOptions")]
pub struct RawMergeOptions {
    /// How two lists merge: `append` (default), `replace` or `union`.
    pub lists: Option<ListMode>,
    /// What a `null` in a later layer means: `keep` (default, null is a value) or `delete`
    /// (removes the key, JSON Merge Patch style).
    pub null: Option<NullMode>,
}

impl RawMergeOptions {
    /// The options written, over `defaults` for what is not.
    pub fn over(&self, defaults: MergeOptions) -> MergeOptions {
        MergeOptions { lists: self.lists.unwrap_or(defaults.lists), nulls: self.null.unwrap_or(defaults.nulls) }
    }
}

/// The merge semantics of one target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// How lists merge.
    pub lists: ListMode,
    /// What `null` means.
    pub nulls: NullMode,
}

/// Merges `layers` in order (later wins) on top of `base` and returns the result.
pub fn merge_all<'a>(
    base: SecretMap,
    layers: impl IntoIterator<Item = &'a SecretMap>,
    options: MergeOptions,
) -> SecretMap {
    layers.into_iter().fold(base, |acc, layer| merge_maps(acc, layer, options))
}

/// Merges one layer of secrets on top of `base`: secrets on both sides are deep-merged.
pub fn merge_maps(mut base: SecretMap, layer: &SecretMap, options: MergeOptions) -> SecretMap {
    for (path, value) in layer {
        if options.nulls == NullMode::Delete && value.is_null() {
            base.remove(path);
            continue;
        }
        match base.get_mut(path) {
            Some(existing) => {
                let mut merged = existing.expose();
                merge_value(&mut merged, &value.expose(), options);
                *existing = SecretValue::new(merged);
            }
            // Shared, not copied, unless tombstones must be dropped from it.
            None if options.nulls == NullMode::Keep => {
                base.insert(path.clone(), value.clone());
            }
            None => {
                base.insert(path.clone(), SecretValue::new(strip_nulls(&value.expose(), options)));
            }
        }
    }
    base
}

/// Deep-merges `later` into `earlier` in place.
pub fn merge_value(earlier: &mut Value, later: &Value, options: MergeOptions) {
    match (earlier, later) {
        (Value::Object(left), Value::Object(right)) => {
            for (key, value) in right {
                if options.nulls == NullMode::Delete && value.is_null() {
                    left.remove(key);
                    continue;
                }
                match left.get_mut(key) {
                    Some(existing) => merge_value(existing, value, options),
                    None => {
                        left.insert(key.clone(), strip_nulls(value, options));
                    }
                }
            }
        }
        (Value::Array(left), Value::Array(right)) => match options.lists {
            ListMode::Append => left.extend(right.iter().map(|v| strip_nulls(v, options))),
            ListMode::Replace => *left = right.iter().map(|v| strip_nulls(v, options)).collect(),
            ListMode::Union => {
                for item in right {
                    let item = strip_nulls(item, options);
                    if !left.contains(&item) {
                        left.push(item);
                    }
                }
            }
        },
        (slot, value) => *slot = strip_nulls(value, options),
    }
}

/// With `null: delete`, a tombstone that lands where nothing was merged is dropped too, so
/// the result never carries tombstones. With `null: keep` the value is copied unchanged.
fn strip_nulls(value: &Value, options: MergeOptions) -> Value {
    if options.nulls == NullMode::Keep {
        return value.clone();
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v, options))).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretPath;
    use serde_json::json;

    fn map(value: Value) -> SecretMap {
        value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (SecretPath::parse(k).unwrap(), SecretValue::new(v.clone())))
            .collect()
    }

    fn merged(a: Value, b: Value, options: MergeOptions) -> Value {
        let out = merge_maps(map(a), &map(b), options);
        Value::Object(out.into_iter().map(|(k, v)| (k.to_string(), v.into_inner())).collect())
    }

    const DEFAULT: MergeOptions = MergeOptions { lists: ListMode::Append, nulls: NullMode::Keep };

    #[test]
    fn objects_merge_recursively_and_keep_one_sided_keys() {
        let out = merged(
            json!({"app": {"db": {"host": "a", "port": 1}, "only_left": true}}),
            json!({"app": {"db": {"host": "b"}, "only_right": 2}}),
            DEFAULT,
        );
        assert_eq!(out, json!({"app": {"db": {"host": "b", "port": 1}, "only_left": true, "only_right": 2}}));
    }

    #[test]
    fn secrets_on_one_side_are_kept() {
        let out = merged(json!({"a": {"x": 1}}), json!({"b": {"y": 2}}), DEFAULT);
        assert_eq!(out, json!({"a": {"x": 1}, "b": {"y": 2}}));
    }

    #[test]
    fn lists_append_by_default() {
        let out = merged(json!({"s": {"l": [1, 2]}}), json!({"s": {"l": [2, 3]}}), DEFAULT);
        assert_eq!(out, json!({"s": {"l": [1, 2, 2, 3]}}));
    }

    #[test]
    fn lists_replace() {
        let options = MergeOptions { lists: ListMode::Replace, ..DEFAULT };
        let out = merged(json!({"s": {"l": [1, 2]}}), json!({"s": {"l": [3]}}), options);
        assert_eq!(out, json!({"s": {"l": [3]}}));
    }

    #[test]
    fn lists_union_keeps_order_and_skips_equal_items() {
        let options = MergeOptions { lists: ListMode::Union, ..DEFAULT };
        let out = merged(json!({"s": {"l": [1, {"a": 1}]}}), json!({"s": {"l": [{"a": 1}, 1, 1.0, 4]}}), options);
        // Equal means the same JSON, numbers by their exact text: `1.0` is not `1`.
        assert_eq!(out, json!({"s": {"l": [1, {"a": 1}, 1.0, 4]}}));
    }

    #[test]
    fn later_scalar_wins_and_type_conflicts_take_the_later_value() {
        let out = merged(
            json!({"s": {"a": 1, "b": {"x": 1}, "c": [1], "d": "x"}}),
            json!({"s": {"a": 2, "b": "flat", "c": {"now": "object"}, "d": [1]}}),
            DEFAULT,
        );
        assert_eq!(out, json!({"s": {"a": 2, "b": "flat", "c": {"now": "object"}, "d": [1]}}));
    }

    #[test]
    fn scalar_secrets_are_replaced() {
        assert_eq!(merged(json!({"s": "old"}), json!({"s": "new"}), DEFAULT), json!({"s": "new"}));
    }

    #[test]
    fn null_keep_stores_null() {
        assert_eq!(merged(json!({"s": {"a": 1}}), json!({"s": {"a": null}}), DEFAULT), json!({"s": {"a": null}}));
    }

    #[test]
    fn null_delete_removes_keys_and_secrets_and_leaves_no_tombstones() {
        let options = MergeOptions { nulls: NullMode::Delete, ..DEFAULT };
        let out = merged(
            json!({"s": {"a": 1, "b": 2}, "gone": {"x": 1}}),
            json!({"s": {"a": null, "c": null, "d": {"e": null, "f": 1}}, "gone": null, "new": {"t": null, "u": 1}}),
            options,
        );
        assert_eq!(out, json!({"s": {"b": 2, "d": {"f": 1}}, "new": {"u": 1}}));
    }

    #[test]
    fn merge_all_applies_layers_in_order() {
        let out = merge_all(
            map(json!({"s": {"a": 0}})),
            [&map(json!({"s": {"a": 1}})), &map(json!({"s": {"a": 2}}))],
            DEFAULT,
        );
        assert_eq!(out[&SecretPath::parse("s").unwrap()].expose(), json!({"a": 2}));
    }
}
