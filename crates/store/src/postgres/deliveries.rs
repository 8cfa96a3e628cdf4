//! Deliveries: claims (one statement for the common case), retries, replays, the due queue
//! and retention. Recording attempts is `attempts`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis as ms};
use switchyard_core::model::{AttemptRecord, DeliveryFilter, DeliveryRecord, SubscriptionRecord};

use super::rows::{
    self, ATTEMPT_COLUMNS, CLAIMED_EVENT_COLUMNS, DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS,
    EVENT_COLUMN_COUNT, SUBSCRIPTION_COLUMNS,
};
use super::{Conn, Sql, execute, notify_due, query, query_opt};
use crate::{ClaimedDelivery, PurgeCounts, QueueDepth, StoreError, SubscriptionState, pacing};

/// How long claims of unpaced deliveries may go without also looking at paced ones.
const PACED_AT_LEAST_EVERY: Duration = Duration::from_millis(200);

/// What a node's claims remember between calls.
#[derive(Debug, Default)]
pub(super) struct ClaimState {
    paced_looked_at: Mutex<Option<Instant>>,
}

/// The common claim, in one statement: leases the earliest due deliveries of subscriptions
/// that have no pace to keep (no cap, no rate, no breaker at its threshold), skipping those
/// other nodes lock, and reads what their attempts need.
static CLAIM_UNPACED_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH candidates AS (
        SELECT d.id FROM deliveries d
        JOIN subscriptions s ON s.id = d.subscription_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= $1
          AND (d.locked_until IS NULL OR d.locked_until <= $1)
          AND s.status = 'ACTIVE'
          AND (s.paced_until IS NULL OR s.paced_until <= $1)
          AND (s.breaker_until IS NULL OR s.breaker_until <= $1)
          AND s.max_in_flight IS NULL AND s.rate_per_sec IS NULL
          AND s.consecutive_failures < s.breaker_threshold
          AND (s.ordering <> 'resource' OR d.resource_key IS NULL
               OR NOT EXISTS (SELECT 1 FROM deliveries p
                   WHERE p.subscription_id = d.subscription_id
                     AND p.resource_key = d.resource_key
                     AND p.status = 'pending' AND p.id < d.id))
        ORDER BY d.next_attempt_at
        LIMIT $2
        FOR UPDATE OF d SKIP LOCKED),
     leased AS (
        UPDATE deliveries d SET locked_until = $3, lease_owner = $4
        FROM candidates c WHERE d.id = c.id
        RETURNING d.*)
     SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}, {SUBSCRIPTION_COLUMNS}
     FROM leased d
     JOIN events e ON e.id = d.event_id
     JOIN subscriptions s ON s.id = d.subscription_id"
    )
});

/// Reads a claim's rows. Each carries its subscription's columns; a claim's deliveries mostly
/// share a few subscriptions, so each is decoded once (its JSON settings parsed) and cloned.
fn claimed_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let at = DELIVERY_COLUMN_COUNT + EVENT_COLUMN_COUNT;
    let mut decoded: std::collections::HashMap<Uuid, SubscriptionRecord> = Default::default();
    rows.iter()
        .map(|row| {
            let id: Uuid = row.try_get(at)?;
            let subscription = match decoded.get(&id) {
                Some(s) => s.clone(),
                None => {
                    let s = rows::subscription_at(row, at)?;
                    decoded.insert(id, s.clone());
                    s
                }
            };
            claimed_row(row, subscription)
        })
        .collect()
}

fn claimed_row(
    row: &tokio_postgres::Row,
    subscription: SubscriptionRecord,
) -> Result<ClaimedDelivery, StoreError> {
    let (event, body) =
        rows::stored_event_at(row, DELIVERY_COLUMN_COUNT)?.into_claimed(&subscription)?;
    Ok(ClaimedDelivery {
        delivery: rows::delivery(row)?,
        event,
        subscription,
        body,
    })
}

