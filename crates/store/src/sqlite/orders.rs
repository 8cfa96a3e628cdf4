//! Order facts (for seller performance notifications) and the deriver, which brings them and
//! the resource search up to date with the event log after the ack (see `crate::derive`).

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use switchyard_core::performance::OrderFacts;

use super::rows::{ms, to_json};
use crate::{OrderUpdate, StoreError, derive};

fn read_facts(
    conn: &Connection,
    partner_id: &str,
    marketplace: &str,
    po_number: &str,
) -> Result<OrderFacts, StoreError> {
    let stored: Option<String> = conn
        .prepare_cached(
            "SELECT facts FROM order_facts
             WHERE partner_id = ?1 AND marketplace = ?2 AND po_number = ?3",
        )?
        .query_row(params![partner_id, marketplace, po_number], |r| r.get(0))
        .optional()?;
    match stored {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("order facts: {e}"))),
        None => Ok(OrderFacts::new(partner_id, marketplace, po_number)),
    }
}

fn write_facts(
    conn: &Connection,
    partner_id: &str,
    marketplace: &str,
    po_number: &str,
    facts: &OrderFacts,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO order_facts (partner_id, marketplace, po_number, facts, last_activity_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (partner_id, marketplace, po_number)
         DO UPDATE SET facts = excluded.facts, last_activity_at = excluded.last_activity_at",
    )?
    .execute(params![
        partner_id,
        marketplace,
        po_number,
        to_json(facts),
        at
    ])?;
    Ok(())
}

/// Applies order changes (each order created on first sight), all of them or, on the first
/// that does not apply, none (the caller's savepoint rolls back).
pub(super) fn apply(
    conn: &Connection,
    partner_id: &str,
    changes: &[OrderUpdate],
    now: Timestamp,
) -> Result<(), StoreError> {
    for u in changes {
        let mut facts = read_facts(conn, partner_id, &u.marketplace, &u.po_number)?;
        u.change.apply(&mut facts)?;
        write_facts(
            conn,
            partner_id,
            &u.marketplace,
            &u.po_number,
            &facts,
            ms(now),
        )?;
    }
    Ok(())
}

pub(super) fn partner_orders(
    conn: &Connection,
    partner_id: &str,
    since: Timestamp,
) -> Result<Vec<OrderFacts>, StoreError> {
    let texts = conn
        .prepare_cached(
            "SELECT facts FROM order_facts WHERE partner_id = ?1 AND last_activity_at >= ?2",
        )?
        .query_map(params![partner_id, ms(since)], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    texts
        .iter()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))
        })
        .collect()
}

/// Derives from up to `limit` events stored after the cursor: their resource search entries
/// and their order facts (each order read and written once, its changes applied in the log's
/// order; a change that does not apply is left out, never the others). Moves the cursor in the
/// same transaction. Returns how many events it took.
pub(super) fn derive(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let cursor: i64 = conn
        .prepare_cached("SELECT last_seq FROM derive_state WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let rows: Vec<(i64, Option<String>, derive::PendingEvent)> = conn
        .prepare_cached(
            "SELECT seq, partner_id, received_at, resource_key, normalized, native_elided,
                payload, CASE WHEN payload IS NULL AND native_elided THEN raw_body END
             FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2 + 0",
        )?
        .query_map(params![cursor, limit as i64], |r| {
            let seq: i64 = r.get(0)?;
            Ok((
                seq,
                r.get(3)?,
                derive::PendingEvent {
                    label: format!("#{seq}"),
                    partner_id: r.get(1)?,
                    received_at: r.get(2)?,
                    normalized: r.get(4)?,
                    native_elided: r.get(5)?,
                    payload: r.get(6)?,
                    raw_body: r.get(7)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    let mut resources = conn.prepare_cached(
        "INSERT OR IGNORE INTO event_resources (resource_key, seq) VALUES (?1, ?2)",
    )?;
    for (seq, key, _) in &rows {
        if let Some(key) = key {
            resources.execute(params![key, seq])?;
        }
    }
    drop(resources);
    let taken = rows.len();
    let pending: Vec<derive::PendingEvent> = rows.into_iter().map(|r| r.2).collect();
    for ((partner, marketplace, po), (changes, at)) in derive::orders_of(&pending)? {
        let mut facts = read_facts(conn, &partner, &marketplace, &po)?;
        derive::apply_changes(&mut facts, &changes);
        write_facts(conn, &partner, &marketplace, &po, &facts, at)?;
    }
    conn.prepare_cached("UPDATE derive_state SET last_seq = ?1 WHERE id = 1")?
        .execute([last])?;
    Ok(taken)
}
