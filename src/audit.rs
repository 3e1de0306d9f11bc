//! The audit log: every `pipeline`, `ensure` and `status` run appends one event per target
//! and operation to a log named once in the config, with a run-wide id, the actor, the
//! status, the counts, the duration, the API quota left and the error on failure — never
//! a value (errors are scrubbed before they get here).
//!
//! The log is a JSON Lines file (`audit: { file: … }`), or a place in the merge store
//! (`audit: { merge_store: NAME }`) so that CI runs on fresh machines share one log.
//! Either way two runs writing at once never lose or interleave an event: in a file, a
//! run's events are appended in one write under an exclusive lock; in the merge store, a
//! run's events are one new entry of their own (`<time>-<run id>`), written with the
//! store's check-and-set (a conflict is tried again from a fresh read). `vss audit`
//! reads them back.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::model::Config;
use crate::error::ErrorKind;
use crate::report::{Report, Status, TargetReport};
use crate::secret::{SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::retry::RetryPolicy;
use crate::store::stats::{Quota, Stats};
use crate::store::{AnyStore, Bundle, OpenContext, Sessions, Store, StoreError};

/// `audit:` in the config: exactly one of `file` and `merge_store`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON Lines file events are appended to, relative to the config file (created
    /// when missing).
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// A name in the merge store (`[A-Za-z0-9_.-]+`, not a target's name): the log is kept
    /// where a bundle of that name would be, one entry per run.
    #[serde(default)]
    pub merge_store: Option<Spanned<String>>,
}

/// Where the audit log is (the validated `audit:`).
#[derive(Clone, Debug)]
pub enum AuditLog {
    /// A JSON Lines file.
    File(PathBuf),
    /// A place in the config's merge store, beside the bundles.
    MergeStore {
        /// Its name: the bundle name its entries are written under.
        name: String,
        /// Where the name is written in the config.
        span: Span,
    },
}

impl AuditLog {
    /// The log as messages name it: its file, or its place in the merge store.
    pub fn describe(&self, config: &Config) -> String {
        match self {
            AuditLog::File(path) => path.display().to_string(),
            AuditLog::MergeStore { name, .. } => match &config.merge_store {
                Some(store) => format!("`{name}` in the merge store ({})", store.describe()),
                None => format!("`{name}` in the merge store"),
            },
        }
    }
}

/// How one target's operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Done (or, for a dry run or `status`, computed).
    Success,
    /// Failed with nothing written.
    Failure,
    /// Failed after some of its changes were written.
    Partial,
}

/// Change counts of one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Secrets created (or, in a dry run, that would be).
    pub added: usize,
    /// Secrets updated.
    pub modified: usize,
    /// Secrets deleted.
    pub removed: usize,
    /// Secrets left as they were.
    pub unchanged: usize,
    /// Secrets whose write or delete failed.
    #[serde(default)]
    pub failed: usize,
    /// Location settings created or updated (a GitHub environment).
    #[serde(default)]
    pub settings: usize,
}

/// One audit event: one target, one operation, one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// When the run ended (UTC, `2026-11-24T08:00:00Z`).
    pub time: String,
    /// The run's id, shared by all its events.
    pub run: String,
    /// Who ran it: `GITHUB_ACTOR`, else the user.
    pub actor: String,
    /// `pipeline`, `ensure` or `status`.
    pub command: String,
    /// `merge`, `sync`, `ensure`, `dispatch` or `status`.
    pub operation: String,
    /// The target.
    pub target: String,
    /// The kind of store (`github`, `vault`…).
    pub store: String,
    /// Where (`github acme/app (actions)`).
    pub location: String,
    /// The scope within its place, for stores with scopes (`actions`, `environment prod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How it ended.
    pub status: EventStatus,
    /// Whether writes were skipped (a dry run, `status`).
    pub dry_run: bool,
    /// What changed (or would have).
    pub counts: Counts,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The store's API quota as last seen in the run (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `vss audit --output json` prints.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(title = "vss audit events")]
pub struct AuditReport {
    /// Events that match the filters, oldest first.
    pub events: Vec<Event>,
    /// Lines of the log that are not events (a write cut short), skipped.
    pub skipped_lines: usize,
}

