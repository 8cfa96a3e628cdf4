//! Webhooks (subscriptions): the list with each one's health, the form that adds webhooks for
//! entities or single events, a webhook's page (facts, actions, edit form), and its changes
//! (save, pause or resume, delete, send a test, try its transformation on a sample).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use maud::{Markup, html};
use serde_json::json;

use switchyard_core::catalog;
use switchyard_core::model::{SubscriptionFilter, SubscriptionRecord, SubscriptionStatus};

use super::html::{
    badge, button_form, code, csrf_field, facts, inline_form, link, opt_time, page, table, time,
};
use super::requests::{PAGE_SIZE, input, notice, pretty, query, see_other};
use super::webhook_form::{
    auth_fields, auth_from, coalesce_field, coalesce_from, filter_field, filter_from,
    headers_field, new_events, parse_headers, partner_field, retry_field, retry_name,
    transform_field, transform_from,
};
use super::{ConsoleError, PageResult, Posted, Session};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathId;
use crate::routes::wm_partner_id;
use crate::services::transformations::{self, TriedOut, TryRequest};
use crate::services::{scope, subscriptions};
use crate::views;

pub async fn webhooks(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let status = query
        .get("status")
        .and_then(|s| SubscriptionStatus::parse(&s));
    let subs = scope::tenant(&state, &session.client)
        .list_subscriptions(&SubscriptionFilter {
            partners: None,
            status,
            ..Default::default()
        })
        .await?;
    let page_no: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let shown = subs
        .iter()
        .skip(page_no * PAGE_SIZE as usize)
        .take(PAGE_SIZE as usize);
    let mut rows = Vec::new();
    for sub in shown {
        let health = scope::tenant(&state, &session.client)
            .subscription_state(sub)
            .await?
            .ok_or_else(|| AppError::not_found("subscription"))?;
        let breaker_open = health
            .breaker_until
            .is_some_and(|until| until > state.clock.now());
        let mut health_text = format!("{} pending", health.pending);
        if health.consecutive_failures > 0 {
            health_text += &format!(", {} failing in a row", health.consecutive_failures);
        }
        if breaker_open {
            health_text += ", breaker open";
        }
        let href = format!("/console/webhooks/{}", sub.id);
        rows.push(vec![
            link(&href, &sub.event_types.join(", ")),
            html! { (sub.partner_id) },
            code(&sub.event_url),
            badge(sub.status.as_str()),
            html! { (health_text) },
            link(&format!("{href}/logs"), "Callback logs"),
        ]);
    }
    let newer = page_no.checked_sub(1);
    let older = (subs.len() > (page_no + 1) * PAGE_SIZE as usize).then_some(page_no + 1);
    let body = html! {
        (notice(&query))
        div class="actions" {
            a class="button" href="/console/webhooks/new" { "Add webhook" }
            a href="/console/webhooks" { "All" }
            " "
            a href="/console/webhooks?status=ACTIVE" { "Active" }
            " "
            a href="/console/webhooks?status=INACTIVE" { "Paused" }
        }
        (table(
            &["Events", "Partner", "URL", "Status", "Health", ""],
            &rows,
            "No webhooks yet. Add one to start receiving events.",
        ))
        p {
            @if let Some(newer) = newer {
                a href={ "/console/webhooks?page=" (newer) } { "← Newer" }
            }
            @if let Some(older) = older {
                " "
                a href={ "/console/webhooks?page=" (older) } { "Older →" }
            }
        }
    };
    Ok(page(&session, "Webhooks", body))
}

pub async fn new_webhook(session: Session) -> PageResult {
    let mut groups: BTreeMap<&str, Vec<&catalog::EventType>> = BTreeMap::new();
    for t in catalog::all() {
        groups.entry(t.resource_name).or_default().push(t);
    }
    let body = html! {
        form method="post" action="/console/webhooks" class="stack" {
            (csrf_field(&session))
            (partner_field(&session, None))
            label for="event_url" { "Callback URL" }
            input type="url" id="event_url" name="event_url"
                placeholder="https://example.com/webhooks" required;
            h2 { "Events" }
            p class="muted" {
                "Choose an entity to receive all of its events, or single events. One webhook is \
                 made per event."
            }
            @for (resource, types) in &groups {
                fieldset {
                    legend {
                        label {
                            input type="checkbox" name="entity" value=(resource);
                            " "
                            strong { (resource) }
                            ": all its events"
                        }
                    }
                    @for t in types {
                        label title=(t.description) {
                            input type="checkbox" name="event" value=(t.event_type);
                            " "
                            (t.event_type)
                        }
                    }
                }
            }
            (auth_fields(None, false))
            (retry_field("walmart"))
            (headers_field(&BTreeMap::new()))
            p { button type="submit" { "Create" } }
        }
    };
    Ok(page(&session, "Add webhook", body))
}

