//! The engine: the only place side effects start.
//!
//! 1. [`desired`] computes each target's desired state (`deep_merge(parent, imports…)`),
//!    reading every source at most once. It is the one code path for apply and dry run.
//! 2. [`merge_phase`] writes each target's bundle to the merge store, level by level.
//! 3. [`sync_phase`] diffs each target's live state against its desired state and applies
//!    the difference: creates and updates first, then deletes.
//!
//! Every target is planned (read, diffed, checked against its guards: protected paths,
//! deletion limits, API quotas) before any is applied. A dry run runs the same plan and
//! skips only the writes. A failing target is reported
//! and never stops the others.

pub mod desired;
pub mod handle;
pub mod merge_phase;
pub mod sync_phase;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::model::TargetId;
use crate::diff::{ChangeStatus, TargetDiff};
use crate::error::{ErrorKind, Failure};
use crate::plan::Plan;
use crate::store::retry::RetryPolicy;
use crate::store::stats::{CallCounts, Stats};
use crate::store::{AnyStore, Bundle, OpenContext, Sessions, StoreConfig, StoreError};

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Compute everything, write nothing.
    pub dry_run: bool,
    /// Run MERGE (when there is a merge store).
    pub merge: bool,
    /// Run SYNC.
    pub sync: bool,
    /// Only these targets are synced (their dependencies are merged as needed); all when
    /// `None`.
    pub targets: Option<Vec<TargetId>>,
    /// Overrides both phases' `parallel`.
    pub parallel: Option<usize>,
    /// SYNC computes desired states from the sources even when MERGE does not run and
    /// there is a merge store (`status`, `ensure`), rather than reading the bundles.
    pub from_sources: bool,
    /// Write the desired value over secrets vss cannot verify (present, not written by
    /// vss, unreadable): they come under vss's management (`pipeline --adopt`).
    pub adopt: bool,
    /// `ensure`: write only names that are missing, never overwrite or delete.
    pub ensure: Option<Ensure>,
    /// Deletions over a target's `max_deletes` go ahead (`--allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// The whole run's limit (`--timeout`): planning still going on then fails, and no
    /// target starts applying after it (one already applying finishes its writes).
    pub timeout: Option<Duration>,
    /// `vss apply`: the plan file the run must match exactly. Every target is planned
    /// again; unless every change still holds (same changes, same desired fingerprints,
    /// same live secrets), nothing is written. A check-and-set conflict while applying is
    /// then a failure, never a restart (a restart could write what the plan did not list).
    pub exact: Option<Arc<crate::plan_file::PlanFile>>,
    /// Keep, for every synced target whose desired state was merged from its sources in
    /// this run, the layers it was merged from ([`Outcome::lineages`], `--provenance`).
    pub provenance: bool,
}

/// The run's deadline: when it passes, and the `--timeout` it comes from.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    /// When.
    pub at: tokio::time::Instant,
    /// The limit as given.
    pub limit: Duration,
}

impl Deadline {
    /// The failure of a target cut off by the deadline while `doing`.
    fn failure(self, doing: &str) -> Failure {
        Failure::new(ErrorKind::Timeout, format!("{doing}: the run's --timeout of {} s passed", self.limit.as_secs()))
            .with_hint("raise --timeout, or find the slow store in the log (-v)")
    }
}

/// Set once the run is asked to stop (SIGINT, SIGTERM): planning still going on ends, no
/// write starts after it, writes in flight finish (with their ownership markers and the
/// stores' records), and the report says what was done.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks the run to stop (SIGINT, SIGTERM): planning ends, no write starts, writes in
/// flight finish.
pub fn stop() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether the run was asked to stop.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Resolves once the run is asked to stop.
async fn stopped() {
    while !stopping() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The failure of what the interruption stopped.
fn interrupted(what: &str) -> Failure {
    Failure::new(ErrorKind::Interrupted, format!("{what}: the run was interrupted"))
        .with_hint("run it again: it picks up from what is in the stores")
}

/// What `vss ensure` asks of a target: the names to write where they are missing.
#[derive(Clone, Debug, Default)]
pub struct Ensure {
    /// The names (as the store names them), or `None` for every desired name.
    pub names: Option<std::collections::BTreeSet<String>>,
}

/// How a reconciliation treats the diff, beyond writing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode<'a> {
    /// Unverified secrets are written (see [`RunOptions::adopt`]).
    pub adopt: bool,
    /// Only missing names are written (see [`RunOptions::ensure`]).
    pub ensure: Option<&'a Ensure>,
    /// Deletions over a target's limit go ahead (see [`RunOptions::allow_mass_delete`]).
    pub allow_mass_delete: bool,
    /// The run's deadline (see [`RunOptions::timeout`]).
    pub deadline: Option<Deadline>,
    /// A conflict fails the target rather than starting over (see [`RunOptions::exact`]).
    pub exact: bool,
}

/// What one reconciliation may do at its location besides writing the desired state.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The target that owns what is written (its ownership marker).
    pub owner: String,
    /// Whether owned secrets that are no longer desired are deleted.
    pub delete_orphans: bool,
    /// The target's guards (SYNC); `None` for merge bundles, which are derived data.
    pub safety: Option<crate::config::model::Safety>,
}

/// Which phase an outcome belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Bundle written to the merge store.
    Merge,
    /// Target synced to its destination.
    Sync,
}

