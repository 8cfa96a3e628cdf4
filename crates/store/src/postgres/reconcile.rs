//! Reconciliation's state: each source's cursor, next run and lease, and the runs' reports.

use jiff::Timestamp;
use uuid::Uuid;

use switchyard_core::clock::to_millis as ms;
use switchyard_core::model::ReconcileRun;

use super::{Conn, execute, json_text, query, query_opt};
use crate::{ReconcileLease, StoreError};

pub(super) async fn lease(
    conn: &Conn,
    source: Uuid,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
    force: bool,
) -> Result<Option<ReconcileLease>, StoreError> {
    execute(
        conn,
        "INSERT INTO reconcile_state (source_id, cursor_at, next_run_at) VALUES ($1, NULL, 0)
         ON CONFLICT (source_id) DO NOTHING",
        &[&source],
    )
    .await?;
    let row = query_opt(
        conn,
        "UPDATE reconcile_state SET leased_by = $2, leased_until = $4
         WHERE source_id = $1
           AND (leased_until IS NULL OR leased_until < $3 OR leased_by = $2)
           AND ($5 OR next_run_at <= $3)
         RETURNING cursor_at",
        &[&source, &owner, &ms(now), &ms(until), &force],
    )
    .await?;
    Ok(match row {
        Some(r) => Some(ReconcileLease {
            cursor: r
                .try_get::<_, Option<i64>>(0)?
                .map(switchyard_core::clock::from_millis),
        }),
        None => None,
    })
}

pub(super) async fn finish(
    conn: &Conn,
    run: &ReconcileRun,
    owner: &str,
    cursor: Option<Timestamp>,
    next_run_at: Timestamp,
) -> Result<(), StoreError> {
    let source: Uuid = run.source_id.into();
    execute(
        conn,
        "INSERT INTO reconcile_runs (id, source_id, started_at, run) VALUES ($1, $2, $3, $4)",
        &[&run.run_id, &source, &ms(run.started_at), &json_text(run)],
    )
    .await?;
    execute(
        conn,
        "UPDATE reconcile_state SET cursor_at = COALESCE($3, cursor_at), next_run_at = $4,
            leased_by = NULL, leased_until = NULL
         WHERE source_id = $1 AND leased_by = $2",
        &[&source, &owner, &cursor.map(ms), &ms(next_run_at)],
    )
    .await?;
    execute(
        conn,
        "DELETE FROM reconcile_runs WHERE source_id = $1 AND started_at <
            (SELECT started_at FROM reconcile_runs WHERE source_id = $1
             ORDER BY started_at DESC LIMIT 1 OFFSET $2)",
        &[&source, &crate::RECONCILE_RUNS_KEPT],
    )
    .await?;
    Ok(())
}

pub(super) async fn list(
    conn: &Conn,
    source: Option<Uuid>,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<ReconcileRun>, StoreError> {
    let rows = query(
        conn,
        "SELECT run FROM reconcile_runs
         WHERE ($1::uuid IS NULL OR source_id = $1) AND started_at >= $2
         ORDER BY started_at DESC LIMIT $3",
        &[&source, &ms(since), &i64::from(limit.clamp(1, 10_000))],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get(0)?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("reconciliation run: {e}")))
        })
        .collect()
}
