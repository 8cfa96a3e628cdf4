//! Deliveries: claims (one statement for the common case), recording attempts set-wise,
//! retries, replays, the due queue and retention.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::oneshot;
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis as ms};
use switchyard_core::model::{AttemptRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus};

use super::rows::{
    self, ATTEMPT_COLUMNS, CLAIMED_EVENT_COLUMNS, DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS,
    EVENT_COLUMN_COUNT, SUBSCRIPTION_COLUMNS,
};
use super::tail::Share;
use super::{Conn, Sql, execute, notify_due, query, query_opt};
use crate::rules::{self, Streak};
use crate::{
    AttemptEffects, ClaimedDelivery, DeliveryNext, FailurePolicy, PurgeCounts, QueueDepth,
    StoreError, SubscriptionState, pacing,
};

/// Recording one attempt, as the writers run it.
pub(super) struct AttemptOp {
    pub attempt: AttemptRecord,
    pub next: DeliveryNext,
    pub owner: String,
    pub policy: FailurePolicy,
    pub reply: oneshot::Sender<Result<AttemptEffects, StoreError>>,
}

/// Records a batch of attempts: every attempt row, and where the op's owner still holds the
/// lease, the delivery moved on and its subscription's failure streak kept
/// (`rules::after_attempt`, in the batch's order). The effects are in the ops' order.
///
/// With `tail`, it says when it has sent its last statement: in the common last round, whose
/// attempts all succeeded (no streak to read and keep), as soon as its two statements are sent.
pub(super) async fn complete_batch(
    conn: &Conn,
    ops: &[&AttemptOp],
    tail: Option<&Share<'_>>,
) -> Result<Vec<AttemptEffects>, StoreError> {
    // Two attempts of one delivery in a batch (a lease taken over) go in separate rounds, so
    // each statement moves a delivery at most once.
    let mut effects = Vec::with_capacity(ops.len());
    let mut start = 0;
    while start < ops.len() {
        let mut seen = HashSet::new();
        let mut end = start;
        while end < ops.len() && seen.insert(ops[end].attempt.delivery_id) {
            end += 1;
        }
        let last = (end == ops.len()).then_some(tail).flatten();
        effects.extend(complete_round(conn, &ops[start..end], last).await?);
        start = end;
    }
    tail.into_iter().for_each(Share::sent);
    Ok(effects)
}

async fn complete_round(
    conn: &Conn,
    ops: &[&AttemptOp],
    tail: Option<&Share<'_>>,
) -> Result<Vec<AttemptEffects>, StoreError> {
    let attempts: Vec<&AttemptRecord> = ops.iter().map(|o| &o.attempt).collect();
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.id).collect();
    let deliveries: Vec<Uuid> = attempts.iter().map(|a| a.delivery_id.0).collect();
    let at: Vec<i64> = attempts.iter().map(|a| ms(a.attempted_at)).collect();
    let succeeded: Vec<bool> = attempts.iter().map(|a| a.succeeded).collect();
    let codes: Vec<Option<i32>> = attempts
        .iter()
        .map(|a| a.status_code.map(i32::from))
        .collect();
    let latency: Vec<i64> = attempts.iter().map(|a| a.latency_ms as i64).collect();
    let classes: Vec<Option<&str>> = attempts.iter().map(|a| a.error_class.as_deref()).collect();
    let messages: Vec<Option<&str>> = attempts
        .iter()
        .map(|a| a.error_message.as_deref())
        .collect();
    let excerpts: Vec<Option<&str>> = attempts
        .iter()
        .map(|a| a.response_excerpt.as_deref())
        .collect();
    let traces: Vec<Option<&str>> = attempts.iter().map(|a| a.trace_id.as_deref()).collect();
    let mut statuses = Vec::with_capacity(ops.len());
    let mut next_at: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    for op in ops {
        let (status, next) = match op.next {
            DeliveryNext::Succeeded => (DeliveryStatus::Succeeded, None),
            DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(ms(at))),
            DeliveryNext::Failed => (DeliveryStatus::Failed, None),
        };
        statuses.push(status.as_str());
        next_at.push(next);
    }
    let last_errors: Vec<Option<String>> = attempts
        .iter()
        .map(|a| match (&a.error_class, &a.error_message) {
            (Some(class), Some(msg)) => Some(format!("{class}: {msg}")),
            (Some(class), None) => Some(class.clone()),
            _ => None,
        })
        .collect();
    let owners: Vec<&str> = ops.iter().map(|o| o.owner.as_str()).collect();
    let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &ids,
        &deliveries,
        &at,
        &succeeded,
        &codes,
        &latency,
        &classes,
        &messages,
        &excerpts,
        &traces,
    ];
    // Both prepared before either is sent, so they go out together when first polled, and
    // when nothing follows them (every attempt succeeded: no streak to keep) the tail opens
    // behind them.
    let (insert_statement, move_statement) = tokio::try_join!(
        conn.prepare_cached(INSERT_ATTEMPTS),
        conn.prepare_cached(MOVE_DELIVERIES)
    )?;
    let move_params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &deliveries,
        &statuses,
        &next_at,
        &at,
        &codes,
        &last_errors,
        &owners,
        &succeeded,
    ];
    let last = tail.filter(|_| ops.iter().all(|o| o.attempt.succeeded));
    let (_, moved, ()) = tokio::try_join!(
        biased;
        conn.execute(&insert_statement, &insert_params),
        conn.query(&move_statement, &move_params),
        async {
            last.into_iter().for_each(Share::sent);
            Ok(())
        },
    )?;
    let mut subscription_of: HashMap<Uuid, Uuid> = HashMap::new();
    let mut recovered: HashMap<Uuid, bool> = HashMap::new();
    for r in &moved {
        let sub: Uuid = r.try_get(1)?;
        subscription_of.insert(r.try_get(0)?, sub);
        if let Some(flag) = r.try_get::<_, Option<bool>>(2)? {
            recovered.insert(sub, flag);
        }
    }
    streaks(conn, ops, &subscription_of, &recovered).await
}

