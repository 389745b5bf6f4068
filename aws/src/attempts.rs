//! Counts what the AWS SDK does on its own below the cloud port: each operation, each HTTP attempt (its
//! standard retries included) and each throttled attempt, for the metrics. Without it, throttling that the
//! SDK retried away would never show.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use engine::cloud::TransportAttempts;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    attempts: AtomicU64,
    throttled: AtomicU64,
}

/// An interceptor shared by every client of one [`crate::Clients`].
#[derive(Debug, Default, Clone)]
pub struct AttemptCounter(Arc<Counts>);

/// Whether an HTTP status is throttling: DRS answers 429; EC2 answers `RequestLimitExceeded` with 503.
pub fn throttling_status(status: u16) -> bool {
    status == 429 || status == 503
}

impl AttemptCounter {
    pub fn snapshot(&self) -> TransportAttempts {
        TransportAttempts {
            calls: self.0.calls.load(Ordering::Relaxed),
            attempts: self.0.attempts.load(Ordering::Relaxed),
            throttled: self.0.throttled.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "RoundtripAttemptCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        if context.response().is_some_and(|r| throttling_status(r.status().as_u16())) {
            self.0.throttled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
