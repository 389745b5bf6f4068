//! Metrics for Prometheus: counters kept in this process (cloud calls, retries, HTTP latency, webhook
//! deliveries, replication lag seen by the last readiness evaluation) and gauges computed from the store at
//! each scrape (executions, servers, RTO, readiness), so every process sharing a store reports the same
//! execution figures.

use crate::cloud::{Cloud, CloudError, CloudInfo, KnownAccountRegion, RegisteredAccount, TransportAttempts};
use crate::services::{ServiceError, Services};
use async_trait::async_trait;
use domain::estate::{AccountRegion, Ec2Instance, SourceServer, Subnet};
use domain::execution::{Mode, Phase, ServerState};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate};
use domain::readiness::Quotas;
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem, RecoveryInstance};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket bounds of HTTP latency, seconds.
pub const HTTP_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Bucket bounds of replication lag and approval wait, seconds.
pub const LAG_BUCKETS: [f64; 8] = [5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0];
/// Ended executions whose RTO is reported (the most recent).
pub const RTO_EXECUTIONS: usize = 50;

/// A cumulative histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let _ =
                writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}", self.counts.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

fn braces(labels: &str) -> String {
    if labels.is_empty() { String::new() } else { format!("{{{labels}}}") }
}

/// A label value as the text format needs it: backslash, quote and newline escaped, at most 128 characters
/// (estate data is untrusted).
pub fn label(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars().take(128) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What this process counted.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (service, operation, outcome) → calls.
    cloud_calls: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    /// (service, operation) → time spent waiting on its calls, seconds.
    cloud_seconds: Mutex<BTreeMap<(&'static str, &'static str), f64>>,
    retries: AtomicU64,
    throttled: AtomicU64,
    /// (method, route, status) → latency.
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// result → deliveries.
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
    /// protection group id → (group name, lag of each replicating server, seconds).
    lags: Mutex<BTreeMap<String, (String, Vec<u64>)>>,
}

fn outcome(e: &CloudError) -> &'static str {
    match e {
        CloudError::Throttled { .. } => "throttled",
        CloudError::QuotaExceeded { .. } => "quota_exceeded",
        CloudError::AccessDenied { .. } => "access_denied",
        CloudError::Validation { .. } | CloudError::Conflict { .. } | CloudError::NotFound { .. } => "refused",
        CloudError::Unavailable { .. } | CloudError::Unexpected(_) => "error",
    }
}

impl Metrics {
    /// Counts one cloud call.
    pub fn cloud_call<T>(
        &self,
        service: &'static str,
        operation: &'static str,
        r: &Result<T, CloudError>,
        took: std::time::Duration,
    ) {
        let o = r.as_ref().err().map_or("ok", outcome);
        if let Ok(mut m) = self.cloud_calls.lock() {
            *m.entry((service, operation, o)).or_default() += 1;
        }
        if let Ok(mut m) = self.cloud_seconds.lock() {
            *m.entry((service, operation)).or_default() += took.as_secs_f64();
        }
    }

    /// Time spent waiting on cloud calls so far, seconds (in the benchmark: the simulated estate's work).
    pub fn cloud_seconds(&self) -> f64 {
        self.cloud_seconds.lock().map_or(0.0, |m| m.values().sum())
    }

    /// Counts what a retried call cost beyond its first attempt.
    pub fn retried(&self, attempts: crate::retry::Attempts) {
        self.retries.fetch_add(u64::from(attempts.attempts.saturating_sub(1)), Ordering::Relaxed);
        self.throttled.fetch_add(u64::from(attempts.throttled), Ordering::Relaxed);
    }

