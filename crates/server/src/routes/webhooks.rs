//! Walmart Marketplace's `/v3/webhooks` API: event types, subscriptions, test notifications; the
//! HTTP adapters over [`crate::services::subscriptions`].
//!
//! Shapes follow Walmart's (`docs/marketplaces.md`): answers say `events`, requests may also say
//! `event` or `eventTypes`. Listing event types and subscriptions needs no scope; creating or
//! changing a subscription needs a scope other than `no_access` on its resource (`seeds/001_*`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use switchyard_core::catalog;

use super::{PartnerHeader, SubscriptionIdParam, wm_partner_id};
use crate::AppState;
use crate::error::AppResult;
use crate::error::ErrorOut;
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{
    CreatedSubscriptionsOut, EventTypeListOut, EventTypeOut, SubscriptionDeletedOut,
    SubscriptionListOut, TestedOut,
};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, TooLarge, Unauthorized, Unavailable,
};
use crate::services::scope::visible_subscription;
use crate::services::subscriptions::{self, CreateRequest, ListQuery, PatchRequest, TestRequest};
use crate::views::{self, SubscriptionOut};

/// List event types
///
/// Walmart's native types, SellerCenter's events, the normalized topics and the operational
/// events, each with the JSON schema its payload must match.
#[utoipa::path(
    get, path = "/v3/webhooks/eventTypes", tag = "webhooks", operation_id = "listEventTypes",
    responses(
        (status = 200, description = "The catalog.", body = EventTypeListOut),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn event_types() -> impl IntoResponse {
    let events = catalog::all()
        .iter()
        .map(|t| EventTypeOut {
            description: t.description,
            event_type: t.event_type,
            event_version: t.event_version,
            family: t.family,
            resource_name: t.resource_name,
            schema: t.schema.clone(),
        })
        .collect();
    axum::Json(EventTypeListOut { events })
}

/// List subscriptions
///
/// The subscriptions of the partners the client manages, credentials masked.
#[utoipa::path(
    get, path = "/v3/webhooks/subscriptions", tag = "webhooks", operation_id = "listSubscriptions",
    params(ListQuery),
    responses(
        (status = 200, description = "The subscriptions.", body = SubscriptionListOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let subs = subscriptions::list(&state, &caller, q).await?;
    let events = subs
        .iter()
        .map(|s| views::subscription(&state, s))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(axum::Json(SubscriptionListOut { events }))
}

/// Get a subscription
///
/// Credentials in `authDetails` are masked (`********`).
#[utoipa::path(
    get, path = "/v3/webhooks/subscriptions/{id}", tag = "webhooks", operation_id = "getSubscription",
    params(SubscriptionIdParam),
    responses(
        (status = 200, description = "The subscription.", body = SubscriptionOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

/// Create subscriptions
///
/// One subscription per entry of `events` (the body may also say `event` or `eventTypes`). Each
/// answer entry carries the Standard Webhooks `signingSecret`, shown only here. Needs a scope
/// other than `no_access` on the resource.
#[utoipa::path(
    post, path = "/v3/webhooks/subscriptions", tag = "webhooks", operation_id = "createSubscriptions",
    params(PartnerHeader),
    request_body(content = CreateRequest, examples(
        ("http" = (summary = "An HTTP endpoint", value = json!({"events": [{
            "eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
            "eventUrl": "http://127.0.0.1:9000/hook",
            "authDetails": {"authMethod": "BASIC_AUTH", "userName": "shop", "password": "s3cret"},
            "retryPolicy": "walmart"
        }]}))),
        ("nats" = (summary = "A NATS JetStream subject", value = json!({"events": [{
            "eventType": "PO_CREATED", "resourceName": "ORDER",
            "eventUrl": "nats://127.0.0.1:4222/orders.created"
        }]}))),
        ("amqp" = (summary = "A RabbitMQ exchange and routing key", value = json!({"events": [{
            "eventType": "PO_CREATED", "resourceName": "ORDER",
            "eventUrl": "amqp://127.0.0.1:5672/%2f?exchange=orders&routingKey=created",
            "authDetails": {"authMethod": "BASIC_AUTH", "userName": "guest", "password": "guest"}
        }]}))),
        ("redis" = (summary = "A Redis stream", value = json!({"events": [{
            "eventType": "INVENTORY_OOS", "resourceName": "INVENTORY",
            "eventUrl": "redis://127.0.0.1:6379/0?stream=inventory&maxlen=100000"
        }]}))),
        ("mqtt" = (summary = "An MQTT topic", value = json!({"events": [{
            "eventType": "PO_CREATED", "resourceName": "ORDER",
            "eventUrl": "mqtt://127.0.0.1:1883/shop/orders"
        }]}))),
        ("poll" = (summary = "A polling subscription (read at its pollUrl)", value = json!({"events": [{
            "eventType": "PO_CREATED", "resourceName": "ORDER", "eventUrl": "poll:"
        }]}))),
    )),
    responses(
        (status = 200, description = "Created.", body = CreatedSubscriptionsOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = TooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> AppResult<impl IntoResponse> {
    let events = subscriptions::create(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok((
        StatusCode::OK,
        axum::Json(CreatedSubscriptionsOut { events }),
    ))
}

/// Change a subscription
///
/// Changes only the fields given. `null` removes `authDetails`, `maxInFlight` or `rateLimit`; a
/// masked credential sent back keeps the stored one; read-only fields may be sent back
/// unchanged. Setting `ACTIVE` clears `disabledReason`.
#[utoipa::path(
    patch, path = "/v3/webhooks/subscriptions/{id}", tag = "webhooks", operation_id = "updateSubscription",
    params(SubscriptionIdParam),
    request_body(content = PatchRequest, example = json!({"eventUrl": "http://127.0.0.1:9000/new-hook", "status": "INACTIVE"})),
    responses(
        (status = 200, description = "The subscription as changed.", body = SubscriptionOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<PatchRequest>,
) -> AppResult<impl IntoResponse> {
    let sub = subscriptions::update(&state, &caller, &id, patch).await?;
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

/// Delete a subscription
///
/// Its pending deliveries end as failed.
#[utoipa::path(
    delete, path = "/v3/webhooks/subscriptions/{id}", tag = "webhooks", operation_id = "deleteSubscription",
    params(SubscriptionIdParam),
    responses(
        (status = 200, description = "Deleted.", body = SubscriptionDeletedOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let id = subscriptions::delete(&state, &caller, &id).await?;
    Ok(axum::Json(SubscriptionDeletedOut {
        message: "Successfully deleted subscription",
        subscription_id: id,
    }))
}

/// Send a test notification
///
/// Sends a sample of the event type to `eventUrl` now, with the given auth and headers, and says
/// whether the endpoint answered 2xx.
#[utoipa::path(
    post, path = "/v3/webhooks/test", tag = "webhooks", operation_id = "testNotification",
    params(PartnerHeader),
    request_body(content = TestRequest, example = json!({
        "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
        "eventUrl": "http://127.0.0.1:9000/hook"
    })),
    responses(
        (status = 200, description = "The endpoint answered 2xx (and, with a `filter`, whether the sample passes it).", body = TestedOut),
        (status = 400, description = "Invalid input, or the endpoint did not answer 2xx (`test_delivery_failed`, `field`: `eventUrl`).", body = ErrorOut),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn test(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TestRequest>,
) -> AppResult<impl IntoResponse> {
    let passes =
        subscriptions::test_notification(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok(axum::Json(TestedOut {
        filter_matches: passes,
        message: "Eventurl successfully validated",
    }))
}
