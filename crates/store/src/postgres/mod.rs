//! The PostgreSQL store, for several Switchyard nodes on one database.
//!
//! Like the SQLite store, every write is a job run by a writer connection inside a batch
//! transaction, each job in its own savepoint, and answered only after COMMIT (group commit).
//! A node keeps several writer connections, each taking the next batch when its last is
//! committed: a write is a sequence of round trips to the server, and one connection spent its
//! time waiting on them. They are as safe as several nodes are; a batch PostgreSQL aborts (a
//! deadlock between two batches, say) answers every job in it with the error, and nothing of it
//! is acknowledged.
//! Nodes share deliveries by leasing them with `FOR UPDATE SKIP LOCKED`; a commit that makes
//! deliveries due sends `NOTIFY switchyard_due`, which every node's listener connection turns
//! into a wake-up of its dispatcher. Connections that break are opened again on next use, so the
//! store recovers by itself when the database comes back.

mod rows;
mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Config, NoTls, Statement};
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis as ms};
use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client as ApiClient, DeliveryFilter, DeliveryRecord,
    DeliveryStatus, EventFilter, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord,
    RejectionFilter, RejectionRecord, ResourceSighting, SourceRecord, SubscriptionFilter,
    SubscriptionRecord,
};

use crate::{
    AttemptEffects, BucketCount, ClaimedDelivery, DeliveryNext, FailurePolicy, FailureReport,
    InsertOutcome, OrderUpdate, PurgeCounts, QueueDepth, RejectionCount, Reply, SourceStats, Store,
    StoreError, SubscriptionState, answer_after_commit, pacing,
};
use rows::{
    ATTEMPT_COLUMNS, CLIENT_COLUMNS, DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, EVENT_COLUMN_COUNT,
    EVENT_COLUMNS, OUTCOME_COLUMNS, REJECTION_COLUMNS, SOURCE_COLUMNS, SUBSCRIPTION_COLUMNS,
};

const MAX_BATCH: usize = 512;
/// Writer connections per node.
const WRITERS: usize = 4;
const READERS: usize = 8;
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

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A write: runs on the writer's connection inside the batch transaction (or is told why it
/// cannot), says whether it succeeded, and hands back what to tell its caller after COMMIT.
type Job =
    Box<dyn for<'a> FnOnce(Result<&'a Conn, StoreError>) -> BoxFut<'a, (bool, Reply)> + Send>;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    writer: mpsc::UnboundedSender<Job>,
    readers: Mutex<Vec<Conn>>,
    /// Woken when any node commits deliveries that are due.
    wake: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn connect(config: &Config) -> Result<Conn, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(Conn {
        client,
        statements: Mutex::new(HashMap::new()),
    })
}

/// Statements one connection keeps prepared, at most; past it the cache starts over (list
/// queries vary with their filters).
const STATEMENTS: usize = 256;

/// A connection with its prepared statements: each SQL text is parsed and planned once per
/// connection, not on every call (a round trip and a parse each time, which dominated the one
/// writer connection's time in profiles).
pub(crate) struct Conn {
    client: tokio_postgres::Client,
    statements: Mutex<HashMap<String, Statement>>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        let mut statements = self.statements.lock().unwrap_or_else(|p| p.into_inner());
        if statements.len() >= STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub async fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await
    }

    pub async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await
    }

    pub async fn query_one(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, params).await
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await
    }

    pub async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client.batch_execute(sql).await
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

impl PostgresStore {
    /// Connects, applies the schema when `migrate` is set, and starts the writer and listener.
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
        let admin = connect(&config).await?;
        admin
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
        config.options(format!("-c search_path={schema}"));
        Self::with_config(config, migrate).await
    }

    async fn with_config(config: Config, migrate: bool) -> Result<PostgresStore, StoreError> {
        let first = connect(&config).await?;
        if migrate {
            schema::migrate(&first.client).await?;
        }
        let wake = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(run_writer(config.clone(), rx.clone()));
        }
        let listener = tokio::spawn(run_listener(config.clone(), wake.clone()));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                config,
                writer: tx,
                readers: Mutex::new(vec![first]),
                wake,
                listener,
            }),
        })
    }

    /// Applies the schema and returns.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let client = connect(&config).await?;
        schema::migrate(&client.client).await?;
        Ok(())
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Conn) -> BoxFut<'a, Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let result = match client {
                    Ok(client) => f(client).await,
                    Err(e) => Err(e),
                };
                answer_after_commit(tx, result)
            })
        });
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn reader(&self) -> Result<Conn, StoreError> {
        let pooled = {
            let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|c| !c.is_closed());
            idle.pop()
        };
        match pooled {
            Some(client) => Ok(client),
            None => connect(&self.inner.config).await,
        }
    }

    fn give_back(&self, client: Conn) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < READERS {
            idle.push(client);
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.reader().await?;
        let result = client.query(sql, params).await;
        self.give_back(client);
        Ok(result?)
    }
}

async fn fail_all(batch: Vec<Job>, err: StoreError) {
    for job in batch {
        let (_, reply) = job(Err(err.clone())).await;
        reply(Err(err.clone()));
    }
}

/// The writer: takes every job waiting, runs them in one transaction, commits once.
async fn run_writer(config: Config, jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    let mut conn: Option<Conn> = None;
    loop {
        // One writer at a time takes what is waiting; the others are busy committing.
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = match connect(&config).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "postgres: cannot connect the writer");
                    fail_all(batch, e).await;
                    continue;
                }
            };
        }
        let Some(client) = conn.as_ref() else {
            continue;
        };
        if let Err(e) = client.batch_execute("BEGIN").await {
            fail_all(batch, e.into()).await;
            continue;
        }
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(e) = client.batch_execute("SAVEPOINT job").await {
                let (_, reply) = job(Err(e.into())).await;
                replies.push(reply);
                continue;
            }
            let (ok, reply) = job(Ok(client)).await;
            let end = if ok {
                "RELEASE SAVEPOINT job"
            } else {
                "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
            };
            if let Err(e) = client.batch_execute(end).await {
                tracing::warn!(error = %e, "postgres: cannot end a savepoint");
            }
            replies.push(reply);
        }
        let committed = client
            .batch_execute("COMMIT")
            .await
            .map_err(StoreError::from);
        if let Err(e) = &committed {
            tracing::warn!(error = %e, "postgres: commit failed; the batch is not acknowledged");
            let _ = client.batch_execute("ROLLBACK").await;
        }
        for reply in replies {
            reply(committed.clone());
        }
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

