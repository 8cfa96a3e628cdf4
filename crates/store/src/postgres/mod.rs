//! The PostgreSQL store, for several Switchyard nodes on one database.
//!
//! Like the SQLite store, every write joins a batch transaction that a writer connection runs
//! and commits once (group commit), and callers are answered only after COMMIT. What differs is
//! that each statement is a round trip to the server, so the batch is run set-wise: the events
//! of a batch are stored with one multi-row statement per table (`INSERT … SELECT FROM
//! unnest(…)`), and so are the attempts it records and the deliveries they move on; independent
//! statements are sent together (tokio-postgres pipelines the queries of one connection that are
//! awaited together), and the COMMIT is sent right behind a batch's last statements rather than
//! after their answers (`tail`); a batch's due deliveries wake the other nodes with one
//! `NOTIFY`. A batch's typed operations run without a savepoint each; if one fails, the transaction is
//! rolled back and they run again one by one, each in a savepoint, so one bad operation costs
//! only its own caller. Other writes are closures, each in a savepoint.
//!
//! A node has one writer connection: a batch's rows are written set-wise, so more writers only
//! made more, smaller transactions contending for the same index pages (with four per node,
//! two nodes carried 66-80% of what one did; with one, 91-96%, and one node no less). Writers
//! of several nodes are safe together (row locks, unique indexes with `ON CONFLICT`,
//! `SKIP LOCKED`). Nodes share deliveries by leasing them with `FOR UPDATE SKIP
//! LOCKED` in one statement; a commit that makes deliveries due sends `NOTIFY switchyard_due`,
//! which every node's listener turns into a wake-up of its dispatcher. Connections come from
//! deadpool pools and are replaced when they break, so the store recovers by itself when the
//! database comes back.
//!
//! The code is split by aggregate like the SQLite store's: `events`, `deliveries`,
//! `subscriptions`, `sources`, `console`, `orders` (order facts and the deriver); `writer` runs
//! the batches and `tail` lets their COMMIT go out behind their last statements.

mod attempts;
mod console;
mod deliveries;
mod events;
mod orders;
mod reconcile;
mod rows;
mod schema;
mod sources;
mod subscriptions;
mod tail;
mod writer;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Config, NoTls};
use uuid::Uuid;

use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client as ApiClient, DeliveryFilter, DeliveryId, DeliveryRecord,
    EventFilter, EventId, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord, ReconcileRun,
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
/// Writer connections per node (see the module's comment for why one).
const WRITERS: usize = 1;
/// Reader connections per node.
const READERS: usize = 8;
/// Claim connections per node (one dispatcher claims one batch at a time).
const CLAIMERS: usize = 2;
const CHANNEL: &str = "switchyard_due";

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message ("relation … does not exist"), not only "db error".
        match e.as_db_error() {
            Some(db) => StoreError::Database(format!("{e}: {}", db.message())),
            None => StoreError::Database(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Database(format!("no PostgreSQL connection: {other}")),
        }
    }
}

/// A pooled connection. Its statements are prepared once and cached on it (`prepare_cached`):
/// parsing and planning on every call dominated the writer's time in profiles.
pub(crate) type Conn = deadpool_postgres::Object;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) async fn execute(conn: &Conn, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
    let statement = conn.prepare_cached(sql).await?;
    Ok(conn.execute(&statement, params).await?)
}

pub(crate) async fn query(
    conn: &Conn,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = conn.prepare_cached(sql).await?;
    Ok(conn.query(&statement, params).await?)
}

pub(crate) async fn query_one(
    conn: &Conn,
    sql: &str,
    params: Params<'_>,
) -> Result<tokio_postgres::Row, StoreError> {
    let statement = conn.prepare_cached(sql).await?;
    Ok(conn.query_one(&statement, params).await?)
}

pub(crate) async fn query_opt(
    conn: &Conn,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let statement = conn.prepare_cached(sql).await?;
    Ok(conn.query_opt(&statement, params).await?)
}

/// Tells every node that deliveries are due (sent when the transaction commits).
pub(crate) async fn notify_due(conn: &Conn) -> Result<(), StoreError> {
    conn.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A write: runs on the writer's connection inside the batch transaction (or is told why it
/// cannot), says whether it succeeded, and hands back what to tell its caller after COMMIT.
type Job =
    Box<dyn for<'a> FnOnce(Result<&'a Conn, StoreError>) -> BoxFut<'a, (bool, Reply)> + Send>;

