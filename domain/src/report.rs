//! The evidence report of an execution (drill, recovery or failback): what auditors ask for, built from the
//! stored execution and its audit entries, as JSON ([`EvidenceReport`]) and as one self-contained printable
//! HTML page ([`to_html`]). Every estate value is escaped.

use crate::audit::{AuditEntry, Outcome};
use crate::estate::AccountRegion;
use crate::execution::phase_word;
use crate::execution::{
    ExecutionRecord, FailoverKind, LogLine, Mode, Phase, ProofRow, ProofVerdict, ReadinessAtStart, ServerState,
    WaveState, status,
};
use crate::ids::{InstanceId, SourceServerId};
use crate::plan::OnFailure;
use crate::time::{format_duration_ms, format_iso8601};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The version of the report's JSON shape.
pub const REPORT_FORMAT: u32 = 1;

/// A person's decision on the execution, from the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvidence {
    /// e.g. `execution.approve`.
    pub action: String,
    pub by: String,
    /// Wall-clock Unix ms.
    pub at: i64,
    pub comment: String,
}

/// The RTO against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtoEvidence {
    pub target_ms: i64,
    /// From the start to the last server's verification, when every server was verified.
    pub achieved_ms: Option<i64>,
    /// From the start to the last verification so far, when some servers failed.
    pub last_verified_ms: Option<i64>,
    /// Whether every server was verified within the target.
    pub met: bool,
}

/// One server's timeline and identity verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEvidence {
    pub name: String,
    pub source_server_id: SourceServerId,
    /// The standby it launched into (for a failback: the original instance).
    pub target_instance_id: InstanceId,
    pub expected_ip: String,
    pub state: ServerState,
    pub job_id: Option<String>,
    pub started_at: Option<i64>,
    pub launched_at: Option<i64>,
    pub verified_at: Option<i64>,
    /// `verified` (its instance, its IP, running), `failed`, or `not reached`.
    pub identity: String,
    /// The point in time of the data it launched from.
    pub recovery_point: Option<i64>,
    pub error: Option<String>,
}

/// One wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveEvidence {
    pub name: String,
    pub state: WaveState,
    pub on_failure: OnFailure,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub rto_ms: Option<i64>,
    pub servers: Vec<ServerEvidence>,
}

/// An error and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvidence {
    pub at: i64,
    /// A server id, an AWS action, or the execution.
    pub subject: String,
    pub message: String,
    pub handling: String,
}

/// The audit entries that cover the execution, and where they sit in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEvidence {
    pub entries: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of the first and last entry: with `GET /api/v1/audit/verify`, they show these entries are
    /// part of an unbroken chain.
    pub first_hash: Option<String>,
    pub last_hash: Option<String>,
    /// Whether the whole chain verified when the report was made.
    pub chain_intact: bool,
    /// AWS mutations made for the execution (`aws.…` actions).
    pub aws_mutations: usize,
    pub aws_mutations_failed: usize,
}

/// The evidence report of one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceReport {
    pub format: u32,
    /// Wall-clock Unix ms.
    pub generated_at: i64,
    pub execution_id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub mode: Mode,
    pub kind: FailoverKind,
    pub outcome: Phase,
    pub dr: AccountRegion,
    pub requested_by: String,
    pub requested_at: i64,
    pub approved_by: Option<String>,
    /// Approvals, rejections, gate releases and cancellations, in order.
    pub decisions: Vec<DecisionEvidence>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub rto: RtoEvidence,
    pub acknowledged_warnings: bool,
    pub readiness_at_start: Option<ReadinessAtStart>,
    pub servers: usize,
    pub verified: usize,
    pub failed: usize,
    pub waves: Vec<WaveEvidence>,
    pub errors: Vec<ErrorEvidence>,
    /// For a failback: the recovery it reversed, and each server's round trip.
    pub failback_of: Option<String>,
    pub round_trip_proof: Option<Vec<ProofRow>>,
    /// The execution's event log (estate time), most recent last.
    pub timeline: Vec<LogLine>,
    pub audit: AuditEvidence,
}