impl Phase {
    /// `merge` or `sync`, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Merge => "merge",
            Phase::Sync => "sync",
        }
    }
}

/// The result of one target in one phase.
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    /// The target's name.
    pub target: String,
    /// The kind of store it was written to (`github`, `vault`…).
    pub store: &'static str,
    /// The phase.
    pub phase: Phase,
    /// Where it was written (`file ./out/prod`).
    pub location: String,
    /// The diff (empty when the target failed before it could be computed).
    pub diff: TargetDiff,
    /// Why the target failed, if it did.
    pub error: Option<Failure>,
    /// How long it took.
    pub duration: Duration,
}

/// One target in one phase between planning and applying: its plan, or why it has none.
#[derive(Debug)]
pub struct Step<'a> {
    /// The target's name.
    pub target: String,
    /// The kind of store it writes to.
    pub store: &'static str,
    /// The phase.
    pub phase: Phase,
    /// Where it writes.
    pub location: String,
    /// The plan, or the diff so far and the failure.
    pub planned: Result<Prepared<'a>, (TargetDiff, Failure)>,
    /// How long planning took.
    pub elapsed: Duration,
    /// The run's deadline.
    pub deadline: Option<Deadline>,
}

impl<'a> Step<'a> {
    /// A step of `phase` for `target` at `location`, planned by `planning`, timed.
    pub async fn plan(
        target: &str,
        store: &'static str,
        phase: Phase,
        location: String,
        deadline: Option<Deadline>,
        planning: impl std::future::Future<Output = Result<Prepared<'a>, (TargetDiff, Failure)>>,
    ) -> Step<'a> {
        let started = Instant::now();
        let bounded = async {
            match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline.at, planning).await {
                    Ok(planned) => planned,
                    Err(_) => Err((TargetDiff::default(), deadline.failure("not planned"))),
                },
                None => planning.await,
            }
        };
        let planned = tokio::select! {
            planned = bounded => planned,
            () = stopped() => Err((TargetDiff::default(), interrupted("not planned"))),
        };
        Step { target: target.to_string(), store, phase, location, planned, elapsed: started.elapsed(), deadline }
    }

    /// Applies the plan (unless `dry_run`), or fails with `failure` instead when given;
    /// the outcome.
    pub async fn finish(self, dry_run: bool, failure: Option<Failure>, progress: &dyn Progress) -> TargetOutcome {
        let started = Instant::now();
        let late = self.deadline.filter(|d| tokio::time::Instant::now() >= d.at);
        let failure = failure.or_else(|| {
            let has_changes = self.planned.as_ref().is_ok_and(|p| p.diff.has_changes());
            if has_changes && !dry_run && stopping() {
                return Some(interrupted("not applied, nothing written"));
            }
            late.filter(|_| has_changes && !dry_run).map(|d| d.failure("not applied, nothing written"))
        });
        let result = match (failure, self.planned) {
            (Some(failure), _) => Err((TargetDiff::default(), failure)),
            (None, Ok(prepared)) if !dry_run => prepared.apply().await,
            (None, Ok(prepared)) => Ok(prepared.diff),
            (None, Err(failed)) => Err(failed),
        };
        progress.done(&self.target, self.phase);
        let (diff, error) = match result {
            Ok(diff) => (diff, None),
            Err((diff, error)) => (diff, Some(error)),
        };
        TargetOutcome {
            target: self.target,
            store: self.store,
            phase: self.phase,
            location: self.location,
            diff,
            error,
            duration: self.elapsed + started.elapsed(),
        }
    }
}

