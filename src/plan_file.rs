//! Plan files: `vss plan -o plan.json` saves a dry run, `vss apply plan.json` applies it
//! exactly (README, *Plan and apply*).
//!
//! A plan file lists, per target and phase, every change with its path, kind and key
//! names, the keyed fingerprint of the desired value and what the read saw of the live
//! secret (the store's version, the fingerprint of its value or of what vss recorded, its
//! owner). It holds no secret value: fingerprints are keyed by `VSS_FINGERPRINT_KEY`,
//! without which no plan is made (a fingerprint with a known key could be guessed from
//! the file for a short value).
//!
//! Applying plans the run again from the same config (checked by its SHA-256) and writes
//! only when every target plans exactly the changes of the file, against the same live
//! state ([`PlanFile::stale`]); otherwise it writes nothing and names every change that
//! went stale.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diff::{Change, ChangeKind, TargetDiff};
use crate::engine::{Outcome, Phase};
use crate::secret::Fingerprinter;

/// The version of the plan file format this build writes and reads.
pub const FORMAT: u32 = 1;

/// A saved plan (`schemas/plan.schema.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The plan file format: 1.
    pub format: u32,
    /// The vss version that made the plan.
    pub vss: String,
    /// When the plan was made (UTC).
    pub created: String,
    /// The config the plan was made from.
    pub config: ConfigStamp,
    /// The fingerprint of a fixed text with the run's key: `apply` with another
    /// `VSS_FINGERPRINT_KEY` is told so rather than finding every change stale.
    pub key_check: String,
    /// What the plan runs.
    pub options: PlanOptions,
    /// Every target and phase of the run, in execution order, with its changes.
    pub targets: Vec<PlannedTarget>,
}

/// The config a plan was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigStamp {
    /// Its path, as given to `vss plan` (`apply` reads it from there unless `--config`
    /// says otherwise).
    pub path: String,
    /// The SHA-256 of its bytes, in hex: `apply` refuses a config that changed.
    pub sha256: String,
}

/// The run options a plan was made with; `apply` runs with the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanOptions {
    /// MERGE runs.
    pub merge: bool,
    /// SYNC runs.
    pub sync: bool,
    /// Only these targets are synced (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// `--adopt`.
    #[serde(default)]
    pub adopt: bool,
    /// `--allow-mass-delete`.
    #[serde(default)]
    pub allow_mass_delete: bool,
}

/// One target in one phase, and what it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedTarget {
    /// The target's name.
    pub target: String,
    /// The phase.
    pub phase: Phase,
    /// The kind of store it writes to.
    pub store: String,
    /// Where it writes.
    pub location: String,
    /// The location's own settings, when they change (a GitHub environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<PlannedSettings>,
    /// Every change that writes or deletes, by path.
    pub changes: Vec<PlannedChange>,
}

/// A change to a location's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedSettings {
    /// What the settings belong to.
    pub subject: String,
    /// `added` or `modified`.
    pub kind: ChangeKind,
    /// The settings that change.
    pub fields: Vec<String>,
}

/// One planned write or delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedChange {
    /// The secret's path (as the store names it).
    pub path: String,
    /// `added`, `modified` or `removed`.
    pub kind: ChangeKind,
    /// Top-level keys only in the desired value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_added: Vec<String>,
    /// Top-level keys only in the live value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_removed: Vec<String>,
    /// Top-level keys in both with different values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_modified: Vec<String>,
    /// Only the store's metadata changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata: bool,
    /// The keyed fingerprint of the value to write (absent for a deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<String>,
    /// What the plan's read saw of the live secret (absent when there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveToken>,
}

/// What a read saw of a live secret, without its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveToken {
    /// The store's version (KV2 version, Secrets Manager version id, GitHub `updated_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The keyed fingerprint of its value (a store that returns values), or the one vss
    /// recorded when it wrote it (a write-only store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The target its ownership marker names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The text whose fingerprint is a plan's [`PlanFile::key_check`].
const KEY_CHECK: &str = "vss plan key check";

