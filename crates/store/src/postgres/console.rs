//! The console's views: callback logs, the failures dashboard, subscribers' outcomes, source
//! counts and the per-partner console switch.

use jiff::Timestamp;
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis as ms};
use switchyard_core::model::{AttemptFilter, LoggedAttempt, OutcomeFilter, OutcomeRecord};

use super::rows::{self, ATTEMPT_COLUMNS, OUTCOME_COLUMNS};
use super::{Conn, Sql, execute, query};
use crate::{BucketCount, FailureReport, SourceStats, StoreError};
use switchyard_core::model::PartnerId;

pub(super) async fn list_attempts(
    conn: &Conn,
    f: &AttemptFilter,
) -> Result<Vec<LoggedAttempt>, StoreError> {
    let mut sql = Sql::new(format!(
        "SELECT {ATTEMPT_COLUMNS}, a.subscription_id, d.event_id, e.event_type
         FROM attempts a
         JOIN deliveries d ON d.id = a.delivery_id
         JOIN events e ON e.id = d.event_id
         WHERE TRUE"
    ));
    sql.and(" AND a.subscription_id = {}", f.subscription_id);
    // A literal, not a parameter: only then may the planner use the partial index of failures.
    match f.succeeded {
        Some(true) => sql.text.push_str(" AND a.succeeded"),
        Some(false) => sql.text.push_str(" AND NOT a.succeeded"),
        None => {}
    }
    if let Some(since) = f.since {
        sql.and(" AND a.attempted_at >= {}", ms(since));
    }
    if let Some(until) = f.until {
        sql.and(" AND a.attempted_at < {}", ms(until));
    }
    if let Some(after) = f.after {
        // Keyset on (time, id): the log's order, served by the attempts_log index.
        sql.and(
            " AND (a.attempted_at, a.id) <
              (SELECT x.attempted_at, x.id FROM attempts x WHERE x.id = {})",
            after,
        );
    }
    sql.text.push_str(&format!(
        " ORDER BY a.attempted_at DESC, a.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    ));
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(rows::logged_attempt).collect()
}

pub(super) async fn failure_report(
    conn: &Conn,
    partners: Option<Vec<PartnerId>>,
    since: Timestamp,
    bucket_secs: i64,
) -> Result<FailureReport, StoreError> {
    let bucket_ms = bucket_secs.max(1) * 1000;
    let run = |text: &str, only: &str| {
        // `$1` is the bucket width and `$2` the start, in every text.
        let mut sql = Sql::new("");
        sql.bind(bucket_ms);
        sql.bind(ms(since));
        sql.text.push_str(text);
        if let Some(p) = &partners {
            sql.and(only, p.clone());
        }
        sql.text.push_str(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
        sql
    };
    let queries = [
        run(
            "SELECT (r.received_at / $1) * $1, r.source_id, r.reason, COUNT(*)
             FROM rejections r WHERE r.received_at >= $2",
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p
                          WHERE p = ANY({}))",
        ),
        run(
            "SELECT (a.attempted_at / $1) * $1, a.subscription_id::text,
                    CASE WHEN a.status_code IS NOT NULL THEN 'HTTP ' || a.status_code
                         ELSE COALESCE(a.error_class, 'unknown') END,
                    COUNT(*)
             FROM attempts a WHERE NOT a.succeeded AND a.attempted_at >= $2",
            " AND a.subscription_id IN
              (SELECT s.id FROM subscriptions s WHERE s.partner_id = ANY({}))",
        ),
        run(
            "SELECT (o.reported_at / $1) * $1, o.client_id, COALESCE(o.reason, 'unspecified'),
                    COUNT(*)
             FROM outcomes o WHERE o.status = 'failed' AND o.reported_at >= $2",
            " AND o.partner_id = ANY({})",
        ),
    ];
    let mut found = Vec::new();
    for sql in &queries {
        let rows = query(conn, &sql.text, &sql.params()).await?;
        found.push(
            rows.iter()
                .map(|r| {
                    Ok(BucketCount {
                        bucket: from_millis(r.try_get(0)?),
                        key: r.try_get(1)?,
                        reason: r.try_get(2)?,
                        count: r.try_get::<_, i64>(3)?.max(0) as u64,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?,
        );
    }
    let outcomes = found.pop().unwrap_or_default();
    let attempt_failures = found.pop().unwrap_or_default();
    let rejections = found.pop().unwrap_or_default();
    Ok(FailureReport {
        rejections,
        attempt_failures,
        outcomes,
    })
}

pub(super) async fn insert_outcome(conn: &Conn, o: &OutcomeRecord) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO outcomes (id, event_id, partner_id, client_id, status, reason, message,
            reported_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &o.id,
            &o.event_id,
            &o.partner_id,
            &o.client_id,
            &o.status,
            &o.reason,
            &o.message,
            &ms(o.reported_at),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_outcomes(
    conn: &Conn,
    f: &OutcomeFilter,
) -> Result<Vec<OutcomeRecord>, StoreError> {
    let mut sql = Sql::new(format!(
        "SELECT {OUTCOME_COLUMNS} FROM outcomes o WHERE TRUE"
    ));
    if let Some(partners) = &f.partners {
        sql.and(" AND o.partner_id = ANY({})", partners.clone());
    }
    if let Some(id) = f.event_id {
        sql.and(" AND o.event_id = {}", id);
    }
    if let Some(status) = &f.status {
        sql.and(" AND o.status = {}", status.clone());
    }
    if let Some(reason) = &f.reason {
        sql.and(" AND o.reason = {}", reason.clone());
    }
    if let Some(since) = f.since {
        sql.and(" AND o.reported_at >= {}", ms(since));
    }
    if let Some(before) = f.before {
        sql.and(" AND o.id < {}", before);
    }
    sql.text.push_str(&format!(
        " ORDER BY o.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    ));
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(rows::outcome).collect()
}

pub(super) async fn source_stats(conn: &Conn, source_id: Uuid) -> Result<SourceStats, StoreError> {
    let rows = query(
        conn,
        // Received events always carry a dedup key: the first count uses events_dedup.
        "SELECT
            (SELECT COUNT(*) FROM events WHERE origin = $1 AND dedup_key IS NOT NULL),
            (SELECT COUNT(*) FROM duplicates WHERE origin = $1),
            (SELECT COUNT(*) FROM rejections WHERE source_id = $1)",
        &[&source_id.to_string()],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(SourceStats::default());
    };
    let n = |i: usize| -> Result<u64, StoreError> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    Ok(SourceStats {
        accepted: n(0)?,
        duplicates: n(1)?,
        refused: n(2)?,
    })
}

pub(super) async fn set_console_enabled(
    conn: &Conn,
    partner_id: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO partner_settings (partner_id, console_enabled) VALUES ($1, $2)
         ON CONFLICT (partner_id) DO UPDATE SET console_enabled = excluded.console_enabled",
        &[&partner_id, &enabled],
    )
    .await?;
    Ok(())
}

pub(super) async fn console_disabled_partners(conn: &Conn) -> Result<Vec<String>, StoreError> {
    let rows = query(
        conn,
        "SELECT partner_id FROM partner_settings WHERE NOT console_enabled ORDER BY partner_id",
        &[],
    )
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, String>(0)?))
        .collect()
}
