//! Deliveries: reading one the caller may see, and retrying it.

use switchyard_core::model::{AttemptRecord, Client, DeliveryRecord};

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
    match state.store.get_delivery(id).await? {
        Some((d, attempts)) if caller.manages(&d.partner_id) => Ok((d, attempts)),
        _ => Err(AppError::not_found("delivery")),
    }
}

/// Makes a delivery the caller may see due now, whatever its state; returns it as stored.
pub async fn retry(state: &AppState, caller: &Client, id: &str) -> AppResult<DeliveryRecord> {
    let (delivery, _) = visible_delivery(state, caller, id).await?;
    let delivery = state
        .store
        .retry_delivery(delivery.id, state.clock.now())
        .await?
        .ok_or_else(|| AppError::not_found("delivery"))?;
    state.dispatcher.wake();
    Ok(delivery)
}