/// What the writers are asked to do.
type Op = crate::writer_op::WriterOp<events::EventOp, attempts::AttemptOp, Job>;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::UnboundedSender<Op>,
    /// Connections for reads.
    readers: Pool,
    /// The deriver's connection, planned like the writers'.
    deriver: Pool,
    /// Connections for claims and the due window, whose plans must walk the due index in order
    /// whatever the statistics say: a queue table's statistics lag its churn (a fresh database
    /// filling up, a burst), and a plan that sorts every due delivery instead made a claim cost
    /// 19 ms instead of 0.3.
    claimers: Pool,
    /// Woken when any node commits deliveries that are due.
    wake: Arc<Notify>,
    claims: deliveries::ClaimState,
    /// The writers, the listener and the deriver: they end with the store.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            task.abort();
        }
    }
}

fn pool(config: &Config, size: usize) -> Result<Pool, StoreError> {
    // No JIT: every statement here is short, and a mis-estimated cost (a queue table's
    // statistics lagging its churn) made PostgreSQL spend 400 ms compiling a claim.
    let mut config = config.clone();
    config.options(format!(
        "{} -c jit=off",
        config.get_options().unwrap_or_default()
    ));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A broken connection is noticed (`is_closed`) and replaced; nothing else is run.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StoreError::Database(format!("cannot build a connection pool: {e}")))
}

impl PostgresStore {
    /// Connects, applies the schema when `migrate` is set, and starts the writers, the
    /// listener and the deriver.
    pub async fn connect(url: &str, migrate: bool) -> Result<PostgresStore, StoreError> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        Self::with_config(config, migrate).await
    }

    /// Connects using a schema of its own (created if missing): for tests and for several hubs
    /// in one database.
    pub async fn connect_in_schema(
        url: &str,
        schema: &str,
        migrate: bool,
    ) -> Result<PostgresStore, StoreError> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Database(
                "schema names are letters, digits and _".into(),
            ));
        }
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let (admin, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        admin
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
        drop(admin);
        driver.abort();
        config.options(format!("-c search_path={schema}"));
        Self::with_config(config, migrate).await
    }

    async fn with_config(config: Config, migrate: bool) -> Result<PostgresStore, StoreError> {
        let readers = pool(&config, READERS)?;
        if migrate {
            let conn = readers.get().await?;
            schema::migrate(&conn).await?;
        } else {
            // Fail now, not on first use, when the database cannot be reached.
            drop(readers.get().await?);
        }
        // The writers' statements touch a handful of rows each, by key: nested loops over the
        // keys' indexes are right whatever the statistics say. A fresh or fast-growing table's
        // statistics lag (and a statement's plan is kept from its first uses, when the table
        // was small), and then PostgreSQL hash-joined a batch's keys against a sequential scan
        // of the whole table (order facts, deliveries), once per batch; with hash joins off, it
        // scanned every pending delivery (a bitmap scan) once per attempt recorded.
        let mut writer_config = config.clone();
        writer_config.options(format!(
            "{} -c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off \
             -c enable_bitmapscan=off",
            config.get_options().unwrap_or_default()
        ));
        let writers = pool(&writer_config, WRITERS)?;
        let deriver = pool(&writer_config, 1)?;
        let mut claim_config = config.clone();
        claim_config.options(format!(
            "{} -c enable_sort=off -c enable_bitmapscan=off -c enable_hashjoin=off -c enable_mergejoin=off",
            config.get_options().unwrap_or_default()
        ));
        let claimers = pool(&claim_config, CLAIMERS)?;
        let wake = Arc::new(Notify::new());
        let derive_wake = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for _ in 0..WRITERS {
            tasks.push(tokio::spawn(writer::run_writer(
                writers.clone(),
                rx.clone(),
                derive_wake.clone(),
            )));
        }
        tasks.push(tokio::spawn(run_listener(config.clone(), wake.clone())));
        let inner = Arc::new(Inner {
            writer: tx,
            readers,
            deriver,
            claimers,
            wake,
            claims: deliveries::ClaimState::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        tasks.push(tokio::spawn(run_deriver(
            Arc::downgrade(&inner),
            derive_wake,
        )));
        *inner.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(PostgresStore { inner })
    }

    /// Applies the schema and returns.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let migrated = schema::migrate(&client).await;
        drop(client);
        driver.abort();
        Ok(migrated?)
    }

    fn send(&self, op: Op) -> Result<(), StoreError> {
        self.inner.writer.send(op).map_err(|_| StoreError::Closed)
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Conn) -> BoxFut<'a, Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Ok(conn) => f(conn).await,
                    Err(e) => Err(e),
                };
                answer_after_commit(tx, result)
            })
        });
        self.send(Op::Job(job))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn reader(&self) -> Result<Conn, StoreError> {
        Ok(self.inner.readers.get().await?)
    }
}

