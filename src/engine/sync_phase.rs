//! SYNC: for each target with a destination, read its desired state (computed in this run,
//! or read back from the merge store's bundle), read the destination's live state, diff,
//! and apply the difference.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::config::model::TargetId;
use crate::engine::desired::Resolver;
use crate::engine::desired::values_of;
use crate::engine::handle::Handle;
use crate::engine::{Mode, Phase, Place, Prepared, Progress, Rules, Step, TargetOutcome, finish_all, open_store};
use crate::error::{ErrorKind, Failure};
use crate::plan::Plan;
use crate::secret::SecretMap;
use crate::store::{Bundle, OpenContext};

/// Where SYNC gets each target's desired state.
pub enum DesiredFrom<'r, 'c> {
    /// Computed in this run (MERGE ran, or there is no merge store).
    Resolver(&'r Resolver<'c>),
    /// Read from the merge store's bundles (`--sync-only` with a merge store).
    Bundles,
}

/// Plans the sync of `targets`: each destination's live state diffed against the
/// target's desired state; in the order of `targets`.
pub async fn plan<'a>(
    plan: &Plan<'_>,
    from: DesiredFrom<'_, '_>,
    targets: &[TargetId],
    dry_run: bool,
    mode: Mode<'a>,
    ctx: OpenContext<'_>,
    parallel: usize,
) -> Vec<Step<'a>> {
    if let DesiredFrom::Resolver(resolver) = &from {
        // Bounded by the run's deadline too: a target not resolved by then fails when it
        // is planned.
        match mode.deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline.at, resolver.resolve_all(targets)).await;
            }
            None => resolver.resolve_all(targets).await,
        }
    }
    let limiter = Arc::new(Semaphore::new(parallel.max(1)));
    let from = &from;
    let mut steps: Vec<(usize, Step<'a>)> = futures::stream::iter(targets.iter().copied().enumerate())
        .map(|(position, id)| {
            let limiter = limiter.clone();
            async move {
                let target = plan.target(id);
                let destination = target.destination.as_ref().expect("only targets with a destination are synced");
                let location = destination.describe();
                let planning = async {
                    let desired: Arc<SecretMap> = match from {
                        DesiredFrom::Resolver(resolver) => {
                            resolver.resolve(id).await.map_err(|e| (Default::default(), e))?
                        }
                        DesiredFrom::Bundles => read_bundle(plan, &ctx, id, limiter.clone(), parallel)
                            .await
                            .map_err(|e| (Default::default(), e))?,
                    };
                    let store = open_store(destination, &ctx, None).await.map_err(|e| {
                        let context = format!("cannot open {location}");
                        (Default::default(), e.into_failure(&context, destination.kind(), &location))
                    })?;
                    let handle = Handle::new(store, limiter, parallel);
                    let place = Place { store: destination.kind(), location: &location };
                    let rules = Rules {
                        owner: target.name.clone(),
                        delete_orphans: target.delete_orphans.unwrap_or(plan.config.sync.delete_orphans),
                        safety: Some(target.safety.clone()),
                    };
                    Prepared::new(handle, desired, rules, dry_run, mode, place).await
                };
                let step = Step::plan(
                    &target.name,
                    destination.kind(),
                    Phase::Sync,
                    location.clone(),
                    mode.deadline,
                    planning,
                )
                .await;
                (position, step)
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    steps.sort_by_key(|(position, _)| *position);
    steps.into_iter().map(|(_, step)| step).collect()
}

/// Applies the planned syncs (unless `dry_run`); targets in `merge_failed` are reported
/// as not synced.
pub async fn apply(
    steps: Vec<Step<'_>>,
    merge_failed: &std::collections::HashSet<String>,
    dry_run: bool,
    parallel: usize,
    progress: &dyn Progress,
) -> Vec<TargetOutcome> {
    // A step refused as stale keeps its own reason: it names what went stale here.
    let stale = |step: &Step<'_>| matches!(&step.planned, Err((_, f)) if f.kind == ErrorKind::Stale);
    let failed = |step: &Step<'_>| {
        (merge_failed.contains(&step.target) && !stale(step))
            .then(|| Failure::new(ErrorKind::Dependency, "not synced: its merge failed"))
    };
    finish_all(steps, dry_run, failed, parallel, progress).await
}

/// A target's bundle, read back from the merge store. An empty bundle is an error: it means
/// MERGE never ran for this target, and syncing nothing could delete everything.
async fn read_bundle(
    plan: &Plan<'_>,
    ctx: &OpenContext<'_>,
    id: TargetId,
    limiter: Arc<Semaphore>,
    parallel: usize,
) -> Result<Arc<SecretMap>, Failure> {
    let merge_store = plan.config.merge_store.as_ref().expect("bundles are read only with a merge store");
    let target = &plan.target(id).name;
    let bundle = Bundle { target, sources: &plan.merged_names(id) };
    let location = format!("{}/{target}", merge_store.describe());
    let store = open_store(merge_store, ctx, Some(&bundle))
        .await
        .map_err(|e| e.into_failure("cannot open the merge store", merge_store.kind(), &location))?;
    let live = Handle::new(store, limiter, parallel).read_bundle().await.map_err(|e| {
        let context = format!("cannot read the bundle of `{target}` from {}", merge_store.describe());
        e.into_failure(&context, merge_store.kind(), &location)
    })?;
    if live.is_empty() {
        return Err(Failure::new(
            ErrorKind::NotFound,
            format!("no bundle for `{target}` in {}: run the merge phase first", merge_store.describe()),
        ));
    }
    values_of(live).map(Arc::new).map_err(|path| {
        Failure::new(ErrorKind::Invalid, format!("the merge store does not return the value of `{path}`"))
    })
}
