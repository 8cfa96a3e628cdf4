//! Order facts (for seller performance notifications) and the deriver, which brings them and
//! the resource search up to date with the events of `derive_queue` (see `crate::derive`).

use jiff::Timestamp;
use uuid::Uuid;

use switchyard_core::clock::to_millis as ms;
use switchyard_core::performance::OrderFacts;

use super::{Conn, execute, json_text, query, query_one};
use crate::{OrderUpdate, StoreError, derive};

/// Applies order changes (each order created on first sight), all of them or, on the first
/// that does not apply, none (the caller's savepoint rolls back).
pub(super) async fn apply(
    conn: &Conn,
    partner_id: &str,
    changes: &[OrderUpdate],
    now: Timestamp,
) -> Result<(), StoreError> {
    for u in changes {
        let empty = OrderFacts::new(partner_id, &u.marketplace, &u.po_number);
        execute(
            conn,
            "INSERT INTO order_facts (partner_id, marketplace, po_number, facts, last_activity_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &partner_id,
                &u.marketplace,
                &u.po_number,
                &json_text(&empty),
                &ms(now),
            ],
        )
        .await?;
        let row = query_one(
            conn,
            "SELECT facts FROM order_facts
             WHERE partner_id = $1 AND marketplace = $2 AND po_number = $3 FOR UPDATE",
            &[&partner_id, &u.marketplace, &u.po_number],
        )
        .await?;
        let text: String = row.try_get(0)?;
        let mut facts: OrderFacts = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))?;
        u.change.apply(&mut facts)?;
        execute(
            conn,
            "UPDATE order_facts SET facts = $4, last_activity_at = $5
             WHERE partner_id = $1 AND marketplace = $2 AND po_number = $3",
            &[
                &partner_id,
                &u.marketplace,
                &u.po_number,
                &json_text(&facts),
                &ms(now),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn partner_orders(
    conn: &Conn,
    partner_id: &str,
    since: Timestamp,
) -> Result<Vec<OrderFacts>, StoreError> {
    let rows = query(
        conn,
        "SELECT facts FROM order_facts WHERE partner_id = $1 AND last_activity_at >= $2",
        &[&partner_id, &ms(since)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get(0)?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))
        })
        .collect()
}

/// Orders' facts, column by column.
#[derive(Default)]
struct OrderRows {
    partner: Vec<String>,
    marketplace: Vec<String>,
    po: Vec<String>,
    facts: Vec<String>,
    at: Vec<i64>,
}

