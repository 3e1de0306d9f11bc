//! `vss status`: the state of every target, writing nothing. It runs the SYNC diff as a
//! dry run (desired states from the sources) and turns it into findings, each with a step
//! a person can act on:
//!
//! - `missing`: desired, absent from the target;
//! - `drifted`: present with another value (for write-only stores: written by someone
//!   else since vss wrote it; for stores that return values: the real diff);
//! - `unmanaged`: present, not desired, not vss's;
//! - `unverified`: desired and present in a store that returns no values, not written by
//!   vss, so nothing proves it right;
//! - `orphaned`: vss's, no longer desired, kept because `delete_orphans` is off;
//! - `settings`: the location's declared settings differ (a GitHub environment);
//! - `excluded`: desired, but its name matches an exclusion pattern (informational: it
//!   does not make a target invalid);
//!
//! and, across targets, **conflicts**: a name that two scopes of one place (a
//! repository's Actions, environment, Dependabot and Codespaces secrets) would hold with
//! different values, shown as keyed fingerprints per scope, never values: what vss would
//! write there, or what a scope still holds of a name vss no longer writes there (the
//! ledger's fingerprint, or the value read).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use crate::cli::{Output, StatusArgs};
use crate::diff::ChangeKind;
use crate::engine::{self, NoProgress, Outcome, Phase, RunOptions};
use crate::error::Exit;
use crate::plan::Plan;
use crate::report::{ErrorEntry, Report, RunStats};
use crate::run::{config_failure, failed, load, plan, print_out, record, select, usage_failure};
use crate::secret::Fingerprinter;
use crate::store::stats::Quota;

/// What `vss status` reports (`schemas/status.schema.json`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(title = "vss status report")]
pub struct StatusReport {
    /// No finding, no conflict, no error.
    pub clean: bool,
    /// Counts.
    pub summary: StatusSummary,
    /// One entry per target with a destination, in execution order.
    pub targets: Vec<TargetStatus>,
    /// Names whose values differ between the scopes of one place.
    pub conflicts: Vec<Conflict>,
    /// Targets that could not be checked, and errors before any target ran.
    pub errors: Vec<ErrorEntry>,
    /// API quotas as last seen during the run, by store kind (GitHub).
    pub quota: BTreeMap<String, Quota>,
    /// Duration and API calls.
    pub stats: RunStats,
}

/// Counts of a status report.
#[derive(Clone, Copy, Debug, Default, Serialize, JsonSchema)]
pub struct StatusSummary {
    /// Targets checked.
    pub total: usize,
    /// Targets with no finding (excluded names aside) and no error.
    pub valid: usize,
    /// Findings that need action (every kind but `excluded`), conflicts included.
    pub findings: usize,
    /// Desired secrets absent from their target.
    pub missing: usize,
    /// Secrets whose value differs from the desired one.
    pub drifted: usize,
    /// Secrets present that vss does not manage.
    pub unmanaged: usize,
    /// Desired secrets present that nothing proves right.
    pub unverified: usize,
    /// vss's secrets no longer desired.
    pub orphaned: usize,
    /// Locations whose declared settings differ.
    pub settings: usize,
    /// Desired names that an exclusion pattern keeps out.
    pub excluded: usize,
    /// Names whose values differ between scopes.
    pub conflicts: usize,
    /// Targets that could not be checked.
    pub failed: usize,
}

/// Whether a target is as it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// No finding.
    Valid,
    /// At least one finding.
    Findings,
    /// It could not be checked.
    Failed,
}

/// One target's state.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TargetStatus {
    /// The target.
    pub name: String,
    /// Its store kind.
    pub store: String,
    /// Where it syncs.
    pub location: String,
    /// Its scope within its place, for stores with scopes (`actions`, `environment prod`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Valid, findings or failed.
    pub state: TargetState,
    /// What is not as it should be, sorted by kind then name.
    pub findings: Vec<Finding>,
    /// Why it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The kinds of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// Desired, absent.
    Missing,
    /// Present with another value.
    Drifted,
    /// The location's declared settings differ.
    Settings,
    /// Present, not desired, not vss's.
    Unmanaged,
    /// Desired and present, unreadable, not written by vss.
    Unverified,
    /// vss's, no longer desired.
    Orphaned,
    /// Desired, but excluded by a pattern (informational).
    Excluded,
}

