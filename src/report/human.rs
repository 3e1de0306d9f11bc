//! `--output human`: a summary line, then each target with its changed paths (`+` added,
//! `~` modified, `-` removed, `=` unchanged with `--show-unchanged`) and key names.
//! Colour only when asked for (stdout is a terminal and `--no-color`/`NO_COLOR` are unset).

use std::fmt::Write as _;

use crate::diff::{ChangeKind, ChangeStatus};
use crate::report::{Report, Status};

/// ANSI styling, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Styling on or off.
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// Renders the report; with `show_unmanaged`, each target's unmanaged and orphan secrets
/// are listed by path (the report holds the first 100 of each).
pub fn render(report: &Report, style: Style, show_unmanaged: bool) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let verdict = if !report.errors.is_empty() {
        style.red("FAILED")
    } else if s.changes() == 0 {
        style.green("ZERO-SUM")
    } else if report.dry_run {
        style.yellow("CHANGES")
    } else {
        style.yellow("APPLIED")
    };
    let mode = if report.dry_run { " (dry run, nothing written)" } else { "" };
    let mut names: Vec<&str> = report.targets.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    names.dedup();
    let _ = writeln!(
        out,
        "{verdict}{mode}: {} added, {} modified, {} removed, {} unchanged across {} target{}{}",
        s.added,
        s.modified,
        s.removed,
        s.unchanged,
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if s.failed_targets > 0 { format!(", {} failed", s.failed_targets) } else { String::new() }
    );
    for t in &report.targets {
        let phase = format!("{:<5}", t.phase.as_str());
        let ts = &t.summary;
        let counts = format!("+{} ~{} -{} ={}", ts.added, ts.modified, ts.removed, ts.unchanged);
        let status = match t.status {
            Status::Ok => String::new(),
            Status::Failed => format!("  {}", style.red("FAILED")),
        };
        let _ = writeln!(out, "\n{phase} {}  {}  {}{status}", style.bold(&t.name), style.dim(&t.location), counts);
        if let Some(settings) = &t.settings {
            let (mark, verb) = match settings.change {
                ChangeKind::Added => (style.green("+"), "created"),
                _ => (style.yellow("~"), "updated"),
            };
            let fields =
                if settings.fields.is_empty() { String::new() } else { format!(": {}", settings.fields.join(", ")) };
            let status = match (settings.status, settings.error_kind) {
                (ChangeStatus::Failed, Some(kind)) => {
                    format!("  {}", style.red(&format!("failed ({})", kind.as_str())))
                }
                (ChangeStatus::Failed, None) => format!("  {}", style.red("failed")),
                (ChangeStatus::Skipped, _) => format!("  {}", style.dim("skipped")),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {mark} {} {}{status}", settings.subject, style.dim(&format!("({verb}{fields})")));
        }
        for c in &t.changes {
            let painted = match c.change {
                ChangeKind::Added => style.green("+"),
                ChangeKind::Modified => style.yellow("~"),
                ChangeKind::Removed => style.red("-"),
                ChangeKind::Unchanged => style.dim("="),
                ChangeKind::Unverified => style.yellow("?"),
                ChangeKind::Excluded => style.dim("x"),
            };
            let mut keys = Vec::new();
            if c.change == ChangeKind::Modified {
                keys.extend(c.keys_added.iter().map(|k| format!("+{k}")));
                keys.extend(c.keys_modified.iter().map(|k| format!("~{k}")));
                keys.extend(c.keys_removed.iter().map(|k| format!("-{k}")));
            } else if c.change == ChangeKind::Added {
                keys.extend(c.keys_added.iter().cloned());
            }
            if c.metadata {
                keys.push("(metadata)".into());
            }
            if c.drift {
                keys.push("(drift: written by someone else)".into());
            }
            if let Some(pattern) = &c.excluded_by {
                keys.push(format!("(excluded by `{pattern}`)"));
            }
            let keys = if keys.is_empty() {
                String::new()
            } else {
                format!("  {}", style.dim(&format!("keys: {}", keys.join(", "))))
            };
            let status = match (c.status, c.error_kind) {
                (Some(ChangeStatus::Failed), Some(kind)) => {
                    format!("  {}", style.red(&format!("failed ({})", kind.as_str())))
                }
                (Some(ChangeStatus::Failed), None) => format!("  {}", style.red("failed")),
                (Some(ChangeStatus::Skipped), _) => format!("  {}", style.dim("skipped")),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {painted} {}{keys}{status}", c.path);
        }
        let listed = |out: &mut String, paths: &[String], total: usize| {
            if show_unmanaged {
                for path in paths {
                    let _ = writeln!(out, "    {}", style.dim(path));
                }
                if total > paths.len() {
                    let _ = writeln!(out, "    {}", style.dim(&format!("… and {} more", total - paths.len())));
                }
            }
        };
        if ts.unmanaged > 0 {
            let _ = writeln!(out, "  {}", style.dim(&format!("{} unmanaged secret(s) left alone", ts.unmanaged)));
            listed(&mut out, &t.unmanaged, ts.unmanaged);
        }
        if ts.orphans > 0 {
            let _ = writeln!(out, "  {}", style.dim(&format!("{} orphan(s) kept (delete_orphans is off)", ts.orphans)));
            listed(&mut out, &t.orphans, ts.orphans);
        }
        if ts.unverified > 0 {
            let _ = writeln!(
                out,
                "  {}",
                style.dim(&format!("{} unverified: the store does not return values", ts.unverified))
            );
            if let Some(hint) = &t.hint {
                let _ = writeln!(out, "  {} {hint}", style.dim("hint:"));
            }
        }
        if let Some(error) = &t.error {
            let _ = writeln!(out, "  {} {error}", style.red("error:"));
            let hint = report.errors.iter().find(|e| e.target.as_deref() == Some(&t.name) && e.phase == Some(t.phase));
            if let Some(hint) = hint.and_then(|e| e.hint.as_deref()) {
                let _ = writeln!(out, "  {} {hint}", style.dim("hint:"));
            }
        }
    }
    for w in &report.warnings {
        let _ = writeln!(out, "{} target `{}`: {}", style.yellow("warning:"), w.target, w.message);
    }
    for e in report.errors.iter().filter(|e| e.target.is_none()) {
        let _ = writeln!(out, "{} {}", style.red("error:"), e.message);
        if let Some(hint) = &e.hint {
            let _ = writeln!(out, "{} {hint}", style.dim("hint:"));
        }
    }
    out
}