/// Applies `steps`, `parallel` targets at a time; the outcomes in the order of `steps`.
/// `failed` says which must fail instead (and why), before anything of them is applied.
pub async fn finish_all(
    steps: Vec<Step<'_>>,
    dry_run: bool,
    failed: impl Fn(&Step<'_>) -> Option<Failure>,
    parallel: usize,
    progress: &dyn Progress,
) -> Vec<TargetOutcome> {
    use futures::StreamExt;
    let mut outcomes: Vec<(usize, TargetOutcome)> = futures::stream::iter(steps.into_iter().enumerate())
        .map(|(position, step)| {
            let failure = failed(&step);
            async move { (position, step.finish(dry_run, failure, progress).await) }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|(position, _)| *position);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Progress notifications, for a progress bar.
pub trait Progress: Send + Sync {
    /// `total` target-phases will run.
    fn start(&self, total: usize);
    /// One target-phase finished.
    fn done(&self, target: &str, phase: Phase);
}

/// A progress sink that ignores everything.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: usize) {}
    fn done(&self, _target: &str, _phase: Phase) {}
}

/// Everything a run did or would do.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Whether writes were skipped.
    pub dry_run: bool,
    /// One entry per target and phase, in execution order.
    pub targets: Vec<TargetOutcome>,
    /// API calls per store kind.
    pub calls: std::collections::BTreeMap<String, CallCounts>,
    /// Wall time.
    pub duration: Duration,
    /// With [`RunOptions::provenance`]: each synced target's desired state and the layers
    /// it was merged from, by target name.
    pub lineages: std::collections::BTreeMap<String, crate::provenance::Lineage>,
    /// Warnings about targets (selection patterns that matched nothing): target, message.
    pub warnings: Vec<(String, String)>,
}

/// Runs the pipeline.
///
/// # Panics
///
/// When handed a plan whose dynamic targets were not discovered ([`Plan::offline`] of a
/// config that has some): the engine runs complete plans only.
pub async fn run(plan: &Plan<'_>, options: &RunOptions, progress: Arc<dyn Progress>) -> Outcome {
    assert!(plan.undiscovered().is_empty(), "the engine runs plans whose dynamic targets were discovered");
    let started = Instant::now();
    let stats = Stats::default();
    let sessions = Sessions::default();
    let fingerprints = crate::secret::Fingerprinter::stable();
    let ctx = OpenContext {
        base_dir: &plan.config.base_dir,
        stats: &stats,
        defaults: &plan.config.defaults,
        sessions: &sessions,
        fingerprints: fingerprints.as_ref(),
    };
    let selected: Vec<TargetId> = options.targets.clone().unwrap_or_else(|| plan.graph.order.clone());
    let to_sync: Vec<TargetId> = plan
        .graph
        .order
        .iter()
        .copied()
        .filter(|t| selected.contains(t) && plan.target(*t).destination.is_some())
        .collect();
    let merging = options.merge && plan.config.merge_store.is_some();
    let to_merge: Vec<TargetId> = if merging { plan.graph.closure(&selected) } else { Vec::new() };
    progress.start(to_merge.len() + if options.sync { to_sync.len() } else { 0 });

    let deadline = options.timeout.map(|limit| Deadline { at: tokio::time::Instant::now() + limit, limit });
    let merge_parallel = options.parallel.unwrap_or(plan.config.merge.parallel);
    let sync_parallel = options.parallel.unwrap_or(plan.config.sync.parallel);
    let resolver = desired::Resolver::new(plan, ctx, merge_parallel);
    tracing::info!(
        merge = to_merge.len(),
        sync = if options.sync { to_sync.len() } else { 0 },
        dry_run = options.dry_run,
        "starting the pipeline"
    );
    // Every target is planned before any is written: a run whose writes cannot all be
    // made (an API quota too short for them) is refused before its first write.
    let mut merge_steps = if merging {
        merge_phase::plan(plan, &resolver, &to_merge, options.dry_run, deadline, ctx, merge_parallel).await
    } else {
        Vec::new()
    };
    let mut sync_steps = if options.sync {
        let source = if merging || plan.config.merge_store.is_none() || options.from_sources {
            sync_phase::DesiredFrom::Resolver(&resolver)
        } else {
            sync_phase::DesiredFrom::Bundles
        };
        let mode = Mode {
            adopt: options.adopt,
            ensure: options.ensure.as_ref(),
            allow_mass_delete: options.allow_mass_delete,
            deadline,
            exact: options.exact.is_some(),
        };
        sync_phase::plan(plan, source, &to_sync, options.dry_run, mode, ctx, sync_parallel).await
    } else {
        Vec::new()
    };
    if let Some(expected) = &options.exact {
        let steps = merge_steps.iter_mut().flatten().chain(sync_steps.iter_mut());
        refuse_stale(steps.collect(), expected, ctx.fingerprints);
    }
    if !options.dry_run {
        let refused = refusal(merge_steps.iter().flatten().chain(&sync_steps).filter_map(|s| s.planned.as_ref().ok()));
        if let Some(failure) = refused {
            tracing::warn!(error = %failure, "the run is refused: nothing is written");
            let steps = merge_steps.iter_mut().flatten().chain(sync_steps.iter_mut());
            refuse_all(steps, |step| has_changes(step).then(|| failure.clone()));
        }
    }
    let mut lineages = std::collections::BTreeMap::new();
    if options.provenance {
        for &id in &to_sync {
            // Targets whose desired state came from bundles, or failed, have none.
            if let Ok(lineage) = resolver.lineage(id).await {
                lineages.insert(plan.target(id).name.clone(), lineage);
            }
        }
    }
    let mut outcomes = merge_phase::apply(merge_steps, options.dry_run, merge_parallel, progress.as_ref()).await;
    let merge_failed: std::collections::HashSet<String> =
        outcomes.iter().filter(|o| o.error.is_some()).map(|o| o.target.clone()).collect();
    outcomes
        .extend(sync_phase::apply(sync_steps, &merge_failed, options.dry_run, sync_parallel, progress.as_ref()).await);
    for o in &outcomes {
        let phase = o.phase.as_str();
        match &o.error {
            None => {
                tracing::info!(target = %o.target, phase, changes = o.diff.planned_changes(), "done")
            }
            Some(e) => tracing::warn!(target = %o.target, phase, kind = e.kind.as_str(), error = %e, "failed"),
        }
    }
    Outcome {
        dry_run: options.dry_run,
        targets: outcomes,
        calls: stats.snapshot(),
        duration: started.elapsed(),
        lineages,
        warnings: resolver.warnings(),
    }
}

/// The desired state of `target` and the layers it is merged from (`vss explain`): its
/// sources are read, nothing is written.
pub async fn lineage(plan: &Plan<'_>, target: TargetId) -> Result<crate::provenance::Lineage, Failure> {
    let (stats, sessions) = (Stats::default(), Sessions::default());
    let ctx = OpenContext {
        base_dir: &plan.config.base_dir,
        stats: &stats,
        defaults: &plan.config.defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    let resolver = desired::Resolver::new(plan, ctx, plan.config.merge.parallel);
    resolver.resolve_all(&[target]).await;
    resolver.resolve(target).await?;
    resolver.lineage(target).await
}

/// Whether a step would write or delete something.
fn has_changes(step: &Step<'_>) -> bool {
    step.planned.as_ref().is_ok_and(|p| p.diff.has_changes())
}

/// Fails every planned step that `failure` gives a failure for, before anything is
/// written: its changes are skipped.
fn refuse_all<'s, 'a: 's>(
    steps: impl Iterator<Item = &'s mut Step<'a>>,
    failure: impl Fn(&Step<'a>) -> Option<Failure>,
) {
    for step in steps {
        let Some(failure) = failure(step) else { continue };
        let placeholder = Err((TargetDiff::default(), failure.clone()));
        if let Ok(prepared) = std::mem::replace(&mut step.planned, placeholder) {
            step.planned = Err(prepared.refuse(&failure));
        }
    }
}

/// `vss apply`: compares the run, planned again, with the plan file; when anything went
/// stale, every step with changes fails (`stale`, naming its own stale changes) and
/// nothing is written.
fn refuse_stale(
    mut steps: Vec<&mut Step<'_>>,
    expected: &crate::plan_file::PlanFile,
    fingerprints: Option<&crate::secret::Fingerprinter>,
) {
    let Some(fingerprints) = fingerprints else {
        let failure = Failure::new(
            ErrorKind::Stale,
            format!("a plan file cannot be checked without {}; nothing written", crate::secret::Fingerprinter::KEY_VAR),
        );
        refuse_all(steps.into_iter(), |_| Some(failure.clone()));
        return;
    };
    let now = steps.iter().map(|s| {
        let diff = match &s.planned {
            Ok(prepared) => Ok(&prepared.diff),
            Err((_, failure)) => Err(failure.message.clone()),
        };
        (s.target.as_str(), s.phase, diff)
    });
    let stale = expected.stale(now, fingerprints);
    if stale.is_empty() {
        return;
    }
    tracing::warn!(stale = stale.len(), "the plan no longer holds: nothing is written");
    let mut targets: Vec<&str> = stale.iter().map(|s| s.target.as_str()).collect();
    targets.dedup();
    let elsewhere = format!(
        "not applied: the plan no longer holds ({} stale {} in {})",
        stale.len(),
        if stale.len() == 1 { "change" } else { "changes" },
        targets.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
    );
    let hint = "make a new plan with `vss plan`, review it, and apply that one";
    let own = |step: &Step<'_>| -> Vec<String> {
        stale.iter().filter(|s| s.target == step.target && s.phase == step.phase).map(ToString::to_string).collect()
    };
    // Every step that would write, or that went stale itself, fails; when none would
    // (the plan's targets are gone from the run), every step does: the run never
    // passes for the plan's.
    let any = steps.iter().any(|s| has_changes(s) || !own(s).is_empty());
    refuse_all(steps.iter_mut().map(|s| &mut **s), |step| {
        const SHOWN: usize = 10;
        let own = own(step);
        if any && own.is_empty() && !has_changes(step) {
            return None;
        }
        let message = if own.is_empty() {
            format!("{elsewhere}; nothing written")
        } else {
            let mut listed = own.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
            if own.len() > SHOWN {
                listed.push_str(&format!(" (and {} more)", own.len() - SHOWN));
            }
            format!("the plan no longer holds: {listed}; nothing written")
        };
        Some(Failure::new(ErrorKind::Stale, message).with_hint(hint))
    });
}

/// Opens a store through the retry policy (logins and lookups can fail transiently too).
pub async fn open_store(
    config: &StoreConfig,
    ctx: &OpenContext<'_>,
    bundle: Option<&Bundle<'_>>,
) -> Result<AnyStore, StoreError> {
    RetryPolicy::default().run("open", || AnyStore::open(config, ctx, bundle)).await
}

/// How often a target is reconciled again from a fresh read after a check-and-set
/// conflict (another writer changed a secret between our read and our write).
const CONFLICT_ATTEMPTS: u32 = 3;

/// Where a reconciliation writes: the store kind and its location, for failures.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// The store kind.
    pub store: &'static str,
    /// The location, as reports show it.
    pub location: &'a str,
}

