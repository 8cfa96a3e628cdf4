//! Rejections: the refused inbound requests of the caller's partners' sources (those naming no
//! source are for admins), listed and counted.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use uuid::Uuid;

use switchyard_core::model::{Client, RejectionFilter, RejectionRecord};
use switchyard_store::RejectionCount;

use super::scope::visible_partners;
use super::{next_before, optional_uuid, page_limit};
use crate::AppState;
use crate::error::AppResult;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionQuery {
    pub source_id: Option<String>,
    pub reason: Option<String>,
    pub since: Option<Timestamp>,
    pub before: Option<String>,
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
        partners: visible_partners(caller),
        source_id: q.source_id,
        reason: q.reason,
        since: q.since,
        before: optional_uuid(q.before.as_deref(), "before")?,
        limit,
    };
    let rejections = state.store.list_rejections(&filter).await?;
    let next = next_before(&rejections, limit, |r| r.id);
    Ok((rejections, next))
}

#[derive(Debug, Default, Deserialize)]
pub struct SummaryQuery {
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
    let counts = state
        .store
        .rejection_summary(visible_partners(caller), since)
        .await?;
    Ok((counts, since))
}
