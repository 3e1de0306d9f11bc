//! MERGE: for each target, level by level, its desired state is written to the merge
//! store as a bundle (`<merge store>/<target>/<secret path>`). Unchanged secrets are not
//! rewritten, paths no longer desired are removed, and nothing is written when an import
//! failed.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::config::model::TargetId;
use crate::engine::desired::Resolver;
use crate::engine::handle::Handle;
use crate::engine::{
    Deadline, Mode, Phase, Place, Prepared, Progress, Rules, Step, TargetOutcome, finish_all, open_store,
};
use crate::plan::Plan;
use crate::store::{Bundle, OpenContext};

/// Plans the bundles of `targets` (a dependency-closed set), each diffed against what the
/// merge store holds: one list per graph level, in execution order (by name within one).
pub async fn plan<'a>(
    plan: &Plan<'_>,
    resolver: &Resolver<'_>,
    targets: &[TargetId],
    dry_run: bool,
    deadline: Option<Deadline>,
    ctx: OpenContext<'_>,
    parallel: usize,
) -> Vec<Vec<Step<'a>>> {
    let Some(merge_store) = &plan.config.merge_store else { return Vec::new() };
    let limiter = Arc::new(Semaphore::new(parallel.max(1)));
    let mut steps = Vec::new();
    for level in plan.graph.by_level() {
        let level: Vec<TargetId> = level.into_iter().filter(|t| targets.contains(t)).collect();
        let mut planned: Vec<Step<'a>> = futures::stream::iter(level)
            .map(|id| {
                let limiter = limiter.clone();
                async move {
                    let name = &plan.target(id).name;
                    let location = format!("{}/{name}", merge_store.describe());
                    let planning = async {
                        let desired = resolver.resolve(id).await.map_err(|failure| (Default::default(), failure))?;
                        let bundle = Bundle { target: name, sources: &plan.merged_names(id) };
                        let store = open_store(merge_store, &ctx, Some(&bundle)).await.map_err(|e| {
                            (
                                Default::default(),
                                e.into_failure("cannot open the merge store", merge_store.kind(), &location),
                            )
                        })?;
                        let place = Place { store: merge_store.kind(), location: &location };
                        let handle = Handle::new(store, limiter, parallel);
                        let rules = Rules { owner: name.clone(), delete_orphans: true, safety: None };
                        Prepared::new(handle, desired, rules, dry_run, Mode { deadline, ..Mode::default() }, place)
                            .await
                    };
                    Step::plan(name, merge_store.kind(), Phase::Merge, location.clone(), deadline, planning).await
                }
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        planned.sort_by(|a, b| a.target.cmp(&b.target));
        steps.push(planned);
    }
    steps
}

/// Writes the planned bundles (unless `dry_run`), level by level.
pub async fn apply(
    levels: Vec<Vec<Step<'_>>>,
    dry_run: bool,
    parallel: usize,
    progress: &dyn Progress,
) -> Vec<TargetOutcome> {
    let mut outcomes = Vec::new();
    for level in levels {
        outcomes.extend(finish_all(level, dry_run, |_| None, parallel, progress).await);
    }
    outcomes
}
