//! Failover: `/executions` holds the wizard (plan → readiness → drill or failover → start or request
//! approval) and the list; `/approvals` lists what waits for a second person; `/executions/{id}` is the
//! live dashboard, fed by the execution's Server-Sent Events (`/api/v1/executions/{id}/events`).

mod approvals;
mod dashboard;
mod failback;
mod wizard;

use wizard::Wizard;

use crate::api::{ConsoleError, delete_swapped_volume, list_executions, swapped_volumes};
use crate::components::{Badge, ConfirmButton, Empty, ErrorBox, Loading, phase_badge, when};
use crate::pages::signin::{IfAllowed, can};
pub use approvals::Approvals;
pub use dashboard::ExecutionDashboard;
use domain::auth::Permission;
use domain::execution::{ExecutionSummary, FailoverKind, Mode, ServerState, WaveState};
use leptos::prelude::*;

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
