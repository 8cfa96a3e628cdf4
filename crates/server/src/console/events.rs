//! Events: the searchable list (topic, marketplace, partner, resource, time), and an event's page
//! (raw body, normalized form, headers kept, payload, deliveries with their attempts, reported
//! outcomes).

use axum::extract::{RawQuery, State};
use maud::{Markup, html};

use switchyard_core::catalog;
use switchyard_core::model::{DeliveryStatus, EventFilter, OutcomeFilter};
use switchyard_marketplaces::Kind;

use super::html::{badge, code, facts, inline_form, link, opt_time, page, table, time};
use super::requests::{
    PAGE_SIZE, older_page, parse_time, parse_uuid, pretty, query, time_input_value,
};
use super::{PageResult, Session};
use crate::AppState;
use crate::extract::PathId;
use crate::models::{origin_of, source_of};
use crate::services::{events, scope};
use switchyard_core::model::PartnerId;

/// What a resource search names: `type:id` as given, or a bare id under every resource type.
fn resource_keys(given: &str) -> Vec<String> {
    if given.contains(':') {
        return vec![given.to_string()];
    }
    [
        "order", "item", "product", "return", "shipment", "package", "feed", "account",
    ]
    .iter()
    .map(|kind| format!("{kind}:{given}"))
    .collect()
}

/// How the event came (`webhook`, `reconciliation`, `publish`), with its source when it has one.
fn origin_badge(e: &switchyard_core::model::EventRecord) -> Markup {
    let origin = origin_of(e);
    html! {
        span class={"badge origin-" (origin)} { (origin) }
        @if let Some(source) = source_of(e) {
            " " (link(&format!("/console/sources/{source}"), "source"))
        }
    }
}

pub async fn events(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let since = parse_time(&query, "since")?;
    let until = parse_time(&query, "until")?;
    let found = scope::tenant(&state, &session.client)
        .list_events(&EventFilter {
            partners: None,
            topic: query.get("topic"),
            marketplace: query.get("marketplace"),
            partner_id: query.get("partner").map(PartnerId::from),
            resource_keys: query.get("resource").map(|r| resource_keys(&r)),
            since,
            until,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
        })
        .await?;
    let rows: Vec<Vec<Markup>> = found
        .iter()
        .map(|e| {
            let marketplace = e
                .normalized
                .as_ref()
                .and_then(|n| n["marketplace"].as_str())
                .unwrap_or(if origin_of(e) == "publish" {
                    "published"
                } else {
                    "—"
                });
            vec![
                time(e.received_at),
                link(&format!("/console/events/{}", e.id), &e.event_type),
                html! { (e.topic.as_deref().unwrap_or("—")) },
                html! { (marketplace) },
                html! { (e.partner_id) },
                html! { (e.resource_key.as_deref().unwrap_or("—")) },
                origin_badge(e),
            ]
        })
        .collect();
    let topic = query.get("topic");
    let topics = catalog::all()
        .iter()
        .filter(|t| t.family == catalog::Family::Normalized)
        .map(|t| t.event_type);
    let marketplace = query.get("marketplace");
    let mut marketplaces: Vec<&str> = Kind::ALL.iter().map(|k| k.marketplace()).collect();
    marketplaces.sort_unstable();
    marketplaces.dedup();
    let value = |name: &str| query.get(name).unwrap_or_default();
    let older = older_page("/console/events", &query, "before", &found, |e| e.id);
    let body = html! {
        form method="get" class="filters" {
            label {
                "Topic"
                select name="topic" {
                    option value="" { "Any" }
                    @for t in topics {
                        option selected[topic.as_deref() == Some(t)] { (t) }
                    }
                }
            }
            label {
                "Marketplace"
                select name="marketplace" {
                    option value="" { "Any" }
                    @for m in &marketplaces {
                        option selected[marketplace.as_deref() == Some(*m)] { (m) }
                    }
                }
            }
            label { "Partner" input type="text" name="partner" value=(value("partner")); }
            label {
                "Resource id"
                input type="text" name="resource" value=(value("resource"))
                    placeholder="PO-1 or order:PO-1";
            }
            label {
                "Since (UTC)"
                input type="datetime-local" name="since" value=(time_input_value(since));
            }
            label {
                "Until (UTC)"
                input type="datetime-local" name="until" value=(time_input_value(until));
            }
            button type="submit" { "Search" }
        }
        (table(
            &["Received", "Event", "Topic", "Marketplace", "Partner", "Resource", "Origin"],
            &rows,
            "No events match.",
        ))
        p {
            @if let Some(older) = older {
                (link(&older, "Older →"))
            }
        }
    };
    Ok(page(&session, "Events", body))
}

