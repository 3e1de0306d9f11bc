//! `vss validate`: whether the config is valid, in every output format. Config errors are
//! also rendered with carets on stderr by the caller.

use schemars::JsonSchema;
use serde::Serialize;

use crate::report::{ErrorEntry, github};

/// The result of `vss validate`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Validation {
    /// Whether the config is valid (and, unless offline, its dynamic targets were found).
    pub valid: bool,
    /// Every error, with `file`, `line` and `col` for config errors.
    pub errors: Vec<ErrorEntry>,
    /// One line about a valid config: `vss.yaml: valid (2 sources, 3 targets, 2 levels)`.
    #[serde(skip)]
    pub summary: String,
}

impl Validation {
    /// A valid config, summarised.
    pub fn valid(file: &str, sources: usize, targets: usize, levels: usize) -> Self {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let summary = format!(
            "{file}: valid ({sources} source{}, {targets} target{}, {levels} level{})",
            plural(sources),
            plural(targets),
            plural(levels)
        );
        Validation { valid: true, errors: Vec::new(), summary }
    }

    /// An invalid config.
    pub fn invalid(errors: Vec<ErrorEntry>) -> Self {
        Validation { valid: false, errors, summary: String::new() }
    }
}

/// `--output json`: `{"valid": …, "errors": […]}`.
pub fn json(validation: &Validation) -> String {
    let mut text = serde_json::to_string_pretty(validation).expect("JSON serializes");
    text.push('\n');
    text
}

/// `--output github`: a notice for a valid config, an error annotation per error.
pub fn github(validation: &Validation) -> String {
    if validation.valid {
        return github::notice(&validation.summary);
    }
    validation.errors.iter().map(github::error_annotation).collect()
}

/// `--output human` and `compact`: the summary line of a valid config (errors go to stderr).
pub fn text(validation: &Validation) -> String {
    if validation.valid { format!("{}\n", validation.summary) } else { String::new() }
}
