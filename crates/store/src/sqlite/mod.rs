//! The SQLite store: one file in WAL mode, one writer thread that commits concurrent writes
//! together (group commit), and a small pool of reader connections.
//!
//! Every write is a closure run by the writer thread inside the batch's transaction, each in its
//! own savepoint so that one failing write does not undo the others. Callers are answered only
//! after COMMIT returned, and with `synchronous = FULL` that means the write is on disk.
//!
//! A SQLite file serves one Switchyard process; several nodes share a PostgreSQL database.

mod rows;
mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client, DeliveryFilter, DeliveryRecord, DeliveryStatus,
    EventFilter, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord, RejectionFilter,
    RejectionRecord, ResourceSighting, SourceRecord, SubscriptionFilter, SubscriptionRecord,
};

use crate::{
    AttemptEffects, BucketCount, ClaimedDelivery, DeliveryNext, FailurePolicy, FailureReport,
    InsertOutcome, OrderUpdate, PurgeCounts, QueueDepth, RejectionCount, Reply, SourceStats, Store,
    StoreError, SubscriptionState, answer_after_commit, pacing,
};
use rows::{
    ATTEMPT_COLUMNS, CLAIMED_EVENT_COLUMNS, CLIENT_COLUMNS, DELIVERY_COLUMN_COUNT,
    DELIVERY_COLUMNS, EVENT_COLUMNS, OUTCOME_COLUMNS, REJECTION_COLUMNS, SOURCE_COLUMNS,
    SUBSCRIPTION_COLUMNS, ms, to_json,
};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Reader connections kept open.
const READERS: usize = 8;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::ToSqlConversionFailure(inner) = &e
            && let Some(store_error) = inner.downcast_ref::<StoreError>()
        {
            return store_error.clone();
        }
        StoreError::Database(e.to_string())
    }
}

/// A write: runs inside the batch transaction, says whether it succeeded, and hands back what
/// to tell its caller once the batch's fate (committed or not) is known.
/// The writer passes the connection, or the error that kept it from opening a transaction.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> (bool, Reply) + Send>;

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Jobs for the writer thread; dropping the last sender stops it.
    writer: mpsc::UnboundedSender<Job>,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    /// Held while serving: the OS releases it when the process ends, even by SIGKILL.
    _lock: Option<std::fs::File>,
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The writer runs a few dozen distinct statements; rusqlite keeps 16 by default, and
    // re-preparing the evicted ones showed in profiles.
    conn.set_prepared_statement_cache_capacity(128);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date. For
    /// tools (`migrate`, `clients`) that may run beside a serving hub.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path.as_ref(), None)
    }

    /// Opens the file for the one process that delivers from it: takes an exclusive lock on
    /// `<file>.lock` (a second `serve` on the same file is refused), and since no other process
    /// can hold leases, drops the leases a process that died left behind, so its in-flight
    /// deliveries go out at once instead of when their leases expire.
    pub fn open_for_serving(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Database(format!("cannot open the lock file: {e}")))?;
        lock.try_lock().map_err(|_| {
            StoreError::Database(format!(
                "{} is in use by another switchyard serve; several nodes need PostgreSQL",
                path.display()
            ))
        })?;
        Self::open_with(path, Some(lock))
    }

    fn open_with(path: &Path, lock: Option<std::fs::File>) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let mut conn = open_connection(&path)?;
        schema::migrate(&mut conn)?;
        if lock.is_some() {
            conn.execute(
                "UPDATE deliveries SET locked_until = NULL, lease_owner = NULL
                 WHERE lease_owner IS NOT NULL",
                [],
            )?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("switchyard-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: tx,
                readers: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    /// Runs `f` in the writer thread as part of the next group commit.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| answer_after_commit(tx, conn.and_then(f)));
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a reader connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("reader task failed: {e}")))?
    }
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits once.
fn run_writer(conn: Connection, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]))
        {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "sqlite: cannot begin a transaction");
            for job in batch {
                let (_, reply) = job(Err(err.clone()));
                reply(Err(err.clone()));
            }
            continue;
        }
        let replies: Vec<Reply> = batch
            .into_iter()
            .map(|job| run_in_savepoint(&conn, job))
            .collect();
        let committed = conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(StoreError::from);
        if let Err(e) = &committed {
            tracing::error!(error = %e, "sqlite: commit failed; the batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// Runs one job in its own savepoint, so its failure undoes only its own writes.
fn run_in_savepoint(conn: &Connection, job: Job) -> Reply {
    // Cached statements: parsing these four times per write showed in profiles.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
    if let Err(e) = run("SAVEPOINT job") {
        return job(Err(StoreError::from(e))).1;
    }
    let (ok, reply) = job(Ok(conn));
    let ended = if ok {
        run("RELEASE job")
    } else {
        run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "sqlite: cannot end a savepoint");
    }
    reply
}

/// Applies order changes (each order created on first sight). The writer is the only one: this
/// read-apply-write cannot race another change, and an error rolls the caller's savepoint back.
fn apply_order_changes(
    conn: &Connection,
    partner_id: &str,
    changes: &[OrderUpdate],
    now: Timestamp,
) -> Result<(), StoreError> {
    for u in changes {
        let stored: Option<String> = conn
            .prepare_cached(
                "SELECT facts FROM order_facts
                 WHERE partner_id = ?1 AND marketplace = ?2 AND po_number = ?3",
            )?
            .query_row(params![partner_id, u.marketplace, u.po_number], |r| {
                r.get(0)
            })
            .optional()?;
        let mut facts = match stored {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))?,
            None => switchyard_core::performance::OrderFacts::new(
                partner_id,
                &u.marketplace,
                &u.po_number,
            ),
        };
        u.change.apply(&mut facts)?;
        conn.prepare_cached(
            "INSERT INTO order_facts (partner_id, marketplace, po_number, facts, last_activity_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (partner_id, marketplace, po_number)
             DO UPDATE SET facts = excluded.facts, last_activity_at = excluded.last_activity_at",
        )?
        .execute(params![
            partner_id,
            u.marketplace,
            u.po_number,
            to_json(&facts),
            ms(now)
        ])?;
    }
    Ok(())
}

