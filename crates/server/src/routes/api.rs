//! Switchyard's own API (`/api/v1`): publishing events, and looking at and fixing deliveries.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use switchyard_core::catalog::{self, Family};
use switchyard_core::model::{
    Access, AttemptRecord, Client, DeliveryFilter, DeliveryRecord, DeliveryStatus, EventFilter,
    EventRecord, OutcomeRecord, RejectionFilter,
};
use switchyard_core::signatures::standard_webhooks;
use switchyard_store::InsertOutcome;

use super::parse_id;
use super::wm_partner_id;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::services::scope::{resolve_partner, visible_partners, visible_subscription};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishRequest {
    event_type: String,
    event_version: Option<String>,
    partner_id: Option<String>,
    event_id: Option<String>,
    /// When the fact happened; defaults to now.
    occurred_at: Option<Timestamp>,
    /// What the event is about, for subscriptions with `ordering: "resource"`.
    resource: Option<ResourceRef>,
    payload: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// Stores an event with its deliveries in one transaction; answers only after the commit.
pub async fn publish(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(p): JsonBody<PublishRequest>,
) -> AppResult<impl IntoResponse> {
    let entry = catalog::find(&p.event_type).ok_or_else(|| {
        AppError::bad_request(
            "unknown_event_type",
            format!(
                "unknown event type {:?}; GET /v3/webhooks/eventTypes lists them",
                p.event_type
            ),
        )
        .with_field("eventType")
    })?;
    let version = p
        .event_version
        .unwrap_or_else(|| entry.event_version.to_string());
    if version != entry.event_version {
        return Err(AppError::bad_request(
            "unknown_event_version",
            format!("{} has version {}", entry.event_type, entry.event_version),
        )
        .with_field("eventVersion"));
    }
    let partner_id = resolve_partner(&caller, p.partner_id, wm_partner_id(&headers), "partnerId")?;
    if caller.access_to(entry.resource_name) != Access::FullAccess {
        return Err(AppError::forbidden(
            "insufficient_scope",
            format!(
                "publishing {} events needs full_access on {}",
                entry.event_type, entry.resource_name
            ),
        ));
    }
    catalog::validate_payload(entry.event_type, &p.payload)?;
    if let Some(r) = &p.resource
        && (r.kind.is_empty() || r.id.is_empty() || r.kind.len() + r.id.len() > 255)
    {
        return Err(AppError::invalid(
            "resource",
            "resource needs a type and an id (255 characters at most)",
        ));
    }
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let dedup_key = p.event_id.clone().or(idempotency_key);
    if dedup_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 255)
    {
        return Err(AppError::invalid(
            "eventId",
            "eventId must be 1 to 255 characters",
        ));
    }
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let event = EventRecord {
        id,
        origin: format!("publish:{partner_id}"),
        dedup_key,
        partner_id,
        event_type: entry.event_type.to_string(),
        event_version: version,
        topic: (entry.family == Family::Normalized).then(|| entry.event_type.to_string()),
        public_event_id: p.event_id.unwrap_or_else(|| id.to_string()),
        occurred_at: p.occurred_at.unwrap_or(now),
        received_at: now,
        payload: p.payload,
        normalized: None,
        raw_body: None,
        resource_key: p.resource.map(|r| format!("{}:{}", r.kind, r.id)),
        headers: Default::default(),
    };
    match state.store.insert_event(event, None).await? {
        InsertOutcome::Created {
            event_id,
            deliveries,
        } => {
            if deliveries > 0 {
                state.dispatcher.wake();
            }
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(
                    json!({"eventId": event_id, "status": "accepted", "deliveries": deliveries}),
                ),
            ))
        }
        InsertOutcome::Duplicate { event_id } => Ok((
            StatusCode::OK,
            axum::Json(json!({"eventId": event_id, "status": "duplicate"})),
        )),
    }
}