fn handling(on_failure: OnFailure, mode: Mode) -> String {
    let end = match mode {
        Mode::Drill => "; the drill returned every standby to standby",
        _ => "",
    };
    match on_failure {
        OnFailure::Stop => format!("the wave failed and the execution stopped: later waves did not run{end}"),
        OnFailure::Continue => format!("the wave failed; by its plan the execution went on with the next wave{end}"),
    }
}

/// Builds the report of `rec` from its audit entries (any order); `proof` for a failback; `chain_intact`
/// from verifying the whole chain.
pub fn build(
    rec: &ExecutionRecord,
    audit: &[AuditEntry],
    proof: Option<Vec<ProofRow>>,
    chain_intact: bool,
    generated_at: i64,
) -> EvidenceReport {
    let s = &rec.state;
    let st = status(s, rec.rto_target_minutes, s.ended_at.unwrap_or(generated_at));
    let mut entries: Vec<&AuditEntry> = audit.iter().filter(|e| e.target == rec.id).collect();
    entries.sort_by_key(|e| e.seq);
    let decisions = entries
        .iter()
        .filter(|e| {
            matches!(
                e.action.as_str(),
                "execution.approve" | "execution.reject" | "execution.resume" | "execution.cancel" | "execution.re_arm"
            )
        })
        .map(|e| DecisionEvidence {
            action: e.action.clone(),
            by: e.actor.clone(),
            at: e.at,
            comment: e.details.get("comment").and_then(|c| c.as_str()).unwrap_or_default().to_owned(),
        })
        .collect();
    let mut errors = Vec::new();
    let waves: Vec<WaveEvidence> = s
        .waves
        .iter()
        .zip(&st.waves)
        .map(|(w, ws)| WaveEvidence {
            name: w.name.clone(),
            state: w.state,
            on_failure: w.on_failure,
            started_at: w.started_at,
            ended_at: w.ended_at,
            rto_ms: ws.rto_ms,
            servers: w
                .servers
                .iter()
                .map(|r| {
                    if r.state == ServerState::Failed {
                        errors.push(ErrorEvidence {
                            at: r.verified_at.or(r.launched_at).or(w.ended_at).unwrap_or(s.requested_at),
                            subject: format!("{} ({})", r.name, r.source_server_id),
                            message: r.error.clone().unwrap_or_else(|| "failed".into()),
                            handling: handling(w.on_failure, s.mode),
                        });
                    }
                    ServerEvidence {
                        name: r.name.clone(),
                        source_server_id: r.source_server_id.clone(),
                        target_instance_id: r.standby_instance_id.clone(),
                        expected_ip: r.expected_ip.to_string(),
                        state: r.state,
                        job_id: r.job_id.clone(),
                        started_at: r.started_at,
                        launched_at: r.launched_at,
                        verified_at: r.verified_at,
                        identity: match r.state {
                            ServerState::Verified => "verified".into(),
                            ServerState::Failed if r.launched_at.is_some() => "failed".into(),
                            _ => "not reached".into(),
                        },
                        recovery_point: r.recovery_point,
                        error: r.error.clone(),
                    }
                })
                .collect(),
        })
        .collect();
    for l in rec.log.iter().filter(|l| l.message.contains("will retry")) {
        errors.push(ErrorEvidence {
            at: l.at,
            subject: "DRS".into(),
            message: l.message.clone(),
            handling: "the runner reconciled the claim with DRS's jobs and tried again; nothing started twice".into(),
        });
    }
    for e in entries.iter().filter(|e| e.action.starts_with("aws.") && e.outcome == Outcome::Failed) {
        errors.push(ErrorEvidence {
            at: e.at,
            subject: e.action.clone(),
            message: e.details.get("error").and_then(|v| v.as_str()).unwrap_or("refused").to_owned(),
            handling: "recorded in the audit trail; retryable refusals were retried by the runner".into(),
        });
    }
    errors.sort_by_key(|e| e.at);
    let last_verified_ms = s
        .started_at
        .and_then(|t| s.waves.iter().flat_map(|w| w.servers.iter()).filter_map(|r| r.verified_at).max().map(|v| v - t));
    let (servers, verified, failed) = tally(s);
    let aws: Vec<&&AuditEntry> = entries.iter().filter(|e| e.action.starts_with("aws.")).collect();
    EvidenceReport {
        format: REPORT_FORMAT,
        generated_at,
        execution_id: rec.id.clone(),
        plan_id: rec.plan_id.clone(),
        plan_name: rec.plan_name.clone(),
        mode: s.mode,
        kind: s.kind,
        outcome: s.phase,
        dr: rec.dr.clone(),
        requested_by: s.requested_by.clone(),
        requested_at: s.requested_at,
        approved_by: s.approved_by.clone(),
        decisions,
        started_at: s.started_at,
        ended_at: s.ended_at,
        rto: RtoEvidence { target_ms: st.rto_target_ms, achieved_ms: st.rto_ms, last_verified_ms, met: met(&st) },
        acknowledged_warnings: rec.acknowledge_warnings,
        readiness_at_start: rec.readiness_at_start.clone(),
        servers,
        verified,
        failed,
        waves,
        errors,
        failback_of: rec.failback.as_ref().map(|f| f.execution_id.clone()),
        round_trip_proof: proof,
        timeline: rec.log.clone(),
        audit: AuditEvidence {
            entries: entries.len(),
            first_seq: entries.first().map(|e| e.seq),
            last_seq: entries.last().map(|e| e.seq),
            first_hash: entries.first().map(|e| e.hash.clone()),
            last_hash: entries.last().map(|e| e.hash.clone()),
            chain_intact,
            aws_mutations: aws.len(),
            aws_mutations_failed: aws.iter().filter(|e| e.outcome == Outcome::Failed).count(),
        },
    }
}

