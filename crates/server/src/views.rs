//! How records look in API answers. Credentials never leave here unmasked.

use serde_json::{Value, json};

use switchyard_core::model::{AuthDetails, SubscriptionRecord};

use crate::AppState;
use crate::error::AppResult;

/// Opens a subscription's sealed `authDetails`.
pub fn open_auth(state: &AppState, sub: &SubscriptionRecord) -> AppResult<Option<AuthDetails>> {
    match &sub.auth_sealed {
        None => Ok(None),
        Some(sealed) => {
            let plain = state.secrets.open(sealed)?;
            let auth = serde_json::from_str(&plain).map_err(|_| {
                tracing::error!(subscription = %sub.id, "stored authDetails cannot be read");
                crate::error::AppError::internal()
            })?;
            Ok(Some(auth))
        }
    }
}

/// The full subscription object of Walmart's API, with credentials masked.
pub fn subscription(state: &AppState, sub: &SubscriptionRecord) -> AppResult<Value> {
    let auth = open_auth(state, sub)?.map(|a| a.masked());
    let mut out = json!({
        "subscriptionId": sub.id,
        "partnerId": sub.partner_id,
        "eventType": sub.event_types.first(),
        "eventVersion": sub.event_version,
        "resourceName": sub.resource_name,
        "eventUrl": sub.event_url,
        "headers": sub.headers,
        "status": sub.status,
        "retryPolicy": sub.retry_policy,
        "ordering": sub.ordering,
        "maxInFlight": sub.max_in_flight,
        "rateLimit": sub.rate_limit,
        "circuitBreaker": sub.breaker,
        "autoDisableAfterSeconds": sub.auto_disable_after_secs,
        "envelope": sub.envelope,
        "disabledReason": sub.disabled_reason,
        "createdAt": sub.created_at,
        "updatedAt": sub.updated_at,
    });
    if let Some(auth) = auth {
        out["authDetails"] = json!(auth);
    }
    if sub.event_types.len() > 1 {
        out["eventTypes"] = json!(sub.event_types);
    }
    Ok(out)
}
