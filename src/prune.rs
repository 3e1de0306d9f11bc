//! `vss prune`: cleaning up after targets deleted from the config. The registry
//! ([`crate::registry`]) remembers every target vss has written and its block as written;
//! `prune` lists the ones the config no longer has, with the secrets vss owns at their
//! locations (their ownership markers name the target) and their merge-store bundles, and,
//! with `--yes` (never with `--dry-run`), deletes exactly those and drops the targets from
//! the registry. Removing a whole target is the point, so the per-run deletion limit does
//! not apply; the confirmation does. Secrets at those locations that vss does not own (or
//! that another target owns) are never touched.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::cli::{Output, PruneArgs};
use crate::config::model::Config;
use crate::engine::handle::Handle;
use crate::error::{ErrorKind, Exit};
use crate::report::ErrorEntry;
use crate::run::{config_failure, failed, load, print_out, usage_failure};
use crate::secret::SecretPath;
use crate::store::stats::Stats;
use crate::store::{Bundle, OpenContext, Sessions, StoreConfig, StoreError};

/// `vss prune --output json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PruneReport {
    /// Whether nothing was deleted (`--dry-run`).
    pub dry_run: bool,
    /// Each target the registry has and the config no longer does.
    pub targets: Vec<PrunedTarget>,
}

/// One removed target.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PrunedTarget {
    /// Its name.
    pub target: String,
    /// Its destination, as reports name it, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The secrets vss owns there for it, by path (deleted, or to delete).
    pub secrets: Vec<String>,
    /// The secrets of its merge-store bundle, by path.
    pub bundle: Vec<String>,
    /// `planned` (dry run or not confirmed), `deleted` or `failed`.
    pub status: String,
    /// Why its location was left alone, when it was (another target of the config writes
    /// there now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The configured target whose destination is (or overlaps) `location`, if any.
fn successor(config: &Config, location: &StoreConfig) -> Option<String> {
    let locus = location.locus(&config.defaults, &config.base_dir);
    config.targets.iter().find_map(|t| {
        let destination = t.destination.as_ref()?;
        let same = match (&locus, destination.locus(&config.defaults, &config.base_dir)) {
            (Some(a), Some(b)) => a.overlaps(&b),
            _ => destination.describe() == location.describe(),
        };
        same.then(|| t.name.clone())
    })
}

/// What was found for one removed target: the opened stores and what to delete in them.
struct Found {
    report: PrunedTarget,
    destination: Option<(Handle, Vec<SecretPath>)>,
    bundle: Option<(Handle, Vec<SecretPath>)>,
}

/// `vss prune`.
pub fn command(args: PruneArgs) -> Exit {
    let output = args.output;
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, output, true),
    };
    if config.registry.is_none() {
        return usage_failure(
            format!(
                "{} keeps no registry of the targets vss writes: add `registry: {{ file: vss-registry.json }}` \
                 (or a merge store, or an audit log file); runs record their targets there",
                config.file.name
            ),
            output,
            true,
        );
    }
    let entries = match crate::registry::read(&config) {
        Ok(entries) => entries,
        Err(message) => {
            return failed(
                vec![ErrorEntry::message(ErrorKind::Io, message.clone())],
                &format!("error: {message}\n"),
                output,
                true,
            );
        }
    };
    let removed: Vec<crate::registry::Entry> =
        entries.into_values().filter(|e| !config.targets.iter().any(|t| t.name == e.target)).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage_failure(format!("cannot start the async runtime: {e}"), output, true),
    };
    let stats = Stats::default();
    let sessions = Sessions::default();
    let ctx = OpenContext {
        base_dir: &config.base_dir,
        stats: &stats,
        defaults: &config.defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    let mut found: Vec<Found> = runtime.block_on(async {
        let mut out = Vec::new();
        for entry in &removed {
            out.push(find(&config, entry, &ctx).await);
        }
        out
    });
    let delete = !args.dry_run && args.yes;
    // Forgetting a target is a change too: anything listed needs the confirmation.
    if !args.dry_run && !args.yes && !removed.is_empty() {
        let report = PruneReport { dry_run: true, targets: found.into_iter().map(|f| f.report).collect() };
        show(&report, output);
        let message =
            "nothing deleted: `vss prune` deletes what it lists only with `--yes` (see the list with `--dry-run`)";
        return failed(
            vec![ErrorEntry::message(ErrorKind::Usage, message)],
            &format!("error: {message}\n"),
            output,
            true,
        );
    }
    if delete {
        runtime.block_on(async {
            for f in &mut found {
                if f.report.error.is_some() {
                    continue;
                }
                match remove(f).await {
                    Ok(()) => f.report.status = "deleted".into(),
                    Err(e) => {
                        f.report.status = "failed".into();
                        f.report.error = Some(crate::scrub::scrub(&e.to_string()).into_owned());
                    }
                }
            }
        });
        let pruned: Vec<String> =
            found.iter().filter(|f| f.report.status == "deleted").map(|f| f.report.target.clone()).collect();
        if let Err(message) = crate::registry::forget(&config, &pruned) {
            return failed(
                vec![ErrorEntry::message(ErrorKind::Io, message.clone())],
                &format!("error: {message}\n"),
                output,
                false,
            );
        }
    }
    let failed_any = found.iter().any(|f| f.report.error.is_some());
    let report = PruneReport { dry_run: !delete, targets: found.into_iter().map(|f| f.report).collect() };
    show(&report, output);
    if failed_any { Exit::Error } else { Exit::Ok }
}

