//! `/approvals`: what waits for a second person — requested recoveries and waves at a gate — with the
//! form to approve, reject or release.

use super::what;
use crate::api::{ConsoleError, decide_execution, list_executions};
use crate::components::{Empty, ErrorBox, Loading, when};
use crate::pages::signin::IfAllowed;
use domain::auth::Permission;
use domain::execution::{Decision, ExecutionSummary, Phase};
use leptos::prelude::*;

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
pub(super) fn ApprovalCard(e: ExecutionSummary, refresh: Callback<()>) -> impl IntoView {
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
pub(super) fn DecisionForm(id: String, gate: bool, on_done: Callback<()>) -> impl IntoView {
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
