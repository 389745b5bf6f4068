//! Sign-in and the signed-in user's own account: the login form (a plain HTML form, so it works before
//! the page hydrates), the user menu, and changing one's password.

use crate::api::ConsoleError;
use crate::api_security::{Me, change_password, whoami};
use crate::components::ErrorBox;
use domain::auth::{MIN_PASSWORD_CHARS, Permission};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The signed-in identity, fetched once per page load and shared by the menu and the pages.
pub type MeResource = Resource<Result<Option<Me>, ConsoleError>>;

/// Provides [`MeResource`] to the pages below.
pub fn provide_me() -> MeResource {
    let me = Resource::new(|| (), |_| whoami());
    provide_context(me);
    me
}

/// Whether the signed-in identity may do what `p` needs (false while unknown).
pub fn can(p: Permission) -> impl Fn() -> bool + Copy {
    let me = use_context::<MeResource>();
    move || {
        me.and_then(|m| m.get())
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|me| !me.must_change_password && me.role.grants(p))
    }
}

/// Shows `children` only to identities whose role grants `p`; others see `otherwise`.
#[component]
pub fn IfAllowed(
    permission: Permission,
    #[prop(into, optional)] otherwise: String,
    children: ChildrenFn,
) -> impl IntoView {
    let allowed = can(permission);
    view! {
        <Transition fallback=|| ()>
            <Show when=allowed fallback={
                let otherwise = otherwise.clone();
                move || (!otherwise.is_empty()).then(|| view! { <p class="muted">{otherwise.clone()}</p> })
            }>
                {children()}
            </Show>
        </Transition>
    }
}

fn login_message(code: &str) -> &'static str {
    match code {
        "LOGIN_FAILED" => "The user name or password is wrong.",
        "LOGIN_THROTTLED" => "Too many failed sign-ins. Wait 15 minutes and try again.",
        "VALIDATION_FAILED" | "MALFORMED_JSON" => "Enter a user name and a password.",
        _ => "Signing in failed. Try again.",
    }
}

/// `/login`.
#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error"));
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".into());
    view! {
        <section class="page page-narrow">
            <h1>"Sign in"</h1>
            <p class="lead">"Roundtrip recovers production. Sign in with your own account; every action is recorded under your name."</p>
            {move || error().map(|code| view! {
                <div class="alert alert-error" role="alert" data-testid="login-error">
                    <strong>{login_message(&code)}</strong>
                </div>
            })}
            <form class="form card" method="post" action="/auth/login" data-testid="login-form">
                <input type="hidden" name="next" value=next/>
                <label class="field">
                    <span>"User name"</span>
                    <input name="username" autocomplete="username" required autofocus maxlength="64"/>
                </label>
                <label class="field">
                    <span>"Password"</span>
                    <input name="password" type="password" autocomplete="current-password" required maxlength="1024"/>
                </label>
                <div class="form-actions">
                    <button class="btn btn-primary" type="submit">"Sign in"</button>
                </div>
            </form>
            <p class="muted">"First start? The admin's one-time password is in the server log (or set it with ROUNDTRIP_ADMIN_PASSWORD)."</p>
        </section>
    }
}

/// The signed-in user's name, role and sign-out button, in the top bar.
#[component]
pub fn UserMenu() -> impl IntoView {
    let me = use_context::<MeResource>();
    view! {
        <Transition fallback=|| ()>
            {move || me.and_then(|m| m.get()).and_then(Result::ok).flatten().map(|me| view! {
                <div class="user-menu" data-testid="user-menu">
                    <a href="/account" class="user-name" title="Your account">{me.name.clone()}</a>
                    <span class=format!("badge badge-role role-{}", me.role) data-testid="user-role">{me.role.to_string()}</span>
                    {me.session.then(|| view! {
                        <form method="post" action="/auth/logout" class="inline-form">
                            <button class="btn btn-small" type="submit">"Sign out"</button>
                        </form>
                    })}
                </div>
            })}
        </Transition>
    }
}

/// `/account`: who you are, and a new password (required after a one-time password).
#[component]
pub fn Account() -> impl IntoView {
    let me = use_context::<MeResource>();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ConsoleError>);
    let done = RwSignal::new(false);
    let save = Action::new(move |(c, n): &(String, String)| {
        let (c, n) = (c.clone(), n.clone());
        async move {
            match change_password(c, n).await {
                Ok(_) => {
                    error.set(None);
                    done.set(true);
                    current.set(String::new());
                    new.set(String::new());
                    repeat.set(String::new());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(false);
        if new.get_untracked() != repeat.get_untracked() {
            error.set(Some(ConsoleError {
                code: "VALIDATION_FAILED".into(),
                message: "The two new passwords differ.".into(),
                details: serde_json::Value::Null,
            }));
            return;
        }
        save.dispatch((current.get_untracked(), new.get_untracked()));
    };
    let busy = save.pending();
    view! {
        <section class="page page-narrow">
            <h1>"Your account"</h1>
            <Transition fallback=|| ()>
                {move || me.and_then(|m| m.get()).and_then(Result::ok).flatten().map(|me| view! {
                    <dl class="facts card">
                        <dt>"User"</dt><dd>{me.name.clone()}</dd>
                        <dt>"Role"</dt><dd>{me.role.to_string()}</dd>
                    </dl>
                    {me.must_change_password.then(|| view! {
                        <div class="alert alert-warning" role="alert" data-testid="must-change">
                            "You signed in with a one-time password. Choose your own before doing anything else."
                        </div>
                    })}
                })}
            </Transition>
            <form class="form card" on:submit=on_submit data-testid="password-form">
                <h2>"Change password"</h2>
                <label class="field">
                    <span>"Current password"</span>
                    <input type="password" autocomplete="current-password" required bind:value=current/>
                </label>
                <label class="field">
                    <span>{format!("New password (at least {MIN_PASSWORD_CHARS} characters)")}</span>
                    <input type="password" autocomplete="new-password" required minlength=MIN_PASSWORD_CHARS.to_string() bind:value=new/>
                </label>
                <label class="field">
                    <span>"New password again"</span>
                    <input type="password" autocomplete="new-password" required bind:value=repeat/>
                </label>
                {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
                <Show when=move || done.get()>
                    <div class="alert alert-success" role="status">
                        "Password changed. "<a href="/" rel="external">"Continue to the console"</a>
                    </div>
                </Show>
                <div class="form-actions">
                    <button class="btn btn-primary" type="submit" disabled=busy>"Change password"</button>
                </div>
            </form>
        </section>
    }
}
