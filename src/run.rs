//! CLI arguments -> config -> engine -> report -> exit code. The only place that knows
//! exit codes, and where clap's types stop.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::Arc;

use clap::Parser;

use crate::cli::{
    ApplyArgs, AuditArgs, Cli, Command, ExplainArgs, GraphArgs, GraphFormat, Output, PipelineArgs, PlanArgs, RunArgs,
    ValidateArgs,
};
use crate::config::{Config, ConfigError};
use crate::diagnostic::suggest;
use crate::engine::{self, NoProgress, Phase, Progress, RunOptions};
use crate::error::{ErrorKind, Exit, Failure};
use crate::plan::Plan;
use crate::plan_file::{ConfigStamp, PlanFile, PlanOptions};
use crate::report::validate::Validation;
use crate::report::{self, ErrorEntry, Report, human::Style};
use crate::secret::Fingerprinter;
use crate::store::{Sessions, StoreConfig};

/// Runs `vss` with the process's arguments and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { Exit::Error.code() } else { Exit::Ok.code() };
        }
    };
    init_logging(&cli);
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let exit = match cli.command {
        Command::Pipeline(args) => pipeline(args, color, cli.quiet),
        Command::Plan(args) => plan_command(args, color, cli.quiet),
        Command::Apply(args) => apply_command(args, color, cli.quiet),
        Command::Validate(args) => validate(args),
        Command::Audit(args) => audit(args),
        Command::Prune(args) => crate::prune::command(args),
        Command::Explain(args) => explain(args),
        Command::Status(args) => crate::status::command(args),
        Command::Ensure(args) => crate::ensure::command(args, color),
        Command::Graph(args) => graph(args),
        Command::Version => {
            print_out(&version_text());
            Exit::Ok
        }
    };
    exit.code()
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    // The AWS SDK warns about every credential provider it tries and fails (with long
    // debug dumps); vss reports what failed itself, so those logs show only with -vv. Its
    // TRACE events dump whole client configurations (an external id among them), so they
    // never show.
    let sdk_level = if cli.verbose >= 2 { level.min(LevelFilter::DEBUG) } else { LevelFilter::ERROR };
    let filter = [
        "aws_config",
        "aws_runtime",
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "aws_smithy_http_client",
        "aws_smithy_types",
        "aws_sdk_sts",
        "aws_sdk_secretsmanager",
        "aws_sdk_s3",
        "aws_sdk_organizations",
    ]
    .into_iter()
    .fold(tracing_subscriber::filter::Targets::new().with_default(level), |f, target| f.with_target(target, sdk_level));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| ScrubbedStderr(Vec::new()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && !cli.no_color);
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry().with(layer.with_filter(filter)).try_init();
}

/// One log event, written to stderr scrubbed of every value the run has read when it is
/// dropped (the formatter writes an event, then drops its writer).
struct ScrubbedStderr(Vec<u8>);

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedStderr {
    fn drop(&mut self) {
        print_err(&String::from_utf8_lossy(&self.0));
    }
}

/// `vss version`: version, commit and compiled-in stores.
pub fn version_text() -> String {
    let commit = option_env!("VSS_COMMIT").filter(|c| !c.is_empty()).unwrap_or("unknown");
    format!("vss {} (commit {commit})\nstores: {}\n", env!("CARGO_PKG_VERSION"), StoreConfig::KINDS.join(", "))
}

pub(crate) fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes to stderr, scrubbed of every value the run has read.
pub(crate) fn print_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(crate::scrub::scrub(text).as_bytes());
}

pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    crate::config::load(path, &|name| std::env::var(name).ok())
}

/// The plan of `config`: its dynamic targets discovered (contacting the stores that
/// discover them, when there are any), or not when `offline`.
pub(crate) fn plan(config: &Config, offline: bool) -> Result<Plan<'_>, Failure> {
    crate::store::set_timeouts(config.timeouts);
    if offline {
        return Ok(Plan::offline(config));
    }
    if let Some(plan) = Plan::complete(config) {
        return Ok(plan);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(Plan::build(config, &Sessions::default()))
}