    /// Records one HTTP request (`route` is the matched route, never the raw path). Methods outside the
    /// standard ones count as `OTHER`, so nobody can grow the metrics by inventing methods.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
        let method = METHODS.into_iter().find(|m| *m == method).unwrap_or("OTHER");
        if let Ok(mut m) = self.http.lock() {
            m.entry((method.to_owned(), route.to_owned(), status)).or_default().observe(&HTTP_BUCKETS, seconds);
        }
    }

    /// Counts a webhook delivery attempt's result: `delivered`, `failed_attempt` or `undelivered`.
    pub fn webhook(&self, result: &'static str) {
        if let Ok(mut m) = self.webhooks.lock() {
            *m.entry(result).or_default() += 1;
        }
    }

    /// Replaces a group's replication lags with those of its last readiness evaluation.
    pub fn set_lags(&self, group_id: &str, group_name: &str, lags: Vec<u64>) {
        if let Ok(mut m) = self.lags.lock() {
            m.insert(group_id.to_owned(), (group_name.to_owned(), lags));
        }
    }

    /// Every cloud call so far and the throttled ones among them (for the benchmark).
    pub fn cloud_totals(&self) -> (u64, u64) {
        self.cloud_calls.lock().map_or((0, 0), |m| {
            (m.values().sum(), m.iter().filter(|((_, _, r), _)| *r == "throttled").map(|(_, n)| *n).sum())
        })
    }

    /// Calls of one operation with one outcome so far (for tests and the benchmark).
    pub fn cloud_calls(&self, service: &str, operation: &str, outcome: &str) -> u64 {
        self.cloud_calls.lock().map_or(0, |m| {
            m.iter().filter(|((s, o, r), _)| *s == service && *o == operation && *r == outcome).map(|(_, n)| *n).sum()
        })
    }

    fn render_counters(&self, x: &mut Exposition) {
        x.family(
            "roundtrip_cloud_api_calls_total",
            "counter",
            "Cloud calls made by this process, by operation and outcome (each attempt the engine makes).",
        );
        if let Ok(m) = self.cloud_calls.lock() {
            for ((s, o, r), n) in m.iter() {
                x.sample(&format!("{{service=\"{s}\",operation=\"{o}\",outcome=\"{r}\"}}"), n);
            }
        }
        x.family(
            "roundtrip_cloud_call_seconds_total",
            "counter",
            "Time this process waited on cloud calls, by operation (each attempt), seconds.",
        );
        if let Ok(m) = self.cloud_seconds.lock() {
            for ((s, o), t) in m.iter() {
                x.sample(&format!("{{service=\"{s}\",operation=\"{o}\"}}"), format!("{t:.6}"));
            }
        }
        x.family("roundtrip_cloud_retries_total", "counter", "Cloud call attempts the engine made beyond the first.");
        x.sample("", self.retries.load(Ordering::Relaxed));
        x.family(
            "roundtrip_cloud_throttled_total",
            "counter",
            "Cloud calls the service throttled (each was retried or given up).",
        );
        x.sample("", self.throttled.load(Ordering::Relaxed));
        x.family(
            "roundtrip_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by matched route.",
        );
        if let Ok(m) = self.http.lock() {
            for ((method, route, status), h) in m.iter() {
                let labels = format!("method=\"{}\",route=\"{}\",status=\"{status}\"", label(method), label(route));
                x.histogram(h, &labels, &HTTP_BUCKETS);
            }
        }
        x.family("roundtrip_webhook_deliveries_total", "counter", "Webhook delivery attempts by result.");
        if let Ok(m) = self.webhooks.lock() {
            for r in ["delivered", "failed_attempt", "undelivered"] {
                x.sample(&format!("{{result=\"{r}\"}}"), m.get(r).copied().unwrap_or(0));
            }
        }
        let lags = self.lags.lock().map(|m| m.clone()).unwrap_or_default();
        x.family(
            "roundtrip_replication_lag_servers",
            "gauge",
            "Replicating servers per group whose lag is at most `le` seconds, at the group's last readiness evaluation.",
        );
        for (id, (name, lags)) in &lags {
            let g = format!("protection_group_id=\"{}\",group=\"{}\"", label(id), label(name));
            for b in LAG_BUCKETS {
                #[allow(clippy::cast_precision_loss)]
                let n = lags.iter().filter(|l| **l as f64 <= b).count();
                x.sample(&format!("{{{g},le=\"{b}\"}}"), n);
            }
            x.sample(&format!("{{{g},le=\"+Inf\"}}"), lags.len());
        }
        x.family(
            "roundtrip_replication_lag_seconds_max",
            "gauge",
            "The largest replication lag per group at its last readiness evaluation.",
        );
        for (id, (name, lags)) in &lags {
            let g = format!("protection_group_id=\"{}\",group=\"{}\"", label(id), label(name));
            x.sample(&format!("{{{g}}}"), lags.iter().max().copied().unwrap_or(0));
        }
    }
}

