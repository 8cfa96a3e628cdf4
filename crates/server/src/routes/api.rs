//! Switchyard's own API (`/api/v1`): publishing events, and looking at and fixing deliveries.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::wm_partner_id;
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{
    AcceptedOut, DeliveriesPage, DeliveryDetailOut, EventOut, EventsPage, RejectionSummaryOut,
    RejectionsPage, ReplayOut,
};
use crate::services::deliveries::{self, DeliveryQuery, visible_delivery};
use crate::services::events::{self, EventQuery, OutcomeRequest};
use crate::services::publish_event::{self, PublishRequest, Published};
use crate::services::rejections::{self, RejectionQuery, SummaryQuery};
use crate::services::subscription_controls::{self, ReplayRequest};

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
    let (event, deliveries) = events::get(&state, &caller, &id).await?;
    Ok(axum::Json(EventOut::detail(&event, deliveries)))
}

/// A subscriber says how it processed an event (`processed`, or `failed` with a reason such as
/// `inventory_mismatch`); failures show on the console's failures dashboard.
pub async fn report_outcome(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(request): JsonBody<OutcomeRequest>,
) -> AppResult<impl IntoResponse> {
    let outcome = events::report_outcome(&state, &caller, &id, request).await?;
    Ok((StatusCode::CREATED, axum::Json(outcome)))
}

/// Events, newest first, paged by key.
pub async fn list_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<EventQuery>,
) -> AppResult<impl IntoResponse> {
    let (events, next) = events::list(&state, &caller, q).await?;
    // Lists stay light: the raw body is on the event's own page.
    Ok(axum::Json(EventsPage {
        events: events.iter().map(EventOut::row).collect(),
        next_before: next,
    }))
}

/// Refused inbound requests, newest first: the failures dashboard's rows. A client sees those
/// of its partners' sources; requests naming no source are for admins.
pub async fn list_rejections(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<RejectionQuery>,
) -> AppResult<impl IntoResponse> {
    let (rejections, next) = rejections::list(&state, &caller, q).await?;
    Ok(axum::Json(RejectionsPage {
        next_before: next,
        rejections,
    }))
}

/// Rejections counted by source and reason (default: the last 24 hours).
pub async fn rejection_summary(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<SummaryQuery>,
) -> AppResult<impl IntoResponse> {
    let (counts, since) = rejections::summary(&state, &caller, q).await?;
    let total: u64 = counts.iter().map(|c| c.count).sum();
    Ok(axum::Json(RejectionSummaryOut {
        counts,
        since,
        total,
    }))
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> AppResult<impl IntoResponse> {
    let (deliveries, next) = deliveries::list(&state, &caller, q).await?;
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
    let (subscription_id, replayed) =
        subscription_controls::replay(&state, &caller, &id, request).await?;
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
        subscription_controls::rotate_secret(&state, &caller, &id).await?,
    ))
}

/// Delivery health over the last 24 hours.
pub async fn health(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        subscription_controls::health(&state, &caller, &id).await?,
    ))
}