/// Reports errors found before any target ran, in the chosen format: `stderr` (the
/// rendered diagnostics, or the message) on stderr, and on stdout the format's own shape.
pub(crate) fn failed(errors: Vec<ErrorEntry>, stderr: &str, output: Output, dry_run: bool) -> Exit {
    print_err(stderr);
    match output {
        Output::Human => {}
        Output::Json => print_out(&report::json::render(&Report::from_errors(errors, dry_run))),
        Output::Github => errors.iter().for_each(|e| print_out(&report::github::error_annotation(e))),
        Output::Compact => print_out(&report::compact::failed(&errors)),
    }
    Exit::Error
}

/// Reports a bad config (see [`failed`]).
pub(crate) fn config_failure(error: &ConfigError, output: Output, dry_run: bool) -> Exit {
    failed(report::config_error_entries(error), &error.to_string(), output, dry_run)
}

fn validate(args: ValidateArgs) -> Exit {
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => {
            print_err(&error.to_string());
            return show_validation(&Validation::invalid(report::config_error_entries(&error)), args.output);
        }
    };
    let plan = match plan(&config, args.offline) {
        Ok(plan) => plan,
        Err(failure) => {
            print_err(&format!("error: {failure}\n"));
            return show_validation(&Validation::invalid(vec![ErrorEntry::of_failure(&failure)]), args.output);
        }
    };
    let levels = plan.graph.by_level().len();
    show_validation(
        &Validation::valid(&config.file.name, config.sources.len(), plan.targets.len(), levels),
        args.output,
    )
}

fn show_validation(validation: &Validation, output: Output) -> Exit {
    print_out(&match output {
        Output::Json => report::validate::json(validation),
        Output::Github => report::validate::github(validation),
        Output::Human | Output::Compact => report::validate::text(validation),
    });
    if validation.valid { Exit::Ok } else { Exit::Error }
}

fn graph(args: GraphArgs) -> Exit {
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, Output::Human, false),
    };
    let plan = match plan(&config, args.offline) {
        Ok(plan) => plan,
        Err(failure) => {
            return failed(
                vec![ErrorEntry::of_failure(&failure)],
                &format!("error: {failure}\n"),
                Output::Human,
                false,
            );
        }
    };
    print_out(&match args.format {
        GraphFormat::Text => report::graph::text(&plan),
        GraphFormat::Dot => report::graph::dot(&plan),
        GraphFormat::Json => report::graph::json(&plan),
    });
    Exit::Ok
}

/// A usage error found after parsing (unknown `--targets` name, impossible phase choice).
pub(crate) fn usage_failure(message: String, output: Output, dry_run: bool) -> Exit {
    let entry = ErrorEntry::message(ErrorKind::Usage, message.clone());
    failed(vec![entry], &format!("error: {message}\n"), output, dry_run)
}

fn pipeline(args: PipelineArgs, color: bool, quiet: bool) -> Exit {
    let (output, dry_run) = (args.output, args.dry_run);
    let config = match load(&args.run.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, output, dry_run),
    };
    let (plan, options) = match ready(&config, &args.run, dry_run, output) {
        Ok(ready) => ready,
        Err(exit) => return exit,
    };
    let view = View { output, quiet, color, unchanged: args.run.show_unchanged, unmanaged: args.run.show_unmanaged };
    let (_, report, audited) = match execute_and_show(&plan, &options, view, "pipeline") {
        Ok(done) => done,
        Err(exit) => return exit,
    };
    Exit::of_run(!report.errors.is_empty() || !audited, report.summary.changes() > 0, args.run.exit_code)
}

/// The plan of `config` and the options of a run as `run` asks for it, or the exit of a
/// usage error (already reported).
fn ready<'c>(config: &'c Config, run: &RunArgs, dry_run: bool, output: Output) -> Result<(Plan<'c>, RunOptions), Exit> {
    let plan = match plan(config, false) {
        Ok(plan) => plan,
        Err(failure) => {
            let stderr = format!("error: {failure}\n");
            return Err(failed(vec![ErrorEntry::of_failure(&failure)], &stderr, output, dry_run));
        }
    };
    let targets = match select(&plan, run.targets.as_deref(), "--targets") {
        Ok(targets) => targets,
        Err(message) => return Err(usage_failure(message, output, dry_run)),
    };
    let merge = if run.sync_only { false } else { run.merge_only || config.merge.enabled };
    let sync = if run.merge_only { false } else { run.sync_only || config.sync.enabled };
    if run.merge_only && config.merge_store.is_none() {
        return Err(usage_failure("--merge-only needs a `merge_store` in the config".into(), output, dry_run));
    }
    let merges = merge && config.merge_store.is_some();
    if !sync && !merges {
        return Err(usage_failure(
            "nothing to run: both phases are disabled (see `pipeline.merge.enabled` / `pipeline.sync.enabled`)".into(),
            output,
            dry_run,
        ));
    }
    let options = RunOptions {
        dry_run,
        merge,
        sync,
        targets,
        parallel: run.parallel.map(|p| p as usize),
        adopt: run.adopt,
        allow_mass_delete: run.allow_mass_delete,
        timeout: run.timeout.map(std::time::Duration::from_secs),
        provenance: run.provenance,
        ..RunOptions::default()
    };
    Ok((plan, options))
}

