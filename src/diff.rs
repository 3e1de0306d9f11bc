//! Pure diff of a target's live state against its desired state (SPEC §5).
//!
//! Every secret path is `added`, `modified`, `removed` or `unchanged`; a modified object
//! lists its top-level `keys_added`, `keys_removed` and `keys_modified`. Numbers compare by
//! value. `removed` exists only with `delete_orphans` and only for secrets whose ownership
//! marker names this target; other live secrets that are not desired are left alone and
//! counted (`unmanaged`, or `orphans` when vss owns them but deletion is off).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::secret::{SecretMap, SecretPath, SecretValue, json_eq};

/// A secret as a store holds it, with the ownership marker it carries, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSecret {
    /// The stored value.
    pub value: SecretValue,
    /// The target named by the secret's `managed-by=vss` marker, when it has one.
    pub owner: Option<String>,
    /// The store's metadata of the secret (tags, description, encryption key) differs from
    /// what the config asks for.
    pub drift: bool,
}

/// What a store holds below a target's root: path -> live secret.
pub type LiveState = BTreeMap<SecretPath, LiveSecret>;

/// How one secret differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Desired, not in the store: will be created.
    Added,
    /// In both, with different values: will be updated.
    Modified,
    /// Owned by this target, no longer desired, and `delete_orphans` is on: will be deleted.
    Removed,
    /// In both with equal values: never written.
    Unchanged,
}

/// The change of one secret. Values are carried for applying and fingerprinting and are
/// never serialized.
#[derive(Clone, Debug)]
pub struct Change {
    /// The secret's path.
    pub path: SecretPath,
    /// What changes.
    pub kind: ChangeKind,
    /// Top-level keys only in the desired value.
    pub keys_added: Vec<String>,
    /// Top-level keys only in the live value.
    pub keys_removed: Vec<String>,
    /// Top-level keys in both with different values.
    pub keys_modified: Vec<String>,
    /// The live value, if any.
    pub before: Option<SecretValue>,
    /// The desired value, if any.
    pub after: Option<SecretValue>,
    /// Only the store's metadata changes (tags, description, encryption key), not the value.
    pub metadata: bool,
}

/// Options of one diff.
#[derive(Clone, Copy, Debug)]
pub struct DiffOptions<'a> {
    /// Whether owned secrets that are no longer desired are removed.
    pub delete_orphans: bool,
    /// The target whose ownership marker allows a removal.
    pub owner: &'a str,
}

/// The diff of one target: every path, sorted, and the counts of live secrets left alone.
#[derive(Clone, Debug, Default)]
pub struct TargetDiff {
    /// One entry per desired or removed path, sorted by path.
    pub changes: Vec<Change>,
    /// Live secrets not desired and not owned by this target: never touched.
    pub unmanaged: usize,
    /// Live secrets owned by this target, not desired, kept because `delete_orphans` is off.
    pub orphans: usize,
}

impl TargetDiff {
    /// How many changes of `kind` there are.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }

    /// Whether anything would be written or deleted.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.kind != ChangeKind::Unchanged)
    }
}

