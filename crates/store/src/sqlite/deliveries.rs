//! Deliveries: recording attempts (the one write of the delivery path), retries, replays, the
//! due queue, and retention. Claims are `claims`.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use switchyard_core::clock::from_millis;
use switchyard_core::model::{AttemptRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus};

use super::rows::{
    self, ATTEMPT_COLUMNS, CLAIMED_EVENT_COLUMNS, DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, ms,
    to_json,
};
use super::{Shared, placeholders};
use crate::rules::{self, Streak};
use crate::{
    AttemptEffects, DeliveryNext, FailurePolicy, PurgeCounts, QueueDepth, StoreError,
    SubscriptionState,
};

pub(super) use crate::writer_op::AttemptOp;

/// What recording an attempt did.
pub(super) struct Completed {
    pub effects: AttemptEffects,
    /// The lease to free once the transaction committed.
    pub release: Option<Uuid>,
}

/// Writes the attempt row, and when `owner` still holds the lease, moves the delivery on and
/// keeps its subscription's failure streak (`rules::after_attempt`).
///
/// `streaks`, when given, holds the streaks this batch has read or written so far, so a batch's
/// attempts read each subscription's streak once (the writer passes it only when the batch
/// runs without savepoints: one failure then rolls everything back, the map with it).
pub(super) fn complete(
    conn: &Connection,
    shared: &Shared,
    op: &AttemptOp,
    streaks: Option<&mut Streaks>,
) -> Result<Completed, StoreError> {
    let a = &op.attempt;
    // Only the lease holder moves the delivery on: a worker whose lease expired and was taken
    // over must not overwrite the newer holder's outcome. The lease knows the subscription, so
    // the common path's two statements each write one row by its key and look nothing up,
    // which SQLite runs without a statement journal (an `INSERT … SELECT` or an `UPDATE …
    // RETURNING` opens one, or an ephemeral table, for every attempt).
    let held = shared
        .leases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .held_by(&a.delivery_id.0, &op.owner);
    let moved = match held {
        Some(subscription) => move_on(conn, op)?.then_some(subscription),
        None => None,
    };
    let Some(subscription) = moved else {
        // Not ours, or no longer pending: the attempt is still recorded, against the
        // delivery's row where it has one.
        insert_attempt(conn, a, None)?;
        return Ok(Completed {
            effects: AttemptEffects::default(),
            release: held.map(|_| a.delivery_id.0),
        });
    };
    insert_attempt(conn, a, Some(subscription))?;
    Ok(Completed {
        effects: streak(conn, shared, subscription, a, &op.policy, streaks)?,
        release: Some(a.delivery_id.0),
    })
}

/// Writes an attempt's row: of `subscription` (one row by its key), or when that is not known,
/// of its delivery's subscription, and then only if the delivery still exists.
fn insert_attempt(
    conn: &Connection,
    a: &AttemptRecord,
    subscription: Option<Uuid>,
) -> Result<(), StoreError> {
    let sql = if subscription.is_some() {
        "INSERT INTO attempts (id, delivery_id, subscription_id, attempted_at, succeeded,
            status_code, latency_ms, error_class, error_message, response_excerpt, trace_id)
         VALUES (?1, ?2, ?11, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    } else {
        "INSERT INTO attempts (id, delivery_id, subscription_id, attempted_at, succeeded,
            status_code, latency_ms, error_class, error_message, response_excerpt, trace_id)
         SELECT ?1, ?2, COALESCE(?11, subscription_id), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         FROM deliveries WHERE id = ?2"
    };
    conn.prepare_cached(sql)?.execute(params![
        a.id,
        a.delivery_id,
        ms(a.attempted_at),
        a.succeeded,
        a.status_code,
        a.latency_ms as i64,
        a.error_class,
        a.error_message,
        a.response_excerpt,
        a.trace_id,
        subscription,
    ])?;
    Ok(())
}

