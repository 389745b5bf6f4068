//! Instance matching: which standby each source server of a protection group recovers into, every
//! conflict and unmatched item with its reason, and the actions to accept pairs or set one by hand.
//!
//! The table filters in the browser and renders one page of rows at a time, so it stays responsive at
//! thousands of rows.

use crate::api::{ConsoleError, accept_pairs, delete_pair, list_groups, run_match, set_pair};
use crate::components::{Badge, Empty, ErrorBox, Loading, Stat};
use crate::rows::{Row, RowStatus, build_rows, waves};
use domain::group::{GroupMatch, PairRequest};
use domain::ids::{InstanceId, SourceServerId};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

/// Rows shown per page.
pub const PAGE_SIZE: usize = 50;

fn join_ids<T: std::fmt::Display>(ids: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = ids.map(|i| i.to_string()).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// `/matching?group=<id>`.
#[component]
pub fn Matching() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let group_id = Memo::new(move |_| query.read().get("group").unwrap_or_default());
    let groups = Resource::new(|| (), |_| list_groups());
    let refresh = RwSignal::new(0u32);
    // Outcome messages live here, not in the report's view: an action refreshes the report, which renders
    // a new view, and the message must survive that.
    let message = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<ConsoleError>);
    Effect::new(move |_| {
        group_id.track();
        message.set(None);
        error.set(None);
    });
    let report = Resource::new(
        move || (group_id.get(), refresh.get()),
        |(id, _)| async move { if id.is_empty() { None } else { Some(run_match(id).await) } },
    );
    let on_group = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        navigate(
            &if id.is_empty() { "/matching".to_owned() } else { format!("/matching?group={id}") },
            Default::default(),
        );
    };
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Instance matching"</h1>
                    <p class="lead">"Each source server recovers into the standby whose Name tag matches its own. Nothing is paired until a person accepts it."</p>
                </div>
            </div>
            <div class="toolbar">
                <label for="match-group">"Protection group"</label>
                <Transition fallback=|| view! { <span class="muted">"Loading groups…"</span> }>
                <select id="match-group" on:change=on_group.clone()>
                    <option value="" selected=move || group_id.get().is_empty()>"Choose a protection group…"</option>
                    {move || groups.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|s| {
                        let id = s.group.id.to_string();
                        let selected = id == group_id.get();
                        view! { <option value=id.clone() selected=selected>{format!("{} ({} pairs)", s.group.name, s.pairs)}</option> }
                    }).collect_view()}
                </select>
                </Transition>
                <button type="button" class="btn" on:click=move |_| refresh.update(|n| *n += 1)
                    disabled=move || group_id.get().is_empty()>"Run matching again"</button>
            </div>
            <Transition fallback=|| view! { <Loading what="the match report"/> }>
                {move || report.get().map(|r| match r {
                    None => view! {
                        <Empty title="Choose a protection group">
                            <p>"Matching compares the group's source servers with the standby pool of its DR region. "
                            <a href="/protection-groups/new">"Create a protection group"</a>" if there is none yet."</p>
                        </Empty>
                    }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    Some(Ok(m)) => view! { <MatchView m=m refresh=refresh message=message error=error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn MatchView(
    m: GroupMatch,
    refresh: RwSignal<u32>,
    message: RwSignal<Option<String>>,
    error: RwSignal<Option<ConsoleError>>,
) -> impl IntoView {
    let group = m.group.id.to_string();
    let rows = StoredValue::new(build_rows(&m));
    let wave_list = rows.with_value(|r| waves(r));
    let c = m.report.counts.clone();
    let status = RwSignal::new(String::new());
    let wave = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let page = RwSignal::new(0usize);
    let editing = RwSignal::new(None::<String>);
    let override_to = RwSignal::new(String::new());

    let visible = Memo::new(move |_| {
        let st = RowStatus::ALL.into_iter().find(|s| s.as_str() == status.get());
        let w = wave.get();
        let t = text.get();
        rows.with_value(|rows| {
            rows.iter()
                .enumerate()
                .filter(|(_, r)| r.passes(st, (!w.is_empty()).then_some(w.as_str()), &t))
                .map(|(i, _)| i)
                .collect::<Vec<usize>>()
        })
    });
    let pages = move || visible.with(|v| v.len().div_ceil(PAGE_SIZE).max(1));
    let acceptable: Vec<PairRequest> = rows.with_value(|rows| {
        rows.iter()
            .filter(|r| r.acceptable)
            .filter_map(|r| {
                Some(PairRequest {
                    source_server_id: SourceServerId::parse(r.source_server_id.as_deref()?).ok()?,
                    standby_instance_id: InstanceId::parse(r.standby_instance_id.as_deref()?).ok()?,
                })
            })
            .collect()
    });
    let n_acceptable = acceptable.len();

    let accept = {
        let group = group.clone();
        Action::new(move |pairs: &Vec<PairRequest>| {
            let (group, pairs) = (group.clone(), pairs.clone());
            async move {
                match accept_pairs(group, pairs).await {
                    Ok(o) => {
                        error.set(None);
                        message.set(Some(format!(
                            "Accepted {} pairs ({} already stored).",
                            o.accepted.len(),
                            o.unchanged
                        )));
                        refresh.update(|n| *n += 1);
                    }
                    Err(e) => error.set(Some(e)),
                }
            }
        })
    };
    let set_one = {
        let group = group.clone();
        Action::new(move |(source, standby, version): &(String, String, Option<u64>)| {
            let (group, source, standby, version) = (group.clone(), source.clone(), standby.clone(), *version);
            async move {
                match set_pair(group, source.clone(), standby.clone(), version).await {
                    Ok(p) => {
                        error.set(None);
                        editing.set(None);
                        message.set(Some(format!(
                            "{} now recovers into {} (manual pair).",
                            p.source_name, p.standby_instance_id
                        )));
                        refresh.update(|n| *n += 1);
                    }
                    Err(e) => error.set(Some(e)),
                }
            }
        })
    };
    let remove_one = {
        let group = group.clone();
        Action::new(move |(pair_id, version): &(String, Option<u64>)| {
            let (group, pair_id, version) = (group.clone(), pair_id.clone(), *version);
            async move {
                match delete_pair(group, pair_id, version).await {
                    Ok(()) => {
                        error.set(None);
                        message.set(Some("Pair removed.".into()));
                        refresh.update(|n| *n += 1);
                    }
                    Err(e) => error.set(Some(e)),
                }
            }
        })
    };

    let row_view = move |r: Row| {
        let source = r.source_server_id.clone();
        let edit_key = source.clone().unwrap_or_default();
        let edit_key2 = edit_key.clone();
        let is_editing = move || editing.get().as_deref() == Some(edit_key.as_str());
        let pair_id = r.pair_id.clone();
        let version = r.pair_version;
        view! {
            <tr data-status=r.status.as_str() data-testid="match-row">
                <td><Badge status=r.status.as_str()/></td>
                <td>
                    <div class="name" title=r.source_name.clone()>{r.source_name.clone().unwrap_or_else(|| "—".into())}</div>
                    <div class="mono muted small">{r.source_server_id.clone().unwrap_or_default()}</div>
                </td>
                <td>
                    <div class="name" title=r.standby_name.clone()>{r.standby_name.clone().unwrap_or_else(|| "—".into())}</div>
                    <div class="mono muted small">{r.standby_instance_id.clone().unwrap_or_default()}</div>
                </td>
                <td class="num">{r.wave.clone().unwrap_or_else(|| "—".into())}</td>
                <td>
                    <div>{r.reason.clone()}</div>
                    <div class="mono muted small">{r.codes.join(" ")}</div>
                </td>
                <td class="small">{r.facts.clone()}</td>
                <td class="actions">
                    {source.clone().map(|s| {
                        let s2 = s.clone();
                        view! {
                            <Show when=is_editing.clone() fallback=move || {
                                let s = s.clone();
                                view! { <button type="button" class="btn btn-small" on:click=move |_| { override_to.set(String::new()); editing.set(Some(s.clone())); }>"Override"</button> }
                            }>
                                <form class="inline-form" on:submit={
                                    let s2 = s2.clone();
                                    move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); set_one.dispatch((s2.clone(), override_to.get_untracked(), version)); }
                                }>
                                    <label class="sr-only" for=format!("ov-{edit_key2}")>"Standby instance id"</label>
                                    <input id=format!("ov-{edit_key2}") class="mono" placeholder="i-…" size="20" required=true
                                        prop:value=override_to on:input=move |ev| override_to.set(event_target_value(&ev))/>
                                    <button type="submit" class="btn btn-small btn-primary">"Pair"</button>
                                    <button type="button" class="btn btn-small" on:click=move |_| editing.set(None)>"Cancel"</button>
                                </form>
                            </Show>
                        }
                    })}
                    {pair_id.map(|p| view! {
                        <button type="button" class="btn btn-small btn-danger-outline"
                            on:click=move |_| { remove_one.dispatch((p.clone(), version)); }>"Remove pair"</button>
                    })}
                </td>
            </tr>
        }
    };

    let acceptable = StoredValue::new(acceptable);
    view! {
        <div class="stats">
            <Stat label="source servers" value=c.source_servers.to_string()/>
            <Stat label="standbys" value=c.standbys.to_string()/>
            <Stat label="ready pairs" value=c.ready_pairs.to_string() tone="ready"/>
            <Stat label="pairs with warnings" value=c.pairs_with_warnings.to_string() tone="warning"/>
            <Stat label="blocked pairs" value=c.blocked_pairs.to_string() tone="blocked"/>
            <Stat label="conflicts" value=c.conflicts.to_string() tone="conflict"/>
            <Stat label="unmatched" value=(c.unmatched_sources + c.unmatched_standbys).to_string() tone="unmatched"/>
            <Stat label="accepted" value=m.accepted.len().to_string() tone="accepted"/>
            <Stat label="match rate" value=format!("{:.0}%", c.match_rate * 100.0)/>
        </div>
        {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
        {move || message.get().map(|msg| view! { <div class="alert alert-ok" role="status">{msg}</div> })}
        <div class="toolbar">
            <button type="button" class="btn btn-primary" id="accept-ready"
                disabled=move || n_acceptable == 0 || accept.pending().get()
                on:click=move |_| { accept.dispatch(acceptable.get_value()); }>
                {move || if accept.pending().get() { "Accepting…".to_owned() } else { format!("Accept all ready pairs ({n_acceptable})") }}
            </button>
            <span class="muted">"Only ready pairs not yet accepted are sent. Pairs with warnings, blocked pairs and conflicts need a person."</span>
        </div>
        {(!m.report.conflicts.is_empty()).then(|| view! {
            <section class="panel" aria-labelledby="conflicts-h">
                <h2 id="conflicts-h">{format!("Conflicts ({})", m.report.conflicts.len())}</h2>
                <ul class="conflicts">
                    {m.report.conflicts.iter().map(|cf| view! {
                        <li data-testid="conflict">
                            <Badge status="conflict" label=cf.normalized_name.clone()/>
                            " "{cf.message.clone()}
                            <div class="mono muted small">
                                {format!(
                                    "source servers: {} · standbys: {}",
                                    join_ids(cf.source_server_ids.iter()),
                                    join_ids(cf.standby_instance_ids.iter()),
                                )}
                            </div>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {(!m.report.suggestions.is_empty()).then(|| view! {
            <section class="panel" aria-labelledby="suggestions-h">
                <h2 id="suggestions-h">{format!("Suggestions ({})", m.report.suggestions.len())}</h2>
                <p class="muted">"Near misses by edit distance. Never paired automatically: check the names, then pair by hand."</p>
                <ul class="conflicts">
                    {m.report.suggestions.iter().map(|s| {
                        let (src, sb) = (s.source_server_id.to_string(), s.standby_instance_id.to_string());
                        view! {
                            <li data-testid="suggestion">
                                {format!("{} ↔ {} ({} edit{})", s.source_name, s.standby_name, s.distance, if s.distance == 1 { "" } else { "s" })}
                                " "
                                <button type="button" class="btn btn-small" on:click=move |_| { set_one.dispatch((src.clone(), sb.clone(), None)); }>"Pair these"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        })}
        <div class="filters" role="search">
            <div class="field">
                <label for="f-status">"Status"</label>
                <select id="f-status" on:change=move |ev| { status.set(event_target_value(&ev)); page.set(0); }>
                    <option value="">"All"</option>
                    {RowStatus::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="f-wave">"Wave"</label>
                <select id="f-wave" on:change=move |ev| { wave.set(event_target_value(&ev)); page.set(0); }>
                    <option value="">"All"</option>
                    {wave_list.into_iter().map(|w| view! { <option value=w.clone()>{w.clone()}</option> }).collect_view()}
                </select>
            </div>
            <div class="field grow">
                <label for="f-text">"Search names and ids"</label>
                <input id="f-text" type="search" placeholder="web-01, i-0…, s-0…" prop:value=text
                    on:input=move |ev| { text.set(event_target_value(&ev)); page.set(0); }/>
            </div>
        </div>
        <p class="muted" aria-live="polite" id="row-count">
            {move || {
                let n = visible.with(Vec::len);
                let start = (page.get() * PAGE_SIZE).min(n);
                let end = (start + PAGE_SIZE).min(n);
                format!("Showing {}–{} of {n} rows", if n == 0 { 0 } else { start + 1 }, end)
            }}
        </p>
        <div class="table-wrap">
            <table class="table">
                <thead><tr>
                    <th scope="col">"Status"</th><th scope="col">"Source server"</th><th scope="col">"Standby"</th>
                    <th scope="col" class="num">"Wave"</th><th scope="col">"Reason"</th><th scope="col">"Standby facts"</th>
                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {move || {
                        let start = page.get() * PAGE_SIZE;
                        let idx: Vec<usize> = visible.with(|v| v.iter().skip(start).take(PAGE_SIZE).copied().collect());
                        rows.with_value(|rows| idx.into_iter().map(|i| row_view(rows[i].clone())).collect_view())
                    }}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Pages">
            <button type="button" class="btn btn-small" disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"← Previous"</button>
            <span>{move || format!("Page {} of {}", page.get() + 1, pages())}</span>
            <button type="button" class="btn btn-small" disabled=move || { page.get() + 1 >= pages() } on:click=move |_| page.update(|p| *p += 1)>"Next →"</button>
        </nav>
    }
}