/// The text format, one metric family at a time: its HELP and TYPE lines, then all its samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
    name: &'static str,
}

impl Exposition {
    /// Starts a family; the samples that follow belong to it.
    pub fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        self.name = name;
    }

    /// One sample of the current family; `labels` is empty or `{…}`.
    pub fn sample(&mut self, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{}{labels} {value}", self.name);
    }

    /// A histogram's buckets, sum and count, of the current family.
    pub fn histogram(&mut self, h: &Histogram, labels: &str, bounds: &[f64]) {
        h.render(&mut self.out, self.name, labels, bounds);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Drill => "drill",
        Mode::Recovery => "recovery",
        Mode::Failback => "failback",
    }
}

fn phase_str(p: Phase) -> String {
    serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[allow(clippy::cast_precision_loss)]
fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Services {
    /// Every metric in the Prometheus text format (version 0.0.4).
    ///
    /// # Errors
    /// Store failures.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let now = self.clock.now_millis();
        let mut x = Exposition::default();
        x.family("roundtrip_build_info", "gauge", "The running version.");
        x.sample(
            &format!("{{version=\"{}\",cloud=\"{}\"}}", env!("CARGO_PKG_VERSION"), label(&self.cloud_info().kind)),
            1,
        );
        let mut all = self.list_executions().await?;
        all.sort_by_key(|e| e.state.requested_at);
        let mut by_state: BTreeMap<(String, &str), u64> = BTreeMap::new();
        let mut servers: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut approval = Histogram::default();
        for e in &all {
            let mode = mode_str(e.state.mode);
            *by_state.entry((phase_str(e.state.phase), mode)).or_default() += 1;
            for r in e.state.waves.iter().flat_map(|w| w.servers.iter()) {
                if r.launched_at.is_some() {
                    *servers.entry(("launched", mode)).or_default() += 1;
                }
                match r.state {
                    ServerState::Verified => *servers.entry(("verified", mode)).or_default() += 1,
                    ServerState::Failed => *servers.entry(("failed", mode)).or_default() += 1,
                    _ => {}
                }
            }
            if let (Some(_), Some(start)) = (&e.state.approved_by, e.state.started_at) {
                approval.observe(&LAG_BUCKETS, secs(start - e.state.requested_at));
            }
        }
        x.family("roundtrip_executions", "gauge", "Executions in the store by state and mode.");
        for ((state, mode), n) in &by_state {
            x.sample(&format!("{{state=\"{state}\",mode=\"{mode}\"}}"), n);
        }
        x.family(
            "roundtrip_execution_servers",
            "gauge",
            "Servers of stored executions that launched, were verified or failed.",
        );
        for mode in ["drill", "recovery", "failback"] {
            for result in ["launched", "verified", "failed"] {
                x.sample(
                    &format!("{{result=\"{result}\",mode=\"{mode}\"}}"),
                    servers.get(&(result, mode)).copied().unwrap_or(0),
                );
            }
        }
        x.family(
            "roundtrip_approval_wait_seconds",
            "histogram",
            "Time from request to approval of approved executions.",
        );
        x.histogram(&approval, "", &LAG_BUCKETS);
        let execution = |e: &domain::execution::ExecutionRecord| {
            format!(
                "execution_id=\"{}\",plan=\"{}\",mode=\"{}\"",
                label(&e.id),
                label(&e.plan_name),
                mode_str(e.state.mode)
            )
        };
        x.family(
            "roundtrip_awaiting_approval_seconds",
            "gauge",
            "How long each execution now awaiting approval has waited.",
        );
        for e in all.iter().filter(|e| e.state.phase == Phase::AwaitingApproval) {
            x.sample(&format!("{{{}}}", execution(e)), secs(now - e.state.requested_at));
        }
        let live: Vec<_> = all.iter().filter(|e| !e.state.phase.is_terminal()).collect();
        x.family("roundtrip_execution_progress_percent", "gauge", "Progress of each live execution.");
        for e in &live {
            x.sample(
                &format!("{{{}}}", execution(e)),
                domain::execution::status(&e.state, e.rto_target_minutes, now).progress_percent,
            );
        }
        let ended: Vec<_> = all.iter().filter(|e| e.state.phase.is_terminal()).collect();
        let recent: Vec<_> = ended[ended.len().saturating_sub(RTO_EXECUTIONS)..]
            .iter()
            .map(|e| (execution(e), domain::execution::status(&e.state, e.rto_target_minutes, now)))
            .collect();
        x.family(
            "roundtrip_execution_rto_seconds",
            "gauge",
            "Measured RTO of recent ended executions (start to last verification).",
        );
        for (l, st) in &recent {
            if let Some(rto) = st.rto_ms {
                x.sample(&format!("{{{l}}}"), secs(rto));
            }
        }
        x.family("roundtrip_execution_rto_target_seconds", "gauge", "The plan's RTO target of the same executions.");
        for (l, st) in &recent {
            x.sample(&format!("{{{l}}}"), secs(st.rto_target_ms));
        }
        x.family(
            "roundtrip_wave_rto_seconds",
            "gauge",
            "Measured RTO per wave (execution start to the wave's last verification).",
        );
        for (l, st) in &recent {
            for (i, w) in st.waves.iter().enumerate() {
                if let Some(rto) = w.rto_ms {
                    x.sample(&format!("{{{l},wave_index=\"{i}\",wave=\"{}\"}}", label(&w.name)), secs(rto));
                }
            }
        }
        let verdicts = self.verdicts().await?;
        let group = |v: &domain::readiness::VerdictSummary| {
            format!("protection_group_id=\"{}\",group=\"{}\"", label(v.protection_group_id.as_str()), label(&v.name))
        };
        x.family(
            "roundtrip_readiness_verdict",
            "gauge",
            "The last readiness verdict of each protection group (1 for its verdict).",
        );
        for v in &verdicts {
            for verdict in ["ready", "ready_with_warnings", "blocked"] {
                x.sample(&format!("{{{},verdict=\"{verdict}\"}}", group(v)), u8::from(v.verdict.as_str() == verdict));
            }
        }
        x.family("roundtrip_readiness_score", "gauge", "The last readiness score of each protection group (0-100).");
        for v in &verdicts {
            x.sample(&format!("{{{}}}", group(v)), v.score);
        }
        self.metrics.render_counters(&mut x);
        if let Some(t) = self.cloud.transport_attempts() {
            x.family(
                "roundtrip_cloud_sdk_attempts_total",
                "counter",
                "HTTP attempts the AWS SDK made, its own retries included.",
            );
            x.sample("", t.attempts);
            x.family(
                "roundtrip_cloud_sdk_retries_total",
                "counter",
                "Attempts the AWS SDK retried on its own (throttling and 5xx) before answering the engine.",
            );
            x.sample("", t.attempts.saturating_sub(t.calls));
            x.family(
                "roundtrip_cloud_sdk_throttled_total",
                "counter",
                "AWS SDK attempts answered with throttling (HTTP 429, or EC2's RequestLimitExceeded 503).",
            );
            x.sample("", t.throttled);
        }
        x.family("roundtrip_webhook_queue_depth", "gauge", "Notices waiting for delivery in this process.");
        x.sample("", self.notifier.queued());
        Ok(x.finish())
    }
}