/// One target's reconciliation, planned and not yet applied: the store, what is desired,
/// and the diff of the live state against it. Every target of a run is planned before any
/// is applied, so that a run can be refused as a whole before its first write
/// ([`refusal`]).
#[derive(Debug)]
pub struct Prepared<'a> {
    handle: handle::Handle,
    desired: Arc<crate::secret::SecretMap>,
    rules: Rules,
    mode: Mode<'a>,
    store: &'static str,
    location: String,
    /// The diff, every change `planned`.
    pub diff: TargetDiff,
}

impl<'a> Prepared<'a> {
    /// Diffs a location's live state against `desired`. Values the store cannot hold are
    /// refused here, in a dry run too (and, unless `dry_run`, their changes are marked
    /// skipped). Returns the plan, or the diff so far and the failure.
    pub async fn new(
        handle: handle::Handle,
        desired: Arc<crate::secret::SecretMap>,
        rules: Rules,
        dry_run: bool,
        mode: Mode<'a>,
        place: Place<'_>,
    ) -> Result<Prepared<'a>, (TargetDiff, Failure)> {
        let diff = plan_once(&handle, &desired, &rules, dry_run, mode, place).await?;
        Ok(Prepared { handle, desired, rules, mode, store: place.store, location: place.location.to_string(), diff })
    }

    fn place(&self) -> Place<'_> {
        Place { store: self.store, location: &self.location }
    }

    /// The API quota its calls draw from, and how many calls applying it takes, when it
    /// has changes and a quota.
    fn demand(&self) -> Option<(&Arc<crate::store::quota::QuotaPool>, usize)> {
        let changes = self.diff.planned_changes();
        if changes == 0 {
            return None;
        }
        Some((self.handle.quota()?, self.handle.calls_for(changes)))
    }

    /// Applies the plan: the location's settings, then creates and updates, concurrently,
    /// then deletes (only after every write succeeded). A check-and-set conflict starts
    /// over from a fresh read, a bounded number of times, then is reported: an update is
    /// never lost. Returns the diff with each change's status, or with the failure.
    pub async fn apply(mut self) -> Result<TargetDiff, (TargetDiff, Failure)> {
        let mut attempt = 1;
        // What earlier attempts wrote: a restart reads it back as unchanged, but this run
        // made the change, and the report must say so.
        let mut earlier: Vec<crate::diff::Change> = Vec::new();
        loop {
            let plan = std::mem::take(&mut self.diff);
            if !plan.has_changes() {
                return Ok(with_earlier(plan, earlier));
            }
            let applied = apply(&self.handle, plan, &self.rules.owner, self.place()).await;
            // What was written is recorded, also after a failure (only what succeeded).
            let result = match (applied, self.handle.finish().await) {
                (applied, Ok(())) => applied,
                (Ok(plan) | Err((plan, _)), Err(e)) => {
                    Err((plan, e.into_failure("cannot record the writes", self.store, &self.location)))
                }
            };
            match result {
                Err((plan, failure))
                    if failure.kind == ErrorKind::Conflict
                        && attempt < CONFLICT_ATTEMPTS
                        && !self.mode.exact
                        && !stopping() =>
                {
                    tracing::warn!(
                        owner = %self.rules.owner,
                        attempt,
                        "a secret changed while it was being written; starting over from a fresh read"
                    );
                    // Applied, or failed on a conflict: the write may have landed with its
                    // answer lost (a retried write then meets its own new version).
                    earlier.extend(plan.changes.into_iter().filter(|c| {
                        c.status == ChangeStatus::Applied
                            || (c.status == ChangeStatus::Failed && c.error == Some(ErrorKind::Conflict))
                    }));
                    attempt += 1;
                    // Another writer is at work here: let it get ahead before reading again.
                    let pause = Duration::from_millis(50 * u64::from(attempt));
                    tokio::time::sleep(pause.mul_f64(0.5 + rand::random::<f64>())).await;
                    self.diff =
                        plan_once(&self.handle, &self.desired, &self.rules, false, self.mode, self.place()).await?;
                }
                Ok(plan) => return Ok(with_earlier(plan, earlier)),
                Err((plan, failure)) => return Err((with_earlier(plan, earlier), failure)),
            }
        }
    }

    /// Gives up the plan without writing anything, because the run was refused
    /// (`failure`, from [`refusal`]): its changes are skipped.
    pub fn refuse(mut self, failure: &Failure) -> (TargetDiff, Failure) {
        skip_all(&mut self.diff);
        let failure = Failure { store: Some(self.store), location: Some(self.location.clone()), ..failure.clone() };
        (self.diff, failure)
    }
}

