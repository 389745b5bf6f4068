//! Failover: `/executions` holds the wizard (plan → readiness → drill or failover → start or request
//! approval) and the list; `/approvals` lists what waits for a second person; `/executions/{id}` is the
//! live dashboard, fed by the execution's Server-Sent Events (`/api/v1/executions/{id}/events`).

use crate::api::{
    ConsoleError, decide_execution, delete_swapped_volume, failback_preview, get_execution, list_executions,
    list_groups, list_plans, re_arm, round_trip_proof, start_execution, start_failback, swapped_volumes, verdicts,
};
use crate::components::{
    Badge, ConfirmButton, Empty, ErrorBox, Loading, Stat, duration, phase_badge, verdict_badge, when,
};
use crate::pages::signin::{IfAllowed, can};
use domain::auth::Permission;
use domain::execution::{
    Decision, ExecutionSummary, ExecutionView, FailbackPreview, FailoverKind, Mode, Phase, ProofVerdict, ServerState,
    StartExecution, StartFailback, StayReason, WaveState,
};
use domain::ids::SourceServerId;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

/// What an execution is, in words.
pub fn what(mode: Mode, kind: FailoverKind) -> &'static str {
    match (mode, kind) {
        (Mode::Drill, _) => "drill",
        (Mode::Recovery, FailoverKind::Planned) => "planned failover",
        (Mode::Recovery, FailoverKind::Disaster) => "disaster failover",
        (Mode::Failback, _) => "failback",
    }
}

fn server_badge(s: ServerState) -> impl IntoView {
    let (tone, label) = match s {
        ServerState::Waiting => ("neutral", "waiting"),
        ServerState::Starting => ("running", "starting"),
        ServerState::Launching => ("running", "launching"),
        ServerState::Launched => ("running", "verifying"),
        ServerState::Verified => ("ready", "verified"),
        ServerState::Failed => ("failed", "failed"),
    };
    view! { <Badge status=tone label=label/> }
}

fn wave_tone(s: WaveState) -> &'static str {
    match s {
        WaveState::Pending | WaveState::Skipped => "neutral",
        WaveState::Running => "running",
        WaveState::Succeeded => "ready",
        WaveState::Failed => "failed",
    }
}

/// `/executions`.
#[component]
pub fn Executions() -> impl IntoView {
    let list = Resource::new(|| (), |_| list_executions());
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Failover"</h1>
                    <p class="lead">"Run a recovery plan: a drill runs at once and returns its standbys to standby afterwards; a failover waits until a second person approves it. Every server launches into its paired standby and is verified by instance ID, private IP and state."</p>
                </div>
            </div>
            <IfAllowed permission=Permission::Operate otherwise="Operators start drills and request failovers; approvers decide on the Approvals page.">
                <Wizard/>
            </IfAllowed>
            <h2>"Executions"</h2>
            <Transition fallback=|| view! { <Loading what="executions"/> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <Empty title="Nothing has run yet">"Start a drill above: it proves the plan without touching production."</Empty>
                    }.into_any(),
                    Ok(rows) => view! { <ExecutionTable rows/> }.into_any(),
                })}
            </Transition>
            <SwappedVolumes/>
        </section>
    }
}