/// Servers, verified servers and failed servers of an execution.
fn tally(s: &crate::execution::ExecutionState) -> (usize, usize, usize) {
    let all = || s.waves.iter().flat_map(|w| w.servers.iter());
    (
        all().count(),
        all().filter(|r| r.state == ServerState::Verified).count(),
        all().filter(|r| r.state == ServerState::Failed).count(),
    )
}

/// Whether every server was verified within the RTO target.
fn met(st: &crate::execution::ExecutionStatus) -> bool {
    st.rto_ms.is_some_and(|r| r <= st.rto_target_ms)
}

/// One line of the drill history: an ended execution and its RTO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub execution_id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub mode: Mode,
    pub kind: FailoverKind,
    pub outcome: Phase,
    pub requested_at: i64,
    pub ended_at: Option<i64>,
    pub rto_ms: Option<i64>,
    pub rto_target_ms: i64,
    pub met_target: bool,
    pub servers: usize,
    pub verified: usize,
    pub failed: usize,
}

impl ReportSummary {
    pub fn of(rec: &ExecutionRecord) -> Self {
        let s = &rec.state;
        let st = status(s, rec.rto_target_minutes, s.ended_at.unwrap_or(s.requested_at));
        let (servers, verified, failed) = tally(s);
        Self {
            execution_id: rec.id.clone(),
            plan_id: rec.plan_id.clone(),
            plan_name: rec.plan_name.clone(),
            mode: s.mode,
            kind: s.kind,
            outcome: s.phase,
            requested_at: s.requested_at,
            ended_at: s.ended_at,
            rto_ms: st.rto_ms,
            rto_target_ms: st.rto_target_ms,
            met_target: met(&st),
            servers,
            verified,
            failed,
        }
    }
}

/// Text safe inside HTML elements and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn t(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".into(), format_iso8601)
}

fn d(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".into(), format_duration_ms)
}