impl FindingKind {
    /// Its name, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::Drifted => "drifted",
            FindingKind::Settings => "settings",
            FindingKind::Unmanaged => "unmanaged",
            FindingKind::Unverified => "unverified",
            FindingKind::Orphaned => "orphaned",
            FindingKind::Excluded => "excluded",
        }
    }

    /// Whether it needs action (all but `excluded`, which the config asked for).
    pub fn needs_action(self) -> bool {
        self != FindingKind::Excluded
    }
}

/// One finding, with what to do about it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The secret's name or path (for `settings`: what the settings belong to).
    pub name: String,
    /// What is wrong, in a few words.
    pub detail: String,
    /// What a person can do about it.
    pub remediation: String,
}

/// A name two scopes of one place would hold with different values.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Conflict {
    /// The place (`github acme/app`).
    pub place: String,
    /// The secret's name.
    pub name: String,
    /// Each scope that holds it: its target and the keyed fingerprint of its value.
    pub scopes: Vec<ScopeValue>,
    /// What a person can do about it.
    pub remediation: String,
}

/// One scope's value of a conflicting name.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ScopeValue {
    /// The scope (`actions`, `environment production`).
    pub scope: String,
    /// The target that writes it.
    pub target: String,
    /// The keyed fingerprint of the value.
    pub fingerprint: String,
    /// Whose value it is: what vss would write there, or what the scope holds of a name
    /// vss no longer writes there.
    pub from: ValueFrom,
}

/// Where a [`ScopeValue`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueFrom {
    /// The target's desired state.
    Desired,
    /// The scope's live secret, not desired there (an orphan or an unmanaged secret): its
    /// value as read, or the fingerprint the ledger recorded when vss wrote it.
    Held,
}