/// Leases up to `limit` due deliveries to `owner` until `lease_until`. Unpaced ones come from
/// one statement; paced ones (caps, rates, probes) need their pace read and spent in a
/// transaction, which runs when the first found too few, and at least every
/// `PACED_AT_LEAST_EVERY` so a backlog of unpaced deliveries cannot starve paced ones.
pub(super) async fn claim(
    conn: &Conn,
    readers: &deadpool_postgres::Pool,
    state: &ClaimState,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
    owner: &str,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let paced_due = {
        let mut looked = state
            .paced_looked_at
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let due = looked.is_none_or(|at| at.elapsed() >= PACED_AT_LEAST_EVERY);
        if due {
            *looked = Some(Instant::now());
        }
        due
    };
    let mut claimed = Vec::new();
    if paced_due {
        claimed = claim_paced(readers, now, limit, lease_until, owner).await?;
    }
    let room = limit.saturating_sub(claimed.len() as u32);
    if room > 0 {
        let rows = query(
            conn,
            &CLAIM_UNPACED_SQL,
            &[&ms(now), &i64::from(room), &ms(lease_until), &owner],
        )
        .await?;
        let mut unpaced = claimed_rows(&rows)?;
        unpaced.sort_by_key(|c| c.delivery.next_attempt_at);
        claimed.extend(unpaced);
        // Fewer unpaced deliveries than room: the paced ones may have the rest.
        let room = limit.saturating_sub(claimed.len() as u32);
        if !paced_due && room > 0 {
            claimed.extend(claim_paced(readers, now, room, lease_until, owner).await?);
        }
    }
    Ok(claimed)
}

/// Claims deliveries of subscriptions with a pace to keep, in a transaction: candidates
/// locked, the subscriptions locked and their state read (so the buckets and in-flight counts
/// include what other nodes committed), `pacing::select`, the spent tokens and probes written,
/// the chosen ones leased. It first asks which subscriptions have a pace to keep at all: when
/// none has (the common case), that is the only statement.
async fn claim_paced(
    readers: &deadpool_postgres::Pool,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
    owner: &str,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let conn = readers.get().await?;
    let paced: Vec<Uuid> = query(
        &conn,
        "SELECT id FROM subscriptions WHERE status = 'ACTIVE'
           AND (paced_until IS NULL OR paced_until <= $1)
           AND (breaker_until IS NULL OR breaker_until <= $1)
           AND (max_in_flight IS NOT NULL OR rate_per_sec IS NOT NULL
                OR consecutive_failures >= breaker_threshold)",
        &[&ms(now)],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    if paced.is_empty() {
        return Ok(Vec::new());
    }
    conn.batch_execute("BEGIN").await?;
    let result = claim_paced_in_transaction(&conn, &paced, now, limit, lease_until, owner).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.batch_execute(end).await;
    let claimed = result?;
    ended?;
    Ok(claimed)
}

async fn claim_paced_in_transaction(
    conn: &Conn,
    paced: &[Uuid],
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
    owner: &str,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let candidates: Vec<(Uuid, Uuid)> = query(
        conn,
        "SELECT d.id, d.subscription_id FROM deliveries d
         JOIN subscriptions s ON s.id = d.subscription_id
         WHERE d.subscription_id = ANY($3)
           AND d.status = 'pending' AND d.next_attempt_at <= $1
           AND (d.locked_until IS NULL OR d.locked_until <= $1)
           AND (s.ordering <> 'resource' OR d.resource_key IS NULL
                OR NOT EXISTS (SELECT 1 FROM deliveries p
                    WHERE p.subscription_id = d.subscription_id
                      AND p.resource_key = d.resource_key
                      AND p.status = 'pending' AND p.id < d.id))
         ORDER BY d.next_attempt_at
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
        &[&ms(now), &(i64::from(limit) * 4), &paced],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, tokio_postgres::Error>>()?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut subscriptions: Vec<Uuid> = candidates.iter().map(|(_, s)| *s).collect();
    subscriptions.sort();
    subscriptions.dedup();
    // Lock them first, then read their state in a new statement, so the buckets and in-flight
    // counts include what other nodes committed meanwhile.
    query(
        conn,
        "SELECT id FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&subscriptions],
    )
    .await?;
    let paces = query(
        conn,
        "SELECT s.id, s.max_in_flight, s.rate_per_sec, s.rate_burst, s.rate_tokens,
                s.rate_updated_at, s.consecutive_failures >= s.breaker_threshold,
            (SELECT COUNT(*) FROM deliveries f WHERE f.subscription_id = s.id
               AND f.status = 'pending' AND f.locked_until > $2)
         FROM subscriptions s WHERE s.id = ANY($1)",
        &[&subscriptions, &ms(now)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(pacing::Pace {
            subscription_id: r.try_get(0)?,
            max_in_flight: r.try_get::<_, Option<i32>>(1)?.map(|n| n.max(0) as u32),
            rate_per_sec: r.try_get(2)?,
            burst: r.try_get::<_, Option<f64>>(3)?.unwrap_or(1.0),
            tokens: r.try_get(4)?,
            updated_at: r.try_get::<_, Option<i64>>(5)?.map(from_millis),
            probe_only: r.try_get(6)?,
            in_flight: r.try_get::<_, i64>(7)?.clamp(0, u32::MAX as i64) as u32,
        })
    })
    .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    let selection = pacing::select(now, &candidates, &paces, limit as usize);
    if !selection.spent.is_empty() {
        let subs: Vec<Uuid> = selection.spent.iter().map(|(s, _)| *s).collect();
        let tokens: Vec<f64> = selection.spent.iter().map(|(_, t)| *t).collect();
        execute(
            conn,
            "UPDATE subscriptions s SET rate_tokens = u.t, rate_updated_at = $3
             FROM unnest($1::uuid[], $2::float8[]) AS u(id, t) WHERE s.id = u.id",
            &[&subs, &tokens, &ms(now)],
        )
        .await?;
    }
    if !selection.probes.is_empty() {
        execute(
            conn,
            "UPDATE subscriptions SET breaker_until = $2 WHERE id = ANY($1)",
            &[&selection.probes, &ms(lease_until)],
        )
        .await?;
    }
    if selection.deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(
        conn,
        &format!(
            "WITH leased AS (
                UPDATE deliveries d SET locked_until = $2, lease_owner = $3
                WHERE d.id = ANY($1) RETURNING d.*)
             SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}, {SUBSCRIPTION_COLUMNS}
             FROM leased d
             JOIN events e ON e.id = d.event_id
             JOIN subscriptions s ON s.id = d.subscription_id
             ORDER BY d.next_attempt_at"
        ),
        &[&selection.deliveries, &ms(lease_until), &owner],
    )
    .await?;
    claimed_rows(&rows)
}

