//! `/audit`: the audit trail with filters, export links and a chain verification.

use crate::api::ConsoleError;
use crate::api_security::{audit_query, audit_verify};
use crate::components::{Badge, Empty, ErrorBox, Loading, when};
use domain::audit::{AuditFilter, ChainReport, Outcome};
use leptos::prelude::*;

fn outcome_badge(o: Outcome) -> impl IntoView {
    match o {
        Outcome::Ok => view! { <Badge status="ready" label="ok"/> },
        Outcome::Failed => view! { <Badge status="failed" label="failed"/> },
        Outcome::Refused => view! { <Badge status="warning" label="refused"/> },
    }
}

fn query_string(f: &AuditFilter) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    [("actor", &f.actor), ("action", &f.action), ("target", &f.target)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| format!("&{k}={}", enc(v))))
        .collect()
}

/// `/audit`.
#[component]
pub fn Audit() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let target = RwSignal::new(String::new());
    let filter = RwSignal::new(AuditFilter { limit: Some(500), ..Default::default() });
    let entries = Resource::new(move || filter.get(), audit_query);
    let report = RwSignal::new(None::<Result<ChainReport, ConsoleError>>);
    let verify = Action::new(move |_: &()| async move { report.set(Some(audit_verify().await)) });
    let busy = verify.pending();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let opt = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        filter.set(AuditFilter {
            actor: opt(actor.get_untracked()),
            action: opt(action.get_untracked()),
            target: opt(target.get_untracked()),
            limit: Some(500),
            ..Default::default()
        });
    };
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Audit trail"</h1>
                    <p class="lead">"Every change and every AWS write Roundtrip made, who made it and when. Each entry is chained to the one before by its hash, so an edited or removed entry shows."</p>
                </div>
                <button class="btn" type="button" disabled=busy on:click=move |_| { verify.dispatch(()); } data-testid="verify-chain">"Verify chain"</button>
            </div>
            {move || report.get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(r) if r.intact => view! {
                    <div class="alert alert-success" role="status" data-testid="chain-ok">
                        {format!("Chain intact: {} entries, last {} ", r.entries, r.head_seq)}<code class="mono">{r.head_hash.chars().take(16).collect::<String>()}"…"</code>
                    </div>
                }.into_any(),
                Ok(r) => view! {
                    <div class="alert alert-error" role="alert" data-testid="chain-broken">
                        <strong>{format!("Chain broken at {} place(s).", r.problems.len())}</strong>
                        <ul>{r.problems.into_iter().map(|p| view! { <li>{format!("Entry {}: {}", p.seq, p.problem)}</li> }).collect_view()}</ul>
                    </div>
                }.into_any(),
            })}
            <form class="form card form-row" on:submit=on_submit>
                <label class="field"><span>"Actor (user)"</span><input bind:value=actor placeholder="alice"/></label>
                <label class="field"><span>"Action starts with"</span><input bind:value=action placeholder="protection_group. or aws."/></label>
                <label class="field"><span>"Target contains"</span><input bind:value=target placeholder="pg-… or s-…"/></label>
                <div class="form-actions">
                    <button class="btn btn-primary" type="submit">"Filter"</button>
                    <a class="btn" href=move || format!("/api/v1/audit?format=csv&limit=10000{}", query_string(&filter.get())) download>"Export CSV"</a>
                    <a class="btn" href=move || format!("/api/v1/audit?format=jsonl&limit=10000{}", query_string(&filter.get())) download>"Export JSON lines"</a>
                </div>
            </form>
            <Transition fallback=|| view! { <Loading what="the audit trail"/> }>
                {move || entries.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty title="No entries match">"Change the filters, or make a change: it will appear here."</Empty> }.into_any(),
                    Ok(list) => view! {
                        <p class="muted">{format!("{} entries, newest first (at most 500 shown; export for more).", list.len())}</p>
                        <table class="table table-dense" data-testid="audit-table">
                            <thead><tr><th>"#"</th><th>"When (UTC)"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Details"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|e| view! {
                                    <tr>
                                        <td class="mono">{e.seq}</td>
                                        <td class="muted">{when(e.at)}</td>
                                        <td>{e.actor.clone()}</td>
                                        <td class="mono">{e.action.clone()}</td>
                                        <td class="mono clip" title=e.target.clone()>{e.target.clone()}</td>
                                        <td>{outcome_badge(e.outcome)}</td>
                                        <td>
                                            <details>
                                                <summary>"show"</summary>
                                                <pre class="json">{serde_json::to_string_pretty(&e.details).unwrap_or_default()}</pre>
                                                <p class="muted mono">"hash "{e.hash.chars().take(16).collect::<String>()}"…"</p>
                                            </details>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