fn mode_title(r: &EvidenceReport) -> &'static str {
    match (r.mode, r.kind) {
        (Mode::Drill, _) => "Drill",
        (Mode::Recovery, FailoverKind::Planned) => "Planned failover",
        (Mode::Recovery, FailoverKind::Disaster) => "Disaster failover",
        (Mode::Failback, _) => "Failback",
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1b1f24;margin:2rem auto;max-width:1100px;padding:0 1rem}\
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:1.8rem 0 .5rem;border-bottom:1px solid #d0d7de}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.ok{color:#116329;font-weight:600}.bad{color:#a40e26;font-weight:600}.muted{color:#57606a}\
.box{border:2px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}.box.ok{border-color:#116329}.box.bad{border-color:#a40e26}\
code{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The report as one printable HTML page: no scripts, no external resources.
pub fn to_html(r: &EvidenceReport) -> String {
    let e = escape_html;
    let mut h = String::with_capacity(16 * 1024);
    let title = format!("{} of {} — evidence report", mode_title(r), r.plan_name);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        e(&title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"muted\">Execution <code>{}</code> · DR account {} in {} · generated {} by Roundtrip</p>",
        e(&title),
        e(&r.execution_id),
        e(r.dr.account_id.as_str()),
        e(r.dr.region.as_str()),
        format_iso8601(r.generated_at)
    );
    let (cls, verdict) = if r.rto.met {
        ("ok", format!("RTO met: {} against a target of {}", d(r.rto.achieved_ms), d(Some(r.rto.target_ms))))
    } else if r.rto.achieved_ms.is_some() {
        ("bad", format!("RTO missed: {} against a target of {}", d(r.rto.achieved_ms), d(Some(r.rto.target_ms))))
    } else {
        (
            "bad",
            format!(
                "RTO not achieved: {} of {} servers verified (last verification after {}); target {}",
                r.verified,
                r.servers,
                d(r.rto.last_verified_ms),
                d(Some(r.rto.target_ms))
            ),
        )
    };
    let _ = write!(
        h,
        "<div class=\"box {cls}\"><div class=\"{cls}\">Outcome: {} · {}</div><div>{} servers: {} verified, {} failed</div></div>",
        phase_word(r.outcome),
        e(&verdict),
        r.servers,
        r.verified,
        r.failed
    );
    h.push_str("<h2>Plan and people</h2><table>");
    let row = |h: &mut String, k: &str, v: String| {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(&mut h, "Plan", format!("{} (<code>{}</code>)", e(&r.plan_name), e(&r.plan_id)));
    row(&mut h, "Requested", format!("by {} at {}", e(&r.requested_by), format_iso8601(r.requested_at)));
    row(&mut h, "Approved by", r.approved_by.as_deref().map_or_else(|| "— (drills need no approval)".into(), e));
    row(&mut h, "Started", t(r.started_at));
    row(&mut h, "Ended", t(r.ended_at));
    if let Some(f) = &r.failback_of {
        row(&mut h, "Fails back", format!("recovery <code>{}</code>", e(f)));
    }
    h.push_str("</table>");
    if !r.decisions.is_empty() {
        h.push_str("<table><tr><th>Decision</th><th>By</th><th>At</th><th>Comment</th></tr>");
        for dcs in &r.decisions {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(dcs.action.trim_start_matches("execution.")),
                e(&dcs.by),
                format_iso8601(dcs.at),
                e(&dcs.comment)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Readiness at start</h2>");
    match &r.readiness_at_start {
        None => h.push_str("<p class=\"muted\">Not evaluated for this execution.</p>"),
        Some(ra) => {
            let _ = write!(
                h,
                "<p>Evaluated {}: {} pairs — {} ready, {} with warnings, {} blocked. Warnings acknowledged by the requester: {}.</p>",
                format_iso8601(ra.evaluated_at),
                ra.pairs,
                ra.ready,
                ra.with_warnings,
                ra.blocked,
                if r.acknowledged_warnings { "yes" } else { "no" }
            );
            if !ra.notes.is_empty() {
                h.push_str(
                    "<table><tr><th>Server</th><th>Check</th><th>Severity</th><th>Expected</th><th>Actual</th></tr>",
                );
                for n in &ra.notes {
                    let _ = write!(
                        h,
                        "<tr><td>{} <code>{}</code></td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
                        e(&n.source_name),
                        e(n.source_server_id.as_str()),
                        e(&n.check_id),
                        n.severity,
                        e(&n.expected),
                        e(&n.actual)
                    );
                }
                h.push_str("</table>");
            }
            if ra.omitted > 0 {
                let _ = write!(h, "<p class=\"muted\">{} more not listed.</p>", ra.omitted);
            }
        }
    }
    h.push_str("<h2>Waves and servers</h2>");
    for w in &r.waves {
        let _ = write!(
            h,
            "<h3>{} — {:?}</h3><p class=\"muted\">{} → {} · wave RTO {} · on failure: {:?}</p>",
            e(&w.name),
            w.state,
            t(w.started_at),
            t(w.ended_at),
            d(w.rto_ms),
            w.on_failure
        );
        h.push_str("<table><tr><th>Server</th><th>Instance · IP</th><th>Job</th><th>Started</th><th>Launched</th><th>Verified</th><th>Identity</th><th>Recovery point</th></tr>");
        for s in &w.servers {
            let identity = match s.state {
                ServerState::Verified => "<span class=\"ok\">verified</span>".to_owned(),
                ServerState::Failed => {
                    format!("<span class=\"bad\">{}</span>: {}", e(&s.identity), e(s.error.as_deref().unwrap_or("")))
                }
                _ => e(&s.identity),
            };
            let _ = write!(
                h,
                "<tr><td>{} <code>{}</code></td><td><code>{}</code> · {}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{identity}</td><td>{}</td></tr>",
                e(&s.name),
                e(s.source_server_id.as_str()),
                e(s.target_instance_id.as_str()),
                e(&s.expected_ip),
                e(s.job_id.as_deref().unwrap_or("—")),
                t(s.started_at),
                t(s.launched_at),
                t(s.verified_at),
                t(s.recovery_point)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Errors and their handling</h2>");
    if r.errors.is_empty() {
        h.push_str("<p class=\"ok\">None.</p>");
    } else {
        h.push_str("<table><tr><th>At</th><th>What</th><th>Error</th><th>Handling</th></tr>");
        for x in &r.errors {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
                format_iso8601(x.at),
                e(&x.subject),
                e(&x.message),
                e(&x.handling)
            );
        }
        h.push_str("</table>");
    }
    if let Some(proof) = &r.round_trip_proof {
        h.push_str("<h2>Round-trip proof</h2><table><tr><th>Server</th><th>Before failover</th><th>After failover</th><th>After failback</th><th>Verdict</th></tr>");
        let p = |x: Option<&crate::execution::Placement>| {
            x.map_or_else(|| "—".into(), |p| format!("<code>{}</code> · {}", e(p.instance_id.as_str()), p.private_ip))
        };
        for row in proof {
            let (cls, v) = match row.verdict {
                ProofVerdict::Identical => ("ok", "identical"),
                ProofVerdict::Mismatch => ("bad", "mismatch"),
                ProofVerdict::Incomplete => ("muted", "incomplete"),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{v}</td></tr>",
                e(&row.name),
                p(Some(&row.before_failover)),
                p(row.after_failover.as_ref()),
                p(row.after_failback.as_ref())
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Timeline</h2><table><tr><th>At (estate time)</th><th>Event</th></tr>");
    for l in &r.timeline {
        let cls = if l.failure { " class=\"bad\"" } else { "" };
        let _ = write!(h, "<tr><td>{}</td><td{cls}>{}</td></tr>", format_iso8601(l.at), e(&l.message));
    }
    h.push_str("</table>");
    let a = &r.audit;
    let _ = write!(
        h,
        "<h2>Audit trail</h2><p>{} entries cover this execution, sequence {} to {}; {} AWS mutations ({} failed). \
         Chain {} when this report was made.</p><table><tr><th>First entry hash</th><td><code>{}</code></td></tr>\
         <tr><th>Last entry hash</th><td><code>{}</code></td></tr></table>",
        a.entries,
        a.first_seq.map_or_else(|| "—".into(), |s| s.to_string()),
        a.last_seq.map_or_else(|| "—".into(), |s| s.to_string()),
        a.aws_mutations,
        a.aws_mutations_failed,
        if a.chain_intact { "<span class=\"ok\">intact</span>" } else { "<span class=\"bad\">BROKEN</span>" },
        e(a.first_hash.as_deref().unwrap_or("—")),
        e(a.last_hash.as_deref().unwrap_or("—"))
    );
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_every_special_character() {
        assert_eq!(escape_html("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
