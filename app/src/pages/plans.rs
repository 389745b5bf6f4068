//! Recovery plans: `/recovery-plans` lists them and creates one from protection groups (waves derived
//! from `dr:wave` tags); `/recovery-plans/{id}` edits waves — gate, failure policy, timeout, and which wave
//! each server is in — and deletes the plan. The server validates every save.

use crate::api::{ConsoleError, delete_plan, get_plan, group_pairs, list_groups, list_plans, save_plan};
use crate::components::{ConfirmButton, Empty, ErrorBox, Loading, when};
use crate::pages::signin::IfAllowed;
use domain::auth::Permission;
use domain::group::InstancePair;
use domain::ids::{PairId, ProtectionGroupId};
use domain::plan::{DEFAULT_RTO_MINUTES, OnFailure, RecoveryPlan, RecoveryPlanInput, Wave};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use std::collections::HashMap;

/// `/recovery-plans`.
#[component]
pub fn Plans() -> impl IntoView {
    let plans = Resource::new(|| (), |_| list_plans());
    let groups = Resource::new(|| (), |_| list_groups());
    let name = RwSignal::new(String::new());
    let rto = RwSignal::new(DEFAULT_RTO_MINUTES.to_string());
    let chosen = RwSignal::new(Vec::<String>::new());
    let error = RwSignal::new(None::<ConsoleError>);
    let navigate = use_navigate();
    let create = Action::new(move |input: &RecoveryPlanInput| {
        let input = input.clone();
        let navigate = navigate.clone();
        async move {
            match save_plan(None, input, None).await {
                Ok(p) => navigate(&format!("/recovery-plans/{}", p.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ids: Result<Vec<ProtectionGroupId>, _> =
            chosen.get_untracked().iter().map(|g| ProtectionGroupId::parse(g)).collect();
        let Ok(protection_group_ids) = ids else { return };
        create.dispatch(RecoveryPlanInput {
            name: name.get_untracked(),
            description: String::new(),
            protection_group_ids,
            waves: None,
            rto_target_minutes: rto.get_untracked().trim().parse().unwrap_or(0),
        });
    };
    let busy = create.pending();
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Recovery plans"</h1>
                    <p class="lead">"Ordered waves of pairs. A wave starts when the one before it ends; a gate waits for an approver. Only pairs whose launch-into configuration is applied can be in a plan."</p>
                </div>
            </div>
            <Transition fallback=|| view! { <Loading what="recovery plans"/> }>
                {move || plans.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <Empty title="No recovery plans yet">"Create one below from protection groups whose configuration is applied."</Empty>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="plans-table">
                            <thead><tr><th>"Plan"</th><th>"Waves"</th><th>"Servers"</th><th>"RTO target"</th><th>"Updated"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|p| {
                                    let servers: usize = p.waves.iter().map(|w| w.pair_ids.len()).sum();
                                    view! {
                                        <tr>
                                            <td><a href=format!("/recovery-plans/{}", p.id)>{p.name.clone()}</a></td>
                                            <td>{p.waves.len()}</td>
                                            <td>{servers}</td>
                                            <td>{format!("{} min", p.rto_target_minutes)}</td>
                                            <td class="muted">{when(p.updated_at)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <IfAllowed permission=Permission::Operate otherwise="Operators and admins create recovery plans.">
                <form class="form card" on:submit=on_submit data-testid="new-plan-form">
                    <h2>"New plan"</h2>
                    <label class="field"><span>"Name"</span><input required maxlength="128" bind:value=name/></label>
                    <label class="field"><span>"RTO target (minutes)"</span><input inputmode="numeric" bind:value=rto/></label>
                    <fieldset class="field">
                        <legend>"Protection groups (waves follow their dr:wave tags; edit them next)"</legend>
                        <Transition fallback=|| view! { <Loading what="groups"/> }>
                            {move || groups.get().map(|r| match r {
                                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                                Ok(list) => list.into_iter().map(|g| {
                                    let id = g.group.id.to_string();
                                    let id2 = id.clone();
                                    view! {
                                        <label class="radio">
                                            <input type="checkbox" on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                chosen.update(|c| { c.retain(|x| *x != id); if on { c.push(id.clone()); } });
                                            } prop:checked=move || chosen.get().contains(&id2)/>
                                            {format!("{} ({} pairs)", g.group.name, g.pairs)}
                                        </label>
                                    }
                                }).collect_view().into_any(),
                            })}
                        </Transition>
                    </fieldset>
                    {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
                    <div class="form-actions"><button class="btn btn-primary" type="submit" disabled=busy>"Create plan"</button></div>
                </form>
            </IfAllowed>
        </section>
    }
}

/// The editable form of one wave.
#[derive(Clone)]
struct WaveForm {
    name: RwSignal<String>,
    pause_before: RwSignal<bool>,
    continue_on_failure: RwSignal<bool>,
    timeout: RwSignal<String>,
}

/// `/recovery-plans/{id}`.
#[component]
pub fn PlanEdit() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let plan = Resource::new(id, get_plan);
    view! {
        <section class="page">
            <Transition fallback=|| view! { <Loading what="the plan"/> }>
                {move || plan.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(p) => view! { <PlanEditor plan=p/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn PlanEditor(plan: RecoveryPlan) -> impl IntoView {
    let groups: Vec<String> = plan.protection_group_ids.iter().map(ToString::to_string).collect();
    let pairs = Resource::new(move || groups.clone(), group_pairs);
    let waves: RwSignal<Vec<WaveForm>> = RwSignal::new(
        plan.waves
            .iter()
            .map(|w| WaveForm {
                name: RwSignal::new(w.name.clone()),
                pause_before: RwSignal::new(w.pause_before),
                continue_on_failure: RwSignal::new(w.on_failure == OnFailure::Continue),
                timeout: RwSignal::new(w.timeout_minutes.to_string()),
            })
            .collect(),
    );
    let title = RwSignal::new(plan.name.clone());
    // Which wave each pair is in.
    let placement: RwSignal<Vec<(PairId, usize)>> = RwSignal::new(
        plan.waves.iter().enumerate().flat_map(|(i, w)| w.pair_ids.iter().map(move |p| (p.clone(), i))).collect(),
    );
    let version = RwSignal::new(plan.version);
    let error = RwSignal::new(None::<ConsoleError>);
    let saved = RwSignal::new(None::<String>);
    let name = RwSignal::new(plan.name.clone());
    let rto = RwSignal::new(plan.rto_target_minutes.to_string());
    let plan_id = plan.id.clone();
    let group_ids = plan.protection_group_ids.clone();
    let description = plan.description.clone();
    let save = Action::new(move |_: &()| {
        let input = RecoveryPlanInput {
            name: name.get_untracked(),
            description: description.clone(),
            protection_group_ids: group_ids.clone(),
            waves: Some(
                waves
                    .get_untracked()
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Wave {
                        name: w.name.get_untracked(),
                        pair_ids: placement
                            .get_untracked()
                            .into_iter()
                            .filter(|(_, at)| *at == i)
                            .map(|(p, _)| p)
                            .collect(),
                        pause_before: w.pause_before.get_untracked(),
                        on_failure: if w.continue_on_failure.get_untracked() {
                            OnFailure::Continue
                        } else {
                            OnFailure::Stop
                        },
                        timeout_minutes: w.timeout.get_untracked().trim().parse().unwrap_or(0),
                    })
                    .collect(),
            ),
            rto_target_minutes: rto.get_untracked().trim().parse().unwrap_or(0),
        };
        let id = plan_id.clone();
        async move {
            match save_plan(Some(id), input, Some(version.get_untracked())).await {
                Ok(p) => {
                    error.set(None);
                    version.set(p.version);
                    title.set(p.name.clone());
                    saved.set(Some(format!("Saved (version {}).", p.version)));
                }
                Err(e) => {
                    saved.set(None);
                    error.set(Some(e));
                }
            }
        }
    });
    let navigate = use_navigate();
    let remove_id = plan.id.clone();
    let remove = Action::new(move |_: &()| {
        let id = remove_id.clone();
        let navigate = navigate.clone();
        async move {
            match delete_plan(id, Some(version.get_untracked())).await {
                Ok(()) => navigate("/recovery-plans", Default::default()),
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let add_wave = move |_| {
        waves.update(|ws| {
            let n = ws.len() + 1;
            ws.push(WaveForm {
                name: RwSignal::new(format!("wave {n}")),
                pause_before: RwSignal::new(false),
                continue_on_failure: RwSignal::new(false),
                timeout: RwSignal::new(domain::plan::DEFAULT_WAVE_TIMEOUT_MINUTES.to_string()),
            });
        });
    };
    // Removes an empty wave; the waves after it move up one place.
    let remove_wave = move |i: usize| {
        if placement.get_untracked().iter().any(|(_, at)| *at == i) {
            return;
        }
        waves.update(|ws| {
            if i < ws.len() {
                ws.remove(i);
            }
        });
        placement.update(|pl| pl.iter_mut().filter(|(_, at)| *at > i).for_each(|(_, at)| *at -= 1));
    };
    let busy = save.pending();
    view! {
        <div class="page-head">
            <div>
                <h1 data-testid="plan-name">{move || title.get()}</h1>
                <p class="lead">{move || format!("{} waves · created by {} · {}", waves.get().len(), plan.created_by, when(plan.created_at))}</p>
            </div>
            <IfAllowed permission=Permission::Operate>
                <ConfirmButton label="Delete plan…" question="Delete this plan? Executions already run keep their records." confirm="Delete"
                    on_confirm=Callback::new(move |()| { remove.dispatch(()); })/>
            </IfAllowed>
        </div>
        {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
        {move || saved.get().map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
        <IfAllowed permission=Permission::Operate otherwise="Operators and admins change recovery plans.">
            <form class="form card form-row" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save.dispatch(()); }>
                <label class="field"><span>"Name"</span><input required maxlength="128" bind:value=name/></label>
                <label class="field"><span>"RTO target (minutes)"</span><input inputmode="numeric" bind:value=rto/></label>
                <div class="form-actions"><button class="btn btn-primary" type="submit" disabled=busy>"Save plan"</button></div>
            </form>
        </IfAllowed>
        <Transition fallback=|| view! { <Loading what="the plan's servers"/> }>
            {move || pairs.get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(list) => {
                    let by_id: HashMap<PairId, InstancePair> = list.into_iter().map(|p| (p.id.clone(), p)).collect();
                    // Its own reactive scope, so adding or removing a wave redraws the cards.
                    let cards = move || {
                    let all = waves.get();
                    let count = all.len();
                    all.iter().enumerate().map(|(i, w)| {
                        let w = w.clone();
                        let names = all.clone();
                        let by_id = by_id.clone();
                        view! {
                            <article class="card wave" data-testid="wave">
                                <header class="card-head">
                                    <h2>{format!("Wave {} · ", i + 1)}<input class="inline-name" aria-label=format!("Name of wave {}", i + 1) bind:value=w.name/></h2>
                                    <span class="muted">{move || format!("{} servers", placement.get().iter().filter(|(_, at)| *at == i).count())}</span>
                                    {(count > 1).then(|| view! {
                                        <button class="btn btn-small" type="button" data-testid="remove-wave"
                                            disabled=move || placement.get().iter().any(|(_, at)| *at == i)
                                            title="Move its servers to other waves first"
                                            on:click=move |_| remove_wave(i)>"Remove wave"</button>
                                    })}
                                </header>
                                <div class="field-row">
                                    <label class="radio"><input type="checkbox" bind:checked=w.pause_before/>"Wait for an approver before this wave"</label>
                                    <label class="radio"><input type="checkbox" bind:checked=w.continue_on_failure/>"Go on to the next wave if a server fails"</label>
                                    <label class="field"><span>"Timeout (minutes)"</span><input inputmode="numeric" bind:value=w.timeout/></label>
                                </div>
                                <table class="table table-dense">
                                    <thead><tr><th>"Source server"</th><th>"Standby"</th><th>"Wave"</th></tr></thead>
                                    <tbody>
                                        {move || placement.get().into_iter().filter(|(_, at)| *at == i).map(|(pid, _)| {
                                            let pair = by_id.get(&pid).cloned();
                                            let names = names.clone();
                                            let pid2 = pid.clone();
                                            view! {
                                                <tr data-testid="plan-pair">
                                                    <td class="name" title=pair.as_ref().map(|p| p.source_name.clone())>{pair.as_ref().map_or_else(|| pid.to_string(), |p| p.source_name.clone())}</td>
                                                    <td class="mono">{pair.as_ref().map(|p| p.standby_instance_id.to_string()).unwrap_or_default()}</td>
                                                    <td>
                                                        <select aria-label="Move to wave" on:change=move |ev| {
                                                            let to: usize = event_target_value(&ev).parse().unwrap_or(i);
                                                            placement.update(|pl| { if let Some(e) = pl.iter_mut().find(|(p, _)| *p == pid2) { e.1 = to; } });
                                                        }>
                                                            {names.iter().enumerate().map(|(j, n)| {
                                                                let n = n.name;
                                                                view! { <option value=j.to_string() selected=j == i>{move || format!("{} · {}", j + 1, n.get())}</option> }
                                                            }).collect_view()}
                                                        </select>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </article>
                        }
                    }).collect_view()
                    };
                    view! {
                        {cards}
                        <IfAllowed permission=Permission::Operate>
                            <button class="btn" type="button" data-testid="add-wave" on:click=add_wave>"Add a wave"</button>
                            <span class="muted">" New and emptied waves are refused on save until they hold a server."</span>
                        </IfAllowed>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
