//! An API quota that every store of one login draws from (GitHub's primary rate limit):
//! what the server last said is left, when it resets, and how many calls are kept in
//! reserve.
//!
//! The engine checks a run's planned calls against each pool once every target is planned
//! and before the run's first write, so a run either starts with enough calls to finish or
//! writes nothing; each target checks again before its own first write (a target planned
//! again after a conflict may need more).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::ErrorKind;
use crate::store::StoreError;

/// One quota, shared (in an `Arc`) by the stores whose calls draw from it.
#[derive(Debug)]
pub struct QuotaPool {
    /// What it is, as messages name it: `GitHub API rate limit at https://api.github.com`.
    name: String,
    /// Calls kept in reserve: a planned call that would dip into them is refused.
    reserve: i64,
    /// Calls left as the server last said (-1 until it has said).
    remaining: AtomicI64,
    /// When it resets (Unix seconds; 0 until known).
    reset: AtomicI64,
    /// What to do when it is short.
    hint: String,
}

impl QuotaPool {
    /// A pool named `name` that keeps `reserve` calls back; `hint` says what to do when
    /// it is short.
    pub fn new(name: impl Into<String>, reserve: i64, hint: impl Into<String>) -> Self {
        Self { name: name.into(), reserve, remaining: AtomicI64::new(-1), reset: AtomicI64::new(0), hint: hint.into() }
    }

    /// Records what an answer said: calls left, and when the quota resets. Answers to
    /// concurrent calls arrive in any order: within one window the lowest count is the
    /// latest; a later reset starts a new window.
    pub fn observe(&self, remaining: Option<i64>, reset: Option<i64>) {
        let new_window = reset.is_some_and(|reset| self.reset.fetch_max(reset, Ordering::Relaxed) < reset);
        if let Some(remaining) = remaining {
            let unknown = self.remaining.load(Ordering::Relaxed) < 0;
            if new_window || unknown {
                self.remaining.store(remaining, Ordering::Relaxed);
            } else {
                self.remaining.fetch_min(remaining, Ordering::Relaxed);
            }
        }
    }

    /// Calls left as last seen, if the server has said.
    pub fn remaining(&self) -> Option<i64> {
        Some(self.remaining.load(Ordering::Relaxed)).filter(|r| *r >= 0)
    }

    /// The calls kept in reserve.
    pub fn reserve(&self) -> i64 {
        self.reserve
    }

    /// Seconds until the quota resets (0 when unknown or past).
    pub fn resets_in(&self) -> i64 {
        (self.reset.load(Ordering::Relaxed) - crate::time::now()).max(0)
    }

    /// Whether one more ordinary call may be made: not when the calls left are within the
    /// reserve.
    pub fn allows_a_call(&self) -> Result<(), StoreError> {
        match self.remaining() {
            Some(remaining) if remaining <= self.reserve => Err(self.exhausted(remaining)),
            _ => Ok(()),
        }
    }

    /// The error of a quota spent down to (or within) the reserve.
    pub fn exhausted(&self, remaining: i64) -> StoreError {
        StoreError::new(
            ErrorKind::Quota,
            format!(
                "{}: {remaining} calls left, within the reserve of {}; it resets in {} s",
                self.name,
                self.reserve,
                self.resets_in()
            ),
        )
        .with_hint(self.hint.clone())
        .final_()
    }

    /// Fails when `planned` more calls would leave fewer than the reserve. `who` names
    /// whose calls they are (`this target`, `the run (targets a, b)`), and the message
    /// gives every number.
    pub fn check(&self, planned: usize, who: &str) -> Result<(), StoreError> {
        let Some(remaining) = self.remaining() else { return Ok(()) };
        let wanted = i64::try_from(planned).unwrap_or(i64::MAX);
        if remaining.saturating_sub(wanted) >= self.reserve {
            return Ok(());
        }
        Err(StoreError::new(
            ErrorKind::Quota,
            format!(
                "{}: {who} needs about {planned} calls, {remaining} are left, and {} are kept in reserve; \
                 it resets in {} s",
                self.name,
                self.reserve,
                self.resets_in()
            ),
        )
        .with_hint(self.hint.clone())
        .final_())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_fits_only_above_the_reserve_and_the_message_has_the_numbers() {
        let pool = QuotaPool::new("API rate limit at http://x", 100, "wait");
        assert!(pool.check(1_000_000, "the run").is_ok(), "nothing is known yet");
        pool.observe(Some(110), Some(0));
        assert!(pool.check(10, "the run").is_ok());
        let e = pool.check(11, "the run (targets a, b)").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Quota);
        assert!(!e.is_retryable(), "a short quota is not retried");
        assert_eq!(
            e.to_string(),
            "rate limited: API rate limit at http://x: the run (targets a, b) needs about 11 calls, 110 are left, \
             and 100 are kept in reserve; it resets in 0 s"
        );
        assert!(pool.allows_a_call().is_ok());
        pool.observe(Some(100), None);
        pool.observe(Some(105), None);
        assert_eq!(pool.remaining(), Some(100), "a late answer of the same window does not raise the count");
        pool.observe(Some(5000), Some(3600));
        assert_eq!(pool.remaining(), Some(5000), "a new window starts afresh");
        pool.observe(Some(100), Some(3600));
        assert!(pool.allows_a_call().unwrap_err().to_string().contains("100 calls left, within the reserve of 100"));
    }
}
