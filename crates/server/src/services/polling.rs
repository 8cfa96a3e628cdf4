//! Polling subscriptions (`eventUrl` `poll:`), for receivers no one can reach: nothing is pushed;
//! the subscriber pages through `GET /api/v1/subscriptions/{id}/poll` with an opaque iterator,
//! each item signed as a push delivery would be, and may wait for the next event (long poll).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use switchyard_core::model::{Access, Client};
use switchyard_delivery::envelope;

use super::scope::{tenant, visible_subscription};
use super::subscriptions::POLL;
use crate::AppState;
use crate::error::{AppError, AppResult};

/// The longest long poll.
pub const MAX_WAIT_SECONDS: u32 = 30;

/// How often a long poll looks at the store while it waits.
const WAIT_STEP: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// Where the last page ended (its `iterator`); without one, from the subscription's start.
    pub iterator: Option<String>,
    /// Items at most (1 to 1,000; 100 by default).
    pub limit: Option<u32>,
    /// With nothing new, wait up to this long (at most 30 seconds) for an event before
    /// answering an empty page.
    #[param(maximum = 30)]
    pub wait_seconds: Option<u32>,
}

/// One event, as a push delivery would carry it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PolledMessage)]
pub struct PolledOut {
    /// The delivery's id (`webhook-id`): the same on every read.
    pub webhook_id: String,
    pub event_type: String,
    /// When the delivery was stored.
    pub created_at: Timestamp,
    /// When this answer signed it (`webhook-timestamp`), seconds since the epoch.
    pub timestamp: i64,
    /// The `webhook-signature` over `webhookId`, `timestamp` and `body`.
    pub signature: String,
    /// The envelope, exactly the bytes signed.
    pub body: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PollPage)]
pub struct PollOut {
    pub data: Vec<PolledOut>,
    /// Where this page ended: give it to the next call. Opaque, stable, kept across restarts.
    pub iterator: String,
    /// Nothing more is waiting now.
    pub done: bool,
}

fn encode(position: (i64, Uuid)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", position.0, position.1.simple()))
}

fn decode(iterator: &str) -> AppResult<(i64, Uuid)> {
    let invalid = || AppError::invalid("iterator", "iterator is not one this hub gave");
    let text = URL_SAFE_NO_PAD
        .decode(iterator)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let (xact, id) = text.split_once('.').ok_or_else(invalid)?;
    Ok((
        xact.parse().map_err(|_| invalid())?,
        Uuid::try_parse(id).map_err(|_| invalid())?,
    ))
}

/// A page of a polling subscription the caller may see (404 otherwise; 403 with no access to
/// its resource), waiting up to `waitSeconds` for the first item when there is none.
pub async fn poll(
    state: &AppState,
    caller: &Client,
    id: &str,
    query: PollQuery,
) -> AppResult<PollOut> {
    let sub = visible_subscription(state, caller, id).await?;
    if caller.access_to(&sub.resource_name) == Access::NoAccess {
        return Err(AppError::forbidden(
            "insufficient_scope",
            format!("no access to {}", sub.resource_name),
        ));
    }
    if sub.event_url != POLL {
        return Err(AppError::bad_request(
            "not_polling",
            "this subscription pushes its deliveries (its eventUrl is not poll:)",
        ));
    }
    let after = query.iterator.as_deref().map(decode).transpose()?;
    let limit = super::page_limit(query.limit);
    let wait = Duration::from_secs(u64::from(
        query.wait_seconds.unwrap_or(0).min(MAX_WAIT_SECONDS),
    ));
    let started = tokio::time::Instant::now();
    let polled = loop {
        let polled = tenant(state, caller)
            .poll_deliveries(&sub, after, limit)
            .await?;
        if !polled.is_empty() || started.elapsed() >= wait {
            break polled;
        }
        // Woken by a write on this node, or the timer for other nodes' writes (and, on
        // PostgreSQL, for the transactions that held the horizon back to end).
        let step = WAIT_STEP.min(wait.saturating_sub(started.elapsed()));
        tokio::select! {
            _ = state.dispatcher.stored() => {}
            _ = tokio::time::sleep(step) => {}
        }
    };
    let now = state.clock.now();
    let mut secrets = vec![state.secrets.open(&sub.signing_secret_sealed)?];
    if let (Some(previous), Some(until)) =
        (&sub.previous_secret_sealed, sub.previous_secret_expires_at)
        && now < until
    {
        secrets.push(state.secrets.open(previous)?);
    }
    let done = polled.len() < limit as usize;
    let end = polled.last().map(|p| p.position).or(after);
    let data = polled
        .into_iter()
        .map(|p| {
            let body = envelope::body(&p.event, &sub);
            let webhook_id = envelope::webhook_id(&p.delivery);
            let signature = envelope::standard_webhooks_headers(&webhook_id, now, &body, &secrets)
                .into_iter()
                .find(|(name, _)| name == "webhook-signature")
                .map(|(_, v)| v)
                .unwrap_or_default();
            PolledOut {
                event_type: envelope::announced_type(&p.event, &sub).to_string(),
                webhook_id,
                created_at: p.delivery.created_at,
                timestamp: now.as_second(),
                signature,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
        .collect();
    Ok(PollOut {
        data,
        iterator: encode(end.unwrap_or((-1, Uuid::nil()))),
        done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iterator_round_trips_and_a_foreign_one_is_refused() {
        let position = (42, Uuid::now_v7());
        assert_eq!(decode(&encode(position)).ok(), Some(position));
        assert_eq!(
            decode(&encode((-1, Uuid::nil()))).ok(),
            Some((-1, Uuid::nil()))
        );
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("1.notauuid")] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
