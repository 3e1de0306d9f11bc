//! The report of a run: one model ([`Report`], whose JSON Schema is
//! `schemas/report.schema.json`) and four renderers: [`human`], [`json`], [`github`],
//! [`compact`]. Reports carry key names and keyed fingerprints, never values.

pub mod compact;
pub mod github;
pub mod graph;
pub mod human;
pub mod json;
pub mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::ConfigError;
use crate::diff::{ChangeKind, ChangeStatus};
use crate::engine::{Outcome, Phase};
use crate::error::{ErrorKind, Failure};
use crate::scrub::scrub;
use crate::secret::Fingerprinter;
use crate::store::stats::CallCounts;

/// The whole report of a `vss pipeline` run.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(title = "vss pipeline report")]
pub struct Report {
    /// Whether writes were skipped.
    pub dry_run: bool,
    /// No secret was (or would be) added, modified or removed, and nothing failed.
    pub zero_sum: bool,
    /// Totals over every target and phase.
    pub summary: Summary,
    /// One entry per target and phase, in execution order.
    pub targets: Vec<TargetReport>,
    /// Every error: failed targets and config errors.
    pub errors: Vec<ErrorEntry>,
    /// What deserves a look without failing the run: a selection pattern that matched
    /// nothing (a likely typo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Duration and API calls.
    pub stats: RunStats,
}

/// A warning about one target.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Warning {
    /// The target.
    pub target: String,
    /// What is wrong: `import \`api-keys\`: include \`paymnts/**\` matches nothing`.
    pub message: String,
}

/// How many unmanaged and orphan paths a target's report lists (the summary counts all).
pub const LISTED: usize = 100;

/// Change counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    /// Secrets created.
    pub added: usize,
    /// Secrets updated.
    pub modified: usize,
    /// Secrets deleted.
    pub removed: usize,
    /// Secrets left as they were.
    pub unchanged: usize,
    /// Secrets present in a store that does not return values, with nothing to prove them
    /// equal or different: not written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unverified: usize,
    /// Desired secrets whose names match an exclusion pattern: never written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded: usize,
    /// Changes whose write or delete failed (real runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: usize,
    /// Changes not attempted because another change of their target failed (real runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// Locations whose declared settings (a GitHub environment's protection rules) were
    /// (or would be) created or updated.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settings: usize,
    /// Targets that failed in at least one phase.
    pub failed_targets: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// Added + modified + removed, and locations whose settings change.
    pub fn changes(&self) -> usize {
        self.added + self.modified + self.removed + self.settings
    }
}

/// Whether a target-phase succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Done (or, in a dry run, computed).
    Ok,
    /// Failed; see `error`.
    Failed,
}

/// One target in one phase.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TargetReport {
    /// The target's name.
    pub name: String,
    /// `merge` (its bundle) or `sync` (its destination).
    pub phase: Phase,
    /// Whether it succeeded.
    pub status: Status,
    /// The kind of store it was written to (`github`, `vault`…).
    pub store: String,
    /// Where it was written.
    pub location: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Its counts.
    pub summary: TargetSummary,
    /// The location's declared settings that change (a GitHub environment's protection
    /// rules), applied before its secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsReport>,
    /// Changed paths (and unchanged ones with `--show-unchanged`), sorted.
    pub changes: Vec<ChangeReport>,
    /// Live secrets without this target's marker, by path: the first 100, sorted
    /// (`summary.unmanaged` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
    /// Orphans kept (owned, no longer desired, `delete_orphans` off), by path: the first
    /// 100, sorted (`summary.orphans` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the store says of its `unverified` secrets (why, and what would help).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Counts of one target-phase.
#[derive(Clone, Copy, Debug, Default, Serialize, JsonSchema)]
pub struct TargetSummary {
    /// Secrets created.
    pub added: usize,
    /// Secrets updated.
    pub modified: usize,
    /// Secrets deleted.
    pub removed: usize,
    /// Secrets left as they were.
    pub unchanged: usize,
    /// Secrets whose value the store does not return, with nothing to prove them equal or
    /// different: not written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unverified: usize,
    /// Desired secrets whose names match an exclusion pattern: never written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded: usize,
    /// Changes whose write or delete failed (real runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: usize,
    /// Changes not attempted because another change of the target failed (real runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// 1 when the location's declared settings change (see `settings`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settings: usize,
    /// Live secrets without this target's ownership marker, never touched.
    pub unmanaged: usize,
    /// Live secrets this target owns that are no longer desired, kept because
    /// `delete_orphans` is off.
    pub orphans: usize,
}

