//! Order facts and seller performance on demand: what sellers tell the hub about their orders
//! beyond what marketplaces send, and a preview of the notifications computed from it.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use switchyard_core::model::{Access, Client};
use switchyard_core::performance::OrderFact;
use switchyard_core::schedule::PerformanceKind;
use switchyard_store::{OrderChange, OrderUpdate};

use super::scope::{resolve_partner, tenant};
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::models::{FactsAppliedOut, PerformancePreviewOut};
use crate::performance;

/// At most this many facts in one request.
const MAX_FACTS: usize = 1000;

/// Facts about a partner's orders.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderFacts)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FactsRequest {
    /// Default: `WM_PARTNER.ID`, else the client's only partner.
    pub partner_id: Option<String>,
    /// Between 1 and 1,000; all are applied, or none when one is invalid.
    #[schema(value_type = Vec<switchyard_core::wire_schema::OrderFactInput>, min_items = 1, max_items = 1000)]
    pub facts: Vec<Value>,
}

/// Applies posted order facts (shipped, originScan, delivered, refunded, customerContact,
/// sellerResponse): all of them, or none when one is invalid.
pub async fn post_facts(
    state: &AppState,
    caller: &Client,
    header_partner: Option<&str>,
    request: FactsRequest,
) -> AppResult<FactsAppliedOut> {
    if caller.access_to("ORDER") != Access::FullAccess {
        return Err(AppError::forbidden(
            "insufficient_scope",
            "posting order facts needs full_access on ORDER",
        ));
    }
    let partner = resolve_partner(caller, request.partner_id, header_partner, "partnerId")?;
    if request.facts.is_empty() || request.facts.len() > MAX_FACTS {
        return Err(AppError::invalid(
            "facts",
            format!("give between 1 and {MAX_FACTS} facts"),
        ));
    }
    let mut updates = Vec::with_capacity(request.facts.len());
    for (i, raw) in request.facts.iter().enumerate() {
        let fact = OrderFact::from_json(raw)
            .and_then(|f| f.validate().map(|()| f))
            .map_err(|e| match e {
                switchyard_core::CoreError::Invalid { field, message } => {
                    AppError::invalid(format!("facts[{i}].{field}"), message)
                }
                other => AppError::from(other),
            })?;
        updates.push(OrderUpdate {
            marketplace: fact.marketplace().to_string(),
            po_number: fact.po_number().to_string(),
            change: OrderChange::Fact(fact),
        });
    }
    let count = updates.len();
    tenant(state, caller)
        .update_orders(&partner, updates, state.clock.now())
        .await?;
    Ok(FactsAppliedOut {
        applied: count,
        partner_id: partner,
    })
}

/// Which notification to compute, for whom and as of when.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PerformanceRun)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    pub partner_id: Option<String>,
    pub notification_type: PerformanceKind,
    pub as_of: Option<Timestamp>,
    pub marketplace: Option<String>,
}

/// Computes one notification now, as the scheduler would at `asOf`, without sending it.
pub async fn preview_performance(
    state: &AppState,
    caller: &Client,
    header_partner: Option<&str>,
    request: RunRequest,
) -> AppResult<PerformancePreviewOut> {
    let partner = resolve_partner(caller, request.partner_id, header_partner, "partnerId")?;
    let as_of = request.as_of.unwrap_or_else(|| state.clock.now());
    let orders = performance::orders_for(state, &partner, as_of).await?;
    let payload = performance::compute(
        request.notification_type,
        &partner,
        request.marketplace.as_deref(),
        &orders,
        as_of,
    );
    Ok(PerformancePreviewOut {
        as_of,
        notification_type: request.notification_type.notification_type(),
        partner_id: partner,
        payload,
    })
}