/// How a run's report is shown.
#[derive(Clone, Copy, Debug)]
struct View {
    output: Output,
    quiet: bool,
    color: bool,
    /// List unchanged secrets too.
    unchanged: bool,
    /// List unmanaged and orphan secrets by path (human output).
    unmanaged: bool,
}

/// Runs the engine, prints the report and appends it to the audit log as `command`'s:
/// the outcome, the report, and whether the log was written.
fn execute_and_show(
    plan: &Plan<'_>,
    options: &RunOptions,
    view: View,
    command: &str,
) -> Result<(engine::Outcome, Report, bool), Exit> {
    let outcome = execute(plan, options, view.output, view.quiet)?;
    let report = Report::from_outcome(&outcome, &Fingerprinter::from_env(), view.unchanged);
    show(&report, view.output, view.color, view.unmanaged);
    let audited = record(plan, &report, &crate::audit::run_id(), command, None);
    let registered = options.dry_run || register(plan, &report);
    Ok((outcome, report, audited && registered))
}

/// Records the targets a real run wrote (its bundle, its destination) in the registry,
/// so that `vss prune` finds them once the config no longer has them. False (with the
/// error on stderr) when the registry could not be written.
fn register(plan: &Plan<'_>, report: &Report) -> bool {
    let mut written: Vec<(String, bool, bool)> = Vec::new();
    for t in &report.targets {
        let synced = t.phase == Phase::Sync;
        match written.iter_mut().find(|(name, _, _)| *name == t.name) {
            Some(entry) => {
                entry.1 |= synced;
                entry.2 |= !synced;
            }
            None => written.push((t.name.clone(), synced, !synced)),
        }
    }
    match crate::registry::record(plan.config, &written, &crate::time::timestamp(crate::time::now())) {
        Ok(()) => true,
        Err(e) => {
            print_err(&format!("error: {e}\n"));
            false
        }
    }
}

/// Runs the engine (with a progress bar on a terminal, for the human report).
fn execute(plan: &Plan<'_>, options: &RunOptions, output: Output, quiet: bool) -> Result<engine::Outcome, Exit> {
    let progress: Arc<dyn Progress> = if output == Output::Human && !quiet && std::io::stderr().is_terminal() {
        Arc::new(Bar::new())
    } else {
        Arc::new(NoProgress)
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Err(usage_failure(format!("cannot start the async runtime: {e}"), output, options.dry_run)),
    };
    runtime.spawn(on_signals());
    let outcome = runtime.block_on(engine::run(plan, options, progress.clone()));
    drop(progress);
    Ok(outcome)
}

/// SIGINT (Ctrl-C) or SIGTERM: the first stops the run (writes in flight finish, then the
/// report says what was done, exit 2); a second ends the process at once (exit 130).
async fn on_signals() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            return;
        };
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            if received > 1 {
                print_err("interrupted again: stopping now\n");
                std::process::exit(130);
            }
            print_err(
                "interrupted: finishing the writes in flight, then reporting (interrupt again to stop at once)\n",
            );
            engine::stop();
        }
    }
    #[cfg(not(unix))]
    {
        let mut received = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            received += 1;
            if received > 1 {
                std::process::exit(130);
            }
            engine::stop();
        }
    }
}

