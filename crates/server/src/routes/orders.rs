//! `/api/v1/orders/facts` and `/api/v1/performance/run`: the HTTP adapters over
//! [`crate::services::orders`].

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::wm_partner_id;
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody};
use crate::services::orders::{self, FactsRequest, RunRequest};

/// Applies posted order facts (shipped, originScan, delivered, refunded, customerContact,
/// sellerResponse): all of them, or none when one is invalid.
pub async fn post_facts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<FactsRequest>,
) -> AppResult<impl IntoResponse> {
    let applied = orders::post_facts(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(applied)))
}

/// Computes one notification now, as the scheduler would at `asOf`, without sending it.
pub async fn run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RunRequest>,
) -> AppResult<impl IntoResponse> {
    let preview =
        orders::preview_performance(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok(axum::Json(preview))
}