/// The final attempt's diff, with the changes earlier attempts made that it reads back as
/// unchanged (or no longer sees) reported as applied: the run made them.
fn with_earlier(mut plan: TargetDiff, earlier: Vec<crate::diff::Change>) -> TargetDiff {
    use crate::diff::ChangeKind;
    for mut change in earlier {
        change.status = ChangeStatus::Applied;
        change.error = None;
        match plan.changes.iter_mut().find(|c| c.path == change.path) {
            Some(now) if now.kind == ChangeKind::Unchanged => *now = change,
            Some(_) => {}
            None if change.kind == ChangeKind::Removed => plan.changes.push(change),
            None => {}
        }
    }
    plan.changes.sort_by(|a, b| a.path.cmp(&b.path));
    plan
}

/// Why a run must not start: the planned calls of its targets that draw from one API
/// quota, added up, do not fit in what is left of it above the reserve. Returns the
/// failure of the first pool that is short, with every number, naming the targets; `None`
/// when every pool has room. Checked after every target is planned, before the first write.
pub fn refusal<'p>(plans: impl IntoIterator<Item = &'p Prepared<'p>>) -> Option<Failure> {
    let mut pools: Vec<(&Arc<crate::store::quota::QuotaPool>, usize, Vec<&str>, Place<'_>)> = Vec::new();
    for prepared in plans {
        let Some((pool, calls)) = prepared.demand() else { continue };
        match pools.iter_mut().find(|(p, ..)| Arc::ptr_eq(p, pool)) {
            Some((_, total, owners, _)) => {
                *total += calls;
                owners.push(&prepared.rules.owner);
            }
            None => pools.push((pool, calls, vec![&prepared.rules.owner], prepared.place())),
        }
    }
    pools.into_iter().find_map(|(pool, calls, owners, place)| {
        const NAMED: usize = 5;
        let mut names = owners.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
        if owners.len() > NAMED {
            names.push_str(&format!(" and {} more", owners.len() - NAMED));
        }
        let who =
            format!("the run ({} {}: {names})", owners.len(), if owners.len() == 1 { "target" } else { "targets" });
        let e = pool.check(calls, &who).err()?;
        Some(e.into_failure("the run was refused before its first write", place.store, place.location))
    })
}