pub(super) async fn pace_subscription(
    conn: &Conn,
    id: Uuid,
    until: Timestamp,
) -> Result<(), StoreError> {
    execute(
        conn,
        "UPDATE subscriptions SET paced_until = GREATEST(COALESCE(paced_until, 0), $2)
         WHERE id = $1",
        &[&id, &ms(until)],
    )
    .await?;
    Ok(())
}

/// [`crate::Store::poll_deliveries`]: in the order of the transactions that stored them (their
/// `xact`), and only from transactions older than every one still under way
/// (`pg_snapshot_xmin`), which no later commit can precede.
pub(super) async fn poll(
    conn: &Conn,
    subscription: Uuid,
    after: Option<(i64, Uuid)>,
    limit: u32,
) -> Result<Vec<crate::Polled>, StoreError> {
    let (xact, id) = after.unwrap_or((-1, Uuid::nil()));
    let rows = query(
        conn,
        &format!(
            "SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}, d.xact
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.subscription_id = $1 AND d.status = 'polling'
               AND (d.xact, d.id) > ($2, $3)
               AND d.xact < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             ORDER BY d.xact, d.id LIMIT $4"
        ),
        &[&subscription, &xact, &id, &i64::from(limit)],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let delivery = rows::delivery(row)?;
            let event = rows::event_at(row, DELIVERY_COLUMN_COUNT, false)?;
            let xact: i64 = row.try_get(DELIVERY_COLUMN_COUNT + rows::EVENT_COLUMN_COUNT)?;
            Ok(crate::Polled {
                position: (xact, delivery.id.0),
                delivery,
                event,
            })
        })
        .collect()
}

