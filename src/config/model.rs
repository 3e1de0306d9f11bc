//! The validated config: every reference resolved to a typed id, defaults applied, the
//! graph built. The engine only ever sees this.

use std::path::PathBuf;

use crate::diagnostic::SourceFile;
use crate::graph::Graph;
use crate::merge::MergeOptions;
use crate::store::{StoreConfig, StoreDefaults};

/// Index of a source in [`Config::sources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub usize);

pub use crate::graph::TargetId;

/// A validated pipeline.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config file (name and text), for messages.
    pub file: SourceFile,
    /// The directory relative store paths are resolved against.
    pub base_dir: PathBuf,
    /// The audit log, when the config names one.
    pub audit: Option<crate::audit::AuditLog>,
    /// Where the registry of written targets is kept, if anywhere ([`crate::registry`]).
    pub registry: Option<crate::registry::Place>,
    /// How long store calls may take (`pipeline.timeouts`).
    pub timeouts: crate::store::Timeouts,
    /// The repositories `vss ensure --repo` may write to (`owner/name` or `owner/*`).
    pub ensure_repositories: Vec<String>,
    /// Where bundles are written, if anywhere.
    pub merge_store: Option<StoreConfig>,
    /// Settings shared by every store of a kind (top-level `vault:` …).
    pub defaults: StoreDefaults,
    /// The MERGE phase.
    pub merge: MergePhase,
    /// The SYNC phase.
    pub sync: SyncPhase,
    /// Sources, sorted by name.
    pub sources: Vec<Source>,
    /// Targets, sorted by name.
    pub targets: Vec<Target>,
    /// Dependencies, levels and execution order.
    pub graph: Graph,
    /// Templates of targets discovered at plan time ([`crate::plan::Plan::build`] turns
    /// them into targets).
    pub dynamic: Vec<DynamicTarget>,
}

/// A validated dynamic target: the template every discovered target follows.
#[derive(Clone, Debug)]
pub struct DynamicTarget {
    /// The `dynamic_targets` key.
    pub name: String,
    /// The parent of every discovered target.
    pub inherits: Option<TargetId>,
    /// What every discovered target imports.
    pub imports: Vec<Import>,
    /// Merge semantics.
    pub merge: MergeOptions,
    /// Where the template is written.
    pub span: crate::span::Span,
    /// Where the targets come from, and where each syncs.
    pub discovery: Discovery,
}

/// Where a dynamic target's targets come from.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// One per account of an AWS Organizations OU.
    #[cfg(feature = "aws")]
    Organizations(crate::store::aws::organizations::OrganizationsSpec),
}

/// `pipeline.merge`, with defaults applied.
#[derive(Clone, Copy, Debug)]
pub struct MergePhase {
    /// Whether MERGE runs (only with a merge store).
    pub enabled: bool,
    /// Store calls in flight at once.
    pub parallel: usize,
}

/// `pipeline.sync`, with defaults applied.
#[derive(Clone, Debug)]
pub struct SyncPhase {
    /// Whether SYNC runs.
    pub enabled: bool,
    /// Store calls in flight at once.
    pub parallel: usize,
    /// Whether owned secrets that are no longer desired are deleted.
    pub delete_orphans: bool,
    /// The guards of a target that declares none of its own (`pipeline.sync.max_deletes`).
    pub safety: Safety,
}

/// A target's guards against a destructive run, with defaults applied.
#[derive(Clone, Debug)]
pub struct Safety {
    /// Most secrets one run deletes in the target (without `--allow-mass-delete`).
    pub max_count: u32,
    /// Most deleted in one run, as a percentage of the secrets vss owns there.
    pub max_percent: u32,
    /// Globs of paths (or store names) never overwritten or deleted, as written.
    pub protect: Vec<(String, globset::GlobMatcher)>,
    /// Whether an empty desired state may delete every secret vss owns there.
    pub allow_emptying: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Safety { max_count: 10, max_percent: 25, protect: Vec::new(), allow_emptying: false }
    }
}

impl Safety {
    /// The `protect` pattern `path` matches, if any.
    pub fn protected(&self, path: &str) -> Option<&str> {
        self.protect.iter().find(|(_, glob)| glob.is_match(path)).map(|(pattern, _)| pattern.as_str())
    }

