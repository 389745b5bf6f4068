//! `/executions/{id}`: the live dashboard, fed by the execution's Server-Sent Events — waves and servers,
//! a Gantt-style timeline, progress and the RTO clock, and the actions the phase allows.

use super::approvals::DecisionForm;
use super::failback::{FailbackRequest, RoundTripProof};
use super::{server_badge, wave_tone, what};
use crate::api::{decide_execution, get_execution, re_arm};
use crate::components::{Badge, ConfirmButton, ErrorBox, Loading, Stat, duration, phase_badge, when};
use crate::pages::signin::{IfAllowed, can};
use domain::auth::Permission;
use domain::execution::{Decision, ExecutionView, Mode, Phase, ServerState, WaveState};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// Follows `/api/v1/executions/{id}/events` into `live` until the execution ends or the page goes.
#[cfg(feature = "hydrate")]
pub(super) fn follow(id: String, live: RwSignal<Option<ExecutionView>>) {
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
pub(super) fn Dashboard(v: ExecutionView, refresh: Callback<()>) -> impl IntoView {
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
                None if domain::execution::estimating(st.phase, st.elapsed_ms, st.remaining_ms) => "estimating…".into(),
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
pub(super) fn gantt(s: &domain::execution::ExecutionState, target_ms: i64, now: i64) -> impl IntoView + use<> {
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