/// Who is running vss: `GITHUB_ACTOR` in GitHub Actions, else the login user.
pub fn actor() -> String {
    ["GITHUB_ACTOR", "USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// A fresh run id: 16 hex digits.
pub fn run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The events of one report: one per target and phase. `command` is the subcommand,
/// `operation` overrides the phase name (`ensure`, `status`), `scope` gives a target's
/// scope.
pub fn events(
    report: &Report,
    run: &str,
    command: &str,
    operation: Option<&str>,
    scope: &dyn Fn(&TargetReport) -> Option<String>,
) -> Vec<Event> {
    let time = crate::time::timestamp(crate::time::now());
    let actor = actor();
    report
        .targets
        .iter()
        .map(|t| {
            let s = &t.summary;
            let counts = Counts {
                added: s.added,
                modified: s.modified,
                removed: s.removed,
                unchanged: s.unchanged,
                failed: s.failed,
                settings: s.settings,
            };
            let wrote = !report.dry_run && s.added + s.modified + s.removed + s.settings > 0;
            let status = match (t.status, wrote) {
                (Status::Ok, _) => EventStatus::Success,
                (Status::Failed, true) => EventStatus::Partial,
                (Status::Failed, false) => EventStatus::Failure,
            };
            Event {
                time: time.clone(),
                run: run.to_string(),
                actor: actor.clone(),
                command: command.to_string(),
                operation: operation.unwrap_or(t.phase.as_str()).to_string(),
                target: t.name.clone(),
                store: t.store.clone(),
                location: t.location.clone(),
                scope: scope(t),
                status,
                dry_run: report.dry_run,
                counts,
                duration_ms: t.duration_ms,
                quota: report.stats.calls.get(&t.store).and_then(|c| c.quota),
                error: t.error.clone(),
            }
        })
        .collect()
}

/// Appends `events` to the log at `path` in one write, under an exclusive lock (a run
/// writing at the same time waits). A line left unfinished by a crash is closed first.
pub fn append(path: &Path, events: &[Event]) -> std::io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for event in events {
        text.push_str(&serde_json::to_string(event).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    file.lock()?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(std::io::SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
        }
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    file.unlock()
}

/// Appends `events` to the config's audit log (nothing when it has none); the error says
/// which log could not be written and why.
pub fn append_to(config: &Config, events: &[Event]) -> Result<(), String> {
    let Some(log) = &config.audit else { return Ok(()) };
    let result = match log {
        AuditLog::File(path) => append(path, events).map_err(|e| e.to_string()),
        AuditLog::MergeStore { name, .. } => block_on(async {
            let store = open(config, name).await?;
            append_entry(&store, name, events).await
        }),
    };
    result.map_err(|e| format!("cannot append to the audit log {}: {e}", log.describe(config)))
}

/// Every event in the config's audit log, oldest first, and how many lines (or merge-store
/// entries) were not events. `since` (Unix seconds) lets a merge-store log skip reading
/// the entries of older runs.
pub fn read_from(config: &Config, log: &AuditLog, since: Option<i64>) -> Result<(Vec<Event>, usize), String> {
    let result = match log {
        AuditLog::File(path) => read(path).map_err(|e| e.to_string()),
        AuditLog::MergeStore { name, .. } => block_on(async {
            let store = open(config, name).await?;
            read_entries(&store, since).await
        }),
    };
    result.map_err(|e| format!("cannot read the audit log {}: {e}", log.describe(config)))
}

/// Runs `work` to completion on a runtime of its own (the log is written after a run's
/// runtime has finished).
pub(crate) fn block_on<T>(work: impl Future<Output = Result<T, StoreError>>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(work).map_err(|e| crate::scrub::scrub(&e.to_string()).into_owned())
}

/// The merge store, opened at the place of the bundle `name` (the audit log's, the
/// registry's).
pub(crate) async fn open(config: &Config, name: &str) -> Result<AnyStore, StoreError> {
    let store =
        config.merge_store.as_ref().ok_or_else(|| StoreError::invalid(format!("`{name}` needs a `merge_store`")))?;
    let (stats, sessions) = (Stats::default(), Sessions::default());
    let ctx = OpenContext {
        base_dir: &config.base_dir,
        stats: &stats,
        defaults: &config.defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    crate::engine::open_store(store, &ctx, Some(&Bundle { target: name, sources: &[] })).await
}

/// How often an entry is written again after a check-and-set conflict (another run wrote
/// the same place between our read and our write: an S3 log is one object).
const CONFLICT_ATTEMPTS: u32 = 10;

/// The name of a run's entry: its time without separators, then its run id
/// (`20261124T080000Z-0123456789abcdef`), so that names sort by time.
fn entry_name(time: &str, run: &str) -> String {
    let compact: String = time.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    format!("{compact}-{run}")
}

/// Writes `events` (one run's) as one new entry of the log `name` in `store`.
async fn append_entry(store: &AnyStore, name: &str, events: &[Event]) -> Result<(), StoreError> {
    let Some(first) = events.first() else { return Ok(()) };
    let path = SecretPath::parse(&entry_name(&first.time, &first.run)).map_err(StoreError::invalid)?;
    let value = SecretValue::new(serde_json::json!({ "events": events }));
    write_entry(store, &path, &value, name, "append to the audit log").await
}

/// Writes one entry of the merge-store place `name` (the audit log's, the registry's),
/// through the retry policy, writing again from a fresh read after a check-and-set
/// conflict (another run wrote the same place between our read and our write).
pub(crate) async fn write_entry(
    store: &AnyStore,
    path: &SecretPath,
    value: &SecretValue,
    name: &str,
    what: &str,
) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match RetryPolicy::default().run(what, || store.write(path, value, name)).await {
            Err(e) if e.kind() == ErrorKind::Conflict && attempt < CONFLICT_ATTEMPTS => {
                attempt += 1;
                let pause = std::time::Duration::from_millis(20 * u64::from(attempt));
                tokio::time::sleep(pause.mul_f64(0.5 + rand::random::<f64>())).await;
            }
            other => return other,
        }
    }
}

/// Every event of the entries in `store` (those of runs since `since`, when given), oldest
/// first, and how many entries were not a run's events.
async fn read_entries(store: &AnyStore, since: Option<i64>) -> Result<(Vec<Event>, usize), StoreError> {
    let retry = RetryPolicy::default();
    let mut names = retry.run("list the audit log", || store.list()).await?;
    if let Some(since) = since {
        // Entries are named by the time their run ended: older ones need not be read.
        let oldest = entry_name(&crate::time::timestamp(since), "");
        names.retain(|n| n.as_str() >= oldest.as_str());
    }
    let mut events = Vec::new();
    let mut skipped = 0;
    for chunk in names.chunks(store.batch_size().max(1)) {
        for (_, secret) in retry.run("read the audit log", || store.read_batch(chunk)).await? {
            let parsed = secret
                .into_value()
                .and_then(|v| serde_json::from_value::<Vec<Event>>(v.into_inner().get_mut("events")?.take()).ok());
            match parsed {
                Some(found) => events.extend(found),
                None => skipped += 1,
            }
        }
    }
    events.sort_by(|a, b| (&a.time, &a.run).cmp(&(&b.time, &b.run)));
    Ok((events, skipped))
}

/// Every event in the log at `path` (none when it does not exist yet), and how many lines
/// were not events.
pub fn read(path: &Path) -> std::io::Result<(Vec<Event>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Event>(line) {
            Ok(event) => events.push(event),
            Err(_) => skipped += 1,
        }
    }
    Ok((events, skipped))
}

/// One event as a line for people: time, run, actor, operation, target, status, counts,
/// duration, and the error under it.
pub fn human_line(e: &Event) -> String {
    let c = &e.counts;
    let mut counts = format!("+{} ~{} -{} ={}", c.added, c.modified, c.removed, c.unchanged);
    if c.settings > 0 {
        counts.push_str(&format!(" settings {}", c.settings));
    }
    let status = match e.status {
        EventStatus::Success => "success",
        EventStatus::Failure => "failure",
        EventStatus::Partial => "partial",
    };
    let dry = if e.dry_run { " (dry run)" } else { "" };
    let mut line = format!(
        "{}  {}  {}  {} {}{dry}  {}  {}  {status}  {counts}  {} ms\n",
        e.time, e.run, e.actor, e.command, e.operation, e.target, e.location, e.duration_ms
    );
    if let Some(error) = &e.error {
        line.push_str(&format!("    error: {error}\n"));
    }
    line
}

/// The JSON Schema of `vss audit --output json`, as committed in `schemas/audit.schema.json`.
pub fn audit_schema() -> String {
    let mut text = serde_json::to_string_pretty(&schemars::schema_for!(AuditReport)).expect("a schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run: &str) -> Event {
        Event {
            time: "2026-11-24T08:00:00Z".into(),
            run: run.into(),
            actor: "octocat".into(),
            command: "pipeline".into(),
            operation: "sync".into(),
            target: "T".into(),
            store: "file".into(),
            location: "file out".into(),
            scope: None,
            status: EventStatus::Success,
            dry_run: false,
            counts: Counts::default(),
            duration_ms: 1,
            quota: None,
            error: None,
        }
    }

    #[test]
    fn appends_read_back_and_a_cut_line_is_skipped_not_glued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert_eq!(read(&path).unwrap(), (Vec::new(), 0));
        append(&path, &[event("a"), event("a")]).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"time\": \"cut").unwrap();
        append(&path, &[event("b")]).unwrap();
        let (events, skipped) = read(&path).unwrap();
        assert_eq!(events.iter().map(|e| e.run.as_str()).collect::<Vec<_>>(), ["a", "a", "b"]);
        assert_eq!(skipped, 1);
    }
}