/// Derives from up to `limit` events of `derive_queue` (taken with `SKIP LOCKED`, so the nodes
/// share the queue): their resource search entries and their order facts (each order locked,
/// read and written once). Their queue entries go in the same transaction. How many it took.
pub(super) async fn derive(conn: &Conn, limit: usize) -> Result<usize, StoreError> {
    let taken: Vec<Uuid> = query(
        conn,
        "DELETE FROM derive_queue WHERE event_id IN
            (SELECT event_id FROM derive_queue ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING event_id",
        &[&(limit as i64)],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    if taken.is_empty() {
        return Ok(0);
    }
    let rows = query(
        conn,
        "SELECT id, partner_id, received_at, resource_key, normalized, native_elided, payload,
            CASE WHEN payload IS NULL AND native_elided THEN raw_body END
         FROM events WHERE id = ANY($1) ORDER BY id",
        &[&taken],
    )
    .await?;
    let mut keys: (Vec<String>, Vec<Uuid>) = Default::default();
    let mut pending = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = r.try_get(0)?;
        if let Some(key) = r.try_get::<_, Option<String>>(3)? {
            keys.0.push(key);
            keys.1.push(id);
        }
        pending.push(derive::PendingEvent {
            label: id.to_string(),
            partner_id: r.try_get(1)?,
            received_at: r.try_get(2)?,
            normalized: r.try_get(4)?,
            native_elided: r.try_get(5)?,
            payload: r.try_get(6)?,
            raw_body: r.try_get(7)?,
        });
    }
    let orders = derive::orders_of(&pending)?;
    let resources = async {
        if keys.0.is_empty() {
            return Ok(0);
        }
        execute(
            conn,
            "INSERT INTO event_resources (resource_key, event_id)
             SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING",
            &[&keys.0, &keys.1],
        )
        .await
    };
    let facts = async {
        if orders.is_empty() {
            return Ok(());
        }
        // Orders seen before are locked and read, then written once. An order seen for the
        // first time is inserted with its facts already applied (an empty row inserted and then
        // updated was two row versions each, and most events are an order's first); one that
        // another node's deriver inserted meanwhile is read and updated like the others.
        let mut unwritten: Vec<&derive::OrderKey> = orders.keys().collect();
        // Twice at most: an order another node inserted between this read and this insert is
        // found by the second read.
        for _ in 0..2 {
            let stored = lock_and_update(conn, &orders, &unwritten).await?;
            unwritten.retain(|k| !stored.contains(*k));
            if unwritten.is_empty() {
                return Ok(());
            }
            let mut cols = OrderRows::default();
            for &key in &unwritten {
                let (changes, at) = &orders[key];
                let mut facts = OrderFacts::new(&key.0, &key.1, &key.2);
                derive::apply_changes(&mut facts, changes);
                cols.push(key, json_text(&facts), *at);
            }
            let inserted = query(
                conn,
                "INSERT INTO order_facts (partner_id, marketplace, po_number, facts,
                    last_activity_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                    $5::bigint[])
                 ON CONFLICT DO NOTHING
                 RETURNING partner_id, marketplace, po_number",
                &[
                    &cols.partner,
                    &cols.marketplace,
                    &cols.po,
                    &cols.facts,
                    &cols.at,
                ],
            )
            .await?;
            let inserted: std::collections::HashSet<derive::OrderKey> = inserted
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, tokio_postgres::Error>>()?;
            unwritten.retain(|k| !inserted.contains(*k));
            if unwritten.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Database(
            "order facts: an order neither found nor inserted".into(),
        ))
    };
    tokio::try_join!(resources, facts)?;
    Ok(taken.len())
}

/// Locks the stored ones of `keys` (in key order, so derivers on two nodes never deadlock),
/// applies their changes and writes each once; answers which were stored.
async fn lock_and_update(
    conn: &Conn,
    orders: &std::collections::BTreeMap<derive::OrderKey, (Vec<OrderUpdate>, i64)>,
    keys: &[&derive::OrderKey],
) -> Result<std::collections::HashSet<derive::OrderKey>, StoreError> {
    let partner: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let marketplace: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let po: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
    let stored = query(
        conn,
        "SELECT o.partner_id, o.marketplace, o.po_number, o.facts
         FROM unnest($1::text[], $2::text[], $3::text[]) AS u(p, m, po)
         JOIN order_facts o ON o.partner_id = u.p AND o.marketplace = u.m AND o.po_number = u.po
         ORDER BY o.partner_id, o.marketplace, o.po_number FOR UPDATE OF o",
        &[&partner, &marketplace, &po],
    )
    .await?;
    let mut known = std::collections::HashSet::new();
    let mut updated = OrderRows::default();
    for r in &stored {
        let key: derive::OrderKey = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let text: String = r.try_get(3)?;
        let mut facts: OrderFacts = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))?;
        if let Some((changes, at)) = orders.get(&key) {
            derive::apply_changes(&mut facts, changes);
            updated.push(&key, json_text(&facts), *at);
        }
        known.insert(key);
    }
    if !updated.partner.is_empty() {
        execute(
            conn,
            "UPDATE order_facts o SET facts = u.f, last_activity_at = u.at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                  AS u(p, m, po, f, at)
             WHERE o.partner_id = u.p AND o.marketplace = u.m AND o.po_number = u.po",
            &[
                &updated.partner,
                &updated.marketplace,
                &updated.po,
                &updated.facts,
                &updated.at,
            ],
        )
        .await?;
    }
    Ok(known)
}

impl OrderRows {
    fn push(&mut self, key: &derive::OrderKey, facts: String, at: i64) {
        self.partner.push(key.0.clone());
        self.marketplace.push(key.1.clone());
        self.po.push(key.2.clone());
        self.facts.push(facts);
        self.at.push(at);
    }
}
