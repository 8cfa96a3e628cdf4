//! Claims: the due deliveries a dispatcher may send now, leased in memory (`leases`) and read
//! with their events and subscriptions, and what a claim's pacing spent.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use switchyard_core::clock::from_millis;
use switchyard_core::model::{DeliveryRecord, SubscriptionRecord};

use super::leases::Lease;
use super::rows::{self, CLAIMED_EVENT_COLUMNS, DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, ms};
use super::{Shared, hex_ids};
use crate::{ClaimedDelivery, StoreError, pacing};

/// A claim's due deliveries (`?1` now), earliest first, from the due index alone: it covers
/// the id and the subscription, so the leased deliveries a claim reads past (every attempt in
/// flight is among the earliest due) cost an index entry each and no row. Whether a
/// delivery's subscription may be sent to now is [`CLAIM_SUBSCRIPTION_SQL`], read once per
/// subscription and claim. There is no `LIMIT`: the rows stream, and the claim stops reading
/// once it has what it needs.
pub(super) const CLAIM_CANDIDATES_SQL: &str = "SELECT id, subscription_id
     FROM deliveries INDEXED BY deliveries_due
     WHERE status = 'pending' AND next_attempt_at <= ?1
     ORDER BY next_attempt_at, id";

/// Whether a subscription's due deliveries may be claimed at `?2` (ACTIVE, neither paused by
/// its pace nor behind an open breaker), whether it has a pace to keep (a cap, a rate or a
/// failure streak at its breaker's threshold), and whether it orders by resource.
const CLAIM_SUBSCRIPTION_SQL: &str = "SELECT
        status = 'ACTIVE' AND (paced_until IS NULL OR paced_until <= ?2)
            AND (breaker_until IS NULL OR breaker_until <= ?2),
        max_in_flight IS NOT NULL OR rate_per_sec IS NOT NULL
            OR consecutive_failures >= breaker_threshold,
        ordering = 'resource'
     FROM subscriptions WHERE id = ?1";

/// Under per-resource ordering, whether an older delivery of the same resource is still
/// pending (then this one waits its turn).
const CLAIM_BEHIND_OLDER_SQL: &str = "SELECT EXISTS (SELECT 1 FROM deliveries p
        WHERE p.subscription_id = d.subscription_id AND p.resource_key = d.resource_key
          AND p.status = 'pending' AND p.id < d.id)
     FROM deliveries d WHERE d.id = ?1 AND d.resource_key IS NOT NULL";

/// What a claim needs to know of a subscription with due deliveries.
#[derive(Clone, Copy)]
struct Claimable {
    sendable: bool,
    paced: bool,
    by_resource: bool,
}

fn claimable_subscription(
    conn: &Connection,
    subscription: Uuid,
    now_ms: i64,
) -> Result<Claimable, StoreError> {
    let found = conn
        .prepare_cached(CLAIM_SUBSCRIPTION_SQL)?
        .query_row(params![subscription, now_ms], |r| {
            Ok(Claimable {
                sendable: r.get(0)?,
                paced: r.get(1)?,
                by_resource: r.get(2)?,
            })
        })
        .optional()?;
    // Deleted since its delivery was read: nothing to send.
    Ok(found.unwrap_or(Claimable {
        sendable: false,
        paced: false,
        by_resource: false,
    }))
}

fn behind_an_older_delivery(conn: &Connection, delivery: Uuid) -> Result<bool, StoreError> {
    let behind = conn
        .prepare_cached(CLAIM_BEHIND_OLDER_SQL)?
        .query_row([delivery], |r| r.get::<_, bool>(0))
        .optional()?;
    Ok(behind.unwrap_or(false))
}

/// What a claim has to write: the token buckets it spent and the probes it let through.
#[derive(Debug, Default)]
pub(super) struct PaceWrites {
    pub spent: Vec<(Uuid, f64)>,
    pub probes: Vec<Uuid>,
}

impl PaceWrites {
    pub fn is_empty(&self) -> bool {
        self.spent.is_empty() && self.probes.is_empty()
    }
}

