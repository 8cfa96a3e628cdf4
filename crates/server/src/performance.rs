//! Seller performance notifications: the scheduler that publishes `SELLER_PERFORMANCE_NOTIFICATIONS`
//! (`ALARMS` daily at 6:00 AM PT, `REPORT` Mondays at 5:00 AM PT) for every partner with an
//! ACTIVE subscription to it, and the order facts they are computed from.
//!
//! Each run is one event per (partner, marketplace, type, scheduled time), stored with that as its
//! dedup key: however many nodes compute a run, and however often, it is stored, and so
//! delivered, once. A hub that was down sends only the latest missed run when it comes back,
//! because only the latest scheduled time at or before now is ever considered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::watch;

use switchyard_core::model::{EventRecord, SubscriptionFilter, SubscriptionStatus};
use switchyard_core::performance::{self, OrderFacts};
use switchyard_core::schedule::{PerformanceKind, PerformanceSchedule, run_key};
use switchyard_store::{InsertOutcome, StoreError};

use crate::AppState;
use switchyard_core::model::EventId;

/// The event type the notifications are published as.
pub const EVENT_TYPE: &str = "SELLER_PERFORMANCE_NOTIFICATIONS";
/// The origin of the notification events, for their dedup keys.
pub const ORIGIN: &str = "switchyard-performance";
/// Orders without a change for this long are left out of the computation.
const ORDER_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 90);

/// Runs already stored by this process, so a tick does not recompute them.
pub type RunsDone = Arc<Mutex<BTreeSet<String>>>;

fn topic(kind: PerformanceKind) -> &'static str {
    match kind {
        PerformanceKind::Alarms => "performance.alarms",
        PerformanceKind::Report => "performance.report",
    }
}

/// The payload of one run for one partner and marketplace, or `None` when there is nothing to
/// say (no order in any alarm; no KPI with data).
pub fn compute(
    kind: PerformanceKind,
    partner_id: &str,
    marketplace: Option<&str>,
    orders: &[OrderFacts],
    as_of: Timestamp,
) -> Option<Value> {
    match kind {
        PerformanceKind::Alarms => performance::alarms(partner_id, marketplace, orders, as_of),
        PerformanceKind::Report => {
            let payload = performance::report(partner_id, marketplace, orders, as_of);
            let has_kpis = payload["enNotification"]["metrics"]
                .as_array()
                .is_some_and(|m| !m.is_empty());
            has_kpis.then_some(payload)
        }
    }
}

/// The orders a run for `as_of` looks at, with every event received so far derived into them.
pub async fn orders_for(
    state: &AppState,
    partner_id: &str,
    as_of: Timestamp,
) -> Result<Vec<OrderFacts>, StoreError> {
    // The hub's own work across every partner: the scheduler, and the preview a use case asks
    // for after checking the caller manages `partner_id`.
    let store = state.store.unscoped();
    store.derive_pending().await?;
    store
        .partner_orders(partner_id, as_of - ORDER_HORIZON)
        .await
}

/// Publishes every run due now that is not stored yet; returns how many events it stored.
/// The scheduler calls it every minute; tests call it after moving the clock.
pub async fn run_due(state: &AppState, done: &RunsDone) -> Result<u32, StoreError> {
    let now = state.clock.now();
    let schedule = PerformanceSchedule::new();
    // Partners with an ACTIVE subscription, and since when they have one.
    let mut partners: BTreeMap<String, Timestamp> = BTreeMap::new();
    for sub in state
        .store
        .unscoped()
        .list_subscriptions(&SubscriptionFilter {
            event_type: Some(EVENT_TYPE.into()),
            status: Some(SubscriptionStatus::Active),
            ..Default::default()
        })
        .await?
    {
        let since = partners
            .entry(sub.partner_id.0.clone())
            .or_insert(sub.created_at);
        *since = (*since).min(sub.created_at);
    }
    let mut stored = 0;
    for kind in [PerformanceKind::Alarms, PerformanceKind::Report] {
        let Some(scheduled) = schedule.latest_run_at_or_before(now, kind) else {
            continue;
        };
        for (partner, subscribed_since) in &partners {
            // A run from before the first subscription is not owed.
            if *subscribed_since > scheduled {
                continue;
            }
            let memo = run_key(partner, None, kind, scheduled);
            if done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&memo)
            {
                continue;
            }
            let orders = orders_for(state, partner, scheduled).await?;
            let marketplaces: BTreeSet<&str> =
                orders.iter().map(|o| o.marketplace.as_str()).collect();
            for marketplace in marketplaces {
                let Some(payload) = compute(kind, partner, Some(marketplace), &orders, scheduled)
                else {
                    continue;
                };
                if publish(state, partner, Some(marketplace), kind, scheduled, payload).await? {
                    stored += 1;
                }
            }
            done.lock().unwrap_or_else(|p| p.into_inner()).insert(memo);
        }
    }
    if stored > 0 {
        state.dispatcher.wake();
    }
    Ok(stored)
}

/// Stores one run's event; `false` when that run was stored before (by this node or another).
async fn publish(
    state: &AppState,
    partner_id: &str,
    marketplace: Option<&str>,
    kind: PerformanceKind,
    scheduled: Timestamp,
    payload: Value,
) -> Result<bool, StoreError> {
    let id = EventId::new();
    let event = EventRecord {
        id,
        origin: ORIGIN.into(),
        dedup_key: Some(run_key(partner_id, marketplace, kind, scheduled)),
        partner_id: partner_id.into(),
        event_type: EVENT_TYPE.into(),
        event_version: switchyard_core::catalog::V1.into(),
        topic: Some(topic(kind).into()),
        public_event_id: id.to_string(),
        occurred_at: scheduled,
        received_at: state.clock.now(),
        payload,
        normalized: None,
        raw_body: None,
        resource_key: None,
        headers: Default::default(),
        trace_parent: None,
        resource_version: None,
        native_elided: false,
    };
    match state.store.unscoped().insert_event(event, None).await? {
        InsertOutcome::Created { .. } => {
            tracing::info!(
                partner_id,
                marketplace,
                notification_type = kind.notification_type(),
                %scheduled,
                "published a seller performance notification"
            );
            Ok(true)
        }
        InsertOutcome::Duplicate { .. } => Ok(false),
    }
}

/// Runs [`run_due`] every `interval` until shutdown.
pub async fn run_scheduler(
    state: AppState,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let done = RunsDone::default();
    loop {
        if let Err(e) = run_due(&state, &done).await {
            tracing::warn!(error = %e, "performance notifications: a run failed; retried next tick");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
