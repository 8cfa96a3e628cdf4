//! The failures dashboard (refused requests, failed attempts and subscribers' reported failures,
//! charted per hour or six hours and totalled by reason), and its drill-downs: refused requests
//! and reported failures.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};

use switchyard_core::model::{
    OutcomeFilter, RejectionFilter, SubscriptionFilter, SubscriptionRecord,
};
use switchyard_store::BucketCount;

use super::html::{badge, bar_chart, link, page, q, table, time};
use super::requests::{PAGE_SIZE, older_page, parse_time, parse_uuid, query};
use super::{PageResult, Session};
use crate::AppState;
use crate::error::AppError;
use crate::services::scope;

/// Counts per series (as `series` names a row) and bucket, for a chart.
fn by(
    rows: &[BucketCount],
    series: impl Fn(&BucketCount) -> String,
) -> BTreeMap<String, BTreeMap<Timestamp, u64>> {
    let mut out: BTreeMap<String, BTreeMap<Timestamp, u64>> = BTreeMap::new();
    for r in rows {
        *out.entry(series(r))
            .or_default()
            .entry(r.bucket)
            .or_default() += r.count;
    }
    out
}

/// Counts per (key, reason) over the window, the largest first.
fn totals(rows: &[BucketCount]) -> Vec<((String, String), u64)> {
    let mut out: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in rows {
        *out.entry((r.key.clone(), r.reason.clone())).or_default() += r.count;
    }
    let mut sorted: Vec<_> = out.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted
}

