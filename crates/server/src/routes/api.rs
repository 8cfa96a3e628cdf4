//! Switchyard's own API (`/api/v1`): publishing events, and looking at and fixing deliveries.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use uuid::Uuid;

use switchyard_core::model::{
    DeliveryFilter, DeliveryStatus, EventFilter, OutcomeRecord, RejectionFilter,
};

use super::parse_id;
use super::wm_partner_id;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{
    AcceptedOut, DeliveriesPage, DeliveryDetailOut, EventOut, EventsPage, HealthOut,
    RejectionSummaryOut, RejectionsPage, ReplayOut,
};
use crate::services::deliveries::{self, visible_delivery};
use crate::services::publish_event::{self, PublishRequest, Published};
use crate::services::scope::{visible_partners, visible_subscription};
use crate::services::subscriptions::{self, ReplayRequest};

/// Stores an event with its deliveries in one transaction; answers only after the commit.
pub async fn publish(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PublishRequest>,
) -> AppResult<impl IntoResponse> {
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let published = publish_event::publish(
        &state,
        &caller,
        wm_partner_id(&headers),
        idempotency_key,
        request,
    )
    .await?;
    Ok(match published {
        Published::Accepted {
            event_id,
            deliveries,
        } => (
            StatusCode::ACCEPTED,
            axum::Json(AcceptedOut {
                deliveries: Some(deliveries),
                event_id,
                status: "accepted",
            }),
        ),
        Published::Duplicate { event_id } => (
            StatusCode::OK,
            axum::Json(AcceptedOut {
                deliveries: None,
                event_id,
                status: "duplicate",
            }),
        ),
    })
}