/// Moves a pending delivery on after its attempt: whether it was (still) pending.
fn move_on(conn: &Connection, op: &AttemptOp) -> Result<bool, StoreError> {
    let a = &op.attempt;
    let (status, next_at) = match op.next {
        DeliveryNext::Succeeded => (DeliveryStatus::Succeeded, None),
        DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(ms(at))),
        DeliveryNext::Failed => (DeliveryStatus::Failed, None),
    };
    let last_error = match (&a.error_class, &a.error_message) {
        (Some(class), Some(msg)) => Some(format!("{class}: {msg}")),
        (Some(class), None) => Some(class.clone()),
        _ => None,
    };
    let moved = conn
        .prepare_cached(
            "UPDATE deliveries SET
                -- Latest state only: a delivery to retry that a newer one of its resource
                -- has come after while it was in flight is superseded instead.
                status = CASE WHEN ?2 = 'pending' AND supersedable = 1 AND EXISTS (
                    SELECT 1 FROM deliveries n
                    WHERE n.subscription_id = deliveries.subscription_id
                      AND n.resource_key = deliveries.resource_key AND n.status = 'pending'
                      AND n.resource_key IS NOT NULL AND n.supersedable = 1
                      AND n.id > deliveries.id)
                    THEN 'superseded' ELSE ?2 END,
                attempts = attempts + 1,
                next_attempt_at = ?3, first_attempt_at = COALESCE(first_attempt_at, ?4),
                last_attempt_at = ?4, last_status_code = ?5, last_error = ?6, updated_at = ?4
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![
            a.delivery_id,
            status.as_str(),
            next_at,
            ms(a.attempted_at),
            a.status_code,
            last_error,
        ])?;
    Ok(moved == 1)
}

/// [`crate::Store::cancel_delivery`]: only the lease holder ends a pending delivery.
pub(super) fn cancel(
    conn: &Connection,
    shared: &Shared,
    id: Uuid,
    owner: &str,
    at: Timestamp,
    note: &str,
) -> Result<bool, StoreError> {
    let holds = shared
        .leases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .holds(&id, owner);
    if !holds {
        return Ok(false);
    }
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = ?2,
                last_error = ?3
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, ms(at), note])?;
    Ok(changed == 1)
}

/// A subscription's failure streak as stored (`None`: the subscription is gone).
fn read_streak(conn: &Connection, subscription: Uuid) -> Result<Option<Streak>, StoreError> {
    let current = conn
        .prepare_cached(
            "SELECT consecutive_failures, failing_since, breaker_until, breaker_threshold,
                status = 'ACTIVE'
             FROM subscriptions WHERE id = ?1",
        )?
        .query_row([subscription], |r| {
            Ok(Streak {
                consecutive_failures: r.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
                failing_since: r.get::<_, Option<i64>>(1)?.map(from_millis),
                breaker_until: r.get::<_, Option<i64>>(2)?.map(from_millis),
                threshold: r.get::<_, i64>(3)?.clamp(1, u32::MAX as i64) as u32,
                active: r.get(4)?,
            })
        })
        .optional()?;
    Ok(current)
}

/// Subscriptions' failure streaks as a batch left them (`None`: the subscription is gone).
pub(super) type Streaks = HashMap<Uuid, Option<Streak>>;

/// Keeps a subscription's failure streak after an attempt.
fn streak(
    conn: &Connection,
    shared: &Shared,
    subscription: Uuid,
    a: &AttemptRecord,
    policy: &FailurePolicy,
    mut streaks: Option<&mut Streaks>,
) -> Result<AttemptEffects, StoreError> {
    let known = streaks
        .as_deref()
        .and_then(|m| m.get(&subscription))
        .cloned();
    let current = match known {
        Some(current) => current,
        None => read_streak(conn, subscription)?,
    };
    let Some(current) = current else {
        if let Some(m) = streaks.as_deref_mut() {
            m.insert(subscription, None);
        }
        return Ok(AttemptEffects::default());
    };
    let verdict = rules::after_attempt(&current, a.succeeded, a.attempted_at, policy);
    if let Some(m) = streaks {
        let mut after = verdict.streak.clone();
        after.active &= verdict.disable.is_none();
        m.insert(subscription, Some(after));
    }
    if verdict.changed {
        conn.prepare_cached(
            "UPDATE subscriptions SET consecutive_failures = ?2, failing_since = ?3,
                breaker_until = ?4
             WHERE id = ?1",
        )?
        .execute(params![
            subscription,
            verdict.streak.consecutive_failures,
            verdict.streak.failing_since.map(ms),
            verdict.streak.breaker_until.map(ms),
        ])?;
    }
    if let Some(reason) = &verdict.disable {
        conn.prepare_cached(
            "UPDATE subscriptions SET status = 'INACTIVE', disabled_reason = ?2
             WHERE id = ?1 AND status = 'ACTIVE'",
        )?
        .execute(params![subscription, reason])?;
        shared.clear_fanout();
    }
    Ok(verdict.effects)
}

