//! Reconciliation's state: each source's cursor, next run and lease, and the runs' reports.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use switchyard_core::model::ReconcileRun;

use super::rows::{ms, to_json};
use crate::{ReconcileLease, StoreError};

/// Runs kept per source; older ones are dropped as new ones are recorded.
const RUNS_KEPT: i64 = crate::RECONCILE_RUNS_KEPT;

pub(super) fn lease(
    conn: &Connection,
    source: Uuid,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
    force: bool,
) -> Result<Option<ReconcileLease>, StoreError> {
    conn.prepare_cached(
        "INSERT INTO reconcile_state (source_id, cursor_at, next_run_at) VALUES (?1, NULL, 0)
         ON CONFLICT (source_id) DO NOTHING",
    )?
    .execute([source])?;
    let cursor: Option<Option<i64>> = conn
        .prepare_cached(
            "UPDATE reconcile_state SET leased_by = ?2, leased_until = ?4
             WHERE source_id = ?1
               AND (leased_until IS NULL OR leased_until < ?3 OR leased_by = ?2)
               AND (?5 OR next_run_at <= ?3)
             RETURNING cursor_at",
        )?
        .query_row(params![source, owner, ms(now), ms(until), force], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(cursor.map(|c| ReconcileLease {
        cursor: c.map(switchyard_core::clock::from_millis),
    }))
}

pub(super) fn finish(
    conn: &Connection,
    run: &ReconcileRun,
    owner: &str,
    cursor: Option<Timestamp>,
    next_run_at: Timestamp,
) -> Result<(), StoreError> {
    let source: Uuid = run.source_id.into();
    conn.prepare_cached(
        "INSERT INTO reconcile_runs (id, source_id, started_at, run) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        run.run_id,
        source,
        ms(run.started_at),
        to_json(run)
    ])?;
    conn.prepare_cached(
        "UPDATE reconcile_state SET cursor_at = COALESCE(?3, cursor_at), next_run_at = ?4,
            leased_by = NULL, leased_until = NULL
         WHERE source_id = ?1 AND leased_by = ?2",
    )?
    .execute(params![source, owner, cursor.map(ms), ms(next_run_at)])?;
    conn.prepare_cached(
        "DELETE FROM reconcile_runs WHERE source_id = ?1 AND started_at <
            (SELECT started_at FROM reconcile_runs WHERE source_id = ?1
             ORDER BY started_at DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![source, RUNS_KEPT])?;
    Ok(())
}

pub(super) fn list(
    conn: &Connection,
    source: Option<Uuid>,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<ReconcileRun>, StoreError> {
    let texts: Vec<String> = conn
        .prepare_cached(
            "SELECT run FROM reconcile_runs
             WHERE (?1 IS NULL OR source_id = ?1) AND started_at >= ?2
             ORDER BY started_at DESC LIMIT ?3",
        )?
        .query_map(params![source, ms(since), limit.clamp(1, 10_000)], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    texts
        .iter()
        .map(|t| {
            serde_json::from_str(t)
                .map_err(|e| StoreError::Corrupt(format!("reconciliation run: {e}")))
        })
        .collect()
}
