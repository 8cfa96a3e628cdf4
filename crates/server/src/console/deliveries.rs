//! Deliveries: a webhook's callback logs (its attempts, filtered, with a retry per delivery, and
//! the form that replays a time range, `replays`), and retrying one delivery.

use axum::extract::{RawQuery, State};
use maud::{Markup, html};

use switchyard_core::model::AttemptFilter;

use super::html::{badge, code, csrf_field, inline_form, link, page, q, table, time};
use super::requests::{
    PAGE_SIZE, back_to, notice, older_page, parse_time, parse_uuid, query, see_other,
    time_input_value,
};
use super::webhooks::visible;
use super::{PageResult, Posted, Session};
use crate::AppState;
use crate::extract::PathId;
use crate::services::{deliveries, scope};

pub async fn callback_logs(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    let query = query(raw);
    let status = query.get("status").unwrap_or_default();
    let since = parse_time(&query, "since")?;
    let until = parse_time(&query, "until")?;
    let logged = scope::tenant(&state, &session.client)
        .list_attempts(&AttemptFilter {
            subscription_id: sub.id,
            succeeded: match status.as_str() {
                "succeeded" => Some(true),
                "failed" => Some(false),
                _ => None,
            },
            since,
            until,
            after: parse_uuid(&query, "after"),
            limit: PAGE_SIZE,
        })
        .await?;
    let here = format!(
        "/console/webhooks/{}/logs?status={}&since={}&until={}",
        sub.id,
        q(&status),
        q(&query.get("since").unwrap_or_default()),
        q(&query.get("until").unwrap_or_default())
    );
    let rows: Vec<Vec<Markup>> = logged
        .iter()
        .map(|l| {
            let a = &l.attempt;
            let excerpt: String = a
                .response_excerpt
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let error = [a.error_class.as_deref(), a.error_message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            let retry = inline_form(
                &session,
                &format!("/console/deliveries/{}/retry", a.delivery_id),
                None,
                html! {
                    input type="hidden" name="back" value=(here);
                    button type="submit" class="secondary" { "Retry" }
                },
            );
            vec![
                time(a.attempted_at),
                link(&format!("/console/events/{}", l.event_id), &l.event_type),
                badge(if a.succeeded { "succeeded" } else { "failed" }),
                html! {
                    @match a.status_code {
                        Some(c) => (c),
                        None => "—",
                    }
                },
                html! { (a.latency_ms) " ms" },
                html! { (error) },
                code(&excerpt),
                retry,
            ]
        })
        .collect();
    let statuses = [
        ("", "All"),
        ("succeeded", "Succeeded"),
        ("failed", "Failed"),
    ];
    let older = older_page(
        &format!("/console/webhooks/{}/logs", sub.id),
        &query,
        "after",
        &logged,
        |l| l.attempt.id,
    );
    let body = html! {
        (notice(&query))
        p {
            (link(&format!("/console/webhooks/{}", sub.id), &sub.event_types.join(", ")))
            " · "
            code { (sub.event_url) }
            " · "
            (badge(sub.status.as_str()))
        }
        form method="get" class="filters" {
            label {
                "Status"
                select name="status" {
                    @for (value, label) in statuses {
                        option value=(value) selected[status == value] { (label) }
                    }
                }
            }
            label {
                "Since (UTC)"
                input type="datetime-local" name="since" value=(time_input_value(since));
            }
            label {
                "Until (UTC)"
                input type="datetime-local" name="until" value=(time_input_value(until));
            }
            button type="submit" { "Filter" }
        }
        (table(
            &["Time", "Event", "Result", "Status", "Latency", "Error", "Response", ""],
            &rows,
            "No attempts match.",
        ))
        p {
            @if let Some(older) = older {
                (link(&older, "Older →"))
            }
        }
        h2 { "Replay a time range" }
        form method="post" action={ "/console/webhooks/" (sub.id.to_string()) "/replay" }
            class="filters" data-confirm="Deliver every event of this range again?" {
            (csrf_field(&session))
            label {
                "Received since (UTC)"
                input type="datetime-local" name="since" required;
            }
            label {
                "Until (UTC, empty: now)"
                input type="datetime-local" name="until";
            }
            button type="submit" { "Replay" }
        }
    };
    Ok(page(&session, "Callback logs", body))
}

pub async fn retry_delivery(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, form }: Posted,
) -> PageResult {
    deliveries::retry(&state, &session.client, &id).await?;
    let back = back_to(&form, "/console/webhooks");
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!("{back}{sep}notice=retried")))
}
