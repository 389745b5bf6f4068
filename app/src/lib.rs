#![recursion_limit = "512"]
//! The Roundtrip console: Leptos pages and components, rendered on the server and hydrated in the browser.
//!
//! Pages call the server functions of [`api`], which call the engine's services; nothing here talks to a
//! cloud or a store directly. Every string from the estate is rendered as text (escaped by Leptos).

pub mod access;
pub mod api;
pub mod api_security;
pub mod components;
pub mod pages;
pub mod rows;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The top bar: brand, navigation and the user menu; only the brand on the sign-in and stakeholder pages.
#[component]
fn TopBar() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let bare = move || {
        let p = location.pathname.get();
        p == "/login" || p.starts_with("/status/")
    };
    let admin = pages::signin::can(domain::auth::Permission::Administer);
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true">"⟲"</span>
                " Roundtrip"
            </A>
            <Show when=move || !bare()>
                <nav class="nav" aria-label="Main">
                    <A href="/" exact=true>"Estate"</A>
                    <A href="/protection-groups">"Protection groups"</A>
                    <A href="/matching">"Instance matching"</A>
                    <A href="/recovery-plans">"Recovery plans"</A>
                    <A href="/executions">"Failover"</A>
                    <A href="/approvals">"Approvals"</A>
                    <A href="/reports">"Drill history"</A>
                    <A href="/notifications">"Notifications"</A>
                    <A href="/audit">"Audit"</A>
                    <A href="/share-links">"Share links"</A>
                    <Transition fallback=|| ()>
                        <Show when=admin><A href="/admin/users">"Users"</A></Show>
                    </Transition>
                </nav>
                <span class="estate-chip" title="This console runs against the simulated estate unless configured for AWS">
                    "simulated estate"
                </span>
                <pages::signin::UserMenu/>
            </Show>
        </header>
    }
}

/// The console.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    pages::signin::provide_me();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/webapp.css"/>
        <Title text="Roundtrip"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <div class="shell">
                <TopBar/>
                <main id="main" class="content">
                    <Routes fallback=|| view! { <pages::NotFound/> }>
                        <Route path=path!("/") view=pages::overview::Overview/>
                        <Route path=path!("/protection-groups") view=pages::groups::GroupList/>
                        <Route path=path!("/protection-groups/new") view=pages::groups::GroupNew/>
                        <Route path=path!("/protection-groups/:id") view=pages::groups::GroupEdit/>
                        <Route path=path!("/protection-groups/:id/configuration") view=pages::configure::Configuration/>
                        <Route path=path!("/matching") view=pages::matching::Matching/>
                        <Route path=path!("/recovery-plans") view=pages::plans::Plans/>
                        <Route path=path!("/recovery-plans/:id") view=pages::plans::PlanEdit/>
                        <Route path=path!("/executions") view=pages::executions::Executions/>
                        <Route path=path!("/executions/:id") view=pages::executions::ExecutionDashboard/>
                        <Route path=path!("/approvals") view=pages::executions::Approvals/>
                        <Route path=path!("/login") view=pages::signin::Login/>
                        <Route path=path!("/account") view=pages::signin::Account/>
                        <Route path=path!("/status/:token") view=pages::share::Status/>
                        <Route path=path!("/share-links") view=pages::share::ShareLinks/>
                        <Route path=path!("/audit") view=pages::audit::Audit/>
                        <Route path=path!("/admin/users") view=pages::admin::Users/>
                        <Route path=path!("/admin/tokens") view=pages::admin::Tokens/>
                        <Route path=path!("/admin/cloud") view=pages::admin::CloudAccess/>
                        <Route path=path!("/notifications") view=pages::notify::Notifications/>
                        <Route path=path!("/reports") view=pages::reports::DrillHistory/>
                    </Routes>
                </main>
                <footer class="footer">
                    <span>"Roundtrip · disaster recovery into the instances you prepared"</span>
                    <span id="hydrated" data-hydrated=move || hydrated.get().to_string()></span>
                </footer>
            </div>
        </Router>
    }
}