    /// Why deleting `deletes` of the `owned` secrets vss owns in a target, leaving
    /// `desired` secrets, must not happen; `None` when it may. `mass` is
    /// `--allow-mass-delete`.
    pub fn refusal(&self, deletes: usize, owned: usize, desired: usize, mass: bool) -> Option<(String, String)> {
        if deletes == 0 {
            return None;
        }
        if desired == 0 && !self.allow_emptying {
            return Some((
                format!("its desired state is empty: it would delete all {deletes} of the secrets vss owns here"),
                "if the target is meant to be emptied, set `allow_emptying: true` on it; otherwise check its sources"
                    .into(),
            ));
        }
        let share = deletes.saturating_mul(100).div_ceil(owned.max(1));
        let over_count = deletes > self.max_count as usize;
        // One deletion is an edit, never a mass deletion: the share counts from two on.
        let over_share = deletes > 1 && deletes.saturating_mul(100) > (self.max_percent as usize).saturating_mul(owned);
        if mass || !(over_count || over_share) {
            return None;
        }
        Some((
            format!(
                "it would delete {deletes} of the {owned} secrets vss owns here ({share} %), over the limit of {} secrets \
                 and {} %",
                self.max_count, self.max_percent
            ),
            "check the sources; if the deletions are meant, run with `--allow-mass-delete` or raise `max_deletes`"
                .into(),
        ))
    }
}

/// A named source.
#[derive(Clone, Debug)]
pub struct Source {
    /// The name targets import it by (`source` for the top-level default source).
    pub name: String,
    /// Where it reads from.
    pub store: StoreConfig,
    /// Whether it may be missing or hold no secret (else that fails its targets).
    pub allow_empty: bool,
}

/// A named target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its name: `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// The parent whose merged result is the starting point.
    pub inherits: Option<TargetId>,
    /// What is merged on top, in order.
    pub imports: Vec<Import>,
    /// What each import takes and how it renames it, in the order of `imports`.
    pub selections: Vec<crate::select::Selection>,
    /// What it takes of its parent's merged result.
    pub inherit_selection: crate::select::Selection,
    /// The paths it accepts at all, of its final desired state (`include`/`exclude`).
    pub accepts: crate::select::Selection,
    /// Whether owned secrets no longer desired are deleted here, when it says (overrides
    /// `pipeline.sync.delete_orphans`).
    pub delete_orphans: Option<bool>,
    /// Where it is synced; `None` for a pure layer.
    pub destination: Option<StoreConfig>,
    /// Its merge semantics.
    pub merge: MergeOptions,
    /// Its guards against a destructive run.
    pub safety: Safety,
    /// Where its name, `inherits` and each import are written in the config.
    pub spans: TargetSpans,
    /// Its block as written (JSON of the YAML, uninterpolated), for the registry.
    pub block: serde_json::Value,
}

/// Where a target's parts are written in the config (for `vss explain`).
#[derive(Clone, Debug, Default)]
pub struct TargetSpans {
    /// Its name.
    pub name: crate::span::Span,
    /// Its `inherits`, when it has one.
    pub inherits: Option<crate::span::Span>,
    /// Each import, in the order of [`Target::imports`].
    pub imports: Vec<crate::span::Span>,
}

/// One import of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// A source's secrets.
    Source(SourceId),
    /// Another target's merged result.
    Target(TargetId),
}

impl Config {
    /// The source of an id.
    pub fn source(&self, id: SourceId) -> &Source {
        &self.sources[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::Safety;

    #[test]
    fn deletion_limits_count_share_and_emptying() {
        let safety = Safety::default();
        let refused = |deletes, owned, desired, mass| safety.refusal(deletes, owned, desired, mass).is_some();
        assert!(!refused(0, 100, 0, false), "nothing deleted, nothing refused");
        assert!(!refused(10, 40, 30, false), "10 of 40: at both limits");
        assert!(refused(11, 100, 89, false), "over the count");
        assert!(refused(3, 10, 7, false), "over the share");
        assert!(!refused(1, 2, 1, false), "one deletion is an edit");
        assert!(!refused(11, 100, 89, true), "--allow-mass-delete");
        assert!(refused(1, 1, 0, true), "emptying needs allow_emptying, whatever the flag");
        let emptying = Safety { allow_emptying: true, ..Safety::default() };
        assert!(emptying.refusal(1, 1, 0, false).is_none());
        assert!(emptying.refusal(12, 12, 0, false).is_some(), "still a mass deletion");
        let (why, hint) = safety.refusal(11, 12, 1, false).unwrap();
        assert_eq!(
            why,
            "it would delete 11 of the 12 secrets vss owns here (92 %), over the limit of 10 secrets and 25 %"
        );
        assert!(hint.contains("--allow-mass-delete"));
    }
}