pub async fn create_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted { session, form }: Posted,
) -> PageResult {
    let created = subscriptions::create(
        &state,
        &session.client,
        wm_partner_id(&headers),
        input(json!({ "events": new_events(&form)? }))?,
    )
    .await?;
    // The signing secrets are shown once, here, and never again.
    let rows: Vec<Vec<Markup>> = created
        .iter()
        .map(|e| {
            vec![
                link(
                    &format!("/console/webhooks/{}", e.subscription_id),
                    &e.event_type,
                ),
                code(&e.signing_secret),
            ]
        })
        .collect();
    let body = html! {
        p class="notice" {
            "Created " (rows.len()) " webhook(s). Copy the signing secrets now: they verify the "
            code { "webhook-signature" }
            " header and are not shown again."
        }
        (table(&["Event", "Signing secret"], &rows, ""))
        p { a href="/console/webhooks" { "Back to webhooks" } }
    };
    Ok(page(&session, "Webhooks created", body))
}

/// A webhook the session may see, else the API's 404.
pub async fn visible(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<SubscriptionRecord, ConsoleError> {
    Ok(scope::visible_subscription(state, &session.client, id).await?)
}

async fn webhook_page(
    state: &AppState,
    session: &Session,
    sub: &SubscriptionRecord,
    message: Markup,
) -> PageResult {
    let health = scope::tenant(state, &session.client)
        .subscription_state(sub)
        .await?
        .ok_or_else(|| AppError::not_found("subscription"))?;
    let auth = views::open_auth(state, sub)?;
    let auth_method = auth
        .as_ref()
        .map(|a| {
            serde_json::to_value(a.auth_method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "none".into());
    let here = format!("/console/webhooks/{}", sub.id);
    let (toggle_to, toggle_label) = if sub.status == SubscriptionStatus::Active {
        ("INACTIVE", "Pause")
    } else {
        ("ACTIVE", "Resume")
    };
    let breaker_open = health.breaker_until.is_some_and(|u| u > state.clock.now());
    let facts = facts(&[
        (
            "Status",
            html! {
                (badge(sub.status.as_str())) " " (sub.disabled_reason.as_deref().unwrap_or_default())
            },
        ),
        ("Events", html! { (sub.event_types.join(", ")) }),
        ("Partner", html! { (sub.partner_id) }),
        ("Resource", html! { (sub.resource_name) }),
        ("Callback URL", code(&sub.event_url)),
        ("Authentication", html! { (auth_method) }),
        ("Retry policy", html! { (retry_name(sub)) }),
        (
            "Filter",
            match &sub.filter {
                Some(filter) => code(&filter.to_string()),
                None => html! { "none: every event of its types" },
            },
        ),
        (
            "Transformation",
            match &sub.transform {
                Some(transform) => html! { pre { code { (transform) } } },
                None => html! { "none: the envelope is sent as it is" },
            },
        ),
        (
            "Latest state only",
            html! {
                @if sub.coalesce {
                    "on: a pending delivery of a state event gives way to a newer one for the \
                     same resource"
                } @else {
                    "off"
                }
            },
        ),
        ("Pending deliveries", html! { (health.pending) }),
        ("Oldest pending", opt_time(health.oldest_pending_at)),
        ("Failures in a row", html! { (health.consecutive_failures) }),
        (
            "Circuit breaker",
            html! { @if breaker_open { (badge("open")) } @else { "closed" } },
        ),
        ("Created", time(sub.created_at)),
    ]);
    let body = html! {
        (message)
        div class="actions" {
            (button_form(session, &format!("{here}/test"), "Send a test", None))
            @if sub.transform.is_some() {
                (button_form(
                    session,
                    &format!("{here}/transform/try"),
                    "Try the transformation",
                    None,
                ))
            }
            (inline_form(session, &format!("{here}/status"), None, html! {
                input type="hidden" name="status" value=(toggle_to);
                button type="submit" { (toggle_label) }
            }))
            (button_form(
                session,
                &format!("{here}/delete"),
                "Delete",
                Some("Delete this webhook? Its pending deliveries end as failed."),
            ))
            a class="button" href={ (here) "/logs" } { "Callback logs" }
        }
        (facts)
        h2 { "Edit" }
        form method="post" action=(here) class="stack" {
            (csrf_field(session))
            label for="event_url" { "Callback URL" }
            input type="url" id="event_url" name="event_url" value=(sub.event_url) required;
            (auth_fields(None, true))
            (retry_field(retry_name(sub)))
            (headers_field(&sub.headers))
            (filter_field(sub.filter.as_ref()))
            (transform_field(sub.transform.as_deref()))
            (coalesce_field(sub.coalesce))
            p { button type="submit" { "Save" } }
        }
    };
    Ok(page(
        session,
        &format!("Webhook {}", sub.event_types.join(", ")),
        body,
    ))
}

pub async fn webhook(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    webhook_page(&state, &session, &sub, notice(&query(raw))).await
}

pub async fn update_webhook(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, form }: Posted,
) -> PageResult {
    let mut patch = json!({
        "eventUrl": form.get("event_url").unwrap_or_default(),
        "headers": parse_headers(&form)?,
    });
    if let Some(policy) = form.get("retry_policy") {
        patch["retryPolicy"] = json!(policy);
    }
    if let Some(auth) = auth_from(&form, true) {
        patch["authDetails"] = auth;
    }
    patch["filter"] = filter_from(&form)?;
    patch["transform"] = transform_from(&form);
    patch["coalesce"] = json!(coalesce_from(&form));
    let sub = subscriptions::update(&state, &session.client, &id, input(patch)?).await?;
    Ok(see_other(&format!(
        "/console/webhooks/{}?notice=saved",
        sub.id
    )))
}

pub async fn set_status(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, form }: Posted,
) -> PageResult {
    let status = form.get("status").unwrap_or_default();
    let sub = subscriptions::update(
        &state,
        &session.client,
        &id,
        input(json!({ "status": status }))?,
    )
    .await?;
    let notice = if status == "ACTIVE" {
        "resumed"
    } else {
        "paused"
    };
    Ok(see_other(&format!(
        "/console/webhooks/{}?notice={notice}",
        sub.id
    )))
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, .. }: Posted,
) -> PageResult {
    subscriptions::delete(&state, &session.client, &id).await?;
    Ok(see_other("/console/webhooks?notice=deleted"))
}

