//! Recording attempts, set-wise: a batch's attempt rows in one statement, the deliveries moved
//! on and the streaks of subscriptions that only succeeded ended in another, and the streaks
//! of those with a failure kept (`rules::after_attempt`) in the batch's order.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis as ms};
use switchyard_core::model::{AttemptRecord, DeliveryStatus};

use super::tail::Share;
use super::{Conn, execute, query};
use crate::rules::{self, Streak};
use crate::{AttemptEffects, DeliveryNext, StoreError};

pub(super) use crate::writer_op::AttemptOp;

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
