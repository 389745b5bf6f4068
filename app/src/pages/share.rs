//! Share links for stakeholders: `/share-links` to manage them, and `/status/{token}`, the page a link
//! opens without sign-in (application names, verdicts, times and the operator's message; nothing else).

use crate::api::ConsoleError;
use crate::api_security::{
    create_share_link, get_stakeholder_status, list_share_links, revoke_share_link, update_share_link,
};
use crate::components::{Badge, ConfirmButton, Empty, ErrorBox, Loading, duration, phase_badge, verdict_badge, when};
use crate::pages::signin::IfAllowed;
use domain::auth::{MAX_MESSAGE_CHARS, Permission};
use domain::share::{CreatedShareLink, NewShareLink, ShareLinkChange, ShareLinkView, ShareScope};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// One share link with its message editor and revoke button.
#[component]
fn LinkRow(link: ShareLinkView, refresh: Callback<()>, error: RwSignal<Option<ConsoleError>>) -> impl IntoView {
    let message = RwSignal::new(link.message.clone());
    let id = link.id.clone();
    let version = link.version;
    let save = Action::new(move |(id, m): &(String, String)| {
        let change = ShareLinkChange { message: m.clone(), expected_version: Some(version) };
        let id = id.clone();
        async move {
            match update_share_link(id, change).await {
                Ok(_) => {
                    error.set(None);
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let revoke = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match revoke_share_link(id).await {
                Ok(_) => {
                    error.set(None);
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let live = link.revoked_at.is_none();
    let (id1, id2) = (id.clone(), id.clone());
    view! {
        <tr data-testid="share-link-row">
            <td>{link.name.clone()}</td>
            <td>{match &link.scope { ShareScope::Estate => "estate readiness".to_owned(), ShareScope::Execution { execution_id } => format!("execution {execution_id}") }}</td>
            <td>
                {if live {
                    view! {
                        <form class="inline-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save.dispatch((id1.clone(), message.get_untracked())); }>
                            <input bind:value=message maxlength=MAX_MESSAGE_CHARS.to_string() aria-label="Message for stakeholders"/>
                            <button class="btn btn-small" type="submit">"Save"</button>
                        </form>
                    }.into_any()
                } else { view! { <span class="muted">{link.message.clone()}</span> }.into_any() }}
            </td>
            <td class="muted">{when(link.created_at)}" by "{link.created_by.clone()}</td>
            <td class="muted">{link.expires_at.map_or_else(|| "never".to_owned(), when)}</td>
            <td>{if live { view! { <Badge status="ready" label="active"/> } } else { view! { <Badge status="blocked" label="revoked"/> } }}</td>
            <td class="actions">
                {live.then(|| view! {
                    <ConfirmButton label="Revoke…" question="Revoke? The link stops working at once." confirm="Revoke"
                        on_confirm=Callback::new(move |()| { revoke.dispatch(id2.clone()); })/>
                })}
            </td>
        </tr>
    }
}

/// `/share-links`.
#[component]
pub fn ShareLinks() -> impl IntoView {
    let links = Resource::new(|| (), |_| list_share_links());
    let refresh = Callback::new(move |()| links.refetch());
    let error = RwSignal::new(None::<ConsoleError>);
    let fresh = RwSignal::new(None::<CreatedShareLink>);
    let name = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let hours = RwSignal::new("72".to_owned());
    let create = Action::new(move |input: &NewShareLink| {
        let input = input.clone();
        async move {
            match create_share_link(input).await {
                Ok(l) => {
                    error.set(None);
                    fresh.set(Some(l));
                    name.set(String::new());
                    links.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        fresh.set(None);
        let h = hours.get_untracked();
        let expires_in_hours = if h.trim().is_empty() { None } else { h.trim().parse().ok().or(Some(0)) };
        create.dispatch(NewShareLink {
            name: name.get_untracked(),
            scope: ShareScope::Estate,
            message: message.get_untracked(),
            expires_in_hours,
        });
    };
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Share links"</h1>
                    <p class="lead">"A link lets stakeholders follow readiness without an account. It shows application names, verdicts and your message — never instance IDs, IPs, account numbers or user names."</p>
                </div>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || fresh.get().map(|l| view! {
                <div class="alert alert-success secret-once" role="status" data-testid="new-share-link">
                    <p><strong>{format!("Link “{}” created.", l.details.name)}</strong>" Copy it now: it is never shown again."</p>
                    <a class="secret" href=l.path.clone() target="_blank" rel="noopener noreferrer" data-testid="share-link-url">{l.path.clone()}</a>
                </div>
            })}
            <IfAllowed permission=Permission::Operate otherwise="Operators and admins create share links.">
                <form class="form card form-row" on:submit=on_submit data-testid="new-share-link-form">
                    <h2>"New link to the estate's readiness"</h2>
                    <label class="field"><span>"Name (the page title)"</span><input required maxlength="80" bind:value=name placeholder="Incident bridge"/></label>
                    <label class="field"><span>"Message for stakeholders"</span><input maxlength=MAX_MESSAGE_CHARS.to_string() bind:value=message placeholder="DR test in progress"/></label>
                    <label class="field"><span>"Expires in (hours, empty = never)"</span><input inputmode="numeric" bind:value=hours/></label>
                    <div class="form-actions"><button class="btn btn-primary" type="submit">"Create link"</button></div>
                </form>
            </IfAllowed>
            <Transition fallback=|| view! { <Loading what="share links"/> }>
                {move || links.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty title="No share links">"Create one to give stakeholders a read-only status page."</Empty> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="share-links-table">
                            <thead><tr><th>"Name"</th><th>"Shows"</th><th>"Message"</th><th>"Created"</th><th>"Expires"</th><th>"Status"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|l| view! { <LinkRow link=l refresh error/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// `/status/{token}`: the stakeholder page. It refreshes itself every 15 seconds.
#[component]
pub fn Status() -> impl IntoView {
    let params = use_params_map();
    let status = Resource::new(move || params.with(|p| p.get("token").unwrap_or_default()), get_stakeholder_status);
    #[cfg(feature = "hydrate")]
    if let Ok(h) = set_interval_with_handle(move || status.refetch(), std::time::Duration::from_secs(15)) {
        on_cleanup(move || h.clear());
    }
    view! {
        <section class="page page-status">
            <Transition fallback=|| view! { <Loading what="status"/> }>
                {move || status.get().map(|r| match r {
                    Err(_) => view! {
                        <h1>"This link does not work"</h1>
                        <p class="lead">"It may have been revoked or have expired. Ask the team running the recovery for a new one."</p>
                    }.into_any(),
                    Ok(s) => view! {
                        <h1 data-testid="status-title">{s.title.clone()}</h1>
                        {(!s.message.is_empty()).then(|| view! { <p class="status-message" data-testid="status-message">{s.message.clone()}</p> })}
                        <p class="muted">"Updated "{when(s.generated_at)}{s.expires_at.map(|e| format!(" · link valid until {}", when(e)))}</p>
                        {match s.execution {
                            Some(x) => view! { <ExecutionStatus x/> }.into_any(),
                            None if s.applications.is_empty() => view! { <Empty title="Nothing to report yet">"No application is protected yet."</Empty> }.into_any(),
                            None => view! {
                                <ul class="status-list" data-testid="status-list">
                                    {s.applications.into_iter().map(|a| view! {
                                        <li class="status-item">
                                            <span class="status-name">{a.name.clone()}</span>
                                            {verdict_badge(a.verdict)}
                                            <span class="muted">{a.since.map(|t| format!("since {}", when(t))).unwrap_or_default()}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                        }}
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One execution for stakeholders: phase, progress, times and waves; nothing that names a server.
#[component]
fn ExecutionStatus(x: domain::share::ExecutionProgress) -> impl IntoView {
    let kind = match (x.drill, x.failback) {
        (true, _) => "DR drill",
        (_, true) => "Failback",
        _ => "Failover",
    };
    view! {
        <div class="card" data-testid="status-execution">
            <h2>{format!("{kind}: {}", x.plan)}" "{phase_badge(x.phase)}</h2>
            <div class="progress-wrap">
                <progress max="100" value=x.progress_percent.to_string()></progress>
                <span>{format!("{}%", x.progress_percent)}</span>
            </div>
            <p>
                {x.elapsed_ms.map(|e| format!("Elapsed {}", duration(e)))}
                {match x.remaining_ms {
                    Some(r) if !x.phase.is_terminal() => format!(" · about {} to go", duration(r)),
                    _ if domain::execution::estimating(x.phase, x.elapsed_ms, x.remaining_ms) => " · estimating the time left".to_owned(),
                    _ => String::new(),
                }}
                {format!(" · target {}", duration(x.rto_target_ms))}
                {x.rto_ms.map(|r| format!(" · recovered in {}", duration(r)))}
            </p>
            <ul class="status-list">
                {x.waves.into_iter().map(|w| view! {
                    <li class="status-item">
                        <span class="status-name">{w.name.clone()}</span>
                        <progress max=w.servers.to_string() value=(w.verified + w.failed).to_string()></progress>
                        <span class="muted">{format!("{} of {} up{}", w.verified, w.servers, if w.failed > 0 { format!(", {} failed", w.failed) } else { String::new() })}</span>
                    </li>
                }).collect_view()}
            </ul>
        </div>
    }
}

/// Creates a share link to one execution's status page and shows it once.
#[component]
pub fn ShareExecution(execution_id: String, name: String) -> impl IntoView {
    let fresh = RwSignal::new(None::<CreatedShareLink>);
    let error = RwSignal::new(None::<ConsoleError>);
    let create = Action::new(move |(id, name): &(String, String)| {
        let input = NewShareLink {
            name: name.chars().take(domain::auth::MAX_LABEL_CHARS).collect(),
            scope: ShareScope::Execution { execution_id: id.clone() },
            message: String::new(),
            expires_in_hours: Some(72),
        };
        async move {
            match create_share_link(input).await {
                Ok(l) => fresh.set(Some(l)),
                Err(e) => error.set(Some(e)),
            }
        }
    });
    view! {
        <IfAllowed permission=Permission::Operate>
            {
                let (id, name) = (execution_id.clone(), name.clone());
                view! {
                    <button class="btn btn-small" type="button" data-testid="share-execution" on:click=move |_| { create.dispatch((id.clone(), name.clone())); }>"Share status page…"</button>
                }
            }
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || fresh.get().map(|l| view! {
                <div class="alert alert-success secret-once" role="status">
                    <p>"Stakeholders can follow this execution without signing in (valid 72 hours; revoke it on Share links). Copy it now: it is never shown again."</p>
                    <a class="secret" href=l.path.clone() target="_blank" rel="noopener noreferrer" data-testid="execution-share-url">{l.path.clone()}</a>
                </div>
            })}
        </IfAllowed>
    }
}
