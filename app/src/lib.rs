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

/// The console.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/webapp.css"/>
        <Title text="Roundtrip"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <div class="shell">
                <header class="topbar">
                    <A href="/" attr:class="brand">
                        <span class="brand-mark" aria-hidden="true">"⟲"</span>
                        " Roundtrip"
                    </A>
                    <nav class="nav" aria-label="Main">
                        <A href="/" exact=true>"Estate"</A>
                        <A href="/protection-groups">"Protection groups"</A>
                        <A href="/matching">"Instance matching"</A>
                    </nav>
                    <span class="estate-chip" title="This console runs against the simulated estate unless configured for AWS">
                        "simulated estate"
                    </span>
                </header>
                <main id="main" class="content">
                    <Routes fallback=|| view! { <pages::NotFound/> }>
                        <Route path=path!("/") view=pages::overview::Overview/>
                        <Route path=path!("/protection-groups") view=pages::groups::GroupList/>
                        <Route path=path!("/protection-groups/new") view=pages::groups::GroupNew/>
                        <Route path=path!("/protection-groups/:id") view=pages::groups::GroupEdit/>
                        <Route path=path!("/protection-groups/:id/configuration") view=pages::configure::Configuration/>
                        <Route path=path!("/matching") view=pages::matching::Matching/>
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