pub async fn event(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
) -> PageResult {
    let (event, deliveries) = events::get(&state, &session.client, &id).await?;
    let back = format!("/console/events/{}", event.id);
    let mut delivery_sections = Vec::new();
    for d in &deliveries {
        let attempts = scope::tenant(&state, &session.client)
            .get_delivery(d.id)
            .await?
            .map(|(_, a)| a)
            .unwrap_or_default();
        let rows: Vec<Vec<Markup>> = attempts
            .iter()
            .map(|a| {
                vec![
                    time(a.attempted_at),
                    badge(if a.succeeded { "succeeded" } else { "failed" }),
                    html! {
                        @match a.status_code {
                            Some(c) => (c),
                            None => "—",
                        }
                    },
                    html! { (a.latency_ms) " ms" },
                    html! {
                        (a.error_message
                            .as_deref()
                            .or(a.error_class.as_deref())
                            .unwrap_or_default())
                    },
                    // The trace the attempt is part of, to look up in the operator's tracing
                    // backend (and the subscriber's logs, which got it in `traceparent`).
                    html! {
                        @match &a.trace_id {
                            Some(trace) => code title="trace id" { (trace) },
                            None => "—",
                        }
                    },
                ]
            })
            .collect();
        let retry = inline_form(
            &session,
            &format!("/console/deliveries/{}/retry", d.id),
            None,
            html! {
                input type="hidden" name="back" value=(back);
                button type="submit" { "Retry" }
            },
        );
        delivery_sections.push(html! {
            h3 {
                (link(&format!("/console/webhooks/{}", d.subscription_id), "Webhook"))
                " " (badge(d.status.as_str()))
                " · " (d.attempts) " attempt(s) · next " (opt_time(d.next_attempt_at))
            }
            // Why a delivery went without being sent: superseded by a newer event of the same
            // resource, or cancelled by the subscription's transformation.
            @if matches!(d.status, DeliveryStatus::Superseded | DeliveryStatus::Cancelled) {
                @if let Some(note) = &d.last_error {
                    p class="muted" { (note) }
                }
            }
            p class="actions" { (retry) }
            (table(
                &["Time", "Result", "Status", "Latency", "Error", "Trace"],
                &rows,
                "Not attempted yet.",
            ))
        });
    }
    let outcomes = scope::tenant(&state, &session.client)
        .list_outcomes(&OutcomeFilter {
            event_id: Some(event.id),
            limit: 100,
            ..Default::default()
        })
        .await?;
    let outcome_rows: Vec<Vec<Markup>> = outcomes
        .iter()
        .map(|o| {
            vec![
                time(o.reported_at),
                html! { (o.client_id) },
                badge(&o.status),
                html! { (o.reason.as_deref().unwrap_or("—")) },
                html! { (o.message.as_deref().unwrap_or_default()) },
            ]
        })
        .collect();
    let header_rows: Vec<Vec<Markup>> = event
        .headers
        .iter()
        .map(|(k, v)| vec![code(k), html! { (v) }])
        .collect();
    let facts = facts(&[
        ("Event type", html! { (event.event_type) }),
        ("Topic", html! { (event.topic.as_deref().unwrap_or("—")) }),
        ("Partner", html! { (event.partner_id) }),
        ("Origin", origin_badge(&event)),
        ("Marketplace event id", html! { (event.public_event_id) }),
        (
            "Resource",
            html! { (event.resource_key.as_deref().unwrap_or("—")) },
        ),
        ("Occurred", time(event.occurred_at)),
        ("Received", time(event.received_at)),
    ]);
    let body = html! {
        (facts)
        div class="grid" {
            section {
                h2 { "Raw body" }
                @match &event.raw_body {
                    Some(bytes) => {
                        @match std::str::from_utf8(bytes) {
                            Ok(text) => pre { (text) },
                            Err(_) => p class="muted" { (bytes.len()) " bytes, not UTF-8" },
                        }
                    },
                    None => p class="muted" { "Published through the API: no marketplace body." },
                }
            }
            section {
                h2 { "Normalized" }
                @match &event.normalized {
                    Some(n) => pre { (pretty(n)) },
                    None => p class="muted" { "No normalized form." },
                }
            }
        }
        h2 { "Headers kept" }
        @if header_rows.is_empty() {
            p class="muted" { "None kept." }
        } @else {
            (table(&["Header", "Value"], &header_rows, ""))
        }
        h2 { "Payload delivered" }
        pre { (pretty(&event.payload)) }
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p class="empty" { "No subscription matched this event." }
        }
        @for section in delivery_sections {
            (section)
        }
        h2 { "Reported outcomes" }
        (table(
            &["Time", "Client", "Status", "Reason", "Message"],
            &outcome_rows,
            "No subscriber reported an outcome.",
        ))
    };
    Ok(page(&session, &format!("Event {}", event.event_type), body))
}
