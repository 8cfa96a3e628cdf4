//! Deliveries: listing and reading those the caller may see, and retrying one.

use serde::Deserialize;

use switchyard_core::model::{
    AttemptRecord, Client, DeliveryFilter, DeliveryRecord, DeliveryStatus,
};

use super::scope::tenant;
use super::{next_before, optional_uuid, page_limit};
use switchyard_core::model::DeliveryId;

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::routes::parse_id;

/// A delivery with its attempts, if the caller may see it; else 404.
pub async fn visible_delivery(
    state: &AppState,
    caller: &Client,
    raw_id: &str,
) -> AppResult<(DeliveryRecord, Vec<AttemptRecord>)> {
    let id = parse_id(raw_id, "delivery")?;
    match tenant(state, caller).get_delivery(id).await? {
        Some((d, attempts)) if caller.manages(&d.partner_id) => Ok((d, attempts)),
        _ => Err(AppError::not_found("delivery")),
    }
}

/// Makes a delivery the caller may see due now, whatever its state; returns it as stored.
pub async fn retry(state: &AppState, caller: &Client, id: &str) -> AppResult<DeliveryRecord> {
    let (delivery, _) = visible_delivery(state, caller, id).await?;
    let delivery = tenant(state, caller)
        .retry_delivery(delivery.id, state.clock.now())
        .await?
        .ok_or_else(|| AppError::not_found("delivery"))?;
    state.dispatcher.wake();
    Ok(delivery)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this subscription's.
    #[param(format = Uuid)]
    pub subscription_id: Option<String>,
    /// Only this event's.
    #[param(format = Uuid)]
    pub event_id: Option<String>,
    /// Only deliveries in this status.
    #[param(value_type = Option<switchyard_core::model::DeliveryStatus>)]
    pub status: Option<String>,
    /// The `nextBefore` of the previous page.
    pub before: Option<String>,
    /// At most this many (default 100; asks above 1,000 get 1,000).
    pub limit: Option<u32>,
}

/// Deliveries of the partners the caller manages, newest first, paged by key.
pub async fn list(
    state: &AppState,
    caller: &Client,
    q: DeliveryQuery,
) -> AppResult<(Vec<DeliveryRecord>, Option<DeliveryId>)> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            AppError::invalid("status", "status must be pending, succeeded or failed")
        })?),
    };
    let limit = page_limit(q.limit);
    let filter = DeliveryFilter {
        partners: None,
        subscription_id: optional_uuid(q.subscription_id.as_deref(), "subscriptionId")?,
        event_id: optional_uuid(q.event_id.as_deref(), "eventId")?,
        status,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let deliveries = tenant(state, caller).list_deliveries(&filter).await?;
    let next = next_before(&deliveries, limit, |d| d.id);
    Ok((deliveries, next))
}
