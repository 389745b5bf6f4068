//! Protection groups: the list, and the editor used to create and change one.

use crate::api::{ConsoleError, delete_group, get_account_regions, get_group, list_groups, save_group};
use crate::components::{Empty, ErrorBox, Loading, when};
use domain::estate::KnownAccountRegion;
use domain::group::{
    AccountRegionInput, LaunchDisposition, ProtectionGroup, ProtectionGroupInput, SelectionInput, SourceSelection,
};
use domain::matching::SourceNameKey;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

fn at_text(account: &str, region: &str) -> String {
    format!("{account}/{region}")
}

fn selection_text(s: &SourceSelection) -> String {
    match s {
        SourceSelection::All => "all source servers".into(),
        SourceSelection::Tags { tags } => tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
        SourceSelection::SourceServerIds { source_server_ids } => {
            format!("{} listed source servers", source_server_ids.len())
        }
    }
}

/// `/protection-groups`.
#[component]
pub fn GroupList() -> impl IntoView {
    let groups = Resource::new(|| (), |_| list_groups());
    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Protection groups"</h1>
                    <p class="lead">"Source servers of one primary account and region, with the DR account and region they recover into."</p>
                </div>
                <a class="btn btn-primary" href="/protection-groups/new">"New protection group"</a>
            </div>
            <Transition fallback=|| view! { <Loading what="protection groups"/> }>
                {move || groups.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <Empty title="No protection groups yet">
                            <p>"Create one to see which standby each source server will recover into."</p>
                            <a class="btn btn-primary" href="/protection-groups/new">"Create a protection group"</a>
                        </Empty>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Primary"</th><th scope="col">"DR"</th>
                                    <th scope="col">"Selects"</th><th scope="col" class="num">"Pairs"</th>
                                    <th scope="col">"Updated"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|s| {
                                        let g = s.group;
                                        view! {
                                            <tr>
                                                <td><a href=format!("/protection-groups/{}", g.id)>{g.name.clone()}</a></td>
                                                <td class="mono">{at_text(g.primary.account_id.as_str(), g.primary.region.as_str())}</td>
                                                <td class="mono">{at_text(g.dr.account_id.as_str(), g.dr.region.as_str())}</td>
                                                <td>{selection_text(&g.selection)}</td>
                                                <td class="num">{s.pairs}</td>
                                                <td class="muted">{when(g.updated_at)}</td>
                                                <td class="actions"><a class="btn btn-small" href=format!("/matching?group={}", g.id)>"Match"</a></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// `/protection-groups/new`.
#[component]
pub fn GroupNew() -> impl IntoView {
    view! {
        <section class="page">
            <div class="page-head"><div>
                <h1>"New protection group"</h1>
                <p class="lead">"Name the primary and DR sides, and which source servers to protect."</p>
            </div></div>
            <GroupForm initial=None/>
        </section>
    }
}

/// `/protection-groups/:id`.
#[component]
pub fn GroupEdit() -> impl IntoView {
    let params = use_params_map();
    let group = Resource::new(move || params.read().get("id").unwrap_or_default(), get_group);
    view! {
        <section class="page">
            <Transition fallback=|| view! { <Loading what="the protection group"/> }>
                {move || group.get().map(|r| match r {
                    Err(e) => view! { <h1>"Protection group"</h1><ErrorBox error=e/> }.into_any(),
                    Ok(g) => view! {
                        <div class="page-head">
                            <div>
                                <h1>{g.name.clone()}</h1>
                                <p class="lead mono">{g.id.to_string()}" · version "{g.version}</p>
                            </div>
                            <div class="form-actions">
                                <a class="btn" href=format!("/matching?group={}", g.id)>"Instance matching"</a>
                                <a class="btn" href=format!("/protection-groups/{}/configuration", g.id)>"Launch-into configuration"</a>
                            </div>
                        </div>
                        <crate::pages::readiness::ReadinessPanel group_id=g.id.to_string()/>
                        <h2>"Settings"</h2>
                        <GroupForm initial=Some(g)/>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

fn tags_to_text(s: &SourceSelection) -> String {
    match s {
        SourceSelection::Tags { tags } => tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

fn ids_to_text(s: &SourceSelection) -> String {
    match s {
        SourceSelection::SourceServerIds { source_server_ids } => {
            source_server_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// What the form holds, as typed.
#[derive(Debug, Clone, Default)]
struct FormValues {
    name: String,
    description: String,
    /// `account/region`.
    primary: String,
    /// `account/region`.
    dr: String,
    /// `all`, `tags` or `source_server_ids`.
    kind: String,
    tags: String,
    ids: String,
    key: String,
    /// `STARTED` or `STOPPED`.
    disposition: String,
    /// Minutes, as typed.
    lag_minutes: String,
}

/// Builds the input the form describes; tag lines without `=` become a field error.
fn form_input(f: FormValues) -> Result<ProtectionGroupInput, Vec<domain::FieldError>> {
    let FormValues { name, description, primary, dr, kind, tags, ids, key, disposition, lag_minutes } = f;
    let (primary, dr, kind, tags, ids, key) =
        (primary.as_str(), dr.as_str(), kind.as_str(), tags.as_str(), ids.as_str(), key.as_str());
    let split = |s: &str| {
        let (a, r) = s.split_once('/').unwrap_or((s, ""));
        AccountRegionInput { account_id: a.to_owned(), region: r.to_owned() }
    };
    let selection = match kind {
        "tags" => {
            let mut map = domain::estate::Tags::new();
            for (i, line) in tags.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match line.split_once('=') {
                    Some((k, v)) => {
                        map.insert(k.trim().to_owned(), v.trim().to_owned());
                    }
                    None => {
                        return Err(vec![domain::FieldError::new(
                            "selection.tags",
                            "INVALID_TAGS",
                            format!("line {} is not key=value", i + 1),
                        )]);
                    }
                }
            }
            SelectionInput::Tags { tags: map }
        }
        "source_server_ids" => SelectionInput::SourceServerIds {
            source_server_ids: ids
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        _ => SelectionInput::All,
    };
    let source_name_key = match key {
        "name_tag" => SourceNameKey::NameTag,
        "hostname" => SourceNameKey::Hostname,
        _ => SourceNameKey::NameTagThenHostname,
    };
    let input = ProtectionGroupInput {
        name,
        description,
        primary: split(primary),
        dr: split(dr),
        selection,
        source_name_key,
        launch_disposition: if disposition == "STOPPED" {
            LaunchDisposition::Stopped
        } else {
            LaunchDisposition::Started
        },
        lag_threshold_seconds: match lag_minutes.trim() {
            "" => None,
            m => match m.parse::<u64>() {
                Ok(m) => Some(m.saturating_mul(60)),
                Err(_) => {
                    return Err(vec![domain::FieldError::new(
                        "lag_threshold_seconds",
                        "NOT_A_NUMBER",
                        "give the lag threshold in whole minutes",
                    )]);
                }
            },
        },
    };
    // The browser runs the same checks as the server before sending anything.
    input.validate()?;
    Ok(input)
}

fn option_label(k: &KnownAccountRegion) -> String {
    format!("{} ({}) · {}", k.account_name, k.at.account_id, k.at.region)
}

/// The create/edit form.
#[component]
fn GroupForm(initial: Option<ProtectionGroup>) -> impl IntoView {
    let navigate = use_navigate();
    let known = Resource::new(|| (), |_| get_account_regions());
    let editing = initial.clone();
    let g = initial.as_ref();
    let name = RwSignal::new(g.map(|g| g.name.clone()).unwrap_or_default());
    let description = RwSignal::new(g.map(|g| g.description.clone()).unwrap_or_default());
    let primary =
        RwSignal::new(g.map(|g| at_text(g.primary.account_id.as_str(), g.primary.region.as_str())).unwrap_or_default());
    let dr = RwSignal::new(g.map(|g| at_text(g.dr.account_id.as_str(), g.dr.region.as_str())).unwrap_or_default());
    let kind = RwSignal::new(
        g.map(|g| match g.selection {
            SourceSelection::All => "all",
            SourceSelection::Tags { .. } => "tags",
            SourceSelection::SourceServerIds { .. } => "source_server_ids",
        })
        .unwrap_or("all")
        .to_owned(),
    );
    let tags = RwSignal::new(g.map(|g| tags_to_text(&g.selection)).unwrap_or_default());
    let ids = RwSignal::new(g.map(|g| ids_to_text(&g.selection)).unwrap_or_default());
    let key = RwSignal::new(
        g.map(|g| match g.source_name_key {
            SourceNameKey::NameTagThenHostname => "name_tag_then_hostname",
            SourceNameKey::NameTag => "name_tag",
            SourceNameKey::Hostname => "hostname",
        })
        .unwrap_or("name_tag_then_hostname")
        .to_owned(),
    );
    let disposition = RwSignal::new(g.map(|g| g.launch_disposition.as_str()).unwrap_or("STARTED").to_owned());
    let lag_minutes = RwSignal::new(
        g.map(|g| (g.lag_threshold_seconds / 60).to_string())
            .unwrap_or_else(|| (domain::group::DEFAULT_LAG_THRESHOLD_SECONDS / 60).to_string()),
    );
    let error = RwSignal::new(None::<ConsoleError>);
    let saved = RwSignal::new(None::<String>);
    let confirm_delete = RwSignal::new(false);
    let group_id = editing.as_ref().map(|g| g.id.to_string());
    let version = RwSignal::new(editing.as_ref().map(|g| g.version));

    // Default sides once the known accounts arrive: primary = first, DR = last.
    Effect::new(move |_| {
        if let Some(Ok(list)) = known.get()
            && let (Some(first), Some(last)) = (list.first(), list.last())
        {
            if primary.get_untracked().is_empty() {
                primary.set(at_text(first.at.account_id.as_str(), first.at.region.as_str()));
            }
            if dr.get_untracked().is_empty() {
                dr.set(at_text(last.at.account_id.as_str(), last.at.region.as_str()));
            }
        }
    });

    let save = {
        let group_id = group_id.clone();
        let navigate = navigate.clone();
        Action::new(move |input: &ProtectionGroupInput| {
            let input = input.clone();
            let id = group_id.clone();
            let expected = version.get_untracked();
            let navigate = navigate.clone();
            async move {
                match save_group(id.clone(), input, expected).await {
                    Ok(g) => {
                        error.set(None);
                        version.set(Some(g.version));
                        if id.is_none() {
                            navigate(&format!("/matching?group={}", g.id), Default::default());
                        } else {
                            saved.set(Some(format!("Saved (version {}).", g.version)));
                        }
                    }
                    Err(e) => {
                        saved.set(None);
                        error.set(Some(e));
                    }
                }
            }
        })
    };
    let remove = {
        let group_id = group_id.clone();
        Action::new(move |_: &()| {
            let id = group_id.clone().unwrap_or_default();
            let expected = version.get_untracked();
            let navigate = navigate.clone();
            async move {
                match delete_group(id, expected).await {
                    Ok(()) => navigate("/protection-groups", Default::default()),
                    Err(e) => error.set(Some(e)),
                }
            }
        })
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(None);
        match form_input(FormValues {
            name: name.get_untracked(),
            description: description.get_untracked(),
            primary: primary.get_untracked(),
            dr: dr.get_untracked(),
            kind: kind.get_untracked(),
            tags: tags.get_untracked(),
            ids: ids.get_untracked(),
            key: key.get_untracked(),
            disposition: disposition.get_untracked(),
            lag_minutes: lag_minutes.get_untracked(),
        }) {
            Ok(input) => {
                save.dispatch(input);
            }
            Err(fields) => error.set(Some(ConsoleError {
                code: "VALIDATION_FAILED".into(),
                message: "Some fields need attention.".into(),
                details: serde_json::json!({ "fields": fields }),
            })),
        }
    };
    let field_error = move |f: &'static str| {
        move || {
            error.get().and_then(|e| {
                e.fields().into_iter().find(|(field, _)| field == f || field.starts_with(&format!("{f}."))).map(
                    |(_, m)| {
                        view! { <p class="field-error" role="alert">{m}</p> }
                    },
                )
            })
        }
    };
    let is_edit = group_id.is_some();
    let options = move || {
        known
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .map(|k| (at_text(k.at.account_id.as_str(), k.at.region.as_str()), option_label(&k)))
            .collect::<Vec<_>>()
    };
    view! {
        <form class="form" on:submit=on_submit novalidate=true>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || saved.get().map(|m| view! { <div class="alert alert-ok" role="status">{m}</div> })}
            <div class="field">
                <label for="pg-name">"Name"</label>
                <input id="pg-name" name="name" type="text" maxlength="128" required=true autocomplete="off"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                {field_error("name")}
            </div>
            <div class="field">
                <label for="pg-description">"Description"</label>
                <textarea id="pg-description" name="description" rows="2" maxlength="1024"
                    prop:value=description on:input=move |ev| description.set(event_target_value(&ev))></textarea>
                {field_error("description")}
            </div>
            <Transition fallback=|| view! { <Loading what="accounts and regions"/> }>
            <div class="field-row">
                <div class="field">
                    <label for="pg-primary">"Primary account and region"</label>
                    <select id="pg-primary" name="primary" prop:value=primary on:change=move |ev| primary.set(event_target_value(&ev))>
                        {move || options().into_iter().map(|(v, l)| { let sel = v == primary.get(); view! { <option value=v selected=sel>{l}</option> } }).collect_view()}
                    </select>
                    {field_error("primary")}
                </div>
                <div class="field">
                    <label for="pg-dr">"DR account and region"</label>
                    <select id="pg-dr" name="dr" prop:value=dr on:change=move |ev| dr.set(event_target_value(&ev))>
                        {move || options().into_iter().map(|(v, l)| { let sel = v == dr.get(); view! { <option value=v selected=sel>{l}</option> } }).collect_view()}
                    </select>
                    {field_error("dr")}
                    {move || {
                        let (p, d) = (primary.get(), dr.get());
                        let region = |at: &str| at.split_once('/').map(|(_, r)| r.to_owned());
                        (p != d && region(&p).is_some() && region(&p) == region(&d)).then(|| view! {
                            <p class="alert alert-warning small" role="note" data-testid="same-region-hint">"The DR region is the primary region: the group survives a lost account, not a lost region. Readiness warns about it (group.dr_region_differs)."</p>
                        })
                    }}
                </div>
            </div>
            </Transition>
            <fieldset class="field">
                <legend>"Source servers"</legend>
                <label class="radio"><input type="radio" name="kind" value="all" prop:checked=move || kind.get() == "all" on:change=move |_| kind.set("all".into())/>" All replicating from the primary side"</label>
                <label class="radio"><input type="radio" name="kind" value="tags" prop:checked=move || kind.get() == "tags" on:change=move |_| kind.set("tags".into())/>" Those carrying tags"</label>
                <label class="radio"><input type="radio" name="kind" value="source_server_ids" prop:checked=move || kind.get() == "source_server_ids" on:change=move |_| kind.set("source_server_ids".into())/>" Listed by id"</label>
                <Show when=move || kind.get() == "tags">
                    <label for="pg-tags">"Tags, one key=value per line"</label>
                    <textarea id="pg-tags" rows="3" placeholder="app=shop" prop:value=tags on:input=move |ev| tags.set(event_target_value(&ev))></textarea>
                </Show>
                <Show when=move || kind.get() == "source_server_ids">
                    <label for="pg-ids">"Source server ids, one per line"</label>
                    <textarea id="pg-ids" rows="4" placeholder="s-0123456789abcdef0" prop:value=ids on:input=move |ev| ids.set(event_target_value(&ev))></textarea>
                </Show>
                {field_error("selection")}
            </fieldset>
            <div class="field">
                <label for="pg-key">"Match source servers by"</label>
                <select id="pg-key" prop:value=key on:change=move |ev| key.set(event_target_value(&ev))>
                    <option value="name_tag_then_hostname" selected=move || key.get() == "name_tag_then_hostname">"Name tag, falling back to hostname"</option>
                    <option value="name_tag" selected=move || key.get() == "name_tag">"Name tag only"</option>
                    <option value="hostname" selected=move || key.get() == "hostname">"Hostname only"</option>
                </select>
            </div>
            <div class="field-row">
                <div class="field">
                    <label for="pg-disposition">"After launching into a standby, DRS leaves it"</label>
                    <select id="pg-disposition" prop:value=disposition on:change=move |ev| disposition.set(event_target_value(&ev))>
                        <option value="STARTED" selected=move || disposition.get() == "STARTED">"Started (launch disposition STARTED)"</option>
                        <option value="STOPPED" selected=move || disposition.get() == "STOPPED">"Stopped (launch disposition STOPPED)"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="pg-lag">"Warn when replication lags more than (minutes)"</label>
                    <input id="pg-lag" type="text" inputmode="numeric" prop:value=lag_minutes on:input=move |ev| lag_minutes.set(event_target_value(&ev))/>
                    {field_error("lag_threshold_seconds")}
                </div>
            </div>
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Saving…" } else if is_edit { "Save changes" } else { "Create protection group" }}
                </button>
                <a class="btn" href="/protection-groups">"Cancel"</a>
                <Show when=move || is_edit>
                    <Show when=move || confirm_delete.get() fallback=move || view! {
                        <button type="button" class="btn btn-danger-outline" on:click=move |_| confirm_delete.set(true)>"Delete…"</button>
                    }>
                        <span class="confirm" role="alertdialog" aria-label="Confirm deletion">
                            "Delete this group and all its pairs? This cannot be undone. "
                            <button type="button" class="btn btn-danger" on:click=move |_| { remove.dispatch(()); }>"Delete group"</button>
                            <button type="button" class="btn" on:click=move |_| confirm_delete.set(false)>"Keep it"</button>
                        </span>
                    </Show>
                </Show>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(when(1_767_225_600_000), "2026-01-01 00:00 UTC");
        assert_eq!(when(951_782_400_000 + 3_661_000), "2000-02-29 01:01 UTC");
    }

    #[test]
    fn a_tag_line_without_equals_is_a_field_error() {
        let err = form_input(FormValues {
            name: "n".into(),
            primary: "111111111111/us-east-1".into(),
            dr: "222222222222/us-west-2".into(),
            kind: "tags".into(),
            tags: "app=shop\nbroken".into(),
            ..FormValues::default()
        })
        .unwrap_err();
        assert_eq!(err[0].field, "selection.tags");
    }
}
