//! `--output compact`: one line, `ZERO-SUM: 43 unchanged`, `CHANGES: +5 ~2 -0 =43` (a dry
//! run), `APPLIED: +5 ~2 -0 =43` (a real run), or `FAILED: 1 error, +5 ~2 -0 =43` (counts of
//! what was applied); ` ?N` follows the counts when N secrets are
//! unverified (their store does not return values), and ` settings N` when N locations'
//! declared settings (GitHub environments) change.

use crate::error::ErrorKind;
use crate::report::{ErrorEntry, Report};

/// Renders the report.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut counts = format!("+{} ~{} -{} ={}", s.added, s.modified, s.removed, s.unchanged);
    if s.unverified > 0 {
        counts.push_str(&format!(" ?{}", s.unverified));
    }
    if s.settings > 0 {
        counts.push_str(&format!(" settings {}", s.settings));
    }
    if !report.errors.is_empty() {
        let failed = report.errors.len();
        return format!("FAILED: {failed} error{}, {counts}\n", plural(failed));
    }
    if s.changes() == 0 && s.unverified == 0 {
        format!("ZERO-SUM: {} unchanged\n", s.unchanged)
    } else if s.changes() == 0 {
        format!("ZERO-SUM: {counts}\n")
    } else if report.dry_run {
        format!("CHANGES: {counts}\n")
    } else {
        format!("APPLIED: {counts}\n")
    }
}

/// The line of a run that stopped before any target ran: `FAILED: 2 config errors`.
pub fn failed(errors: &[ErrorEntry]) -> String {
    let n = errors.len();
    let what = if errors.iter().all(|e| e.kind == ErrorKind::Config) { "config error" } else { "error" };
    format!("FAILED: {n} {what}{}\n", plural(n))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
