//! The failover wizard: plan → its groups' readiness (with group-level findings) → drill, planned or
//! disaster failover → start, or request approval.

use crate::api::{ConsoleError, list_groups, list_plans, start_execution, verdicts};
use crate::components::{Badge, ErrorBox, Loading, severity_tone, verdict_badge};
use domain::execution::{FailoverKind, Mode, StartExecution};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// Plan → readiness → drill or failover → start or request approval.
#[component]
pub(super) fn Wizard() -> impl IntoView {
    let plans = Resource::new(|| (), |_| list_plans());
    let verdicts = Resource::new(|| (), |_| verdicts());
    let groups = Resource::new(|| (), |_| list_groups());
    let plan = RwSignal::new(String::new());
    let kind = RwSignal::new("drill".to_owned());
    let ack = RwSignal::new(false);
    let error = RwSignal::new(None::<ConsoleError>);
    let navigate = use_navigate();
    let start = Action::new(move |req: &StartExecution| {
        let req = req.clone();
        let navigate = navigate.clone();
        async move {
            match start_execution(req).await {
                Ok(id) => navigate(&format!("/executions/{id}"), Default::default()),
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let (mode, kind) = match kind.get_untracked().as_str() {
            "planned" => (Mode::Recovery, FailoverKind::Planned),
            "disaster" => (Mode::Recovery, FailoverKind::Disaster),
            _ => (Mode::Drill, FailoverKind::Disaster),
        };
        start.dispatch(StartExecution {
            plan_id: plan.get_untracked(),
            mode,
            kind,
            acknowledge_warnings: ack.get_untracked(),
        });
    };
    let busy = start.pending();
    let option = move |value: &'static str, title: &'static str, help: &'static str| {
        view! {
            <label class="choice">
                <input type="radio" name="kind" value=value prop:checked=move || kind.get() == value on:change=move |_| kind.set(value.to_owned())/>
                <span><strong>{title}</strong><br/><span class="muted">{help}</span></span>
            </label>
        }
    };
    view! {
        <form class="form card wizard" on:submit=on_submit data-testid="failover-wizard">
            <h2>"Start a drill or a failover"</h2>
            <div class="step">
                <h3>"1. Plan"</h3>
                <Transition fallback=|| view! { <Loading what="plans"/> }>
                    {move || plans.get().map(|r| match r {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No recovery plan yet: "<a href="/recovery-plans">"create one"</a>"."</p> }.into_any(),
                        Ok(list) => view! {
                            <label class="field"><span>"Recovery plan"</span>
                                <select required data-testid="wizard-plan" prop:value=move || plan.get() on:change=move |ev| plan.set(event_target_value(&ev))>
                                    <option value="">"Choose a plan…"</option>
                                    {list.into_iter().map(|p| {
                                        let servers: usize = p.waves.iter().map(|w| w.pair_ids.len()).sum();
                                        view! { <option value=p.id.clone()>{format!("{} — {} waves, {} servers", p.name, p.waves.len(), servers)}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                        }.into_any(),
                    })}
                </Transition>
            </div>
            <div class="step">
                <h3>"2. Readiness"</h3>
                <p class="muted">"Readiness is evaluated again when the execution starts: a critical finding blocks; warnings block unless you acknowledge them."</p>
                <Transition fallback=|| ()>
                    {move || {
                        let chosen = plan.get();
                        let names = groups.get().and_then(Result::ok).unwrap_or_default();
                        let groups = plans.get().and_then(Result::ok).and_then(|ps| ps.into_iter().find(|p| p.id == chosen)).map(|p| p.protection_group_ids).unwrap_or_default();
                        let known = verdicts.get().and_then(Result::ok).unwrap_or_default();
                        if groups.is_empty() {
                            return view! { <p class="muted">"Choose a plan to see its protection groups' readiness."</p> }.into_any();
                        }
                        view! {
                            <ul class="status-list" data-testid="wizard-readiness">
                                {groups.into_iter().map(|g| {
                                    let v = known.iter().find(|v| v.protection_group_id == g).cloned();
                                    let name = names.iter().find(|s| s.group.id == g).map_or_else(|| g.to_string(), |s| s.group.name.clone());
                                    let findings = v.as_ref().map(|v| v.group_findings.clone()).unwrap_or_default();
                                    let because = v.as_ref().map(|v| v.because.iter().map(|(id, n)| format!("{id} ×{n}")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                                    view! {
                                        <li class="status-item" data-group=g.to_string()>
                                            <span class="status-name">{name}</span>
                                            {verdict_badge(v.as_ref().map(|v| v.verdict))}
                                            <a href=format!("/protection-groups/{g}/configuration")>"details"</a>
                                            {(!because.is_empty()).then(|| view! { <span class="muted small">{format!(" failing: {because}")}</span> })}
                                            {(!findings.is_empty()).then(|| view! {
                                                <ul class="findings" data-testid="wizard-group-findings">
                                                    {findings.into_iter().map(|c| view! {
                                                        <li data-check=c.id.clone()>
                                                            <Badge status=severity_tone(c.severity) label=c.id.clone()/>
                                                            {format!(" {}: {}", c.actual, c.remediation)}
                                                        </li>
                                                    }).collect_view()}
                                                </ul>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </Transition>
                <label class="check"><input type="checkbox" data-testid="wizard-ack" prop:checked=move || ack.get() on:change=move |ev| ack.set(event_target_checked(&ev))/>" I acknowledge the readiness warnings"</label>
            </div>
            <div class="step">
                <h3>"3. Drill or failover"</h3>
                {option("drill", "Drill", "Recovers into the standbys with isDrill; no approval; afterwards the standbys are stopped again and released by DRS. Production is not touched.")}
                {option("planned", "Planned failover", "The primary region is healthy: stops each wave's source instances, waits until replication has shipped the last data, then launches. No data loss. Needs a second person's approval.")}
                {option("disaster", "Disaster failover", "The primary region may be down: never touches the source side and records the recovery point each server launched from. Needs a second person's approval.")}
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            <div class="form-actions">
                <button class="btn btn-primary" type="submit" disabled=move || busy.get() || plan.get().is_empty() data-testid="wizard-start">
                    {move || if kind.get() == "drill" { "4. Start the drill" } else { "4. Request approval" }}
                </button>
            </div>
        </form>
    }
}
