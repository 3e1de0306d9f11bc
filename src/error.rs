//! Exit codes (the zero-sum contract) and the kinds of failure every error carries.

use schemars::JsonSchema;
use serde::Serialize;

/// How `vss` exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success; with `--exit-code`, also zero-sum.
    Ok,
    /// Only with `--exit-code`: success, but changes were found or made.
    Changes,
    /// Any error: bad config or flags, unreachable store, a failed target.
    Error,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Changes => 1,
            Exit::Error => 2,
        }
    }

    /// The exit of a pipeline run: errors win over changes; changes count only with
    /// `--exit-code`.
    pub fn of_run(errors: bool, changes: bool, exit_code: bool) -> Exit {
        if errors {
            Exit::Error
        } else if changes && exit_code {
            Exit::Changes
        } else {
            Exit::Ok
        }
    }
}

/// What kind of failure an error is: stable names, reported as `errors[].kind` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The config file is invalid (with `file`, `line` and `col`).
    Config,
    /// The command line asks for something impossible (an unknown `--targets` name).
    Usage,
    /// The credentials lack a permission, or a login failed.
    Permission,
    /// The store could not be reached or is failing for now (retried).
    Unavailable,
    /// A conditional write lost a race with another writer (retried from a fresh read).
    Conflict,
    /// The store holds, or was asked to hold, something vss cannot use.
    Invalid,
    /// Something the config names does not exist (a bucket, a mount, an OU).
    NotFound,
    /// A call took too long (retried).
    Timeout,
    /// A rate limit or quota was hit (retried).
    Quota,
    /// A local file could not be read or written.
    Io,
    /// Not run because a target it depends on failed.
    Dependency,
    /// Refused by a safety limit (a mass deletion, emptying a target): nothing written.
    Refused,
    /// `vss apply`: the plan file no longer holds (a source, the config or a live secret
    /// changed since it was made): nothing written.
    Stale,
    /// The run was interrupted (SIGINT, SIGTERM): writes in flight finished, no other
    /// write started.
    Interrupted,
    /// A bug in vss: please report it.
    Internal,
}

impl ErrorKind {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Quota)
    }

    /// The stable name, as in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Usage => "usage",
            ErrorKind::Permission => "permission",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Quota => "quota",
            ErrorKind::Io => "io",
            ErrorKind::Dependency => "dependency",
            ErrorKind::Refused => "refused",
            ErrorKind::Stale => "stale",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Why a target failed in one phase: the kind, the store and location where it happened,
/// what happened, and what to do about it. Never a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The store kind that failed (`vault`, `aws`…), when a store failed.
    pub store: Option<&'static str>,
    /// Where it failed (`vault secret/app`), when a store failed.
    pub location: Option<String>,
    /// What happened.
    pub message: String,
    /// What to do about it, when known.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure that is not a store's (a dependency failed, a bundle is missing).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, store: None, location: None, message: message.into(), hint: None }
    }

    /// Adds what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_win_over_changes() {
        assert_eq!(Exit::of_run(true, true, true), Exit::Error);
        assert_eq!(Exit::of_run(false, true, true), Exit::Changes);
        assert_eq!(Exit::of_run(false, true, false), Exit::Ok);
        assert_eq!(Exit::of_run(false, false, true), Exit::Ok);
        assert_eq!((Exit::Ok.code(), Exit::Changes.code(), Exit::Error.code()), (0, 1, 2));
    }

    #[test]
    fn kind_names_match_their_json() {
        for kind in [
            ErrorKind::Config,
            ErrorKind::Usage,
            ErrorKind::Permission,
            ErrorKind::Unavailable,
            ErrorKind::Conflict,
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Timeout,
            ErrorKind::Quota,
            ErrorKind::Io,
            ErrorKind::Dependency,
            ErrorKind::Refused,
            ErrorKind::Stale,
            ErrorKind::Interrupted,
            ErrorKind::Internal,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        assert!(ErrorKind::Quota.is_retryable() && !ErrorKind::Conflict.is_retryable());
    }
}
