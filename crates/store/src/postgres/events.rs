//! Events: the ack path, set-wise (a batch's events in one statement per table), and reading
//! events back.
//!
//! A batch of events costs two round trips however many it holds, and one more only when some
//! event has a first sighting to look up (Amazon, TikTok Shop) or an order fact to claim (a
//! reconciling source): the events themselves, deduplicated by the unique index (`ON CONFLICT
//! DO NOTHING`, so concurrent writers and nodes storing the same event get one event and one
//! duplicate), sent with the fan-out lookup (and BEGIN); then their deliveries, registry
//! entries, derive-queue entries and duplicate sightings, sent together with the COMMIT
//! behind them (see `tail`).

use std::collections::{HashMap, HashSet};

use tokio::sync::oneshot;
use uuid::Uuid;

use switchyard_core::clock::to_millis as ms;
use switchyard_core::model::{EventFilter, EventRecord, ResourceSighting};

use super::rows::{self, EVENT_COLUMNS};
use super::tail::Share;
use super::{Conn, Sql, query};
use crate::stored::StoredEvent;
use crate::{InsertOutcome, StoreError, rules};
use tokio_postgres::types::ToSql;

/// Storing one event, as the writers run it.
pub(super) struct EventOp {
    pub event: StoredEvent,
    pub sighting: Option<ResourceSighting>,
    pub reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

type RegistryKey = (String, String, String, String);

fn registry_key(s: &ResourceSighting) -> RegistryKey {
    (
        s.marketplace.clone(),
        s.partner_id.0.clone(),
        s.resource_kind.clone(),
        s.resource_id.clone(),
    )
}

/// Stores a batch of events (see the module's comment); the outcomes are in the ops' order.
pub(super) async fn insert_batch(
    conn: &Conn,
    ops: &[&EventOp],
    tail: Option<&Share<'_>>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let n = ops.len();
    // A later event of the batch with the same (origin, dedup key) is a duplicate of the first.
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut duplicate_of: Vec<Option<usize>> = vec![None; n];
    for (i, op) in ops.iter().enumerate() {
        if let Some(key) = &op.event.dedup_key {
            match first_of.entry((op.event.origin.as_str(), key.as_str())) {
                std::collections::hash_map::Entry::Occupied(e) => duplicate_of[i] = Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
    }
    let mut fresh: Vec<usize> = (0..n).filter(|i| duplicate_of[*i].is_none()).collect();
    // Order facts claimed: an event whose fact the hub knows is not stored.
    let claimed = claim_facts(conn, ops, &fresh).await?;
    fresh.retain(|i| !claimed.contains_key(i));

    // First sightings decide topics, before anything is written.
    let mut topics: Vec<Option<String>> = ops.iter().map(|o| o.event.topic.clone()).collect();
    let sighted: Vec<(usize, &ResourceSighting)> = fresh
        .iter()
        .filter_map(|&i| ops[i].sighting.as_ref().map(|s| (i, s)))
        .collect();
    if !sighted.is_empty() {
        let column = |f: fn(&ResourceSighting) -> &String| -> Vec<&str> {
            sighted.iter().map(|(_, s)| f(s).as_str()).collect()
        };
        let found = query(
            conn,
            "SELECT r.marketplace, r.partner_id, r.resource_kind, r.resource_id
             FROM resource_registry r
             WHERE (r.marketplace, r.partner_id, r.resource_kind, r.resource_id) IN
                   (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))",
            &[
                &column(|s| &s.marketplace),
                &column(|s| &s.partner_id.0),
                &column(|s| &s.resource_kind),
                &column(|s| &s.resource_id),
            ],
        )
        .await?;
        let mut seen: HashSet<RegistryKey> = found
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<_, tokio_postgres::Error>>()?;
        for (i, s) in &sighted {
            let seen_before = !seen.insert(registry_key(s));
            topics[*i] = rules::topic_of(topics[*i].take(), Some(s), seen_before);
        }
    }

    // The events, and (independent of which are new) the subscriptions they would fan out to.
    let fresh_ops: Vec<&StoredEvent> = fresh.iter().map(|&i| &ops[i].event).collect();
    let fresh_topics: Vec<Option<&str>> = fresh.iter().map(|&i| topics[i].as_deref()).collect();
    let insert = insert_events(conn, &fresh_ops, &fresh_topics);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (e, topic) in fresh_ops.iter().zip(&fresh_topics) {
        pairs.push((&e.partner_id, &e.event_type));
        if let Some(t) = topic {
            pairs.push((&e.partner_id, t));
        }
    }
    pairs.sort();
    pairs.dedup();
    let lookup = fanout(conn, &pairs);
    let (created, targets) = tokio::try_join!(insert, lookup)?;

    // Outcomes, and what to write for them.
    let mut outcomes: Vec<Option<InsertOutcome>> = vec![None; n];
    let mut deliveries = DeliveryRows::default();
    let mut registry: HashMap<RegistryKey, (Option<String>, i64)> = HashMap::new();
    let mut derive: Vec<Uuid> = Vec::new();
    let mut existing_needed: Vec<usize> = Vec::new();
    for (&i, topic) in fresh.iter().zip(&fresh_topics) {
        let e = &ops[i].event;
        if !created.contains(&e.id) {
            existing_needed.push(i);
            continue;
        }
        let mut count = 0;
        let mut chosen: HashSet<Uuid> = HashSet::new();
        let matching: Vec<&Target> = targets
            .iter()
            .filter(|t| {
                t.partner_id == e.partner_id
                    && t.event_version == e.event_version
                    && (t.event_type == e.event_type || Some(t.event_type.as_str()) == *topic)
            })
            .collect();
        // Content filters, matched against the envelope each subscriber would get.
        let mut record = None;
        // Asked only when some target coalesces: most fan-outs have none.
        let state = matching.iter().any(|t| t.coalesce)
            && switchyard_core::catalog::is_state(&e.event_type, *topic);
        for t in &matching {
            if !chosen.insert(t.subscription) {
                continue;
            }
            if let Some(filter) = &t.filter {
                let by_topic = matching.iter().any(|m| {
                    m.subscription == t.subscription && Some(m.event_type.as_str()) == *topic
                });
                if record.is_none() {
                    let mut r = e.clone().into_record(false)?;
                    r.topic = topic.map(str::to_string);
                    record = Some(r);
                }
                if record.as_ref().is_some_and(|r| !filter.passes(r, by_topic)) {
                    continue;
                }
            }
            deliveries.push(e, t, state);
            count += 1;
        }
        outcomes[i] = Some(InsertOutcome::Created {
            event_id: e.id.into(),
            deliveries: count,
        });
        // Only what has something to derive goes to the queue (published events do not).
        if e.resource_key.is_some() || e.normalized.is_some() {
            derive.push(e.id);
        }
        if let Some(s) = &ops[i].sighting {
            let entry = registry
                .entry(registry_key(s))
                .or_insert((None, e.received_at));
            if s.status.is_some() {
                entry.0 = s.status.clone();
            }
            entry.1 = entry.1.max(e.received_at);
        }
    }
    // Duplicates of events stored before (or by another writer meanwhile): their ids.
    let mut existing: HashMap<(String, String), Uuid> = HashMap::new();
    if !existing_needed.is_empty() {
        let origins: Vec<&str> = existing_needed
            .iter()
            .map(|&i| ops[i].event.origin.as_str())
            .collect();
        let keys: Vec<&str> = existing_needed
            .iter()
            .map(|&i| ops[i].event.dedup_key.as_deref().unwrap_or_default())
            .collect();
        for r in query(
            conn,
            "SELECT e.origin, e.dedup_key, e.id FROM events e
             WHERE (e.origin, e.dedup_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            &[&origins, &keys],
        )
        .await?
        {
            existing.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
        }
    }
    let mut duplicates: (Vec<&str>, Vec<Uuid>, Vec<i64>) = Default::default();
    for i in 0..n {
        if outcomes[i].is_some() {
            continue;
        }
        let first = duplicate_of[i].unwrap_or(i);
        let e = &ops[i].event;
        if let Some(&(event_id, by_reconciliation)) = claimed.get(&i) {
            // A reconciliation's fact already known is no received duplicate.
            if !by_reconciliation {
                duplicates.0.push(&e.origin);
                duplicates.1.push(event_id);
                duplicates.2.push(e.received_at);
            }
            outcomes[i] = Some(InsertOutcome::Duplicate {
                event_id: event_id.into(),
            });
            continue;
        }
        let event_id = match &outcomes[first] {
            Some(InsertOutcome::Created { event_id, .. }) => Some(event_id.0),
            _ => existing
                .get(&(
                    ops[first].event.origin.clone(),
                    ops[first].event.dedup_key.clone().unwrap_or_default(),
                ))
                .copied(),
        };
        let Some(event_id) = event_id else {
            return Err(StoreError::Database(format!(
                "event {} was neither stored nor found as a duplicate",
                e.id
            )));
        };
        duplicates.0.push(&e.origin);
        duplicates.1.push(event_id);
        duplicates.2.push(e.received_at);
        outcomes[i] = Some(InsertOutcome::Duplicate {
            event_id: event_id.into(),
        });
    }

    if !deliveries.ids.is_empty() {
        tail.into_iter().for_each(Share::made_due);
    }
    // The last stage: every statement is prepared before any is sent, so each goes out when
    // its future is first polled, in this order (`biased`), and the tail opens behind them.
    let prepare = |needed: bool, sql: &'static str| async move {
        if needed {
            conn.prepare_cached(sql).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let supersedes = deliveries.supersedable.iter().any(Option::is_some);
    let (insert_deliveries, supersede_older, upsert_registry, queue_derive, count_duplicates) = tokio::try_join!(
        prepare(!deliveries.ids.is_empty(), INSERT_DELIVERIES),
        prepare(supersedes, SUPERSEDE),
        prepare(!registry.is_empty(), UPSERT_REGISTRY),
        prepare(!derive.is_empty(), QUEUE_DERIVE),
        prepare(!duplicates.0.is_empty(), INSERT_DUPLICATES),
    )?;
    let superseding = supersedes.then(|| Superseding::of(&deliveries));
    let mut cols = RegistryRows::default();
    for ((m, p, k, r), (status, at)) in &registry {
        cols.marketplace.push(m);
        cols.partner.push(p);
        cols.kind.push(k);
        cols.id.push(r);
        cols.status.push(status.as_deref());
        cols.at.push(*at);
    }
    tokio::try_join!(
        biased;
        run(
            conn,
            insert_deliveries,
            vec![
                &deliveries.ids,
                &deliveries.events,
                &deliveries.subscriptions,
                &deliveries.at,
                &deliveries.resource_keys,
                &deliveries.supersedable,
                &deliveries.statuses,
            ],
        ),
        // After the insert on the same connection, so it sees the batch's deliveries too.
        run(
            conn,
            supersede_older,
            match &superseding {
                Some(s) => vec![&s.subscriptions, &s.keys, &s.newer, &s.events, &s.at],
                None => Vec::new(),
            },
        ),
        run(
            conn,
            upsert_registry,
            vec![
                &cols.marketplace,
                &cols.partner,
                &cols.kind,
                &cols.id,
                &cols.status,
                &cols.at,
            ],
        ),
        run(conn, queue_derive, vec![&derive]),
        // Counted per source for the console; insert-only, so nodes never contend.
        run(
            conn,
            count_duplicates,
            vec![&duplicates.0, &duplicates.1, &duplicates.2],
        ),
        async {
            tail.into_iter().for_each(Share::sent);
            Ok(0)
        },
    )?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// Runs a prepared statement (sent when first polled); nothing for none.
async fn run(
    conn: &Conn,
    statement: Option<tokio_postgres::Statement>,
    params: Vec<&(dyn ToSql + Sync)>,
) -> Result<u64, StoreError> {
    match statement {
        Some(s) => Ok(conn.execute(&s, &params).await?),
        None => Ok(0),
    }
}

const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (id, event_id, subscription_id, status,
        attempts, next_attempt_at, created_at, updated_at, resource_key, supersedable, xact)
     SELECT d.id, d.event_id, d.subscription_id, d.st, 0,
            CASE WHEN d.st = 'pending' THEN d.at END, d.at, d.at, d.rk, d.sup,
            CASE WHEN d.st = 'polling' THEN pg_current_xact_id()::text::bigint END
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::bool[],
                 $7::text[])
          AS d(id, event_id, subscription_id, at, rk, sup, st)";

/// Latest state only: each new supersedable delivery supersedes the older pending ones of its
/// subscription and resource that are not in flight (leased), in the batch or before it. A
/// delivery whose lease a claim holds is left to its attempt: superseding it would not stop it.
const SUPERSEDE: &str = "UPDATE deliveries d SET status = 'superseded', next_attempt_at = NULL,
        updated_at = u.at,
        last_error = 'superseded by event ' || u.event_id::text || ', newer, of the same resource'
     FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[])
          AS u(sub, rk, newer, event_id, at)
     WHERE d.subscription_id = u.sub AND d.resource_key = u.rk AND d.status = 'pending'
       AND d.resource_key IS NOT NULL AND d.supersedable AND d.id < u.newer
       AND (d.locked_until IS NULL OR d.locked_until <= u.at)";

const UPSERT_REGISTRY: &str = "INSERT INTO resource_registry (marketplace, partner_id,
        resource_kind, resource_id, status, first_seen_at, last_seen_at)
     SELECT u.m, u.p, u.k, u.r, u.st, u.at, u.at
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
          AS u(m, p, k, r, st, at)
     ON CONFLICT (marketplace, partner_id, resource_kind, resource_id) DO UPDATE
     SET status = COALESCE(excluded.status, resource_registry.status),
         last_seen_at = excluded.last_seen_at";

const QUEUE_DERIVE: &str = "INSERT INTO derive_queue (event_id) SELECT * FROM unnest($1::uuid[])";

const INSERT_DUPLICATES: &str = "INSERT INTO duplicates (origin, event_id, received_at)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[])";

/// The supersede statement's columns: the batch's supersedable deliveries.
struct Superseding<'a> {
    subscriptions: Vec<Uuid>,
    keys: Vec<&'a str>,
    newer: Vec<Uuid>,
    events: Vec<Uuid>,
    at: Vec<i64>,
}

impl<'a> Superseding<'a> {
    fn of(d: &DeliveryRows<'a>) -> Superseding<'a> {
        let newer: Vec<usize> = (0..d.ids.len())
            .filter(|&i| d.supersedable[i] == Some(true) && d.resource_keys[i].is_some())
            .collect();
        let pick = |column: &[Uuid]| -> Vec<Uuid> { newer.iter().map(|&i| column[i]).collect() };
        Superseding {
            subscriptions: pick(&d.subscriptions),
            keys: newer.iter().filter_map(|&i| d.resource_keys[i]).collect(),
            newer: pick(&d.ids),
            events: pick(&d.events),
            at: newer.iter().map(|&i| d.at[i]).collect(),
        }
    }
}

/// Claims as the columns `unnest` takes: marketplace, partner, order, fact, event.
type ClaimColumns<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<Uuid>,
);
type ClaimKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Claims the order facts the batch's new events carry (see
/// `switchyard_core::model::FactClaim`); answers, for each event not to be stored, the event
/// it is a duplicate of and whether its claim was a reconciliation's. One statement for the
/// webhooks' claims and, when there are any, two for the reconciliations'. `ON CONFLICT` waits
/// for a concurrent transaction claiming the same fact, so a webhook and a reconciliation on
/// two nodes still make one event.
async fn claim_facts(
    conn: &Conn,
    ops: &[&EventOp],
    fresh: &[usize],
) -> Result<HashMap<usize, (Uuid, bool)>, StoreError> {
    let mut answers: HashMap<usize, (Uuid, bool)> = HashMap::new();
    // The first of the batch to claim a fact claims it; a later reconciliation of it is a
    // duplicate of that event, a later webhook is an event of its own.
    let mut first: HashMap<ClaimKey, usize> = HashMap::new();
    let mut webhooks: Vec<usize> = Vec::new();
    let mut reconciled: Vec<usize> = Vec::new();
    for &i in fresh {
        let Some(s) = &ops[i].sighting else { continue };
        let Some(c) = &s.claim else { continue };
        let key = (
            s.marketplace.as_str(),
            s.partner_id.0.as_str(),
            s.resource_id.as_str(),
            c.fact.as_str(),
        );
        match first.get(&key) {
            Some(&j) if c.by_reconciliation => {
                answers.insert(i, (ops[j].event.id, true));
            }
            Some(_) => {}
            None => {
                first.insert(key, i);
                if c.by_reconciliation {
                    reconciled.push(i)
                } else {
                    webhooks.push(i)
                }
            }
        }
    }
    let key_of = |i: usize| -> ClaimKey {
        let s = ops[i].sighting.as_ref().expect("claims are of sightings");
        let fact = s
            .claim
            .as_ref()
            .map(|c| c.fact.as_str())
            .unwrap_or_default();
        (
            s.marketplace.as_str(),
            s.partner_id.0.as_str(),
            s.resource_id.as_str(),
            fact,
        )
    };
    let columns = |list: &[usize]| {
        let mut cols: ClaimColumns = Default::default();
        for &i in list {
            let (m, p, o, f) = key_of(i);
            cols.0.push(m);
            cols.1.push(p);
            cols.2.push(o);
            cols.3.push(f);
            cols.4.push(ops[i].event.id);
        }
        cols
    };
    if !webhooks.is_empty() {
        let c = columns(&webhooks);
        // Inserted: the fact is the webhook's. Updated (it was a reconciliation's): the webhook
        // is a duplicate of that event, and the fact is the webhook's from now on.
        let rows = query(
            conn,
            "INSERT INTO order_claims (marketplace, partner_id, order_id, fact, event_id,
                by_reconciliation)
             SELECT u.m, u.p, u.o, u.f, u.e, false
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[])
                  AS u(m, p, o, f, e)
             ON CONFLICT (marketplace, partner_id, order_id, fact) DO UPDATE
             SET by_reconciliation = false WHERE order_claims.by_reconciliation
             RETURNING marketplace, partner_id, order_id, fact, event_id, xmax::text <> '0'",
            &[&c.0, &c.1, &c.2, &c.3, &c.4],
        )
        .await?;
        let mut taken: HashMap<(String, String, String, String), Uuid> = HashMap::new();
        for r in rows {
            let updated: bool = r.try_get(5)?;
            if updated {
                taken.insert(
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
                    r.try_get(4)?,
                );
            }
        }
        for &i in &webhooks {
            let (m, p, o, f) = key_of(i);
            let key = (m.to_string(), p.to_string(), o.to_string(), f.to_string());
            if let Some(event_id) = taken.get(&key) {
                answers.insert(i, (*event_id, false));
            }
        }
    }
    if !reconciled.is_empty() {
        let c = columns(&reconciled);
        let inserted = query(
            conn,
            "INSERT INTO order_claims (marketplace, partner_id, order_id, fact, event_id,
                by_reconciliation)
             SELECT u.m, u.p, u.o, u.f, u.e, true
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[])
                  AS u(m, p, o, f, e)
             ON CONFLICT DO NOTHING
             RETURNING event_id",
            &[&c.0, &c.1, &c.2, &c.3, &c.4],
        )
        .await?;
        let inserted: HashSet<Uuid> = inserted
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let known: Vec<usize> = reconciled
            .iter()
            .copied()
            .filter(|&i| !inserted.contains(&ops[i].event.id))
            .collect();
        if !known.is_empty() {
            let k = columns(&known);
            let mut holders: HashMap<(String, String, String, String), Uuid> = HashMap::new();
            for r in query(
                conn,
                "SELECT c.marketplace, c.partner_id, c.order_id, c.fact, c.event_id
                 FROM order_claims c
                 WHERE (c.marketplace, c.partner_id, c.order_id, c.fact) IN
                       (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))",
                &[&k.0, &k.1, &k.2, &k.3],
            )
            .await?
            {
                holders.insert(
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
                    r.try_get(4)?,
                );
            }
            for &i in &known {
                let (m, p, o, f) = key_of(i);
                let key = (m.to_string(), p.to_string(), o.to_string(), f.to_string());
                let event_id = holders.get(&key).copied().unwrap_or(ops[i].event.id);
                answers.insert(i, (event_id, true));
            }
        }
    }
    Ok(answers)
}

