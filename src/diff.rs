//! Pure diff of a target's live state against its desired state (README, *Diff and writes*).
//!
//! Every secret path is `added`, `modified`, `removed` or `unchanged` (or `unverified`
//! when a store returns no value and nothing proves it equal); a modified object lists its
//! top-level `keys_added`, `keys_removed` and `keys_modified`. Values compare exactly
//! (numbers by their text). `removed` exists only with `delete_orphans` and only for
//! secrets whose ownership marker names this target; other live secrets that are not desired are left alone and
//! listed (`unmanaged`, or `orphans` when vss owns them but deletion is off).

use serde::{Deserialize, Serialize};

use crate::secret::{Fingerprinter, LiveState, LiveValue, SecretMap, SecretPath, SecretValue};

/// How one secret differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Desired and present, but the store does not return values and nothing proves it
    /// equal or different: not written, and reported as such.
    Unverified,
    /// Desired, but its name matches an exclusion pattern of the store (`excluded_by`):
    /// never written nor deleted.
    Excluded,
}

impl ChangeKind {
    /// Whether it writes or deletes something.
    pub fn is_change(self) -> bool {
        matches!(self, ChangeKind::Added | ChangeKind::Modified | ChangeKind::Removed)
    }
}

/// What became of one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// Computed, not applied: a dry run, or not reached.
    Planned,
    /// Written or deleted.
    Applied,
    /// Its write or delete failed.
    Failed,
    /// Not attempted because another change of the target failed (deletes wait for every
    /// write) or a value was refused before anything was written.
    Skipped,
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
    /// Modified because someone else wrote it since vss did ([`LiveValue::Overwritten`]).
    pub drift: bool,
    /// The pattern that excludes it, for [`ChangeKind::Excluded`].
    pub excluded_by: Option<String>,
    /// What became of it (`Planned` until the engine applies it).
    pub status: ChangeStatus,
    /// Why it failed, when it did.
    pub error: Option<crate::error::ErrorKind>,
    /// What the read saw of the live secret besides its value (`None` when absent).
    pub seen: Option<Seen>,
}

/// What a read saw of a live secret besides its value (which [`Change::before`] holds,
/// when the store returns it): what a plan file records, so that applying the plan can
/// check the store still holds what the plan was computed against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The store's version of the secret ([`LiveSecret::version`](crate::secret::LiveSecret::version)).
    pub version: Option<String>,
    /// The keyed fingerprint vss recorded when it wrote the secret (write-only stores).
    pub recorded: Option<String>,
    /// The target its ownership marker names.
    pub owner: Option<String>,
}

impl Seen {
    /// What `live` says besides its value.
    pub fn of(live: &crate::secret::LiveSecret) -> Self {
        let version = match &live.value {
            LiveValue::Unreadable { version } => live.version.clone().or_else(|| version.clone()),
            _ => live.version.clone(),
        };
        let recorded = match &live.value {
            LiveValue::Fingerprint(fingerprint) => Some(fingerprint.clone()),
            _ => None,
        };
        Seen { version, recorded, owner: live.owner.clone() }
    }
}

impl Change {
    /// Sets the live value of a modified secret that was compared by fingerprint, and the
    /// key names that change.
    pub fn set_before(&mut self, before: SecretValue) {
        if let Some(after) = &self.after {
            (self.keys_added, self.keys_removed, self.keys_modified) = key_changes(&before, after);
        }
        self.before = Some(before);
    }

    /// A change of `kind` to `path`, with no keys, values or flags: planned.
    pub fn new(path: SecretPath, kind: ChangeKind) -> Self {
        Change {
            path,
            kind,
            keys_added: Vec::new(),
            keys_removed: Vec::new(),
            keys_modified: Vec::new(),
            before: None,
            after: None,
            metadata: false,
            drift: false,
            excluded_by: None,
            status: ChangeStatus::Planned,
            error: None,
            seen: None,
        }
    }
}

/// Options of one diff.
#[derive(Clone, Copy, Debug)]
pub struct DiffOptions<'a> {
    /// Whether owned secrets that are no longer desired are removed.
    pub delete_orphans: bool,
    /// The target whose ownership marker allows a removal.
    pub owner: &'a str,
    /// The key of the fingerprints stores return instead of values, if any.
    pub fingerprints: Option<&'a Fingerprinter>,
}

