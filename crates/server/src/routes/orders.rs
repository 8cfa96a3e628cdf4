//! `/api/v1/orders/facts` and `/api/v1/performance/run`: the HTTP adapters over
//! [`crate::services::orders`].

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::{PartnerHeader, wm_partner_id};
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody};
use crate::models::{FactsAppliedOut, PerformancePreviewOut};
use crate::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};
use crate::services::orders::{self, FactsRequest, RunRequest};

/// Post order facts
///
/// Facts about a partner's orders that marketplaces do not send: `shipped` (carrier, tracking
/// number), `originScan`, `delivered`, `refunded`, `customerContact`, `sellerResponse`. All are
/// applied in one transaction, or none. Needs `full_access` on ORDER. Seller performance
/// notifications are computed from them and from received order events.
#[utoipa::path(
    post, path = "/api/v1/orders/facts", tag = "performance", operation_id = "postOrderFacts",
    params(PartnerHeader),
    request_body(content = FactsRequest, example = json!({"partnerId": "seller-1", "facts": [{
        "fact": "shipped", "poNumber": "PO-1001", "marketplace": "walmart", "carrier": "UPS",
        "trackingNumber": "1Z999AA10123456784", "shippedAt": "2026-12-01T15:00:00Z"
    }]})),
    responses(
        (status = 202, description = "Applied.", body = FactsAppliedOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn post_facts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<FactsRequest>,
) -> AppResult<impl IntoResponse> {
    let applied = orders::post_facts(&state, &caller, wm_partner_id(&headers), request).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(applied)))
}

/// Compute a seller performance notification
///
/// Computes the `ALARMS` or `REPORT` payload of `SELLER_PERFORMANCE_NOTIFICATIONS` as the
/// scheduler would at `asOf` (default: now), for one marketplace or all, without sending it.
/// `payload` is null when there is nothing to report.
#[utoipa::path(
    post, path = "/api/v1/performance/run", tag = "performance", operation_id = "previewPerformanceNotification",
    params(PartnerHeader),
    request_body(content = RunRequest, example = json!({"partnerId": "seller-1", "notificationType": "ALARMS"})),
    responses(
        (status = 200, description = "The payload.", body = PerformancePreviewOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
)]
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