/// [`crate::Store::poll_deliveries`]: one writer commits in id order, so the id is the place.
pub(super) fn poll(
    conn: &Connection,
    subscription: Uuid,
    after: Option<(i64, Uuid)>,
    limit: u32,
) -> Result<Vec<crate::Polled>, StoreError> {
    let after = after.map(|(_, id)| id).unwrap_or(Uuid::nil());
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.subscription_id = ?1 AND d.id > ?2 AND d.status = 'polling'
             ORDER BY d.id LIMIT ?3 + 0"
        ))?
        .query_map(params![subscription, after, limit], |row| {
            let delivery = rows::delivery(row)?;
            let event = rows::event_at(row, DELIVERY_COLUMN_COUNT, false)?;
            Ok(crate::Polled {
                position: (0, delivery.id.0),
                delivery,
                event,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn pace_subscription(
    conn: &Connection,
    id: Uuid,
    until: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE subscriptions SET paced_until = MAX(COALESCE(paced_until, 0), ?2) WHERE id = ?1",
        params![id, ms(until)],
    )?;
    Ok(())
}

/// The first `?1` pending deliveries by due time, with what says whether they can be claimed.
pub(super) const DUE_WINDOW_SQL: &str = "SELECT d.id, d.next_attempt_at, s.paced_until,
        s.status = 'ACTIVE'
     FROM (SELECT id, next_attempt_at, subscription_id FROM deliveries
           WHERE status = 'pending' ORDER BY next_attempt_at LIMIT ?1 + 0) d
     JOIN subscriptions s ON s.id = d.subscription_id
     ORDER BY d.next_attempt_at";

pub(super) fn next_due_at(
    conn: &Connection,
    shared: &Shared,
) -> Result<Option<Timestamp>, StoreError> {
    let rows: Vec<(Uuid, i64, Option<i64>, bool)> = conn
        .prepare_cached(DUE_WINDOW_SQL)?
        .query_map([crate::DUE_WINDOW], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    let window: Vec<crate::DueRow> = rows
        .into_iter()
        .map(|(id, next_attempt_at, paced_until, active)| crate::DueRow {
            next_attempt_at,
            locked_until: leases.expiry(&id),
            paced_until,
            active,
        })
        .collect();
    Ok(crate::earliest_claimable(&window))
}

/// Pending deliveries due now and due later; both walk only the partial index of pending rows.
pub(super) const QUEUE_DEPTH_SQL: &str = "SELECT
        COUNT(*) FILTER (WHERE d.next_attempt_at <= ?1),
        COUNT(*) FILTER (WHERE d.next_attempt_at > ?1)
     FROM deliveries d WHERE d.status = 'pending'";

/// Due deliveries of ACTIVE subscriptions, earliest first: the first one not leased is the
/// oldest waiting for a worker.
const OLDEST_DUE_SQL: &str = "SELECT o.id, o.next_attempt_at FROM deliveries o
       JOIN subscriptions s ON s.id = o.subscription_id
      WHERE o.status = 'pending' AND o.next_attempt_at <= ?1 AND s.status = 'ACTIVE'
      ORDER BY o.next_attempt_at LIMIT ?2 + 0";

pub(super) fn queue_depth(
    conn: &Connection,
    shared: &Shared,
    now: Timestamp,
) -> Result<QueueDepth, StoreError> {
    let now_ms = ms(now);
    let (due, scheduled): (i64, i64) = conn
        .prepare_cached(QUEUE_DEPTH_SQL)?
        .query_row([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    let leased = leases.count(now_ms);
    let mut oldest = None;
    let mut statement = conn.prepare_cached(OLDEST_DUE_SQL)?;
    let mut stream = statement.query(params![now_ms, leased as i64 + 1])?;
    while let Some(r) = stream.next()? {
        let id: Uuid = r.get(0)?;
        if leases.alive(&id, now_ms).is_none() {
            oldest = Some(from_millis(r.get(1)?));
            break;
        }
    }
    Ok(QueueDepth {
        // A leased delivery was due when it was claimed and is pending until its attempt is
        // recorded: counted as leased, not due.
        due: (due.max(0) as u64).saturating_sub(leased),
        scheduled: scheduled.max(0) as u64,
        leased,
        oldest_due_at: oldest,
    })
}

pub(super) fn select(conn: &Connection, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = ?1"
        ))?
        .query_row([id], rows::delivery)
        .optional()?)
}

pub(super) fn list(
    conn: &Connection,
    filter: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    use rusqlite::types::Value;
    let mut sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE 1 = 1"
    );
    let mut args: Vec<Value> = Vec::new();
    let blob = |id: Uuid| Value::Blob(id.as_bytes().to_vec());
    if let Some(partners) = &filter.partners {
        sql += &format!(" AND e.partner_id IN ({})", placeholders(partners.len()));
        args.extend(partners.iter().map(|p| Value::Text(p.0.clone())));
    }
    if let Some(id) = filter.subscription_id {
        sql += " AND d.subscription_id = ?";
        args.push(blob(id.0));
    }
    if let Some(id) = filter.event_id {
        sql += " AND d.event_id = ?";
        args.push(blob(id.0));
    }
    if let Some(status) = filter.status {
        sql += " AND d.status = ?";
        args.push(Value::Text(status.as_str().to_string()));
    }
    if let Some(before) = filter.before {
        sql += " AND d.id < ?";
        args.push(blob(before.0));
    }
    sql += &format!(" ORDER BY d.id DESC LIMIT {}", filter.limit.clamp(1, 1000));
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), rows::delivery)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub(super) fn get(
    conn: &Connection,
    id: Uuid,
) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
    let Some(delivery) = select(conn, id)? else {
        return Ok(None);
    };
    let attempts = conn
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.delivery_id = ?1
             ORDER BY a.attempted_at, a.id"
        ))?
        .query_map([id], rows::attempt)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((delivery, attempts)))
}