/// Keeps a subscription's failure streak after an attempt (see `Store::complete_attempt`).
fn streak(
    conn: &Connection,
    sub_id: &str,
    a: &AttemptRecord,
    policy: FailurePolicy,
) -> Result<AttemptEffects, StoreError> {
    let (failures, threshold): (i64, i64) = conn
        .prepare_cached(
            "SELECT consecutive_failures, breaker_threshold FROM subscriptions WHERE id = ?1",
        )?
        .query_row([sub_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if a.succeeded {
        // Only a streak to clear is written: in the steady state a success takes no lock on the
        // subscription row, so nodes delivering for one subscription never wait on each other.
        conn.prepare_cached(
            "UPDATE subscriptions SET consecutive_failures = 0, failing_since = NULL,
                    breaker_until = NULL
                 WHERE id = ?1 AND (consecutive_failures > 0 OR failing_since IS NOT NULL
                                  OR breaker_until IS NOT NULL)",
        )?
        .execute([sub_id])?;
        return Ok(AttemptEffects {
            disabled: None,
            recovered: failures >= threshold,
        });
    }
    let failing_since: i64 = conn
        .prepare_cached(
            "UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1,
                failing_since = COALESCE(failing_since, ?2),
                breaker_until = CASE WHEN consecutive_failures + 1 >= breaker_threshold
                    THEN ?3 ELSE breaker_until END
             WHERE id = ?1 RETURNING failing_since",
        )?
        .query_row(
            params![sub_id, ms(a.attempted_at), ms(policy.reopen_at)],
            |r| r.get(0),
        )?;
    let reason = if policy.gone {
        Some("the endpoint answered 410 Gone".to_string())
    } else if failing_since <= ms(policy.disable_if_failing_since) {
        Some(format!(
            "failing continuously since {}",
            switchyard_core::clock::from_millis(failing_since)
        ))
    } else {
        None
    };
    let Some(reason) = reason else {
        return Ok(AttemptEffects::default());
    };
    let disabled = conn
        .prepare_cached(
            "UPDATE subscriptions SET status = 'INACTIVE', disabled_reason = ?2
             WHERE id = ?1 AND status = 'ACTIVE'",
        )?
        .execute(params![sub_id, reason])?;
    Ok(AttemptEffects {
        disabled: (disabled == 1).then_some(reason),
        recovered: false,
    })
}

/// A claim's due candidates (`?1` now, `?2` how many): pending, not leased, of an ACTIVE
/// subscription that is neither paced nor broken, and under per-resource ordering the oldest
/// pending delivery of its resource. The last column says whether the subscription has a pace to
/// keep (a cap, a rate or a failure streak at its breaker's threshold).
///
/// `LIMIT ?2 + 0`, here and in every statement of this module: SQLite plans with the value bound
/// to a bare `LIMIT ?`, so each new binding re-prepares the statement (about 1% of the delivery
/// path's CPU); an expression is not looked into.
const CLAIM_CANDIDATES_SQL: &str = "SELECT d.id, d.subscription_id,
        s.max_in_flight IS NOT NULL OR s.rate_per_sec IS NOT NULL
            OR s.consecutive_failures >= s.breaker_threshold
     FROM deliveries d
     JOIN subscriptions s ON s.id = d.subscription_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
       AND (d.locked_until IS NULL OR d.locked_until <= ?1)
       AND s.status = 'ACTIVE'
       AND (s.paced_until IS NULL OR s.paced_until <= ?1)
       AND (s.breaker_until IS NULL OR s.breaker_until <= ?1)
       AND (s.ordering <> 'resource' OR d.resource_key IS NULL
            OR NOT EXISTS (SELECT 1 FROM deliveries p
                WHERE p.subscription_id = d.subscription_id
                  AND p.resource_key = d.resource_key
                  AND p.status = 'pending' AND p.id < d.id))
     ORDER BY d.next_attempt_at
     LIMIT ?2 + 0";

/// The first `?1` pending deliveries by due time, with what says whether they can be claimed.
const DUE_WINDOW_SQL: &str = "SELECT d.next_attempt_at, d.locked_until, s.paced_until,
        s.status = 'ACTIVE'
     FROM (SELECT next_attempt_at, locked_until, subscription_id FROM deliveries
           WHERE status = 'pending' ORDER BY next_attempt_at LIMIT ?1 + 0) d
     JOIN subscriptions s ON s.id = d.subscription_id
     ORDER BY d.next_attempt_at";

/// Pending deliveries by state, and the oldest due one of an ACTIVE subscription. Both parts
/// walk only the partial index `deliveries_due` (pending rows), never the whole table.
const QUEUE_DEPTH_SQL: &str = "SELECT
        COUNT(*) FILTER (WHERE d.locked_until > ?1),
        COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= ?1)
                           AND d.next_attempt_at <= ?1),
        COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= ?1)
                           AND d.next_attempt_at > ?1),
        (SELECT o.next_attempt_at FROM deliveries o
           JOIN subscriptions s ON s.id = o.subscription_id
          WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
            AND (o.locked_until IS NULL OR o.locked_until <= ?1) AND s.status = 'ACTIVE'
          ORDER BY o.next_attempt_at LIMIT 1)
     FROM deliveries d WHERE d.status = 'pending'";

/// Builds `?, ?, ?` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A subscription's columns as `?1`…`?24`, in the order the insert and the update name them.
fn subscription_params(s: &SubscriptionRecord) -> Vec<Box<dyn rusqlite::ToSql>> {
    vec![
        Box::new(s.id.to_string()),
        Box::new(s.partner_id.clone()),
        Box::new(s.client_id.clone()),
        Box::new(to_json(&s.event_types)),
        Box::new(s.event_version.clone()),
        Box::new(s.resource_name.clone()),
        Box::new(s.event_url.clone()),
        Box::new(to_json(&s.headers)),
        Box::new(s.auth_sealed.clone()),
        Box::new(s.status.as_str()),
        Box::new(to_json(&s.retry_policy)),
        Box::new(s.signing_secret_sealed.clone()),
        Box::new(s.previous_secret_sealed.clone()),
        Box::new(s.previous_secret_expires_at.map(ms)),
        Box::new(ms(s.created_at)),
        Box::new(ms(s.updated_at)),
        Box::new(s.ordering.as_str()),
        Box::new(s.max_in_flight),
        Box::new(s.rate_limit.map(|r| r.per_second)),
        Box::new(s.rate_limit.map(|r| r.burst)),
        Box::new(s.disabled_reason.clone()),
        Box::new(s.breaker.failure_threshold),
        Box::new(s.breaker.probe_interval_seconds as i64),
        Box::new(s.auto_disable_after_secs as i64),
        Box::new(s.envelope.as_str()),
    ]
}

