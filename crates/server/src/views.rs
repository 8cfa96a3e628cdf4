//! How records look in API answers. Credentials never leave here unmasked.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use switchyard_core::model::{
    AuthDetails, Breaker, Envelope, Ordering, RateLimit, SubscriptionRecord, SubscriptionStatus,
};
use switchyard_core::retry::RetryPolicy;

use crate::AppState;
use crate::error::AppResult;
use switchyard_core::model::PartnerId;
use switchyard_core::model::SubscriptionId;

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

/// The full subscription object of Walmart's API, with credentials masked. Fields in the order
/// they have always been written (alphabetical).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Subscription)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionOut {
    /// Masked (`********`); absent when the subscription has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_details: Option<AuthDetails>,
    pub auto_disable_after_seconds: u64,
    pub circuit_breaker: Breaker,
    /// Latest state only (omitted when off).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub coalesce: bool,
    pub created_at: Timestamp,
    pub disabled_reason: Option<String>,
    pub envelope: Envelope,
    pub event_type: Option<String>,
    /// Present when the subscription has several (SellerCenter's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    pub event_url: String,
    pub event_version: String,
    /// Its content filter, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    pub headers: BTreeMap<String, String>,
    pub max_in_flight: Option<u32>,
    pub ordering: Ordering,
    pub partner_id: PartnerId,
    /// Where a polling subscription (`eventUrl` `poll:`) is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_url: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub resource_name: String,
    pub retry_policy: RetryPolicy,
    pub status: SubscriptionStatus,
    /// Its transformation, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    pub subscription_id: SubscriptionId,
    pub updated_at: Timestamp,
}

/// `/api/v1/subscriptions/{id}/poll` for a polling subscription.
pub fn poll_url(sub: &SubscriptionRecord) -> Option<String> {
    (sub.event_url == crate::services::subscriptions::POLL)
        .then(|| format!("/api/v1/subscriptions/{}/poll", sub.id))
}

/// A subscription as the API shows it.
pub fn subscription(state: &AppState, sub: &SubscriptionRecord) -> AppResult<SubscriptionOut> {
    let auth_details = open_auth(state, sub)?.map(|a| a.masked());
    Ok(SubscriptionOut {
        auth_details,
        auto_disable_after_seconds: sub.auto_disable_after_secs,
        circuit_breaker: sub.breaker,
        created_at: sub.created_at,
        disabled_reason: sub.disabled_reason.clone(),
        envelope: sub.envelope,
        event_type: sub.event_types.first().cloned(),
        event_types: (sub.event_types.len() > 1).then(|| sub.event_types.clone()),
        event_url: sub.event_url.clone(),
        event_version: sub.event_version.clone(),
        filter: sub.filter.clone(),
        poll_url: poll_url(sub),
        transform: sub.transform.clone(),
        coalesce: sub.coalesce,
        headers: sub.headers.clone(),
        max_in_flight: sub.max_in_flight,
        ordering: sub.ordering,
        partner_id: sub.partner_id.clone(),
        rate_limit: sub.rate_limit,
        resource_name: sub.resource_name.clone(),
        retry_policy: sub.retry_policy.clone(),
        status: sub.status,
        subscription_id: sub.id,
        updated_at: sub.updated_at,
    })
}