/// Tells every node that deliveries are due (sent when the transaction commits).
async fn notify_due(client: &Conn) -> Result<(), StoreError> {
    client.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

/// Keeps a subscription's failure streak after an attempt (see `Store::complete_attempt`).
async fn streak(
    client: &Conn,
    sub_id: &str,
    a: &AttemptRecord,
    policy: FailurePolicy,
) -> Result<AttemptEffects, StoreError> {
    let row = client
        .query_one(
            "SELECT consecutive_failures, breaker_threshold FROM subscriptions WHERE id = $1",
            &[&sub_id],
        )
        .await?;
    let (failures, threshold): (i32, i32) = (row.try_get(0)?, row.try_get(1)?);
    if a.succeeded {
        // Only a streak to clear is written: in the steady state a success takes no lock on the
        // subscription row, so nodes delivering for one subscription never wait on each other.
        client
            .execute(
                "UPDATE subscriptions SET consecutive_failures = 0, failing_since = NULL,
                    breaker_until = NULL
                 WHERE id = $1 AND (consecutive_failures > 0 OR failing_since IS NOT NULL
                                  OR breaker_until IS NOT NULL)",
                &[&sub_id],
            )
            .await?;
        return Ok(AttemptEffects {
            disabled: None,
            recovered: failures >= threshold,
        });
    }
    let failing_since: i64 = client
        .query_one(
            "UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1,
                failing_since = COALESCE(failing_since, $2),
                breaker_until = CASE WHEN consecutive_failures + 1 >= breaker_threshold
                    THEN $3 ELSE breaker_until END
             WHERE id = $1 RETURNING failing_since",
            &[&sub_id, &ms(a.attempted_at), &ms(policy.reopen_at)],
        )
        .await?
        .try_get(0)?;
    let reason = if policy.gone {
        Some("the endpoint answered 410 Gone".to_string())
    } else if failing_since <= ms(policy.disable_if_failing_since) {
        Some(format!(
            "failing continuously since {}",
            from_millis(failing_since)
        ))
    } else {
        None
    };
    let Some(reason) = reason else {
        return Ok(AttemptEffects::default());
    };
    let disabled = client
        .execute(
            "UPDATE subscriptions SET status = 'INACTIVE', disabled_reason = $2
             WHERE id = $1 AND status = 'ACTIVE'",
            &[&sub_id, &reason],
        )
        .await?;
    Ok(AttemptEffects {
        disabled: (disabled == 1).then_some(reason),
        recovered: false,
    })
}

/// Dynamic SQL with numbered parameters.
struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Appends a fragment whose `{}` is the next parameter.
    fn and<T: ToSql + Sync + Send + 'static>(&mut self, fragment: &str, value: T) {
        self.params.push(Box::new(value));
        let placeholder = format!("${}", self.params.len());
        self.text.push_str(&fragment.replace("{}", &placeholder));
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

type Param = Box<dyn ToSql + Sync + Send>;

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A subscription's columns as `$1`…`$24`, in the order the insert and the update name them.
fn subscription_params(s: &SubscriptionRecord) -> Vec<Param> {
    let int = |n: u32| n.min(i32::MAX as u32) as i32;
    vec![
        Box::new(s.id.to_string()),
        Box::new(s.partner_id.clone()),
        Box::new(s.client_id.clone()),
        Box::new(json_text(&s.event_types)),
        Box::new(s.event_version.clone()),
        Box::new(s.resource_name.clone()),
        Box::new(s.event_url.clone()),
        Box::new(json_text(&s.headers)),
        Box::new(s.auth_sealed.clone()),
        Box::new(s.status.as_str().to_string()),
        Box::new(json_text(&s.retry_policy)),
        Box::new(s.signing_secret_sealed.clone()),
        Box::new(s.previous_secret_sealed.clone()),
        Box::new(s.previous_secret_expires_at.map(ms)),
        Box::new(ms(s.created_at)),
        Box::new(ms(s.updated_at)),
        Box::new(s.ordering.as_str().to_string()),
        Box::new(s.max_in_flight.map(int)),
        Box::new(s.rate_limit.map(|r| r.per_second)),
        Box::new(s.rate_limit.map(|r| r.burst)),
        Box::new(s.disabled_reason.clone()),
        Box::new(int(s.breaker.failure_threshold)),
        Box::new(s.breaker.probe_interval_seconds as i64),
        Box::new(s.auto_disable_after_secs as i64),
        Box::new(s.envelope.as_str()),
    ]
}

async fn insert_subscription(client: &Conn, s: &SubscriptionRecord) -> Result<(), StoreError> {
    let inserted = client
        .execute(
            "INSERT INTO subscriptions (id, partner_id, client_id, event_types, event_version,
                resource_name, event_url, headers, auth_sealed, status, retry_policy,
                signing_secret_sealed, previous_secret_sealed, previous_secret_expires_at,
                created_at, updated_at, ordering, max_in_flight, rate_per_sec, rate_burst, disabled_reason,
                 breaker_threshold, breaker_probe_secs, auto_disable_after_secs, envelope)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21, $22, $23, $24, $25)
             ON CONFLICT (id) DO NOTHING",
            &refs(&subscription_params(s)),
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("subscription {}", s.id)));
    }
    index_event_types(client, s).await
}

async fn index_event_types(client: &Conn, s: &SubscriptionRecord) -> Result<(), StoreError> {
    let id = s.id.to_string();
    client
        .execute(
            "DELETE FROM subscription_event_types WHERE subscription_id = $1",
            &[&id],
        )
        .await?;
    for event_type in &s.event_types {
        client
            .execute(
                "INSERT INTO subscription_event_types (partner_id, event_type, subscription_id)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&s.partner_id, event_type, &id],
            )
            .await?;
    }
    Ok(())
}

async fn select_subscription(
    client: &Conn,
    id: &str,
) -> Result<Option<SubscriptionRecord>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.id = $1"),
            &[&id],
        )
        .await?;
    row.map(|r| rows::subscription_at(&r, 0)).transpose()
}

