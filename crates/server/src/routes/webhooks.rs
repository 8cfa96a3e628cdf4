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

use super::wm_partner_id;
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{EventTypeOut, MessageOut, SubscriptionDeletedOut, WalmartList};
use crate::services::scope::visible_subscription;
use crate::services::subscriptions::{self, CreateRequest, ListQuery, PatchRequest, TestRequest};
use crate::views;

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
    axum::Json(WalmartList { events })
}

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
    Ok(axum::Json(WalmartList { events }))
}

pub async fn get_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> AppResult<impl IntoResponse> {
    let events = subscriptions::create(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok((StatusCode::OK, axum::Json(WalmartList { events })))
}

pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<PatchRequest>,
) -> AppResult<impl IntoResponse> {
    let sub = subscriptions::update(&state, &caller, &id, patch).await?;
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

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

/// Sends a sample of the event type to `eventUrl` now and says how the endpoint answered.
pub async fn test(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TestRequest>,
) -> AppResult<impl IntoResponse> {
    subscriptions::test_notification(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok(axum::Json(MessageOut {
        message: "Eventurl successfully validated",
    }))
}