fn insert_subscription(conn: &Connection, s: &SubscriptionRecord) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO subscriptions (id, partner_id, client_id, event_types, event_version,
            resource_name, event_url, headers, auth_sealed, status, retry_policy,
            signing_secret_sealed, previous_secret_sealed, previous_secret_expires_at,
            created_at, updated_at, ordering, max_in_flight, rate_per_sec, rate_burst, disabled_reason,
             breaker_threshold, breaker_probe_secs, auto_disable_after_secs, envelope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21, ?22, ?23, ?24, ?25)
         ON CONFLICT (id) DO NOTHING",
        params_from_iter(subscription_params(s)),
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("subscription {}", s.id)));
    }
    index_event_types(conn, s)
}

fn index_event_types(conn: &Connection, s: &SubscriptionRecord) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM subscription_event_types WHERE subscription_id = ?1",
        [s.id.to_string()],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_event_types (partner_id, event_type, subscription_id)
         VALUES (?1, ?2, ?3)",
    )?;
    for event_type in &s.event_types {
        stmt.execute(params![s.partner_id, event_type, s.id.to_string()])?;
    }
    Ok(())
}

fn select_subscription(
    conn: &Connection,
    id: &str,
) -> Result<Option<SubscriptionRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.id = ?1"
        ))?
        .query_row([id], rows::subscription)
        .optional()?)
}