/// Registry entries to upsert, column by column.
#[derive(Default)]
struct RegistryRows<'a> {
    marketplace: Vec<&'a str>,
    partner: Vec<&'a str>,
    kind: Vec<&'a str>,
    id: Vec<&'a str>,
    status: Vec<Option<&'a str>>,
    at: Vec<i64>,
}

/// Inserts the events; the ids of those that are new (the others' dedup keys were taken).
async fn insert_events(
    conn: &Conn,
    events: &[&StoredEvent],
    topics: &[Option<&str>],
) -> Result<HashSet<Uuid>, StoreError> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let text = |f: fn(&StoredEvent) -> &str| -> Vec<&str> { events.iter().map(|e| f(e)).collect() };
    let opt = |f: fn(&StoredEvent) -> Option<&str>| -> Vec<Option<&str>> {
        events.iter().map(|e| f(e)).collect()
    };
    let int = |f: fn(&StoredEvent) -> i64| -> Vec<i64> { events.iter().map(|e| f(e)).collect() };
    let raw: Vec<Option<&[u8]>> = events.iter().map(|e| e.raw_body.as_deref()).collect();
    let elided: Vec<bool> = events.iter().map(|e| e.native_elided).collect();
    let rows = query(
        conn,
        "INSERT INTO events (id, origin, dedup_key, partner_id, event_type, event_version, topic,
            public_event_id, occurred_at, received_at, payload, raw_body, normalized,
            native_elided, marketplace, resource_key, headers, trace_parent)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[],
            $12::bytea[], $13::text[], $14::bool[], $15::text[], $16::text[], $17::text[],
            $18::text[])
         ON CONFLICT (origin, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
         RETURNING id",
        &[
            &ids,
            &text(|e| &e.origin),
            &opt(|e| e.dedup_key.as_deref()),
            &text(|e| &e.partner_id),
            &text(|e| &e.event_type),
            &text(|e| &e.event_version),
            &topics,
            &opt(|e| e.public_event_id.as_deref()),
            &int(|e| e.occurred_at),
            &int(|e| e.received_at),
            &opt(|e| e.payload.as_deref()),
            &raw,
            &opt(|e| e.normalized.as_deref()),
            &elided,
            &opt(|e| e.marketplace.as_deref()),
            &opt(|e| e.resource_key.as_deref()),
            &opt(|e| e.headers.as_deref()),
            &opt(|e| e.trace_parent.as_deref()),
        ],
    )
    .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(StoreError::from))
        .collect()
}