/// A cloud that counts every call it passes on, and paces DRS calls to the rate the cloud states.
pub struct Metered {
    inner: Arc<dyn Cloud>,
    metrics: Arc<Metrics>,
    drs_pace: Option<crate::pace::TokenBucket>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Cloud>, metrics: Arc<Metrics>) -> Self {
        // A little under the stated rate, so rounding never lands a call on an empty bucket.
        let drs_pace =
            inner.drs_pace().map(|(rate, burst)| crate::pace::TokenBucket::new(rate * 0.98, burst.max(2) - 1));
        Self { inner, metrics, drs_pace }
    }

    async fn m<T>(
        &self,
        service: &'static str,
        operation: &'static str,
        f: impl std::future::Future<Output = Result<T, CloudError>>,
    ) -> Result<T, CloudError> {
        if let (Some(b), "drs") = (&self.drs_pace, service) {
            b.take().await;
        }
        let started = std::time::Instant::now();
        let r = f.await;
        self.metrics.cloud_call(service, operation, &r, started.elapsed());
        r
    }
}

#[async_trait]
impl Cloud for Metered {
    fn info(&self) -> CloudInfo {
        self.inner.info()
    }

    async fn list_account_regions(&self) -> Result<Vec<KnownAccountRegion>, CloudError> {
        self.inner.list_account_regions().await
    }

