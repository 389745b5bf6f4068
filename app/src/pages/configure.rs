//! The launch-into configuration of a group: where each server stands, a dry-run diff, apply with a
//! progress bar and per-server results, and rollback with confirmation.

use crate::api::{ConsoleError, configure, get_group, launch_status, rollback};
use crate::components::{Badge, ErrorBox, Loading, Stat};
use domain::launch::{ConfigureStatus, LaunchConfigState, LaunchConfigStatus, ServerOutcome};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// Servers per request while applying, so the progress bar moves and one slow batch does not hold the rest.
const BATCH: usize = 10;

fn state_badge(s: LaunchConfigState) -> (&'static str, &'static str) {
    match s {
        LaunchConfigState::Configured => ("ready", "configured"),
        LaunchConfigState::NotConfigured => ("unmatched", "not configured"),
        LaunchConfigState::Drifted => ("blocked", "drifted"),
        LaunchConfigState::Unreadable => ("failed", "unreadable"),
    }
}

fn outcome_badge(s: ConfigureStatus) -> &'static str {
    match s {
        ConfigureStatus::Applied | ConfigureStatus::Restored | ConfigureStatus::Unchanged => "ready",
        ConfigureStatus::WouldChange | ConfigureStatus::NothingToRestore => "running",
        ConfigureStatus::RolledBack => "warning",
        ConfigureStatus::Refused | ConfigureStatus::Failed => "blocked",
    }
}