async fn select_delivery(client: &Conn, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.id = $1"),
            &[&id],
        )
        .await?;
    row.map(|r| rows::delivery(&r)).transpose()
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn wakeups(&self) -> Option<Arc<Notify>> {
        Some(self.inner.wake.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }

    async fn create_client(&self, c: ApiClient) -> Result<(), StoreError> {
        self.write(move |client| Box::pin(async move {
            let inserted = client
                .execute(
                    "INSERT INTO clients (id, name, secret_hash, partners, scopes, admin, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    &[&c.id, &c.name, &c.secret_hash, &json_text(&c.partners), &json_text(&c.scopes), &c.admin, &ms(c.created_at)],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("client {}", c.id)));
            }
            Ok(())
        }))
        .await
    }

    async fn get_client(&self, id: &str) -> Result<Option<ApiClient>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"),
                &[&id],
            )
            .await?;
        rows.first().map(rows::client).transpose()
    }

    async fn create_subscriptions(&self, subs: Vec<SubscriptionRecord>) -> Result<(), StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                for s in &subs {
                    insert_subscription(client, s).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn get_subscription(&self, id: Uuid) -> Result<Option<SubscriptionRecord>, StoreError> {
        let client = self.reader().await?;
        let found = select_subscription(&client, &id.to_string()).await;
        self.give_back(client);
        found
    }

    async fn list_subscriptions(
        &self,
        f: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE TRUE"
        ));
        if let Some(partners) = &f.partners {
            sql.and(" AND s.partner_id = ANY({})", partners.clone());
        }
        if let Some(id) = f.subscription_id {
            sql.and(" AND s.id = {}", id.to_string());
        }
        if let Some(t) = &f.event_type {
            sql.and(" AND EXISTS (SELECT 1 FROM subscription_event_types t WHERE t.subscription_id = s.id AND t.event_type = {})", t.clone());
        }
        if let Some(r) = &f.resource_name {
            sql.and(" AND s.resource_name = {}", r.clone());
        }
        if let Some(st) = f.status {
            sql.and(" AND s.status = {}", st.as_str().to_string());
        }
        sql.text.push_str(" ORDER BY s.id");
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(|r| rows::subscription_at(r, 0)).collect()
    }

    async fn update_subscription(&self, s: SubscriptionRecord) -> Result<bool, StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                let updated = client
                .execute(
                    "UPDATE subscriptions SET partner_id = $2, client_id = $3, event_types = $4,
                        event_version = $5, resource_name = $6, event_url = $7, headers = $8,
                        auth_sealed = $9, status = $10, retry_policy = $11,
                        signing_secret_sealed = $12, previous_secret_sealed = $13,
                        previous_secret_expires_at = $14, created_at = $15, updated_at = $16,
                        ordering = $17, max_in_flight = $18, rate_per_sec = $19, rate_burst = $20,
                        disabled_reason = $21, breaker_threshold = $22, breaker_probe_secs = $23,
                        auto_disable_after_secs = $24, envelope = $25,
                        consecutive_failures = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                            THEN 0 ELSE consecutive_failures END,
                        failing_since = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                            THEN NULL ELSE failing_since END,
                        breaker_until = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                            THEN NULL ELSE breaker_until END
                     WHERE id = $1",
                    &refs(&subscription_params(&s)),
                )
                .await?;
                if updated == 1 {
                    index_event_types(client, &s).await?;
                    // A resumed subscription's held deliveries may be due on any node.
                    notify_due(client).await?;
                }
                Ok(updated == 1)
            })
        })
        .await
    }

    async fn delete_subscription(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |client| Box::pin(async move {
            let id = id.to_string();
            let deleted = client.execute("DELETE FROM subscriptions WHERE id = $1", &[&id]).await?;
            client.execute("DELETE FROM subscription_event_types WHERE subscription_id = $1", &[&id]).await?;
            client
                .execute(
                    "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
                        last_error = 'subscription deleted', locked_until = NULL, lease_owner = NULL,
                        updated_at = $2
                     WHERE subscription_id = $1 AND status = 'pending'",
                    &[&id, &ms(now)],
                )
                .await?;
            Ok(deleted == 1)
        }))
        .await
    }

    async fn insert_event(
        &self,
        mut e: EventRecord,
        sighting: Option<ResourceSighting>,
    ) -> Result<InsertOutcome, StoreError> {
        let order = e.normalized.as_ref().and_then(crate::derive::order_update);
        self.write(move |client| Box::pin(async move {
            if let Some(key) = &e.dedup_key {
                // Two writers (connections or nodes) storing the same event queue up here, so
                // the second sees the first's row once it commits and answers Duplicate.
                client
                    .execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0))",
                        &[&e.origin, key],
                    )
                    .await?;
                let existing = client
                    .query_opt("SELECT id FROM events WHERE origin = $1 AND dedup_key = $2", &[&e.origin, key])
                    .await?;
                if let Some(row) = existing {
                    let id: String = row.try_get(0)?;
                    let event_id = Uuid::parse_str(&id).map_err(|err| StoreError::Corrupt(format!("event id: {err}")))?;
                    // Counted per source for the console; insert-only, so nodes never contend.
                    client
                        .execute(
                            "INSERT INTO duplicates (origin, event_id, received_at) VALUES ($1, $2, $3)",
                            &[&e.origin, &id, &ms(e.received_at)],
                        )
                        .await?;
                    return Ok(InsertOutcome::Duplicate { event_id });
                }
            }
            if let Some(s) = &sighting {
                let seen = client
                    .query_opt(
                        "SELECT 1 FROM resource_registry WHERE marketplace = $1 AND partner_id = $2
                         AND resource_kind = $3 AND resource_id = $4",
                        &[&s.marketplace, &s.partner_id, &s.resource_kind, &s.resource_id],
                    )
                    .await?
                    .is_some();
                if !seen && let Some(first) = &s.first_sighting_topic {
                    e.topic = Some(first.clone());
                }
                client
                    .execute(
                        "INSERT INTO resource_registry (marketplace, partner_id, resource_kind,
                            resource_id, status, first_seen_at, last_seen_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6)
                         ON CONFLICT (marketplace, partner_id, resource_kind, resource_id) DO UPDATE
                         SET status = COALESCE(excluded.status, resource_registry.status),
                             last_seen_at = excluded.last_seen_at",
                        &[&s.marketplace, &s.partner_id, &s.resource_kind, &s.resource_id, &s.status, &ms(e.received_at)],
                    )
                    .await?;
            }
            let marketplace = e
                .normalized
                .as_ref()
                .and_then(|n| n.get("marketplace"))
                .and_then(|m| m.as_str())
                .map(str::to_string);
            client
                .execute(
                    "INSERT INTO events (id, origin, dedup_key, partner_id, event_type, event_version,
                        topic, public_event_id, occurred_at, received_at, payload, normalized,
                        raw_body, marketplace, resource_key, headers)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    &[
                        &e.id.to_string(), &e.origin, &e.dedup_key, &e.partner_id, &e.event_type,
                        &e.event_version, &e.topic, &e.public_event_id, &ms(e.occurred_at),
                        &ms(e.received_at), &json_text(&e.payload), &e.normalized.as_ref().map(json_text),
                        &e.raw_body, &marketplace, &e.resource_key,
                        &(!e.headers.is_empty()).then(|| json_text(&e.headers)),
                    ],
                )
                .await?;
            let topic = e.topic.clone().unwrap_or_default();
            let subscription_ids: Vec<String> = client
                .query(
                    "SELECT DISTINCT s.id FROM subscription_event_types t
                     JOIN subscriptions s ON s.id = t.subscription_id
                     WHERE t.partner_id = $1 AND t.event_type IN ($2, $3)
                       AND s.status = 'ACTIVE' AND s.event_version = $4",
                    &[&e.partner_id, &e.event_type, &topic, &e.event_version],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            for subscription_id in &subscription_ids {
                client
                    .execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, partner_id, status,
                            attempts, next_attempt_at, created_at, updated_at, resource_key)
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5, $6)",
                        &[&Uuid::now_v7().to_string(), &e.id.to_string(), subscription_id, &e.partner_id, &ms(e.received_at), &e.resource_key],
                    )
                    .await?;
            }
            if let Some(order) = order {
                // Its own savepoint: facts that do not apply are left out, the event is kept.
                client.batch_execute("SAVEPOINT order_facts").await?;
                match apply_order_changes(client, &e.partner_id, &[order], e.received_at).await {
                    Ok(()) => client.batch_execute("RELEASE order_facts").await?,
                    Err(err) => {
                        tracing::warn!(error = %err, event = %e.id, "order facts left out");
                        client.batch_execute("ROLLBACK TO order_facts; RELEASE order_facts").await?;
                    }
                }
            }
            if !subscription_ids.is_empty() {
                notify_due(client).await?;
            }
            Ok(InsertOutcome::Created { event_id: e.id, deliveries: subscription_ids.len() as u32 })
        }))
        .await
    }

    async fn derive_pending(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<EventRecord>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1"),
                &[&id.to_string()],
            )
            .await?;
        rows.first().map(|r| rows::event_at(r, 0)).transpose()
    }

    async fn list_events(&self, f: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
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
            sql.and(" AND e.resource_key = ANY({})", keys.clone());
        }
        if let Some(since) = f.since {
            sql.and(" AND e.received_at >= {}", ms(since));
        }
        if let Some(until) = f.until {
            sql.and(" AND e.received_at < {}", ms(until));
        }
        if let Some(before) = f.before {
            sql.and(" AND e.id < {}", before.to_string());
        }
        sql.text.push_str(&format!(
            " ORDER BY e.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(|r| rows::event_at(r, 0)).collect()
    }

    async fn create_source(&self, s: SourceRecord) -> Result<(), StoreError> {
        self.write(move |client| Box::pin(async move {
            let inserted = client
                .execute(
                    "INSERT INTO sources (id, kind, name, partners, secrets_sealed, replay_window_secs,
                        options, client_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
                    &[&s.id.to_string(), &s.kind, &s.name, &json_text(&s.partners), &s.secrets_sealed,
                      &s.replay_window_secs, &json_text(&s.options), &s.client_id, &ms(s.created_at), &ms(s.updated_at)],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("source {}", s.id)));
            }
            Ok(())
        }))
        .await
    }

    async fn get_source(&self, id: Uuid) -> Result<Option<SourceRecord>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1"),
                &[&id.to_string()],
            )
            .await?;
        rows.first().map(rows::source).transpose()
    }

    async fn list_sources(
        &self,
        partners: Option<Vec<String>>,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let mut sql = Sql::new(format!("SELECT {SOURCE_COLUMNS} FROM sources s WHERE TRUE"));
        if let Some(partners) = partners {
            sql.and(" AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(s.partners::jsonb) p WHERE p <> ALL({}))", partners);
        }
        sql.text.push_str(" ORDER BY s.id");
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(rows::source).collect()
    }

    async fn update_source(&self, s: SourceRecord) -> Result<bool, StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                let updated = client
                    .execute(
                        "UPDATE sources SET name = $2, partners = $3, secrets_sealed = $4,
                        replay_window_secs = $5, options = $6, updated_at = $7 WHERE id = $1",
                        &[
                            &s.id.to_string(),
                            &s.name,
                            &json_text(&s.partners),
                            &s.secrets_sealed,
                            &s.replay_window_secs,
                            &json_text(&s.options),
                            &ms(s.updated_at),
                        ],
                    )
                    .await?;
                Ok(updated == 1)
            })
        })
        .await
    }

    async fn delete_source(&self, id: Uuid) -> Result<bool, StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                Ok(client
                    .execute("DELETE FROM sources WHERE id = $1", &[&id.to_string()])
                    .await?
                    == 1)
            })
        })
        .await
    }

    async fn insert_rejection(&self, r: RejectionRecord) -> Result<(), StoreError> {
        self.write(move |client| Box::pin(async move {
            client
                .execute(
                    "INSERT INTO rejections (id, source_id, partners, reason, status_code, message,
                        remote_addr, body_sha256, body_size, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[&r.id.to_string(), &r.source_id, &json_text(&r.partners), &r.reason, &i32::from(r.status_code),
                      &r.message, &r.remote_addr, &r.body_sha256, &(r.body_size as i64), &ms(r.received_at)],
                )
                .await?;
            Ok(())
        }))
        .await
    }

    async fn list_rejections(
        &self,
        f: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {REJECTION_COLUMNS} FROM rejections r WHERE TRUE"
        ));
        if let Some(partners) = &f.partners {
            sql.and(" AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p WHERE p = ANY({}))", partners.clone());
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
            sql.and(" AND r.id < {}", before.to_string());
        }
        sql.text.push_str(&format!(
            " ORDER BY r.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(rows::rejection).collect()
    }

    async fn rejection_summary(
        &self,
        partners: Option<Vec<String>>,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError> {
        let mut sql =
            Sql::new("SELECT r.source_id, r.reason, COUNT(*) FROM rejections r WHERE TRUE");
        sql.and(" AND r.received_at >= {}", ms(since));
        if let Some(partners) = partners {
            sql.and(" AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p WHERE p = ANY({}))", partners);
        }
        sql.text.push_str(
            " GROUP BY r.source_id, r.reason ORDER BY COUNT(*) DESC, r.source_id, r.reason",
        );
        let rows = self.query(&sql.text, &sql.params()).await?;
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

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let owner = owner.to_string();
        self.write(move |client| {
            Box::pin(async move {
                // Due candidates, a few times more than asked, locked so no other node takes them.
            let candidates: Vec<(Uuid, Uuid)> = client
                .query(
                    "SELECT d.id, d.subscription_id FROM deliveries d
                     JOIN subscriptions s ON s.id = d.subscription_id
                     WHERE d.status = 'pending' AND d.next_attempt_at <= $1
                       AND (d.locked_until IS NULL OR d.locked_until <= $1)
                       AND s.status = 'ACTIVE'
                       AND (s.paced_until IS NULL OR s.paced_until <= $1)
                       AND (s.breaker_until IS NULL OR s.breaker_until <= $1)
                       AND (s.ordering <> 'resource' OR d.resource_key IS NULL
                            OR NOT EXISTS (SELECT 1 FROM deliveries p
                                WHERE p.subscription_id = d.subscription_id
                                  AND p.resource_key = d.resource_key
                                  AND p.status = 'pending' AND p.id < d.id))
                     ORDER BY d.next_attempt_at
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED",
                    &[&ms(now), &(i64::from(limit) * 4)],
                )
                .await?
                .iter()
                .map(|r| {
                    let d: String = r.try_get(0)?;
                    let s: String = r.try_get(1)?;
                    match (Uuid::parse_str(&d), Uuid::parse_str(&s)) {
                        (Ok(d), Ok(s)) => Ok((d, s)),
                        _ => Err(StoreError::Corrupt("delivery or subscription id".into())),
                    }
                })
                .collect::<Result<_, StoreError>>()?;
            let mut subscriptions: Vec<String> = candidates.iter().map(|(_, s)| s.to_string()).collect();
            subscriptions.sort();
            subscriptions.dedup();
            // Lock the paced subscriptions first, then read their state in a new statement, so
            // the buckets and in-flight counts include what other nodes committed meanwhile.
            client
                .query(
                    "SELECT id FROM subscriptions WHERE id = ANY($1)
                       AND (max_in_flight IS NOT NULL OR rate_per_sec IS NOT NULL)
                     ORDER BY id FOR UPDATE",
                    &[&subscriptions],
                )
                .await?;
            let paces = client
                .query(
                    "SELECT s.id, s.max_in_flight, s.rate_per_sec, s.rate_burst, s.rate_tokens,
                            s.rate_updated_at, s.consecutive_failures >= s.breaker_threshold,
                        (SELECT COUNT(*) FROM deliveries f WHERE f.subscription_id = s.id
                           AND f.status = 'pending' AND f.locked_until > $2)
                     FROM subscriptions s
                     WHERE s.id = ANY($1) AND (s.max_in_flight IS NOT NULL OR s.rate_per_sec IS NOT NULL
                           OR s.consecutive_failures >= s.breaker_threshold)",
                    &[&subscriptions, &ms(now)],
                )
                .await?
                .iter()
                .map(|r| {
                    let id: String = r.try_get(0)?;
                    Ok(pacing::Pace {
                        subscription_id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        max_in_flight: r.try_get::<_, Option<i32>>(1)?.map(|n| n.max(0) as u32),
                        rate_per_sec: r.try_get(2)?,
                        burst: r.try_get::<_, Option<f64>>(3)?.unwrap_or(1.0),
                        tokens: r.try_get(4)?,
                        updated_at: r.try_get::<_, Option<i64>>(5)?.map(from_millis),
                        probe_only: r.try_get(6)?,
                        in_flight: r.try_get::<_, i64>(7)?.clamp(0, u32::MAX as i64) as u32,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let selection = pacing::select(now, &candidates, &paces, limit as usize);
            for (sub, tokens) in &selection.spent {
                client
                    .execute(
                        "UPDATE subscriptions SET rate_tokens = $2, rate_updated_at = $3 WHERE id = $1",
                        &[&sub.to_string(), tokens, &ms(now)],
                    )
                    .await?;
            }
            for sub in &selection.probes {
                client
                    .execute(
                        "UPDATE subscriptions SET breaker_until = $2 WHERE id = $1",
                        &[&sub.to_string(), &ms(lease_until)],
                    )
                    .await?;
            }
            let ids: Vec<String> = selection.deliveries.iter().map(Uuid::to_string).collect();
            client
                .execute(
                    "UPDATE deliveries SET locked_until = $2, lease_owner = $3 WHERE id = ANY($1)",
                    &[&ids, &ms(lease_until), &owner],
                )
                .await?;
            if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let rows = client
                    .query(
                        &format!(
                            "SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS}, {SUBSCRIPTION_COLUMNS}
                         FROM deliveries d
                         JOIN events e ON e.id = d.event_id
                         JOIN subscriptions s ON s.id = d.subscription_id
                         WHERE d.id = ANY($1) ORDER BY d.next_attempt_at"
                        ),
                        &[&ids],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(ClaimedDelivery {
                            delivery: rows::delivery(row)?,
                            event: rows::event_at(row, DELIVERY_COLUMN_COUNT)?,
                            subscription: rows::subscription_at(
                                row,
                                DELIVERY_COLUMN_COUNT + EVENT_COLUMN_COUNT,
                            )?,
                        })
                    })
                    .collect()
            })
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
        self.write(move |client| Box::pin(async move {
            let delivery_id = a.delivery_id.to_string();
            client
                .execute(
                    "INSERT INTO attempts (id, delivery_id, subscription_id, attempted_at, succeeded,
                        status_code, latency_ms, error_class, error_message, response_excerpt)
                     SELECT $1, $2, subscription_id, $3, $4, $5, $6, $7, $8, $9
                     FROM deliveries WHERE id = $2",
                    &[&a.id.to_string(), &delivery_id, &ms(a.attempted_at), &a.succeeded,
                      &a.status_code.map(i32::from), &(a.latency_ms as i64), &a.error_class,
                      &a.error_message, &a.response_excerpt],
                )
                .await?;
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
            let moved = client
                .execute(
                    "UPDATE deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3,
                        first_attempt_at = COALESCE(first_attempt_at, $4), last_attempt_at = $4,
                        last_status_code = $5, last_error = $6, locked_until = NULL,
                        lease_owner = NULL, updated_at = $4
                     WHERE id = $1 AND lease_owner = $7 AND status = 'pending'",
                    &[&delivery_id, &status.as_str(), &next_at, &ms(a.attempted_at),
                      &a.status_code.map(i32::from), &last_error, &owner],
                )
                .await?;
                if moved == 0 {
                    return Ok(AttemptEffects::default());
                }
                let sub_id: String = client
                    .query_one("SELECT subscription_id FROM deliveries WHERE id = $1", &[&delivery_id])
                    .await?
                    .try_get(0)?;
                streak(client, &sub_id, &a, policy).await
        }))
        .await
    }

    async fn pace_subscription(&self, id: Uuid, until: Timestamp) -> Result<(), StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                client
                    .execute(
                        "UPDATE subscriptions SET paced_until = GREATEST(COALESCE(paced_until, 0), $2)
                         WHERE id = $1",
                        &[&id.to_string(), &ms(until)],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_string();
        self.write(move |client| Box::pin(async move {
            let n = client
                .execute("UPDATE deliveries SET locked_until = NULL, lease_owner = NULL WHERE lease_owner = $1", &[&owner])
                .await?;
            if n > 0 {
                notify_due(client).await?;
            }
            Ok(n)
        }))
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        // The earliest few by the due index, not a scan of every pending delivery.
        let rows = self
            .query(
                "SELECT d.next_attempt_at, d.locked_until, s.paced_until, s.status = 'ACTIVE'
                 FROM (SELECT next_attempt_at, locked_until, subscription_id FROM deliveries
                       WHERE status = 'pending' ORDER BY next_attempt_at LIMIT $1) d
                 JOIN subscriptions s ON s.id = d.subscription_id
                 ORDER BY d.next_attempt_at",
                &[&crate::DUE_WINDOW],
            )
            .await?;
        let window = rows
            .iter()
            .map(|r| {
                Ok(crate::DueRow {
                    next_attempt_at: r.try_get(0)?,
                    locked_until: r.try_get(1)?,
                    paced_until: r.try_get(2)?,
                    active: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(crate::earliest_claimable(&window))
    }

    async fn list_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE TRUE"
        ));
        if let Some(partners) = &f.partners {
            sql.and(" AND d.partner_id = ANY({})", partners.clone());
        }
        if let Some(id) = f.subscription_id {
            sql.and(" AND d.subscription_id = {}", id.to_string());
        }
        if let Some(id) = f.event_id {
            sql.and(" AND d.event_id = {}", id.to_string());
        }
        if let Some(status) = f.status {
            sql.and(" AND d.status = {}", status.as_str().to_string());
        }
        if let Some(before) = f.before {
            sql.and(" AND d.id < {}", before.to_string());
        }
        sql.text.push_str(&format!(
            " ORDER BY d.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(rows::delivery).collect()
    }

    async fn get_delivery(
        &self,
        id: Uuid,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let client = self.reader().await?;
        let result = async {
            let id = id.to_string();
            let Some(delivery) = select_delivery(&client, &id).await? else {
                return Ok(None);
            };
            let attempts = client
                .query(
                    &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.delivery_id = $1 ORDER BY a.attempted_at, a.id"),
                    &[&id],
                )
                .await?
                .iter()
                .map(rows::attempt)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((delivery, attempts)))
        }
        .await;
        self.give_back(client);
        result
    }

    async fn retry_delivery(
        &self,
        id: Uuid,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.write(move |client| Box::pin(async move {
            let id = id.to_string();
            let n = client
                .execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, first_attempt_at = NULL,
                        next_attempt_at = $2, locked_until = NULL, lease_owner = NULL, updated_at = $2
                     WHERE id = $1",
                    &[&id, &ms(now)],
                )
                .await?;
            if n > 0 {
                notify_due(client).await?;
            }
            select_delivery(client, &id).await
        }))
        .await
    }

    async fn replay(
        &self,
        subscription_id: Uuid,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |client| Box::pin(async move {
            let sub_id = subscription_id.to_string();
            let Some(sub) = select_subscription(client, &sub_id).await? else {
                return Ok(0);
            };
            let event_ids: Vec<(String, Option<String>)> = client
                .query(
                    "SELECT e.id, e.resource_key FROM events e
                     WHERE e.partner_id = $1 AND e.received_at >= $2 AND e.received_at < $3
                       AND e.event_version = $4
                       AND (e.event_type = ANY($5) OR e.topic = ANY($5))
                     ORDER BY e.id",
                    &[&sub.partner_id, &ms(since), &ms(until), &sub.event_version, &sub.event_types],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()?;
            for (event_id, resource_key) in &event_ids {
                client
                    .execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, partner_id, status,
                            attempts, next_attempt_at, created_at, updated_at, resource_key)
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5, $6)
                         ON CONFLICT (event_id, subscription_id) DO UPDATE SET status = 'pending',
                            attempts = 0, first_attempt_at = NULL, next_attempt_at = $5,
                            locked_until = NULL, lease_owner = NULL, updated_at = $5",
                        &[&Uuid::now_v7().to_string(), event_id, &sub_id, &sub.partner_id, &ms(now), resource_key],
                    )
                    .await?;
            }
            if !event_ids.is_empty() {
                notify_due(client).await?;
            }
            Ok(event_ids.len() as u64)
        }))
        .await
    }

    async fn purge_before(&self, before: Timestamp, batch: u32) -> Result<PurgeCounts, StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                let before = ms(before);
                let batch = i64::from(batch);
                let attempts = client
                    .execute(
                        "DELETE FROM attempts WHERE id IN
                            (SELECT id FROM attempts WHERE attempted_at < $1 LIMIT $2)",
                        &[&before, &batch],
                    )
                    .await?;
                let rejections = client
                    .execute(
                        "DELETE FROM rejections WHERE id IN
                            (SELECT id FROM rejections WHERE received_at < $1 LIMIT $2)",
                        &[&before, &batch],
                    )
                    .await?;
                // Not counted: duplicate sightings and outcomes are small notes about events.
                client
                    .execute(
                        "DELETE FROM duplicates WHERE id IN
                            (SELECT id FROM duplicates WHERE received_at < $1 LIMIT $2)",
                        &[&before, &batch],
                    )
                    .await?;
                client
                    .execute(
                        "DELETE FROM outcomes WHERE id IN
                            (SELECT id FROM outcomes WHERE reported_at < $1 LIMIT $2)",
                        &[&before, &batch],
                    )
                    .await?;
                let events: Vec<String> = client
                    .query(
                        "SELECT e.id FROM events e WHERE e.received_at < $1
                           AND NOT EXISTS (SELECT 1 FROM deliveries d
                                           WHERE d.event_id = e.id AND d.status = 'pending')
                         LIMIT $2",
                        &[&before, &batch],
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                let deliveries = client
                    .execute(
                        "DELETE FROM deliveries WHERE event_id = ANY($1)",
                        &[&events],
                    )
                    .await?;
                client
                    .execute("DELETE FROM events WHERE id = ANY($1)", &[&events])
                    .await?;
                Ok(PurgeCounts {
                    events: events.len() as u64,
                    deliveries,
                    attempts,
                    rejections,
                })
            })
        })
        .await
    }

    async fn subscription_state(&self, id: Uuid) -> Result<SubscriptionState, StoreError> {
        let rows = self.query("SELECT s.consecutive_failures, s.failing_since, s.breaker_until, s.paced_until,
                (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'),
                (SELECT MIN(d.created_at) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending')
             FROM subscriptions s WHERE s.id = $1", &[&id.to_string()]).await?;
        let Some(r) = rows.first() else {
            return Ok(SubscriptionState::default());
        };
        let t = |v: Option<i64>| v.map(from_millis);
        Ok(SubscriptionState {
            consecutive_failures: r.try_get::<_, i32>(0)?.max(0) as u32,
            failing_since: t(r.try_get(1)?),
            breaker_until: t(r.try_get(2)?),
            paced_until: t(r.try_get(3)?),
            pending: r.try_get::<_, i64>(4)?.max(0) as u64,
            oldest_pending_at: t(r.try_get(5)?),
        })
    }

    async fn attempts_since(
        &self,
        subscription_id: Uuid,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts a
                     WHERE a.subscription_id = $1 AND a.attempted_at >= $2
                     ORDER BY a.attempted_at, a.id LIMIT $3"
                ),
                &[&subscription_id.to_string(), &ms(since), &i64::from(limit)],
            )
            .await?;
        rows.iter().map(rows::attempt).collect()
    }

    async fn list_attempts(&self, f: &AttemptFilter) -> Result<Vec<LoggedAttempt>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {ATTEMPT_COLUMNS}, a.subscription_id, d.event_id, e.event_type
             FROM attempts a
             JOIN deliveries d ON d.id = a.delivery_id
             JOIN events e ON e.id = d.event_id
             WHERE TRUE"
        ));
        sql.and(" AND a.subscription_id = {}", f.subscription_id.to_string());
        // A literal, not a parameter: only then may the planner use the partial index of failures.
        match f.succeeded {
            Some(true) => sql.text.push_str(" AND a.succeeded"),
            Some(false) => sql.text.push_str(" AND NOT a.succeeded"),
            None => {}
        }
        if let Some(since) = f.since {
            sql.and(" AND a.attempted_at >= {}", ms(since));
        }
        if let Some(until) = f.until {
            sql.and(" AND a.attempted_at < {}", ms(until));
        }
        if let Some(after) = f.after {
            // Keyset on (time, id): the log's order, served by the attempts_log index.
            sql.and(
                " AND (a.attempted_at, a.id) <
                  (SELECT x.attempted_at, x.id FROM attempts x WHERE x.id = {})",
                after.to_string(),
            );
        }
        sql.text.push_str(&format!(
            " ORDER BY a.attempted_at DESC, a.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(rows::logged_attempt).collect()
    }

    async fn failure_report(
        &self,
        partners: Option<Vec<String>>,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError> {
        let bucket_ms = bucket_secs.max(1) * 1000;
        let run = |text: &str, only: &str| {
            let mut sql = Sql::new("");
            sql.params.push(Box::new(bucket_ms));
            sql.params.push(Box::new(ms(since)));
            sql.text.push_str(text);
            if let Some(p) = &partners {
                sql.and(only, p.clone());
            }
            sql.text.push_str(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
            sql
        };
        let queries = [
            run(
                "SELECT (r.received_at / $1) * $1, r.source_id, r.reason, COUNT(*)
                 FROM rejections r WHERE r.received_at >= $2",
                " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.partners::jsonb) p
                              WHERE p = ANY({}))",
            ),
            run(
                "SELECT (a.attempted_at / $1) * $1, a.subscription_id,
                        CASE WHEN a.status_code IS NOT NULL THEN 'HTTP ' || a.status_code
                             ELSE COALESCE(a.error_class, 'unknown') END,
                        COUNT(*)
                 FROM attempts a WHERE NOT a.succeeded AND a.attempted_at >= $2",
                " AND a.subscription_id IN
                  (SELECT s.id FROM subscriptions s WHERE s.partner_id = ANY({}))",
            ),
            run(
                "SELECT (o.reported_at / $1) * $1, o.client_id, COALESCE(o.reason, 'unspecified'),
                        COUNT(*)
                 FROM outcomes o WHERE o.status = 'failed' AND o.reported_at >= $2",
                " AND o.partner_id = ANY({})",
            ),
        ];
        let mut found = Vec::new();
        for sql in &queries {
            let rows = self.query(&sql.text, &sql.params()).await?;
            found.push(
                rows.iter()
                    .map(|r| {
                        Ok(BucketCount {
                            bucket: from_millis(r.try_get(0)?),
                            key: r.try_get(1)?,
                            reason: r.try_get(2)?,
                            count: r.try_get::<_, i64>(3)?.max(0) as u64,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?,
            );
        }
        let outcomes = found.pop().unwrap_or_default();
        let attempt_failures = found.pop().unwrap_or_default();
        let rejections = found.pop().unwrap_or_default();
        Ok(FailureReport {
            rejections,
            attempt_failures,
            outcomes,
        })
    }

    async fn insert_outcome(&self, o: OutcomeRecord) -> Result<(), StoreError> {
        self.write(move |client| {
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO outcomes (id, event_id, partner_id, client_id, status,
                            reason, message, reported_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[
                            &o.id.to_string(),
                            &o.event_id.to_string(),
                            &o.partner_id,
                            &o.client_id,
                            &o.status,
                            &o.reason,
                            &o.message,
                            &ms(o.reported_at),
                        ],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn list_outcomes(&self, f: &OutcomeFilter) -> Result<Vec<OutcomeRecord>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes o WHERE TRUE"
        ));
        if let Some(partners) = &f.partners {
            sql.and(" AND o.partner_id = ANY({})", partners.clone());
        }
        if let Some(id) = f.event_id {
            sql.and(" AND o.event_id = {}", id.to_string());
        }
        if let Some(status) = &f.status {
            sql.and(" AND o.status = {}", status.clone());
        }
        if let Some(reason) = &f.reason {
            sql.and(" AND o.reason = {}", reason.clone());
        }
        if let Some(since) = f.since {
            sql.and(" AND o.reported_at >= {}", ms(since));
        }
        if let Some(before) = f.before {
            sql.and(" AND o.id < {}", before.to_string());
        }
        sql.text.push_str(&format!(
            " ORDER BY o.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let rows = self.query(&sql.text, &sql.params()).await?;
        rows.iter().map(rows::outcome).collect()
    }

    async fn source_stats(&self, source_id: Uuid) -> Result<SourceStats, StoreError> {
        let rows = self
            .query(
                // Received events always carry a dedup key: the first count uses events_dedup.
                "SELECT
                    (SELECT COUNT(*) FROM events WHERE origin = $1 AND dedup_key IS NOT NULL),
                    (SELECT COUNT(*) FROM duplicates WHERE origin = $1),
                    (SELECT COUNT(*) FROM rejections WHERE source_id = $1)",
                &[&source_id.to_string()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(SourceStats::default());
        };
        let n =
            |i: usize| -> Result<u64, StoreError> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
        Ok(SourceStats {
            accepted: n(0)?,
            duplicates: n(1)?,
            refused: n(2)?,
        })
    }

    async fn set_console_enabled(&self, partner_id: &str, enabled: bool) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |client| {
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO partner_settings (partner_id, console_enabled) VALUES ($1, $2)
                         ON CONFLICT (partner_id)
                         DO UPDATE SET console_enabled = excluded.console_enabled",
                        &[&partner_id, &enabled],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query(
                "SELECT partner_id FROM partner_settings WHERE NOT console_enabled
                 ORDER BY partner_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<_, String>(0)?))
            .collect()
    }

    async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let partner_id = partner_id.to_string();
        self.write(move |client| {
            Box::pin(async move { apply_order_changes(client, &partner_id, &changes, now).await })
        })
        .await
    }

    async fn partner_orders(
        &self,
        partner_id: &str,
        since: Timestamp,
    ) -> Result<Vec<switchyard_core::performance::OrderFacts>, StoreError> {
        let rows = self
            .query(
                "SELECT facts FROM order_facts WHERE partner_id = $1 AND last_activity_at >= $2",
                &[&partner_id.to_string(), &ms(since)],
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

    async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError> {
        // Both parts read only pending rows, through the partial index `deliveries_due`.
        let rows = self
            .query(
                "SELECT
                    COUNT(*) FILTER (WHERE d.locked_until > $1),
                    COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= $1)
                                       AND d.next_attempt_at <= $1),
                    COUNT(*) FILTER (WHERE (d.locked_until IS NULL OR d.locked_until <= $1)
                                       AND d.next_attempt_at > $1),
                    (SELECT o.next_attempt_at FROM deliveries o
                       JOIN subscriptions s ON s.id = o.subscription_id
                      WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                        AND (o.locked_until IS NULL OR o.locked_until <= $1)
                        AND s.status = 'ACTIVE'
                      ORDER BY o.next_attempt_at LIMIT 1)
                 FROM deliveries d WHERE d.status = 'pending'",
                &[&ms(now)],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(QueueDepth::default());
        };
        let count = |i: usize| r.try_get::<_, i64>(i).map(|n| n.max(0) as u64);
        Ok(QueueDepth {
            leased: count(0)?,
            due: count(1)?,
            scheduled: count(2)?,
            oldest_due_at: r.try_get::<_, Option<i64>>(3)?.map(from_millis),
        })
    }
}

/// Applies order changes (each order created on first sight); the row lock makes two nodes
/// changing one order queue up.
async fn apply_order_changes(
    client: &Conn,
    partner_id: &str,
    changes: &[OrderUpdate],
    now: Timestamp,
) -> Result<(), StoreError> {
    for u in changes {
        let empty =
            switchyard_core::performance::OrderFacts::new(partner_id, &u.marketplace, &u.po_number);
        client
            .execute(
                "INSERT INTO order_facts (partner_id, marketplace, po_number, facts, last_activity_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&partner_id, &u.marketplace, &u.po_number, &json_text(&empty), &ms(now)],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT facts FROM order_facts
                 WHERE partner_id = $1 AND marketplace = $2 AND po_number = $3 FOR UPDATE",
                &[&partner_id, &u.marketplace, &u.po_number],
            )
            .await?;
        let text: String = row.try_get(0)?;
        let mut facts: switchyard_core::performance::OrderFacts = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("order facts: {e}")))?;
        u.change.apply(&mut facts)?;
        client
            .execute(
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