/// A change to the location itself, not to a secret: the settings a config declares for
/// it (a GitHub environment's protection rules), created or updated before any secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsChange {
    /// What the settings belong to: `environment production`.
    pub subject: String,
    /// [`ChangeKind::Added`] (it does not exist yet) or [`ChangeKind::Modified`].
    pub kind: ChangeKind,
    /// The settings that change (for a new one: those that are not the store's defaults).
    pub fields: Vec<String>,
    /// What became of it.
    pub status: ChangeStatus,
    /// Why it failed, when it did.
    pub error: Option<crate::error::ErrorKind>,
}

/// The diff of one target: every path, sorted, and the counts of live secrets left alone.
#[derive(Clone, Debug, Default)]
pub struct TargetDiff {
    /// The location's own settings, when the config declares some that differ.
    pub settings: Option<SettingsChange>,
    /// One entry per desired or removed path, sorted by path.
    pub changes: Vec<Change>,
    /// Live secrets not desired and not owned by this target: never touched.
    pub unmanaged: Vec<SecretPath>,
    /// Live secrets owned by this target, not desired, kept because `delete_orphans` is off.
    pub orphans: Vec<SecretPath>,
    /// What the location holds of the names it keeps without desiring them (`unmanaged`
    /// and `orphans`), where the store says: a value, or the keyed fingerprint of what vss
    /// wrote. `vss status` compares them across the scopes of one place.
    pub held: std::collections::BTreeMap<SecretPath, LiveValue>,
    /// What the store says of the `unverified` secrets, when there are some.
    pub hint: Option<String>,
}

impl TargetDiff {
    /// How many changes of `kind` there are.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }

    /// How many writes and deletes the diff makes, the location's settings counting as one.
    pub fn planned_changes(&self) -> usize {
        self.changes.iter().filter(|c| c.kind.is_change()).count() + usize::from(self.settings.is_some())
    }

    /// Whether anything would be written or deleted (the location's settings included).
    pub fn has_changes(&self) -> bool {
        self.settings.is_some() || self.changes.iter().any(|c| c.kind.is_change())
    }
}

