//! Sources (the marketplace accounts that send webhooks): the list with each one's ingest URL and
//! counts, the form that adds one, a source's page and its edit form.

use axum::extract::{RawQuery, State};
use maud::{Markup, html};
use serde_json::{Value, json};

use switchyard_marketplaces::Kind;

use super::html::{Form, copyable, csrf_field, facts, link, page, table};
use super::requests::{input, notice, pretty, query, see_other};
use super::{ConsoleError, PageResult, Posted, Session};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathId;
use crate::services::{scope, sources};

pub async fn sources(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let found = scope::tenant(&state, &session.client)
        .list_sources(None)
        .await?;
    let mut rows: Vec<Vec<Markup>> = Vec::new();
    for s in &found {
        let url = sources::render(&state.secrets, &state.public_url, s, None)?.ingest_url;
        let stats = scope::tenant(&state, &session.client)
            .source_stats(s.id)
            .await?
            .ok_or_else(|| AppError::not_found("source"))?;
        rows.push(vec![
            link(&format!("/console/sources/{}", s.id), &s.name),
            html! { (s.kind) },
            html! { (s.partners.join(", ")) },
            copyable(&url),
            html! { (stats.accepted) },
            html! { (stats.duplicates) },
            link(
                &format!("/console/rejections?source={}", s.id),
                &stats.refused.to_string(),
            ),
        ]);
    }
    let body = html! {
        (notice(&query(raw)))
        div class="actions" {
            a class="button" href="/console/sources/new" { "Add source" }
        }
        (table(
            &["Name", "Marketplace", "Partners", "Ingest URL", "Accepted", "Duplicates", "Refused"],
            &rows,
            "No sources yet. Add one for each marketplace account that sends webhooks.",
        ))
    };
    Ok(page(&session, "Sources", body))
}

pub async fn new_source(session: Session) -> PageResult {
    let body = html! {
        form method="post" action="/console/sources" class="stack" {
            (csrf_field(&session))
            label for="kind" { "Marketplace" }
            select id="kind" name="kind" {
                @for k in Kind::ALL {
                    option value=(k.as_str()) { (k.as_str()) }
                }
            }
            label for="name" { "Name" }
            input type="text" id="name" name="name" required;
            label for="partners" { "Partners (comma-separated; the first is the default)" }
            input type="text" id="partners" name="partners"
                value=(session.client.partners.join(", ")) required;
            label for="secret" {
                "Secret (the marketplace's signing secret or app secret; empty where the kind \
                 needs none)"
            }
            input type="password" id="secret" name="secret" autocomplete="new-password";
            label for="replay_window_seconds" { "Replay window, seconds (optional)" }
            input type="text" id="replay_window_seconds" name="replay_window_seconds";
            label for="options" { "Options, JSON (optional)" }
            textarea id="options" name="options" rows="3" {}
            p { button type="submit" { "Create" } }
        }
    };
    Ok(page(&session, "Add source", body))
}

/// The API's request body from a source's form; `create` for a new source, else a patch.
fn source_body(form: &Form, create: bool) -> Result<Value, ConsoleError> {
    let mut body = json!({});
    if create {
        body["kind"] = json!(form.get("kind").unwrap_or_default());
        if let Some(secret) = form.get("secret") {
            body["secret"] = json!(secret);
        }
    } else if let Some(secret) = form.get("secret") {
        body["secrets"] = json!([{ "value": secret }]);
    }
    if let Some(name) = form.get("name") {
        body["name"] = json!(name);
    }
    body["partners"] = json!(
        form.get("partners")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    );
    if let Some(window) = form.get("replay_window_seconds") {
        let secs: i64 = window.parse().map_err(|_| {
            ConsoleError(AppError::invalid(
                "replayWindowSeconds",
                "the replay window is a whole number of seconds",
            ))
        })?;
        body["replayWindowSeconds"] = json!(secs);
    }
    if let Some(options) = form.get("options") {
        let value: Value = serde_json::from_str(&options).map_err(|e| {
            ConsoleError(AppError::invalid(
                "options",
                format!("options are not JSON: {e}"),
            ))
        })?;
        body["options"] = value;
    }
    Ok(body)
}

pub async fn create_source(
    State(state): State<AppState>,
    Posted { session, form }: Posted,
) -> PageResult {
    let created =
        sources::create(&state, &session.client, input(source_body(&form, true)?)?).await?;
    let url = created.ingest_url.as_str();
    let token_shown = url.contains("/ingest/") && created.kind == "sellercenter";
    let body = html! {
        p class="notice" {
            "Source created. Give the marketplace this ingest URL"
            @if token_shown { " (its token is shown only now)" }
            ":"
        }
        p { (copyable(url)) }
        p { a href="/console/sources" { "Back to sources" } }
    };
    Ok(page(&session, "Source created", body))
}

pub async fn source(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let view = sources::get(&state, &session.client, &id).await?;
    let source_id = view.source_id.to_string();
    let stats = scope::tenant(&state, &session.client)
        .source_stats(view.source_id)
        .await?
        .ok_or_else(|| AppError::not_found("source"))?;
    let facts = facts(&[
        ("Marketplace", html! { (view.kind) }),
        ("Ingest URL", copyable(&view.ingest_url)),
        ("Accepted", html! { (stats.accepted) }),
        ("Duplicates", html! { (stats.duplicates) }),
        (
            "Refused",
            link(
                &format!("/console/rejections?source={source_id}"),
                &stats.refused.to_string(),
            ),
        ),
    ]);
    let reconciliation = super::reconciliation::source_section(&state, &session, &view).await?;
    let body = html! {
        (notice(&query(raw)))
        (facts)
        (reconciliation)
        h2 { "Edit" }
        form method="post" action={ "/console/sources/" (source_id) } class="stack" {
            (csrf_field(&session))
            label for="name" { "Name" }
            input type="text" id="name" name="name" value=(view.name);
            label for="partners" { "Partners (comma-separated)" }
            input type="text" id="partners" name="partners" value=(view.partners.join(", "));
            label for="secret" { "New secret (empty: keep the stored one)" }
            input type="password" id="secret" name="secret" autocomplete="new-password";
            label for="replay_window_seconds" { "Replay window, seconds" }
            input type="text" id="replay_window_seconds" name="replay_window_seconds"
                value=(view.replay_window_seconds);
            label for="options" { "Options, JSON" }
            textarea id="options" name="options" rows="3" { (pretty(&view.options)) }
            p { button type="submit" { "Save" } }
        }
    };
    Ok(page(&session, &format!("Source {}", view.name), body))
}

pub async fn update_source(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, form }: Posted,
) -> PageResult {
    let updated = sources::update(
        &state,
        &session.client,
        &id,
        input(source_body(&form, false)?)?,
    )
    .await?;
    Ok(see_other(&format!(
        "/console/sources/{}?notice=source_saved",
        updated.source_id
    )))
}