fn event_json(e: &EventRecord) -> Value {
    // The raw body as text when it is UTF-8 (marketplaces send JSON), else base64.
    let raw = e.raw_body.as_ref().map(|raw| match std::str::from_utf8(raw) {
        Ok(text) => json!({"encoding": "utf-8", "body": text}),
        Err(_) => json!({"encoding": "base64", "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)}),
    });
    json!({
        "raw": raw,
        "normalized": e.normalized,
        "eventId": e.id,
        "publicEventId": e.public_event_id,
        "origin": e.origin,
        "partnerId": e.partner_id,
        "eventType": e.event_type,
        "eventVersion": e.event_version,
        "topic": e.topic,
        "occurredAt": e.occurred_at,
        "receivedAt": e.received_at,
        "payload": e.payload,
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
    let mut out = event_json(&event);
    out["deliveries"] = json!(deliveries);
    Ok(axum::Json(out))
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
    Ok((StatusCode::CREATED, axum::Json(json!(outcome))))
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
    let mut views: Vec<Value> = events.iter().map(event_json).collect();
    for v in &mut views {
        // Lists stay light: the raw body is on the event's own page.
        if let Some(obj) = v.as_object_mut() {
            obj.remove("raw");
        }
    }
    Ok(axum::Json(json!({"events": views, "nextBefore": next})))
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
    Ok(axum::Json(
        json!({"rejections": rejections, "nextBefore": next}),
    ))
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
    Ok(axum::Json(
        json!({"since": since, "total": total, "counts": counts}),
    ))
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
    Ok(axum::Json(
        json!({"deliveries": deliveries, "nextBefore": next}),
    ))
}

/// A delivery with its attempts, if the caller may see it; else 404.
async fn visible_delivery(
    state: &AppState,
    caller: &Client,
    raw_id: &str,
) -> AppResult<(DeliveryRecord, Vec<AttemptRecord>)> {
    let id = parse_id(raw_id, "delivery")?;
    match state.store.get_delivery(id).await? {
        Some((d, attempts)) if caller.manages(&d.partner_id) => Ok((d, attempts)),
        _ => Err(AppError::not_found("delivery")),
    }
}

pub async fn get_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let (delivery, attempts) = visible_delivery(&state, &caller, &id).await?;
    let mut out = json!(delivery);
    out["attempts"] = json!(attempts);
    Ok(axum::Json(out))
}

pub async fn retry_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let (delivery, _) = visible_delivery(&state, &caller, &id).await?;
    let delivery = state
        .store
        .retry_delivery(delivery.id, state.clock.now())
        .await?
        .ok_or_else(|| AppError::not_found("delivery"))?;
    state.dispatcher.wake();
    Ok((StatusCode::ACCEPTED, axum::Json(json!(delivery))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    since: Timestamp,
    until: Option<Timestamp>,
}

pub async fn replay(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(r): JsonBody<ReplayRequest>,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    let now = state.clock.now();
    let until = r.until.unwrap_or(now + SignedDuration::from_millis(1));
    if until <= r.since {
        return Err(AppError::invalid("until", "until must be after since"));
    }
    let replayed = state.store.replay(sub.id, r.since, until, now).await?;
    if replayed > 0 {
        state.dispatcher.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"subscriptionId": sub.id, "replayed": replayed})),
    ))
}

/// How long a rotated-out signing secret keeps signing alongside the new one.
const PREVIOUS_SECRET_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

pub async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let mut sub = visible_subscription(&state, &caller, &id).await?;
    let now = state.clock.now();
    let secret = standard_webhooks::generate_secret();
    let expires = now + PREVIOUS_SECRET_OVERLAP;
    sub.previous_secret_sealed = Some(sub.signing_secret_sealed.clone());
    sub.previous_secret_expires_at = Some(expires);
    sub.signing_secret_sealed = state.secrets.seal(&secret);
    sub.updated_at = now;
    if !state.store.update_subscription(sub.clone()).await? {
        return Err(AppError::not_found("subscription"));
    }
    Ok(axum::Json(json!({
        "subscriptionId": sub.id,
        "signingSecret": secret,
        "previousSecretExpiresAt": expires,
    })))
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
    Ok(axum::Json(json!({
        "subscriptionId": sub.id,
        "status": sub.status,
        "disabledReason": sub.disabled_reason,
        "breaker": breaker,
        "breakerUntil": pace.breaker_until,
        "failingSince": pace.failing_since,
        "paced": held.is_some() || sub.rate_limit.is_some() || sub.max_in_flight.is_some(),
        "pacedUntil": held,
        "backlog": pace.pending,
        "oldestPendingAt": pace.oldest_pending_at,
        "window": "24h",
        "lastSuccessAt": last_success,
        "lastFailureAt": last_failure,
        "consecutiveFailures": consecutive_failures,
        "attempts": attempts.len(),
        "successRate": success_rate,
        "latencyP50Ms": percentile(0.50),
        "latencyP95Ms": percentile(0.95),
    })))
}
