//! The engine's tunables, with their defaults; the server converts its own settings into them.

/// Tunables of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// Cloud calls in flight at once per operation.
    pub concurrency: usize,
    pub retry: crate::retry::RetryPolicy,
    /// How long volumes a launch swapped out of a standby are kept before they may be deleted.
    pub swapped_volume_retention_days: u32,
    /// How long a runner's lease on an execution lasts without renewal (wall-clock ms).
    pub lease_ms: i64,
    /// How long a requested recovery waits for approval.
    pub approval_ttl_minutes: u32,
    /// No job is polled sooner than this after it started (on the engine's clock; 0 polls at once).
    pub min_launch_ms: i64,
    /// No reversed replication is polled sooner than this after it was reversed (on the engine's clock).
    pub min_reverse_sync_ms: i64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            retry: crate::retry::RetryPolicy::default(),
            swapped_volume_retention_days: 14,
            lease_ms: 60_000,
            approval_ttl_minutes: 60,
            min_launch_ms: domain::execution::MIN_LAUNCH_MS,
            min_reverse_sync_ms: domain::execution::MIN_REVERSE_SYNC_MS,
        }
    }
}