const INSERT_ATTEMPTS: &str =
    "INSERT INTO attempts (id, delivery_id, subscription_id, attempted_at, succeeded,
            status_code, latency_ms, error_class, error_message, response_excerpt, trace_id)
         SELECT u.id, u.did, d.subscription_id, u.at, u.ok, u.code, u.lat, u.cls, u.msg, u.exc,
                u.trace
         FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bool[], $5::int[], $6::bigint[],
                     $7::text[], $8::text[], $9::text[], $10::text[])
              AS u(id, did, at, ok, code, lat, cls, msg, exc, trace)
         JOIN deliveries d ON d.id = u.did";

// Only the lease holder moves a delivery on: a worker whose lease expired and was taken
// over must not overwrite the newer holder's outcome. In the same statement, the streak of
// every subscription that only succeeded ends (when it had one, which in the steady state it
// has not: then no subscription row is written or locked, and nodes delivering for one
// subscription never wait on each other); subscriptions with a failure are kept below.
const MOVE_DELIVERIES: &str = "WITH u AS (
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::int[],
                                 $6::text[], $7::text[], $8::bool[])
                AS u(id, st, nxt, at, code, err, owner, ok)),
         moved AS (
            UPDATE deliveries d SET
                -- Latest state only: a delivery to retry that a newer one of its resource
                -- has come after while it was in flight is superseded instead.
                status = CASE WHEN u.st = 'pending' AND d.supersedable AND EXISTS (
                    SELECT 1 FROM deliveries n
                    WHERE n.subscription_id = d.subscription_id
                      AND n.resource_key = d.resource_key AND n.status = 'pending'
                      AND n.resource_key IS NOT NULL AND n.supersedable AND n.id > d.id)
                    THEN 'superseded' ELSE u.st END,
                attempts = d.attempts + 1,
                next_attempt_at = u.nxt, first_attempt_at = COALESCE(d.first_attempt_at, u.at),
                last_attempt_at = u.at, last_status_code = u.code, last_error = u.err,
                locked_until = NULL, lease_owner = NULL, updated_at = u.at
            FROM u
            WHERE d.id = u.id AND d.lease_owner = u.owner AND d.status = 'pending'
            RETURNING d.id, d.subscription_id, u.ok),
         old AS (
            SELECT s.id, s.consecutive_failures >= s.breaker_threshold AS recovered
            FROM subscriptions s
            WHERE s.id IN (SELECT subscription_id FROM moved)
              AND NOT EXISTS (SELECT 1 FROM moved m WHERE m.subscription_id = s.id AND NOT m.ok)
              AND (s.consecutive_failures > 0 OR s.failing_since IS NOT NULL
                   OR s.breaker_until IS NOT NULL)
            ORDER BY s.id FOR UPDATE),
         ended AS (
            UPDATE subscriptions s SET consecutive_failures = 0, failing_since = NULL,
                breaker_until = NULL
            FROM old WHERE s.id = old.id
            RETURNING s.id, old.recovered)
         SELECT m.id, m.subscription_id, e.recovered FROM moved m
         LEFT JOIN ended e ON e.id = m.subscription_id";