pub async fn failures(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let week = query.get("window").as_deref() == Some("7d");
    let (span, bucket) = if week {
        (SignedDuration::from_hours(24 * 7), 6 * 3600)
    } else {
        (SignedDuration::from_hours(24), 3600)
    };
    let now = state.clock.now();
    // Whole buckets, so the first bar is not a sliver.
    let start_secs = (now - span).as_second().div_euclid(bucket) * bucket + bucket;
    let start = Timestamp::from_second(start_secs).map_err(|_| AppError::internal())?;
    let report = scope::tenant(&state, &session.client)
        .failure_report(start, bucket)
        .await?;
    let buckets: Vec<Timestamp> = (0..)
        .map(|i| start_secs + i * bucket)
        .take_while(|s| *s <= now.as_second())
        .filter_map(|s| Timestamp::from_second(s).ok())
        .collect();
    let subs: BTreeMap<String, SubscriptionRecord> = scope::tenant(&state, &session.client)
        .list_subscriptions(&SubscriptionFilter {
            partners: None,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|s| (s.id.to_string(), s))
        .collect();
    let webhook_name = |id: &str| {
        subs.get(id)
            .map(|s| format!("{} → {}", s.event_types.join(", "), s.event_url))
            .unwrap_or_else(|| format!("deleted webhook {id}"))
    };
    let reason = |r: &BucketCount| r.reason.clone();
    let since_q = q(&start.to_string());
    let rejection_rows: Vec<Vec<Markup>> = totals(&report.rejections)
        .into_iter()
        .map(|((source, reason), n)| {
            let href = format!(
                "/console/rejections?source={}&reason={}&since={since_q}",
                q(&source),
                q(&reason)
            );
            vec![
                html! { (source) },
                html! { (reason) },
                link(&href, &n.to_string()),
            ]
        })
        .collect();
    let attempt_rows: Vec<Vec<Markup>> = totals(&report.attempt_failures)
        .into_iter()
        .map(|((sub, reason), n)| {
            let href = format!("/console/webhooks/{sub}/logs?status=failed&since={since_q}");
            vec![
                html! { (webhook_name(&sub)) },
                html! { (reason) },
                link(&href, &n.to_string()),
            ]
        })
        .collect();
    let outcome_rows: Vec<Vec<Markup>> = totals(&report.outcomes)
        .into_iter()
        .map(|((client, reason), n)| {
            let href = format!("/console/outcomes?reason={}&since={since_q}", q(&reason));
            vec![
                html! { (client) },
                html! { (reason) },
                link(&href, &n.to_string()),
            ]
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (label, rows) in [
        ("refused", &report.rejections),
        ("delivery", &report.attempt_failures),
        ("subscriber", &report.outcomes),
    ] {
        for r in rows.iter() {
            *reasons.entry(format!("{label}: {}", r.reason)).or_default() += r.count;
        }
    }
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top_rows: Vec<Vec<Markup>> = top
        .iter()
        .take(10)
        .map(|(reason, n)| vec![html! { (reason) }, html! { (n) }])
        .collect();
    let missed =
        super::reconciliation::missed_by_webhook(&state, &session, start, bucket, &buckets).await?;
    let body = html! {
        div class="actions" {
            @if week {
                (link("/console/failures", "Last 24 hours"))
                " "
                strong { "Last 7 days" }
            } @else {
                strong { "Last 24 hours" }
                " "
                (link("/console/failures?window=7d", "Last 7 days"))
            }
        }
        h2 { "Top reasons" }
        (table(&["Reason", "Count"], &top_rows, "Nothing failed in this window."))
        (bar_chart(
            "Refused inbound requests, by reason",
            &buckets,
            &by(&report.rejections, reason),
        ))
        (bar_chart(
            "Failed delivery attempts, by reason",
            &buckets,
            &by(&report.attempt_failures, reason),
        ))
        (bar_chart(
            "Failures reported by subscribers, by reason",
            &buckets,
            &by(&report.outcomes, reason),
        ))
        (missed)
        h2 { "Refused inbound requests, by source" }
        (table(&["Source", "Reason", "Requests"], &rejection_rows, "No request was refused."))
        h2 { "Failed deliveries, by webhook" }
        (table(&["Webhook", "Reason", "Attempts"], &attempt_rows, "No delivery attempt failed."))
        h2 { "Failures reported by subscribers" }
        (table(
            &["Client", "Reason", "Events"],
            &outcome_rows,
            "No subscriber reported a failure.",
        ))
    };
    Ok(page(&session, "Failures", body))
}

pub async fn rejections(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let found = scope::tenant(&state, &session.client)
        .list_rejections(&RejectionFilter {
            partners: None,
            source_id: query.get("source"),
            reason: query.get("reason"),
            since: parse_time(&query, "since")?,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
        })
        .await?;
    let rows: Vec<Vec<Markup>> = found
        .iter()
        .map(|r| {
            vec![
                time(r.received_at),
                html! { (r.source_id) },
                badge("refused"),
                html! { (r.reason) },
                html! { (r.status_code) },
                html! { (r.message) },
                html! { (r.remote_addr.as_deref().unwrap_or("—")) },
                html! { (r.body_size) " bytes" },
            ]
        })
        .collect();
    let older = older_page("/console/rejections", &query, "before", &found, |r| r.id);
    let body = html! {
        p { (link("/console/failures", "← Failures")) }
        (table(
            &["Time", "Source", "", "Reason", "Status", "Message", "From", "Body"],
            &rows,
            "No refused requests match.",
        ))
        p {
            @if let Some(older) = older {
                (link(&older, "Older →"))
            }
        }
    };
    Ok(page(&session, "Refused requests", body))
}

pub async fn outcomes(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let found = scope::tenant(&state, &session.client)
        .list_outcomes(&OutcomeFilter {
            partners: None,
            status: Some("failed".into()),
            reason: query.get("reason"),
            since: parse_time(&query, "since")?,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
            ..Default::default()
        })
        .await?;
    let rows: Vec<Vec<Markup>> = found
        .iter()
        .map(|o| {
            let event = o.event_id.to_string();
            vec![
                time(o.reported_at),
                link(&format!("/console/events/{event}"), &event),
                html! { (o.partner_id) },
                html! { (o.client_id) },
                html! { (o.reason.as_deref().unwrap_or("—")) },
                html! { (o.message.as_deref().unwrap_or_default()) },
            ]
        })
        .collect();
    let older = older_page("/console/outcomes", &query, "before", &found, |o| o.id);
    let body = html! {
        p { (link("/console/failures", "← Failures")) }
        (table(
            &["Reported", "Event", "Partner", "Client", "Reason", "Message"],
            &rows,
            "No reported failures match.",
        ))
        p {
            @if let Some(older) = older {
                (link(&older, "Older →"))
            }
        }
    };
    Ok(page(&session, "Failures reported by subscribers", body))
}