impl PlanFile {
    /// The plan of a dry run's outcome. Only for an outcome without failures.
    pub fn of(outcome: &Outcome, config: ConfigStamp, options: PlanOptions, fingerprints: &Fingerprinter) -> PlanFile {
        PlanFile {
            format: FORMAT,
            vss: env!("CARGO_PKG_VERSION").to_string(),
            created: crate::time::timestamp(crate::time::now()),
            config,
            key_check: fingerprints.fingerprint(&serde_json::Value::String(KEY_CHECK.into())),
            options,
            targets: outcome
                .targets
                .iter()
                .map(|t| PlannedTarget {
                    target: t.target.clone(),
                    phase: t.phase,
                    store: t.store.to_string(),
                    location: t.location.clone(),
                    settings: settings_of(&t.diff),
                    changes: changes_of(&t.diff, fingerprints),
                })
                .collect(),
        }
    }

    /// Reads a plan file: its format must be this build's, and its fingerprints keyed
    /// like this run's.
    pub fn parse(text: &str, fingerprints: &Fingerprinter) -> Result<PlanFile, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a plan file (not JSON: {e})"))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => {
                return Err(format!("plan file format {f} is not the one this vss reads ({FORMAT}): make a new plan"));
            }
            None => return Err("not a plan file (no `format`)".into()),
        }
        let plan: PlanFile = serde_json::from_value(value).map_err(|e| format!("not a valid plan file: {e}"))?;
        if plan.key_check != fingerprints.fingerprint(&serde_json::Value::String(KEY_CHECK.into())) {
            return Err(format!(
                "the plan was made with another {}: apply it with the key it was made with",
                Fingerprinter::KEY_VAR
            ));
        }
        Ok(plan)
    }

    /// The plan as pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan serializes");
        text.push('\n');
        text
    }

    /// How many writes and deletes the plan makes (settings counting as one).
    pub fn changes(&self) -> usize {
        self.targets.iter().map(|t| t.changes.len() + usize::from(t.settings.is_some())).sum()
    }

    /// Every way in which a run planned now differs from the plan, one line each, sorted:
    /// a change planned and no longer needed, needed and not planned, or planned against
    /// another desired value or another live secret; a target that could not be planned;
    /// a target of the plan that this run does not have. Empty when the plan still holds.
    ///
    /// `now` is every target and phase of the run planned again: its diff, or why it
    /// could not be planned.
    pub fn stale<'d>(
        &self,
        now: impl IntoIterator<Item = (&'d str, Phase, Result<&'d TargetDiff, String>)>,
        fingerprints: &Fingerprinter,
    ) -> Vec<StaleChange> {
        let mut planned: BTreeMap<(&str, Phase), &PlannedTarget> =
            self.targets.iter().map(|t| ((t.target.as_str(), t.phase), t)).collect();
        let mut stale = Vec::new();
        for (target, phase, diff) in now {
            let was = planned.remove(&(target, phase));
            let mut push = |what: String| stale.push(StaleChange { target: target.to_string(), phase, what });
            let diff = match diff {
                Ok(diff) => diff,
                Err(why) => {
                    push(format!(": cannot be planned again: {why}"));
                    continue;
                }
            };
            let (settings, changes) = (settings_of(diff), changes_of(diff, fingerprints));
            let empty = Vec::new();
            let (was_settings, was_changes) = match was {
                Some(t) => (t.settings.clone(), &t.changes),
                None if settings.is_none() && changes.is_empty() => continue,
                None => (None, &empty),
            };
            if settings != was_settings {
                let describe = |s: &Option<PlannedSettings>| match s {
                    Some(s) => format!("{} {} ({})", s.subject, kind_name(s.kind), s.fields.join(", ")),
                    None => "no change to its settings".into(),
                };
                push(format!(": planned {}, now {}", describe(&was_settings), describe(&settings)));
            }
            let was: BTreeMap<&str, &PlannedChange> = was_changes.iter().map(|c| (c.path.as_str(), c)).collect();
            let is: BTreeMap<&str, &PlannedChange> = changes.iter().map(|c| (c.path.as_str(), c)).collect();
            let paths: std::collections::BTreeSet<&str> = was.keys().chain(is.keys()).copied().collect();
            for path in paths {
                let why = match (was.get(path), is.get(path)) {
                    (Some(w), None) => format!("planned {}, now nothing to do", kind_name(w.kind)),
                    (None, Some(i)) => format!("now {}, not in the plan", kind_name(i.kind)),
                    (Some(w), Some(i)) if w.kind != i.kind => {
                        format!("planned {}, now {}", kind_name(w.kind), kind_name(i.kind))
                    }
                    (Some(w), Some(i)) if w.desired != i.desired => format!(
                        "the desired value changed ({} → {})",
                        w.desired.as_deref().unwrap_or("none"),
                        i.desired.as_deref().unwrap_or("none")
                    ),
                    (Some(w), Some(i)) if w.live != i.live => {
                        format!("the live secret changed ({} → {})", describe_live(&w.live), describe_live(&i.live))
                    }
                    (Some(w), Some(i)) if w != i => "its keys changed".to_string(),
                    _ => continue,
                };
                push(format!(" `{path}`: {why}"));
            }
        }
        for (target, phase) in planned.into_keys() {
            stale.push(StaleChange {
                target: target.to_string(),
                phase,
                what: ": in the plan, not in this run".into(),
            });
        }
        stale.sort_by_key(ToString::to_string);
        stale
    }
}

