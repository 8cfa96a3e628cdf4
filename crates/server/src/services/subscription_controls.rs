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

/// Sends a subscription's events again (new deliveries, new ids); returns how many.
pub async fn replay(
    state: &AppState,
    caller: &Client,
    id: &str,
    r: ReplayRequest,
) -> AppResult<(SubscriptionId, u64)> {
    let sub = visible_subscription(state, caller, id).await?;
    let now = state.clock.now();
    let until = r.until.unwrap_or(now + SignedDuration::from_millis(1));
    if until <= r.since {
        return Err(AppError::invalid("until", "until must be after since"));
    }
    let replayed = tenant(state, caller)
        .replay(sub.id, r.since, until, now)
        .await?;
    if replayed > 0 {
        state.dispatcher.wake();
    }
    Ok((sub.id, replayed))
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
