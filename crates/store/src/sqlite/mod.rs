//! The SQLite store: one file in WAL mode, one writer thread that commits concurrent writes
//! together (group commit), a small pool of reader connections, and a deriver thread.
//!
//! The writer takes every operation waiting and runs them in one transaction. The two that
//! make up the ack and delivery paths, storing an event and recording an attempt, are typed
//! operations ([`events::EventOp`], [`deliveries::AttemptOp`]) and run first, without a
//! savepoint each (a savepoint copies every page it touches into a sub-journal, which showed as
//! a tenth of the writer's time): if one fails, the transaction is rolled back and the typed
//! operations run again, each in its own savepoint, so one bad operation costs only its own
//! caller. Every other write is a closure ([`Job`]) in a savepoint of its own. Callers are
//! answered only after COMMIT returned, and with `synchronous = FULL` that means on disk.
//!
//! A SQLite file serves one Switchyard process (a lock file enforces it), so that process keeps
//! its delivery leases in memory ([`leases::Leases`]) instead of writing them: a claim is a read
//! on a reader connection, and only finishing an attempt is a write. Several nodes share a
//! PostgreSQL database instead.
//!
//! The code is split by aggregate: `events` (the ack path and event reads), `deliveries`
//! (claims, attempts, retries, the queue), `subscriptions` (and clients), `sources` (and
//! rejections), `console` (the console's views), `orders` (order facts and the deriver), and
//! `writer` (the writer thread's loop).

mod claims;
mod console;
mod deliveries;
mod events;
mod leases;
mod orders;
mod reconcile;
mod rows;
mod schema;
mod sources;
mod subscriptions;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client, DeliveryFilter, DeliveryId, DeliveryRecord, EventFilter,
    EventId, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord, ReconcileRun,
    RejectionFilter, RejectionRecord, ResourceSighting, SourceId, SourceRecord, SubscriptionFilter,
    SubscriptionId, SubscriptionRecord,
};

use crate::{
    AttemptEffects, ClaimedDelivery, DeliveryNext, FailurePolicy, FailureReport, InsertOutcome,
    OrderUpdate, Polled, PurgeCounts, QueueDepth, RejectionCount, Reply, SourceStats, Store,
    StoreError, SubscriptionState, answer_after_commit,
};
use switchyard_core::model::PartnerId;

/// Most operations committed in one transaction.
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

/// What the writer thread is asked to do.
type Op = crate::writer_op::WriterOp<events::EventOp, deliveries::AttemptOp, Job>;

/// What the writer, the readers and the deriver share.
struct Shared {
    /// Deliveries this process has leased.
    leases: Mutex<leases::Leases>,
    /// The subscriptions an event fans out to, by what it is matched on; the writer fills it
    /// and every write that can change a subscription's matching clears it.
    fanout: Mutex<events::FanoutCache>,
    /// Told when events were committed, so the deriver looks.
    derive_wake: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Shared {
    fn wake_deriver(&self) {
        if let Some(wake) = self
            .derive_wake
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = wake.send(());
        }
    }

    fn clear_fanout(&self) {
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Operations for the writer thread; dropping the last sender stops it.
    writer: mpsc::UnboundedSender<Op>,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    shared: Arc<Shared>,
    /// Held while serving: the OS releases it when the process ends, even by SIGKILL.
    _lock: Option<std::fs::File>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stops the deriver thread.
        self.shared
            .derive_wake
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
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
    /// `<file>.lock` (a second `serve` on the same file is refused). Its leases live in this
    /// process: one that died left none behind, so its in-flight deliveries go out at once.
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
        let (wake_tx, wake_rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            leases: Mutex::new(leases::Leases::default()),
            fanout: Mutex::new(events::FanoutCache::default()),
            derive_wake: Mutex::new(Some(wake_tx)),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("switchyard-sqlite-writer".into())
            .spawn(move || writer::run_writer(conn, writer_shared, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: tx,
                readers: Mutex::new(Vec::new()),
                shared,
                _lock: lock,
            }),
        };
        let weak = Arc::downgrade(&store.inner);
        std::thread::Builder::new()
            .name("switchyard-sqlite-deriver".into())
            .spawn(move || run_deriver(weak, wake_rx))
            .map_err(|e| StoreError::Database(format!("cannot start the deriver: {e}")))?;
        Ok(store)
    }