/// An ACTIVE subscription matched by (partner, event type or topic).
struct Target {
    partner_id: String,
    event_type: String,
    event_version: String,
    subscription: Uuid,
    ordered: bool,
    /// Its content filter, if it has one.
    filter: Option<crate::rules::TargetFilter>,
    /// Latest state only: a state event's delivery supersedes older pending ones.
    coalesce: bool,
    /// `poll:`: its deliveries wait to be read, never claimed.
    poll: bool,
}

async fn fanout(conn: &Conn, pairs: &[(&str, &str)]) -> Result<Vec<Target>, StoreError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let partners: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let types: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    let rows = query(
        conn,
        "SELECT t.partner_id, t.event_type, s.event_version, s.id, s.ordering = 'resource',
                s.filter, s.envelope, s.coalesce_state, s.event_url = 'poll:'
         FROM subscription_event_types t JOIN subscriptions s ON s.id = t.subscription_id
         WHERE s.status = 'ACTIVE'
           AND (t.partner_id, t.event_type) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        &[&partners, &types],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Target {
                partner_id: r.try_get(0)?,
                event_type: r.try_get(1)?,
                event_version: r.try_get(2)?,
                subscription: r.try_get(3)?,
                ordered: r.try_get(4)?,
                filter: crate::rules::TargetFilter::from_stored(
                    r.try_get::<_, Option<&str>>(5)?,
                    r.try_get(6)?,
                ),
                coalesce: r.try_get(7)?,
                poll: r.try_get(8)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(StoreError::from)
}

/// The deliveries of a batch, column by column.
#[derive(Default)]
struct DeliveryRows<'a> {
    ids: Vec<Uuid>,
    events: Vec<Uuid>,
    subscriptions: Vec<Uuid>,
    at: Vec<i64>,
    resource_keys: Vec<Option<&'a str>>,
    /// `Some(true)`: a newer state event of its resource may supersede it.
    supersedable: Vec<Option<bool>>,
    /// `pending`, or `polling` for a polling subscription.
    statuses: Vec<&'static str>,
}

