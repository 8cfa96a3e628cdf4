//! Reconciliation in the console: "missed by webhook" on the failures dashboard (per
//! marketplace over time, per source, and the backfilled events a click away), a source's
//! settings and runs on its page, and the button that runs it now.

use std::collections::BTreeMap;

use jiff::Timestamp;
use maud::{Markup, html};

use switchyard_core::model::ReconcileRun;

use super::html::{badge, bar_chart, button_form, facts, labelled_badge, link, table, time};
use super::requests::see_other;
use super::{PageResult, Posted, Session};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathId;
use crate::services::reconciliation;
use crate::services::scope;
use crate::services::sources::SourceView;

/// Runs read for the dashboard at most.
const RUNS_READ: u32 = 5_000;
/// Backfilled events listed on the dashboard.
const BACKFILLED_LISTED: usize = 50;

/// One source's runs in the window.
#[derive(Default)]
struct SourceTotals<'a> {
    runs: u64,
    checked: u64,
    missed: u64,
    /// The newest run.
    last: Option<&'a ReconcileRun>,
}

/// The dashboard's "Missed by webhook": order facts reconciliation found that no webhook had
/// announced, since `start`, charted per marketplace in `buckets` of `bucket` seconds.
pub async fn missed_by_webhook(
    state: &AppState,
    session: &Session,
    start: Timestamp,
    bucket: i64,
    buckets: &[Timestamp],
) -> Result<Markup, AppError> {
    let tenant = scope::tenant(state, &session.client);
    let runs = tenant.list_reconcile_runs(None, start, RUNS_READ).await?;
    let names: BTreeMap<String, String> = tenant
        .list_sources(None)
        .await?
        .into_iter()
        .map(|s| (s.id.to_string(), s.name))
        .collect();
    let source_name = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("deleted source {id}"))
    };
    let mut chart: BTreeMap<String, BTreeMap<Timestamp, u64>> = BTreeMap::new();
    let mut per_source: BTreeMap<(String, String), SourceTotals> = BTreeMap::new();
    for run in &runs {
        let at = run.started_at.as_second().div_euclid(bucket) * bucket;
        if let Ok(at) = Timestamp::from_second(at)
            && run.missing > 0
        {
            *chart
                .entry(run.marketplace.clone())
                .or_default()
                .entry(at)
                .or_default() += run.missing;
        }
        let row = per_source
            .entry((run.marketplace.clone(), run.source_id.to_string()))
            .or_default();
        row.runs += 1;
        row.checked += run.orders_checked;
        row.missed += run.missing;
        // Runs come newest first.
        row.last.get_or_insert(run);
    }
    let source_rows: Vec<Vec<Markup>> = per_source
        .iter()
        .map(|((marketplace, source), totals)| {
            vec![
                html! { (marketplace) },
                link(&format!("/console/sources/{source}"), &source_name(source)),
                html! { (totals.runs) },
                html! { (totals.checked) },
                html! { strong { (totals.missed) } },
                totals.last.map(last_outcome).unwrap_or_default(),
            ]
        })
        .collect();
    let backfilled_rows: Vec<Vec<Markup>> = runs
        .iter()
        .flat_map(|run| run.backfilled.iter().map(move |b| (run, b)))
        .take(BACKFILLED_LISTED)
        .map(|(run, b)| {
            vec![
                time(run.started_at),
                html! { (run.marketplace) },
                html! { (source_name(&run.source_id.to_string())) },
                html! { (b.resource_id) },
                link(
                    &format!("/console/events/{}", b.event_id),
                    b.topic.as_deref().unwrap_or("event"),
                ),
            ]
        })
        .collect();
    Ok(html! {
        h2 id="missed-by-webhook" { "Missed by webhook" }
        p class="muted" {
            "Order facts each marketplace's orders API reported that no webhook had announced; "
            "reconciliation stored and delivered each as an event (origin reconciliation)."
        }
        (bar_chart("Missed by webhook, by marketplace", buckets, &chart))
        (table(
            &["Marketplace", "Source", "Runs", "Orders checked", "Missed by webhook", "Last run"],
            &source_rows,
            "No reconciliation ran in this window (a source reconciles once it has `reconcile` settings).",
        ))
        h3 { "Backfilled events" }
        (table(
            &["Run", "Marketplace", "Source", "Order", "Event"],
            &backfilled_rows,
            "Nothing was missed by webhook in this window.",
        ))
    })
}

/// The newest run's outcome: `ok`, or its first error's code and message.
fn last_outcome(run: &ReconcileRun) -> Markup {
    match run.errors.first() {
        None => badge("ok"),
        Some(e) => html! {
            (labelled_badge("failed", &e.code)) " " (e.message)
        },
    }
}

/// A source's reconciliation on its page: the settings (credentials masked), the newest run's
/// error when it failed, the recent runs and the button that runs it now.
pub async fn source_section(
    state: &AppState,
    session: &Session,
    view: &SourceView,
) -> Result<Markup, AppError> {
    let Some(settings) = &view.reconcile else {
        return Ok(html! {
            h2 { "Reconciliation" }
            p class="muted" {
                "Off. Set `reconcile` on the source (PATCH /api/v1/sources/{id}) to ask the \
                 marketplace's orders API for what its webhooks missed."
            }
        });
    };
    let runs = scope::tenant(state, &session.client)
        .list_reconcile_runs(Some(view.source_id), Timestamp::UNIX_EPOCH, 10)
        .await?;
    let credentials: Vec<&str> = settings.credentials.keys().map(String::as_str).collect();
    let settings_facts = facts(&[
        ("Orders API", html! { code { (settings.api_base_url) } }),
        (
            "Credentials",
            html! { (credentials.join(", ")) " (write-only)" },
        ),
        ("Every", html! { (settings.interval_seconds) " s" }),
        ("Lookback", html! { (settings.lookback_seconds) " s" }),
    ]);
    let run_rows: Vec<Vec<Markup>> = runs
        .iter()
        .map(|r| {
            vec![
                time(r.started_at),
                html! { (r.trigger) },
                html! { (r.orders_checked) },
                html! { (r.missing) },
                last_outcome(r),
            ]
        })
        .collect();
    let failing = runs.first().and_then(|r| r.errors.first());
    Ok(html! {
        h2 { "Reconciliation" }
        @if let Some(e) = failing {
            p class="error" {
                "The last run failed: " strong { (e.code) } " — " (e.message)
            }
        }
        (settings_facts)
        div class="actions" {
            (button_form(
                session,
                &format!("/console/sources/{}/reconcile", view.source_id),
                "Reconcile now",
                None,
            ))
        }
        (table(
            &["Started", "Trigger", "Orders checked", "Missed by webhook", "Outcome"],
            &run_rows,
            "No run yet.",
        ))
    })
}

/// `POST /console/sources/{id}/reconcile`: a run now, then back to the source's page.
pub async fn reconcile_now(
    axum::extract::State(state): axum::extract::State<AppState>,
    PathId(id): PathId,
    Posted { session, .. }: Posted,
) -> PageResult {
    let run = reconciliation::run_now(&state, &session.client, &id).await?;
    let notice = if run.errors.is_empty() {
        "reconciled"
    } else {
        "reconcile_failed"
    };
    Ok(see_other(&format!(
        "/console/sources/{}?notice={notice}",
        run.source_id
    )))
}
