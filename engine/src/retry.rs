//! Retries for cloud calls: exponential backoff with full jitter on throttling and service errors
//! (honouring a retry-after hint), never on validation, access or not-found errors.

use crate::cloud::CloudError;
use std::future::Future;
use std::time::Duration;

/// How a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Attempts in all while the service answers with throttling: being throttled is waiting, not
    /// failing (a readiness check of 1,000 servers reads 1,000 launch configurations through DRS's rate).
    pub max_throttled_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_throttled_attempts: 40,
            base: Duration::from_millis(200),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): a random point in `[0, min(max, base·2^retry)]`
    /// ("full jitter"), but never less than the service's retry-after hint.
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let ceiling = self.base.saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX)).min(self.max);
        let jittered = ceiling.mul_f64(fastrand::f64());
        hint.map_or(jittered, |h| h.max(jittered)).min(self.max)
    }
}

/// Whether an error is worth retrying, and the service's hint.
pub fn retryable(e: &CloudError) -> Option<Option<Duration>> {
    match e {
        CloudError::Throttled { retry_after_ms } => Some(Some(Duration::from_millis(*retry_after_ms))),
        CloudError::Unavailable { retry_after_ms, .. } => Some(retry_after_ms.map(Duration::from_millis)),
        _ => None,
    }
}

/// What a retried call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub attempts: u32,
    pub throttled: u32,
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts; sleeps on tokio's clock.
///
/// # Errors
/// The last error: at once for errors that are not retryable, after `max_attempts` for the others.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> (Result<T, CloudError>, Attempts)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut spent = Attempts::default();
    loop {
        spent.attempts += 1;
        match op().await {
            Ok(v) => return (Ok(v), spent),
            Err(e) => {
                let Some(hint) = retryable(&e) else { return (Err(e), spent) };
                let limit = if matches!(e, CloudError::Throttled { .. }) {
                    spent.throttled += 1;
                    policy.max_throttled_attempts.max(policy.max_attempts)
                } else {
                    policy.max_attempts
                };
                if spent.attempts >= limit {
                    return (Err(e), spent);
                }
                tokio::time::sleep(policy.delay(spent.attempts - 1, hint)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_stays_under_its_ceiling_and_honours_the_hint() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            ..Default::default()
        };
        for retry in 0..10 {
            let d = p.delay(retry, None);
            assert!(d <= Duration::from_millis(100 * 2u64.pow(retry)).min(Duration::from_secs(2)), "{retry}: {d:?}");
        }
        assert!(p.delay(0, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_and_validation_is_not() {
        let p = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let (r, spent) = with_retry(&p, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(CloudError::Throttled { retry_after_ms: 50 })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!((r.unwrap(), spent), (7, Attempts { attempts: 4, throttled: 3 }));

        let calls = AtomicU32::new(0);
        let (r, spent) = with_retry(&p, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(CloudError::Validation { message: "no".into() })
        })
        .await;
        assert!(matches!(r, Err(CloudError::Validation { .. })));
        assert_eq!(spent.attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_waited_out_longer_than_errors_but_not_for_ever() {
        let p = RetryPolicy { max_attempts: 3, max_throttled_attempts: 10, ..RetryPolicy::default() };
        let (r, spent) = with_retry(&p, || async { Err::<(), _>(CloudError::Throttled { retry_after_ms: 10 }) }).await;
        assert!(matches!(r, Err(CloudError::Throttled { .. })));
        assert_eq!(spent, Attempts { attempts: 10, throttled: 10 });
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let (r, spent) = with_retry(&p, || async {
            Err::<(), _>(CloudError::Unavailable { message: "500".into(), retry_after_ms: None })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(spent.attempts, 3);
    }
}
