//! What every call to the simulated estate goes through: the account and region must be reachable, planted
//! faults and DRS's rate limit apply, and each call is recorded with its outcome.

use super::{MAX_CALLS, Simulator, settle_all};
use crate::state::{ApiCall, Fault, World};
use domain::estate::AccountRegion;
use domain::ids::SourceServerId;
use domain::launch::LaunchConfigurationUpdate;
use engine::clock::Clock;
use engine::cloud::CloudError;

/// A token bucket on tokio's clock (paused in tests, so throttling storms run instantly).
pub(super) struct RateLimit {
    pub(super) per_second: f64,
    burst: f64,
    /// The burst as stated.
    pub(super) burst_calls: u32,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimit {
    /// A bucket refilling `per_second` tokens a second (at least one a minute).
    pub(super) fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() { per_second.max(1.0 / 60.0) } else { 1.0 / 60.0 };
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            burst_calls: burst.max(1),
            tokens: f64::from(burst.max(1)),
            last: tokio::time::Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is free.
    fn take(&mut self) -> Result<(), u64> {
        let now = tokio::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_second).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.per_second) * 1000.0).ceil() as u64)
        }
    }
}

pub(super) fn record(
    w: &mut World,
    at_ms: i64,
    operation: &str,
    source: Option<&SourceServerId>,
    outcome: &str,
    update: Option<LaunchConfigurationUpdate>,
) {
    // A bounded log: the most recent calls are what tests and the console look at.
    if w.calls.len() >= MAX_CALLS {
        w.calls.drain(..MAX_CALLS / 10);
    }
    w.calls.push(ApiCall {
        at_ms,
        operation: operation.into(),
        source_server_id: source.cloned(),
        outcome: outcome.into(),
        update,
    });
}

pub(super) fn outcome<T>(r: &Result<T, CloudError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(CloudError::Validation { .. }) => "ValidationException",
        Err(CloudError::NotFound { .. }) => "ResourceNotFoundException",
        Err(CloudError::AccessDenied { .. }) => "AccessDeniedException",
        Err(CloudError::Throttled { .. }) => "ThrottlingException",
        Err(CloudError::Conflict { .. }) => "ConflictException",
        Err(CloudError::QuotaExceeded { .. }) => "ServiceQuotaExceededException",
        Err(_) => "InternalServerException",
    }
}

impl Simulator {
    /// Sets (or, with `None`, lifts) the DRS API rate limit. The engine paces its calls to the rate the
    /// estate had when it was wired (its scenario's `api`), so a limit set later is a storm it must ride out.
    pub fn set_drs_rate_limit(&self, per_second: Option<f64>, burst: u32) {
        *self.drs_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            per_second.map(|r| RateLimit::new(r, burst));
    }

    /// Injects a fault into one source server's DRS calls (or clears it).
    pub fn set_fault(&self, source: &SourceServerId, fault: Option<Fault>) {
        self.with_world(|w| match fault {
            Some(f) => w.faults.insert(source.clone(), f),
            None => w.faults.remove(source),
        });
    }

    /// Admits one DRS call for `source` or answers throttling / a service error, recording the refusal.
    pub(super) fn admit(
        &self,
        w: &mut World,
        operation: &str,
        source: Option<&SourceServerId>,
    ) -> Result<(), CloudError> {
        let refusal = {
            let mut rate = self.drs_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rate.as_mut().and_then(|r| r.take().err())
        };
        if let Some(retry_after_ms) = refusal {
            record(w, self.clock.now_millis(), operation, source, "ThrottlingException", None);
            return Err(CloudError::Throttled { retry_after_ms });
        }
        if let Some(src) = source
            && let Some(Fault::ServiceErrors { count }) = w.faults.get_mut(src)
            && *count > 0
        {
            *count -= 1;
            record(w, self.clock.now_millis(), operation, source, "InternalServerException", None);
            return Err(CloudError::Unavailable {
                message: "InternalServerException (injected)".into(),
                retry_after_ms: None,
            });
        }
        Ok(())
    }

    /// The start of every DRS call: the world locked for writing, the account and region checked, the call
    /// admitted (rate limit, injected service errors) and launches brought up to the current virtual time.
    pub(super) fn drs_call(
        &self,
        at: &AccountRegion,
        operation: &str,
        source: Option<&SourceServerId>,
    ) -> Result<(std::sync::RwLockWriteGuard<'_, World>, i64), CloudError> {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reachable(&w, at)?;
        self.admit(&mut w, operation, source)?;
        let now = self.clock.now_millis();
        settle_all(&mut w, now);
        w.reindex();
        Ok((w, now))
    }

    /// The start of every EC2 call: as [`Simulator::drs_call`], without DRS's rate limit.
    pub(super) fn ec2_call(
        &self,
        at: &AccountRegion,
    ) -> Result<(std::sync::RwLockWriteGuard<'_, World>, i64), CloudError> {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reachable(&w, at)?;
        let now = self.clock.now_millis();
        settle_all(&mut w, now);
        w.reindex();
        Ok((w, now))
    }

    pub(super) fn reachable(&self, w: &World, at: &AccountRegion) -> Result<(), CloudError> {
        if !w.scenario.accounts.iter().any(|a| a.id == at.account_id) {
            return Err(CloudError::AccessDenied {
                message: format!(
                    "no role to assume in account {}: it is not part of the simulated estate",
                    at.account_id
                ),
            });
        }
        if !w.scenario.regions.contains(&at.region) {
            return Err(CloudError::Validation {
                message: format!("region {} is not part of the simulated estate", at.region),
            });
        }
        Ok(())
    }
}