/// The key of a plan file's fingerprints, or the exit of its absence (reported).
fn plan_key(command: &str, output: Output, dry_run: bool) -> Result<Fingerprinter, Exit> {
    Fingerprinter::stable().ok_or_else(|| {
        usage_failure(
            format!(
                "vss {command} needs {var}: a plan file records keyed fingerprints of the values, and without a secret key they could be guessed from the file (set {var} to a long random secret, the same for `plan` and `apply`)",
                var = Fingerprinter::KEY_VAR
            ),
            output,
            dry_run,
        )
    })
}

/// `vss plan`: the dry run, reported as usual and saved to a plan file when no target
/// failed.
fn plan_command(args: PlanArgs, color: bool, quiet: bool) -> Exit {
    let output = args.output;
    let key = match plan_key("plan", output, true) {
        Ok(key) => key,
        Err(exit) => return exit,
    };
    let path = &args.run.config.config;
    let config = match load(path) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, output, true),
    };
    let (plan, options) = match ready(&config, &args.run, true, output) {
        Ok(ready) => ready,
        Err(exit) => return exit,
    };
    let view = View { output, quiet, color, unchanged: args.run.show_unchanged, unmanaged: args.run.show_unmanaged };
    let (outcome, report, audited) = match execute_and_show(&plan, &options, view, "plan") {
        Ok(done) => done,
        Err(exit) => return exit,
    };
    if !report.errors.is_empty() {
        print_err(&format!("error: the run has errors: no plan written to {}\n", args.out.display()));
        return Exit::Error;
    }
    let names = |ids: &[crate::config::model::TargetId]| ids.iter().map(|id| plan.target(*id).name.clone()).collect();
    let saved = PlanFile::of(
        &outcome,
        // The text the run was planned from, as read once.
        ConfigStamp { path: path.display().to_string(), sha256: crate::plan_file::sha256(config.file.text.as_bytes()) },
        PlanOptions {
            merge: options.merge,
            sync: options.sync,
            targets: options.targets.as_deref().map(names),
            adopt: options.adopt,
            allow_mass_delete: options.allow_mass_delete,
        },
        &key,
    );
    if let Err(e) = write_atomically(&args.out, saved.to_json().as_bytes()) {
        print_err(&format!("error: cannot write the plan to {}: {e}\n", args.out.display()));
        return Exit::Error;
    }
    if !quiet {
        print_err(&format!(
            "plan written to {}: {} {}; apply it with `vss apply {}`\n",
            args.out.display(),
            saved.changes(),
            if saved.changes() == 1 { "change" } else { "changes" },
            args.out.display()
        ));
    }
    Exit::of_run(!audited, report.summary.changes() > 0, args.run.exit_code)
}