/// One way in which a plan no longer holds, for one target and phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleChange {
    /// The target.
    pub target: String,
    /// The phase.
    pub phase: Phase,
    /// What went stale: `` `path`: why`` or `: why`, following the target.
    what: String,
}

impl std::fmt::Display for StaleChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ({}){}", self.target, self.phase.as_str(), self.what)
    }
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "to add",
        ChangeKind::Modified => "to update",
        ChangeKind::Removed => "to delete",
        ChangeKind::Unchanged => "unchanged",
        ChangeKind::Unverified => "unverified",
        ChangeKind::Excluded => "excluded",
    }
}

fn describe_live(live: &Option<LiveToken>) -> String {
    match live {
        None => "absent".into(),
        Some(t) => {
            let parts: Vec<String> = [
                t.version.as_ref().map(|v| format!("version {v}")),
                t.fingerprint.clone(),
                t.owner.as_ref().map(|o| format!("owner {o}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            if parts.is_empty() { "present".into() } else { parts.join(", ") }
        }
    }
}

fn settings_of(diff: &TargetDiff) -> Option<PlannedSettings> {
    diff.settings.as_ref().map(|s| PlannedSettings {
        subject: s.subject.clone(),
        kind: s.kind,
        fields: s.fields.clone(),
    })
}

/// The writes and deletes of a diff, as a plan records them.
fn changes_of(diff: &TargetDiff, fingerprints: &Fingerprinter) -> Vec<PlannedChange> {
    diff.changes.iter().filter(|c| c.kind.is_change()).map(|c| planned(c, fingerprints)).collect()
}

fn planned(change: &Change, fingerprints: &Fingerprinter) -> PlannedChange {
    PlannedChange {
        path: change.path.to_string(),
        kind: change.kind,
        keys_added: change.keys_added.clone(),
        keys_removed: change.keys_removed.clone(),
        keys_modified: change.keys_modified.clone(),
        metadata: change.metadata,
        desired: change.after.as_ref().map(|v| fingerprints.fingerprint_secret(v)),
        live: change.seen.as_ref().map(|seen| LiveToken {
            version: seen.version.clone(),
            fingerprint: change.before.as_ref().map(|v| fingerprints.fingerprint_secret(v)).or(seen.recorded.clone()),
            owner: seen.owner.clone(),
        }),
    }
}

/// The JSON Schema of [`PlanFile`], as committed in `schemas/plan.schema.json`.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(PlanFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Seen;
    use crate::secret::{SecretPath, SecretValue};
    use serde_json::json;

    fn diff(changes: Vec<Change>) -> TargetDiff {
        TargetDiff { changes, ..TargetDiff::default() }
    }

    fn change(path: &str, kind: ChangeKind, after: Option<serde_json::Value>, version: Option<&str>) -> Change {
        Change {
            after: after.map(SecretValue::new),
            seen: version.map(|v| Seen { version: Some(v.into()), ..Seen::default() }),
            ..Change::new(SecretPath::parse(path).unwrap(), kind)
        }
    }

    fn plan_of(d: &TargetDiff, fp: &Fingerprinter) -> PlanFile {
        PlanFile {
            format: FORMAT,
            vss: "test".into(),
            created: "2026-01-01T00:00:00Z".into(),
            config: ConfigStamp { path: "vss.yaml".into(), sha256: "0".into() },
            key_check: fp.fingerprint(&serde_json::Value::String(KEY_CHECK.into())),
            options: PlanOptions::default(),
            targets: vec![PlannedTarget {
                target: "T".into(),
                phase: Phase::Sync,
                store: "file".into(),
                location: "file out".into(),
                settings: None,
                changes: changes_of(d, fp),
            }],
        }
    }

    #[test]
    fn a_plan_holds_against_the_same_diff_and_names_every_difference() {
        let fp = Fingerprinter::with_key(b"k");
        let then = diff(vec![
            change("a", ChangeKind::Added, Some(json!({"k": "one"})), None),
            change("b", ChangeKind::Modified, Some(json!({"k": "two"})), Some("3")),
            change("c", ChangeKind::Removed, None, Some("1")),
            change("d", ChangeKind::Unchanged, Some(json!({"k": "x"})), Some("1")),
        ]);
        let plan = plan_of(&then, &fp);
        assert_eq!(plan.changes(), 3);
        assert!(plan.stale([("T", Phase::Sync, Ok(&then))], &fp).is_empty());

        let now = diff(vec![
            change("a", ChangeKind::Added, Some(json!({"k": "ONE"})), None),
            change("b", ChangeKind::Modified, Some(json!({"k": "two"})), Some("4")),
            change("e", ChangeKind::Added, Some(json!({"k": "new"})), None),
        ]);
        let stale: Vec<String> =
            plan.stale([("T", Phase::Sync, Ok(&now))], &fp).iter().map(ToString::to_string).collect();
        assert_eq!(stale.len(), 4, "{stale:#?}");
        assert!(stale[0].starts_with("`T` (sync) `a`: the desired value changed (hmac:"));
        assert_eq!(stale[1], "`T` (sync) `b`: the live secret changed (version 3 → version 4)");
        assert_eq!(stale[2], "`T` (sync) `c`: planned to delete, now nothing to do");
        assert_eq!(stale[3], "`T` (sync) `e`: now to add, not in the plan");

        let missing = plan.stale(std::iter::empty(), &fp);
        assert_eq!(missing[0].to_string(), "`T` (sync): in the plan, not in this run");
        let failed = plan.stale([("T", Phase::Sync, Err("unreachable".into()))], &fp);
        assert_eq!(failed[0].to_string(), "`T` (sync): cannot be planned again: unreachable");
    }

    #[test]
    fn a_plan_file_holds_no_value_and_reads_back_only_with_its_key() {
        let fp = Fingerprinter::with_key(b"k");
        let then = diff(vec![change("a", ChangeKind::Added, Some(json!({"k": "canary-4f1e"})), None)]);
        let text = plan_of(&then, &fp).to_json();
        assert!(!text.contains("canary-4f1e"));
        assert_eq!(PlanFile::parse(&text, &fp).unwrap(), plan_of(&then, &fp));
        let other = PlanFile::parse(&text, &Fingerprinter::with_key(b"other")).unwrap_err();
        assert!(other.contains("another VSS_FINGERPRINT_KEY"), "{other}");
        let future = text.replace("\"format\": 1", "\"format\": 9");
        assert!(PlanFile::parse(&future, &fp).unwrap_err().contains("format 9"));
        assert!(PlanFile::parse("{}", &fp).unwrap_err().contains("no `format`"));
    }
}
