//! The console's pages.

pub mod admin;
pub mod audit;
pub mod configure;
pub mod executions;
pub mod groups;
pub mod matching;
pub mod notify;
pub mod overview;
pub mod plans;
pub mod readiness;
pub mod reports;
pub mod share;
pub mod signin;

use leptos::prelude::*;

/// Any path the console does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="page">
            <h1>"Page not found"</h1>
            <p>"Nothing lives at this address. "<a href="/">"Go to the estate overview"</a>"."</p>
        </section>
    }
}