/// One secret's change: key names and fingerprints, no values.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangeReport {
    /// The secret's path.
    pub path: String,
    /// `added`, `modified`, `removed`, `unchanged`, `unverified` or `excluded`.
    pub change: ChangeKind,
    /// Top-level keys created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_added: Vec<String>,
    /// Top-level keys removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_removed: Vec<String>,
    /// Top-level keys whose values change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_modified: Vec<String>,
    /// Only the store's metadata changes (tags, description, encryption key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata: bool,
    /// Modified because someone else wrote it since vss did (a write-only store's record
    /// is older than the secret).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
    /// For `excluded`: the pattern its name matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_by: Option<String>,
    /// `planned` (dry run), `applied`, `failed` or `skipped`; absent for `unchanged` and
    /// `unverified`, which are never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ChangeStatus>,
    /// The kind of failure of a `failed` change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Keyed fingerprint of the live value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Keyed fingerprint of the desired value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// With `--provenance`: where each key that changes comes from (the layer that set it,
    /// the layers it replaced), for targets whose desired state was merged in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<crate::provenance::KeyOrigin>,
}

/// A change of a location's own settings: which settings, never their values' secrets
/// (there are none: reviewers, wait timers, branch patterns).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SettingsReport {
    /// What the settings belong to: `environment production`.
    pub subject: String,
    /// `added` (created) or `modified`.
    pub change: ChangeKind,
    /// The settings that change.
    pub fields: Vec<String>,
    /// `planned` (dry run), `applied`, `failed` or `skipped`.
    pub status: ChangeStatus,
    /// The kind of failure, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

/// One error.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ErrorEntry {
    /// What kind of failure: `config`, `usage`, `permission`, `unavailable`, `conflict`,
    /// `invalid`, `not_found`, `timeout`, `quota`, `io`, `dependency` or `internal`.
    pub kind: ErrorKind,
    /// The failed target, for target errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The phase it failed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The config file, for config errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line, for config errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, for config errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<usize>,
    /// The store kind that failed (`vault`, `aws`…), when a store failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Where it failed (`vault secret/app`), when a store failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What went wrong.
    pub message: String,
    /// What to do about it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ErrorEntry {
    /// A failure found before any target ran (a discovery, say), with its store and hint.
    /// Its message and hint are scrubbed of every value the run has read ([`crate::scrub`]).
    pub fn of_failure(failure: &Failure) -> Self {
        ErrorEntry {
            store: failure.store.map(str::to_string),
            location: failure.location.clone(),
            hint: failure.hint.as_deref().map(|h| scrub(h).into_owned()),
            ..ErrorEntry::message(failure.kind, scrub(&failure.message).into_owned())
        }
    }

    /// An error that is neither a target's nor in the config file (a bad flag).
    pub fn message(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorEntry {
            kind,
            target: None,
            phase: None,
            file: None,
            line: None,
            col: None,
            store: None,
            location: None,
            message: message.into(),
            hint: None,
        }
    }
}

/// How long the run took and how many API calls each store made.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct RunStats {
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Calls per store kind.
    pub calls: BTreeMap<String, CallCounts>,
}

