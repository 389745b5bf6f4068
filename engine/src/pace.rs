//! A token bucket for DRS calls: DRS publishes no request rate and throttles (`aws-drs-api.md` §4.2), so
//! Roundtrip paces itself instead of spending its retries. The AWS adapter keeps one per account and region
//! (`drs_requests_per_second`); the engine keeps one for a cloud that states its rate
//! ([`crate::cloud::Cloud::drs_pace`], the simulated estate's).

use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// `rate` tokens a second, up to `burst` saved up; [`TokenBucket::take`] waits for one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate: rate.max(0.001), burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Takes one token, waiting (on tokio's clock) until there is one.
    pub async fn take(&self) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let (tokens, last) = *s;
            let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst) - 1.0;
            *s = (tokens, now);
            // A negative balance is a place in the queue: this caller goes when it is paid back.
            (tokens < 0.0).then(|| Duration::from_secs_f64(-tokens / self.rate))
        };
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_burst_wait_for_the_rate() {
        let b = TokenBucket::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            b.take().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        for _ in 0..10 {
            b.take().await;
        }
        let waited = start.elapsed().as_secs_f64();
        assert!((0.99..1.01).contains(&waited), "10 more calls at 10/s take a second, took {waited}");
    }
}