    fn configured_accounts(&self) -> Vec<domain::estate::CloudAccount> {
        self.inner.configured_accounts()
    }

    fn transport_attempts(&self) -> Option<TransportAttempts> {
        self.inner.transport_attempts()
    }

    fn set_registered_accounts(&self, accounts: Vec<RegisteredAccount>) -> Result<(), CloudError> {
        self.inner.set_registered_accounts(accounts)
    }

    async fn describe_instances(&self, at: &AccountRegion) -> Result<Vec<Ec2Instance>, CloudError> {
        self.m("ec2", "DescribeInstances", self.inner.describe_instances(at)).await
    }

    async fn describe_subnets(&self, at: &AccountRegion) -> Result<Vec<Subnet>, CloudError> {
        self.m("ec2", "DescribeSubnets", self.inner.describe_subnets(at)).await
    }

    async fn describe_source_servers(&self, at: &AccountRegion) -> Result<Vec<SourceServer>, CloudError> {
        self.m("drs", "DescribeSourceServers", self.inner.describe_source_servers(at)).await
    }

    async fn describe_instances_by_id(
        &self,
        at: &AccountRegion,
        ids: &[InstanceId],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        self.m("ec2", "DescribeInstances", self.inner.describe_instances_by_id(at, ids)).await
    }

    async fn describe_source_servers_by_id(
        &self,
        at: &AccountRegion,
        ids: &[SourceServerId],
    ) -> Result<Vec<SourceServer>, CloudError> {
        self.m("drs", "DescribeSourceServers", self.inner.describe_source_servers_by_id(at, ids)).await
    }

    async fn get_launch_configuration(
        &self,
        at: &AccountRegion,
        source: &SourceServerId,
    ) -> Result<LaunchConfiguration, CloudError> {
        self.m("drs", "GetLaunchConfiguration", self.inner.get_launch_configuration(at, source)).await
    }

    async fn update_launch_configuration(
        &self,
        at: &AccountRegion,
        update: &LaunchConfigurationUpdate,
    ) -> Result<LaunchConfiguration, CloudError> {
        self.m("drs", "UpdateLaunchConfiguration", self.inner.update_launch_configuration(at, update)).await
    }

    async fn servers_in_active_jobs(&self, at: &AccountRegion) -> Result<Vec<SourceServerId>, CloudError> {
        self.m("drs", "DescribeJobs", self.inner.servers_in_active_jobs(at)).await
    }

