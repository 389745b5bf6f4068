//! Metrics for Prometheus: counters kept in this process (cloud calls, retries, HTTP latency, webhook
//! deliveries, replication lag seen by the last readiness evaluation) and gauges computed from the store at
//! each scrape (executions, servers, RTO, readiness), so every process sharing a store reports the same
//! execution figures.

mod exposition;
mod metered;

use crate::cloud::CloudError;
pub use exposition::Exposition;
pub use metered::Metered;
use std::collections::BTreeMap;
use std::fmt::Write;
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