/// Leases up to `limit` due deliveries to `owner` until `lease_until` and reads what their
/// attempts need. Runs on a reader; what pacing spent is returned for the writer.
pub(super) fn claim(
    conn: &Connection,
    shared: &Shared,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
    owner: &str,
) -> Result<(Vec<ClaimedDelivery>, PaceWrites), StoreError> {
    let now_ms = ms(now);
    let mut leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    let mut paced: Vec<Uuid> = Vec::new();
    let mut candidates: Vec<(Uuid, Uuid)> = Vec::new();
    let mut unpaced = 0;
    // As many candidates as the old statement's `LIMIT` took: the selection may pass over
    // paced ones, but a claim cannot read an unbounded backlog of them.
    let scan = limit as usize * 4;
    let mut subscriptions: HashMap<Uuid, Claimable> = HashMap::new();
    let mut statement = conn.prepare_cached(CLAIM_CANDIDATES_SQL)?;
    let mut stream = statement.query([now_ms])?;
    // Stop once `limit` deliveries of unpaced subscriptions are in hand, since the selection
    // takes every one of those and would stop there too.
    while unpaced < limit
        && candidates.len() < scan
        && let Some(r) = stream.next()?
    {
        let d: Uuid = r.get(0)?;
        if !leases.claimable(&d, now_ms) {
            continue;
        }
        let s: Uuid = r.get(1)?;
        let subscription = match subscriptions.get(&s) {
            Some(c) => *c,
            None => {
                let c = claimable_subscription(conn, s, now_ms)?;
                subscriptions.insert(s, c);
                c
            }
        };
        if !subscription.sendable
            || (subscription.by_resource && behind_an_older_delivery(conn, d)?)
        {
            continue;
        }
        if subscription.paced {
            paced.push(s);
        } else {
            unpaced += 1;
        }
        candidates.push((d, s));
    }
    drop(stream);
    drop(statement);
    paced.sort();
    paced.dedup();
    let paces: Vec<pacing::Pace> = if paced.is_empty() {
        Vec::new()
    } else {
        conn.prepare_cached(
            "SELECT s.max_in_flight, s.rate_per_sec, s.rate_burst, s.rate_tokens,
                s.rate_updated_at, s.consecutive_failures >= s.breaker_threshold, s.id
             FROM subscriptions s WHERE s.id IN (SELECT unhex(value) FROM json_each(?1))",
        )?
        .query_map([hex_ids(&paced)], |r| {
            let id: Uuid = r.get(6)?;
            Ok(pacing::Pace {
                subscription_id: id,
                max_in_flight: r
                    .get::<_, Option<i64>>(0)?
                    .map(|n| n.clamp(0, u32::MAX as i64) as u32),
                rate_per_sec: r.get(1)?,
                burst: r.get::<_, Option<f64>>(2)?.unwrap_or(1.0),
                tokens: r.get(3)?,
                updated_at: r.get::<_, Option<i64>>(4)?.map(from_millis),
                probe_only: r.get(5)?,
                in_flight: leases.in_flight(&id, now_ms),
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let selection = pacing::select(now, &candidates, &paces, limit as usize);
    if selection.deliveries.is_empty() {
        return Ok((Vec::new(), PaceWrites::default()));
    }
    let subscription_of: HashMap<Uuid, Uuid> = candidates.iter().copied().collect();
    for id in &selection.deliveries {
        leases.take(
            *id,
            Lease {
                owner: owner.to_string(),
                subscription: subscription_of[id],
                hold_ms: ms(lease_until) - now_ms,
                expires: None,
            },
        );
    }
    drop(leases);
    let claimed = read_claimed(conn, &selection.deliveries)?;
    Ok((
        claimed,
        PaceWrites {
            spent: selection.spent,
            probes: selection.probes,
        },
    ))
}

/// The claimed deliveries with their events (one query) and subscriptions (each read once).
fn read_claimed(conn: &Connection, ids: &[Uuid]) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut found: HashMap<Uuid, (DeliveryRecord, crate::stored::StoredEvent)> = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id IN (SELECT unhex(value) FROM json_each(?1))"
        ))?
        .query_map([hex_ids(ids)], |row| {
            let delivery = rows::delivery(row)?;
            Ok((
                delivery.id.0,
                (delivery, rows::stored_event_at(row, DELIVERY_COLUMN_COUNT)?),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut subscriptions: HashMap<Uuid, SubscriptionRecord> = HashMap::new();
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        // Gone since the claim (its subscription deleted, say): nothing to attempt.
        let Some((delivery, event)) = found.remove(id) else {
            continue;
        };
        let subscription = match subscriptions.get(&delivery.subscription_id.0) {
            Some(s) => s.clone(),
            None => match super::subscriptions::select(conn, delivery.subscription_id.0)? {
                Some(s) => {
                    subscriptions.insert(s.id.0, s.clone());
                    s
                }
                None => continue,
            },
        };
        let (event, body) = event.into_claimed(&subscription)?;
        claimed.push(ClaimedDelivery {
            delivery,
            event,
            subscription,
            body,
        });
    }
    Ok(claimed)
}

/// Writes what a claim's pacing spent.
pub(super) fn write_pace(
    conn: &Connection,
    writes: &PaceWrites,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<(), StoreError> {
    for (sub, tokens) in &writes.spent {
        conn.prepare_cached(
            "UPDATE subscriptions SET rate_tokens = ?2, rate_updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![sub, tokens, ms(now)])?;
    }
    for sub in &writes.probes {
        conn.prepare_cached("UPDATE subscriptions SET breaker_until = ?2 WHERE id = ?1")?
            .execute(params![sub, ms(lease_until)])?;
    }
    Ok(())
}
