//! Walmart Marketplace's `/v3/webhooks` API: event types, subscriptions, test notifications; the
//! HTTP adapters over [`crate::services::subscriptions`].
//!
//! Shapes follow Walmart's (`docs/marketplaces.md`): answers say `events`, requests may also say
//! `event` or `eventTypes`. Listing event types and subscriptions needs no scope; creating or
//! changing a subscription needs a scope other than `no_access` on its resource (`seeds/001_*`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use uuid::Uuid;

use switchyard_core::catalog;
use switchyard_core::model::{SubscriptionFilter, SubscriptionStatus};

use super::wm_partner_id;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{EventTypeOut, MessageOut, SubscriptionDeletedOut, WalmartList};
use crate::services::scope::{visible_partners, visible_subscription};
use crate::services::subscriptions::{self, CreateRequest, PatchRequest, TestRequest};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    subscription_id: Option<String>,
    event_type: Option<String>,
    resource_name: Option<String>,
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            SubscriptionStatus::parse(s)
                .ok_or_else(|| AppError::invalid("status", "status must be ACTIVE or INACTIVE"))?,
        ),
    };
    let subscription_id = match q.subscription_id.as_deref() {
        None => None,
        Some(raw) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            // No subscription has that id.
            Err(_) => return Ok(axum::Json(WalmartList { events: vec![] })),
        },
    };
    let filter = SubscriptionFilter {
        partners: visible_partners(&caller),
        subscription_id,
        event_type: q.event_type,
        resource_name: q.resource_name,
        status,
    };
    let subs = state.store.list_subscriptions(&filter).await?;
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
