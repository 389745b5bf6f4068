//! Failback from an ended recovery: the request with its check (who goes home, who stays on DR and why),
//! and the round-trip proof once it has run.

use crate::api::{ConsoleError, failback_preview, round_trip_proof, start_failback};
use crate::components::{Badge, ErrorBox, Loading};
use crate::pages::signin::IfAllowed;
use domain::auth::Permission;
use domain::execution::{FailbackPreview, Phase, ProofVerdict, StartFailback, StayReason};
use domain::ids::SourceServerId;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// The failback request of an ended recovery: what Roundtrip may do to the originals, which servers go and
/// which stay on DR (a server that cannot go home need not hold up the others), then a second person
/// approves.
#[component]
pub(super) fn FailbackRequest(execution_id: String) -> impl IntoView {
    let terminate = RwSignal::new(String::new());
    let stop = RwSignal::new(false);
    let tag = RwSignal::new(false);
    let ready_only = RwSignal::new(false);
    let leave = RwSignal::new(Vec::<SourceServerId>::new());
    let error = RwSignal::new(None::<ConsoleError>);
    let navigate = use_navigate();
    let request_of = move |id: &String, confirmation: Option<String>| StartFailback {
        execution_id: id.clone(),
        stop_originals: stop.get_untracked(),
        tag_originals: tag.get_untracked(),
        terminate_standbys_confirmation: confirmation,
        leave_behind: leave.get_untracked(),
        ready_only: ready_only.get_untracked(),
    };
    let request = Action::new(move |id: &String| {
        let req = request_of(id, Some(terminate.get_untracked()).filter(|t| !t.trim().is_empty()));
        let navigate = navigate.clone();
        async move {
            match start_failback(req).await {
                Ok(id) => navigate(&format!("/executions/{id}"), Default::default()),
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let busy = request.pending();
    let report = RwSignal::new(None::<FailbackPreview>);
    let check = Action::new(move |id: &String| {
        let req = request_of(id, None);
        async move {
            match failback_preview(req).await {
                Ok(p) => {
                    error.set(None);
                    report.set(Some(p));
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let check_id = execution_id.clone();
    let recheck = {
        let id = execution_id.clone();
        move || {
            if report.get_untracked().is_some() {
                check.dispatch(id.clone());
            }
        }
    };
    let toggle = {
        let recheck = recheck.clone();
        move |server: SourceServerId, left: bool| {
            leave.update(|l| {
                l.retain(|s| s != &server);
                if left {
                    l.push(server);
                }
            });
            recheck();
        }
    };
    view! {
        <div class="card" data-testid="failback-request">
            <h2>"Fail back"</h2>
            <p>"Reverses replication of each verified server's standby to the original region, waits until it is continuous, then launches back into the original instance — same instance ID, same private IP — and verifies it. Runs once a second person approves."</p>
            <label class="check"><input type="checkbox" prop:checked=move || stop.get() on:change=move |ev| stop.set(event_target_checked(&ev))/>" Roundtrip may stop the original instances that are running (DRS cannot)"</label>
            <label class="check"><input type="checkbox" prop:checked=move || tag.get() on:change=move |ev| tag.set(event_target_checked(&ev))/>" Roundtrip may tag the originals AWSDRS=AllowLaunchingIntoThisInstance"</label>
            <label class="check"><input type="checkbox" data-testid="ready-only" prop:checked=move || ready_only.get()
                on:change={ let recheck = recheck.clone(); move |ev| { ready_only.set(event_target_checked(&ev)); recheck(); } }/>
                " Fail back only the servers that are ready; leave the others on DR for a later failback"</label>
            <IfAllowed permission=Permission::Administer>
                <label class="field"><span>"Admins only: to terminate the DR standbys afterwards instead of returning them to standby, type the plan's name (they are gone for good)"</span>
                    <input maxlength="128" autocomplete="off" prop:value=move || terminate.get() on:input=move |ev| terminate.set(event_target_value(&ev))/>
                </label>
            </IfAllowed>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || report.get().map(|p| {
                let toggle = toggle.clone();
                let toggle_back = toggle.clone();
                view! {
                    {if p.problems.is_empty() {
                        view! { <div class="alert alert-success" role="status" data-testid="prerequisites">{format!("Every prerequisite passes: {} servers go home, {} stay on DR.", p.going.len(), p.staying.len())}</div> }.into_any()
                    } else {
                        view! {
                            <div class="alert alert-warning" data-testid="prerequisites">
                                <strong>{format!("{} prerequisites fail:", p.problems.len())}</strong>
                                <ul class="error-list">{p.problems.iter().map(|p| view! { <li><code>{p.code.clone()}</code>" — "{p.message.clone()}</li> }).collect_view()}</ul>
                                <p class="small">"Leave a server behind (below) or fail back only the ready ones to bring the others home now."</p>
                            </div>
                        }.into_any()
                    }}
                    <table class="table table-compact" data-testid="failback-servers">
                        <thead><tr><th>"Server"</th><th>"Failback"</th><th>"Why"</th><th>"Leave on DR"</th></tr></thead>
                        <tbody>
                            {p.going.into_iter().map(|g| {
                                let (toggle, id) = (toggle.clone(), g.source_server_id.clone());
                                view! {
                                    <tr data-going=g.source_server_id.to_string()>
                                        <td>{g.name.clone()}</td><td><Badge status="ready" label="goes home"/></td><td></td>
                                        <td><input type="checkbox" aria-label=format!("Leave {} on DR", g.name) on:change=move |ev| toggle(id.clone(), event_target_checked(&ev))/></td>
                                    </tr>
                                }
                            }).collect_view()}
                            {p.staying.into_iter().map(|l| {
                                let asked = l.reason == StayReason::LeftBehind;
                                let (toggle, id) = (toggle_back.clone(), l.source_server_id.clone());
                                view! {
                                    <tr data-staying=l.source_server_id.to_string()>
                                        <td>{l.name.clone()}</td><td><Badge status="neutral" label="stays on DR"/></td>
                                        <td class="small"><code>{l.reason.as_str()}</code>" — "{l.message.clone()}</td>
                                        <td>{asked.then(|| view! { <input type="checkbox" checked=true aria-label=format!("Leave {} on DR", l.name) on:change=move |ev| toggle(id.clone(), event_target_checked(&ev))/> })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            })}
            <div class="form-actions">
                <button class="btn" type="button" data-testid="check-prerequisites" on:click=move |_| { check.dispatch(check_id.clone()); }>"Check prerequisites"</button>
                <button class="btn btn-primary" type="button" disabled=move || busy.get() data-testid="request-failback"
                    on:click={ let id = execution_id.clone(); move |_| { request.dispatch(id.clone()); } }>"Request failback"</button>
            </div>
        </div>
    }
}

/// Per server: instance and private IP before failover, after failover and after failback.
#[component]
pub(super) fn RoundTripProof(execution_id: String, phase: Phase) -> impl IntoView {
    let proof = Resource::new(move || (execution_id.clone(), phase), |(id, _)| round_trip_proof(id));
    let cell = |p: Option<domain::execution::Placement>| match p {
        Some(p) => {
            view! { <td class="mono">{p.instance_id.to_string()}" · "{p.private_ip.to_string()}</td> }.into_any()
        }
        None => view! { <td class="muted">"—"</td> }.into_any(),
    };
    view! {
        <h2>"Round-trip proof"</h2>
        <Transition fallback=|| view! { <Loading what="the proof"/> }>
            {move || proof.get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(rows) => view! {
                    <table class="table table-compact" data-testid="round-trip-proof">
                        <thead><tr><th>"Server"</th><th>"Before failover"</th><th>"After failover"</th><th>"After failback"</th><th>"Verdict"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|row| {
                                let (tone, label) = match row.verdict {
                                    ProofVerdict::Identical => ("ready", "identical"),
                                    ProofVerdict::Mismatch => ("failed", "mismatch"),
                                    ProofVerdict::Incomplete => ("neutral", "not back yet"),
                                };
                                view! {
                                    <tr>
                                        <td>{row.name.clone()}</td>
                                        {cell(Some(row.before_failover.clone()))}
                                        {cell(row.after_failover.clone())}
                                        {cell(row.after_failback.clone())}
                                        <td><Badge status=tone label=label/>" "<span class="error-text">{row.error.clone().unwrap_or_default()}</span></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}
