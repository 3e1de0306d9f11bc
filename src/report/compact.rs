//! `--output compact`: one line, `ZERO-SUM: 43 unchanged`, `CHANGES: +5 ~2 -0 =43`, or
//! `FAILED: 1 target failed, +5 ~2 -0 =43`.

use crate::report::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let counts = format!("+{} ~{} -{} ={}", s.added, s.modified, s.removed, s.unchanged);
    if !report.errors.is_empty() {
        let failed = report.errors.len();
        return format!("FAILED: {failed} error{}, {counts}\n", if failed == 1 { "" } else { "s" });
    }
    if s.changes() == 0 { format!("ZERO-SUM: {} unchanged\n", s.unchanged) } else { format!("CHANGES: {counts}\n") }
}
