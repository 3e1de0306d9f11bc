//! The one retry wrapper: every store call goes through [`RetryPolicy::run`], which retries
//! only what [`StoreError::is_retryable`] allows, with exponential backoff and full jitter.

use std::future::Future;
use std::time::Duration;

use crate::store::StoreError;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

/// The longest a server's `retry-after` is waited out; a longer one is waited this long.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, base: Duration::from_millis(100), cap: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails with a non-retryable error, or the attempts are
    /// spent. `what` names the call in the log.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.attempts => {
                    // As long as the server asked, when it did (a secondary rate limit).
                    let delay = e.wait().map_or_else(|| self.delay(attempt), |wait| wait.min(MAX_WAIT));
                    tracing::warn!(call = what, attempt, ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Full jitter: a random delay up to `base * 2^(attempt-1)`, capped.
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.cap);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(attempts: u32) -> RetryPolicy {
        RetryPolicy { attempts, base: Duration::from_millis(1), cap: Duration::from_millis(2) }
    }

    #[tokio::test]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let out = fast(5)
            .run("t", || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 { Err(StoreError::unavailable("busy")) } else { Ok(n) }
            })
            .await;
        assert_eq!(out.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_and_never_retries_permanent_errors() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = fast(3)
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::unavailable("down"))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = fast(3)
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::permission("no"))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
