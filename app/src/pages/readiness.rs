//! The readiness panel of a group: verdict and score, every failing check with its remediation, the
//! group-level checks, and the history of verdict changes.

use crate::api::{ConsoleError, readiness};
use crate::components::{Badge, ErrorBox, Loading, severity_tone, verdict_tone, when};
use domain::matching::Severity;
use domain::readiness::{Check, ReadinessView};
use leptos::prelude::*;

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
    }
}

/// A failing check with the servers that fail it.
struct Failing {
    check: Check,
    servers: Vec<String>,
}

fn failing(v: &ReadinessView) -> Vec<Failing> {
    let mut out: Vec<Failing> = Vec::new();
    for c in v.readiness.group_checks.iter().filter(|c| !c.passed) {
        out.push(Failing { check: c.clone(), servers: Vec::new() });
    }
    for p in &v.readiness.pairs {
        for c in p.checks.iter().filter(|c| !c.passed) {
            match out.iter_mut().find(|f| f.check.id == c.id) {
                Some(f) => f.servers.push(p.source_name.clone()),
                None => out.push(Failing { check: c.clone(), servers: vec![p.source_name.clone()] }),
            }
        }
    }
    out.sort_by_key(|f| (f.check.severity, std::cmp::Reverse(f.servers.len())));
    out
}

/// The panel.
#[component]
pub fn ReadinessPanel(group_id: String) -> impl IntoView {
    let id = group_id.clone();
    let latest = Resource::new(move || id.clone(), |id| readiness(id, false));
    let fresh = RwSignal::new(None::<Result<ReadinessView, ConsoleError>>);
    let evaluate = Action::new(move |_: &()| {
        let id = group_id.clone();
        async move { fresh.set(Some(readiness(id, true).await)) }
    });
    view! {
        <section class="panel" aria-labelledby="readiness-h" data-testid="readiness">
            <div class="page-head">
                <h2 id="readiness-h">"Readiness"</h2>
                <button type="button" class="btn btn-small" disabled=move || evaluate.pending().get()
                    on:click=move |_| { evaluate.dispatch(()); }>
                    {move || if evaluate.pending().get() { "Evaluating…" } else { "Evaluate now" }}
                </button>
            </div>
            <Transition fallback=|| view! { <Loading what="readiness"/> }>
                {move || fresh.get().or_else(|| latest.get()).map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => view! { <ReadinessBody v=v/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ReadinessBody(v: ReadinessView) -> impl IntoView {
    let r = &v.readiness;
    let (tone, label) = verdict_tone(r.verdict);
    let since = v.history.first().map_or(r.evaluated_at, |h| h.since);
    let fails = failing(&v);
    view! {
        <p class="verdict" data-verdict=r.verdict.as_str()>
            <Badge status=tone label=label/>
            {format!(
                " score {} · {} since {} · last evaluated {} · {} ready, {} with warnings, {} blocked pairs",
                r.score, label, when(since), when(r.evaluated_at), r.ready_pairs, r.warning_pairs, r.blocked_pairs
            )}
        </p>
        {if fails.is_empty() {
            view! { <p class="muted">"Every check passes."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="table">
                        <thead><tr>
                            <th scope="col">"Check"</th><th scope="col">"Severity"</th><th scope="col" class="num">"Servers"</th>
                            <th scope="col">"Expected / actual (first)"</th><th scope="col">"Remediation"</th>
                        </tr></thead>
                        <tbody>
                            {fails.into_iter().map(|f| {
                                let n = if f.servers.is_empty() { "group".to_owned() } else { f.servers.len().to_string() };
                                let who = f.servers.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                                view! {
                                    <tr data-check=f.check.id.clone()>
                                        <td class="mono">{f.check.id.clone()}</td>
                                        <td><Badge status=severity_tone(f.check.severity) label=severity(f.check.severity)/></td>
                                        <td class="num" title=who>{n}</td>
                                        <td class="small">{format!("expected {}; actual {}", f.check.expected, f.check.actual)}</td>
                                        <td class="small">{f.check.remediation.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        <h3 class="card-sub">"History"</h3>
        <ul class="history">
            {v.history.iter().map(|h| {
                let (tone, label) = verdict_tone(h.verdict);
                let because = h.because.iter().map(|(id, n)| format!("{id} ×{n}")).collect::<Vec<_>>().join(", ");
                view! {
                    <li>
                        <Badge status=tone label=label/>
                        {format!(" since {}{}", when(h.since), if because.is_empty() { String::new() } else { format!(" because {because}") })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}