/// Opens a removed target's destination and bundle and lists what vss owns there for it.
async fn find(config: &Config, entry: &crate::registry::Entry, ctx: &OpenContext<'_>) -> Found {
    let mut report = PrunedTarget {
        target: entry.target.clone(),
        location: entry.location.clone(),
        secrets: Vec::new(),
        bundle: Vec::new(),
        status: "planned".into(),
        kept: None,
        error: None,
    };
    let fail = |report: &mut PrunedTarget, message: String| {
        report.status = "failed".into();
        report.error = Some(crate::scrub::scrub(&message).into_owned());
    };
    let (mut destination_found, mut bundle_found) = (None, None);
    match destination(entry) {
        Ok(None) => {}
        // A target renamed in the config writes where the removed one did, and secrets it
        // left unchanged still carry the old name: that location is not pruned.
        Ok(Some(store_config)) if let Some(current) = successor(config, &store_config) => {
            report.kept = Some(format!(
                "its location is now target `{current}`'s: the secrets there are left to it (a run of the pipeline re-marks those it writes)"
            ));
        }
        Ok(Some(store_config)) => match owned(&store_config, ctx, None, Some(&entry.target)).await {
            Ok((store, paths)) => {
                report.secrets = paths.iter().map(ToString::to_string).collect();
                destination_found = Some((store, paths));
            }
            Err(e) => fail(&mut report, format!("cannot read {}: {e}", store_config.describe())),
        },
        Err(message) => fail(&mut report, message),
    }
    if entry.bundle
        && let Some(merge_store) = &config.merge_store
    {
        let bundle = Bundle { target: &entry.target, sources: &[] };
        match owned(merge_store, ctx, Some(&bundle), None).await {
            Ok((store, paths)) => {
                report.bundle = paths.iter().map(ToString::to_string).collect();
                bundle_found = Some((store, paths));
            }
            Err(e) => fail(&mut report, format!("cannot read the bundle of `{}`: {e}", entry.target)),
        }
    }
    Found { report, destination: destination_found, bundle: bundle_found }
}

/// The destination a registry entry's recorded block names, if any.
fn destination(entry: &crate::registry::Entry) -> Result<Option<StoreConfig>, String> {
    let why =
        |detail: String| format!("the registry's record of `{}` no longer reads as a target: {detail}", entry.target);
    let node = crate::yaml::parse(&entry.block.to_string()).map_err(|e| why(e.message))?;
    let env = |name: &str| std::env::var(name).ok();
    let (raw, diagnostics) = crate::config::de::from_node::<crate::config::raw::RawTarget>(&node, &env);
    let raw = match (raw, diagnostics.first()) {
        (Some(raw), None) => raw,
        (_, Some(d)) => return Err(why(d.message.clone())),
        (None, None) => return Err(why("unreadable".into())),
    };
    let mut destinations = raw.destinations.clone();
    for (key, value) in &raw.shorthands {
        StoreConfig::apply_shorthand(&entry.target, key, value, &mut destinations).map_err(|d| why(d.message))?;
    }
    Ok(destinations.into_iter().next().map(|(_, store)| store))
}

/// Opens `config` (at `bundle`, when given) and lists the paths it holds that `owner`
/// owns (every path of a bundle), through the engine's handle (retries, batched reads).
async fn owned(
    config: &StoreConfig,
    ctx: &OpenContext<'_>,
    bundle: Option<&Bundle<'_>>,
    owner: Option<&str>,
) -> Result<(Handle, Vec<SecretPath>), StoreError> {
    let store = crate::engine::open_store(config, ctx, bundle).await?;
    let handle = Handle::new(store, Arc::new(Semaphore::new(PARALLEL)), PARALLEL);
    let paths = match owner {
        None => handle.list().await?,
        Some(owner) => {
            let live = handle.read_state().await?;
            live.into_iter().filter(|(_, secret)| secret.owner.as_deref() == Some(owner)).map(|(p, _)| p).collect()
        }
    };
    Ok((handle, paths))
}

/// Store calls `prune` keeps in flight at once.
const PARALLEL: usize = 4;

/// Deletes what was found: the destination's owned secrets, then the bundle.
async fn remove(found: &Found) -> Result<(), StoreError> {
    let target = found.report.target.as_str();
    for (handle, paths) in found.destination.iter().chain(found.bundle.iter()) {
        if paths.is_empty() {
            continue;
        }
        if handle.capabilities().atomic_commit {
            handle.commit(&[], paths, target).await?;
        } else {
            handle.prepare(&[], target).await?;
            for path in paths {
                handle.delete(path).await?;
            }
        }
        handle.finish().await?;
    }
    Ok(())
}

fn show(report: &PruneReport, output: Output) {
    match output {
        Output::Json => print_out(&(serde_json::to_string_pretty(report).expect("a report serializes") + "\n")),
        _ => print_out(&render(report)),
    }
}

/// The human report: per removed target, what vss owns there (and whether it is gone).
pub fn render(report: &PruneReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.targets.is_empty() {
        out.push_str("nothing to prune: every target in the registry is in the config\n");
        return out;
    }
    for t in &report.targets {
        let verb = match t.status.as_str() {
            "deleted" => "deleted",
            "failed" => "failed",
            _ => "to delete",
        };
        let place = t.location.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "target `{}`{place}: {} secret(s) and {} bundle secret(s) {verb}",
            t.target,
            t.secrets.len(),
            t.bundle.len()
        );
        for path in &t.secrets {
            let _ = writeln!(out, "  - {path}");
        }
        for path in &t.bundle {
            let _ = writeln!(out, "  - bundle {path}");
        }
        if let Some(kept) = &t.kept {
            let _ = writeln!(out, "  left alone: {kept}");
        }
        if let Some(error) = &t.error {
            let _ = writeln!(out, "  error: {error}");
        }
    }
    if report.dry_run {
        out.push_str("dry run: nothing deleted (run `vss prune --yes` to delete the above)\n");
    }
    out
}
