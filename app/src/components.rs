//! Small shared components: status badges, counters, error and empty states.

use crate::api::ConsoleError;
use domain::execution::Phase;
use domain::readiness::Verdict;
use leptos::prelude::*;

/// A status badge. `status` is one of the design system's state names (ready, warning, blocked, running,
/// failed, conflict, unmatched, accepted, neutral).
#[component]
pub fn Badge(#[prop(into)] status: String, #[prop(optional, into)] label: Option<String>) -> impl IntoView {
    let text = label.unwrap_or_else(|| status.clone());
    view! { <span class=format!("badge badge-{status}")>{text}</span> }
}

/// A phase as a badge.
pub fn phase_badge(p: Phase) -> impl IntoView {
    let (tone, label) = match p {
        Phase::AwaitingApproval => ("warning", "awaiting approval"),
        Phase::Running => ("running", "running"),
        Phase::AwaitingGate => ("warning", "waiting at a gate"),
        Phase::CleaningUp => ("running", "returning standbys"),
        Phase::Succeeded => ("ready", "succeeded"),
        Phase::Failed => ("failed", "failed"),
        Phase::Cancelled => ("neutral", "cancelled"),
        Phase::Rejected => ("blocked", "rejected"),
        Phase::Expired => ("neutral", "expired"),
    };
    view! { <Badge status=tone label=label/> }
}

/// Badge tone and label of a readiness verdict.
pub fn verdict_tone(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Ready => ("ready", "ready"),
        Verdict::ReadyWithWarnings => ("warning", "ready with warnings"),
        Verdict::Blocked => ("blocked", "blocked"),
    }
}

/// Badge tone of a finding's severity.
pub fn severity_tone(s: domain::matching::Severity) -> &'static str {
    match s {
        domain::matching::Severity::Critical => "blocked",
        domain::matching::Severity::Warning => "warning",
    }
}

/// A readiness verdict as a badge (`None`: not yet evaluated).
pub fn verdict_badge(v: Option<Verdict>) -> impl IntoView {
    let (tone, label) = v.map_or(("neutral", "not yet checked"), verdict_tone);
    view! { <Badge status=tone label=label/> }
}

/// A duration as `1 h 02 min`, `4 min 05 s` or `12 s`.
pub fn duration(ms: i64) -> String {
    domain::time::format_duration_ms(ms)
}

/// A labelled number.
#[component]
pub fn Stat(
    #[prop(into)] label: String,
    #[prop(into)] value: String,
    #[prop(optional, into)] tone: Option<String>,
) -> impl IntoView {
    view! {
        <div class=format!("stat stat-{}", tone.unwrap_or_else(|| "neutral".into()))>
            <div class="stat-value">{value}</div>
            <div class="stat-label">{label}</div>
        </div>
    }
}

/// An error box with the stable code, the message and any field or pair details.
#[component]
pub fn ErrorBox(error: ConsoleError) -> impl IntoView {
    let fields = error.fields();
    let rejections = error.rejections();
    view! {
        <div class="alert alert-error" role="alert">
            <strong>{error.message.clone()}</strong>
            <code class="error-code">{error.code.clone()}</code>
            <ul class="error-list">
                {fields.into_iter().map(|(f, m)| view! { <li><code>{f}</code>" — "{m}</li> }).collect_view()}
                {rejections.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}
            </ul>
        </div>
    }
}

/// An empty state: what is missing and what to do.
#[component]
pub fn Empty(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <div class="empty">
            <p class="empty-title">{title}</p>
            <div class="empty-body">{children()}</div>
        </div>
    }
}

/// A loading line for suspense fallbacks.
#[component]
pub fn Loading(#[prop(into)] what: String) -> impl IntoView {
    view! { <p class="loading" aria-live="polite"><span class="spinner" aria-hidden="true"></span>{format!("Loading {what}…")}</p> }
}

/// Unix milliseconds (virtual or real) as a UTC date and time.
pub fn when(ms: i64) -> String {
    // Virtual or real Unix milliseconds, shown as UTC date and time without a date library.
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = domain::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// A destructive action behind a question: the button, then the question with confirm and cancel.
#[component]
pub fn ConfirmButton(
    /// The first button, e.g. `Revoke…`.
    #[prop(into)]
    label: String,
    /// What happens, asked before it does.
    #[prop(into)]
    question: String,
    /// The confirming button, e.g. `Revoke`.
    #[prop(into)]
    confirm: String,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    view! {
        <Show when=move || asking.get() fallback=move || {
            let label = label.clone();
            view! { <button class="btn btn-small btn-danger-outline" type="button" on:click=move |_| asking.set(true)>{label}</button> }
        }>
            <span class="confirm">{question.clone()}
                <button class="btn btn-small btn-danger" type="button" on:click=move |_| { asking.set(false); on_confirm.run(()); }>{confirm.clone()}</button>
                <button class="btn btn-small" type="button" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}
