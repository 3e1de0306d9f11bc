//! `vss ensure`: copy what a target needs, and only what is missing.
//!
//! - `vss ensure --target T NAME…` (or `--all`) computes T's desired state from its
//!   sources, lists T, and writes only the named secrets that are absent; an existing
//!   secret is never overwritten and nothing is deleted. A name that is not in T's desired
//!   state is an error (add it to a source). `--repo owner/name` points a GitHub target at
//!   another repository for this run, when the config's `ensure.repositories` allows it:
//!   this is what the workflow of a repository that holds secrets runs when another
//!   repository asks for them.
//! - `vss ensure --dispatch OWNER/SOURCE --repo OWNER/TARGET NAME…` is the asking side, for
//!   a caller that cannot read the secrets: it lists TARGET's Actions secrets, sends the
//!   missing names to SOURCE as a `repository_dispatch` (event type `vss-ensure`, payload
//!   `{repository, names}`), and polls TARGET until every name is there or the timeout
//!   passes (exit 2, naming what is still missing).
// Without the `github` store, `--dispatch` only says so: the imports it uses stay unused.
#![cfg_attr(not(feature = "github"), allow(unused_imports))]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cli::EnsureArgs;
use crate::diff::{Change, ChangeKind, ChangeStatus, TargetDiff};
use crate::engine::{self, Ensure, NoProgress, Outcome, Phase, RunOptions, TargetOutcome};
use crate::error::{ErrorKind, Exit, Failure};
use crate::report::{ErrorEntry, Report};
use crate::run::{config_failure, failed, load, plan, record, select, show, usage_failure};
use crate::secret::{Fingerprinter, SecretPath};

/// The repository dispatch event type `vss ensure --dispatch` sends.
pub const EVENT_TYPE: &str = "vss-ensure";

/// Whether `repo` (`owner/name`) is one of `allowed` (`owner/name` or `owner/*`).
pub fn allowed(repo: &str, allowed: &[String]) -> bool {
    let Some((owner, _)) = repo.split_once('/') else {
        return false;
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(repo) || a.eq_ignore_ascii_case(&format!("{owner}/*")))
}

use crate::store::is_repository as repo_ok;

/// `vss ensure`.
pub fn command(args: EnsureArgs, color: bool) -> Exit {
    if let Some(repo) = args.repo.as_deref().filter(|r| !repo_ok(r)) {
        return usage_failure(format!("--repo `{repo}` is not a repository's `owner/name`"), args.output, args.dry_run);
    }
    if args.dispatch.is_some() {
        return dispatch(&args, color);
    }
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, args.output, args.dry_run),
    };
    let mut plan = match plan(&config, false) {
        Ok(plan) => plan,
        Err(failure) => {
            let stderr = format!("error: {failure}\n");
            return failed(vec![ErrorEntry::of_failure(&failure)], &stderr, args.output, args.dry_run);
        }
    };
    let target = args.target.clone().unwrap_or_default();
    let id = match select(&plan, Some(std::slice::from_ref(&target)), "--target") {
        Ok(Some(ids)) if ids.len() == 1 => ids[0],
        Ok(_) => return usage_failure("--target names one target".into(), args.output, args.dry_run),
        Err(message) => return usage_failure(message, args.output, args.dry_run),
    };
    let Some(destination) = plan.target(id).destination.clone() else {
        return usage_failure(format!("target `{target}` has no destination to fill"), args.output, args.dry_run);
    };
    if let Some(repo) = &args.repo {
        if !allowed(repo, &config.ensure_repositories) {
            return usage_failure(
                format!(
                    "--repo `{repo}` is not allowed: list it (or `owner/*`) under `ensure.repositories` in {}",
                    config.file.name
                ),
                args.output,
                args.dry_run,
            );
        }
        match destination.retarget(repo) {
            Some(retargeted) => plan.targets[id.0].destination = Some(retargeted),
            None => {
                return usage_failure(
                    format!("--repo: target `{target}` does not sync to a repository"),
                    args.output,
                    args.dry_run,
                );
            }
        }
    }
    let names: Option<BTreeSet<String>> = (!args.all).then(|| args.names.iter().cloned().collect());
    let options = RunOptions {
        exact: None,
        provenance: false,
        dry_run: args.dry_run,
        merge: false,
        sync: true,
        targets: Some(vec![id]),
        parallel: None,
        from_sources: true,
        adopt: false,
        allow_mass_delete: false,
        timeout: None,
        ensure: Some(Ensure { names }),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage_failure(format!("cannot start the async runtime: {e}"), args.output, args.dry_run),
    };
    let outcome = runtime.block_on(engine::run(&plan, &options, std::sync::Arc::new(NoProgress)));
    let report = Report::from_outcome(&outcome, &Fingerprinter::from_env(), false);
    show(&report, args.output, color, false);
    let audited = record(&plan, &report, &crate::audit::run_id(), "ensure", Some("ensure"));
    Exit::of_run(!report.errors.is_empty() || !audited, report.summary.changes() > 0, args.exit_code)
}