/// Makes a delivery pending and due at `now` with a fresh retry cycle; an attempt in flight
/// for it will not move it on (its lease is gone).
pub(super) fn retry(
    conn: &Connection,
    shared: &Shared,
    id: Uuid,
    now: Timestamp,
) -> Result<Option<DeliveryRecord>, StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', attempts = 0, first_attempt_at = NULL,
            next_attempt_at = ?2, updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, ms(now)])?;
    shared
        .leases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .release(id);
    select(conn, id)
}

pub(super) fn replay(
    conn: &Connection,
    shared: &Shared,
    subscription_id: Uuid,
    since: Timestamp,
    until: Timestamp,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let Some(sub) = super::subscriptions::select(conn, subscription_id)? else {
        return Ok(0);
    };
    let ordered = sub.ordering == switchyard_core::model::Ordering::Resource;
    let types = to_json(&sub.event_types);
    let events: Vec<(Uuid, Option<String>)> = conn
        .prepare_cached(
            "SELECT e.id, e.resource_key FROM events e
             WHERE e.received_at >= ?2 AND e.received_at < ?3 AND e.partner_id = ?1
               AND e.event_version = ?4
               AND (e.event_type IN (SELECT value FROM json_each(?5))
                    OR e.topic IN (SELECT value FROM json_each(?5)))
             ORDER BY e.seq",
        )?
        .query_map(
            params![
                sub.partner_id,
                ms(since),
                ms(until),
                sub.event_version,
                types
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, subscription_id, status, attempts,
            next_attempt_at, created_at, updated_at, resource_key)
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4, ?5)
         ON CONFLICT (event_id, subscription_id) DO UPDATE SET status = 'pending',
            attempts = 0, first_attempt_at = NULL, next_attempt_at = ?4, updated_at = ?4
         RETURNING id",
    )?;
    let mut replayed = Vec::with_capacity(events.len());
    for (event_id, resource_key) in &events {
        let id: Uuid = upsert.query_row(
            params![
                Uuid::now_v7(),
                event_id,
                subscription_id,
                ms(now),
                resource_key.as_deref().filter(|_| ordered),
            ],
            |r| r.get(0),
        )?;
        replayed.push(id);
    }
    let mut leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    for id in replayed {
        leases.release(id);
    }
    Ok(events.len() as u64)
}

