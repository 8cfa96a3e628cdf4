//! Sources (inbound endpoints) and the requests they refused.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use uuid::Uuid;

use switchyard_core::model::{RejectionFilter, RejectionRecord, SourceRecord};

use super::placeholders;
use super::rows::{self, REJECTION_COLUMNS, SOURCE_COLUMNS, ms, to_json};
use crate::{RejectionCount, StoreError};
use switchyard_core::model::PartnerId;

pub(super) fn create(conn: &Connection, s: &SourceRecord) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO sources (id, kind, name, partners, secrets_sealed, replay_window_secs,
            options, client_id, created_at, updated_at, reconcile)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING",
        params![
            s.id,
            s.kind,
            s.name,
            to_json(&s.partners),
            s.secrets_sealed,
            s.replay_window_secs,
            to_json(&s.options),
            s.client_id,
            ms(s.created_at),
            ms(s.updated_at),
            s.reconcile.as_ref().map(to_json),
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("source {}", s.id)));
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, id: Uuid) -> Result<Option<SourceRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = ?1"
        ))?
        .query_row([id], rows::source)
        .optional()?)
}

/// Sources whose partners are all among `partners` (`None`: every source).
pub(super) fn list(
    conn: &Connection,
    partners: Option<&[PartnerId]>,
) -> Result<Vec<SourceRecord>, StoreError> {
    let mut sql = format!("SELECT {SOURCE_COLUMNS} FROM sources s WHERE 1 = 1");
    let mut args: Vec<String> = Vec::new();
    if let Some(partners) = partners {
        // Every partner of the source must be one the caller manages.
        sql += &format!(
            " AND NOT EXISTS (SELECT 1 FROM json_each(s.partners) p
              WHERE p.value NOT IN ({}))",
            placeholders(partners.len())
        );
        args.extend(partners.iter().map(|p| p.0.clone()));
    }
    sql += " ORDER BY s.id";
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::source)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub(super) fn update(conn: &Connection, s: &SourceRecord) -> Result<bool, StoreError> {
    let updated = conn.execute(
        "UPDATE sources SET name = ?2, partners = ?3, secrets_sealed = ?4,
            replay_window_secs = ?5, options = ?6, updated_at = ?7, reconcile = ?8
         WHERE id = ?1",
        params![
            s.id,
            s.name,
            to_json(&s.partners),
            s.secrets_sealed,
            s.replay_window_secs,
            to_json(&s.options),
            ms(s.updated_at),
            s.reconcile.as_ref().map(to_json),
        ],
    )?;
    Ok(updated == 1)
}

pub(super) fn delete(conn: &Connection, id: Uuid) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM reconcile_state WHERE source_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM sources WHERE id = ?1", [id])? == 1)
}

pub(super) fn insert_rejection(conn: &Connection, r: &RejectionRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO rejections (id, source_id, partners, reason, status_code, message,
            remote_addr, body_sha256, body_size, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        r.id,
        r.source_id,
        to_json(&r.partners),
        r.reason,
        r.status_code,
        r.message,
        r.remote_addr,
        r.body_sha256,
        r.body_size as i64,
        ms(r.received_at),
    ])?;
    Ok(())
}

/// `AND` a rejection names one of `partners`; the arguments go to `args`.
fn partners_clause(partners: &[PartnerId], args: &mut Vec<rusqlite::types::Value>) -> String {
    args.extend(
        partners
            .iter()
            .map(|p| rusqlite::types::Value::Text(p.0.clone())),
    );
    format!(
        " AND EXISTS (SELECT 1 FROM json_each(r.partners) p WHERE p.value IN ({}))",
        placeholders(partners.len())
    )
}

pub(super) fn list_rejections(
    conn: &Connection,
    f: &RejectionFilter,
) -> Result<Vec<RejectionRecord>, StoreError> {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT {REJECTION_COLUMNS} FROM rejections r WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(partners) = &f.partners {
        sql += &partners_clause(partners, &mut args);
    }
    if let Some(source) = &f.source_id {
        sql += " AND r.source_id = ?";
        args.push(Value::Text(source.clone()));
    }
    if let Some(reason) = &f.reason {
        sql += " AND r.reason = ?";
        args.push(Value::Text(reason.clone()));
    }
    if let Some(since) = f.since {
        sql += " AND r.received_at >= ?";
        args.push(Value::Integer(ms(since)));
    }
    if let Some(before) = f.before {
        sql += " AND r.id < ?";
        args.push(Value::Blob(before.as_bytes().to_vec()));
    }
    sql += &format!(" ORDER BY r.id DESC LIMIT {}", f.limit.clamp(1, 1000));
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::rejection)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub(super) fn rejection_summary(
    conn: &Connection,
    partners: Option<&[PartnerId]>,
    since: Timestamp,
) -> Result<Vec<RejectionCount>, StoreError> {
    let mut sql =
        "SELECT r.source_id, r.reason, COUNT(*) FROM rejections r WHERE r.received_at >= ?"
            .to_string();
    let mut args = vec![rusqlite::types::Value::Integer(ms(since))];
    if let Some(partners) = partners {
        sql += &partners_clause(partners, &mut args);
    }
    sql += " GROUP BY r.source_id, r.reason ORDER BY COUNT(*) DESC, r.source_id, r.reason";
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(RejectionCount {
                source_id: r.get(0)?,
                reason: r.get(1)?,
                count: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}
