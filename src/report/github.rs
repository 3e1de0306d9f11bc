//! `--output github` for GitHub Actions: `::group::` per target, `::notice`/`::error`
//! annotations (config errors with `file=`, `line=`, `col=`), `key=value` lines appended to
//! `$GITHUB_OUTPUT` (`changes`, `added`, `modified`, `removed`, `zero_sum`, `failed_targets`) and a Markdown
//! table appended to `$GITHUB_STEP_SUMMARY`. No value is ever written, so nothing needs
//! `::add-mask::`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::diff::ChangeKind;
use crate::report::{ErrorEntry, Report, Status};

/// Escapes an annotation message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes an annotation property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// An `::error` annotation, with the location of config errors.
pub fn error_annotation(e: &ErrorEntry) -> String {
    let mut props = Vec::new();
    if let Some(file) = &e.file {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = e.line {
        props.push(format!("line={line}"));
    }
    if let Some(col) = e.col {
        props.push(format!("col={col}"));
    }
    let title = match (&e.target, e.phase) {
        (Some(t), Some(phase)) => format!("vss {} {t}", phase.as_str()),
        _ => "vss".to_string(),
    };
    props.push(format!("title={}", escape_property(&title)));
    format!("::error {}::{}\n", props.join(","), escape_data(&e.message))
}

/// A `::notice` annotation titled `vss`.
pub fn notice(message: &str) -> String {
    format!("::notice title=vss::{}\n", escape_data(message))
}

/// Renders the report for stdout.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let phase = t.phase.as_str();
        let s = &t.summary;
        let title =
            format!("{phase} {} ({}) +{} ~{} -{} ={}", t.name, t.location, s.added, s.modified, s.removed, s.unchanged);
        let _ = writeln!(out, "::group::{}", escape_data(&title));
        if let Some(settings) = &t.settings {
            let mark = if settings.change == ChangeKind::Added { '+' } else { '~' };
            let line = format!("{mark} {} ({})", settings.subject, settings.fields.join(", "));
            let _ = writeln!(out, "{}", escape_data(&line));
        }
        for c in &t.changes {
            let mark = match c.change {
                ChangeKind::Added => '+',
                ChangeKind::Modified => '~',
                ChangeKind::Removed => '-',
                ChangeKind::Unchanged => '=',
                ChangeKind::Unverified => '?',
                ChangeKind::Excluded => 'x',
            };
            let _ = writeln!(out, "{mark} {}", escape_data(c.path.as_str()));
        }
        if t.status == Status::Failed {
            let _ = writeln!(out, "failed: {}", escape_data(t.error.as_deref().unwrap_or("")));
        }
        let _ = writeln!(out, "::endgroup::");
    }
    for w in &report.warnings {
        let _ = writeln!(out, "::warning title=vss::{}", escape_data(&format!("target `{}`: {}", w.target, w.message)));
    }
    for e in &report.errors {
        out.push_str(&error_annotation(e));
    }
    let s = &report.summary;
    let verb = if report.dry_run { "would change" } else { "changed" };
    if report.errors.is_empty() {
        if s.changes() == 0 {
            out.push_str(&notice(&format!("zero-sum: {} unchanged", s.unchanged)));
        } else {
            out.push_str(&notice(&format!("{verb}: +{} ~{} -{} ={}", s.added, s.modified, s.removed, s.unchanged)));
        }
    }
    out
}

/// The `$GITHUB_OUTPUT` lines.
pub fn outputs(report: &Report) -> String {
    let s = &report.summary;
    format!(
        "changes={}\nadded={}\nmodified={}\nremoved={}\nzero_sum={}\nfailed_targets={}\n",
        s.changes() > 0,
        s.added,
        s.modified,
        s.removed,
        report.zero_sum,
        s.failed_targets
    )
}

/// The Markdown appended to `$GITHUB_STEP_SUMMARY`.
pub fn step_summary(report: &Report) -> String {
    let mut out = String::new();
    let title = if report.dry_run { "vss pipeline (dry run)" } else { "vss pipeline" };
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(out, "| target | phase | status | added | modified | removed | unchanged |");
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
    for t in &report.targets {
        let phase = t.phase.as_str();
        let status = match t.status {
            Status::Ok => "ok",
            Status::Failed => "failed",
        };
        let s = &t.summary;
        let _ = writeln!(
            out,
            "| {} | {phase} | {status} | {} | {} | {} | {} |",
            t.name.replace('|', "\\|"),
            s.added,
            s.modified,
            s.removed,
            s.unchanged
        );
    }
    let s = &report.summary;
    let _ = writeln!(out, "| **total** | | | {} | {} | {} | {} |\n", s.added, s.modified, s.removed, s.unchanged);
    out
}

/// Appends `text` to the file named by the environment variable `var`, when it is set.
pub fn append_to_env_file(var: &str, text: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(Path::new(&path))?;
    file.write_all(text.as_bytes())
}