/// Diffs a location's live state against `desired`: the plan of one reconciliation.
async fn plan_once(
    handle: &handle::Handle,
    desired: &crate::secret::SecretMap,
    rules: &Rules,
    dry_run: bool,
    mode: Mode<'_>,
    place: Place<'_>,
) -> Result<TargetDiff, (TargetDiff, Failure)> {
    use crate::diff::{ChangeKind, DiffOptions, diff};

    let (owner, delete_orphans) = (rules.owner.as_str(), rules.delete_orphans);
    let fail = |e: StoreError, context: &str| e.into_failure(context, place.store, place.location);
    let refuse = |message: String| (TargetDiff::default(), fail(StoreError::invalid(message), ""));
    // A store of one string per name gets the secrets as names first; two that would get
    // one name, or a name the store would refuse, fail the plan before anything is read.
    let names = named(handle, desired).map_err(refuse)?;
    let desired = names.as_ref().unwrap_or(desired);
    if let Some(why) = handle.desired_error(desired) {
        return Err(refuse(format!("{why}; nothing written")));
    }
    // `ensure NAME…`: only those names, each of which must be desired.
    let chosen = match mode.ensure.and_then(|e| e.names.as_ref()) {
        Some(wanted) => Some(only(handle, desired, wanted, owner).map_err(refuse)?),
        None => None,
    };
    let desired = chosen.as_ref().unwrap_or(desired);
    let delete_orphans = delete_orphans && mode.ensure.is_none();
    // The location's own declared settings first: a location that does not exist yet
    // reads as empty once they say it will be created.
    let settings = handle
        .settings()
        .await
        .map_err(|e| (TargetDiff::default(), fail(e, "cannot check the location's settings")))?;
    let mut live =
        handle.read_state().await.map_err(|e| (TargetDiff::default(), fail(e, "cannot read current state")))?;
    // Excluded names are never written nor deleted: out of both sides, and reported.
    let excluded: Vec<(crate::secret::SecretPath, String)> =
        desired.keys().filter_map(|name| handle.excluded(name).map(|pattern| (name.clone(), pattern))).collect();
    live.retain(|name, _| handle.excluded(name).is_none());
    let desired: std::borrow::Cow<'_, crate::secret::SecretMap> = if excluded.is_empty() {
        std::borrow::Cow::Borrowed(desired)
    } else {
        std::borrow::Cow::Owned(
            desired
                .iter()
                .filter(|(p, _)| !excluded.iter().any(|(e, _)| e == *p))
                .map(|(p, v)| (p.clone(), v.clone()))
                .collect(),
        )
    };
    // Compared as the store will hold them (a number for Secrets Manager is its text).
    let caps = handle.capabilities();
    let held: std::borrow::Cow<'_, crate::secret::SecretMap> = match caps.value_shape {
        crate::store::ValueShape::ObjectOrText | crate::store::ValueShape::TextMap => {
            std::borrow::Cow::Owned(desired.iter().map(|(p, v)| (p.clone(), caps.normalize(v))).collect())
        }
        _ => desired,
    };
    let mut plan = diff(&live, &held, DiffOptions { delete_orphans, owner, fingerprints: handle.fingerprints() });
    plan.settings = settings;
    // A store that answered from its own record (fingerprints) is read for the secrets
    // that change, so that the report names their keys.
    if caps.reads_values {
        let unread: Vec<crate::secret::SecretPath> = plan
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Modified && c.before.is_none() && !c.drift)
            .map(|c| c.path.clone())
            .collect();
        if !unread.is_empty() {
            let read = handle
                .read_paths(&unread)
                .await
                .map_err(|e| (TargetDiff::default(), fail(e, "cannot read current state")))?;
            for change in &mut plan.changes {
                if let Some(value) = read.get(&change.path).and_then(|l| l.value()) {
                    change.set_before(value.clone());
                }
            }
        }
    }
    for change in &mut plan.changes {
        match change.kind {
            // `ensure` never overwrites: what is there stays, whatever it holds.
            ChangeKind::Modified | ChangeKind::Unverified if mode.ensure.is_some() => {
                *change = crate::diff::Change::new(change.path.clone(), ChangeKind::Unchanged);
            }
            ChangeKind::Unverified if mode.adopt => change.kind = ChangeKind::Modified,
            _ => {}
        }
    }
    for (name, pattern) in excluded {
        plan.changes.push(crate::diff::Change {
            excluded_by: Some(pattern),
            ..crate::diff::Change::new(name, ChangeKind::Excluded)
        });
    }
    plan.changes.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(safety) = &rules.safety {
        // Protected paths are never overwritten nor deleted: left alone, and reported.
        for change in &mut plan.changes {
            if matches!(change.kind, ChangeKind::Modified | ChangeKind::Removed)
                && let Some(pattern) = safety.protected(change.path.as_str())
            {
                *change = crate::diff::Change {
                    excluded_by: Some(format!("protect: {pattern}")),
                    ..crate::diff::Change::new(change.path.clone(), ChangeKind::Excluded)
                };
            }
        }
        let owned = live.values().filter(|l| l.owner.as_deref() == Some(owner)).count();
        let refused = safety.refusal(plan.count(ChangeKind::Removed), owned, held.len(), mode.allow_mass_delete);
        if let Some((why, hint)) = refused {
            if !dry_run {
                skip_all(&mut plan);
            }
            let error =
                StoreError::new(ErrorKind::Refused, format!("target `{owner}` is refused: {why}; nothing written"));
            return Err((plan, fail(error.with_hint(hint).final_(), "")));
        }
    }
    if plan.count(ChangeKind::Unverified) > 0 {
        plan.hint = handle.unverified_hint();
    }
    // Values the store cannot hold are refused when the plan is made, in a dry run too,
    // and before anything is written.
    let unfit: Vec<Failure> = plan
        .changes
        .iter()
        .filter(|c| c.kind.is_change())
        .filter_map(|c| {
            // A name the store would refuse (stores of flat names were checked above).
            if names.is_none()
                && c.kind != crate::diff::ChangeKind::Removed
                && let Some(why) = handle.name_error(&c.path)
            {
                let store = StoreError::invalid(format!("secret `{}` cannot be named here: {why}", c.path));
                return Some(store.into_failure("", place.store, place.location));
            }
            let why = caps.accepts(c.after.as_ref()?).err()?;
            let store = StoreError::invalid(format!("secret `{}` cannot be written: {why}", c.path));
            Some(store.into_failure("", place.store, place.location))
        })
        .collect();
    if !unfit.is_empty() {
        if !dry_run {
            skip_all(&mut plan);
        }
        return Err((plan, summarize(unfit, "nothing written")));
    }
    Ok(plan)
}

