//! Events: the ack path (dedup, the event, its deliveries), and reading events back.
//!
//! What storing an event writes, and nothing more: the event row (its body once) with its id,
//! dedup, partner, topic and time index entries; one delivery row per subscription with its
//! own four; a duplicate sighting when it is one; and the resource registry for the
//! marketplaces whose first news of an order is a status change (the server passes a sighting
//! only for those). Order facts and the resource search are derived after the ack
//! (`orders::derive`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tokio::sync::oneshot;
use uuid::Uuid;

use switchyard_core::model::{EventFilter, EventRecord, ResourceSighting};

use super::rows::{self, EVENT_COLUMNS};
use super::{Shared, placeholders};
use crate::stored::StoredEvent;
use crate::{InsertOutcome, StoreError, rules};

/// Storing one event, as the writer runs it.
pub(super) struct EventOp {
    pub event: StoredEvent,
    pub sighting: Option<ResourceSighting>,
    pub reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

/// A subscription an event fans out to.
#[derive(Debug, Clone)]
struct Target {
    subscription: Uuid,
    /// Ordered by resource: its deliveries carry the event's resource key.
    ordered: bool,
    /// Its content filter, if it has one.
    filter: Option<crate::rules::TargetFilter>,
    /// It names the event's topic (not only its native type).
    by_topic: bool,
    /// Latest state only: a state event's delivery supersedes older pending ones.
    coalesce: bool,
    /// `poll:`: its deliveries wait to be read, never claimed.
    poll: bool,
}

/// What fan-out is matched on: partner, event type, topic, version.
type FanoutKey = (String, String, String, String);

/// The ACTIVE subscriptions each kind of event fans out to. Only the writer thread reads and
/// fills it; every write that can change which subscriptions match (create, update, delete,
/// disable) clears it, and it is never older than [`FANOUT_TTL`] (a tool writing to the file
/// beside the serving process).
#[derive(Debug, Default)]
pub(super) struct FanoutCache {
    filled_at: Option<Instant>,
    targets: HashMap<FanoutKey, Vec<Target>>,
}

const FANOUT_TTL: Duration = Duration::from_secs(5);

impl FanoutCache {
    pub fn clear(&mut self) {
        self.targets.clear();
        self.filled_at = None;
    }
}

fn fanout(
    conn: &Connection,
    shared: &Shared,
    e: &StoredEvent,
    topic: &str,
) -> Result<Vec<Target>, StoreError> {
    let key = (
        e.partner_id.clone(),
        e.event_type.clone(),
        topic.to_string(),
        e.event_version.clone(),
    );
    let mut cache = shared.fanout.lock().unwrap_or_else(|p| p.into_inner());
    if cache.filled_at.is_some_and(|at| at.elapsed() > FANOUT_TTL) {
        cache.clear();
    }
    if let Some(targets) = cache.targets.get(&key) {
        return Ok(targets.clone());
    }
    let targets: Vec<Target> = conn
        .prepare_cached(
            "SELECT s.id, s.ordering = 'resource', s.filter, s.envelope,
                    MAX(t.event_type = ?3 AND ?3 <> ''), s.coalesce_state, s.event_url = 'poll:'
             FROM subscription_event_types t
             JOIN subscriptions s ON s.id = t.subscription_id
             WHERE t.partner_id = ?1 AND t.event_type IN (?2, ?3)
               AND s.status = 'ACTIVE' AND s.event_version = ?4
             GROUP BY s.id",
        )?
        .query_map(params![key.0, key.1, key.2, key.3], |r| {
            let filter: Option<String> = r.get(2)?;
            let envelope: String = r.get(3)?;
            Ok(Target {
                subscription: r.get(0)?,
                ordered: r.get(1)?,
                filter: crate::rules::TargetFilter::from_stored(filter.as_deref(), &envelope),
                by_topic: r.get(4)?,
                coalesce: r.get(5)?,
                poll: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    cache.filled_at.get_or_insert_with(Instant::now);
    cache.targets.insert(key, targets.clone());
    Ok(targets)
}

/// Stores an event unless its (origin, dedup key) was seen, with a pending delivery, due at
/// once, for every subscription it fans out to.
pub(super) fn insert(
    conn: &Connection,
    shared: &Shared,
    op: &EventOp,
) -> Result<InsertOutcome, StoreError> {
    let e = &op.event;
    if let Some(key) = &e.dedup_key {
        let existing: Option<Uuid> = conn
            .prepare_cached("SELECT id FROM events WHERE origin = ?1 AND dedup_key = ?2")?
            .query_row(params![e.origin, key], |r| r.get(0))
            .optional()?;
        if let Some(event_id) = existing {
            // Counted per source for the console; insert-only, so nothing contends.
            conn.prepare_cached(
                "INSERT INTO duplicates (origin, event_id, received_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.origin, event_id, e.received_at])?;
            return Ok(InsertOutcome::Duplicate {
                event_id: event_id.into(),
            });
        }
    }
    if let Some(existing) = claim(conn, op)? {
        return Ok(existing);
    }
    let mut topic = e.topic.clone();
    if let Some(s) = &op.sighting {
        let key = params![s.marketplace, s.partner_id, s.resource_kind, s.resource_id];
        let seen = conn
            .prepare_cached(
                "SELECT 1 FROM resource_registry WHERE marketplace = ?1 AND partner_id = ?2
                 AND resource_kind = ?3 AND resource_id = ?4",
            )?
            .exists(key)?;
        topic = rules::topic_of(topic, Some(s), seen);
        conn.prepare_cached(
            "INSERT INTO resource_registry (marketplace, partner_id, resource_kind,
                resource_id, status, first_seen_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT DO UPDATE SET status = COALESCE(excluded.status, status),
                last_seen_at = excluded.last_seen_at",
        )?
        .execute(params![
            s.marketplace,
            s.partner_id,
            s.resource_kind,
            s.resource_id,
            s.status,
            e.received_at,
        ])?;
    }
    conn.prepare_cached(
        "INSERT INTO events (id, origin, dedup_key, partner_id, event_type, event_version,
            topic, public_event_id, occurred_at, received_at, payload, raw_body, normalized,
            native_elided, marketplace, resource_key, headers, trace_parent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        e.id,
        e.origin,
        e.dedup_key,
        e.partner_id,
        e.event_type,
        e.event_version,
        topic,
        e.public_event_id,
        e.occurred_at,
        e.received_at,
        e.payload,
        e.raw_body,
        e.normalized,
        e.native_elided,
        e.marketplace,
        e.resource_key,
        e.headers,
        e.trace_parent,
    ])?;
    let mut targets = fanout(conn, shared, e, topic.as_deref().unwrap_or_default())?;
    // Content filters, matched against the envelope each subscriber would get: an event a
    // filter rejects makes no delivery to it.
    if targets.iter().any(|t| t.filter.is_some()) {
        let mut record = e.clone().into_record(false)?;
        record.topic = topic.clone();
        targets.retain(|t| {
            t.filter
                .as_ref()
                .is_none_or(|f| f.passes(&record, t.by_topic))
        });
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, subscription_id, status, attempts,
            next_attempt_at, created_at, updated_at, resource_key, supersedable)
         VALUES (?1, ?2, ?3, ?7, 0, CASE WHEN ?7 = 'pending' THEN ?4 END, ?4, ?4, ?5, ?6)",
    )?;
    // Asked only when some target coalesces: most fan-outs have none.
    let state = targets.iter().any(|t| t.coalesce)
        && e.resource_key.is_some()
        && switchyard_core::catalog::is_state(&e.event_type, topic.as_deref());
    for t in &targets {
        let id = Uuid::now_v7();
        let supersedable = t.coalesce && state && !t.poll;
        insert.execute(params![
            id,
            e.id,
            t.subscription,
            e.received_at,
            if t.ordered || supersedable {
                e.resource_key.as_deref()
            } else {
                None
            },
            supersedable.then_some(true),
            if t.poll { "polling" } else { "pending" },
        ])?;
        if let (true, Some(key)) = (supersedable, &e.resource_key) {
            supersede(conn, shared, t.subscription, key, id, e)?;
        }
    }
    Ok(InsertOutcome::Created {
        event_id: e.id.into(),
        deliveries: targets.len() as u32,
    })
}

/// Claims the order fact the event states, if it carries a claim (see
/// `switchyard_core::model::FactClaim`): `Some` when the event is not to be stored, with what
/// it is a duplicate of.
fn claim(conn: &Connection, op: &EventOp) -> Result<Option<InsertOutcome>, StoreError> {
    let Some(s) = &op.sighting else {
        return Ok(None);
    };
    let Some(claim) = &s.claim else {
        return Ok(None);
    };
    let e = &op.event;
    let key = params![s.marketplace, s.partner_id, s.resource_id, claim.fact];
    let existing: Option<(Uuid, bool)> = conn
        .prepare_cached(
            "SELECT event_id, by_reconciliation FROM order_claims
             WHERE marketplace = ?1 AND partner_id = ?2 AND order_id = ?3 AND fact = ?4",
        )?
        .query_row(key, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match existing {
        None => {
            conn.prepare_cached(
                "INSERT INTO order_claims (marketplace, partner_id, order_id, fact, event_id,
                    by_reconciliation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.marketplace,
                s.partner_id,
                s.resource_id,
                claim.fact,
                e.id,
                claim.by_reconciliation
            ])?;
            Ok(None)
        }
        // The hub knows the fact already: a reconciliation makes nothing of it.
        Some((event_id, _)) if claim.by_reconciliation => Ok(Some(InsertOutcome::Duplicate {
            event_id: event_id.into(),
        })),
        // A webhook for what a reconciliation announced: that event, once.
        Some((event_id, true)) => {
            conn.prepare_cached(
                "UPDATE order_claims SET by_reconciliation = 0
                 WHERE marketplace = ?1 AND partner_id = ?2 AND order_id = ?3 AND fact = ?4",
            )?
            .execute(key)?;
            conn.prepare_cached(
                "INSERT INTO duplicates (origin, event_id, received_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.origin, event_id, e.received_at])?;
            Ok(Some(InsertOutcome::Duplicate {
                event_id: event_id.into(),
            }))
        }
        Some((_, false)) => Ok(None),
    }
}

/// Latest state only: the new delivery `newer` supersedes the older pending deliveries of its
/// subscription and resource that are not in flight. Under the leases' lock, each one is
/// checked and marked, and held back from claims until the write commits (a claim reading
/// before the commit would still see it pending); a delivery already leased is left to its
/// attempt (superseding it would not stop it).
fn supersede(
    conn: &Connection,
    shared: &Shared,
    subscription: Uuid,
    resource_key: &str,
    newer: Uuid,
    e: &StoredEvent,
) -> Result<(), StoreError> {
    let mut leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    let older: Vec<Uuid> = conn
        .prepare_cached(
            "SELECT id FROM deliveries
             WHERE subscription_id = ?1 AND resource_key = ?2 AND status = 'pending'
               AND resource_key IS NOT NULL AND supersedable = 1 AND id < ?3",
        )?
        .query_map(params![subscription, resource_key, newer], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let note = format!(
        "superseded by event {}, newer, of the same resource",
        uuid::fmt::Hyphenated::from_uuid(e.id)
    );
    let mut mark = conn.prepare_cached(
        "UPDATE deliveries SET status = 'superseded', next_attempt_at = NULL, updated_at = ?2,
            last_error = ?3
         WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in older {
        if leases.alive(&id, e.received_at).is_none() {
            mark.execute(params![id, e.received_at, note])?;
            leases.superseding(id, e.received_at);
        }
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, id: Uuid) -> Result<Option<EventRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"
        ))?
        .query_row([id], rows::event)
        .optional()?)
}

/// Events matching the filter, newest (last stored) first. A resource search reads the derived
/// `event_resources`, and the events not derived yet directly.
pub(super) fn list(conn: &Connection, f: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let text = |s: &str| Value::Text(s.to_string());
    if let Some(partners) = &f.partners {
        sql += &format!(" AND e.partner_id IN ({})", placeholders(partners.len()));
        args.extend(partners.iter().map(|p| text(p)));
    }
    for (column, value) in [
        ("e.topic", &f.topic),
        ("e.marketplace", &f.marketplace),
        ("e.partner_id", &f.partner_id.as_ref().map(|p| p.0.clone())),
    ] {
        if let Some(v) = value {
            sql += &format!(" AND {column} = ?");
            args.push(text(v));
        }
    }
    if let Some(keys) = &f.resource_keys {
        let marks = placeholders(keys.len());
        sql += &format!(
            // One set of seqs (a union, not an OR, which made the planner walk the whole log
            // in order): the derived entries, and the log's tail not derived yet.
            " AND e.seq IN (SELECT r.seq FROM event_resources r WHERE r.resource_key IN ({marks})
                UNION ALL SELECT x.seq FROM events x
                WHERE x.seq > (SELECT last_seq FROM derive_state) AND x.resource_key IN ({marks}))"
        );
        args.extend(keys.iter().map(|k| text(k)));
        args.extend(keys.iter().map(|k| text(k)));
    }
    if let Some(since) = f.since {
        sql += " AND e.received_at >= ?";
        args.push(Value::Integer(rows::ms(since)));
    }
    if let Some(until) = f.until {
        sql += " AND e.received_at < ?";
        args.push(Value::Integer(rows::ms(until)));
    }
    if let Some(before) = f.before {
        // Keyset paging in log order (`seq`), which every index of events ends with; a cursor
        // whose event was purged meanwhile pages from the first event stored after it.
        sql += " AND e.seq < COALESCE((SELECT b.seq FROM events b WHERE b.id = ?),
                    (SELECT MIN(c.seq) FROM events c WHERE c.id > ?), 0)";
        args.push(Value::Blob(before.0.as_bytes().to_vec()));
        args.push(Value::Blob(before.0.as_bytes().to_vec()));
    }
    sql += &format!(" ORDER BY e.seq DESC LIMIT {}", f.limit.clamp(1, 1000));
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::event)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}