/// `vss apply`: the plan file's run, applied only if it still holds.
fn apply_command(args: ApplyArgs, color: bool, quiet: bool) -> Exit {
    let output = args.output;
    let stop = |message: String| {
        failed(
            vec![ErrorEntry::message(ErrorKind::Stale, message.clone())],
            &format!("error: {message}\n"),
            output,
            false,
        )
    };
    let key = match plan_key("apply", output, false) {
        Ok(key) => key,
        Err(exit) => return exit,
    };
    let saved = match std::fs::read_to_string(&args.plan) {
        Ok(text) => match PlanFile::parse(&text, &key) {
            Ok(saved) => saved,
            Err(e) => return usage_failure(format!("{}: {e}", args.plan.display()), output, false),
        },
        Err(e) => return usage_failure(format!("cannot read {}: {e}", args.plan.display()), output, false),
    };
    let path = args.config.clone().unwrap_or_else(|| std::path::PathBuf::from(&saved.config.path));
    let config = match load(&path) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, output, false),
    };
    // The text the run is planned from, as read once, is the text the plan was made from.
    let sha256 = crate::plan_file::sha256(config.file.text.as_bytes());
    if sha256 != saved.config.sha256 {
        return stop(format!(
            "{} changed since the plan was made (SHA-256 {}, now {}); nothing written: make a new plan",
            path.display(),
            &saved.config.sha256[..saved.config.sha256.len().min(12)],
            &sha256[..12]
        ));
    }
    let run = RunArgs {
        config: crate::cli::ConfigArg { config: path },
        merge_only: saved.options.merge && !saved.options.sync,
        sync_only: saved.options.sync && !saved.options.merge,
        exit_code: false,
        show_unchanged: args.show_unchanged,
        show_unmanaged: false,
        targets: saved.options.targets.clone(),
        parallel: args.parallel,
        adopt: saved.options.adopt,
        allow_mass_delete: saved.options.allow_mass_delete,
        timeout: args.timeout,
        provenance: false,
    };
    let (plan, mut options) = match ready(&config, &run, false, output) {
        Ok(ready) => ready,
        Err(exit) => return exit,
    };
    (options.merge, options.sync) = (saved.options.merge, saved.options.sync);
    options.exact = Some(Arc::new(saved));
    let view = View { output, quiet, color, unchanged: args.show_unchanged, unmanaged: false };
    let (_, report, audited) = match execute_and_show(&plan, &options, view, "apply") {
        Ok(done) => done,
        Err(exit) => return exit,
    };
    Exit::of_run(!report.errors.is_empty() || !audited, false, false)
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Prints a run's report in `output`'s format (with GitHub's output files for `github`).
pub(crate) fn show(report: &Report, output: Output, color: bool, unmanaged: bool) {
    match output {
        Output::Human => {
            let style = Style::new(color && std::io::stdout().is_terminal());
            print_out(&report::human::render(report, style, unmanaged))
        }
        Output::Json => print_out(&report::json::render(report)),
        Output::Compact => print_out(&report::compact::render(report)),
        Output::Github => {
            print_out(&report::github::render(report));
            for (var, text) in [
                ("GITHUB_OUTPUT", report::github::outputs(report)),
                ("GITHUB_STEP_SUMMARY", report::github::step_summary(report)),
            ] {
                if let Err(e) = report::github::append_to_env_file(var, &text) {
                    tracing::error!("cannot append to ${var}: {e}");
                }
            }
        }
    }
}

/// The targets `names` selects (all when `None`), or why a name is not a target.
pub(crate) fn select(
    plan: &Plan<'_>,
    names: Option<&[String]>,
    flag: &str,
) -> Result<Option<Vec<crate::config::model::TargetId>>, String> {
    let Some(names) = names else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match plan.target_named(name) {
            Some(id) => ids.push(id),
            None => {
                let hint = suggest(name, plan.targets.iter().map(|t| t.name.as_str()))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!("{flag}: unknown target `{name}`{hint}"));
            }
        }
    }
    Ok(Some(ids))
}

/// Appends a report's events to the config's audit log, when it has one; `false` (and an
/// error on stderr) when the log cannot be written, which fails the run.
pub(crate) fn record(plan: &Plan<'_>, report: &Report, run: &str, command: &str, operation: Option<&str>) -> bool {
    if plan.config.audit.is_none() {
        return true;
    }
    let scope = |t: &report::TargetReport| {
        let target = plan.target(plan.target_named(&t.name)?);
        (t.phase == Phase::Sync).then_some(())?;
        target.destination.as_ref()?.scope().map(|s| s.name)
    };
    let events = crate::audit::events(report, run, command, operation, &scope);
    match crate::audit::append_to(plan.config, &events) {
        Ok(()) => true,
        Err(e) => {
            print_err(&format!("error: {e}\n"));
            false
        }
    }
}

/// `vss explain`: where each key of a target's desired secrets comes from.
fn explain(args: ExplainArgs) -> Exit {
    let output = args.output;
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, output, true),
    };
    let plan = match plan(&config, false) {
        Ok(plan) => plan,
        Err(failure) => {
            return failed(vec![ErrorEntry::of_failure(&failure)], &format!("error: {failure}\n"), output, true);
        }
    };
    let target = match select(&plan, Some(std::slice::from_ref(&args.target)), "--target") {
        Ok(Some(ids)) if ids.len() == 1 => ids[0],
        Ok(_) => return usage_failure("--target names one target".into(), output, true),
        Err(message) => return usage_failure(message, output, true),
    };
    let only = match args.path.as_deref().map(crate::secret::SecretPath::parse) {
        None => None,
        Some(Ok(path)) => Some(path),
        Some(Err(why)) => {
            return usage_failure(
                format!("`{}` is not a secret path: {why}", args.path.unwrap_or_default()),
                output,
                true,
            );
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage_failure(format!("cannot start the async runtime: {e}"), output, true),
    };
    let lineage = match runtime.block_on(engine::lineage(&plan, target)) {
        Ok(lineage) => lineage,
        Err(failure) => {
            return failed(vec![ErrorEntry::of_failure(&failure)], &format!("error: {failure}\n"), output, true);
        }
    };
    let name = &plan.target(target).name;
    if let Some(path) = &only
        && !lineage.desired.contains_key(path)
    {
        let hint = suggest(path.as_str(), lineage.desired.keys().map(|p| p.as_str()))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return usage_failure(format!("`{path}` is not a desired secret of `{name}`{hint}"), output, true);
    }
    let origins = lineage.explain(only.as_ref(), &Fingerprinter::from_env());
    match output {
        Output::Json => {
            let document = crate::provenance::Explanation { target: name.clone(), keys: origins };
            print_out(&(serde_json::to_string_pretty(&document).expect("origins serialize") + "\n"));
        }
        _ => print_out(&crate::provenance::render(name, &origins)),
    }
    Exit::Ok
}