pub async fn test_webhook(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, .. }: Posted,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    let mut test = json!({
        "eventType": sub.event_types.first(),
        "eventVersion": sub.event_version,
        "resourceName": sub.resource_name,
        "eventUrl": sub.event_url,
        "headers": sub.headers,
        "partnerId": sub.partner_id,
        "filter": sub.filter,
    });
    if let Some(auth) = views::open_auth(&state, &sub)? {
        test["authDetails"] = json!(auth);
    }
    let answer =
        subscriptions::test_notification(&state, &session.client, None, input(test)?).await;
    let message = match answer {
        Ok(passes) => html! {
            p class="notice" {
                "Test sent: the endpoint answered with a 2xx."
                @match passes {
                    Some(true) => " The sample passes this webhook's filter.",
                    Some(false) => " The sample does not pass this webhook's filter: events like it are not delivered.",
                    None => "",
                }
            }
        },
        Err(e) => html! { p class="error" { "Test failed: " (e.message) } },
    };
    webhook_page(&state, &session, &sub, message).await
}

/// Runs the webhook's transformation on a sample of its event type, sending nothing, and shows
/// what the handler was given and what it would send (or that it cancels), else why it failed.
pub async fn try_transform(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, .. }: Posted,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    let answer =
        transformations::try_on_sample(&state, &session.client, &id, TryRequest::default()).await;
    let message = match answer {
        Ok(tried) => tried_out(&tried),
        Err(e) if e.status.is_client_error() => html! {
            p class="error" { "Tried on a sample, nothing sent: " (e.message) }
        },
        Err(e) => return Err(e.into()),
    };
    webhook_page(&state, &session, &sub, message).await
}

/// What a try of the transformation came to: the webhook given, and the one that would be sent.
fn tried_out(tried: &TriedOut) -> Markup {
    let as_json = |w| pretty(&serde_json::to_value(w).unwrap_or_default());
    html! {
        p class="notice" {
            "Transformation tried on a sample; nothing was sent."
            @if tried.cancel {
                " The handler cancels it: events like it are not delivered."
            }
        }
        div class="grid" {
            section {
                h2 { "Given" }
                pre { (as_json(&tried.given)) }
            }
            section {
                h2 { "Would be sent" }
                @match &tried.webhook {
                    Some(webhook) => pre { (as_json(webhook)) },
                    None => p class="muted" { "Nothing: cancelled." },
                }
            }
        }
    }
}