/// The volumes launches swapped out of standbys: kept, and listed for clean-up once their retention ends.
#[component]
fn SwappedVolumes() -> impl IntoView {
    let volumes = Resource::new(|| (), |_| swapped_volumes());
    let error = RwSignal::new(None::<ConsoleError>);
    let remove = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match delete_swapped_volume(id).await {
                Ok(()) => {
                    error.set(None);
                    volumes.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let can_delete = can(Permission::Operate);
    view! {
        <h2>"Swapped-out volumes"</h2>
        {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
        <Transition fallback=|| view! { <Loading what="volumes"/> }>
            {move || volumes.get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok((_, list)) if list.is_empty() => view! {
                    <Empty title="No swapped-out volumes">"A launch into a standby replaces its volumes; the old ones are kept and listed here."</Empty>
                }.into_any(),
                Ok((days, list)) => view! {
                    <p class="muted">{format!("DRS replaced these standby volumes when it launched into them. Roundtrip never deletes them: they are kept at least {days} days, then marked deletable for you to remove.")}</p>
                    <table class="table table-dense" data-testid="swapped-volumes">
                        <thead><tr><th>"Volume"</th><th>"Size"</th><th>"From standby"</th><th>"Swapped out"</th><th>"Deletable"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|v| view! {
                                <tr>
                                    <td class="mono">{v.volume.volume_id.clone()}</td>
                                    <td>{format!("{} GiB", v.volume.size_gib)}</td>
                                    <td class="mono">{v.standby_instance_id.to_string()}</td>
                                    <td class="muted">{when(v.volume.since)}</td>
                                    <td>{if v.deletable { "yes".to_owned() } else { format!("after {}", when(v.deletable_after)) }}</td>
                                    <td>{(v.deletable && can_delete()).then(|| {
                                        let id = v.volume.volume_id.clone();
                                        view! { <ConfirmButton label="Delete…" question="Delete this volume for good? Its data is gone afterwards." confirm="Delete volume" on_confirm=Callback::new(move |()| { remove.dispatch(id.clone()); })/> }
                                    })}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn ExecutionTable(rows: Vec<ExecutionSummary>) -> impl IntoView {
    view! {
        <table class="table" data-testid="executions-table">
            <thead><tr><th>"Plan"</th><th>"What"</th><th>"Phase"</th><th>"Progress"</th><th>"Servers"</th><th>"Requested"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|e| view! {
                    <tr>
                        <td><a href=format!("/executions/{}", e.id)>{e.plan_name.clone()}</a></td>
                        <td>{what(e.mode, e.kind)}</td>
                        <td>{phase_badge(e.phase)}</td>
                        <td><progress max="100" value=e.progress_percent.to_string()></progress>" "{format!("{}%", e.progress_percent)}</td>
                        <td>{e.servers}</td>
                        <td class="muted">{format!("{} by {}", when(e.requested_at), e.requested_by)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Plan → readiness → drill or failover → start or request approval.
#[component]
fn Wizard() -> impl IntoView {
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
                                                            <Badge status=if c.severity == domain::matching::Severity::Critical { "blocked" } else { "warning" } label=c.id.clone()/>
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

/// `/approvals`: executions waiting for a second person, to approve, reject, or release a gate.
#[component]
pub fn Approvals() -> impl IntoView {
    let list = Resource::new(|| (), |_| list_executions());
    let refresh = Callback::new(move |()| list.refetch());
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Approvals"</h1>
                    <p class="lead">"A failover runs only once a second person with the approver role approves it, and a wave behind a gate waits for the same. You cannot approve your own request. Requests expire after 60 minutes."</p>
                </div>
            </div>
            <Transition fallback=|| view! { <Loading what="approvals"/> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(rows) => {
                        let waiting: Vec<ExecutionSummary> = rows.into_iter().filter(|e| matches!(e.phase, Phase::AwaitingApproval | Phase::AwaitingGate)).collect();
                        if waiting.is_empty() {
                            return view! { <Empty title="Nothing waits for approval">"Requested failovers and waves at a gate appear here."</Empty> }.into_any();
                        }
                        view! {
                            <div class="cards" data-testid="approvals">
                                {waiting.into_iter().map(|e| view! { <ApprovalCard e refresh/> }).collect_view()}
                            </div>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ApprovalCard(e: ExecutionSummary, refresh: Callback<()>) -> impl IntoView {
    let title = match &e.gate {
        Some(w) => format!("{}: wave {w} waits at its gate", e.plan_name),
        None => format!("{} of {} ({} servers)", what(e.mode, e.kind), e.plan_name, e.servers),
    };
    view! {
        <article class="card" data-testid="approval">
            <h2><a href=format!("/executions/{}", e.id)>{title}</a></h2>
            <p class="muted">{format!("Requested by {} at {}", e.requested_by, when(e.requested_at))}</p>
            <IfAllowed permission=Permission::Approve otherwise="Approvers and admins decide here.">
                <DecisionForm id=e.id.clone() gate=e.gate.is_some() on_done=refresh/>
            </IfAllowed>
        </article>
    }
}

/// Approve or reject (with a comment), or release a gate.
#[component]
fn DecisionForm(id: String, gate: bool, on_done: Callback<()>) -> impl IntoView {
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ConsoleError>);
    let decide = Action::new(move |(id, d): &(String, Decision)| {
        let (id, d) = (id.clone(), *d);
        async move {
            match decide_execution(id, d, comment.get_untracked()).await {
                Ok(()) => {
                    error.set(None);
                    on_done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let busy = decide.pending();
    let button = move |label: &'static str, d: Decision, class: &'static str| {
        let id = id.clone();
        view! { <button class=class type="button" disabled=move || busy.get() on:click=move |_| { decide.dispatch((id.clone(), d)); }>{label}</button> }
    };
    view! {
        <div class="form">
            <label class="field"><span>"Comment (required to approve or reject; recorded in the audit trail)"</span>
                <textarea maxlength="1000" rows="2" data-testid="decision-comment" prop:value=move || comment.get() on:input=move |ev| comment.set(event_target_value(&ev))></textarea>
            </label>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            <div class="form-actions">
                {if gate {
                    button("Release the gate", Decision::Resume, "btn btn-primary").into_any()
                } else {
                    view! { {button("Approve", Decision::Approve, "btn btn-primary")}" "{button("Reject", Decision::Reject, "btn btn-danger-outline")} }.into_any()
                }}
            </div>
        </div>
    }
}

/// Follows `/api/v1/executions/{id}/events` into `live` until the execution ends or the page goes.
#[cfg(feature = "hydrate")]
fn follow(id: String, live: RwSignal<Option<ExecutionView>>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(es) = web_sys::EventSource::new(&format!("/api/v1/executions/{id}/events")) else { return };
    let handle = es.clone();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        let Some(text) = e.data().as_string() else { return };
        if let Ok(v) = serde_json::from_str::<ExecutionView>(&text) {
            if v.execution.state.phase.is_terminal() {
                // The server ends the stream here; without this, the browser would reconnect.
                handle.close();
            }
            live.set(Some(v));
        }
    });
    let _ = es.add_event_listener_with_callback("execution", on_message.as_ref().unchecked_ref());
    let keep = send_wrapper::SendWrapper::new((es, on_message));
    on_cleanup(move || keep.0.close());
}

/// `/executions/{id}`: the live dashboard.
#[component]
pub fn ExecutionDashboard() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let first = Resource::new(id, get_execution);
    let live = RwSignal::new(None::<ExecutionView>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| follow(id(), live));
    let refresh = Callback::new(move |()| first.refetch());
    let current = move || live.get().or_else(|| first.get().and_then(Result::ok));
    view! {
        <section class="page">
            <Transition fallback=|| view! { <Loading what="execution"/> }>
                {move || match (first.get(), current()) {
                    (Some(Err(e)), None) => view! { <ErrorBox error=e/> }.into_any(),
                    (_, Some(v)) => view! { <Dashboard v refresh/> }.into_any(),
                    _ => view! { <Loading what="execution"/> }.into_any(),
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Dashboard(v: ExecutionView, refresh: Callback<()>) -> impl IntoView {
    let e = v.execution;
    let st = v.status;
    let state = e.state;
    let id = e.id.clone();
    let over = st.rto_ms.or(st.elapsed_ms).is_some_and(|t| t > st.rto_target_ms);
    let rto_label = match (st.rto_ms, st.elapsed_ms) {
        (Some(r), _) => format!("RTO {} (target {})", duration(r), duration(st.rto_target_ms)),
        (None, Some(el)) => format!("{} elapsed (target {})", duration(el), duration(st.rto_target_ms)),
        _ => format!("target {}", duration(st.rto_target_ms)),
    };
    let servers: usize = state.waves.iter().map(|w| w.servers.len()).sum();
    let verified =
        state.waves.iter().flat_map(|w| w.servers.iter()).filter(|s| s.state == ServerState::Verified).count();
    let failed = state.waves.iter().flat_map(|w| w.servers.iter()).filter(|s| s.state == ServerState::Failed).count();
    let waiting_decision = matches!(state.phase, Phase::AwaitingApproval | Phase::AwaitingGate);
    let can_cancel = can(Permission::Operate);
    let cancellable = matches!(state.phase, Phase::AwaitingApproval | Phase::AwaitingGate | Phase::Running)
        && !state.cancel_requested;
    let cleaning = state.phase == Phase::CleaningUp;
    let (failback_id, proof_id, rearm_id) = (e.id.clone(), e.id.clone(), e.id.clone());
    let unarmed = state.mode == Mode::Failback
        && state.phase.is_terminal()
        && state
            .waves
            .iter()
            .flat_map(|w| w.servers.iter())
            .any(|s| s.state == ServerState::Verified && s.cleaned_at.is_none());
    let rearm = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let _ = re_arm(id).await;
            refresh.run(());
        }
    });
    let abandon_id = e.id.clone();
    let cancel = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let _ = decide_execution(id, Decision::Cancel, String::new()).await;
            refresh.run(());
        }
    });
    let now = state.started_at.zip(st.elapsed_ms).map_or(state.requested_at, |(a, el)| a + el);
    let gantt = gantt(&state, st.rto_target_ms, now);
    view! {
        <div class="page-head">
            <div>
                <h1 data-testid="execution-title">{format!("{} — {}", e.plan_name, what(state.mode, state.kind))}</h1>
                <p class="lead">
                    <span data-testid="execution-phase">{phase_badge(state.phase)}</span>
                    {format!(" requested by {} at {}", state.requested_by, when(state.requested_at))}
                    {state.approved_by.clone().map(|a| format!(" · approved by {a}"))}
                </p>
            </div>
            <div class="page-actions">
                <a class="btn" data-testid="evidence-report" target="_blank" rel="noopener"
                    href=format!("/api/v1/executions/{}/report?format=html", e.id)
                    title="Printable evidence report (JSON: add &format=json)">"Evidence report"</a>
                <crate::pages::share::ShareExecution execution_id=e.id.clone() name=format!("Status of {}", e.plan_name)/>
                {move || (can_cancel() && cancellable).then(|| {
                    let id = id.clone();
                    view! { <ConfirmButton label="Cancel…" question="Start no new jobs or waves? Jobs in flight finish and are recorded." confirm="Cancel the execution" on_confirm=Callback::new(move |()| { cancel.dispatch(id.clone()); })/> }
                })}
                {move || (can_cancel() && unarmed).then(|| {
                    let id = rearm_id.clone();
                    view! { <ConfirmButton label="Re-arm again…" question="Re-protect the originals and return the remaining DR standbys to standby?" confirm="Re-arm" on_confirm=Callback::new(move |()| { rearm.dispatch(id.clone()); })/> }
                })}
                {move || (can_cancel() && cleaning).then(|| {
                    let id = abandon_id.clone();
                    view! { <ConfirmButton label="Abandon clean-up…" question="Leave the remaining standbys as they are (running, still DRS recovery instances)? The next drill refuses to start until they are back to standby." confirm="Abandon clean-up" on_confirm=Callback::new(move |()| { cancel.dispatch(id.clone()); })/> }
                })}
            </div>
        </div>
        <div class="stats">
            <Stat label="servers verified" value=format!("{verified} of {servers}") tone="ready"/>
            <Stat label="failed" value=failed.to_string() tone={if failed > 0 { "failed" } else { "neutral" }}/>
            <Stat label="elapsed" value=st.elapsed_ms.map(duration).unwrap_or_else(|| "—".into())/>
            <Stat label="remaining (estimate)" value=match st.remaining_ms {
                Some(r) => duration(r),
                None if st.elapsed_ms.is_some() && !st.phase.is_terminal() && st.phase != Phase::CleaningUp => "estimating…".into(),
                None => "—".into(),
            }/>
        </div>
        <div class="progress-wrap" data-testid="execution-progress">
            <progress max="100" value=st.progress_percent.to_string()></progress>
            <span>{format!("{}%", st.progress_percent)}</span>
            <span class={if over { "rto rto-over" } else { "rto" }} data-testid="rto-clock">{rto_label}</span>
        </div>
        {waiting_decision.then(|| view! {
            <div class="card">
                <h2>{if state.phase == Phase::AwaitingGate { "The next wave waits at its gate" } else { "Waiting for a second person's approval" }}</h2>
                <IfAllowed permission=Permission::Approve otherwise="An approver (not the requester) decides, here or on the Approvals page.">
                    <DecisionForm id=e.id.clone() gate=state.phase == Phase::AwaitingGate on_done=refresh/>
                </IfAllowed>
            </div>
        })}
        {(state.mode == Mode::Recovery && state.phase.is_terminal() && verified > 0).then(|| view! {
            <IfAllowed permission=Permission::Operate>
                <FailbackRequest execution_id=failback_id.clone()/>
            </IfAllowed>
        })}
        {e.failback.as_ref().map(|f| view! {
            <p class="muted">"Failback of "<a href=format!("/executions/{}", f.execution_id)>{f.execution_id.clone()}</a></p>
            <RoundTripProof execution_id=proof_id.clone() phase=state.phase/>
            {(!f.left_behind.is_empty()).then(|| view! {
                <h2>{format!("Left on DR ({})", f.left_behind.len())}</h2>
                <p class="muted">"These servers stay on their DR standbys; request another failback of the recovery once they are fixed."</p>
                <table class="table table-compact" data-testid="left-behind">
                    <thead><tr><th>"Server"</th><th>"Why"</th></tr></thead>
                    <tbody>
                        {f.left_behind.iter().map(|l| view! {
                            <tr><td>{l.name.clone()}</td><td class="small"><code>{l.reason.as_str()}</code>" — "{l.message.clone()}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        })}
        <h2>"Timeline"</h2>
        {gantt}
        <h2>"Waves"</h2>
        <div data-testid="waves">
            {state.waves.iter().enumerate().map(|(i, w)| {
                let done = w.servers.iter().filter(|s| matches!(s.state, ServerState::Verified | ServerState::Failed)).count();
                let wave_rto = st.waves.get(i).and_then(|x| x.rto_ms);
                view! {
                    <details class="wave" open=w.state == WaveState::Running data-testid="wave">
                        <summary>
                            <strong>{format!("Wave {}: {}", i + 1, w.name)}</strong>" "
                            <Badge status=wave_tone(w.state) label=format!("{:?}", w.state).to_lowercase()/>
                            " "<progress max=w.servers.len().to_string() value=done.to_string()></progress>
                            {format!(" {done} of {} done", w.servers.len())}
                            {wave_rto.map(|r| format!(" · RTO {}", duration(r)))}
                            {w.pause_before.then_some(" · gate before")}
                        </summary>
                        <table class="table table-compact">
                            <thead><tr><th>"Server"</th><th>"State"</th><th>"Standby"</th><th>"Private IP"</th><th>"DRS job"</th><th>"Launched"</th><th>"RTO"</th><th>"Recovery point"</th><th>"Error"</th></tr></thead>
                            <tbody>
                                {w.servers.iter().map(|s| view! {
                                    <tr>
                                        <td>{if s.name.is_empty() { s.source_server_id.to_string() } else { s.name.clone() }}</td>
                                        <td>{server_badge(s.state)}
                                            {(s.state == ServerState::Waiting).then(|| s.failback_replication.clone()).flatten().map(|(st, lag)| view! {
                                                <span class="muted small">{format!(" replicating back: {st}, lag {lag} s")}</span>
                                            })}
                                        </td>
                                        <td><code>{s.standby_instance_id.to_string()}</code></td>
                                        <td><code>{s.expected_ip.to_string()}</code></td>
                                        <td class="muted">{s.job_id.clone().unwrap_or_default()}</td>
                                        <td class="muted">{s.launched_at.map(when).unwrap_or_default()}</td>
                                        <td>{s.verified_at.zip(state.started_at).map(|(v, a)| duration(v - a)).unwrap_or_default()}</td>
                                        <td class="muted">{s.recovery_point.map(when).unwrap_or_default()}</td>
                                        <td class="error-text">{s.error.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </details>
                }
            }).collect_view()}
        </div>
        <h2>"Event log"</h2>
        <ol class="event-log" data-testid="event-log" reversed>
            {e.log.iter().rev().take(200).map(|l| view! {
                <li class={if l.failure { "event event-failure" } else { "event" }}>
                    <span class="muted">{when(l.at)}</span>" "{l.message.clone()}
                </li>
            }).collect_view()}
        </ol>
    }
}

/// A Gantt-style SVG: one bar per wave from its start to its end (or now), scaled to the longer of the
/// run so far and the RTO target, with the target as a line.
fn gantt(s: &domain::execution::ExecutionState, target_ms: i64, now: i64) -> impl IntoView + use<> {
    const W: i64 = 800;
    const ROW: i64 = 26;
    let Some(start) = s.started_at else {
        return view! { <p class="muted">"The timeline starts when the execution does."</p> }.into_any();
    };
    let end = s.ended_at.unwrap_or(now).max(start + 1);
    let span = (end - start).max(target_ms).max(1);
    let x = move |t: i64| (t - start) * W / span;
    let height = ROW * i64::try_from(s.waves.len()).unwrap_or(0) + 24;
    let target_x = x(start + target_ms);
    let rows = s
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let y = ROW * i64::try_from(i).unwrap_or(0);
            let bar = w.started_at.map(|a| {
                let b = w.ended_at.unwrap_or(end);
                (x(a), (x(b) - x(a)).max(2))
            });
            view! {
                <g>
                    <text x="4" y=(y + 17).to_string() class="gantt-label">{w.name.clone()}</text>
                    {bar.map(|(bx, bw)| view! {
                        <rect x=(bx + 120).to_string() y=(y + 4).to_string() width=bw.to_string() height=(ROW - 8).to_string() class=format!("gantt-bar gantt-{}", wave_tone(w.state))></rect>
                    })}
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="gantt" data-testid="gantt" viewBox=format!("0 0 {} {height}", W + 130) role="img" aria-label="Timeline of the waves against the RTO target">
            {rows}
            <line x1=(target_x + 120).to_string() x2=(target_x + 120).to_string() y1="0" y2=(height - 18).to_string() class="gantt-target"></line>
            <text x=(target_x + 124).min(W + 60).to_string() y=(height - 4).to_string() class="gantt-label">{format!("RTO target {}", duration(target_ms))}</text>
        </svg>
    }
    .into_any()
}

/// The failback request of an ended recovery: what Roundtrip may do to the originals, which servers go and
/// which stay on DR (a server that cannot go home need not hold up the others), then a second person
/// approves.
#[component]
fn FailbackRequest(execution_id: String) -> impl IntoView {
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
fn RoundTripProof(execution_id: String, phase: Phase) -> impl IntoView {
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