/// [`crate::Store::cancel_delivery`]: only the lease holder ends a pending delivery.
pub(super) async fn cancel(
    conn: &Conn,
    id: Uuid,
    owner: &str,
    at: Timestamp,
    note: &str,
) -> Result<bool, StoreError> {
    let changed = execute(
        conn,
        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $3,
            last_error = $4, locked_until = NULL, lease_owner = NULL
         WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
        &[&id, &owner, &ms(at), &note],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn release_leases(conn: &Conn, owner: &str) -> Result<u64, StoreError> {
    let n = execute(
        conn,
        "UPDATE deliveries SET locked_until = NULL, lease_owner = NULL WHERE lease_owner = $1",
        &[&owner],
    )
    .await?;
    if n > 0 {
        notify_due(conn).await?;
    }
    Ok(n)
}

pub(super) async fn next_due_at(conn: &Conn) -> Result<Option<Timestamp>, StoreError> {
    // The earliest few by the due index, not a scan of every pending delivery.
    let rows = query(
        conn,
        "SELECT d.next_attempt_at, d.locked_until, s.paced_until, s.status = 'ACTIVE'
         FROM (SELECT next_attempt_at, locked_until, subscription_id FROM deliveries
               WHERE status = 'pending' ORDER BY next_attempt_at LIMIT $1) d
         JOIN subscriptions s ON s.id = d.subscription_id
         ORDER BY d.next_attempt_at",
        &[&crate::DUE_WINDOW],
    )
    .await?;
    let window = rows
        .iter()
        .map(|r| {
            Ok(crate::DueRow {
                next_attempt_at: r.try_get(0)?,
                locked_until: r.try_get(1)?,
                paced_until: r.try_get(2)?,
                active: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    Ok(crate::earliest_claimable(&window))
}

pub(super) async fn queue_depth(conn: &Conn, now: Timestamp) -> Result<QueueDepth, StoreError> {
    // Both parts read only pending rows, through the partial index `deliveries_due`.
    let rows = query(
        conn,
        "SELECT
            COUNT(*) FILTER (WHERE d.locked_until > $1),
            COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= $1)
                               AND d.next_attempt_at <= $1),
            COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= $1)
                               AND d.next_attempt_at > $1),
            (SELECT o.next_attempt_at FROM deliveries o
               JOIN subscriptions s ON s.id = o.subscription_id
              WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                AND (o.locked_until IS NULL OR o.locked_until <= $1)
                AND s.status = 'ACTIVE'
              ORDER BY o.next_attempt_at LIMIT 1)
         FROM deliveries d WHERE d.status = 'pending'",
        &[&ms(now)],
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(QueueDepth::default());
    };
    let count = |i: usize| r.try_get::<_, i64>(i).map(|n| n.max(0) as u64);
    Ok(QueueDepth {
        leased: count(0)?,
        due: count(1)?,
        scheduled: count(2)?,
        oldest_due_at: r.try_get::<_, Option<i64>>(3)?.map(from_millis),
    })
}

pub(super) async fn select(conn: &Conn, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
    let row = query_opt(
        conn,
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1"
        ),
        &[&id],
    )
    .await?;
    row.map(|r| rows::delivery(&r)).transpose()
}

pub(super) async fn list(
    conn: &Conn,
    f: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut sql = Sql::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE TRUE"
    ));
    if let Some(partners) = &f.partners {
        sql.and(" AND e.partner_id = ANY({})", partners.clone());
    }
    if let Some(id) = f.subscription_id {
        sql.and(" AND d.subscription_id = {}", id);
    }
    if let Some(id) = f.event_id {
        sql.and(" AND d.event_id = {}", id);
    }
    if let Some(status) = f.status {
        sql.and(" AND d.status = {}", status.as_str().to_string());
    }
    if let Some(before) = f.before {
        sql.and(" AND d.id < {}", before);
    }
    sql.text.push_str(&format!(
        " ORDER BY d.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    ));
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(rows::delivery).collect()
}

pub(super) async fn get(
    conn: &Conn,
    id: Uuid,
) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
    let Some(delivery) = select(conn, id).await? else {
        return Ok(None);
    };
    let attempts = query(
        conn,
        &format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.delivery_id = $1
             ORDER BY a.attempted_at, a.id"
        ),
        &[&id],
    )
    .await?
    .iter()
    .map(rows::attempt)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((delivery, attempts)))
}

pub(super) async fn retry(
    conn: &Conn,
    id: Uuid,
    now: Timestamp,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let n = execute(
        conn,
        "UPDATE deliveries SET status = 'pending', attempts = 0, first_attempt_at = NULL,
            next_attempt_at = $2, locked_until = NULL, lease_owner = NULL, updated_at = $2
         WHERE id = $1",
        &[&id, &ms(now)],
    )
    .await?;
    if n > 0 {
        notify_due(conn).await?;
    }
    select(conn, id).await
}

pub(super) async fn replay(
    conn: &Conn,
    subscription_id: Uuid,
    since: Timestamp,
    until: Timestamp,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let Some(sub) = super::subscriptions::select(conn, subscription_id).await? else {
        return Ok(0);
    };
    let ordered = sub.ordering == switchyard_core::model::Ordering::Resource;
    let events: Vec<(Uuid, Option<String>)> = query(
        conn,
        "SELECT e.id, e.resource_key FROM events e
         WHERE e.received_at >= $2 AND e.received_at < $3 AND e.partner_id = $1
           AND e.event_version = $4
           AND (e.event_type = ANY($5) OR e.topic = ANY($5))
         ORDER BY e.id",
        &[
            &sub.partner_id,
            &ms(since),
            &ms(until),
            &sub.event_version,
            &sub.event_types,
        ],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, tokio_postgres::Error>>()?;
    if events.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let event_ids: Vec<Uuid> = events.iter().map(|(e, _)| *e).collect();
    let keys: Vec<Option<&str>> = events
        .iter()
        .map(|(_, k)| k.as_deref().filter(|_| ordered))
        .collect();
    execute(
        conn,
        "INSERT INTO deliveries (id, event_id, subscription_id, status, attempts,
            next_attempt_at, created_at, updated_at, resource_key)
         SELECT u.id, u.event_id, $3, 'pending', 0, $4, $4, $4, u.rk
         FROM unnest($1::uuid[], $2::uuid[], $5::text[]) AS u(id, event_id, rk)
         ON CONFLICT (event_id, subscription_id) DO UPDATE SET status = 'pending',
            attempts = 0, first_attempt_at = NULL, next_attempt_at = $4,
            locked_until = NULL, lease_owner = NULL, updated_at = $4",
        &[&ids, &event_ids, &subscription_id, &ms(now), &keys],
    )
    .await?;
    notify_due(conn).await?;
    Ok(events.len() as u64)
}