impl Report {
    /// Builds the report of a run. Unchanged secrets are listed only with `show_unchanged`.
    pub fn from_outcome(outcome: &Outcome, fingerprints: &Fingerprinter, show_unchanged: bool) -> Report {
        let mut summary = Summary::default();
        let mut targets = Vec::new();
        let mut errors = Vec::new();
        for t in &outcome.targets {
            let d = &t.diff;
            // A dry run counts what it would do; a real run what it did.
            let done = if outcome.dry_run { ChangeStatus::Planned } else { ChangeStatus::Applied };
            let count = |kind: ChangeKind| d.changes.iter().filter(|c| c.kind == kind && c.status == done).count();
            let with_status =
                |status: ChangeStatus| d.changes.iter().filter(|c| c.kind.is_change() && c.status == status).count();
            let ts = TargetSummary {
                added: count(ChangeKind::Added),
                modified: count(ChangeKind::Modified),
                removed: count(ChangeKind::Removed),
                unchanged: d.count(ChangeKind::Unchanged),
                unverified: d.count(ChangeKind::Unverified),
                excluded: d.count(ChangeKind::Excluded),
                failed: if outcome.dry_run { 0 } else { with_status(ChangeStatus::Failed) },
                skipped: if outcome.dry_run {
                    0
                } else {
                    with_status(ChangeStatus::Skipped) + with_status(ChangeStatus::Planned)
                },
                settings: d.settings.as_ref().is_some_and(|c| c.status == done).into(),
                unmanaged: d.unmanaged.len(),
                orphans: d.orphans.len(),
            };
            summary.added += ts.added;
            summary.modified += ts.modified;
            summary.removed += ts.removed;
            summary.unchanged += ts.unchanged;
            summary.unverified += ts.unverified;
            summary.excluded += ts.excluded;
            summary.failed += ts.failed;
            summary.skipped += ts.skipped;
            summary.settings += ts.settings;
            if let Some(error) = &t.error {
                if !errors.iter().any(|e: &ErrorEntry| e.target.as_deref() == Some(t.target.as_str())) {
                    summary.failed_targets += 1;
                }
                errors.push(ErrorEntry {
                    target: Some(t.target.clone()),
                    phase: Some(t.phase),
                    ..ErrorEntry::of_failure(error)
                });
            }
            let origins: Vec<crate::provenance::KeyOrigin> = match outcome.lineages.get(&t.target) {
                Some(lineage) if t.phase == Phase::Sync => lineage.explain(None, fingerprints),
                _ => Vec::new(),
            };
            let changes = d
                .changes
                .iter()
                .filter(|c| show_unchanged || c.kind != ChangeKind::Unchanged)
                .map(|c| ChangeReport {
                    provenance: changed_origins(&origins, c),
                    path: c.path.to_string(),
                    change: c.kind,
                    keys_added: c.keys_added.clone(),
                    keys_removed: c.keys_removed.clone(),
                    keys_modified: c.keys_modified.clone(),
                    metadata: c.metadata,
                    drift: c.drift,
                    excluded_by: c.excluded_by.clone(),
                    status: c.kind.is_change().then_some(c.status),
                    error_kind: c.error,
                    before: c
                        .before
                        .as_ref()
                        .filter(|_| c.kind != ChangeKind::Added)
                        .map(|v| fingerprints.fingerprint_secret(v)),
                    after: c.after.as_ref().map(|v| fingerprints.fingerprint_secret(v)),
                })
                .collect();
            targets.push(TargetReport {
                name: t.target.clone(),
                phase: t.phase,
                status: if t.error.is_some() { Status::Failed } else { Status::Ok },
                store: t.store.to_string(),
                location: t.location.clone(),
                duration_ms: t.duration.as_millis() as u64,
                summary: ts,
                settings: d.settings.as_ref().map(|c| SettingsReport {
                    subject: c.subject.clone(),
                    change: c.kind,
                    fields: c.fields.clone(),
                    status: c.status,
                    error_kind: c.error,
                }),
                changes,
                unmanaged: d.unmanaged.iter().take(LISTED).map(ToString::to_string).collect(),
                orphans: d.orphans.iter().take(LISTED).map(ToString::to_string).collect(),
                error: t.error.as_ref().map(|e| scrub(&e.message).into_owned()),
                hint: d.hint.clone(),
            });
        }
        Report {
            dry_run: outcome.dry_run,
            zero_sum: summary.changes() == 0 && summary.failed_targets == 0,
            summary,
            targets,
            errors,
            warnings: outcome
                .warnings
                .iter()
                .map(|(target, message)| Warning { target: target.clone(), message: scrub(message).into_owned() })
                .collect(),
            stats: RunStats { duration_ms: outcome.duration.as_millis() as u64, calls: outcome.calls.clone() },
        }
    }

    /// The report of a run that stopped before any target ran: a bad config, a bad flag,
    /// a failed discovery.
    pub fn from_errors(errors: Vec<ErrorEntry>, dry_run: bool) -> Report {
        Report {
            dry_run,
            zero_sum: false,
            summary: Summary::default(),
            targets: Vec::new(),
            errors,
            warnings: Vec::new(),
            stats: RunStats::default(),
        }
    }
}

/// Config diagnostics as report errors, with file, line and column.
pub fn config_error_entries(error: &ConfigError) -> Vec<ErrorEntry> {
    error
        .diagnostics
        .iter()
        .map(|d| {
            let loc = d.span.map(|s| error.file.location(s.start));
            let message = match &d.label {
                Some(label) => format!("{} ({label})", d.message),
                None => d.message.clone(),
            };
            ErrorEntry {
                file: Some(error.file.name.clone()),
                line: loc.map(|l| l.line),
                col: loc.map(|l| l.col),
                ..ErrorEntry::message(ErrorKind::Config, message)
            }
        })
        .collect()
}

/// The origins of the keys `change` writes: every key of an added secret, the added and
/// modified keys of a modified one (every key when the store cannot say which differ).
fn changed_origins(
    origins: &[crate::provenance::KeyOrigin],
    change: &crate::diff::Change,
) -> Vec<crate::provenance::KeyOrigin> {
    if origins.is_empty() || !matches!(change.kind, ChangeKind::Added | ChangeKind::Modified) {
        return Vec::new();
    }
    let path = change.path.as_str();
    let named: Vec<&String> = change.keys_added.iter().chain(&change.keys_modified).collect();
    origins
        .iter()
        .filter(|o| o.path == path)
        .filter(|o| {
            change.kind == ChangeKind::Added || named.is_empty() || o.key.as_ref().is_some_and(|k| named.contains(&k))
        })
        .cloned()
        .collect()
}

/// The JSON Schema of [`Report`], as committed in `schemas/report.schema.json`.
pub fn report_schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
