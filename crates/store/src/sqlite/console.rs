//! The console's views: callback logs, the failures dashboard, subscribers' outcomes, source
//! counts and the per-partner console switch.

use jiff::Timestamp;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params, params_from_iter};
use uuid::Uuid;

use switchyard_core::model::{AttemptFilter, LoggedAttempt, OutcomeFilter, OutcomeRecord};

use super::placeholders;
use super::rows::{self, ATTEMPT_COLUMNS, OUTCOME_COLUMNS, ms};
use crate::{BucketCount, FailureReport, SourceStats, StoreError};
use switchyard_core::model::PartnerId;

fn blob(id: Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

/// A subscription's callback log: attempts newest first, with their events.
pub(super) fn list_attempts(
    conn: &Connection,
    f: &AttemptFilter,
) -> Result<Vec<LoggedAttempt>, StoreError> {
    let mut sql = format!(
        "SELECT {ATTEMPT_COLUMNS}, a.subscription_id, d.event_id, e.event_type
         FROM attempts a
         JOIN deliveries d ON d.id = a.delivery_id
         JOIN events e ON e.id = d.event_id
         WHERE a.subscription_id = ?"
    );
    let mut args = vec![blob(f.subscription_id.0)];
    // A literal, not a parameter: only then may SQLite use the partial index of failures.
    match f.succeeded {
        Some(true) => sql += " AND a.succeeded = 1",
        Some(false) => sql += " AND a.succeeded = 0",
        None => {}
    }
    if let Some(since) = f.since {
        sql += " AND a.attempted_at >= ?";
        args.push(Value::Integer(ms(since)));
    }
    if let Some(until) = f.until {
        sql += " AND a.attempted_at < ?";
        args.push(Value::Integer(ms(until)));
    }
    if let Some(after) = f.after {
        // Keyset on (time, id): the log's order, served by the attempts_log index.
        sql += " AND (a.attempted_at, a.id) <
                  (SELECT x.attempted_at, x.id FROM attempts x WHERE x.id = ?)";
        args.push(blob(after));
    }
    sql += &format!(
        " ORDER BY a.attempted_at DESC, a.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    );
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::logged_attempt)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

/// A bucket's key as text: a source id or client id (text), or a subscription id (a blob).
fn key_text(value: ValueRef<'_>) -> rusqlite::Result<String> {
    match value {
        ValueRef::Blob(bytes) => Uuid::from_slice(bytes)
            .map(|id| id.to_string())
            .map_err(|e| rows::corrupt(format!("bucket key: {e}"))),
        ValueRef::Text(text) => Ok(String::from_utf8_lossy(text).into_owned()),
        other => Err(rows::corrupt(format!("bucket key {other:?}"))),
    }
}

/// Rejections, failed attempts and reported failures since `since`, counted per bucket.
pub(super) fn failure_report(
    conn: &Connection,
    partners: Option<&[PartnerId]>,
    since: Timestamp,
    bucket_secs: i64,
) -> Result<FailureReport, StoreError> {
    let bucket_ms = bucket_secs.max(1) * 1000;
    // Every query takes the bucket width, the start, then the partners.
    let mut args = vec![Value::Integer(bucket_ms), Value::Integer(ms(since))];
    if let Some(partners) = partners {
        args.extend(partners.iter().map(|p| Value::Text(p.0.clone())));
    }
    let only = |clause: &str| match partners {
        None => String::new(),
        Some(p) => clause.replace("{}", &placeholders(p.len())),
    };
    let collect = |sql: String| -> Result<Vec<BucketCount>, StoreError> {
        let mut stmt = conn.prepare(&sql)?;
        let found = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok(BucketCount {
                    bucket: switchyard_core::clock::from_millis(r.get(0)?),
                    key: key_text(r.get_ref(1)?)?,
                    reason: r.get(2)?,
                    count: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(found)
    };
    let rejections = collect(format!(
        "SELECT (r.received_at / ?1) * ?1, r.source_id, r.reason, COUNT(*)
         FROM rejections r WHERE r.received_at >= ?2 {}
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        only("AND EXISTS (SELECT 1 FROM json_each(r.partners) p WHERE p.value IN ({}))")
    ))?;
    let attempt_failures = collect(format!(
        "SELECT (a.attempted_at / ?1) * ?1, a.subscription_id,
                CASE WHEN a.status_code IS NOT NULL THEN 'HTTP ' || a.status_code
                     ELSE COALESCE(a.error_class, 'unknown') END,
                COUNT(*)
         FROM attempts a WHERE a.succeeded = 0 AND a.attempted_at >= ?2 {}
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        only(
            "AND a.subscription_id IN
             (SELECT s.id FROM subscriptions s WHERE s.partner_id IN ({}))"
        )
    ))?;
    let outcomes = collect(format!(
        "SELECT (o.reported_at / ?1) * ?1, o.client_id, COALESCE(o.reason, 'unspecified'),
                COUNT(*)
         FROM outcomes o WHERE o.status = 'failed' AND o.reported_at >= ?2 {}
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        only("AND o.partner_id IN ({})")
    ))?;
    Ok(FailureReport {
        rejections,
        attempt_failures,
        outcomes,
    })
}

pub(super) fn insert_outcome(conn: &Connection, o: &OutcomeRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outcomes (id, event_id, partner_id, client_id, status, reason,
            message, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        o.id,
        o.event_id,
        o.partner_id,
        o.client_id,
        o.status,
        o.reason,
        o.message,
        ms(o.reported_at),
    ])?;
    Ok(())
}

pub(super) fn list_outcomes(
    conn: &Connection,
    f: &OutcomeFilter,
) -> Result<Vec<OutcomeRecord>, StoreError> {
    let mut sql = format!("SELECT {OUTCOME_COLUMNS} FROM outcomes o WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let text = |s: &str| Value::Text(s.to_string());
    if let Some(partners) = &f.partners {
        sql += &format!(" AND o.partner_id IN ({})", placeholders(partners.len()));
        args.extend(partners.iter().map(|p| text(p)));
    }
    if let Some(id) = f.event_id {
        sql += " AND o.event_id = ?";
        args.push(blob(id.0));
    }
    for (column, value) in [("o.status", &f.status), ("o.reason", &f.reason)] {
        if let Some(v) = value {
            sql += &format!(" AND {column} = ?");
            args.push(text(v));
        }
    }
    if let Some(since) = f.since {
        sql += " AND o.reported_at >= ?";
        args.push(Value::Integer(ms(since)));
    }
    if let Some(before) = f.before {
        sql += " AND o.id < ?";
        args.push(blob(before));
    }
    sql += &format!(" ORDER BY o.id DESC LIMIT {}", f.limit.clamp(1, 1000));
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::outcome)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub(super) fn source_stats(conn: &Connection, source_id: Uuid) -> Result<SourceStats, StoreError> {
    let id = source_id.to_string();
    let count = |sql: &str| -> Result<u64, StoreError> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([&id], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    };
    Ok(SourceStats {
        // Received events always carry a dedup key: this count uses events_dedup.
        accepted: count("SELECT COUNT(*) FROM events WHERE origin = ?1 AND dedup_key IS NOT NULL")?,
        duplicates: count("SELECT COUNT(*) FROM duplicates WHERE origin = ?1")?,
        refused: count("SELECT COUNT(*) FROM rejections WHERE source_id = ?1")?,
    })
}

pub(super) fn set_console_enabled(
    conn: &Connection,
    partner_id: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO partner_settings (partner_id, console_enabled) VALUES (?1, ?2)
         ON CONFLICT (partner_id) DO UPDATE SET console_enabled = excluded.console_enabled",
        params![partner_id, enabled],
    )?;
    Ok(())
}

pub(super) fn console_disabled_partners(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT partner_id FROM partner_settings WHERE console_enabled = 0 ORDER BY partner_id",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(found)
}
