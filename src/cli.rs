//! Command-line arguments (clap derive only; no logic). See `run.rs` for what they do.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// vss: a declarative secrets pipeline. Merges secrets from sources and syncs them to
/// many targets, with real dry-run diffs and exit codes for CI.
#[derive(Debug, Parser)]
#[command(name = "vss", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More logs on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No colour, even on a terminal (`NO_COLOR` does the same).
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: MERGE then SYNC (as enabled in the config).
    Pipeline(PipelineArgs),
    /// The dry run, saved to a plan file (`-o plan.json`) that `vss apply` applies
    /// exactly. The file holds no secret value. Needs `VSS_FINGERPRINT_KEY`.
    Plan(PlanArgs),
    /// Apply a plan file: plan again, and write only if every planned change still holds
    /// (same desired values, same live secrets); otherwise write nothing and name what
    /// went stale (exit 2).
    Apply(ApplyArgs),
    /// The state of every target, writing nothing: missing, drifted, unmanaged and
    /// excluded secrets, values that conflict between the scopes of one repository, and
    /// what to do about each.
    Status(StatusArgs),
    /// Write the named secrets where a target lacks them, and only those: an existing
    /// secret is never overwritten.
    Ensure(EnsureArgs),
    /// Where each key of a target's desired secrets comes from: the layer (source or
    /// imported target, with the config location of its import) that set it, and the
    /// layers whose value it replaced, with fingerprints. Reads the sources, writes nothing.
    Explain(ExplainArgs),
    /// Read the audit log (`audit.file` in the config).
    Audit(AuditArgs),
    /// Clean up after targets deleted from the config: list the secrets vss owns for them
    /// (and their merge-store bundles), from the registry of targets it has written, and
    /// with `--yes` delete exactly those.
    Prune(PruneArgs),
    /// Check the config and the graph without touching any store.
    Validate(ValidateArgs),
    /// Print the resolved graph and the execution order.
    Graph(GraphArgs),
    /// Print the version, commit and compiled-in stores.
    Version,
}

/// `--config`, shared by every subcommand that reads a config.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The pipeline config file.
    #[arg(short, long, env = "VSS_CONFIG", default_value = "vss.yaml")]
    pub config: PathBuf,
}

/// `vss pipeline` arguments.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Compute the full diff against the live stores and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Report format on stdout.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// What a run does: shared by `vss pipeline` and `vss plan`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Run only MERGE.
    #[arg(long, conflicts_with = "sync_only")]
    pub merge_only: bool,
    /// Run only SYNC (desired state from the merge store's bundles when there is one).
    #[arg(long)]
    pub sync_only: bool,
    /// Exit 1 when anything changed (or would change): 0 then means zero-sum.
    #[arg(long)]
    pub exit_code: bool,
    /// List unchanged secrets too.
    #[arg(long)]
    pub show_unchanged: bool,
    /// List unmanaged and orphan secrets by path in the human report (the JSON report
    /// always lists them).
    #[arg(long)]
    pub show_unmanaged: bool,
    /// Sync only these targets (comma-separated); what they depend on is merged as needed.
    #[arg(long, value_delimiter = ',')]
    pub targets: Option<Vec<String>>,
    /// Store calls in flight at once, for both phases (overrides the config).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// Write the desired value over secrets vss cannot verify (present in a store that
    /// returns no values, and not written by vss), so that vss manages them from now on.
    #[arg(long)]
    pub adopt: bool,
    /// Let a target delete more than its `max_deletes` (default: 10 secrets, or 25 % of
    /// those vss owns there) in this run. Emptying a target still needs `allow_emptying`.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// The whole run's limit, in seconds: a target still planning then fails, and none
    /// starts writing after it (one already writing finishes). Default: none.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// In the JSON report, say where each key that changes comes from (the layer that set
    /// it and the layers it replaced; see `vss explain`).
    #[arg(long)]
    pub provenance: bool,
}

/// `vss plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Where to write the plan file (JSON, schemas/plan.schema.json; holds no value).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    /// Report format on stdout (the dry run's report).
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// `vss apply` arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file `vss plan -o` wrote.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// The config, when not at the path the plan was made from (it must be the same
    /// file, byte for byte).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Report format on stdout.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// List unchanged secrets too.
    #[arg(long)]
    pub show_unchanged: bool,
    /// Store calls in flight at once, for both phases (overrides the config).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// The whole run's limit, in seconds (see `vss pipeline --timeout`).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

/// `vss status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Report format on stdout (`json`: schemas/status.schema.json).
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Exit 1 when there are findings: 0 then means every target is as it should be.
    #[arg(long)]
    pub exit_code: bool,
    /// Check only these targets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub targets: Option<Vec<String>>,
    /// Store calls in flight at once (overrides the config).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
}

/// `vss ensure` arguments.
#[derive(Debug, Args)]
pub struct EnsureArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The target to fill (its sources give the values).
    #[arg(long, required_unless_present = "dispatch", conflicts_with = "dispatch")]
    pub target: Option<String>,
    /// Names to ensure (as the target's store names them: GitHub secret names).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every name of the target's desired state.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Write to this repository instead of the target's own (`owner/name`; GitHub targets
    /// only, and only a repository `ensure.repositories` allows). With `--dispatch`: the
    /// repository that needs the secrets.
    #[arg(long)]
    pub repo: Option<String>,
    /// Ask this repository (`owner/name`) to send the missing secrets, by a
    /// `repository_dispatch` of event type `vss-ensure`, and wait until they are there.
    #[arg(long, requires = "repo")]
    pub dispatch: Option<String>,
    /// With `--dispatch`: the longest wait for the secrets, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// With `--dispatch`: seconds between two looks at the repository's secrets.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Compute what is missing and write (or dispatch) nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 1 when something was (or would be) added.
    #[arg(long)]
    pub exit_code: bool,
    /// Report format on stdout.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// `vss explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The target to explain.
    #[arg(long)]
    pub target: String,
    /// Only this secret path.
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// `human` or `json`.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// `vss prune` arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// List what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete what the dry run lists (required to delete anything).
    #[arg(long, conflicts_with = "dry_run")]
    pub yes: bool,
    /// `human` or `json`.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// `vss audit` arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this target's events.
    #[arg(long)]
    pub target: Option<String>,
    /// Only events this recent: `7d`, `12h`, `30m`, `45s`, or a UTC time
    /// (`2026-11-24T08:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events with this status.
    #[arg(long, value_enum)]
    pub status: Option<AuditStatus>,
    /// `human` (one line per event) or `json` (schemas/audit.schema.json).
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// An audit event's status, for `vss audit --status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditStatus {
    /// Done.
    Success,
    /// Failed with nothing written.
    Failure,
    /// Failed after some writes.
    Partial,
}

/// `vss validate` arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Error format (`github` prints `::error file=…,line=…,col=…` annotations).
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Do not discover dynamic targets (no call to AWS Organizations): check them as
    /// templates only.
    #[arg(long)]
    pub offline: bool,
}

/// `vss graph` arguments.
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    /// Do not discover dynamic targets (no call to AWS Organizations).
    #[arg(long)]
    pub offline: bool,
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: summary and per-target changes.
    Human,
    /// One JSON document (schemas/report.schema.json).
    Json,
    /// GitHub Actions: groups, annotations, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY.
    Github,
    /// One line.
    Compact,
}

/// Graph formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Levels and targets.
    Text,
    /// Graphviz.
    Dot,
    /// Machine-readable.
    Json,
}