/// Marks every change of `plan`, and its settings, skipped.
fn skip_all(plan: &mut TargetDiff) {
    mark(plan, |c| c.kind.is_change(), ChangeStatus::Skipped, None);
    if let Some(settings) = plan.settings.as_mut() {
        settings.status = ChangeStatus::Skipped;
    }
}

/// A target's desired secrets as the store's flat names, when it holds one string per
/// name; `None` for other stores. Each name keeps the secret (and key) it comes from, and
/// the store's naming rules are checked here: every problem is listed, naming the paths.
fn named(
    handle: &handle::Handle,
    desired: &crate::secret::SecretMap,
) -> Result<Option<crate::secret::SecretMap>, String> {
    let Some(options) = handle.flattening() else {
        return Ok(None);
    };
    let flat = crate::flatten::flatten(desired, &options)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
    let mut secrets = crate::secret::SecretMap::new();
    let mut problems = Vec::new();
    for (name, entry) in flat {
        let path = match crate::secret::SecretPath::parse(&name) {
            Ok(path) => path,
            Err(why) => {
                problems.push(format!("{} cannot be named `{name}`: {why}", entry.origin));
                continue;
            }
        };
        if let Some(why) = handle.name_error(&path) {
            problems.push(format!("{} cannot be named `{name}`: {why}", entry.origin));
            continue;
        }
        secrets.insert(path, crate::secret::SecretValue::new(serde_json::Value::String(entry.value)));
    }
    if !problems.is_empty() {
        return Err(format!("{}; nothing written", problems.join("; ")));
    }
    Ok(Some(secrets))
}

/// The desired secrets named in `wanted` (as the store names them; case-insensitively for
/// stores that upper-case names): every name must be desired and acceptable to the store.
fn only(
    handle: &handle::Handle,
    desired: &crate::secret::SecretMap,
    wanted: &std::collections::BTreeSet<String>,
    owner: &str,
) -> Result<crate::secret::SecretMap, String> {
    let upper = handle.flattening().is_some_and(|f| f.uppercase);
    let mut chosen = crate::secret::SecretMap::new();
    let mut problems = Vec::new();
    for name in wanted {
        let key = if upper { name.to_ascii_uppercase() } else { name.clone() };
        let found = crate::secret::SecretPath::parse(&key).ok().and_then(|p| desired.get_key_value(&p));
        match found {
            Some((path, value)) => {
                chosen.insert(path.clone(), value.clone());
            }
            None => {
                let why = crate::secret::SecretPath::parse(&key)
                    .err()
                    .or_else(|| crate::secret::SecretPath::parse(&key).ok().and_then(|p| handle.name_error(&p)));
                problems.push(match why {
                    Some(why) => format!("`{name}` cannot be a name here: {why}"),
                    None => format!("`{name}` is not in the desired state of `{owner}`: add it to one of its sources"),
                });
            }
        }
    }
    if problems.is_empty() { Ok(chosen) } else { Err(format!("{}; nothing written", problems.join("; "))) }
}