/// Diffs `live` against `desired`.
pub fn diff(live: &LiveState, desired: &SecretMap, options: DiffOptions<'_>) -> TargetDiff {
    let mut out = TargetDiff::default();
    for (path, want) in desired {
        let change = match live.get(path) {
            None => Change {
                keys_added: keys_of(want),
                after: Some(want.clone()),
                ..Change::new(path.clone(), ChangeKind::Added)
            },
            Some(have) => {
                let equal = match &have.value {
                    LiveValue::Value(value) => Some(value == want),
                    LiveValue::Fingerprint(fingerprint) => {
                        options.fingerprints.map(|f| f.fingerprint_secret(want) == *fingerprint)
                    }
                    LiveValue::Unreadable { .. } => None,
                    LiveValue::Overwritten => Some(false),
                };
                let (keys_added, keys_removed, keys_modified) = match (&have.value, equal) {
                    (LiveValue::Value(value), Some(false)) => key_changes(value, want),
                    _ => Default::default(),
                };
                // Metadata drift counts only on secrets this target owns: an unowned secret
                // with the desired value stays untouched (a migration stays zero-sum).
                let metadata = equal == Some(true) && have.drift && have.owner.as_deref() == Some(options.owner);
                let kind = match equal {
                    None => ChangeKind::Unverified,
                    Some(true) if !metadata => ChangeKind::Unchanged,
                    Some(_) => ChangeKind::Modified,
                };
                Change {
                    path: path.clone(),
                    kind,
                    keys_added,
                    keys_removed,
                    keys_modified,
                    before: have.value().cloned(),
                    after: Some(want.clone()),
                    metadata,
                    drift: have.value == LiveValue::Overwritten,
                    excluded_by: None,
                    status: ChangeStatus::Planned,
                    error: None,
                    seen: Some(Seen::of(have)),
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
        let kept = !owned || !options.delete_orphans;
        if kept && matches!(have.value, LiveValue::Value(_) | LiveValue::Fingerprint(_)) {
            out.held.insert(path.clone(), have.value.clone());
        }
        if !owned {
            out.unmanaged.push(path.clone());
        } else if !options.delete_orphans {
            out.orphans.push(path.clone());
        } else {
            out.changes.push(Change {
                keys_removed: have.value().map(keys_of).unwrap_or_default(),
                before: have.value().cloned(),
                seen: Some(Seen::of(have)),
                ..Change::new(path.clone(), ChangeKind::Removed)
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
        new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v)).map(|(k, _)| k.clone()).collect();
    added.sort();
    removed.sort();
    modified.sort();
    (added, removed, modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::LiveSecret;
    use serde_json::{Value, json};

    fn path(p: &str) -> SecretPath {
        SecretPath::parse(p).unwrap()
    }

    fn live(entries: &[(&str, Value, Option<&str>)]) -> LiveState {
        entries
            .iter()
            .map(|(p, v, o)| (path(p), LiveSecret::with_value(SecretValue::new(v.clone()), o.map(str::to_string))))
            .collect()
    }

    fn desired(entries: &[(&str, Value)]) -> SecretMap {
        entries.iter().map(|(p, v)| (path(p), SecretValue::new(v.clone()))).collect()
    }

    const OPTS: DiffOptions<'static> = DiffOptions { delete_orphans: true, owner: "T", fingerprints: None };

    #[test]
    fn classifies_every_path_with_key_changes() {
        let d = diff(
            &live(&[
                ("same", json!({"a": 1}), Some("T")),
                ("mod", json!({"keep": 1, "old": 2, "chg": 3}), Some("T")),
                ("gone", json!({"x": 1}), Some("T")),
            ]),
            &desired(&[
                ("same", json!({"a": 1})),
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
        assert_eq!((d.unmanaged.len(), d.orphans.len()), (2, 0));
        let held: Vec<&str> = d.held.keys().map(SecretPath::as_str).collect();
        assert_eq!(held, ["manual", "other"], "what stays is held; what is deleted is not");

        let kept =
            diff(&state, &SecretMap::new(), DiffOptions { delete_orphans: false, owner: "T", fingerprints: None });
        assert!(kept.changes.is_empty());
        assert_eq!((kept.unmanaged.len(), kept.orphans.len()), (2, 1));
        assert_eq!(kept.held.len(), 3);
        assert_eq!(kept.held[&SecretPath::parse("mine").unwrap()], LiveValue::Value(SecretValue::new(json!(1))));
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

    #[test]
    fn unreadable_values_are_unverified_never_unchanged_or_rewritten() {
        let mut state = live(&[("s", json!({"a": 1}), Some("T")), ("gone", json!({"x": 1}), Some("T"))]);
        for secret in state.values_mut() {
            secret.value = LiveValue::Unreadable { version: Some("2024-01-01T00:00:00Z".into()) };
        }
        let d = diff(&state, &desired(&[("s", json!({"a": 1}))]), OPTS);
        assert_eq!(d.changes[1].kind, ChangeKind::Unverified);
        assert!(d.changes[1].before.is_none() && d.changes[1].keys_modified.is_empty());
        assert_eq!((d.changes[0].path.as_str(), d.changes[0].kind), ("gone", ChangeKind::Removed));
        let only_unverified = diff(&state, &desired(&[("s", json!({"a": 1})), ("gone", json!({"x": 1}))]), OPTS);
        assert!(!only_unverified.has_changes(), "an unverified secret is never written");
    }

    #[test]
    fn fingerprints_compare_with_the_desired_value() {
        let key = Fingerprinter::with_key(b"ledger");
        let want = SecretValue::new(json!({"a": 1}));
        let mut state = live(&[("same", json!(null), Some("T")), ("changed", json!(null), Some("T"))]);
        state.get_mut(&path("same")).unwrap().value = LiveValue::Fingerprint(key.fingerprint_secret(&want));
        state.get_mut(&path("changed")).unwrap().value =
            LiveValue::Fingerprint(key.fingerprint_secret(&SecretValue::new(json!({"a": 2}))));
        let wanted = desired(&[("same", json!({"a": 1})), ("changed", json!({"a": 1}))]);
        let d = diff(&state, &wanted, DiffOptions { fingerprints: Some(&key), ..OPTS });
        let kinds: Vec<ChangeKind> = d.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeKind::Modified, ChangeKind::Unchanged]);
        let unkeyed = diff(&state, &wanted, OPTS);
        assert!(unkeyed.changes.iter().all(|c| c.kind == ChangeKind::Unverified));
    }
}
