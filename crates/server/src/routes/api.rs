//! Switchyard's own API (`/api/v1`): publishing events, and looking at and fixing deliveries.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use switchyard_delivery::trace_context::{STAGE, continue_trace};
use tracing::Instrument as _;

use super::{DeliveryIdParam, EventIdParam, PartnerHeader, SubscriptionIdParam, wm_partner_id};
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{
    AcceptedOut, DeliveriesPage, DeliveryDetailOut, EventOut, EventsPage, HealthOut,
    RejectionSummaryOut, RejectionsPage, ReplayOut,
};
use crate::openapi::{BadRequest, Forbidden, NotFound, TooLarge, Unauthorized, Unavailable};
use crate::services::deliveries::{self, DeliveryQuery, visible_delivery};
use crate::services::events::{self, EventQuery, OutcomeRequest};
use crate::services::polling::{self, PollOut, PollQuery};
use crate::services::publish_event::{self, PublishRequest, Published};
use crate::services::rejections::{self, RejectionQuery, SummaryQuery};
use crate::services::subscription_controls::{self, ReplayRequest, RotatedSecret};
use crate::services::transformations::{self, TriedOut, TryRequest};
use switchyard_core::model::{DeliveryRecord, OutcomeRecord};

/// Publish an event
///
/// Validates the payload against the type's schema and stores the event with a delivery for
/// every ACTIVE subscription of the partner naming its type or topic, in one transaction;
/// answers only after the commit. A repeated `eventId` (or `Idempotency-Key`) of the same
/// partner creates nothing and answers 200. Needs `full_access` on the type's resource.
#[utoipa::path(
    post, path = "/api/v1/events", tag = "events", operation_id = "publishEvent",
    params(
        PartnerHeader,
        ("Idempotency-Key" = Option<String>, Header, description = "Another name for `eventId`: a key seen before for the partner creates nothing."),
    ),
    request_body(content = PublishRequest, example = json!({
        "eventType": "OFFER_UNPUBLISHED", "partnerId": "seller-1", "eventId": "offer-42-unpublished",
        "payload": {"sku": "SKU-1"}
    })),
    responses(
        (status = 200, description = "A duplicate (`status`: `duplicate`): nothing was stored.", body = AcceptedOut),
        (status = 202, description = "Stored, with its deliveries (`status`: `accepted`).", body = AcceptedOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn publish(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PublishRequest>,
) -> AppResult<impl IntoResponse> {
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    // The `publish` stage span, continuing the publisher's trace when it sent a `traceparent`.
    let span = tracing::info_span!(target: STAGE, "publish");
    if let Some(parent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        continue_trace(&span, parent);
    }
    let published = publish_event::publish(
        &state,
        &caller,
        wm_partner_id(&headers),
        idempotency_key,
        request,
    )
    .instrument(span)
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

/// Get an event
///
/// The event with its raw body (for received events), normalized form and deliveries.
#[utoipa::path(
    get, path = "/api/v1/events/{id}", tag = "events", operation_id = "getEvent",
    params(EventIdParam),
    responses(
        (status = 200, description = "The event.", body = EventOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let (event, deliveries) = events::get(&state, &caller, &id).await?;
    Ok(axum::Json(EventOut::detail(&event, deliveries)))
}

/// Report an event's outcome
///
/// A subscriber says how it processed an event: `processed`, or `failed` with an optional
/// machine-readable `reason` (such as `inventory_mismatch`) and a `message`; failures show on
/// the console's failures dashboard.
#[utoipa::path(
    post, path = "/api/v1/events/{id}/outcome", tag = "events", operation_id = "reportEventOutcome",
    params(EventIdParam),
    request_body(content = OutcomeRequest, example = json!({"status": "failed", "reason": "inventory_mismatch", "message": "SKU-1 is not in the catalog"})),
    responses(
        (status = 201, description = "Recorded.", body = OutcomeRecord),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn report_outcome(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(request): JsonBody<OutcomeRequest>,
) -> AppResult<impl IntoResponse> {
    let outcome = events::report_outcome(&state, &caller, &id, request).await?;
    Ok((StatusCode::CREATED, axum::Json(outcome)))
}

/// List events
///
/// Events of the partners the client manages, newest first, without their raw bodies; page with
/// `nextBefore`.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events", operation_id = "listEvents",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventsPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
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

/// List rejections
///
/// Refused inbound requests of the client's partners' sources, newest first (those naming no
/// source are for admins); page with `nextBefore`.
#[utoipa::path(
    get, path = "/api/v1/rejections", tag = "rejections", operation_id = "listRejections",
    params(RejectionQuery),
    responses(
        (status = 200, description = "A page of rejections.", body = RejectionsPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
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

/// Count rejections
///
/// Rejections counted by source and reason since a time (default: 24 hours ago).
#[utoipa::path(
    get, path = "/api/v1/rejections/summary", tag = "rejections", operation_id = "rejectionSummary",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The counts.", body = RejectionSummaryOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
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

/// List deliveries
///
/// Deliveries of the partners the client manages, newest first; page with `nextBefore`.
#[utoipa::path(
    get, path = "/api/v1/deliveries", tag = "deliveries", operation_id = "listDeliveries",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveriesPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
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

/// Get a delivery
///
/// The delivery with every attempt (status, latency, error, the first 4 KiB of the answer).
#[utoipa::path(
    get, path = "/api/v1/deliveries/{id}", tag = "deliveries", operation_id = "getDelivery",
    params(DeliveryIdParam),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryDetailOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let (delivery, attempts) = visible_delivery(&state, &caller, &id).await?;
    Ok(axum::Json(DeliveryDetailOut::new(delivery, attempts)))
}

/// Retry a delivery now
///
/// Makes the delivery pending and due now, with a fresh retry cycle.
#[utoipa::path(
    post, path = "/api/v1/deliveries/{id}/retry", tag = "deliveries", operation_id = "retryDelivery",
    params(DeliveryIdParam),
    responses(
        (status = 202, description = "Due now.", body = DeliveryRecord),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let delivery = deliveries::retry(&state, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

/// Replay a time range
///
/// Delivers again every event of the subscription received in [`since`, `until`) (`until`
/// defaults to now), under the same delivery ids.
#[utoipa::path(
    post, path = "/api/v1/subscriptions/{id}/replay", tag = "subscriptions", operation_id = "replaySubscription",
    params(SubscriptionIdParam),
    request_body(content = ReplayRequest, example = json!({"since": "2026-12-01T00:00:00Z"})),
    responses(
        (status = 202, description = "Replayed.", body = ReplayOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
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

/// Rotate the signing secret
///
/// Answers the new Standard Webhooks secret (shown only here); the old one keeps signing
/// alongside it for 24 hours.
#[utoipa::path(
    post, path = "/api/v1/subscriptions/{id}/rotate-secret", tag = "subscriptions", operation_id = "rotateSigningSecret",
    params(SubscriptionIdParam),
    responses(
        (status = 200, description = "The new secret.", body = RotatedSecret),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        subscription_controls::rotate_secret(&state, &caller, &id).await?,
    ))
}

/// Delivery health
///
/// Breaker, pacing and backlog now, with the last 24 hours' success rate and latency.
#[utoipa::path(
    get, path = "/api/v1/subscriptions/{id}/health", tag = "subscriptions", operation_id = "subscriptionHealth",
    params(SubscriptionIdParam),
    responses(
        (status = 200, description = "The health.", body = HealthOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn health(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        subscription_controls::health(&state, &caller, &id).await?,
    ))
}

/// Try the transformation
///
/// Runs a transformation (the one given, else the subscription's) on a body (the one given,
/// else a sample of the subscription's event type, as a test notification carries it) and
/// answers what would be sent; nothing is sent. Code that throws, overruns its time or memory
/// or returns something else than a webhook is a 400 `transform_failed` saying so, as an
/// attempt's log would.
#[utoipa::path(
    post, path = "/api/v1/subscriptions/{id}/transform/try", tag = "subscriptions", operation_id = "tryTransform",
    params(SubscriptionIdParam),
    request_body(content = TryRequest, example = json!({
        "transform": "function handler(webhook) { webhook.payload = {sku: webhook.payload.payload.sku}; return webhook; }"
    })),
    responses(
        (status = 200, description = "What would be sent, or that it would be cancelled.", body = TriedOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn try_transform(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(request): JsonBody<TryRequest>,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        transformations::try_on_sample(&state, &caller, &id, request).await?,
    ))
}

/// Poll a subscription's events
///
/// For a subscription whose `eventUrl` is `poll:` (nothing is pushed to it): the events after
/// `iterator`, oldest first, each as a push delivery would carry it and signed the same way, so
/// a Standard Webhooks library verifies `body` with `webhookId`, `timestamp` and `signature`.
/// Give the answer's `iterator` to the next call; with `waitSeconds`, an empty page waits up to
/// that long for the next event. Items are in the order they were stored; none is skipped when
/// nodes commit out of order.
#[utoipa::path(
    get, path = "/api/v1/subscriptions/{id}/poll", tag = "subscriptions", operation_id = "pollSubscription",
    params(SubscriptionIdParam, PollQuery),
    responses(
        (status = 200, description = "A page of events, possibly empty.", body = PollOut,
         example = json!({"data": [{"webhookId": "msg_0193f2c0a1b27c3d8e9f0a1b2c3d4e5f", "eventType": "OFFER_UNPUBLISHED",
            "createdAt": "2026-12-07T10:00:00Z", "timestamp": 1796637600,
            "signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
            "body": "{\"payload\":{\"sku\":\"SKU-1\"},\"source\":{\"eventId\":\"e1\",\"eventTime\":\"2026-12-07T10:00:00.000Z\",\"eventType\":\"OFFER_UNPUBLISHED\",\"eventVersion\":\"V1\",\"resourceVersion\":7}}"}],
            "iterator": "MTIuMDE5M2YyYzBhMWIyN2MzZDhlOWYwYTFiMmMzZDRlNWY", "done": true})),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn poll(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    QueryParams(query): QueryParams<PollQuery>,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        polling::poll(&state, &caller, &id, query).await?,
    ))
}
