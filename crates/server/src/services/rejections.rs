//! Rejections: the refused inbound requests of the caller's partners' sources (those naming no
//! source are for admins), listed and counted.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use uuid::Uuid;

use switchyard_core::model::{Client, RejectionFilter, RejectionRecord};
use switchyard_store::RejectionCount;

use super::scope::tenant;
use super::{next_before, optional_uuid, page_limit};
use crate::AppState;
use crate::error::AppResult;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RejectionQuery {
    /// Only requests to this source id.
    pub source_id: Option<String>,
    /// Only this reason (`bad_signature`, `stale_timestamp`, …).
    pub reason: Option<String>,
    /// Only refusals at or after this time.
    pub since: Option<Timestamp>,
    /// The `nextBefore` of the previous page.
    pub before: Option<String>,
    /// At most this many (default 100; asks above 1,000 get 1,000).
    pub limit: Option<u32>,
}

/// Refused inbound requests, newest first: the failures dashboard's rows. A client sees those
/// of its partners' sources; requests naming no source are for admins.
pub async fn list(
    state: &AppState,
    caller: &Client,
    q: RejectionQuery,
) -> AppResult<(Vec<RejectionRecord>, Option<Uuid>)> {
    let limit = page_limit(q.limit);
    let filter = RejectionFilter {
        partners: None,
        source_id: q.source_id,
        reason: q.reason,
        since: q.since,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let rejections = tenant(state, caller).list_rejections(&filter).await?;
    let next = next_before(&rejections, limit, |r| r.id);
    Ok((rejections, next))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Count from this time (default: 24 hours ago).
    pub since: Option<Timestamp>,
}

/// Rejections counted by source and reason (default: the last 24 hours).
pub async fn summary(
    state: &AppState,
    caller: &Client,
    q: SummaryQuery,
) -> AppResult<(Vec<RejectionCount>, Timestamp)> {
    let since = q
        .since
        .unwrap_or_else(|| state.clock.now() - SignedDuration::from_hours(24));
    let counts = tenant(state, caller).rejection_summary(since).await?;
    Ok((counts, since))
}