/// `vss audit`: the config's audit log, filtered.
fn audit(args: AuditArgs) -> Exit {
    let config = match load(&args.config.config) {
        Ok(config) => config,
        Err(error) => return config_failure(&error, args.output, false),
    };
    let Some(log) = &config.audit else {
        return usage_failure(
            format!(
                "{} has no audit log: add `audit: {{ file: vss-audit.jsonl }}` (or `audit: {{ merge_store: vss-audit }}`)",
                config.file.name
            ),
            args.output,
            false,
        );
    };
    let since = match args.since.as_deref() {
        None => None,
        Some(text) => match crate::time::duration_secs(text)
            .map(|secs| crate::time::now() - secs)
            .or_else(|| crate::time::unix_of(text))
        {
            Some(since) => Some(since),
            None => {
                return usage_failure(
                    format!(
                        "--since `{text}`: write a duration (`7d`, `12h`, `30m`, `45s`) or a UTC time (`2026-11-24T08:00:00Z`)"
                    ),
                    args.output,
                    false,
                );
            }
        },
    };
    let (events, skipped_lines) = match crate::audit::read_from(&config, log, since) {
        Ok(read) => read,
        Err(e) => {
            return failed(
                vec![ErrorEntry::message(ErrorKind::Io, e.clone())],
                &format!("error: {e}\n"),
                args.output,
                false,
            );
        }
    };
    let wanted = |e: &crate::audit::Event| {
        use crate::audit::EventStatus;
        args.target.as_ref().is_none_or(|t| *t == e.target)
            && since.is_none_or(|since| crate::time::unix_of(&e.time).is_some_and(|at| at >= since))
            && args.status.is_none_or(|s| {
                e.status
                    == match s {
                        crate::cli::AuditStatus::Success => EventStatus::Success,
                        crate::cli::AuditStatus::Failure => EventStatus::Failure,
                        crate::cli::AuditStatus::Partial => EventStatus::Partial,
                    }
            })
    };
    let events: Vec<crate::audit::Event> = events.into_iter().filter(wanted).collect();
    match args.output {
        Output::Json => {
            let report = crate::audit::AuditReport { events, skipped_lines };
            print_out(&(serde_json::to_string_pretty(&report).expect("events serialize") + "\n"));
        }
        _ => {
            let mut text: String = events.iter().map(crate::audit::human_line).collect();
            if events.is_empty() {
                text.push_str("no events\n");
            }
            if skipped_lines > 0 {
                text.push_str(&format!("({skipped_lines} line(s) of the log are not events and were skipped)\n"));
            }
            print_out(&text);
        }
    }
    Exit::Ok
}

/// A progress bar on stderr, used only when stderr is a terminal, and drawn only once the
/// run has lasted a second: short runs print nothing but the report.
struct Bar {
    bar: indicatif::ProgressBar,
    started: std::time::Instant,
    shown: std::sync::atomic::AtomicBool,
}

impl Bar {
    const DELAY: std::time::Duration = std::time::Duration::from_secs(1);

    fn new() -> Self {
        let bar = indicatif::ProgressBar::hidden();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Self { bar, started: std::time::Instant::now(), shown: std::sync::atomic::AtomicBool::new(false) }
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
    }
    fn done(&self, target: &str, phase: Phase) {
        self.bar.set_message(format!("{} {target}", phase.as_str()));
        self.bar.inc(1);
        if self.started.elapsed() >= Self::DELAY && !self.shown.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
