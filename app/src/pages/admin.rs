//! Admin pages: users (create, change role, disable, reset password), API tokens (create — the secret
//! is shown once — and revoke), and the cloud accounts with a "test access" check.

use crate::api::ConsoleError;
use crate::api_security::{create_token, create_user, list_tokens, list_users, revoke_token, update_user};
use crate::components::{Badge, ConfirmButton, Empty, ErrorBox, Loading, when};
use domain::auth::{CreatedToken, NewToken, NewUser, Role, UserChange, UserView};
use leptos::prelude::*;

fn role_options(selected: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
        .collect_view()
}

/// One user row with its actions.
#[component]
fn UserRow(user: UserView, refresh: Callback<()>, error: RwSignal<Option<ConsoleError>>) -> impl IntoView {
    let name = user.username.clone();
    let role = RwSignal::new(user.role.as_str().to_owned());
    let reset = RwSignal::new(String::new());
    let update = Action::new(move |(name, change): &(String, UserChange)| {
        let (name, change) = (name.clone(), change.clone());
        async move {
            match update_user(name, change).await {
                Ok(_) => {
                    error.set(None);
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let version = user.version;
    let disabled = user.disabled;
    let n1 = name.clone();
    let n2 = name.clone();
    let n3 = name.clone();
    let change = move |c: UserChange| UserChange { expected_version: Some(version), ..c };
    view! {
        <tr data-testid="user-row">
            <td class="mono">{name.clone()}</td>
            <td>
                <select aria-label=format!("Role of {name}") bind:value=role>{role_options(user.role)}</select>
                <button class="btn btn-small" type="button"
                    disabled=move || role.get() == user.role.as_str()
                    on:click=move |_| { update.dispatch((n1.clone(), change(UserChange { role: Some(role.get_untracked()), ..Default::default() }))); }>
                    "Save role"
                </button>
            </td>
            <td>
                {if user.disabled { view! { <Badge status="blocked" label="disabled"/> }.into_any() }
                 else if user.must_change_password { view! { <Badge status="warning" label="one-time password"/> }.into_any() }
                 else { view! { <Badge status="ready" label="active"/> }.into_any() }}
            </td>
            <td class="muted">{when(user.created_at)}" by "{user.created_by.clone()}</td>
            <td class="actions">
                <ConfirmButton
                    label=if disabled { "Enable…" } else { "Disable…" }
                    question=if disabled { "Enable this user?" } else { "Disable: their sessions and tokens stop working at once." }
                    confirm="Confirm"
                    on_confirm=Callback::new(move |()| { update.dispatch((n2.clone(), change(UserChange { disabled: Some(!disabled), ..Default::default() }))); })
                />
                <form class="inline-form" on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    update.dispatch((n3.clone(), change(UserChange { reset_password: Some(reset.get_untracked()), ..Default::default() })));
                    reset.set(String::new());
                }>
                    <input type="password" placeholder="new one-time password" aria-label="New one-time password" autocomplete="new-password" bind:value=reset required minlength="12"/>
                    <button class="btn btn-small" type="submit">"Reset password"</button>
                </form>
            </td>
        </tr>
    }
}

/// `/admin/users`.
#[component]
pub fn Users() -> impl IntoView {
    let users = Resource::new(|| (), |_| list_users());
    let refresh = Callback::new(move |()| users.refetch());
    let error = RwSignal::new(None::<ConsoleError>);
    let created = RwSignal::new(None::<String>);
    let username = RwSignal::new(String::new());
    let role = RwSignal::new("operator".to_owned());
    let password = RwSignal::new(String::new());
    let create = Action::new(move |input: &NewUser| {
        let input = input.clone();
        async move {
            match create_user(input).await {
                Ok(u) => {
                    error.set(None);
                    created.set(Some(format!(
                        "Created {} ({}). Give them the one-time password; they must change it at first sign-in.",
                        u.username, u.role
                    )));
                    username.set(String::new());
                    password.set(String::new());
                    users.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        created.set(None);
        create.dispatch(NewUser {
            username: username.get_untracked(),
            role: role.get_untracked(),
            password: password.get_untracked(),
        });
    };
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Users"</h1>
                    <p class="lead">"Viewers read; operators change groups, pairs and configuration; approvers approve executions; admins do all of it and manage users and tokens."</p>
                </div>
                <a class="btn" href="/admin/tokens">"API tokens"</a>
                <a class="btn" href="/admin/cloud">"Cloud accounts"</a>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || created.get().map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
            <form class="form card form-row" on:submit=on_submit data-testid="new-user-form">
                <h2>"New user"</h2>
                <label class="field"><span>"User name"</span><input required maxlength="64" bind:value=username autocomplete="off"/></label>
                <label class="field"><span>"Role"</span><select bind:value=role>{role_options(Role::Operator)}</select></label>
                <label class="field"><span>"One-time password"</span><input type="password" required minlength="12" bind:value=password autocomplete="new-password"/></label>
                <div class="form-actions"><button class="btn btn-primary" type="submit">"Create user"</button></div>
            </form>
            <Transition fallback=|| view! { <Loading what="users"/> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="users-table">
                            <thead><tr><th>"User"</th><th>"Role"</th><th>"Status"</th><th>"Created"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| view! { <UserRow user=u refresh error/> }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// `/admin/tokens`.
#[component]
pub fn Tokens() -> impl IntoView {
    let tokens = Resource::new(|| (), |_| list_tokens());
    let error = RwSignal::new(None::<ConsoleError>);
    let fresh = RwSignal::new(None::<CreatedToken>);
    let name = RwSignal::new(String::new());
    let role = RwSignal::new("operator".to_owned());
    let days = RwSignal::new("90".to_owned());
    let create = Action::new(move |input: &NewToken| {
        let input = input.clone();
        async move {
            match create_token(input).await {
                Ok(t) => {
                    error.set(None);
                    fresh.set(Some(t));
                    name.set(String::new());
                    tokens.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let revoke = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match revoke_token(id).await {
                Ok(_) => {
                    error.set(None);
                    tokens.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        fresh.set(None);
        let d = days.get_untracked();
        let expires_in_days = if d.trim().is_empty() { None } else { d.trim().parse().ok().or(Some(0)) };
        create.dispatch(NewToken { name: name.get_untracked(), role: role.get_untracked(), expires_in_days });
    };
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"API tokens"</h1>
                    <p class="lead">"For automation: send "<code>"Authorization: Bearer rt_…"</code>". A token acts for the admin who made it, with the role it was given."</p>
                </div>
                <a class="btn" href="/admin/users">"Users"</a>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || fresh.get().map(|t| view! {
                <div class="alert alert-success secret-once" role="status" data-testid="new-token">
                    <p><strong>{format!("Token “{}” created.", t.details.name)}</strong>" Copy it now: it is never shown again."</p>
                    <code class="secret" data-testid="token-secret">{t.token.clone()}</code>
                </div>
            })}
            <form class="form card form-row" on:submit=on_submit data-testid="new-token-form">
                <h2>"New token"</h2>
                <label class="field"><span>"Name"</span><input required maxlength="80" bind:value=name placeholder="ci-pipeline"/></label>
                <label class="field"><span>"Role"</span><select bind:value=role>{role_options(Role::Operator)}</select></label>
                <label class="field"><span>"Expires in (days, empty = never)"</span><input inputmode="numeric" bind:value=days/></label>
                <div class="form-actions"><button class="btn btn-primary" type="submit">"Create token"</button></div>
            </form>
            <Transition fallback=|| view! { <Loading what="tokens"/> }>
                {move || tokens.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty title="No API tokens">"Create one above for a pipeline or the CLI."</Empty> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="tokens-table">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Owner"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th>"Status"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| {
                                    let id = t.id.clone();
                                    let revoked = t.revoked_at.is_some();
                                    view! {
                                        <tr>
                                            <td>{t.name.clone()}</td>
                                            <td>{t.role.to_string()}</td>
                                            <td class="mono">{t.owner.clone()}</td>
                                            <td class="muted">{when(t.created_at)}</td>
                                            <td class="muted">{t.expires_at.map_or_else(|| "never".to_owned(), when)}</td>
                                            <td class="muted">{t.last_used_at.map_or_else(|| "never".to_owned(), when)}</td>
                                            <td>{if revoked { view! { <Badge status="blocked" label="revoked"/> } } else { view! { <Badge status="ready" label="active"/> } }}</td>
                                            <td class="actions">
                                                {(!revoked).then(|| view! {
                                                    <ConfirmButton label="Revoke…" question="Revoke? Callers using it are refused at once." confirm="Revoke"
                                                        on_confirm=Callback::new(move |()| { revoke.dispatch(id.clone()); })/>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One account row; accounts registered here can be removed.
#[component]
fn AccountRow(
    account: domain::estate::CloudAccount,
    refresh: Callback<()>,
    error: RwSignal<Option<ConsoleError>>,
) -> impl IntoView {
    let id = account.account_id.as_str().to_owned();
    let remove = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            match crate::api::delete_cloud_account(id).await {
                Ok(()) => {
                    error.set(None);
                    refresh.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let regions = account.regions.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>().join(", ");
    let removable = account.source == "console";
    view! {
        <tr data-testid="cloud-account">
            <td class="mono">{id.clone()}</td>
            <td>{account.name.clone()}</td>
            <td class="mono">{account.role_arn.clone().unwrap_or_else(|| "— (the account Roundtrip runs in)".into())}</td>
            <td class="mono">{regions}</td>
            <td>{if account.external_id_set { "set (never shown)" } else { "—" }}</td>
            <td><Badge status="info" label=account.source.clone()/></td>
            <td class="actions">
                {removable.then(|| view! {
                    <ConfirmButton label="Remove…" question=format!("Stop reaching account {id}? Executions that use it will fail.") confirm="Remove"
                        on_confirm=Callback::new({ let id = id.clone(); move |()| { remove.dispatch(id.clone()); } })/>
                })}
            </td>
        </tr>
    }
}

/// `/admin/cloud`: the accounts and regions Roundtrip reaches — configured ones and ones registered here —
/// and "Test access", which tries every read it needs in each and names what is missing.
#[component]
pub fn CloudAccess() -> impl IntoView {
    let accounts = Resource::new(|| (), |_| crate::api::list_cloud_accounts());
    let overview = Resource::new(|| (), |_| crate::api::get_overview());
    let report = RwSignal::new(None::<Vec<domain::estate::AccessCheck>>);
    let error = RwSignal::new(None::<ConsoleError>);
    let saved = RwSignal::new(None::<String>);
    let (account_id, name, role_arn, external_id, regions) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let refresh = Callback::new(move |()| accounts.refetch());
    let test = Action::new(move |(): &()| async move {
        match crate::api::test_cloud_access().await {
            Ok(r) => {
                error.set(None);
                report.set(Some(r));
            }
            Err(e) => error.set(Some(e)),
        }
    });
    let save = Action::new(move |input: &domain::estate::CloudAccountInput| {
        let input = input.clone();
        async move {
            match crate::api::save_cloud_account(input).await {
                Ok(a) => {
                    error.set(None);
                    saved.set(Some(format!("Account {} saved. Test its access below.", a.account_id.as_str())));
                    external_id.set(String::new());
                    accounts.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(None);
        save.dispatch(domain::estate::CloudAccountInput {
            account_id: account_id.get_untracked(),
            name: name.get_untracked(),
            role_arn: role_arn.get_untracked(),
            external_id: external_id.get_untracked(),
            regions: regions.get_untracked().split([',', ' ']).filter(|r| !r.is_empty()).map(str::to_owned).collect(),
        });
    };
    let running = test.pending();
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Cloud accounts"</h1>
                    <p class="lead">
                        "The accounts and regions Roundtrip reaches: those of the settings file ("<code>"[[aws.accounts]]"</code>
                        "), and those registered here. "<code>"roundtrip aws iam-policy"</code>" prints the role each needs."
                    </p>
                </div>
                <a class="btn" href="/admin/users">"Users"</a>
            </div>
            <Transition fallback=|| view! { <Loading what="the estate"/> }>
                {move || overview.get().map(|o| match o {
                    Ok(o) => view! { <p data-testid="cloud-kind">"Cloud: "<strong>{o.cloud.clone()}</strong>" — "{o.description.clone()}</p> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                })}
            </Transition>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || saved.get().map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
            <Transition fallback=|| view! { <Loading what="accounts"/> }>
                {move || accounts.get().map(|p| match p {
                    Ok(p) if p.is_empty() => view! { <Empty title="No accounts">"Register one below, or add [[aws.accounts]] to the settings file."</Empty> }.into_any(),
                    Ok(p) => view! {
                        <table class="table" data-testid="cloud-accounts">
                            <thead><tr><th>"Account"</th><th>"Name"</th><th>"Role"</th><th>"Regions"</th><th>"External ID"</th><th>"From"</th><th></th></tr></thead>
                            <tbody>
                                {p.into_iter().map(|a| view! { <AccountRow account=a refresh=refresh error=error/> }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                })}
            </Transition>
            <form class="form card form-row" on:submit=on_submit data-testid="new-account-form">
                <h2>"Register an account"</h2>
                <label class="field"><span>"Account id"</span><input required inputmode="numeric" maxlength="12" bind:value=account_id placeholder="111122223333"/></label>
                <label class="field"><span>"Name"</span><input required maxlength="64" bind:value=name placeholder="production"/></label>
                <label class="field"><span>"Role ARN (empty: the account Roundtrip runs in)"</span><input maxlength="600" bind:value=role_arn placeholder="arn:aws:iam::111122223333:role/RoundtripAccess"/></label>
                <label class="field"><span>"External ID (stored, never shown again; empty keeps the stored one)"</span><input type="password" autocomplete="off" maxlength="1224" bind:value=external_id/></label>
                <label class="field"><span>"Regions (comma-separated)"</span><input required bind:value=regions placeholder="eu-west-1, eu-central-1"/></label>
                <div class="form-actions"><button class="btn btn-primary" type="submit">"Save account"</button></div>
            </form>
            <div class="form-actions">
                <button class="btn btn-primary" type="button" data-testid="test-access" disabled=move || running.get()
                    on:click=move |_| { test.dispatch(()); }>
                    {move || if running.get() { "Testing access…" } else { "Test access" }}
                </button>
                <span class="muted">" Tries each read in each account and region. Writes are not tried: they would act."</span>
            </div>
            {move || report.get().map(|r| {
                let missing = r.iter().filter(|l| !l.ok).count();
                view! {
                    <p role="status" data-testid="access-summary">
                        {if missing == 0 { format!("All {} checks passed.", r.len()) } else { format!("{missing} of {} checks failed: see what is missing below.", r.len()) }}
                    </p>
                    <table class="table" data-testid="access-report">
                        <thead><tr><th>"Account"</th><th>"Region"</th><th>"Action"</th><th>"Result"</th><th>"Detail"</th></tr></thead>
                        <tbody>
                            {r.into_iter().map(|l| view! {
                                <tr>
                                    <td>{format!("{} ({})", l.account_name, l.account_id)}</td>
                                    <td class="mono">{l.region}</td>
                                    <td class="mono">{l.action}</td>
                                    <td>{if l.ok { view! { <Badge status="ready" label="ok"/> }.into_any() } else { view! { <Badge status="blocked" label="missing"/> }.into_any() }}</td>
                                    <td>{l.detail}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            })}
        </section>
    }
}