impl<'a> DeliveryRows<'a> {
    /// A delivery of `e` to `t`; `state`: `e` announces its resource's state.
    fn push(&mut self, e: &'a StoredEvent, t: &Target, state: bool) {
        let supersedable = t.coalesce && state && e.resource_key.is_some() && !t.poll;
        self.ids.push(Uuid::now_v7());
        self.events.push(e.id);
        self.subscriptions.push(t.subscription);
        self.at.push(e.received_at);
        self.resource_keys.push(if t.ordered || supersedable {
            e.resource_key.as_deref()
        } else {
            None
        });
        self.supersedable.push(supersedable.then_some(true));
        self.statuses
            .push(if t.poll { "polling" } else { "pending" });
    }
}

pub(super) async fn get(conn: &Conn, id: Uuid) -> Result<Option<EventRecord>, StoreError> {
    let rows = query(
        conn,
        &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1"),
        &[&id],
    )
    .await?;
    rows.first().map(|r| rows::event_at(r, 0, true)).transpose()
}

/// Events matching the filter, newest first. A resource search reads the derived
/// `event_resources`, and the events not derived yet directly.
pub(super) async fn list(conn: &Conn, f: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
    let mut sql = Sql::new(format!("SELECT {EVENT_COLUMNS} FROM events e WHERE TRUE"));
    if let Some(partners) = &f.partners {
        sql.and(" AND e.partner_id = ANY({})", partners.clone());
    }
    if let Some(t) = &f.topic {
        sql.and(" AND e.topic = {}", t.clone());
    }
    if let Some(m) = &f.marketplace {
        sql.and(" AND e.marketplace = {}", m.clone());
    }
    if let Some(p) = &f.partner_id {
        sql.and(" AND e.partner_id = {}", p.clone());
    }
    if let Some(keys) = &f.resource_keys {
        // Both `{}` are the same parameter.
        sql.and(
            // One set of ids (a union, not an OR, which lets the planner scan events in order):
            // the derived entries, and the queued events not derived yet.
            " AND e.id IN (SELECT r.event_id FROM event_resources r WHERE r.resource_key = ANY({})
                   UNION ALL SELECT q.event_id FROM derive_queue q JOIN events x ON x.id = q.event_id
                   WHERE x.resource_key = ANY({}))",
            keys.clone(),
        );
    }
    if let Some(since) = f.since {
        sql.and(" AND e.received_at >= {}", ms(since));
    }
    if let Some(until) = f.until {
        sql.and(" AND e.received_at < {}", ms(until));
    }
    if let Some(before) = f.before {
        sql.and(" AND e.id < {}", before);
    }
    sql.text.push_str(&format!(
        " ORDER BY e.id DESC LIMIT {}",
        f.limit.clamp(1, 1000)
    ));
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(|r| rows::event_at(r, 0, true)).collect()
}