#[component]
fn OutcomeTable(results: Vec<ServerOutcome>) -> impl IntoView {
    let mut results = results;
    results.sort_by_key(|r| r.status);
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="outcomes">
                <thead><tr>
                    <th scope="col">"Outcome"</th><th scope="col">"Source server"</th><th scope="col">"Standby"</th>
                    <th scope="col">"Changes"</th><th scope="col" class="num">"Writes"</th>
                </tr></thead>
                <tbody>
                    {results.into_iter().map(|r| {
                        let changed: Vec<String> = r.changes.iter().filter(|c| c.changes)
                            .map(|c| format!("step {}: {} {} → {}", c.step, c.field, c.current, c.desired)).collect();
                        view! {
                            <tr data-status=r.status.as_str()>
                                <td><Badge status=outcome_badge(r.status) label=r.status.as_str().replace('_', " ")/></td>
                                <td><div>{r.source_name.clone()}</div><div class="mono muted small">{r.source_server_id.to_string()}</div></td>
                                <td class="mono small">{r.standby_instance_id.to_string()}</td>
                                <td class="small">
                                    {changed.into_iter().map(|c| view! { <div class="mono">{c}</div> }).collect_view()}
                                    {r.reasons.iter().map(|x| view! { <div class="field-error">{format!("{}: {}", x.code, x.message)}</div> }).collect_view()}
                                </td>
                                <td class="num">{r.writes}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// `/protection-groups/:id/configuration`.
#[component]
pub fn Configuration() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let refresh = RwSignal::new(0u32);
    let group = Resource::new(move || id.get(), get_group);
    let status = Resource::new(move || (id.get(), refresh.get()), |(id, _)| launch_status(id));
    let error = RwSignal::new(None::<ConsoleError>);
    let preview = RwSignal::new(None::<Vec<ServerOutcome>>);
    let results = RwSignal::new(Vec::<ServerOutcome>::new());
    let total = RwSignal::new(0usize);
    let confirm_rollback = RwSignal::new(false);

    let run_preview = Action::new(move |_: &()| {
        let id = id.get_untracked();
        async move {
            match configure(id, true, None).await {
                Ok(o) => {
                    error.set(None);
                    preview.set(Some(o.results));
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let apply = Action::new(move |pairs: &Vec<String>| {
        let (id, pairs) = (id.get_untracked(), pairs.clone());
        async move {
            error.set(None);
            preview.set(None);
            results.set(Vec::new());
            total.set(pairs.len());
            for chunk in pairs.chunks(BATCH) {
                match configure(id.clone(), false, Some(chunk.to_vec())).await {
                    Ok(o) => results.update(|r| r.extend(o.results)),
                    Err(e) => {
                        error.set(Some(e));
                        break;
                    }
                }
            }
            refresh.update(|n| *n += 1);
        }
    });
    let undo = Action::new(move |_: &()| {
        let id = id.get_untracked();
        async move {
            confirm_rollback.set(false);
            preview.set(None);
            match rollback(id).await {
                Ok(o) => {
                    error.set(None);
                    total.set(o.results.len());
                    results.set(o.results);
                }
                Err(e) => error.set(Some(e)),
            }
            refresh.update(|n| *n += 1);
        }
    });
    // The pair ids, kept in a signal by an effect so the buttons never read the resource outside <Transition/>.
    let ids = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        if let Some(Ok(list)) = status.get() {
            ids.set(list.iter().map(|s| s.pair_id.to_string()).collect());
        }
    });
    let pair_ids = move || ids.get();
    let busy = move || apply.pending().get() || undo.pending().get() || run_preview.pending().get();

    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Launch-into configuration"</h1>
                    <p class="lead">
                        <Transition fallback=|| ()>{move || group.get().and_then(Result::ok).map(|g| g.name)}</Transition>
                        " — each source server's DRS launch configuration points at its standby, with copy private IP, copy tags and right-sizing off. Preview first; nothing is written until you apply."
                    </p>
                </div>
                <a class="btn" href=move || format!("/protection-groups/{}", id.get())>"Back to the group"</a>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            <Transition fallback=|| view! { <Loading what="launch configurations"/> }>
                {move || status.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => {
                        let n = |s: LaunchConfigState| list.iter().filter(|x| x.state == s).count().to_string();
                        let backed_up = list.iter().filter(|x| x.backed_up).count();
                        view! {
                            <div class="stats" data-testid="config-stats">
                                <Stat label="servers" value=list.len().to_string()/>
                                <Stat label="configured" value=n(LaunchConfigState::Configured) tone="ready"/>
                                <Stat label="not configured" value=n(LaunchConfigState::NotConfigured) tone="unmatched"/>
                                <Stat label="drifted" value=n(LaunchConfigState::Drifted) tone="blocked"/>
                                <Stat label="unreadable" value=n(LaunchConfigState::Unreadable) tone="blocked"/>
                                <Stat label="kept for rollback" value=backed_up.to_string()/>
                            </div>
                            <StatusTable list=list/>
                        }.into_any()
                    }
                })}
            </Transition>
            <div class="toolbar">
                <button type="button" class="btn" id="preview" disabled=busy on:click=move |_| { run_preview.dispatch(()); }>
                    {move || if run_preview.pending().get() { "Previewing…" } else { "Preview changes (dry run)" }}
                </button>
                <button type="button" class="btn btn-primary" id="apply" disabled=move || busy() || pair_ids().is_empty()
                    on:click=move |_| { apply.dispatch(pair_ids()); }>
                    {move || format!("Apply to {} servers", pair_ids().len())}
                </button>
                <Show when=move || confirm_rollback.get() fallback=move || view! {
                    <button type="button" class="btn btn-danger-outline" disabled=busy on:click=move |_| confirm_rollback.set(true)>"Roll back…"</button>
                }>
                    <span class="confirm" role="alertdialog" aria-label="Confirm rollback">
                        "Restore every server's launch configuration from before Roundtrip changed it? "
                        <button type="button" class="btn btn-danger" on:click=move |_| { undo.dispatch(()); }>"Roll back"</button>
                        <button type="button" class="btn" on:click=move |_| confirm_rollback.set(false)>"Cancel"</button>
                    </span>
                </Show>
            </div>
            <Show when=move || { total.get() > 0 }>
                <div class="progress-wrap" aria-live="polite">
                    <progress max=move || total.get() value=move || results.with(Vec::len)></progress>
                    <span id="progress-text">{move || format!("{} of {} servers", results.with(Vec::len), total.get())}</span>
                </div>
            </Show>
            {move || preview.get().map(|p| {
                let changing = p.iter().filter(|r| r.status == ConfigureStatus::WouldChange).count();
                let refused = p.iter().filter(|r| r.status == ConfigureStatus::Refused).count();
                let unchanged = p.iter().filter(|r| r.status == ConfigureStatus::Unchanged).count();
                let failed = p.iter().filter(|r| r.status == ConfigureStatus::Failed).count();
                view! {
                    <section class="panel" aria-labelledby="preview-h">
                        <h2 id="preview-h">"Dry run"</h2>
                        <p data-testid="preview-summary">{format!("{changing} servers would change, {unchanged} already configured, {refused} refused, {failed} could not be read. Nothing was written.")}</p>
                        <OutcomeTable results=p/>
                    </section>
                }
            })}
            <Show when=move || !results.with(Vec::is_empty) && !busy()>
                {move || {
                    let r = results.get();
                    let count = |s: ConfigureStatus| r.iter().filter(|x| x.status == s).count();
                    let writes: u32 = r.iter().map(|x| x.writes).sum();
                    let summary = format!(
                        "{} applied, {} unchanged, {} restored, {} rolled back, {} refused, {} failed — {writes} DRS writes.",
                        count(ConfigureStatus::Applied), count(ConfigureStatus::Unchanged), count(ConfigureStatus::Restored),
                        count(ConfigureStatus::RolledBack), count(ConfigureStatus::Refused), count(ConfigureStatus::Failed)
                    );
                    view! {
                        <section class="panel" aria-labelledby="results-h">
                            <h2 id="results-h">"Results"</h2>
                            <p role="status" data-testid="results-summary">{summary}</p>
                            <OutcomeTable results=r/>
                        </section>
                    }
                }}
            </Show>
        </section>
    }
}

#[component]
fn StatusTable(list: Vec<LaunchConfigStatus>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted">"This group has no pairs yet: accept pairs on the instance matching page first."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr>
                    <th scope="col">"State"</th><th scope="col">"Source server"</th><th scope="col">"Standby"</th>
                    <th scope="col">"Launches into"</th><th scope="col">"Copy IP / tags"</th><th scope="col">"Right-sizing"</th>
                    <th scope="col">"Drift"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|s| {
                        let (tone, label) = state_badge(s.state);
                        let c = s.current.clone();
                        view! {
                            <tr data-state=label>
                                <td><Badge status=tone label=label/></td>
                                <td><div>{s.source_name.clone()}</div><div class="mono muted small">{s.source_server_id.to_string()}</div></td>
                                <td class="mono small">{s.standby_instance_id.to_string()}</td>
                                <td class="mono small">{c.as_ref().map(|c| c.launch_into_instance_id.as_ref().map_or("—".to_owned(), ToString::to_string))}</td>
                                <td class="small">{c.as_ref().map(|c| format!("{} / {}", c.copy_private_ip, c.copy_tags))}</td>
                                <td class="small">{c.as_ref().map(|c| c.right_sizing.as_str())}</td>
                                <td class="small">
                                    {s.drift.iter().map(|d| view! { <div class="mono">{format!("{}: {} → {}", d.field, d.desired, d.current)}</div> }).collect_view()}
                                    {s.error.clone()}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}