/// The effects of a round's attempts: `recovered` for the subscriptions whose streak the
/// update ended, and for those with a failure, their streaks kept in the batch's order.
async fn streaks(
    conn: &Conn,
    ops: &[&AttemptOp],
    subscription_of: &HashMap<Uuid, Uuid>,
    recovered: &HashMap<Uuid, bool>,
) -> Result<Vec<AttemptEffects>, StoreError> {
    let mut effects = vec![AttemptEffects::default(); ops.len()];
    // Each subscription's attempts, in the batch's order.
    let mut by_subscription: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(sub) = subscription_of.get(&op.attempt.delivery_id.0) {
            by_subscription.entry(*sub).or_default().push(i);
        }
    }
    let mut failing: Vec<Uuid> = Vec::new();
    for (sub, indexes) in &by_subscription {
        if indexes.iter().all(|&i| ops[i].attempt.succeeded) {
            if let (Some(flag), Some(&first)) = (recovered.get(sub), indexes.first()) {
                effects[first].recovered = *flag;
            }
        } else {
            failing.push(*sub);
        }
    }
    if failing.is_empty() {
        return Ok(effects);
    }
    failing.sort();
    let current = query(
        conn,
        "SELECT id, consecutive_failures, failing_since, breaker_until, breaker_threshold,
            status = 'ACTIVE'
         FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&failing],
    )
    .await?;
    if current.is_empty() {
        return Ok(effects);
    }
    let mut updates = StreakRows::default();
    let mut disables: (Vec<Uuid>, Vec<String>) = Default::default();
    let mut disabled_by: HashMap<Uuid, usize> = HashMap::new();
    for row in &current {
        let sub: Uuid = row.try_get(0)?;
        let mut streak = Streak {
            consecutive_failures: row.try_get::<_, i32>(1)?.max(0) as u32,
            failing_since: row.try_get::<_, Option<i64>>(2)?.map(from_millis),
            breaker_until: row.try_get::<_, Option<i64>>(3)?.map(from_millis),
            threshold: row.try_get::<_, i32>(4)?.max(1) as u32,
            active: row.try_get(5)?,
        };
        let mut changed = false;
        for &i in by_subscription.get(&sub).into_iter().flatten() {
            let a = &ops[i].attempt;
            let verdict =
                rules::after_attempt(&streak, a.succeeded, a.attempted_at, &ops[i].policy);
            changed |= verdict.changed;
            if let Some(reason) = verdict.disable {
                disables.0.push(sub);
                disables.1.push(reason);
                disabled_by.insert(sub, i);
            }
            effects[i] = verdict.effects;
            streak = verdict.streak;
        }
        if changed {
            updates.ids.push(sub);
            updates
                .failures
                .push(streak.consecutive_failures.min(i32::MAX as u32) as i32);
            updates.since.push(streak.failing_since.map(ms));
            updates.until.push(streak.breaker_until.map(ms));
        }
    }
    execute(
        conn,
        "UPDATE subscriptions s SET consecutive_failures = u.f, failing_since = u.since,
            breaker_until = u.until
         FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bigint[]) AS u(id, f, since, until)
         WHERE s.id = u.id",
        &[
            &updates.ids,
            &updates.failures,
            &updates.since,
            &updates.until,
        ],
    )
    .await?;
    if !disables.0.is_empty() {
        let done = query(
            conn,
            "UPDATE subscriptions s SET status = 'INACTIVE', disabled_reason = u.reason
             FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
             WHERE s.id = u.id AND s.status = 'ACTIVE'
             RETURNING s.id",
            &[&disables.0, &disables.1],
        )
        .await?;
        let disabled: HashSet<Uuid> = done
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for (sub, i) in disabled_by {
            if !disabled.contains(&sub) {
                effects[i].disabled = None;
            }
        }
    }
    Ok(effects)
}

/// Streaks to write, column by column.
#[derive(Default)]
struct StreakRows {
    ids: Vec<Uuid>,
    failures: Vec<i32>,
    since: Vec<Option<i64>>,
    until: Vec<Option<i64>>,
}

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

fn claimed_row(row: &tokio_postgres::Row) -> Result<ClaimedDelivery, StoreError> {
    let subscription = rows::subscription_at(row, DELIVERY_COLUMN_COUNT + EVENT_COLUMN_COUNT)?;
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
        let mut unpaced = rows
            .iter()
            .map(claimed_row)
            .collect::<Result<Vec<_>, _>>()?;
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
    rows.iter().map(claimed_row).collect()
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