fn select_delivery(conn: &Connection, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.id = ?1"),
            [id],
            rows::delivery,
        )
        .optional()?)
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn create_client(&self, client: Client) -> Result<(), StoreError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO clients (id, name, secret_hash, partners, scopes, admin, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                params![
                    client.id,
                    client.name,
                    client.secret_hash,
                    to_json(&client.partners),
                    to_json(&client.scopes),
                    client.admin,
                    ms(client.created_at),
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("client {}", client.id)));
            }
            Ok(())
        })
        .await
    }

    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"),
                    [id],
                    rows::client,
                )
                .optional()?)
        })
        .await
    }

    async fn create_subscriptions(&self, subs: Vec<SubscriptionRecord>) -> Result<(), StoreError> {
        self.write(move |conn| {
            for s in &subs {
                insert_subscription(conn, s)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_subscription(&self, id: Uuid) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.read(move |conn| select_subscription(conn, &id.to_string()))
            .await
    }

    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(partners) = &filter.partners {
                sql += &format!(" AND s.partner_id IN ({})", placeholders(partners.len()));
                args.extend(partners.iter().cloned());
            }
            if let Some(id) = filter.subscription_id {
                sql += " AND s.id = ?";
                args.push(id.to_string());
            }
            if let Some(event_type) = &filter.event_type {
                sql += " AND EXISTS (SELECT 1 FROM subscription_event_types t
                          WHERE t.subscription_id = s.id AND t.event_type = ?)";
                args.push(event_type.clone());
            }
            if let Some(resource) = &filter.resource_name {
                sql += " AND s.resource_name = ?";
                args.push(resource.clone());
            }
            if let Some(status) = filter.status {
                sql += " AND s.status = ?";
                args.push(status.as_str().to_string());
            }
            sql += " ORDER BY s.id";
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::subscription)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn update_subscription(&self, s: SubscriptionRecord) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let updated = conn.execute(
                "UPDATE subscriptions SET partner_id = ?2, client_id = ?3, event_types = ?4,
                    event_version = ?5, resource_name = ?6, event_url = ?7, headers = ?8,
                    auth_sealed = ?9, status = ?10, retry_policy = ?11,
                    signing_secret_sealed = ?12, previous_secret_sealed = ?13,
                    previous_secret_expires_at = ?14, created_at = ?15, updated_at = ?16,
                    ordering = ?17, max_in_flight = ?18, rate_per_sec = ?19, rate_burst = ?20,
                    disabled_reason = ?21, breaker_threshold = ?22, breaker_probe_secs = ?23,
                    auto_disable_after_secs = ?24, envelope = ?25,
                    -- Resuming starts afresh: no failure streak, no open breaker.
                    consecutive_failures = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                        THEN 0 ELSE consecutive_failures END,
                    failing_since = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                        THEN NULL ELSE failing_since END,
                    breaker_until = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                        THEN NULL ELSE breaker_until END
                 WHERE id = ?1",
                params_from_iter(subscription_params(&s)),
            )?;
            if updated == 1 {
                index_event_types(conn, &s)?;
            }
            Ok(updated == 1)
        })
        .await
    }

    async fn delete_subscription(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let id = id.to_string();
            let deleted = conn.execute("DELETE FROM subscriptions WHERE id = ?1", [&id])?;
            conn.execute(
                "DELETE FROM subscription_event_types WHERE subscription_id = ?1",
                [&id],
            )?;
            conn.execute(
                "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
                    last_error = 'subscription deleted', locked_until = NULL, lease_owner = NULL,
                    updated_at = ?2
                 WHERE subscription_id = ?1 AND status = 'pending'",
                params![id, ms(now)],
            )?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn insert_event_with_order(
        &self,
        mut e: EventRecord,
        sighting: Option<ResourceSighting>,
        order: Option<OrderUpdate>,
    ) -> Result<InsertOutcome, StoreError> {
        // Serialized here, on the caller's thread, to keep the one writer thread's work short.
        let payload = to_json(&e.payload);
        let normalized = e.normalized.as_ref().map(to_json);
        let headers = (!e.headers.is_empty()).then(|| to_json(&e.headers));
        self.write(move |conn| {
            if let Some(key) = &e.dedup_key {
                let existing: Option<String> = conn
                    .prepare_cached("SELECT id FROM events WHERE origin = ?1 AND dedup_key = ?2")?
                    .query_row(params![e.origin, key], |r| r.get(0))
                    .optional()?;
                if let Some(id) = existing {
                    let event_id = Uuid::parse_str(&id)
                        .map_err(|err| StoreError::Corrupt(format!("event id: {err}")))?;
                    // Counted per source for the console; insert-only, so nothing contends.
                    conn.prepare_cached(
                        "INSERT INTO duplicates (origin, event_id, received_at) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![e.origin, id, ms(e.received_at)])?;
                    return Ok(InsertOutcome::Duplicate { event_id });
                }
            }
            if let Some(s) = &sighting {
                let key = params![s.marketplace, s.partner_id, s.resource_kind, s.resource_id];
                let seen = conn
                    .prepare_cached(
                        "SELECT 1 FROM resource_registry WHERE marketplace = ?1 AND partner_id = ?2
                         AND resource_kind = ?3 AND resource_id = ?4",
                    )?
                    .exists(key)?;
                if !seen && let Some(first) = &s.first_sighting_topic {
                    e.topic = Some(first.clone());
                }
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
                    ms(e.received_at),
                ])?;
            }
            let marketplace = e
                .normalized
                .as_ref()
                .and_then(|n| n.get("marketplace"))
                .and_then(|m| m.as_str())
                .map(str::to_string);
            conn.prepare_cached(
                "INSERT INTO events (id, origin, dedup_key, partner_id, event_type, event_version,
                    topic, public_event_id, occurred_at, received_at, payload, normalized,
                    raw_body, marketplace, resource_key, headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                e.id.to_string(),
                e.origin,
                e.dedup_key,
                e.partner_id,
                e.event_type,
                e.event_version,
                e.topic,
                e.public_event_id,
                ms(e.occurred_at),
                ms(e.received_at),
                payload,
                normalized,
                e.raw_body,
                marketplace,
                e.resource_key,
                headers,
            ])?;
            // Fan-out: every ACTIVE subscription of the partner naming the type or the topic.
            let topic = e.topic.clone().unwrap_or_default();
            let subscription_ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT DISTINCT s.id FROM subscription_event_types t
                     JOIN subscriptions s ON s.id = t.subscription_id
                     WHERE t.partner_id = ?1 AND t.event_type IN (?2, ?3)
                       AND s.status = 'ACTIVE' AND s.event_version = ?4",
                )?
                .query_map(
                    params![e.partner_id, e.event_type, topic, e.event_version],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO deliveries (id, event_id, subscription_id, partner_id, status,
                    attempts, next_attempt_at, created_at, updated_at, resource_key)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5, ?6)",
            )?;
            for subscription_id in &subscription_ids {
                insert.execute(params![
                    Uuid::now_v7().to_string(),
                    e.id.to_string(),
                    subscription_id,
                    e.partner_id,
                    ms(e.received_at),
                    e.resource_key,
                ])?;
            }
            if let Some(order) = order {
                // Its own savepoint: facts that do not apply are left out, the event is kept.
                let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
                run("SAVEPOINT order_facts")?;
                match apply_order_changes(conn, &e.partner_id, &[order], e.received_at) {
                    Ok(()) => run("RELEASE order_facts")?,
                    Err(err) => {
                        tracing::warn!(error = %err, event = %e.id, "order facts left out");
                        run("ROLLBACK TO order_facts")?;
                        run("RELEASE order_facts")?
                    }
                };
            }
            Ok(InsertOutcome::Created {
                event_id: e.id,
                deliveries: subscription_ids.len() as u32,
            })
        })
        .await
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<EventRecord>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"),
                    [id.to_string()],
                    rows::event,
                )
                .optional()?)
        })
        .await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let f = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let text = |s: &str| rusqlite::types::Value::Text(s.to_string());
            if let Some(partners) = &f.partners {
                sql += &format!(" AND e.partner_id IN ({})", placeholders(partners.len()));
                args.extend(partners.iter().map(|p| text(p)));
            }
            for (column, value) in [
                ("e.topic", &f.topic),
                ("e.marketplace", &f.marketplace),
                ("e.partner_id", &f.partner_id),
            ] {
                if let Some(v) = value {
                    sql += &format!(" AND {column} = ?");
                    args.push(text(v));
                }
            }
            if let Some(keys) = &f.resource_keys {
                sql += &format!(" AND e.resource_key IN ({})", placeholders(keys.len()));
                args.extend(keys.iter().map(|k| text(k)));
            }
            if let Some(since) = f.since {
                sql += " AND e.received_at >= ?";
                args.push(rusqlite::types::Value::Integer(ms(since)));
            }
            if let Some(until) = f.until {
                sql += " AND e.received_at < ?";
                args.push(rusqlite::types::Value::Integer(ms(until)));
            }
            if let Some(before) = f.before {
                sql += " AND e.id < ?";
                args.push(text(&before.to_string()));
            }
            sql += &format!(" ORDER BY e.id DESC LIMIT {}", f.limit.clamp(1, 1000));
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::event)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn create_source(&self, s: SourceRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO sources (id, kind, name, partners, secrets_sealed, replay_window_secs,
                    options, client_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
                params![
                    s.id.to_string(),
                    s.kind,
                    s.name,
                    to_json(&s.partners),
                    s.secrets_sealed,
                    s.replay_window_secs,
                    to_json(&s.options),
                    s.client_id,
                    ms(s.created_at),
                    ms(s.updated_at),
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("source {}", s.id)));
            }
            Ok(())
        })
        .await
    }

    async fn get_source(&self, id: Uuid) -> Result<Option<SourceRecord>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = ?1"
                ))?
                .query_row([id.to_string()], rows::source)
                .optional()?)
        })
        .await
    }

    async fn list_sources(
        &self,
        partners: Option<Vec<String>>,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        self.read(move |conn| {
            let mut sql = format!("SELECT {SOURCE_COLUMNS} FROM sources s WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(partners) = &partners {
                // Every partner of the source must be one the caller manages.
                sql += &format!(
                    " AND NOT EXISTS (SELECT 1 FROM json_each(s.partners) p
                      WHERE p.value NOT IN ({}))",
                    placeholders(partners.len())
                );
                args.extend(partners.iter().cloned());
            }
            sql += " ORDER BY s.id";
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::source)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn update_source(&self, s: SourceRecord) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let updated = conn.execute(
                "UPDATE sources SET name = ?2, partners = ?3, secrets_sealed = ?4,
                    replay_window_secs = ?5, options = ?6, updated_at = ?7
                 WHERE id = ?1",
                params![
                    s.id.to_string(),
                    s.name,
                    to_json(&s.partners),
                    s.secrets_sealed,
                    s.replay_window_secs,
                    to_json(&s.options),
                    ms(s.updated_at),
                ],
            )?;
            Ok(updated == 1)
        })
        .await
    }

    async fn delete_source(&self, id: Uuid) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM sources WHERE id = ?1", [id.to_string()])? == 1)
        })
        .await
    }

    async fn insert_rejection(&self, r: RejectionRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO rejections (id, source_id, partners, reason, status_code, message,
                    remote_addr, body_sha256, body_size, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                r.id.to_string(),
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
        })
        .await
    }

    async fn list_rejections(
        &self,
        filter: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError> {
        let f = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {REJECTION_COLUMNS} FROM rejections r WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let text = |s: &str| rusqlite::types::Value::Text(s.to_string());
            if let Some(partners) = &f.partners {
                sql += &format!(
                    " AND EXISTS (SELECT 1 FROM json_each(r.partners) p WHERE p.value IN ({}))",
                    placeholders(partners.len())
                );
                args.extend(partners.iter().map(|p| text(p)));
            }
            if let Some(source) = &f.source_id {
                sql += " AND r.source_id = ?";
                args.push(text(source));
            }
            if let Some(reason) = &f.reason {
                sql += " AND r.reason = ?";
                args.push(text(reason));
            }
            if let Some(since) = f.since {
                sql += " AND r.received_at >= ?";
                args.push(rusqlite::types::Value::Integer(ms(since)));
            }
            if let Some(before) = f.before {
                sql += " AND r.id < ?";
                args.push(text(&before.to_string()));
            }
            sql += &format!(" ORDER BY r.id DESC LIMIT {}", f.limit.clamp(1, 1000));
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::rejection)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn rejection_summary(
        &self,
        partners: Option<Vec<String>>,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError> {
        self.read(move |conn| {
            let mut sql = "SELECT r.source_id, r.reason, COUNT(*) FROM rejections r
                           WHERE r.received_at >= ?"
                .to_string();
            let mut args: Vec<rusqlite::types::Value> =
                vec![rusqlite::types::Value::Integer(ms(since))];
            if let Some(partners) = &partners {
                sql += &format!(
                    " AND EXISTS (SELECT 1 FROM json_each(r.partners) p WHERE p.value IN ({}))",
                    placeholders(partners.len())
                );
                args.extend(
                    partners
                        .iter()
                        .map(|p| rusqlite::types::Value::Text(p.clone())),
                );
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
        })
        .await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let owner = owner.to_string();
        let ids: Vec<Uuid> = self
            .write(move |conn| {
                // Due candidates, a few times more than asked, so paced subscriptions cannot starve
                // the others of the batch. The last column says whether the subscription has a pace
                // to keep (a cap, a rate or an open breaker); most have none.
                let mut paced: Vec<String> = Vec::new();
                let mut candidates: Vec<(Uuid, Uuid)> = Vec::new();
                let mut unpaced = 0;
                let mut statement = conn.prepare_cached(CLAIM_CANDIDATES_SQL)?;
                let mut stream = statement.query(params![ms(now), i64::from(limit) * 4])?;
                // The rows stream from the due index: stop once `limit` deliveries of unpaced
                // subscriptions are in hand, since the selection takes every one of those and
                // would stop there too.
                while unpaced < limit
                    && let Some(r) = stream.next()?
                {
                    let d: String = r.get(0)?;
                    let s: String = r.get(1)?;
                    let is_paced: bool = r.get(2)?;
                    let (d, s) = (
                        Uuid::parse_str(&d).map_err(rows::corrupt)?,
                        Uuid::parse_str(&s).map_err(rows::corrupt)?,
                    );
                    if is_paced {
                        paced.push(s.to_string());
                    } else {
                        unpaced += 1;
                    }
                    candidates.push((d, s));
                }
                drop(stream);
                drop(statement);
                paced.sort();
                paced.dedup();
                // One query for the candidate subscriptions that have a pace to keep, if any.
                let paces: Vec<pacing::Pace> = if paced.is_empty() {
                    Vec::new()
                } else {
                    conn.prepare_cached(
                        "SELECT s.max_in_flight, s.rate_per_sec, s.rate_burst, s.rate_tokens,
                        s.rate_updated_at, s.consecutive_failures >= s.breaker_threshold,
                        (SELECT COUNT(*) FROM deliveries f WHERE f.subscription_id = s.id
                           AND f.status = 'pending' AND f.locked_until > ?1),
                        s.id
                     FROM subscriptions s
                     WHERE s.id IN (SELECT value FROM json_each(?2))",
                    )?
                    .query_map(params![ms(now), to_json(&paced)], |r| {
                        let id: String = r.get(7)?;
                        Ok(pacing::Pace {
                            subscription_id: Uuid::parse_str(&id).map_err(rows::corrupt)?,
                            max_in_flight: r
                                .get::<_, Option<i64>>(0)?
                                .map(|n| n.clamp(0, u32::MAX as i64) as u32),
                            rate_per_sec: r.get(1)?,
                            burst: r.get::<_, Option<f64>>(2)?.unwrap_or(1.0),
                            tokens: r.get(3)?,
                            updated_at: r
                                .get::<_, Option<i64>>(4)?
                                .map(switchyard_core::clock::from_millis),
                            probe_only: r.get(5)?,
                            in_flight: r.get::<_, i64>(6)?.clamp(0, u32::MAX as i64) as u32,
                        })
                    })?
                    .collect::<Result<_, _>>()?
                };
                let selection = pacing::select(now, &candidates, &paces, limit as usize);
                for (sub, tokens) in &selection.spent {
                    conn.prepare_cached(
                    "UPDATE subscriptions SET rate_tokens = ?2, rate_updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![sub.to_string(), tokens, ms(now)])?;
                }
                for sub in &selection.probes {
                    conn.prepare_cached(
                        "UPDATE subscriptions SET breaker_until = ?2 WHERE id = ?1",
                    )?
                    .execute(params![sub.to_string(), ms(lease_until)])?;
                }
                let mut lease = conn.prepare_cached(
                    "UPDATE deliveries SET locked_until = ?2, lease_owner = ?3 WHERE id = ?1",
                )?;
                for id in &selection.deliveries {
                    lease.execute(params![id.to_string(), ms(lease_until), owner])?;
                }
                Ok(selection.deliveries)
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The rows are read on a reader, off the one writer thread: the leases keep other
        // claimers off them meanwhile, and what a reader sees is at least as new as the claim.
        // One query for the deliveries with their events, and each subscription read once.
        self.read(move |conn| {
            let wanted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            let mut found: HashMap<Uuid, (DeliveryRecord, EventRecord)> = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, {CLAIMED_EVENT_COLUMNS}
                     FROM deliveries d JOIN events e ON e.id = d.event_id
                     WHERE d.id IN (SELECT value FROM json_each(?1))"
                ))?
                .query_map([to_json(&wanted)], |row| {
                    // Column names repeat across the tables, so the event is read by position.
                    let delivery = rows::delivery(row)?;
                    Ok((
                        delivery.id,
                        (delivery, rows::event_at(row, DELIVERY_COLUMN_COUNT)?),
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut subscriptions: HashMap<Uuid, SubscriptionRecord> = HashMap::new();
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                // Gone since the claim (its subscription deleted, say): nothing to attempt.
                let Some((delivery, event)) = found.remove(&id) else {
                    continue;
                };
                let subscription = match subscriptions.get(&delivery.subscription_id) {
                    Some(s) => s.clone(),
                    None => match select_subscription(conn, &delivery.subscription_id.to_string())?
                    {
                        Some(s) => {
                            subscriptions.insert(s.id, s.clone());
                            s
                        }
                        None => continue,
                    },
                };
                claimed.push(ClaimedDelivery {
                    delivery,
                    event,
                    subscription,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn complete_attempt(
        &self,
        a: AttemptRecord,
        next: DeliveryNext,
        owner: &str,
        policy: FailurePolicy,
    ) -> Result<AttemptEffects, StoreError> {
        let owner = owner.to_string();
        self.write(move |conn| {
            let delivery_id = a.delivery_id.to_string();
            conn.prepare_cached(
                "INSERT INTO attempts (id, delivery_id, subscription_id, attempted_at, succeeded,
                    status_code, latency_ms, error_class, error_message, response_excerpt)
                 SELECT ?1, ?2, subscription_id, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 FROM deliveries WHERE id = ?2",
            )?
            .execute(params![
                a.id.to_string(),
                delivery_id,
                ms(a.attempted_at),
                a.succeeded,
                a.status_code,
                a.latency_ms as i64,
                a.error_class,
                a.error_message,
                a.response_excerpt,
            ])?;
            let (status, next_at) = match next {
                DeliveryNext::Succeeded => (DeliveryStatus::Succeeded, None),
                DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(ms(at))),
                DeliveryNext::Failed => (DeliveryStatus::Failed, None),
            };
            let last_error = match (&a.error_class, &a.error_message) {
                (Some(class), Some(msg)) => Some(format!("{class}: {msg}")),
                (Some(class), None) => Some(class.clone()),
                _ => None,
            };
            // Only the lease holder moves the delivery on: a worker whose lease expired and was
            // taken over must not overwrite the newer holder's outcome.
            let moved: Option<String> = conn
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, attempts = attempts + 1,
                        next_attempt_at = ?3, first_attempt_at = COALESCE(first_attempt_at, ?4),
                        last_attempt_at = ?4, last_status_code = ?5, last_error = ?6,
                        locked_until = NULL, lease_owner = NULL, updated_at = ?4
                     WHERE id = ?1 AND lease_owner = ?7 AND status = 'pending'
                     RETURNING subscription_id",
                )?
                .query_row(
                    params![
                        delivery_id,
                        status.as_str(),
                        next_at,
                        ms(a.attempted_at),
                        a.status_code,
                        last_error,
                        owner,
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(sub_id) = moved else {
                return Ok(AttemptEffects::default());
            };
            streak(conn, &sub_id, &a, policy)
        })
        .await
    }

    async fn pace_subscription(&self, id: Uuid, until: Timestamp) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE subscriptions SET paced_until = MAX(COALESCE(paced_until, 0), ?2)
                 WHERE id = ?1",
                params![id.to_string(), ms(until)],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_string();
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE deliveries SET locked_until = NULL, lease_owner = NULL
                 WHERE lease_owner = ?1",
                [owner],
            )? as u64)
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn| {
            // The earliest few by the due index, not a scan of every pending delivery.
            let window = conn
                .prepare_cached(DUE_WINDOW_SQL)?
                .query_map([crate::DUE_WINDOW], |r| {
                    Ok(crate::DueRow {
                        next_attempt_at: r.get(0)?,
                        locked_until: r.get(1)?,
                        paced_until: r.get(2)?,
                        active: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(crate::earliest_claimable(&window))
        })
        .await
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(partners) = &filter.partners {
                sql += &format!(" AND d.partner_id IN ({})", placeholders(partners.len()));
                args.extend(partners.iter().cloned());
            }
            if let Some(id) = filter.subscription_id {
                sql += " AND d.subscription_id = ?";
                args.push(id.to_string());
            }
            if let Some(id) = filter.event_id {
                sql += " AND d.event_id = ?";
                args.push(id.to_string());
            }
            if let Some(status) = filter.status {
                sql += " AND d.status = ?";
                args.push(status.as_str().to_string());
            }
            if let Some(before) = filter.before {
                sql += " AND d.id < ?";
                args.push(before.to_string());
            }
            sql += &format!(" ORDER BY d.id DESC LIMIT {}", filter.limit.clamp(1, 1000));
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::delivery)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn get_delivery(
        &self,
        id: Uuid,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        self.read(move |conn| {
            let id = id.to_string();
            let Some(delivery) = select_delivery(conn, &id)? else {
                return Ok(None);
            };
            let attempts = conn
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.delivery_id = ?1
                     ORDER BY a.attempted_at, a.id"
                ))?
                .query_map([&id], rows::attempt)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((delivery, attempts)))
        })
        .await
    }

    async fn retry_delivery(
        &self,
        id: Uuid,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.write(move |conn| {
            let id = id.to_string();
            conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, first_attempt_at = NULL,
                    next_attempt_at = ?2, locked_until = NULL, lease_owner = NULL, updated_at = ?2
                 WHERE id = ?1",
                params![id, ms(now)],
            )?;
            select_delivery(conn, &id)
        })
        .await
    }

    async fn replay(
        &self,
        subscription_id: Uuid,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let sub_id = subscription_id.to_string();
            let Some(sub) = select_subscription(conn, &sub_id)? else {
                return Ok(0);
            };
            let types = to_json(&sub.event_types);
            let event_ids: Vec<(String, Option<String>)> = conn
                .prepare(
                    "SELECT e.id, e.resource_key FROM events e
                     WHERE e.partner_id = ?1 AND e.received_at >= ?2 AND e.received_at < ?3
                       AND e.event_version = ?4
                       AND (e.event_type IN (SELECT value FROM json_each(?5))
                            OR e.topic IN (SELECT value FROM json_each(?5)))
                     ORDER BY e.id",
                )?
                .query_map(
                    params![
                        sub.partner_id,
                        ms(since),
                        ms(until),
                        sub.event_version,
                        types
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            let mut upsert = conn.prepare_cached(
                "INSERT INTO deliveries (id, event_id, subscription_id, partner_id, status,
                    attempts, next_attempt_at, created_at, updated_at, resource_key)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5, ?6)
                 ON CONFLICT (event_id, subscription_id) DO UPDATE SET status = 'pending',
                    attempts = 0, first_attempt_at = NULL, next_attempt_at = ?5,
                    locked_until = NULL, lease_owner = NULL, updated_at = ?5",
            )?;
            for (event_id, resource_key) in &event_ids {
                upsert.execute(params![
                    Uuid::now_v7().to_string(),
                    event_id,
                    sub_id,
                    sub.partner_id,
                    ms(now),
                    resource_key,
                ])?;
            }
            Ok(event_ids.len() as u64)
        })
        .await
    }

    async fn purge_before(&self, before: Timestamp, batch: u32) -> Result<PurgeCounts, StoreError> {
        self.write(move |conn| {
            let before = ms(before);
            let attempts = conn.execute(
                "DELETE FROM attempts WHERE id IN
                    (SELECT id FROM attempts WHERE attempted_at < ?1 LIMIT ?2 + 0)",
                params![before, batch],
            )? as u64;
            let rejections = conn.execute(
                "DELETE FROM rejections WHERE id IN
                    (SELECT id FROM rejections WHERE received_at < ?1 LIMIT ?2 + 0)",
                params![before, batch],
            )? as u64;
            // Not counted: duplicate sightings and outcomes are small notes about events.
            conn.execute(
                "DELETE FROM duplicates WHERE rowid IN
                    (SELECT rowid FROM duplicates WHERE received_at < ?1 LIMIT ?2 + 0)",
                params![before, batch],
            )?;
            conn.execute(
                "DELETE FROM outcomes WHERE id IN
                    (SELECT id FROM outcomes WHERE reported_at < ?1 LIMIT ?2 + 0)",
                params![before, batch],
            )?;
            let events: Vec<String> = conn
                .prepare_cached(
                    "SELECT e.id FROM events e WHERE e.received_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM deliveries d
                                       WHERE d.event_id = e.id AND d.status = 'pending')
                     LIMIT ?2 + 0",
                )?
                .query_map(params![before, batch], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut deliveries = 0;
            for id in &events {
                deliveries +=
                    conn.execute("DELETE FROM deliveries WHERE event_id = ?1", [id])? as u64;
                conn.execute("DELETE FROM events WHERE id = ?1", [id])?;
            }
            Ok(PurgeCounts {
                events: events.len() as u64,
                deliveries,
                attempts,
                rejections,
            })
        })
        .await
    }

    async fn subscription_state(&self, id: Uuid) -> Result<SubscriptionState, StoreError> {
        self.read(move |conn| {
            let state = conn
                .prepare_cached("SELECT s.consecutive_failures, s.failing_since, s.breaker_until, s.paced_until,
                (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'),
                (SELECT MIN(d.created_at) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending')
             FROM subscriptions s WHERE s.id = ?1")?
                .query_row([id.to_string()], |r| {
                    let t = |v: Option<i64>| v.map(switchyard_core::clock::from_millis);
                    Ok(SubscriptionState {
                        consecutive_failures: r.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
                        failing_since: t(r.get(1)?),
                        breaker_until: t(r.get(2)?),
                        paced_until: t(r.get(3)?),
                        pending: r.get::<_, i64>(4)?.max(0) as u64,
                        oldest_pending_at: t(r.get(5)?),
                    })
                })
                .optional()?;
            Ok(state.unwrap_or_default())
        })
        .await
    }

    async fn attempts_since(
        &self,
        subscription_id: Uuid,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts a
                     WHERE a.subscription_id = ?1 AND a.attempted_at >= ?2
                     ORDER BY a.attempted_at, a.id LIMIT ?3 + 0"
                ))?
                .query_map(
                    params![subscription_id.to_string(), ms(since), limit],
                    rows::attempt,
                )?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn list_attempts(
        &self,
        filter: &AttemptFilter,
    ) -> Result<Vec<LoggedAttempt>, StoreError> {
        let f = filter.clone();
        self.read(move |conn| {
            let mut sql = format!(
                "SELECT {ATTEMPT_COLUMNS}, a.subscription_id, d.event_id, e.event_type
                 FROM attempts a
                 JOIN deliveries d ON d.id = a.delivery_id
                 JOIN events e ON e.id = d.event_id
                 WHERE a.subscription_id = ?"
            );
            let mut args: Vec<rusqlite::types::Value> =
                vec![rusqlite::types::Value::Text(f.subscription_id.to_string())];
            // A literal, not a parameter: only then may SQLite use the partial index of failures.
            match f.succeeded {
                Some(true) => sql += " AND a.succeeded = 1",
                Some(false) => sql += " AND a.succeeded = 0",
                None => {}
            }
            if let Some(since) = f.since {
                sql += " AND a.attempted_at >= ?";
                args.push(rusqlite::types::Value::Integer(ms(since)));
            }
            if let Some(until) = f.until {
                sql += " AND a.attempted_at < ?";
                args.push(rusqlite::types::Value::Integer(ms(until)));
            }
            if let Some(after) = f.after {
                // Keyset on (time, id): the log's order, served by the attempts_log index.
                sql += " AND (a.attempted_at, a.id) <
                          (SELECT x.attempted_at, x.id FROM attempts x WHERE x.id = ?)";
                args.push(rusqlite::types::Value::Text(after.to_string()));
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
        })
        .await
    }

    async fn failure_report(
        &self,
        partners: Option<Vec<String>>,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError> {
        self.read(move |conn| {
            let bucket_ms = bucket_secs.max(1) * 1000;
            // Every query takes the bucket width, the start, then the partners.
            let mut args = vec![
                rusqlite::types::Value::Integer(bucket_ms),
                rusqlite::types::Value::Integer(ms(since)),
            ];
            if let Some(partners) = &partners {
                args.extend(
                    partners
                        .iter()
                        .map(|p| rusqlite::types::Value::Text(p.clone())),
                );
            }
            let only = |clause: &str| match &partners {
                None => String::new(),
                Some(p) => clause.replace("{}", &placeholders(p.len())),
            };
            let collect = |sql: String| -> Result<Vec<BucketCount>, StoreError> {
                let mut stmt = conn.prepare(&sql)?;
                let found = stmt
                    .query_map(params_from_iter(args.iter()), |r| {
                        Ok(BucketCount {
                            bucket: switchyard_core::clock::from_millis(r.get(0)?),
                            key: r.get(1)?,
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
        })
        .await
    }

    async fn insert_outcome(&self, o: OutcomeRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO outcomes (id, event_id, partner_id, client_id, status, reason,
                    message, reported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                o.id.to_string(),
                o.event_id.to_string(),
                o.partner_id,
                o.client_id,
                o.status,
                o.reason,
                o.message,
                ms(o.reported_at),
            ])?;
            Ok(())
        })
        .await
    }

    async fn list_outcomes(
        &self,
        filter: &OutcomeFilter,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        let f = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {OUTCOME_COLUMNS} FROM outcomes o WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let text = |s: &str| rusqlite::types::Value::Text(s.to_string());
            if let Some(partners) = &f.partners {
                sql += &format!(" AND o.partner_id IN ({})", placeholders(partners.len()));
                args.extend(partners.iter().map(|p| text(p)));
            }
            let event_id = f.event_id.map(|id| id.to_string());
            for (column, value) in [
                ("o.event_id", &event_id),
                ("o.status", &f.status),
                ("o.reason", &f.reason),
            ] {
                if let Some(v) = value {
                    sql += &format!(" AND {column} = ?");
                    args.push(text(v));
                }
            }
            if let Some(since) = f.since {
                sql += " AND o.reported_at >= ?";
                args.push(rusqlite::types::Value::Integer(ms(since)));
            }
            if let Some(before) = f.before {
                sql += " AND o.id < ?";
                args.push(text(&before.to_string()));
            }
            sql += &format!(" ORDER BY o.id DESC LIMIT {}", f.limit.clamp(1, 1000));
            let mut stmt = conn.prepare(&sql)?;
            let found = stmt
                .query_map(params_from_iter(args.iter()), rows::outcome)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn source_stats(&self, source_id: Uuid) -> Result<SourceStats, StoreError> {
        self.read(move |conn| {
            let id = source_id.to_string();
            let count = |sql: &str| -> Result<u64, StoreError> {
                Ok(conn
                    .prepare_cached(sql)?
                    .query_row([&id], |r| r.get::<_, i64>(0))?
                    .max(0) as u64)
            };
            Ok(SourceStats {
                // Received events always carry a dedup key: this count uses events_dedup.
                accepted: count(
                    "SELECT COUNT(*) FROM events WHERE origin = ?1 AND dedup_key IS NOT NULL",
                )?,
                duplicates: count("SELECT COUNT(*) FROM duplicates WHERE origin = ?1")?,
                refused: count("SELECT COUNT(*) FROM rejections WHERE source_id = ?1")?,
            })
        })
        .await
    }

    async fn set_console_enabled(&self, partner_id: &str, enabled: bool) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO partner_settings (partner_id, console_enabled) VALUES (?1, ?2)
                 ON CONFLICT (partner_id) DO UPDATE SET console_enabled = excluded.console_enabled",
                params![partner_id, enabled],
            )?;
            Ok(())
        })
        .await
    }

    async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let found = conn
                .prepare_cached(
                    "SELECT partner_id FROM partner_settings WHERE console_enabled = 0
                     ORDER BY partner_id",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(found)
        })
        .await
    }

    async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| apply_order_changes(conn, &partner_id, &changes, now))
            .await
    }

    async fn partner_orders(
        &self,
        partner_id: &str,
        since: Timestamp,
    ) -> Result<Vec<switchyard_core::performance::OrderFacts>, StoreError> {
        let partner_id = partner_id.to_string();
        self.read(move |conn| {
            let texts = conn
                .prepare_cached(
                    "SELECT facts FROM order_facts WHERE partner_id = ?1 AND last_activity_at >= ?2",
                )?
                .query_map(params![partner_id, ms(since)], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            texts
                .iter()
                .map(|t| {
                    serde_json::from_str(t)
                        .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))
                })
                .collect()
        })
        .await
    }

    async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(QUEUE_DEPTH_SQL)?
                .query_row([ms(now)], |r| {
                    let count = |i: usize| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                    Ok(QueueDepth {
                        leased: count(0)?,
                        due: count(1)?,
                        scheduled: count(2)?,
                        oldest_due_at: r
                            .get::<_, Option<i64>>(3)?
                            .map(switchyard_core::clock::from_millis),
                    })
                })?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatcher runs these on every turn with new values bound: none may be re-prepared
    /// each time (SQLite does so when a plan depends on a bound value, as with a bare
    /// `LIMIT ?`).
    #[test]
    fn hot_statements_are_not_re_prepared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_connection(&dir.path().join("prepare.db")).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        for (name, sql) in [
            ("claim candidates", CLAIM_CANDIDATES_SQL),
            ("due window", DUE_WINDOW_SQL),
        ] {
            let mut statement = conn.prepare(sql).expect("prepare");
            let count = statement.parameter_count();
            for n in 0..5i64 {
                let values: Vec<i64> = (0..count as i64).map(|i| n * 10 + i + 1).collect();
                let rows = statement
                    .query_map(params_from_iter(values.iter()), |_| Ok(()))
                    .expect("query")
                    .count();
                assert_eq!(rows, 0);
            }
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{name} is re-prepared on every binding"
            );
        }
    }

    /// The queue-depth scrape must stay cheap with millions of finished deliveries: SQLite
    /// has to answer it from the partial index on pending rows, never by scanning the table.
    #[test]
    fn queue_depth_reads_only_the_pending_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_connection(&dir.path().join("plan.db")).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {QUEUE_DEPTH_SQL}"))
            .expect("explain")
            .query_map([0i64], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        // Every step that reads `deliveries` (as `d` or `o`) goes through the partial index.
        let reads_deliveries = |step: &&String| {
            let mut words = step.split_whitespace();
            matches!(words.next(), Some("SCAN" | "SEARCH"))
                && matches!(words.next(), Some("d" | "o"))
        };
        assert_eq!(
            plan.iter().filter(reads_deliveries).count(),
            2,
            "plan: {plan:?}"
        );
        assert!(
            plan.iter()
                .filter(reads_deliveries)
                .all(|s| s.contains("USING INDEX deliveries_due")),
            "plan: {plan:?}"
        );
    }
}
