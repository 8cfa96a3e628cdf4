//! Sources (inbound endpoints) and the requests they refused.

use jiff::Timestamp;
use uuid::Uuid;

use switchyard_core::clock::to_millis as ms;
use switchyard_core::model::{RejectionFilter, RejectionRecord, SourceRecord};

use super::rows::{self, REJECTION_COLUMNS, SOURCE_COLUMNS};
use super::{Conn, Sql, execute, json_text, query, query_opt};
use crate::{RejectionCount, StoreError};
use switchyard_core::model::PartnerId;

pub(super) async fn create(conn: &Conn, s: &SourceRecord) -> Result<(), StoreError> {
    let inserted = execute(
        conn,
        "INSERT INTO sources (id, kind, name, partners, secrets_sealed, replay_window_secs,
            options, client_id, created_at, updated_at, reconcile)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
        &[
            &s.id,
            &s.kind,
            &s.name,
            &json_text(&s.partners),
            &s.secrets_sealed,
            &s.replay_window_secs,
            &json_text(&s.options),
            &s.client_id,
            &ms(s.created_at),
            &ms(s.updated_at),
            &s.reconcile.as_ref().map(json_text),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("source {}", s.id)));
    }
    Ok(())
}

pub(super) async fn get(conn: &Conn, id: Uuid) -> Result<Option<SourceRecord>, StoreError> {
    let row = query_opt(
        conn,
        &format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1"),
        &[&id],
    )
    .await?;
    row.map(|r| rows::source(&r)).transpose()
}

/// Sources whose partners are all among `partners` (`None`: every source).
pub(super) async fn list(
    conn: &Conn,
    partners: Option<Vec<PartnerId>>,
) -> Result<Vec<SourceRecord>, StoreError> {
    let mut sql = Sql::new(format!("SELECT {SOURCE_COLUMNS} FROM sources s WHERE TRUE"));
    if let Some(partners) = partners {
        sql.and(
            " AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(s.partners::jsonb) p
                              WHERE p <> ALL({}))",
            partners,
        );
    }
    sql.text.push_str(" ORDER BY s.id");
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(rows::source).collect()
}

pub(super) async fn update(conn: &Conn, s: &SourceRecord) -> Result<bool, StoreError> {
    let updated = execute(
        conn,
        "UPDATE sources SET name = $2, partners = $3, secrets_sealed = $4,
            replay_window_secs = $5, options = $6, updated_at = $7, reconcile = $8
         WHERE id = $1",
        &[
            &s.id,
            &s.name,
            &json_text(&s.partners),
            &s.secrets_sealed,
            &s.replay_window_secs,
            &json_text(&s.options),
            &ms(s.updated_at),
            &s.reconcile.as_ref().map(json_text),
        ],
    )
    .await?;
    Ok(updated == 1)
}

pub(super) async fn delete(conn: &Conn, id: Uuid) -> Result<bool, StoreError> {
    execute(
        conn,
        "DELETE FROM reconcile_state WHERE source_id = $1",
        &[&id],
    )
    .await?;
    Ok(execute(conn, "DELETE FROM sources WHERE id = $1", &[&id]).await? == 1)
}

pub(super) async fn insert_rejection(conn: &Conn, r: &RejectionRecord) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO rejections (id, source_id, partners, reason, status_code, message,
            remote_addr, body_sha256, body_size, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &r.id,
            &r.source_id,
            &json_text(&r.partners),
            &r.reason,
            &i32::from(r.status_code),
            &r.message,
            &r.remote_addr,
            &r.body_sha256,
            &(r.body_size as i64),
            &ms(r.received_at),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_rejections(
    conn: &Conn,
    f: &RejectionFilter,
) -> Result<Vec<RejectionRecord>, StoreError> {
    let mut sql = Sql::new(format!(
        "SELECT {REJECTION_COLUMNS} FROM rejections r WHERE TRUE"
    ));
    if let Some(partners) = &f.partners {
        sql.and(
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p
                          WHERE p = ANY({}))",
            partners.clone(),
        );
    }
    if let Some(source) = &f.source_id {
        sql.and(" AND r.source_id = {}", source.clone());
    }
    if let Some(reason) = &f.reason {
        sql.and(" AND r.reason = {}", reason.clone());
    }
    if let Some(since) = f.since {
        sql.and(" AND r.received_at >= {}", ms(since));
    }
    if let Some(before) = f.before {
        sql.and(" AND r.id < {}", before);
    }
    sql.text.push_str(&format!(
        " ORDER BY r.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    ));
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(rows::rejection).collect()
}

pub(super) async fn rejection_summary(
    conn: &Conn,
    partners: Option<Vec<PartnerId>>,
    since: Timestamp,
) -> Result<Vec<RejectionCount>, StoreError> {
    let mut sql = Sql::new("SELECT r.source_id, r.reason, COUNT(*) FROM rejections r WHERE TRUE");
    sql.and(" AND r.received_at >= {}", ms(since));
    if let Some(partners) = partners {
        sql.and(
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p
                          WHERE p = ANY({}))",
            partners,
        );
    }
    sql.text
        .push_str(" GROUP BY r.source_id, r.reason ORDER BY COUNT(*) DESC, r.source_id, r.reason");
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter()
        .map(|r| {
            Ok(RejectionCount {
                source_id: r.try_get(0)?,
                reason: r.try_get(1)?,
                count: r.try_get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .collect()
}
