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
use crate::engine::{Mode, Phase, Place, Progress, TargetOutcome, open_store, reconcile};
use crate::plan::Plan;
use crate::store::{Bundle, OpenContext};

/// Merges `targets` (a dependency-closed set), level by level.
pub async fn run(
    plan: &Plan<'_>,
    resolver: &Resolver<'_>,
    targets: &[TargetId],
    dry_run: bool,
    ctx: OpenContext<'_>,
    parallel: usize,
    progress: &dyn Progress,
) -> Vec<TargetOutcome> {
    let Some(merge_store) = &plan.config.merge_store else { return Vec::new() };
    let limiter = Arc::new(Semaphore::new(parallel.max(1)));
    let mut outcomes = Vec::new();
    for level in plan.graph.by_level() {
        let level: Vec<TargetId> = level.into_iter().filter(|t| targets.contains(t)).collect();
        let results: Vec<TargetOutcome> = futures::stream::iter(level)
            .map(|id| {
                let limiter = limiter.clone();
                async move {
                    let started = std::time::Instant::now();
                    let name = &plan.target(id).name;
                    let location = format!("{}/{name}", merge_store.describe());
                    let result = match resolver.resolve(id).await {
                        Err(failure) => Err((Default::default(), failure)),
                        Ok(desired) => {
                            let bundle = Bundle { target: name, sources: &plan.merged_names(id) };
                            match open_store(merge_store, &ctx, Some(&bundle)).await {
                                Ok(store) => {
                                    let place = Place { store: merge_store.kind(), location: &location };
                                    let handle = Handle::new(store, limiter, parallel);
                                    reconcile(&handle, &desired, name, true, dry_run, Mode::default(), place).await
                                }
                                Err(e) => Err((
                                    Default::default(),
                                    e.into_failure("cannot open the merge store", merge_store.kind(), &location),
                                )),
                            }
                        }
                    };
                    let (diff, error) = match result {
                        Ok(diff) => (diff, None),
                        Err((diff, failure)) => (diff, Some(failure)),
                    };
                    let duration = started.elapsed();
                    let outcome = TargetOutcome {
                        target: name.clone(),
                        store: merge_store.kind(),
                        phase: Phase::Merge,
                        location,
                        diff,
                        error,
                        duration,
                    };
                    progress.done(name, Phase::Merge);
                    outcome
                }
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        let mut results = results;
        results.sort_by(|a, b| a.target.cmp(&b.target));
        outcomes.extend(results);
    }
    outcomes
}