/// Applies a plan with changes: creates and updates first, then deletes.
async fn apply(
    handle: &handle::Handle,
    mut plan: TargetDiff,
    owner: &str,
    place: Place<'_>,
) -> Result<TargetDiff, (TargetDiff, Failure)> {
    use crate::diff::{ChangeKind, ChangeStatus};
    let fail = |e: StoreError, context: &str| e.into_failure(context, place.store, place.location);
    // The target starts with enough calls to finish, or writes nothing.
    let planned = plan.planned_changes();
    if let Some(pool) = handle.quota()
        && let Err(e) = pool.check(handle.calls_for(planned), "this target")
    {
        skip_all(&mut plan);
        return Err((plan, fail(e, "nothing written")));
    }
    // The location's settings before its secrets (an environment must exist first); if
    // they cannot be applied, no secret is written.
    if let Some(settings) = plan.settings.as_mut() {
        match handle.apply_settings().await {
            Ok(()) => settings.status = ChangeStatus::Applied,
            Err(e) => {
                let failure = fail(e, &format!("cannot configure {}", settings.subject));
                settings.status = ChangeStatus::Failed;
                settings.error = Some(failure.kind);
                mark(&mut plan, |c| c.kind.is_change(), ChangeStatus::Skipped, None);
                return Err((plan, failure));
            }
        }
    }
    if handle.capabilities().atomic_commit {
        let writes: Vec<(crate::secret::SecretPath, crate::secret::SecretValue)> = plan
            .changes
            .iter()
            .filter_map(|c| match c.kind {
                ChangeKind::Added | ChangeKind::Modified => c.after.clone().map(|v| (c.path.clone(), v)),
                _ => None,
            })
            .collect();
        let deletes: Vec<crate::secret::SecretPath> =
            plan.changes.iter().filter(|c| c.kind == ChangeKind::Removed).map(|c| c.path.clone()).collect();
        return match handle.commit(&writes, &deletes, owner).await {
            Ok(()) => {
                mark(&mut plan, |c| c.kind.is_change(), ChangeStatus::Applied, None);
                Ok(plan)
            }
            Err(e) => {
                let failure = fail(e, "cannot write the changes");
                mark(&mut plan, |c| c.kind.is_change(), ChangeStatus::Failed, Some(failure.kind));
                Err((plan, failure))
            }
        };
    }
    let writes: Vec<usize> = (0..plan.changes.len())
        .filter(|&i| matches!(plan.changes[i].kind, ChangeKind::Added | ChangeKind::Modified))
        .collect();
    let paths: Vec<crate::secret::SecretPath> = writes.iter().map(|&i| plan.changes[i].path.clone()).collect();
    if let Err(e) = handle.prepare(&paths, owner).await {
        mark(&mut plan, |c| c.kind.is_change(), ChangeStatus::Skipped, None);
        return Err((plan, fail(e, "cannot record the ownership of the writes; nothing written")));
    }
    let results = apply_each(&plan, &writes, handle.parallel(), |change| async move {
        if stopping() {
            return Err(interrupted(&format!("`{}` not written", change.path)));
        }
        let value = change.after.as_ref().expect("added and modified changes carry a value");
        handle.write(&change.path, value, owner).await.map_err(|e| fail(e, &format!("cannot write `{}`", change.path)))
    })
    .await;
    let failures = record(&mut plan, results);
    let deletes: Vec<usize> =
        (0..plan.changes.len()).filter(|&i| plan.changes[i].kind == ChangeKind::Removed).collect();
    if !failures.is_empty() {
        mark(&mut plan, |c| c.kind == ChangeKind::Removed, ChangeStatus::Skipped, None);
        return Err((plan, summarize(failures, "deletes skipped")));
    }
    let results = apply_each(&plan, &deletes, handle.parallel(), |change| async move {
        if stopping() {
            return Err(interrupted(&format!("`{}` not deleted", change.path)));
        }
        handle.delete(&change.path).await.map_err(|e| fail(e, &format!("cannot delete `{}`", change.path)))
    })
    .await;
    let failures = record(&mut plan, results);
    if !failures.is_empty() {
        return Err((plan, summarize(failures, "")));
    }
    Ok(plan)
}

/// Runs `apply` on the changes at `indexes`, `parallel` at a time; each result with its index.
async fn apply_each<'p, F, Fut>(
    plan: &'p TargetDiff,
    indexes: &[usize],
    parallel: usize,
    apply: F,
) -> Vec<(usize, Result<(), Failure>)>
where
    F: Fn(&'p crate::diff::Change) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    use futures::StreamExt;
    futures::stream::iter(indexes.iter().copied())
        .map(|i| {
            let fut = apply(&plan.changes[i]);
            async move { (i, fut.await) }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

/// Records each change's outcome in `plan`; returns the failures.
fn record(plan: &mut TargetDiff, results: Vec<(usize, Result<(), Failure>)>) -> Vec<Failure> {
    let mut failures = Vec::new();
    for (i, result) in results {
        let change = &mut plan.changes[i];
        match result {
            Ok(()) => change.status = ChangeStatus::Applied,
            // Never started: skipped, not failed.
            Err(failure) if failure.kind == ErrorKind::Interrupted => {
                change.status = ChangeStatus::Skipped;
                failures.push(failure);
            }
            Err(failure) => {
                change.status = ChangeStatus::Failed;
                change.error = Some(failure.kind);
                failures.push(failure);
            }
        }
    }
    failures
}

/// Sets the status (and error kind) of every change `which` selects.
fn mark(
    plan: &mut TargetDiff,
    which: impl Fn(&crate::diff::Change) -> bool,
    status: ChangeStatus,
    error: Option<ErrorKind>,
) {
    for change in plan.changes.iter_mut().filter(|c| which(c)) {
        change.status = status;
        change.error = error;
    }
}

/// Several failures of one target as one: the first by message, with a count of the rest.
/// A conflict among them makes it a conflict (the target starts over from a fresh read).
fn summarize(mut failures: Vec<Failure>, suffix: &str) -> Failure {
    failures.sort_by(|a, b| a.message.cmp(&b.message));
    let n = failures.len();
    let conflict = failures.iter().any(|f| f.kind == ErrorKind::Conflict);
    let mut first = failures.swap_remove(0);
    if n > 1 {
        first.message.push_str(&format!(" (and {} more failures)", n - 1));
    }
    if !suffix.is_empty() {
        first.message.push_str(&format!("; {suffix}"));
    }
    if conflict {
        first.kind = ErrorKind::Conflict;
    }
    first
}
