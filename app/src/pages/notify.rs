//! `/notifications`: the webhooks notices go to, how their deliveries are going (failures first), and —
//! for admins — registering, testing and deleting them.

use crate::api::ConsoleError;
use crate::components::{Badge, ConfirmButton, Empty, ErrorBox, Loading, when};
use crate::pages::signin::IfAllowed;
use domain::auth::Permission;
use domain::notify::{NoticeKind, WebhookFormat, WebhookInput, WebhookView};
use leptos::prelude::*;

/// One webhook: where it posts (host only), what, and its deliveries with the recent failures.
#[component]
fn WebhookCard(hook: WebhookView, refresh: Callback<()>, error: RwSignal<Option<ConsoleError>>) -> impl IntoView {
    let id = hook.id.clone();
    let remove = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match crate::api::delete_webhook(id).await {
                Ok(()) => {
                    error.set(None);
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let tested = RwSignal::new(false);
    let test = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match crate::api::test_webhook(id).await {
                Ok(()) => {
                    error.set(None);
                    tested.set(true);
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let st = hook.status.clone();
    let events = if hook.events.is_empty() {
        "every notice".to_owned()
    } else {
        hook.events.iter().map(|k| k.label()).collect::<Vec<_>>().join(", ")
    };
    let health = if st.failing() {
        view! { <Badge status="failed" label="failing"/> }.into_any()
    } else if st.delivered > 0 {
        view! { <Badge status="ready" label="delivering"/> }.into_any()
    } else {
        view! { <Badge status="neutral" label="nothing sent yet"/> }.into_any()
    };
    let failures = st.recent_failures.clone();
    view! {
        <article class="card" data-testid="webhook">
            <div class="card-head">
                <div>
                    <h2>{hook.name.clone()}" "{health}</h2>
                    <p class="muted">
                        <span class="mono">{hook.target.clone()}</span>
                        {format!(" · {} · {} · {}", match hook.format { WebhookFormat::Generic => "generic JSON", WebhookFormat::Slack => "Slack message" },
                            events, if hook.signed { "signed" } else { "unsigned" })}
                    </p>
                    <p class="muted">{format!("Added by {} on {}", hook.created_by, when(hook.created_at))}</p>
                </div>
                <IfAllowed permission=Permission::Administer>
                    <div class="actions">
                        <button class="btn btn-small" type="button" data-testid="test-webhook"
                            on:click={ let id = id.clone(); move |_| { tested.set(false); test.dispatch(id.clone()); } }>"Send test"</button>
                        <ConfirmButton label="Delete…" question=format!("Stop sending notices to {}?", hook.name) confirm="Delete"
                            on_confirm=Callback::new({ let id = id.clone(); move |()| { remove.dispatch(id.clone()); } })/>
                    </div>
                </IfAllowed>
            </div>
            {move || tested.get().then(|| view! { <p class="alert alert-success" role="status">"Test notice queued; reload to see how it went."</p> })}
            <p data-testid="webhook-counts">
                {format!("{} delivered · {} failed attempts · {} not delivered", st.delivered, st.failed_attempts, st.undelivered)}
                {st.last_delivered_at.map(|t| format!(" · last delivery {}", when(t)))}
            </p>
            {(!failures.is_empty()).then(|| view! {
                <table class="table table-dense" data-testid="webhook-failures">
                    <thead><tr><th>"When"</th><th>"Notice"</th><th class="num">"Attempt"</th><th>"Error"</th><th></th></tr></thead>
                    <tbody>
                        {failures.into_iter().map(|f| view! {
                            <tr>
                                <td class="nowrap">{when(f.at)}</td>
                                <td>{f.notice_kind.label()}<br/><span class="mono muted">{f.notice_id}</span></td>
                                <td class="num">{f.attempt}</td>
                                <td>{f.error}</td>
                                <td>{if f.gave_up { view! { <Badge status="failed" label="gave up"/> }.into_any() } else { view! { <Badge status="warning" label="retrying"/> }.into_any() }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </article>
    }
}

/// The form admins register a webhook with.
#[component]
fn NewWebhook(refresh: Callback<()>, error: RwSignal<Option<ConsoleError>>) -> impl IntoView {
    let (name, url, secret) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let slack = RwSignal::new(false);
    let chosen = RwSignal::new(Vec::<NoticeKind>::new());
    let saved = RwSignal::new(None::<String>);
    let save = Action::new(move |input: &WebhookInput| {
        let input = input.clone();
        async move {
            match crate::api::create_webhook(input).await {
                Ok(w) => {
                    error.set(None);
                    saved.set(Some(format!("Webhook {} saved. Its URL and secret will not be shown again.", w.name)));
                    url.set(String::new());
                    secret.set(String::new());
                    name.set(String::new());
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(None);
        let secret = secret.get_untracked();
        save.dispatch(WebhookInput {
            name: name.get_untracked(),
            url: url.get_untracked(),
            format: if slack.get_untracked() { WebhookFormat::Slack } else { WebhookFormat::Generic },
            events: chosen.get_untracked(),
            secret: (!secret.is_empty()).then_some(secret),
        });
    };
    view! {
        {move || saved.get().map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
        <form class="form card" on:submit=on_submit data-testid="new-webhook-form">
            <h2>"Add a webhook"</h2>
            <label class="field"><span>"Name"</span><input required maxlength="64" bind:value=name placeholder="on-call channel"/></label>
            <label class="field"><span>"URL (stored, never shown again)"</span><input required type="url" maxlength="2048" autocomplete="off" bind:value=url placeholder="https://hooks.slack.com/services/…"/></label>
            <label class="field-inline"><input type="checkbox" bind:checked=slack/>" Slack-compatible message (otherwise generic JSON)"</label>
            <fieldset class="field">
                <legend>"Notices (none ticked: every notice)"</legend>
                {NoticeKind::ALL.into_iter().map(|k| view! {
                    <label class="field-inline">
                        <input type="checkbox" prop:checked=move || chosen.get().contains(&k)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                chosen.update(|c| { c.retain(|x| *x != k); if on { c.push(k); } });
                            }/>
                        " "{k.label()}
                    </label>
                }).collect_view()}
            </fieldset>
            <label class="field"><span>"Signing secret (optional, 16+ characters; signs each body with HMAC-SHA256)"</span>
                <input type="password" autocomplete="off" maxlength="256" bind:value=secret/></label>
            <div class="form-actions"><button class="btn btn-primary" type="submit">"Save webhook"</button></div>
        </form>
    }
}

/// `/notifications`.
#[component]
pub fn Notifications() -> impl IntoView {
    let hooks = Resource::new(|| (), |_| crate::api::list_webhooks());
    let error = RwSignal::new(None::<ConsoleError>);
    let refresh = Callback::new(move |()| hooks.refetch());
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Notifications"</h1>
                    <p class="lead">
                        "Webhooks receive a notice when an execution is requested, awaits approval, starts or finishes a wave, \
                         loses a server or an identity check, and ends, and when a group's readiness turns blocked. \
                         Each delivery is retried with backoff; failures show here."
                    </p>
                </div>
                <button class="btn" type="button" on:click=move |_| hooks.refetch()>"Reload"</button>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            <Transition fallback=|| view! { <Loading what="webhooks"/> }>
                {move || hooks.get().map(|h| match h {
                    Ok(h) if h.is_empty() => view! {
                        <Empty title="No webhooks yet">"Add one to get notices in chat or your on-call tool."</Empty>
                    }.into_any(),
                    Ok(h) => {
                        let failing = h.iter().filter(|w| w.status.failing()).count();
                        view! {
                            {(failing > 0).then(|| view! {
                                <div class="alert alert-error" role="alert" data-testid="webhooks-failing">
                                    {format!("{failing} webhook(s) failing: see the failures below.")}
                                </div>
                            })}
                            <div class="stack">
                                {h.into_iter().map(|w| view! { <WebhookCard hook=w refresh=refresh error=error/> }).collect_view()}
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                })}
            </Transition>
            <IfAllowed permission=Permission::Administer otherwise="Admins add and delete webhooks.">
                <NewWebhook refresh=refresh error=error/>
            </IfAllowed>
        </section>
    }
}