pub async fn get_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let id = parse_id(&id, "event")?;
    let event = match state.store.get_event(id).await? {
        Some(e) if caller.manages(&e.partner_id) => e,
        _ => return Err(AppError::not_found("event")),
    };
    let deliveries = state
        .store
        .list_deliveries(&DeliveryFilter {
            event_id: Some(id),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok(axum::Json(EventOut::detail(&event, deliveries)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    status: String,
    reason: Option<String>,
    message: Option<String>,
}

/// A subscriber says how it processed an event (`processed`, or `failed` with a reason such as
/// `inventory_mismatch`); failures show on the console's failures dashboard.
pub async fn report_outcome(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(request): JsonBody<OutcomeRequest>,
) -> AppResult<impl IntoResponse> {
    let id = parse_id(&id, "event")?;
    if !matches!(request.status.as_str(), "processed" | "failed") {
        return Err(AppError::invalid(
            "status",
            "status must be \"processed\" or \"failed\"",
        ));
    }
    if let Some(reason) = &request.reason
        && (reason.is_empty()
            || reason.len() > 100
            || !reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    {
        return Err(AppError::invalid(
            "reason",
            "reason is 1 to 100 lowercase letters, digits or underscores (inventory_mismatch)",
        ));
    }
    if request
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > 1000)
    {
        return Err(AppError::invalid(
            "message",
            "message is at most 1000 characters",
        ));
    }
    let event = match state.store.get_event(id).await? {
        Some(e) if caller.manages(&e.partner_id) => e,
        _ => return Err(AppError::not_found("event")),
    };
    let outcome = OutcomeRecord {
        id: Uuid::now_v7(),
        event_id: event.id,
        partner_id: event.partner_id,
        client_id: caller.id.clone(),
        status: request.status,
        reason: request.reason,
        message: request.message,
        reported_at: state.clock.now(),
    };
    state.store.insert_outcome(outcome.clone()).await?;
    Ok((StatusCode::CREATED, axum::Json(outcome)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    topic: Option<String>,
    marketplace: Option<String>,
    partner_id: Option<String>,
    since: Option<Timestamp>,
    before: Option<String>,
    limit: Option<u32>,
}

/// Events, newest first, paged by key.
pub async fn list_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<EventQuery>,
) -> AppResult<impl IntoResponse> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = EventFilter {
        partners: visible_partners(&caller),
        topic: q.topic,
        marketplace: q.marketplace,
        partner_id: q.partner_id,
        resource_keys: None,
        since: q.since,
        until: None,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let events = state.store.list_events(&filter).await?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    // Lists stay light: the raw body is on the event's own page.
    Ok(axum::Json(EventsPage {
        events: events.iter().map(EventOut::row).collect(),
        next_before: next,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionQuery {
    source_id: Option<String>,
    reason: Option<String>,
    since: Option<Timestamp>,
    before: Option<String>,
    limit: Option<u32>,
}

/// Refused inbound requests, newest first: the failures dashboard's rows. A client sees those
/// of its partners' sources; requests naming no source are for admins.
pub async fn list_rejections(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<RejectionQuery>,
) -> AppResult<impl IntoResponse> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = RejectionFilter {
        partners: visible_partners(&caller),
        source_id: q.source_id,
        reason: q.reason,
        since: q.since,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let rejections = state.store.list_rejections(&filter).await?;
    let next = (rejections.len() == limit as usize)
        .then(|| rejections.last().map(|r| r.id))
        .flatten();
    Ok(axum::Json(RejectionsPage {
        next_before: next,
        rejections,
    }))
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    since: Option<Timestamp>,
}

/// Rejections counted by source and reason (default: the last 24 hours).
pub async fn rejection_summary(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<SummaryQuery>,
) -> AppResult<impl IntoResponse> {
    let since = q
        .since
        .unwrap_or_else(|| state.clock.now() - SignedDuration::from_hours(24));
    let counts = state
        .store
        .rejection_summary(visible_partners(&caller), since)
        .await?;
    let total: u64 = counts.iter().map(|c| c.count).sum();
    Ok(axum::Json(RejectionSummaryOut {
        counts,
        since,
        total,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryQuery {
    subscription_id: Option<String>,
    event_id: Option<String>,
    status: Option<String>,
    /// The `nextBefore` of the previous page.
    before: Option<String>,
    limit: Option<u32>,
}

fn optional_uuid(raw: Option<&str>, field: &str) -> AppResult<Option<Uuid>> {
    raw.map(|r| {
        Uuid::parse_str(r).map_err(|_| AppError::invalid(field, format!("{field} must be a UUID")))
    })
    .transpose()
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> AppResult<impl IntoResponse> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            AppError::invalid("status", "status must be pending, succeeded or failed")
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = DeliveryFilter {
        partners: visible_partners(&caller),
        subscription_id: optional_uuid(q.subscription_id.as_deref(), "subscriptionId")?,
        event_id: optional_uuid(q.event_id.as_deref(), "eventId")?,
        status,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let deliveries = state.store.list_deliveries(&filter).await?;
    let next = (deliveries.len() == limit as usize)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(axum::Json(DeliveriesPage {
        deliveries,
        next_before: next,
    }))
}

pub async fn get_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let (delivery, attempts) = visible_delivery(&state, &caller, &id).await?;
    Ok(axum::Json(DeliveryDetailOut { delivery, attempts }))
}

pub async fn retry_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let delivery = deliveries::retry(&state, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

pub async fn replay(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(request): JsonBody<ReplayRequest>,
) -> AppResult<impl IntoResponse> {
    let (subscription_id, replayed) = subscriptions::replay(&state, &caller, &id, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ReplayOut {
            replayed,
            subscription_id,
        }),
    ))
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        subscriptions::rotate_secret(&state, &caller, &id).await?,
    ))
}

/// Delivery health over the last 24 hours.
pub async fn health(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    let now = state.clock.now();
    let since = now - SignedDuration::from_hours(24);
    let attempts = state.store.attempts_since(sub.id, since, 100_000).await?;
    let last_success = attempts
        .iter()
        .rev()
        .find(|a| a.succeeded)
        .map(|a| a.attempted_at);
    let last_failure = attempts
        .iter()
        .rev()
        .find(|a| !a.succeeded)
        .map(|a| a.attempted_at);
    let consecutive_failures = attempts.iter().rev().take_while(|a| !a.succeeded).count();
    let successes = attempts.iter().filter(|a| a.succeeded).count();
    let success_rate = (!attempts.is_empty()).then(|| successes as f64 / attempts.len() as f64);
    let mut latencies: Vec<u64> = attempts.iter().map(|a| a.latency_ms).collect();
    latencies.sort_unstable();
    let percentile = |p: f64| -> Option<u64> {
        if latencies.is_empty() {
            return None;
        }
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        Some(latencies[rank - 1])
    };
    let pace = state.store.subscription_state(sub.id).await?;
    let breaker = match pace.breaker_until {
        _ if pace.consecutive_failures < sub.breaker.failure_threshold => "closed",
        Some(until) if until > now => "open",
        _ => "half_open",
    };
    let held = pace.paced_until.filter(|until| *until > now);
    Ok(axum::Json(HealthOut {
        attempts: attempts.len(),
        backlog: pace.pending,
        breaker,
        breaker_until: pace.breaker_until,
        consecutive_failures,
        disabled_reason: sub.disabled_reason.clone(),
        failing_since: pace.failing_since,
        last_failure_at: last_failure,
        last_success_at: last_success,
        latency_p50_ms: percentile(0.50),
        latency_p95_ms: percentile(0.95),
        oldest_pending_at: pace.oldest_pending_at,
        paced: held.is_some() || sub.rate_limit.is_some() || sub.max_in_flight.is_some(),
        paced_until: held,
        status: sub.status,
        subscription_id: sub.id,
        success_rate,
        window: "24h",
    }))
}
