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
#[derive(Clone, Copy, Debug)]
pub struct SyncPhase {
    /// Whether SYNC runs.
    pub enabled: bool,
    /// Store calls in flight at once.
    pub parallel: usize,
    /// Whether owned secrets that are no longer desired are deleted.
    pub delete_orphans: bool,
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
    /// Where it is synced; `None` for a pure layer.
    pub destination: Option<StoreConfig>,
    /// Its merge semantics.
    pub merge: MergeOptions,
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