/// Deletes one batch of what is older than `before` (see `Store::purge_before`).
pub(super) async fn purge(
    conn: &Conn,
    before: Timestamp,
    batch: u32,
) -> Result<PurgeCounts, StoreError> {
    let before = ms(before);
    let batch = i64::from(batch);
    let attempts = execute(
        conn,
        "DELETE FROM attempts WHERE id IN
            (SELECT id FROM attempts WHERE attempted_at < $1 LIMIT $2)",
        &[&before, &batch],
    )
    .await?;
    let rejections = execute(
        conn,
        "DELETE FROM rejections WHERE id IN
            (SELECT id FROM rejections WHERE received_at < $1 LIMIT $2)",
        &[&before, &batch],
    )
    .await?;
    // Not counted: duplicate sightings and outcomes are small notes about events.
    execute(
        conn,
        "DELETE FROM duplicates WHERE id IN
            (SELECT id FROM duplicates WHERE received_at < $1 LIMIT $2)",
        &[&before, &batch],
    )
    .await?;
    execute(
        conn,
        "DELETE FROM outcomes WHERE id IN
            (SELECT id FROM outcomes WHERE reported_at < $1 LIMIT $2)",
        &[&before, &batch],
    )
    .await?;
    let events: Vec<Uuid> = query(
        conn,
        "SELECT e.id FROM events e WHERE e.received_at < $1
           AND NOT EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.event_id = e.id AND d.status = 'pending')
         ORDER BY e.received_at LIMIT $2",
        &[&before, &batch],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let deliveries = execute(
        conn,
        "DELETE FROM deliveries WHERE event_id = ANY($1)",
        &[&events],
    )
    .await?;
    execute(
        conn,
        "DELETE FROM event_resources WHERE event_id = ANY($1)",
        &[&events],
    )
    .await?;
    execute(conn, "DELETE FROM events WHERE id = ANY($1)", &[&events]).await?;
    Ok(PurgeCounts {
        events: events.len() as u64,
        deliveries,
        attempts,
        rejections,
    })
}

pub(super) async fn subscription_state(
    conn: &Conn,
    id: Uuid,
) -> Result<SubscriptionState, StoreError> {
    let rows = query(
        conn,
        "SELECT s.consecutive_failures, s.failing_since, s.breaker_until, s.paced_until,
            (SELECT COUNT(*) FROM deliveries d
              WHERE d.subscription_id = s.id AND d.status = 'pending'),
            (SELECT MIN(d.created_at) FROM deliveries d
              WHERE d.subscription_id = s.id AND d.status = 'pending')
         FROM subscriptions s WHERE s.id = $1",
        &[&id],
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(SubscriptionState::default());
    };
    let t = |v: Option<i64>| v.map(from_millis);
    Ok(SubscriptionState {
        consecutive_failures: r.try_get::<_, i32>(0)?.max(0) as u32,
        failing_since: t(r.try_get(1)?),
        breaker_until: t(r.try_get(2)?),
        paced_until: t(r.try_get(3)?),
        pending: r.try_get::<_, i64>(4)?.max(0) as u64,
        oldest_pending_at: t(r.try_get(5)?),
    })
}

pub(super) async fn attempts_since(
    conn: &Conn,
    subscription_id: Uuid,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let rows = query(
        conn,
        &format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a
             WHERE a.subscription_id = $1 AND a.attempted_at >= $2
             ORDER BY a.attempted_at, a.id LIMIT $3"
        ),
        &[&subscription_id, &ms(since), &i64::from(limit)],
    )
    .await?;
    rows.iter().map(rows::attempt).collect()
}