/// The deriver: waits to be woken (or a second), then derives until nothing is pending. Every
/// node runs one; they share the queue with `SKIP LOCKED`.
async fn run_deriver(store: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = wake.notified() => tokio::time::sleep(crate::derive::DERIVE_DELAY).await,
            _ = tokio::time::sleep(crate::derive::DERIVE_INTERVAL) => {}
        }
        loop {
            let Some(inner) = store.upgrade() else {
                return;
            };
            let store = PostgresStore { inner };
            match store.derive_once().await {
                Ok(n) if n >= crate::derive::DERIVE_BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "postgres: deriving failed; retried in a second");
                    break;
                }
            }
        }
    }
}

impl PostgresStore {
    /// One derive transaction, on a connection of its own: it holds no writer's batch (and so
    /// no acknowledgement) while it runs.
    async fn derive_once(&self) -> Result<usize, StoreError> {
        let conn = self.inner.deriver.get().await?;
        conn.batch_execute("BEGIN").await?;
        let result = orders::derive(&conn, crate::derive::DERIVE_BATCH).await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = conn.batch_execute(end).await;
        let taken = result?;
        ended?;
        Ok(taken)
    }
}

/// Listens for `NOTIFY switchyard_due` and wakes the dispatcher; reconnects when the database
/// goes away, and wakes once after reconnecting in case a notification was missed.
async fn run_listener(config: Config, wake: Arc<Notify>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<()>();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                let _ = tx.send(());
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    wake.notify_one();
                    while rx.recv().await.is_some() {
                        // Notifications that arrived together are one wake-up.
                        while rx.try_recv().is_ok() {}
                        wake.notify_one();
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, "postgres listener cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Dynamic SQL with numbered parameters.
pub(crate) struct Sql {
    pub text: String,
    params: Vec<Param>,
}

type Param = Box<dyn ToSql + Sync + Send>;

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Appends a fragment whose `{}` (each of them) is the next parameter.
    pub fn and<T: ToSql + Sync + Send + 'static>(&mut self, fragment: &str, value: T) {
        let placeholder = self.bind(value);
        self.text.push_str(&fragment.replace("{}", &placeholder));
    }

    /// Adds a parameter; its placeholder (`$n`).
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

pub(crate) use crate::stored::json_text;

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn wakeups(&self) -> Option<Arc<Notify>> {
        Some(self.inner.wake.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.reader().await?;
        conn.batch_execute("SELECT 1").await?;
        Ok(())
    }

    async fn create_client(&self, client: ApiClient) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move { subscriptions::create_client(conn, &client).await })
        })
        .await
    }

    async fn get_client(&self, id: &str) -> Result<Option<ApiClient>, StoreError> {
        subscriptions::get_client(&self.reader().await?, id).await
    }

    async fn create_subscriptions(&self, subs: Vec<SubscriptionRecord>) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                for s in &subs {
                    subscriptions::insert(conn, s).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        let id: Uuid = id.into();
        subscriptions::select(&self.reader().await?, id).await
    }

    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        subscriptions::list(&self.reader().await?, filter).await
    }

    async fn update_subscription(&self, sub: SubscriptionRecord) -> Result<bool, StoreError> {
        self.write(move |conn| Box::pin(async move { subscriptions::update(conn, &sub).await }))
            .await
    }

    async fn delete_subscription(
        &self,
        id: SubscriptionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| Box::pin(subscriptions::delete(conn, id, now)))
            .await
    }

    async fn insert_event(
        &self,
        event: EventRecord,
        sighting: Option<ResourceSighting>,
    ) -> Result<InsertOutcome, StoreError> {
        // Serialized here, on the caller's task, to keep the writers' work short.
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
            let n = self.derive_once().await?;
            total += n;
            if n < crate::derive::DERIVE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let id: Uuid = id.into();
        events::get(&self.reader().await?, id).await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        events::list(&self.reader().await?, filter).await
    }

    async fn create_source(&self, source: SourceRecord) -> Result<(), StoreError> {
        self.write(move |conn| Box::pin(async move { sources::create(conn, &source).await }))
            .await
    }

    async fn get_source(&self, id: SourceId) -> Result<Option<SourceRecord>, StoreError> {
        let id: Uuid = id.into();
        sources::get(&self.reader().await?, id).await
    }

    async fn list_sources(
        &self,
        partners: Option<Vec<PartnerId>>,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        sources::list(&self.reader().await?, partners).await
    }

    async fn update_source(&self, source: SourceRecord) -> Result<bool, StoreError> {
        self.write(move |conn| Box::pin(async move { sources::update(conn, &source).await }))
            .await
    }

    async fn delete_source(&self, id: SourceId) -> Result<bool, StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| Box::pin(sources::delete(conn, id)))
            .await
    }

    async fn insert_rejection(&self, rejection: RejectionRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move { sources::insert_rejection(conn, &rejection).await })
        })
        .await
    }

    async fn list_rejections(
        &self,
        filter: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError> {
        sources::list_rejections(&self.reader().await?, filter).await
    }

    async fn rejection_summary(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError> {
        sources::rejection_summary(&self.reader().await?, partners, since).await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let conn = self.inner.claimers.get().await?;
        deliveries::claim(
            &conn,
            &self.inner.readers,
            &self.inner.claims,
            now,
            limit,
            lease_until,
            owner,
        )
        .await
    }

    async fn complete_attempt(
        &self,
        attempt: AttemptRecord,
        next: DeliveryNext,
        owner: &str,
        policy: FailurePolicy,
    ) -> Result<AttemptEffects, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Attempt(Box::new(attempts::AttemptOp {
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
        self.write(move |conn| {
            Box::pin(async move { deliveries::cancel(conn, id, &owner, at, &note).await })
        })
        .await
    }

    async fn poll_deliveries(
        &self,
        subscription: SubscriptionId,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Polled>, StoreError> {
        deliveries::poll(&self.reader().await?, subscription.into(), after, limit).await
    }

    async fn pace_subscription(
        &self,
        id: SubscriptionId,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| Box::pin(deliveries::pace_subscription(conn, id, until)))
            .await
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_string();
        self.write(move |conn| {
            Box::pin(async move { deliveries::release_leases(conn, &owner).await })
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        deliveries::next_due_at(&self.inner.claimers.get().await?).await
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        deliveries::list(&self.reader().await?, filter).await
    }

    async fn get_delivery(
        &self,
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let id: Uuid = id.into();
        deliveries::get(&self.reader().await?, id).await
    }

    async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let id: Uuid = id.into();
        self.write(move |conn| Box::pin(deliveries::retry(conn, id, now)))
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
        self.write(move |conn| {
            Box::pin(deliveries::replay(conn, subscription_id, since, until, now))
        })
        .await
    }

    async fn purge_before(&self, before: Timestamp, batch: u32) -> Result<PurgeCounts, StoreError> {
        self.write(move |conn| Box::pin(deliveries::purge(conn, before, batch)))
            .await
    }

    async fn subscription_state(
        &self,
        id: SubscriptionId,
    ) -> Result<SubscriptionState, StoreError> {
        let id: Uuid = id.into();
        deliveries::subscription_state(&self.reader().await?, id).await
    }

    async fn attempts_since(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let subscription_id: Uuid = subscription_id.into();
        deliveries::attempts_since(&self.reader().await?, subscription_id, since, limit).await
    }

    async fn list_attempts(
        &self,
        filter: &AttemptFilter,
    ) -> Result<Vec<LoggedAttempt>, StoreError> {
        console::list_attempts(&self.reader().await?, filter).await
    }

    async fn failure_report(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError> {
        console::failure_report(&self.reader().await?, partners, since, bucket_secs).await
    }

    async fn insert_outcome(&self, outcome: OutcomeRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move { console::insert_outcome(conn, &outcome).await })
        })
        .await
    }

    async fn list_outcomes(
        &self,
        filter: &OutcomeFilter,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        console::list_outcomes(&self.reader().await?, filter).await
    }

    async fn source_stats(&self, source_id: SourceId) -> Result<SourceStats, StoreError> {
        let source_id: Uuid = source_id.into();
        console::source_stats(&self.reader().await?, source_id).await
    }

    async fn set_console_enabled(&self, partner_id: &str, enabled: bool) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| {
            Box::pin(async move { console::set_console_enabled(conn, &partner_id, enabled).await })
        })
        .await
    }

    async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError> {
        console::console_disabled_partners(&self.reader().await?).await
    }

    async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |conn| {
            Box::pin(async move { orders::apply(conn, &partner_id, &changes, now).await })
        })
        .await
    }

    async fn partner_orders(
        &self,
        partner_id: &str,
        since: Timestamp,
    ) -> Result<Vec<switchyard_core::performance::OrderFacts>, StoreError> {
        orders::partner_orders(&self.reader().await?, partner_id, since).await
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
        self.write(move |conn| {
            Box::pin(async move {
                reconcile::lease(conn, source.into(), &owner, now, until, force).await
            })
        })
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
        self.write(move |conn| {
            Box::pin(
                async move { reconcile::finish(conn, &run, &owner, cursor, next_run_at).await },
            )
        })
        .await
    }

    async fn list_reconcile_runs(
        &self,
        source: Option<SourceId>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ReconcileRun>, StoreError> {
        reconcile::list(&self.reader().await?, source.map(Into::into), since, limit).await
    }

    async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError> {
        deliveries::queue_depth(&self.reader().await?, now).await
    }
}