impl StatusReport {
    /// The status of a dry-run SYNC `outcome` of `plan`.
    pub fn build(plan: &Plan<'_>, outcome: &Outcome, report: Report, fingerprints: &Fingerprinter) -> StatusReport {
        let mut targets = Vec::new();
        let mut summary = StatusSummary::default();
        // (place, name) -> scopes and fingerprints, for conflicts.
        let mut by_place: BTreeMap<(String, String), Vec<ScopeValue>> = BTreeMap::new();
        for o in outcome.targets.iter().filter(|o| o.phase == Phase::Sync) {
            let id = plan.target_named(&o.target);
            let scope = id.and_then(|id| plan.target(id).destination.as_ref()?.scope());
            let sources = id.map(|id| plan.merged_names(id).join(", ")).unwrap_or_default();
            let findings = if o.error.is_some() { Vec::new() } else { findings(&o.target, &sources, &o.diff) };
            for f in &findings {
                match f.kind {
                    FindingKind::Missing => summary.missing += 1,
                    FindingKind::Drifted => summary.drifted += 1,
                    FindingKind::Settings => summary.settings += 1,
                    FindingKind::Unmanaged => summary.unmanaged += 1,
                    FindingKind::Unverified => summary.unverified += 1,
                    FindingKind::Orphaned => summary.orphaned += 1,
                    FindingKind::Excluded => summary.excluded += 1,
                }
            }
            if let Some(scope) = &scope {
                for change in o.diff.changes.iter().filter(|c| c.kind != ChangeKind::Excluded) {
                    if let Some(value) = &change.after {
                        by_place.entry((scope.place.clone(), change.path.to_string())).or_default().push(ScopeValue {
                            scope: scope.name.clone(),
                            target: o.target.clone(),
                            fingerprint: fingerprints.fingerprint_secret(value),
                            from: ValueFrom::Desired,
                        });
                    }
                }
                for (path, live) in &o.diff.held {
                    let fingerprint = match live {
                        crate::secret::LiveValue::Value(value) => fingerprints.fingerprint_secret(value),
                        crate::secret::LiveValue::Fingerprint(fingerprint) => fingerprint.clone(),
                        _ => continue,
                    };
                    by_place.entry((scope.place.clone(), path.to_string())).or_default().push(ScopeValue {
                        scope: scope.name.clone(),
                        target: o.target.clone(),
                        fingerprint,
                        from: ValueFrom::Held,
                    });
                }
            }
            let state = match (&o.error, findings.iter().any(|f| f.kind.needs_action())) {
                (Some(_), _) => TargetState::Failed,
                (None, true) => TargetState::Findings,
                (None, false) => TargetState::Valid,
            };
            summary.total += 1;
            summary.failed += usize::from(state == TargetState::Failed);
            summary.valid += usize::from(state == TargetState::Valid);
            targets.push(TargetStatus {
                name: o.target.clone(),
                store: o.store.to_string(),
                location: o.location.clone(),
                scope: scope.map(|s| s.name),
                state,
                findings,
                error: o.error.as_ref().map(|e| crate::scrub::scrub(&e.message).into_owned()),
            });
        }
        let conflicts: Vec<Conflict> = by_place
            .into_iter()
            .filter(|(_, values)| {
                // What vss writes must be one of them: scopes that only hold old values
                // of a name vss writes nowhere are not its conflict.
                values.iter().any(|v| v.from == ValueFrom::Desired)
            })
            .filter(|(_, values)| {
                let mut fps: Vec<&str> = values.iter().map(|v| v.fingerprint.as_str()).collect();
                fps.sort_unstable();
                fps.dedup();
                fps.len() > 1
            })
            .map(|((place, name), mut scopes)| {
                scopes.sort_by(|a, b| a.scope.cmp(&b.scope));
                let mut names: Vec<&str> =
                    scopes.iter().filter(|s| s.from == ValueFrom::Desired).map(|s| s.target.as_str()).collect();
                names.dedup();
                let stale: Vec<&str> =
                    scopes.iter().filter(|s| s.from == ValueFrom::Held).map(|s| s.scope.as_str()).collect();
                let remediation = if stale.is_empty() {
                    format!(
                        "give {name} one value in the sources of {}, or exclude it from all scopes but one",
                        names.join(" and ")
                    )
                } else {
                    format!(
                        "delete the {name} that vss no longer writes from {} (or set `delete_orphans: true` \
                         for vss's own), or give it the value of {}",
                        stale.join(" and "),
                        names.join(" and ")
                    )
                };
                Conflict { remediation, place, name, scopes }
            })
            .collect();
        // A target in a conflict is not valid either.
        for conflict in &conflicts {
            for t in targets.iter_mut().filter(|t| conflict.scopes.iter().any(|s| s.target == t.name)) {
                if t.state == TargetState::Valid {
                    t.state = TargetState::Findings;
                    summary.valid -= 1;
                }
            }
        }
        summary.conflicts = conflicts.len();
        summary.findings = summary.missing
            + summary.drifted
            + summary.settings
            + summary.unmanaged
            + summary.unverified
            + summary.orphaned
            + summary.conflicts;
        let quota = outcome.calls.iter().filter_map(|(kind, c)| Some((kind.clone(), c.quota?))).collect();
        StatusReport {
            clean: summary.findings == 0 && report.errors.is_empty(),
            summary,
            targets,
            conflicts,
            errors: report.errors,
            quota,
            stats: report.stats,
        }
    }
}