    fn send(&self, op: Op) -> Result<(), StoreError> {
        self.inner.writer.send(op).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` in the writer thread as part of the next group commit.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| answer_after_commit(tx, conn.and_then(f)));
        self.send(Op::Job(job))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Self::write`] for a job that also needs what the threads share.
    async fn write_shared<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.inner.shared.clone();
        self.write(move |conn| f(conn, &shared)).await
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

    /// [`Self::read`] for a read that also needs what the threads share.
    async fn read_shared<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.inner.shared.clone();
        self.read(move |conn| f(conn, &shared)).await
    }

    /// Derives what is pending (order facts, the resource search) from events stored since the
    /// last time; returns how many events it took. The deriver thread calls it on its own; a
    /// caller that needs the derived state at once (a test) may too.
    pub async fn derive_pending(&self) -> Result<usize, StoreError> {
        self.write(|conn| orders::derive(conn, crate::derive::DERIVE_BATCH))
            .await
    }
}

/// The deriver: waits to be woken (or a second), then derives until nothing is pending.
fn run_deriver(store: Weak<Inner>, wake: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        match wake.recv_timeout(crate::derive::DERIVE_INTERVAL) {
            Ok(()) => std::thread::sleep(crate::derive::DERIVE_DELAY),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while wake.try_recv().is_ok() {}
        loop {
            let Some(inner) = store.upgrade() else {
                return;
            };
            let (tx, rx) = oneshot::channel();
            let job: Job = Box::new(move |conn| {
                answer_after_commit(
                    tx,
                    conn.and_then(|c| orders::derive(c, crate::derive::DERIVE_BATCH)),
                )
            });
            if inner.writer.send(Op::Job(job)).is_err() {
                return;
            }
            drop(inner);
            match rx.blocking_recv() {
                Ok(Ok(n)) if n >= crate::derive::DERIVE_BATCH => continue,
                Ok(Ok(_)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "sqlite: deriving failed; retried in a second");
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// Builds `?, ?, ?` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Ids as a JSON array of hex strings, for `SELECT unhex(value) FROM json_each(?)`.
fn hex_ids<'a>(ids: impl IntoIterator<Item = &'a Uuid>) -> String {
    let hex: Vec<String> = ids.into_iter().map(|id| id.simple().to_string()).collect();
    crate::stored::json_text(&hex)
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
        self.write(move |conn| subscriptions::create_client(conn, &client))
            .await
    }

    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| subscriptions::get_client(conn, &id))
            .await
    }

    async fn create_subscriptions(&self, subs: Vec<SubscriptionRecord>) -> Result<(), StoreError> {
        self.write_shared(move |conn, shared| {
            subs.iter()
                .try_for_each(|s| subscriptions::insert(conn, shared, s))
        })
        .await
    }

    async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        let id: Uuid = id.into();
        self.read(move |conn| subscriptions::select(conn, id)).await
    }

    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| subscriptions::list(conn, &filter))
            .await
    }

    async fn update_subscription(&self, sub: SubscriptionRecord) -> Result<bool, StoreError> {
        self.write_shared(move |conn, shared| subscriptions::update(conn, shared, &sub))
            .await
    }

    async fn delete_subscription(
        &self,
        id: SubscriptionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id: Uuid = id.into();
        self.write_shared(move |conn, shared| subscriptions::delete(conn, shared, id, now))
            .await
    }

    async fn insert_event(
        &self,
        event: EventRecord,
        sighting: Option<ResourceSighting>,
    ) -> Result<InsertOutcome, StoreError> {
        // Serialized here, on the caller's thread, to keep the one writer thread's work short.
        let event = crate::stored::StoredEvent::from_record(event);
        let (reply, rx) = oneshot::channel();
        self.send(Op::Event(Box::new(events::EventOp {
            event,
            sighting,
            reply,
        })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn derive_pending(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = SqliteStore::derive_pending(self).await?;
            total += n;
            if n < crate::derive::DERIVE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let id: Uuid = id.into();
        self.read(move |conn| events::get(conn, id)).await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| events::list(conn, &filter)).await
    }

    async fn create_source(&self, source: SourceRecord) -> Result<(), StoreError> {
        self.write(move |conn| sources::create(conn, &source)).await
    }

    async fn get_source(&self, id: SourceId) -> Result<Option<SourceRecord>, StoreError> {
        let id: Uuid = id.into();
        self.read(move |conn| sources::get(conn, id)).await
    }

    async fn list_sources(
        &self,
        partners: Option<Vec<PartnerId>>,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        self.read(move |conn| sources::list(conn, partners.as_deref()))
            .await
    }

    async fn update_source(&self, source: SourceRecord) -> Result<bool, StoreError> {
        self.write(move |conn| sources::update(conn, &source)).await
    }

    async fn delete_source(&self, id: SourceId) -> Result<bool, StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| sources::delete(conn, id)).await
    }

    async fn insert_rejection(&self, rejection: RejectionRecord) -> Result<(), StoreError> {
        self.write(move |conn| sources::insert_rejection(conn, &rejection))
            .await
    }

    async fn list_rejections(
        &self,
        filter: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| sources::list_rejections(conn, &filter))
            .await
    }

    async fn rejection_summary(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError> {
        self.read(move |conn| sources::rejection_summary(conn, partners.as_deref(), since))
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
        let (claimed, pace) = self
            .read_shared(move |conn, shared| {
                claims::claim(conn, shared, now, limit, lease_until, &owner)
            })
            .await?;
        if !pace.is_empty() {
            let written = self
                .write(move |conn| claims::write_pace(conn, &pace, now, lease_until))
                .await;
            if let Err(e) = written {
                let mut leases = self
                    .inner
                    .shared
                    .leases
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                for c in &claimed {
                    leases.release(c.delivery.id.0);
                }
                return Err(e);
            }
        }
        Ok(claimed)
    }

    async fn complete_attempt(
        &self,
        attempt: AttemptRecord,
        next: DeliveryNext,
        owner: &str,
        policy: FailurePolicy,
    ) -> Result<AttemptEffects, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Attempt(Box::new(deliveries::AttemptOp {
            attempt,
            next,
            owner: owner.to_string(),
            policy,
            reply,
        })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn cancel_delivery(
        &self,
        id: DeliveryId,
        owner: &str,
        at: Timestamp,
        note: &str,
    ) -> Result<bool, StoreError> {
        let id: Uuid = id.into();
        let (owner, note) = (owner.to_string(), note.to_string());
        let cancelled = self
            .write_shared(move |conn, shared| {
                deliveries::cancel(conn, shared, id, &owner, at, &note)
            })
            .await?;
        if cancelled {
            // Freed after the commit, as an attempt's lease is (see `leases`).
            self.inner
                .shared
                .leases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(id);
        }
        Ok(cancelled)
    }

    async fn poll_deliveries(
        &self,
        subscription: SubscriptionId,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Polled>, StoreError> {
        let subscription: Uuid = subscription.into();
        self.read(move |conn| deliveries::poll(conn, subscription, after, limit))
            .await
    }

    async fn pace_subscription(
        &self,
        id: SubscriptionId,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| deliveries::pace_subscription(conn, id, until))
            .await
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .shared
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release_owner(owner))
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read_shared(deliveries::next_due_at).await
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| deliveries::list(conn, &filter)).await
    }

    async fn get_delivery(
        &self,
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let id: Uuid = id.into();
        self.read(move |conn| deliveries::get(conn, id)).await
    }

    async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let id: Uuid = id.into();
        self.write_shared(move |conn, shared| deliveries::retry(conn, shared, id, now))
            .await
    }

    async fn replay(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let subscription_id: Uuid = subscription_id.into();
        self.write_shared(move |conn, shared| {
            deliveries::replay(conn, shared, subscription_id, since, until, now)
        })
        .await
    }

    async fn purge_before(&self, before: Timestamp, batch: u32) -> Result<PurgeCounts, StoreError> {
        self.write(move |conn| deliveries::purge(conn, before, batch))
            .await
    }

    async fn subscription_state(
        &self,
        id: SubscriptionId,
    ) -> Result<SubscriptionState, StoreError> {
        let id: Uuid = id.into();
        self.read(move |conn| deliveries::subscription_state(conn, id))
            .await
    }

    async fn attempts_since(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let subscription_id: Uuid = subscription_id.into();
        self.read(move |conn| deliveries::attempts_since(conn, subscription_id, since, limit))
            .await
    }

    async fn list_attempts(
        &self,
        filter: &AttemptFilter,
    ) -> Result<Vec<LoggedAttempt>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| console::list_attempts(conn, &filter))
            .await
    }

    async fn failure_report(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError> {
        self.read(move |conn| {
            console::failure_report(conn, partners.as_deref(), since, bucket_secs)
        })
        .await
    }

    async fn insert_outcome(&self, outcome: OutcomeRecord) -> Result<(), StoreError> {
        self.write(move |conn| console::insert_outcome(conn, &outcome))
            .await
    }

    async fn list_outcomes(
        &self,
        filter: &OutcomeFilter,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| console::list_outcomes(conn, &filter))
            .await
    }

    async fn source_stats(&self, source_id: SourceId) -> Result<SourceStats, StoreError> {
        let source_id: Uuid = source_id.into();
        self.read(move |conn| console::source_stats(conn, source_id))
            .await
    }

    async fn set_console_enabled(&self, partner_id: &str, enabled: bool) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| console::set_console_enabled(conn, &partner_id, enabled))
            .await
    }

    async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError> {
        self.read(console::console_disabled_partners).await
    }

    async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| orders::apply(conn, &partner_id, &changes, now))
            .await
    }

    async fn partner_orders(
        &self,
        partner_id: &str,
        since: Timestamp,
    ) -> Result<Vec<switchyard_core::performance::OrderFacts>, StoreError> {
        let partner_id = partner_id.to_string();
        self.read(move |conn| orders::partner_orders(conn, &partner_id, since))
            .await
    }

    async fn lease_reconcile(
        &self,
        source: SourceId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        force: bool,
    ) -> Result<Option<crate::ReconcileLease>, StoreError> {
        let owner = owner.to_string();
        self.write(move |conn| reconcile::lease(conn, source.into(), &owner, now, until, force))
            .await
    }

    async fn finish_reconcile(
        &self,
        run: ReconcileRun,
        owner: &str,
        cursor: Option<Timestamp>,
        next_run_at: Timestamp,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.write(move |conn| reconcile::finish(conn, &run, &owner, cursor, next_run_at))
            .await
    }

    async fn list_reconcile_runs(
        &self,
        source: Option<SourceId>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ReconcileRun>, StoreError> {
        self.read(move |conn| reconcile::list(conn, source.map(Into::into), since, limit))
            .await
    }

    async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError> {
        self.read_shared(move |conn, shared| deliveries::queue_depth(conn, shared, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_connection(&dir.path().join("test.db")).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        (dir, conn)
    }

    /// SQLite's plan of a statement with one parameter, bound to 0: one line per step.
    fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain")
            .query_map([0i64], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    /// The dispatcher runs these on every turn with new values bound: none may be re-prepared
    /// each time (SQLite does so when a plan depends on a bound value, as with a bare
    /// `LIMIT ?`).
    #[test]
    fn hot_statements_are_not_re_prepared() {
        let (_dir, conn) = migrated();
        for (name, sql) in [
            ("claim candidates", claims::CLAIM_CANDIDATES_SQL),
            ("due window", deliveries::DUE_WINDOW_SQL),
        ] {
            let mut statement = conn.prepare(sql).expect("prepare");
            let count = statement.parameter_count();
            for n in 0..5i64 {
                let values: Vec<i64> = (0..count as i64).map(|i| n * 10 + i + 1).collect();
                let rows = statement
                    .query_map(rusqlite::params_from_iter(values.iter()), |_| Ok(()))
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

    /// A claim reads past every delivery in flight (they are among the earliest due): from the
    /// due index alone, never a row each.
    #[test]
    fn claims_read_candidates_from_the_due_index_alone() {
        let (_dir, conn) = migrated();
        let plan = query_plan(&conn, claims::CLAIM_CANDIDATES_SQL);
        assert_eq!(
            plan,
            ["SEARCH deliveries USING COVERING INDEX deliveries_due (next_attempt_at<?)"],
            "no table row read, no sort"
        );
    }

    /// The queue-depth scrape must stay cheap with millions of finished deliveries: SQLite
    /// has to answer it from the partial index on pending rows, never by scanning the table.
    #[test]
    fn queue_depth_reads_only_the_pending_index() {
        let (_dir, conn) = migrated();
        let plan = query_plan(&conn, deliveries::QUEUE_DEPTH_SQL);
        assert!(
            plan.iter().all(|s| !s.starts_with("SCAN")
                || s.contains("USING INDEX deliveries_due")
                || s.contains("USING COVERING INDEX deliveries_due")),
            "plan: {plan:?}"
        );
        assert!(
            plan.iter().any(|s| s.contains("deliveries_due")),
            "plan: {plan:?}"
        );
    }
}