/// Deletes one batch of what is older than `before` (see `Store::purge_before`). Each table is
/// walked from its oldest rows, in the order they were written, and the walk stops at the first
/// row that is not old, so a batch costs the same however much is kept.
pub(super) fn purge(
    conn: &Connection,
    before: Timestamp,
    batch: u32,
) -> Result<PurgeCounts, StoreError> {
    let before = ms(before);
    let oldest = |sql: &str| -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64, i64)> = conn
            .prepare_cached(sql)?
            .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .take_while(|(_, at)| *at < before)
            .map(|(rowid, _)| rowid)
            .collect())
    };
    let delete = |table: &str, rowids: &[i64]| -> Result<u64, StoreError> {
        let mut statement =
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))?;
        for rowid in rowids {
            statement.execute([rowid])?;
        }
        Ok(rowids.len() as u64)
    };
    let attempts = delete(
        "attempts",
        &oldest("SELECT rowid, attempted_at FROM attempts ORDER BY rowid LIMIT ?1 + 0")?,
    )?;
    let rejections = delete(
        "rejections",
        &oldest("SELECT rowid, received_at FROM rejections ORDER BY received_at LIMIT ?1 + 0")?,
    )?;
    // Not counted: duplicate sightings and outcomes are small notes about events.
    delete(
        "duplicates",
        &oldest("SELECT rowid, received_at FROM duplicates ORDER BY received_at LIMIT ?1 + 0")?,
    )?;
    delete(
        "outcomes",
        &oldest("SELECT rowid, reported_at FROM outcomes ORDER BY reported_at LIMIT ?1 + 0")?,
    )?;
    // The newest event is kept, however old: SQLite numbers a new row one past the largest
    // `seq` left, and the derive cursor and every envelope's resourceVersion rely on `seq` only
    // growing, which an emptied log would break.
    let events: Vec<(i64, Uuid, Option<String>)> = conn
        .prepare_cached(
            "SELECT e.seq, e.id, e.resource_key FROM events e WHERE e.received_at < ?1
               AND e.seq < (SELECT MAX(seq) FROM events)
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.event_id = e.id AND d.status = 'pending')
             ORDER BY e.received_at LIMIT ?2 + 0",
        )?
        .query_map(params![before, batch], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut deliveries = 0;
    for (seq, id, resource_key) in &events {
        deliveries += conn
            .prepare_cached("DELETE FROM deliveries WHERE event_id = ?1")?
            .execute([id])? as u64;
        if let Some(key) = resource_key {
            conn.prepare_cached(
                "DELETE FROM event_resources WHERE resource_key = ?1 AND seq = ?2",
            )?
            .execute(params![key, seq])?;
        }
        conn.prepare_cached("DELETE FROM events WHERE seq = ?1")?
            .execute([seq])?;
    }
    Ok(PurgeCounts {
        events: events.len() as u64,
        deliveries,
        attempts,
        rejections,
    })
}

pub(super) fn subscription_state(
    conn: &Connection,
    id: Uuid,
) -> Result<SubscriptionState, StoreError> {
    let state = conn
        .prepare_cached(
            "SELECT s.consecutive_failures, s.failing_since, s.breaker_until, s.paced_until,
                (SELECT COUNT(*) FROM deliveries d
                  WHERE d.subscription_id = s.id AND d.status = 'pending'),
                (SELECT MIN(d.created_at) FROM deliveries d
                  WHERE d.subscription_id = s.id AND d.status = 'pending')
             FROM subscriptions s WHERE s.id = ?1",
        )?
        .query_row([id], |r| {
            let t = |v: Option<i64>| v.map(from_millis);
            Ok(SubscriptionState {
                consecutive_failures: r.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
                failing_since: t(r.get(1)?),
                breaker_until: t(r.get(2)?),
                paced_until: t(r.get(3)?),
                pending: r.get::<_, i64>(4)?.max(0) as u64,
                oldest_pending_at: t(r.get(5)?),
            })
        })
        .optional()?;
    Ok(state.unwrap_or_default())
}

pub(super) fn attempts_since(
    conn: &Connection,
    subscription_id: Uuid,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<AttemptRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a
             WHERE a.subscription_id = ?1 AND a.attempted_at >= ?2
             ORDER BY a.attempted_at, a.id LIMIT ?3 + 0"
        ))?
        .query_map(params![subscription_id, ms(since), limit], rows::attempt)?
        .collect::<Result<Vec<_>, _>>()?)
}