    async fn quotas(&self, at: &AccountRegion) -> Result<Quotas, CloudError> {
        self.inner.quotas(at).await
    }

    async fn start_recovery(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
        is_drill: bool,
    ) -> Result<DrsJob, CloudError> {
        self.m("drs", "StartRecovery", self.inner.start_recovery(at, servers, is_drill)).await
    }

    async fn describe_jobs(&self, at: &AccountRegion, job_ids: &[String]) -> Result<Vec<DrsJob>, CloudError> {
        self.m("drs", "DescribeJobs", self.inner.describe_jobs(at, job_ids)).await
    }

    async fn describe_job_log_items(&self, at: &AccountRegion, job_id: &str) -> Result<Vec<JobLogItem>, CloudError> {
        self.m("drs", "DescribeJobLogItems", self.inner.describe_job_log_items(at, job_id)).await
    }

    async fn describe_recovery_instances(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<RecoveryInstance>, CloudError> {
        self.m("drs", "DescribeRecoveryInstances", self.inner.describe_recovery_instances(at, servers)).await
    }

    async fn stop_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "StopInstances", self.inner.stop_instances(at, instances)).await
    }

    async fn disconnect_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        self.m("drs", "DisconnectRecoveryInstance", self.inner.disconnect_recovery_instance(at, id)).await
    }

    async fn delete_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        self.m("drs", "DeleteRecoveryInstance", self.inner.delete_recovery_instance(at, id)).await
    }

    async fn describe_available_volumes(&self, at: &AccountRegion) -> Result<Vec<AvailableVolume>, CloudError> {
        self.m("ec2", "DescribeVolumes", self.inner.describe_available_volumes(at)).await
    }

    async fn reverse_replication(&self, at: &AccountRegion, id: &InstanceId) -> Result<SourceServerId, CloudError> {
        self.m("drs", "ReverseReplication", self.inner.reverse_replication(at, id)).await
    }

    async fn create_tags(&self, at: &AccountRegion, id: &InstanceId, key: &str, value: &str) -> Result<(), CloudError> {
        self.m("ec2", "CreateTags", self.inner.create_tags(at, id, key, value)).await
    }

    async fn start_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "StartInstances", self.inner.start_instances(at, instances)).await
    }

    async fn describe_security_groups(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::SecurityGroup>, CloudError> {
        self.m("ec2", "DescribeSecurityGroups", self.inner.describe_security_groups(at)).await
    }

    async fn describe_instance_profiles(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::InstanceProfile>, CloudError> {
        self.m("iam", "ListInstanceProfiles", self.inner.describe_instance_profiles(at)).await
    }

    async fn drs_initialized(&self, at: &AccountRegion) -> Result<bool, CloudError> {
        self.m("drs", "DescribeReplicationConfigurationTemplates", self.inner.drs_initialized(at)).await
    }

    async fn delete_volume(&self, at: &AccountRegion, volume_id: &str) -> Result<(), CloudError> {
        self.m("ec2", "DeleteVolume", self.inner.delete_volume(at, volume_id)).await
    }

    async fn terminate_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "TerminateInstances", self.inner.terminate_instances(at, instances)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_the_text_format() {
        assert_eq!(label("a\"b\\c\nd\re"), "a\\\"b\\\\c\\nde");
        assert_eq!(label(&"x".repeat(500)).len(), 128);
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::default();
        for v in [0.002, 0.02, 3.0, 9.0] {
            h.observe(&HTTP_BUCKETS, v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "route=\"/a\"", &HTTP_BUCKETS);
        assert!(out.contains("x_bucket{route=\"/a\",le=\"0.0025\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\",le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\",le=\"5\"} 3\n"), "{out}");
        assert!(
            out.contains("x_bucket{route=\"/a\",le=\"+Inf\"} 4\nx_sum{route=\"/a\"} 12.022\nx_count{route=\"/a\"} 4\n"),
            "{out}"
        );
    }
}
