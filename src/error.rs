//! Exit codes: the zero-sum contract (SPEC §3).

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
}
