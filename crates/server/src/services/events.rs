//! Events: reading those the caller may see, and the outcomes subscribers report about them.

use jiff::Timestamp;
use serde::Deserialize;
use uuid::Uuid;

use switchyard_core::model::{
    Client, DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, OutcomeRecord,
};

use super::scope::tenant;
use super::{next_before, optional_uuid, page_limit};
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::routes::parse_id;
use switchyard_core::model::EventId;
use switchyard_core::model::PartnerId;

/// An event the caller may see, with its deliveries (at most 1,000).
pub async fn get(
    state: &AppState,
    caller: &Client,
    id: &str,
) -> AppResult<(EventRecord, Vec<DeliveryRecord>)> {
    let id = parse_id(id, "event")?;
    let event = match tenant(state, caller).get_event(id).await? {
        Some(e) if caller.manages(&e.partner_id) => e,
        _ => return Err(AppError::not_found("event")),
    };
    let deliveries = tenant(state, caller)
        .list_deliveries(&DeliveryFilter {
            event_id: Some(id),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok((event, deliveries))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// `processed` or `failed`.
    #[schema(pattern = "^(processed|failed)$")]
    pub status: String,
    /// A short machine-readable reason (`inventory_mismatch`), for failures.
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9_]+$")]
    pub reason: Option<String>,
    #[schema(max_length = 1000)]
    pub message: Option<String>,
}

/// A subscriber says how it processed an event (`processed`, or `failed` with a reason such as
/// `inventory_mismatch`); failures show on the console's failures dashboard.
pub async fn report_outcome(
    state: &AppState,
    caller: &Client,
    id: &str,
    request: OutcomeRequest,
) -> AppResult<OutcomeRecord> {
    let id = parse_id(id, "event")?;
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
    let event = match tenant(state, caller).get_event(id).await? {
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
    tenant(state, caller)
        .insert_outcome(outcome.clone())
        .await?;
    Ok(outcome)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events normalized onto this topic (`order.created`, …).
    pub topic: Option<String>,
    /// Only events received from this marketplace (a source kind), or `api` for published ones.
    pub marketplace: Option<String>,
    /// Only this partner's.
    pub partner_id: Option<String>,
    /// Only events received at or after this time.
    pub since: Option<Timestamp>,
    /// The `nextBefore` of the previous page.
    pub before: Option<String>,
    /// At most this many (default 100; asks above 1,000 get 1,000).
    pub limit: Option<u32>,
}

/// Events, newest first, paged by key.
pub async fn list(
    state: &AppState,
    caller: &Client,
    q: EventQuery,
) -> AppResult<(Vec<EventRecord>, Option<EventId>)> {
    let limit = page_limit(q.limit);
    let filter = EventFilter {
        partners: None,
        topic: q.topic,
        marketplace: q.marketplace,
        partner_id: q.partner_id.map(PartnerId::from),
        resource_keys: None,
        since: q.since,
        until: None,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let events = tenant(state, caller).list_events(&filter).await?;
    let next = next_before(&events, limit, |e| e.id);
    Ok((events, next))
}