/// `vss ensure --dispatch`: ask the source repository for the missing names and wait.
#[cfg(feature = "github")]
fn dispatch(args: &EnsureArgs, color: bool) -> Exit {
    let (source, repo) = (args.dispatch.clone().unwrap_or_default(), args.repo.clone().unwrap_or_default());
    if !repo_ok(&source) {
        return usage_failure(
            format!("--dispatch `{source}` is not a repository's `owner/name`"),
            args.output,
            args.dry_run,
        );
    }
    let mut names = BTreeSet::new();
    for name in &args.names {
        match crate::store::github::name_rule(name) {
            Some(why) => {
                return usage_failure(
                    format!("`{name}` is not a GitHub secret name: {why}"),
                    args.output,
                    args.dry_run,
                );
            }
            None => names.insert(name.to_ascii_uppercase()),
        };
    }
    if names.is_empty() {
        return usage_failure(
            "--dispatch needs the names to ensure (`--all` needs a config)".into(),
            args.output,
            args.dry_run,
        );
    }
    // The `github:` defaults of the config, when there is one; else the environment's.
    let config = if args.config.config.exists() {
        match load(&args.config.config) {
            Ok(config) => Some(config),
            Err(error) => return config_failure(&error, args.output, args.dry_run),
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage_failure(format!("cannot start the async runtime: {e}"), args.output, args.dry_run),
    };
    let started = Instant::now();
    let stats = crate::store::stats::Stats::default();
    let defaults = config.as_ref().map(|c| c.defaults.clone()).unwrap_or_default();
    let base_dir = config.as_ref().map(|c| c.base_dir.clone()).unwrap_or_default();
    let sessions = crate::store::Sessions::default();
    let ctx = crate::store::OpenContext {
        base_dir: &base_dir,
        stats: &stats,
        defaults: &defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    let timeout = Duration::from_secs(args.timeout);
    let interval = Duration::from_secs(args.interval);
    let location: crate::store::github::GithubConfig =
        serde_json::from_value(serde_json::json!({ "repo": repo })).expect("a repository location");
    let describe = <crate::store::github::GithubStore as crate::store::StoreKind>::describe(&location);
    type Seen = (BTreeSet<String>, BTreeSet<String>);
    let result: Result<Seen, crate::store::StoreError> = runtime.block_on(async {
        let store = <crate::store::github::GithubStore as crate::store::StoreKind>::open(&location, &ctx, None).await?;
        let present = store.names().await?;
        let missing: BTreeSet<String> = names.difference(&present).cloned().collect();
        if missing.is_empty() || args.dry_run {
            return Ok((missing, BTreeSet::new()));
        }
        let payload = serde_json::json!({ "repository": repo, "names": missing });
        store.dispatch(&source, EVENT_TYPE, payload).await?;
        loop {
            tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
            let now = store.names().await?;
            let still: BTreeSet<String> = missing.difference(&now).cloned().collect();
            if still.is_empty() || started.elapsed() >= timeout {
                return Ok((missing, still));
            }
        }
    });
    let (diff, error) = match result {
        Err(e) => (TargetDiff::default(), Some(e.into_failure("", "github", &describe))),
        Ok((missing, still)) => {
            let mut diff = TargetDiff::default();
            for name in &names {
                let Ok(path) = SecretPath::parse(name) else { continue };
                let change = if missing.contains(name) {
                    let status = match (args.dry_run, still.contains(name)) {
                        (true, _) => ChangeStatus::Planned,
                        (false, true) => ChangeStatus::Failed,
                        (false, false) => ChangeStatus::Applied,
                    };
                    Change { status, ..Change::new(path, ChangeKind::Added) }
                } else {
                    Change::new(path, ChangeKind::Unchanged)
                };
                diff.changes.push(change);
            }
            let error = (!still.is_empty()).then(|| {
                let list: Vec<&str> = still.iter().map(String::as_str).collect();
                Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "still missing after {} s: {} (the `{EVENT_TYPE}` workflow of {source} did not send them: check its runs)",
                        args.timeout,
                        list.join(", ")
                    ),
                )
            });
            (diff, error)
        }
    };
    let outcome = Outcome {
        lineages: Default::default(),
        warnings: Vec::new(),
        dry_run: args.dry_run,
        targets: vec![TargetOutcome {
            target: repo.clone(),
            store: "github",
            phase: Phase::Sync,
            location: describe,
            diff,
            error,
            duration: started.elapsed(),
        }],
        calls: stats.snapshot(),
        duration: started.elapsed(),
    };
    let report = Report::from_outcome(&outcome, &Fingerprinter::from_env(), true);
    show(&report, args.output, color, false);
    let audited = match &config {
        None => true,
        Some(config) => {
            let events = crate::audit::events(&report, &crate::audit::run_id(), "ensure", Some("dispatch"), &|_| {
                Some("actions".to_string())
            });
            crate::audit::append_to(config, &events).map_err(|e| eprintln!("error: {e}")).is_ok()
        }
    };
    Exit::of_run(!report.errors.is_empty() || !audited, report.summary.changes() > 0, args.exit_code)
}

/// Without the `github` store there is nothing to dispatch to.
#[cfg(not(feature = "github"))]
fn dispatch(args: &EnsureArgs, _color: bool) -> Exit {
    usage_failure("--dispatch needs vss built with the `github` store".into(), args.output, args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_allowed_by_name_or_owner() {
        let list = vec!["acme/app".to_string(), "tools/*".to_string()];
        assert!(allowed("acme/app", &list) && allowed("ACME/App", &list) && allowed("tools/x", &list));
        assert!(!allowed("acme/other", &list) && !allowed("evil/app", &list) && !allowed("tools", &list));
        assert!(repo_ok("acme/app.js") && !repo_ok("acme") && !repo_ok("acme/a/b") && !repo_ok("acme/$(x)"));
    }
}
