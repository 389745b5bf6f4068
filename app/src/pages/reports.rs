//! `/reports`: the drill history — every ended drill (or recovery, or failback) with its RTO against the
//! target, a chart of the RTO trend, and each execution's evidence report as a printable page or JSON.

use crate::components::{Badge, Empty, ErrorBox, Loading, when};
use domain::execution::{Mode, Phase};
use domain::report::ReportSummary;
use leptos::prelude::*;

/// Rows the table shows (the most recent).
const ROWS: usize = 500;

fn minutes(ms: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let m = ms as f64 / 60_000.0;
    m
}

/// The RTO of each execution (oldest left) against its target: a point per execution, green when the
/// target was met, red when missed or not achieved (drawn at the top), and the target as a dashed line.
#[component]
fn Trend(reports: Vec<ReportSummary>) -> impl IntoView {
    let (w, h, pad) = (720.0_f64, 200.0_f64, 28.0_f64);
    let top =
        reports.iter().map(|r| minutes(r.rto_ms.unwrap_or(0).max(r.rto_target_ms))).fold(1.0_f64, f64::max) * 1.15;
    #[allow(clippy::cast_precision_loss)]
    let n = reports.len().max(2) as f64;
    #[allow(clippy::cast_precision_loss)]
    let x = move |i: usize| pad + (w - 2.0 * pad) * (i as f64) / (n - 1.0);
    let y = move |m: f64| h - pad - (h - 2.0 * pad) * (m / top).min(1.0);
    let line: Vec<String> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.rto_ms.map(|ms| format!("{:.1},{:.1}", x(i), y(minutes(ms)))))
        .collect();
    let target: Vec<String> =
        reports.iter().enumerate().map(|(i, r)| format!("{:.1},{:.1}", x(i), y(minutes(r.rto_target_ms)))).collect();
    let label = format!(
        "RTO of the last {} executions: {} met the target, {} did not",
        reports.len(),
        reports.iter().filter(|r| r.met_target).count(),
        reports.iter().filter(|r| !r.met_target).count()
    );
    view! {
        <figure class="card trend" data-testid="rto-trend">
            <svg viewBox=format!("0 0 {w} {h}") role="img" aria-label=label.clone() width="100%" height="200">
                <line x1=pad y1=h - pad x2=w - pad y2=h - pad stroke="#9aa4b2"/>
                <text x="4" y=pad font-size="11" fill="#57606a">{format!("{top:.0} min")}</text>
                <text x="4" y=h - pad font-size="11" fill="#57606a">"0"</text>
                <polyline points=target.join(" ") fill="none" stroke="#bf8700" stroke-dasharray="6 4"/>
                <polyline points=line.join(" ") fill="none" stroke="#0969da" stroke-width="2"/>
                {reports.iter().enumerate().map(|(i, r)| {
                    let (cy, fill) = match r.rto_ms {
                        Some(ms) => (y(minutes(ms)), if r.met_target { "#1a7f37" } else { "#cf222e" }),
                        None => (pad, "#cf222e"),
                    };
                    let tip = format!("{} {}: {}", when(r.requested_at), r.plan_name,
                        r.rto_ms.map_or_else(|| "RTO not achieved".to_owned(), |ms| format!("RTO {}", domain::time::format_duration_ms(ms))));
                    view! { <circle cx=x(i) cy=cy r="4" fill=fill><title>{tip}</title></circle> }
                }).collect_view()}
            </svg>
            <figcaption class="muted">{label}" · dashed: the plan's RTO target"</figcaption>
        </figure>
    }
}

fn outcome_badge(p: Phase) -> impl IntoView {
    let tone = match p {
        Phase::Succeeded => "ready",
        Phase::Failed => "failed",
        _ => "neutral",
    };
    view! { <Badge status=tone label=domain::execution::phase_word(p)/> }
}

/// `/reports`.
#[component]
pub fn DrillHistory() -> impl IntoView {
    let mode = RwSignal::new(Some(Mode::Drill));
    let reports = Resource::new(move || mode.get(), crate::api::report_history);
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Drill history"</h1>
                    <p class="lead">"Every ended execution with its RTO against the target. Each has an evidence report: who requested and approved, readiness at start, the per-server timeline, identity verification, errors and the audit-chain range."</p>
                </div>
                <label class="field-inline">"Show "
                    <select data-testid="history-mode" on:change=move |ev| mode.set(match event_target_value(&ev).as_str() {
                        "recovery" => Some(Mode::Recovery),
                        "failback" => Some(Mode::Failback),
                        "all" => None,
                        _ => Some(Mode::Drill),
                    })>
                        <option value="drill" selected=true>"drills"</option>
                        <option value="recovery">"recoveries"</option>
                        <option value="failback">"failbacks"</option>
                        <option value="all">"everything"</option>
                    </select>
                </label>
            </div>
            <Transition fallback=|| view! { <Loading what="the history"/> }>
                {move || reports.get().map(|r| match r {
                    Ok(r) if r.is_empty() => view! {
                        <Empty title="Nothing has ended yet">"Run a drill from Failover; its report appears here when it ends."</Empty>
                    }.into_any(),
                    Ok(mut r) => {
                        let shown = r.split_off(r.len().saturating_sub(ROWS));
                        let older = r.len();
                        view! {
                            <Trend reports=shown.clone()/>
                            {(older > 0).then(|| view! { <p class="muted">{format!("{older} older executions are not shown.")}</p> })}
                            <div class="table-wrap">
                                <table class="table" data-testid="history">
                                    <thead><tr><th>"Requested"</th><th>"Plan"</th><th>"Mode"</th><th>"Outcome"</th><th class="num">"Servers"</th><th class="num">"RTO"</th><th class="num">"Target"</th><th>"Evidence report"</th></tr></thead>
                                    <tbody>
                                        {shown.into_iter().rev().map(|s| {
                                            let base = format!("/api/v1/executions/{}/report", s.execution_id);
                                            view! {
                                                <tr data-testid="history-row">
                                                    <td class="nowrap"><a href=format!("/executions/{}", s.execution_id)>{when(s.requested_at)}</a></td>
                                                    <td>{s.plan_name.clone()}</td>
                                                    <td>{format!("{:?}", s.mode).to_lowercase()}</td>
                                                    <td>{outcome_badge(s.outcome)}</td>
                                                    <td class="num">{format!("{}/{} verified", s.verified, s.servers)}{(s.failed > 0).then(|| format!(", {} failed", s.failed))}</td>
                                                    <td class="num">
                                                        {match s.rto_ms { Some(ms) => domain::time::format_duration_ms(ms), None => "not achieved".into() }}
                                                        " "{if s.met_target { view! { <Badge status="ready" label="met"/> }.into_any() } else { view! { <Badge status="failed" label="missed"/> }.into_any() }}
                                                    </td>
                                                    <td class="num">{domain::time::format_duration_ms(s.rto_target_ms)}</td>
                                                    <td class="nowrap">
                                                        <a href=format!("{base}?format=html") target="_blank" rel="noopener" data-testid="report-html">"Printable"</a>
                                                        " · "
                                                        <a href=format!("{base}?format=json&download=true") data-testid="report-json">"JSON"</a>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