/// Diffs `live` against `desired`.
pub fn diff(live: &LiveState, desired: &SecretMap, options: DiffOptions<'_>) -> TargetDiff {
    let mut out = TargetDiff::default();
    for (path, want) in desired {
        let change = match live.get(path) {
            None => Change {
                path: path.clone(),
                kind: ChangeKind::Added,
                keys_added: keys_of(want),
                keys_removed: Vec::new(),
                keys_modified: Vec::new(),
                before: None,
                after: Some(want.clone()),
                metadata: false,
            },
            Some(have) => {
                let equal = have.value == *want;
                let (keys_added, keys_removed, keys_modified) =
                    if equal { Default::default() } else { key_changes(&have.value, want) };
                // Metadata drift counts only on secrets this target owns: an unowned secret
                // with the desired value stays untouched (a migration stays zero-sum).
                let metadata = equal && have.drift && have.owner.as_deref() == Some(options.owner);
                let kind = if equal && !metadata { ChangeKind::Unchanged } else { ChangeKind::Modified };
                Change {
                    path: path.clone(),
                    kind,
                    keys_added,
                    keys_removed,
                    keys_modified,
                    before: Some(have.value.clone()),
                    after: Some(want.clone()),
                    metadata,
                }
            }
        };
        out.changes.push(change);
    }
    for (path, have) in live {
        if desired.contains_key(path) {
            continue;
        }
        let owned = have.owner.as_deref() == Some(options.owner);
        if !owned {
            out.unmanaged += 1;
        } else if !options.delete_orphans {
            out.orphans += 1;
        } else {
            out.changes.push(Change {
                path: path.clone(),
                kind: ChangeKind::Removed,
                keys_added: Vec::new(),
                keys_removed: keys_of(&have.value),
                keys_modified: Vec::new(),
                before: Some(have.value.clone()),
                after: None,
                metadata: false,
            });
        }
    }
    out.changes.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What `live` holds once `diff` is applied: the desired values written, removals deleted.
pub fn apply(live: &SecretMap, diff: &TargetDiff) -> SecretMap {
    let mut out = live.clone();
    for change in &diff.changes {
        match (&change.kind, &change.after) {
            (ChangeKind::Removed, _) => {
                out.remove(&change.path);
            }
            (ChangeKind::Added | ChangeKind::Modified, Some(value)) => {
                out.insert(change.path.clone(), value.clone());
            }
            _ => {}
        }
    }
    out
}

fn keys_of(value: &SecretValue) -> Vec<String> {
    value.keys().unwrap_or_default()
}

fn key_changes(have: &SecretValue, want: &SecretValue) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (have, want) = (have.expose(), want.expose());
    let (Some(old), Some(new)) = (have.as_object(), want.as_object()) else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let mut added: Vec<String> = new.keys().filter(|k| !old.contains_key(*k)).cloned().collect();
    let mut removed: Vec<String> = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
    let mut modified: Vec<String> =
        new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| !json_eq(o, v))).map(|(k, _)| k.clone()).collect();
    added.sort();
    removed.sort();
    modified.sort();
    (added, removed, modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn path(p: &str) -> SecretPath {
        SecretPath::parse(p).unwrap()
    }

    fn live(entries: &[(&str, Value, Option<&str>)]) -> LiveState {
        entries
            .iter()
            .map(|(p, v, o)| {
                (path(p), LiveSecret { value: SecretValue::new(v.clone()), owner: o.map(str::to_string), drift: false })
            })
            .collect()
    }

    fn desired(entries: &[(&str, Value)]) -> SecretMap {
        entries.iter().map(|(p, v)| (path(p), SecretValue::new(v.clone()))).collect()
    }

    const OPTS: DiffOptions<'static> = DiffOptions { delete_orphans: true, owner: "T" };

    #[test]
    fn classifies_every_path_with_key_changes() {
        let d = diff(
            &live(&[
                ("same", json!({"a": 1}), Some("T")),
                ("mod", json!({"keep": 1, "old": 2, "chg": 3}), Some("T")),
                ("gone", json!({"x": 1}), Some("T")),
            ]),
            &desired(&[
                ("same", json!({"a": 1.0})),
                ("mod", json!({"keep": 1, "chg": 4, "new": 5})),
                ("new", json!({"k": 1})),
            ]),
            OPTS,
        );
        let kinds: Vec<(&str, ChangeKind)> = d.changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("gone", ChangeKind::Removed),
                ("mod", ChangeKind::Modified),
                ("new", ChangeKind::Added),
                ("same", ChangeKind::Unchanged)
            ]
        );
        let m = &d.changes[1];
        assert_eq!(
            (m.keys_added.clone(), m.keys_removed.clone(), m.keys_modified.clone()),
            (vec!["new".to_string()], vec!["old".to_string()], vec!["chg".to_string()])
        );
        assert_eq!(d.changes[2].keys_added, ["k"]);
    }

    #[test]
    fn removal_needs_delete_orphans_and_ownership() {
        let state = live(&[("mine", json!(1), Some("T")), ("other", json!(1), Some("U")), ("manual", json!(1), None)]);
        let d = diff(&state, &SecretMap::new(), OPTS);
        assert_eq!(d.changes.len(), 1);
        assert_eq!((d.changes[0].path.as_str(), d.changes[0].kind), ("mine", ChangeKind::Removed));
        assert_eq!((d.unmanaged, d.orphans), (2, 0));

        let kept = diff(&state, &SecretMap::new(), DiffOptions { delete_orphans: false, owner: "T" });
        assert!(kept.changes.is_empty());
        assert_eq!((kept.unmanaged, kept.orphans), (2, 1));
    }

    #[test]
    fn unowned_secret_with_equal_value_is_unchanged() {
        let d = diff(&live(&[("s", json!({"a": 1}), None)]), &desired(&[("s", json!({"a": 1}))]), OPTS);
        assert!(!d.has_changes());
    }

    #[test]
    fn metadata_drift_is_a_change_only_on_owned_secrets() {
        let mut state = live(&[("mine", json!({"a": 1}), Some("T")), ("theirs", json!({"a": 1}), None)]);
        for secret in state.values_mut() {
            secret.drift = true;
        }
        let d = diff(&state, &desired(&[("mine", json!({"a": 1})), ("theirs", json!({"a": 1}))]), OPTS);
        assert_eq!((d.changes[0].kind, d.changes[0].metadata), (ChangeKind::Modified, true));
        assert!(d.changes[0].keys_modified.is_empty());
        assert_eq!((d.changes[1].kind, d.changes[1].metadata), (ChangeKind::Unchanged, false));
    }

    #[test]
    fn scalar_values_have_no_key_lists() {
        let d = diff(&live(&[("s", json!("a"), Some("T"))]), &desired(&[("s", json!("b"))]), OPTS);
        assert_eq!(d.changes[0].kind, ChangeKind::Modified);
        assert!(d.changes[0].keys_modified.is_empty());
    }
}
