//! The estate overview: accounts, regions, source servers by replication state, standbys by state.

use crate::api::{get_overview, verdicts};
use crate::components::{Badge, ErrorBox, Loading, when};
use domain::estate::EstateSlice;
use leptos::prelude::*;

fn replication_tone(state: &str) -> &'static str {
    match state {
        "CONTINUOUS" => "ready",
        "STALLED" | "DISCONNECTED" => "failed",
        "PAUSED" | "STOPPED" => "warning",
        _ => "running",
    }
}

fn standby_tone(state: &str) -> &'static str {
    match state {
        "stopped" => "ready",
        "running" | "pending" => "blocked",
        _ => "warning",
    }
}

#[component]
fn SliceCard(slice: EstateSlice) -> impl IntoView {
    let sources: usize = slice.source_servers_by_state.values().sum();
    let standbys: usize = slice.standbys_by_state.values().sum();
    view! {
        <article class="card" data-testid="estate-slice">
            <header class="card-head">
                <h3>{slice.account_name.clone()}" · "<span class="mono">{slice.region.clone()}</span></h3>
                <span class="muted mono">{slice.account_id.clone()}</span>
            </header>
            <dl class="facts">
                <dt>"EC2 instances"</dt><dd>{slice.instances}</dd>
                <dt>"DRS source servers"</dt><dd>{sources}</dd>
                <dt>"Standbys"</dt><dd>{standbys}</dd>
            </dl>
            {(!slice.unreachable.is_empty()).then(|| view! {
                <div class="alert alert-warning" role="status" data-testid="slice-unreachable">
                    <p><strong>"Not everything could be read here; the counts leave it out."</strong></p>
                    <ul>{slice.unreachable.iter().map(|u| view! { <li>{u.clone()}</li> }).collect_view()}</ul>
                </div>
            })}
            {(!slice.source_servers_by_state.is_empty()).then(|| view! {
                <p class="card-sub">"Replication"</p>
                <div class="badges">
                    {slice.source_servers_by_state.iter().map(|(state, n)| view! {
                        <Badge status=replication_tone(state) label=format!("{state} {n}")/>
                    }).collect_view()}
                </div>
            })}
            {(!slice.standbys_by_state.is_empty()).then(|| view! {
                <p class="card-sub">"Standby pool"</p>
                <div class="badges">
                    {slice.standbys_by_state.iter().map(|(state, n)| view! {
                        <Badge status=standby_tone(state) label=format!("{state} {n}")/>
                    }).collect_view()}
                </div>
            })}
        </article>
    }
}

/// `/`.
#[component]
pub fn Overview() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    let groups = Resource::new(|| (), |_| verdicts());
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Estate"</h1>
                    <p class="lead">"What Roundtrip sees: accounts and regions, replication health and the standby pool."</p>
                </div>
                <a class="btn btn-primary" href="/protection-groups/new">"New protection group"</a>
            </div>
            <Transition fallback=|| view! { <Loading what="readiness"/> }>
                {move || groups.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">"No protection group has a readiness verdict yet. "<a href="/protection-groups/new">"Create a group"</a>" and pair its servers."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <section class="panel" aria-labelledby="verdicts-h">
                            <h2 id="verdicts-h">"Readiness by protection group"</h2>
                            <ul class="history" data-testid="verdicts">
                                {list.into_iter().map(|v| {
                                    let (tone, label) = crate::components::verdict_tone(v.verdict);
                                    let because = v.because.iter().map(|(id, n)| format!("{id} ×{n}")).collect::<Vec<_>>().join(", ");
                                    view! {
                                        <li>
                                            <Badge status=tone label=label/>" "
                                            <a href=format!("/protection-groups/{}", v.protection_group_id)>{v.name}</a>
                                            {format!(" · score {} · since {}{}", v.score, when(v.since), if because.is_empty() { String::new() } else { format!(" · {because}") })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                })}
            </Transition>
            <Transition fallback=|| view! { <Loading what="the estate"/> }>
                {move || overview.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(o) => {
                        let (busy, empty): (Vec<EstateSlice>, Vec<EstateSlice>) =
                            o.slices.into_iter().partition(|s| s.instances > 0 || !s.source_servers_by_state.is_empty());
                        let quiet: Vec<String> =
                            empty.iter().map(|s| format!("{} ({}) · {}", s.account_name, s.account_id, s.region)).collect();
                        view! {
                        <p class="muted">{format!("{} estate — {}", o.cloud, o.description)}</p>
                        <div class="grid">
                            {busy.into_iter().map(|s| view! { <SliceCard slice=s/> }).collect_view()}
                        </div>
                        {(!quiet.is_empty()).then(|| view! {
                            <p class="muted small">"Reachable with nothing in them: "{quiet.join(", ")}</p>
                        })}
                    }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
