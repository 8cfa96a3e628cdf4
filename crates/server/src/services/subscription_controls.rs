//! What an operator does with a subscription that exists: send its events again, rotate its
//! signing secret, read its delivery health.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use switchyard_core::model::Client;
use switchyard_core::signatures::standard_webhooks;

use super::scope::{tenant, visible_subscription};
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::models::HealthOut;
use switchyard_core::model::SubscriptionId;

/// Which of a subscription's events to send again: received in `[since, until)`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// From (inclusive).
    pub since: Timestamp,
    /// To (exclusive); default now.
    pub until: Option<Timestamp>,
}

/// Sends a subscription's events again (new deliveries, new ids); returns how many. One write:
/// a replay in a single slice.
pub async fn replay(
    state: &AppState,
    caller: &Client,
    id: &str,
    r: ReplayRequest,
) -> AppResult<(SubscriptionId, u64)> {
    replay_in_slices(state, caller, id, r, 1, |_| {}).await
}

/// How a replay made in slices is coming along.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    pub slices_done: u32,
    pub slices: u32,
    /// Deliveries pending again so far.
    pub replayed: u64,
    pub finished: bool,
    /// Why it stopped before its end, if it did.
    pub error: Option<String>,
}

/// A replay whose progress can be followed: the range is replayed in `slices` consecutive
/// parts, each its own write (the same deliveries as one replay of the whole range, under the
/// same ids, so a part replayed twice changes nothing), with `on_progress` told after each.
/// The API's replay is this in one slice; the console and the CLI follow it in several.
pub async fn replay_in_slices(
    state: &AppState,
    caller: &Client,
    id: &str,
    r: ReplayRequest,
    slices: u32,
    on_progress: impl Fn(&ReplayProgress),
) -> AppResult<(SubscriptionId, u64)> {
    let sub = visible_subscription(state, caller, id).await?;
    let now = state.clock.now();
    let until = r.until.unwrap_or(now + SignedDuration::from_millis(1));
    if until <= r.since {
        return Err(AppError::invalid("until", "until must be after since"));
    }
    let parts = replay_slices(r.since, until, slices);
    let mut progress = ReplayProgress {
        slices: parts.len() as u32,
        ..Default::default()
    };
    on_progress(&progress);
    for (i, (from, to)) in parts.into_iter().enumerate() {
        match tenant(state, caller).replay(sub.id, from, to, now).await {
            Ok(n) => progress.replayed += n,
            Err(e) => {
                let e = AppError::from(e);
                progress.error = Some(e.message.clone());
                progress.finished = true;
                on_progress(&progress);
                return Err(e);
            }
        }
        if progress.replayed > 0 {
            state.dispatcher.wake();
        }
        progress.slices_done = i as u32 + 1;
        on_progress(&progress);
    }
    progress.finished = true;
    on_progress(&progress);
    Ok((sub.id, progress.replayed))
}

/// `[since, until)` cut into `n` consecutive, non-empty ranges (fewer when it is too short).
pub fn replay_slices(since: Timestamp, until: Timestamp, n: u32) -> Vec<(Timestamp, Timestamp)> {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    let span = until.duration_since(since);
    let mut parts = Vec::new();
    let mut from = since;
    for i in 1..=n {
        let to = if i == n { until } else { since + span / n * i };
        if to > from {
            parts.push((from, to));
            from = to;
        }
    }
    parts
}

/// How long a rotated-out signing secret keeps signing alongside the new one.
const PREVIOUS_SECRET_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

/// A signing secret just rotated in (shown this once), and when the old one stops signing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RotatedSecret)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub previous_secret_expires_at: Timestamp,
    pub signing_secret: String,
    pub subscription_id: SubscriptionId,
}

/// Rotates a subscription's signing secret; the previous one keeps signing beside it for a day.
pub async fn rotate_secret(
    state: &AppState,
    caller: &Client,
    id: &str,
) -> AppResult<RotatedSecret> {
    let mut sub = visible_subscription(state, caller, id).await?;
    let now = state.clock.now();
    let secret = standard_webhooks::generate_secret();
    let expires = now + PREVIOUS_SECRET_OVERLAP;
    sub.previous_secret_sealed = Some(sub.signing_secret_sealed.clone());
    sub.previous_secret_expires_at = Some(expires);
    sub.signing_secret_sealed = state.secrets.seal(&secret);
    sub.updated_at = now;
    if !tenant(state, caller)
        .update_subscription(sub.clone())
        .await?
    {
        return Err(AppError::not_found("subscription"));
    }
    Ok(RotatedSecret {
        previous_secret_expires_at: expires,
        signing_secret: secret,
        subscription_id: sub.id,
    })
}

/// Delivery health over the last 24 hours.
pub async fn health(state: &AppState, caller: &Client, id: &str) -> AppResult<HealthOut> {
    let sub = visible_subscription(state, caller, id).await?;
    let now = state.clock.now();
    let since = now - SignedDuration::from_hours(24);
    let attempts = tenant(state, caller)
        .attempts_since(&sub, since, 100_000)
        .await?;
    let last_success = attempts
        .iter()
        .rev()
        .find(|a| a.succeeded)
        .map(|a| a.attempted_at);
    let last_failure = attempts
        .iter()
        .rev()
        .find(|a| !a.succeeded)
        .map(|a| a.attempted_at);
    let consecutive_failures = attempts.iter().rev().take_while(|a| !a.succeeded).count();
    let successes = attempts.iter().filter(|a| a.succeeded).count();
    let success_rate = (!attempts.is_empty()).then(|| successes as f64 / attempts.len() as f64);
    let mut latencies: Vec<u64> = attempts.iter().map(|a| a.latency_ms).collect();
    latencies.sort_unstable();
    let percentile = |p: f64| -> Option<u64> {
        if latencies.is_empty() {
            return None;
        }
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        Some(latencies[rank - 1])
    };
    let pace = tenant(state, caller)
        .subscription_state(&sub)
        .await?
        .ok_or_else(|| AppError::not_found("subscription"))?;
    let breaker = match pace.breaker_until {
        _ if pace.consecutive_failures < sub.breaker.failure_threshold => "closed",
        Some(until) if until > now => "open",
        _ => "half_open",
    };
    let held = pace.paced_until.filter(|until| *until > now);
    Ok(HealthOut {
        attempts: attempts.len(),
        backlog: pace.pending,
        breaker,
        breaker_until: pace.breaker_until,
        consecutive_failures,
        disabled_reason: sub.disabled_reason.clone(),
        failing_since: pace.failing_since,
        last_failure_at: last_failure,
        last_success_at: last_success,
        latency_p50_ms: percentile(0.50),
        latency_p95_ms: percentile(0.95),
        oldest_pending_at: pace.oldest_pending_at,
        paced: held.is_some() || sub.rate_limit.is_some() || sub.max_in_flight.is_some(),
        paced_until: held,
        status: sub.status,
        subscription_id: sub.id,
        success_rate,
        window: "24h",
    })
}