/// A target's findings from its dry-run diff, sorted by kind then name.
fn findings(target: &str, sources: &str, diff: &crate::diff::TargetDiff) -> Vec<Finding> {
    let run = format!("run: vss pipeline --targets {target}");
    let in_sources =
        if sources.is_empty() { "a source".to_string() } else { format!("a source of {target} ({sources})") };
    let mut out = Vec::new();
    if let Some(settings) = &diff.settings {
        let detail = match settings.kind {
            ChangeKind::Added => "does not exist yet".to_string(),
            _ => format!("differs: {}", settings.fields.join(", ")),
        };
        out.push(Finding {
            kind: FindingKind::Settings,
            name: settings.subject.clone(),
            detail,
            remediation: run.clone(),
        });
    }
    for change in &diff.changes {
        let name = change.path.to_string();
        let finding = match change.kind {
            ChangeKind::Added => {
                Some((FindingKind::Missing, "desired, absent from the target".to_string(), run.clone()))
            }
            ChangeKind::Modified if change.drift => Some((
                FindingKind::Drifted,
                "changed by someone else since vss wrote it".to_string(),
                format!(
                    "{run} to restore the value from its sources, or, if the new value is right, put it in {in_sources}"
                ),
            )),
            ChangeKind::Modified if change.metadata => {
                Some((FindingKind::Drifted, "its settings differ (metadata)".to_string(), run.clone()))
            }
            ChangeKind::Modified => Some((
                FindingKind::Drifted,
                "its value differs from the desired one".to_string(),
                format!("{run}, or, if the live value is right, put it in {in_sources}"),
            )),
            ChangeKind::Removed => Some((FindingKind::Orphaned, "vss's, no longer desired".to_string(), run.clone())),
            ChangeKind::Unverified => Some((
                FindingKind::Unverified,
                "present, not written by vss, and the store returns no value".to_string(),
                format!("{run} --adopt to write the desired value and manage it from now on"),
            )),
            ChangeKind::Excluded => Some((
                FindingKind::Excluded,
                format!("its name matches the exclusion `{}`", change.excluded_by.as_deref().unwrap_or("?")),
                "rename it (for example with `prefix`) or drop the pattern to sync it".to_string(),
            )),
            ChangeKind::Unchanged => None,
        };
        if let Some((kind, detail, remediation)) = finding {
            out.push(Finding { kind, name, detail, remediation });
        }
    }
    for path in &diff.unmanaged {
        out.push(Finding {
            kind: FindingKind::Unmanaged,
            name: path.to_string(),
            detail: "present, not in the desired state, not vss's".to_string(),
            remediation: format!(
                "remove the unmanaged secret {path}, or add it to {in_sources} and {run} --adopt so vss manages it"
            ),
        });
    }
    for path in &diff.orphans {
        out.push(Finding {
            kind: FindingKind::Orphaned,
            name: path.to_string(),
            detail: "written by vss, no longer desired".to_string(),
            remediation: format!("delete {path}, or set `pipeline.sync.delete_orphans: true` and {run}"),
        });
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// The JSON Schema of [`StatusReport`], as committed in `schemas/status.schema.json`.
pub fn status_schema() -> String {
    let mut text = serde_json::to_string_pretty(&schemars::schema_for!(StatusReport)).expect("a schema serializes");
    text.push('\n');
    text
}

/// `--output human`.
pub fn human(report: &StatusReport) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if report.clean {
        let _ = writeln!(out, "CLEAN: {} checked, no findings", plural(s.total, "target"));
    } else {
        let kinds: Vec<String> = [
            (s.missing, "missing"),
            (s.drifted, "drifted"),
            (s.settings, "settings"),
            (s.unmanaged, "unmanaged"),
            (s.unverified, "unverified"),
            (s.orphaned, "orphaned"),
            (s.conflicts, if s.conflicts == 1 { "conflict" } else { "conflicts" }),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {k}"))
        .collect();
        let verdict = if report.errors.is_empty() { "FINDINGS" } else { "FAILED" };
        let _ = writeln!(
            out,
            "{verdict}: {} in {} of {}{}{}",
            plural(s.findings, "finding"),
            s.total - s.valid,
            plural(s.total, "target"),
            if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
            if s.failed > 0 { format!(", {} failed", s.failed) } else { String::new() },
        );
    }
    for t in &report.targets {
        let state = match t.state {
            TargetState::Valid => "ok",
            TargetState::Findings => "findings",
            TargetState::Failed => "FAILED",
        };
        let _ = writeln!(out, "\n{}  {}  {state}", t.name, t.location);
        for f in &t.findings {
            let _ =
                writeln!(out, "  {:<10} {}  {}\n             -> {}", f.kind.as_str(), f.name, f.detail, f.remediation);
        }
        if let Some(error) = &t.error {
            let _ = writeln!(out, "  error: {error}");
        }
    }
    if !report.conflicts.is_empty() {
        let _ = writeln!(out, "\nconflicts");
        for c in &report.conflicts {
            let scopes: Vec<String> =
                c.scopes.iter().map(|v| format!("{} {} ({})", v.scope, v.fingerprint, v.target)).collect();
            let _ = writeln!(out, "  {} in {}: {}\n    -> {}", c.name, c.place, scopes.join(", "), c.remediation);
        }
    }
    for e in report.errors.iter().filter(|e| e.target.is_none()) {
        let _ = writeln!(out, "error: {}", e.message);
    }
    for (kind, q) in &report.quota {
        let _ = writeln!(
            out,
            "\n{kind} API quota: {} of {} left, resets at {}",
            q.remaining,
            q.limit,
            crate::time::timestamp(q.reset)
        );
    }
    out
}

/// `--output compact`: one line.
pub fn compact(report: &StatusReport) -> String {
    let s = &report.summary;
    if report.clean {
        format!("CLEAN: {} targets\n", s.total)
    } else {
        format!(
            "{}: {} findings (missing {}, drifted {}, unmanaged {}, unverified {}, orphaned {}, settings {}, conflicts {}), {} failed\n",
            if report.errors.is_empty() { "FINDINGS" } else { "FAILED" },
            s.findings,
            s.missing,
            s.drifted,
            s.unmanaged,
            s.unverified,
            s.orphaned,
            s.settings,
            s.conflicts,
            s.failed
        )
    }
}

/// `--output github`: a `::warning` per finding and conflict, `::error` per error.
pub fn github(report: &StatusReport) -> String {
    let mut out = String::new();
    for t in &report.targets {
        for f in t.findings.iter().filter(|f| f.kind.needs_action()) {
            let message = format!("{} {}: {} — {}", f.kind.as_str(), f.name, f.detail, f.remediation);
            let _ = writeln!(out, "::warning title=vss status {}::{}", t.name, message.replace('\n', " "));
        }
    }
    for c in &report.conflicts {
        let _ = writeln!(out, "::warning title=vss status conflict::{} in {}: {}", c.name, c.place, c.remediation);
    }
    for e in &report.errors {
        out.push_str(&crate::report::github::error_annotation(e));
    }
    out.push_str(&crate::report::github::notice(compact(report).trim_end()));
    out
}

/// `vss status`.
pub fn command(args: StatusArgs) -> Exit {
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, args.output, true),
    };
    let plan = match plan(&config, false) {
        Ok(plan) => plan,
        Err(failure) => {
            return failed(vec![ErrorEntry::of_failure(&failure)], &format!("error: {failure}\n"), args.output, true);
        }
    };
    let targets = match select(&plan, args.targets.as_deref(), "--targets") {
        Ok(targets) => targets,
        Err(message) => return usage_failure(message, args.output, true),
    };
    let options = RunOptions {
        exact: None,
        provenance: false,
        dry_run: true,
        merge: false,
        sync: true,
        targets,
        parallel: args.parallel.map(|p| p as usize),
        from_sources: true,
        adopt: false,
        allow_mass_delete: false,
        timeout: None,
        ensure: None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage_failure(format!("cannot start the async runtime: {e}"), args.output, true),
    };
    let outcome = runtime.block_on(engine::run(&plan, &options, std::sync::Arc::new(NoProgress)));
    let fingerprints = Fingerprinter::from_env();
    let report = Report::from_outcome(&outcome, &fingerprints, false);
    let audited = record(&plan, &report, &crate::audit::run_id(), "status", Some("status"));
    let status = StatusReport::build(&plan, &outcome, report, &fingerprints);
    print_out(&match args.output {
        Output::Human => human(&status),
        Output::Json => serde_json::to_string_pretty(&status).expect("the status serializes") + "\n",
        Output::Compact => compact(&status),
        Output::Github => github(&status),
    });
    Exit::of_run(!status.errors.is_empty() || !audited, status.summary.findings > 0, args.exit_code)
}
