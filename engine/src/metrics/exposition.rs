//! The Prometheus text exposition of what this process counted and what the store holds (executions,
//! readiness, replication lag), built on request.

use super::{Histogram, LAG_BUCKETS, RTO_EXECUTIONS, label};
use crate::error::ServiceError;
use crate::services::Services;
use domain::execution::{Mode, Phase, ServerState};
use std::collections::BTreeMap;
use std::fmt::Write;

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

pub(super) fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Drill => "drill",
        Mode::Recovery => "recovery",
        Mode::Failback => "failback",
    }
}

pub(super) fn phase_str(p: Phase) -> String {
    serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[allow(clippy::cast_precision_loss)]
pub(super) fn secs(ms: i64) -> f64 {
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
