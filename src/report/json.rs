//! `--output json`: the [`Report`] as one pretty-printed JSON document.

use crate::report::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
    text.push('\n');
    text
}
