//! Durable state behind one trait. `Store` is what the server and the delivery engine call; the
//! SQLite implementation here is the default, and a PostgreSQL one implements the same trait.
//!
//! Three promises every implementation keeps:
//! - An event and its deliveries are written in one transaction ([`Store::insert_event`]), and
//!   the call returns only after that transaction is durable: an acknowledged event always has
//!   its deliveries.
//! - Concurrent writes are batched into one transaction (group commit), so durability costs one
//!   sync per batch, not per request.
//! - What is not needed to acknowledge an event (order facts, the resource search) is derived
//!   from a durable record after the ack, in transactions that record their progress: never
//!   lost by a crash, never applied twice, caught up on start ([`derive`]).
//!
//! The rules both backends apply (failure streaks, first sightings, pacing) are pure functions
//! in [`rules`] and [`pacing`]; each backend keeps only its SQL.

use async_trait::async_trait;
use jiff::Timestamp;
use switchyard_core::model::PartnerId;

use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client, DeliveryFilter, DeliveryId, DeliveryRecord, EventFilter,
    EventId, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord, ReconcileRun,
    RejectionFilter, RejectionRecord, ResourceSighting, SourceId, SourceRecord, SubscriptionFilter,
    SubscriptionId, SubscriptionRecord,
};

pub(crate) mod derive;
pub mod pacing;
mod parses_to;
pub mod postgres;
pub mod rules;
pub mod scope;
pub mod sqlite;
pub(crate) mod stored;
pub(crate) mod writer_op;

pub use postgres::PostgresStore;
pub use scope::{Scope, Scoped, TenantStore};
pub use sqlite::SqliteStore;

/// The target of the events saying which migration runs (`step` of `of`): `switchyard migrate`
/// shows them as a progress bar on a terminal.
pub const MIGRATE_TARGET: &str = "switchyard::migrate";

/// Says that migration `step` of `of` starts (a debug event of [`MIGRATE_TARGET`]).
pub(crate) fn migrating(step: usize, of: usize) {
    tracing::debug!(target: MIGRATE_TARGET, step, of, "applying a schema migration");
}

/// The store crate's one error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(String),
    /// A record with the same key exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value cannot be read back (a bug or a damaged file).
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    /// The store was shut down.
    #[error("the store is closed")]
    Closed,
    /// A change a caller asked for does not apply (an order fact that contradicts the order).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A write names a partner outside the caller's [`Scope`].
    #[error("outside the caller's scope")]
    OutOfScope,
}

/// A change to one order, named by marketplace and order number.
#[derive(Debug, Clone)]
pub struct OrderUpdate {
    pub marketplace: String,
    pub po_number: String,
    pub change: OrderChange,
}

/// A change to what is known about one order.
#[derive(Debug, Clone)]
pub enum OrderChange {
    /// A fact the seller posted (shipment, scan, delivery, refund, contact, response).
    Fact(switchyard_core::performance::OrderFact),
    /// A normalized order event received from a marketplace.
    Normalized(serde_json::Value),
}

impl OrderChange {
    /// Applies the change to an order's facts.
    pub fn apply(
        &self,
        facts: &mut switchyard_core::performance::OrderFacts,
    ) -> Result<(), StoreError> {
        let result = match self {
            OrderChange::Fact(fact) => facts.apply(fact),
            OrderChange::Normalized(normalized) => facts.apply_normalized(normalized),
        };
        result.map_err(|e| match e {
            switchyard_core::CoreError::Invalid { field, message } => {
                StoreError::Invalid { field, message }
            }
            other => StoreError::Invalid {
                field: "fact".into(),
                message: other.to_string(),
            },
        })
    }
}

/// A reconciliation lease taken: where the source's next window starts (`None`: it never ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileLease {
    pub cursor: Option<Timestamp>,
}

/// Reconciliation runs kept per source.
pub(crate) const RECONCILE_RUNS_KEPT: i64 = 500;

/// What storing an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored, with this many deliveries fanned out.
    Created { event_id: EventId, deliveries: u32 },
    /// An event with the same origin and dedup key exists; nothing was written.
    Duplicate { event_id: EventId },
}

/// What a writer tells a caller once its batch's fate is known.
pub(crate) type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Pending deliveries `next_due_at` looks at, earliest first: enough to find the next due one
/// without reading a whole backlog.
pub(crate) const DUE_WINDOW: i64 = 256;

/// One of the first [`DUE_WINDOW`] pending deliveries, by `next_attempt_at` (milliseconds).
pub(crate) struct DueRow {
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub paced_until: Option<i64>,
    pub active: bool,
}

/// The earliest time one of `window` becomes claimable, never later than the true earliest
/// over all pending deliveries: when the window is full, every delivery past it is due no
/// sooner than the window's last, so that bounds the answer (waking early only looks again).
pub(crate) fn earliest_claimable(window: &[DueRow]) -> Option<Timestamp> {
    let claimable = window
        .iter()
        .filter(|r| r.active)
        .map(|r| {
            r.next_attempt_at
                .max(r.locked_until.unwrap_or(0))
                .max(r.paced_until.unwrap_or(0))
        })
        .min();
    let bound = (window.len() as i64 >= DUE_WINDOW)
        .then(|| window.last().map(|r| r.next_attempt_at))
        .flatten();
    let at = match (claimable, bound) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    at.map(switchyard_core::clock::from_millis)
}

/// Pairs a write's own result with the reply its caller gets after COMMIT: the write's result
/// if the batch committed, the commit's error if it did not. Both writers use it.
pub(crate) fn answer_after_commit<T: Send + 'static>(
    tx: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    result: Result<T, StoreError>,
) -> (bool, Reply) {
    let ok = result.is_ok();
    let reply: Reply = Box::new(move |committed| {
        let _ = tx.send(committed.and(result));
    });
    (ok, reply)
}

/// How many requests a source refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectionCount {
    pub source_id: String,
    pub reason: String,
    pub count: u64,
}

/// A count of failures of one kind in one time bucket, for the failures dashboard's charts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketCount {
    /// The bucket's start.
    pub bucket: Timestamp,
    /// What failed: a source id, a subscription id, or the reporting client.
    pub key: String,
    pub reason: String,
    pub count: u64,
}

/// Everything that went wrong since a time, bucketed: the failures dashboard's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureReport {
    /// Refused inbound requests, keyed by source, with the refusal reason.
    pub rejections: Vec<BucketCount>,
    /// Failed delivery attempts, keyed by subscription, with the error class (`HTTP 500`,
    /// `timeout`, ...).
    pub attempt_failures: Vec<BucketCount>,
    /// Failures subscribers reported for events they received, keyed by the reporting client.
    pub outcomes: Vec<BucketCount>,
}

/// What a source's requests came to, within the retention window.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub refused: u64,
}

/// A delivery leased to one worker, with what it needs to make the attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRecord,
    /// The event, without what no attempt uses: `raw_body` out and `headers` empty, and, when
    /// `body` carries the payload rather than the normalized form, `payload` `Null` and
    /// `normalized` `None` (`body` has them as stored).
    pub event: EventRecord,
    pub subscription: SubscriptionRecord,
    /// The body the attempt sends, `switchyard_core::envelope::body` of the event for the
    /// subscription (before any transformation).
    pub body: Vec<u8>,
}

/// A polling subscription's delivery, where it stands in its queue.
#[derive(Debug, Clone)]
pub struct Polled {
    /// Its place: the storing transaction's number (PostgreSQL; 0 on SQLite, whose one writer
    /// commits in order) and the delivery's id.
    pub position: (i64, uuid::Uuid),
    pub delivery: DeliveryRecord,
    /// The event, without its received headers and raw body unless that is the payload.
    pub event: EventRecord,
}

/// What one retention batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub rejections: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.events + self.deliveries + self.attempts + self.rejections
    }
}

/// A subscription's delivery state, for its health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionState {
    pub consecutive_failures: u32,
    pub failing_since: Option<Timestamp>,
    /// While in the future, the breaker is open; past it, the next probe may go.
    pub breaker_until: Option<Timestamp>,
    /// A 429's hold.
    pub paced_until: Option<Timestamp>,
    pub pending: u64,
    pub oldest_pending_at: Option<Timestamp>,
}

/// Pending deliveries by state at one instant, for the metrics scrape. The three counts split
/// every pending delivery (held ones of INACTIVE subscriptions included); the oldest due time
/// looks only at ACTIVE subscriptions, so a paused subscription's backlog does not look stuck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Due now and not leased: waiting for a worker.
    pub due: u64,
    /// Due later (a retry's wait), not leased.
    pub scheduled: u64,
    /// Under a live lease: being attempted by some node.
    pub leased: u64,
    /// The earliest `next_attempt_at` of a due, unleased delivery of an ACTIVE subscription.
    pub oldest_due_at: Option<Timestamp>,
}

/// What a failed attempt may do to its subscription; times come from the dispatcher's clock and
/// time scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailurePolicy {
    /// When an open breaker lets the next probe through.
    pub reopen_at: Timestamp,
    /// A streak that began at or before this disables the subscription.
    pub disable_if_failing_since: Timestamp,
    /// The endpoint answered 410 Gone: disable at once.
    pub gone: bool,
}

impl FailurePolicy {
    /// A policy that never disables, for callers that only record attempts.
    pub fn lenient(reopen_at: Timestamp) -> FailurePolicy {
        FailurePolicy {
            reopen_at,
            disable_if_failing_since: Timestamp::MIN,
            gone: false,
        }
    }
}

/// What an attempt did to its subscription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptEffects {
    /// The subscription was set INACTIVE, for this reason.
    pub disabled: Option<String>,
    /// The attempt succeeded after the breaker had opened.
    pub recovered: bool,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    Succeeded,
    RetryAt(Timestamp),
    Failed,
}

/// Durable state. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;

    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Woken when deliveries became due through another node's commit (PostgreSQL's
    /// `LISTEN/NOTIFY`); `None` where one process owns the store.
    fn wakeups(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    // --- clients ---

    /// Creates a client; `Conflict` if the id is taken.
    async fn create_client(&self, client: Client) -> Result<(), StoreError>;
    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError>;

    // --- subscriptions ---

    /// Creates all of them or none.
    async fn create_subscriptions(&self, subs: Vec<SubscriptionRecord>) -> Result<(), StoreError>;
    async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError>;
    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError>;
    /// Replaces a stored subscription; `false` if it does not exist.
    async fn update_subscription(&self, sub: SubscriptionRecord) -> Result<bool, StoreError>;
    /// Deletes a subscription; its pending deliveries end as failed. `false` if it did not exist.
    async fn delete_subscription(
        &self,
        id: SubscriptionId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    // --- events ---

    /// Stores an event unless its (origin, dedup key) was seen, and in the same transaction
    /// creates a pending delivery, due at once, for every ACTIVE subscription of its partner that
    /// names its event type or topic at its version. With a `sighting` (passed for marketplaces
    /// whose first news of an order may be a status change), the resource registry is updated in
    /// the same transaction, and a resource never seen before takes the sighting's
    /// `first_sighting_topic` as the event's topic. What the event changes in its order's facts
    /// is derived after the ack ([`Store::derive_pending`]).
    async fn insert_event(
        &self,
        event: EventRecord,
        sighting: Option<ResourceSighting>,
    ) -> Result<InsertOutcome, StoreError>;
    /// Derives at once what the store's deriver would derive from the events stored so far
    /// (order facts, the resource search), rather than within a few milliseconds; returns how
    /// many events it took. For readers that need every event derived (a performance run, a
    /// test).
    async fn derive_pending(&self) -> Result<usize, StoreError>;
    async fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError>;
    /// Events matching the filter, newest first.
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError>;

    // --- sources and rejections ---

    async fn create_source(&self, source: SourceRecord) -> Result<(), StoreError>;
    async fn get_source(&self, id: SourceId) -> Result<Option<SourceRecord>, StoreError>;
    /// Sources whose partners are all among `partners` (`None`: every source).
    async fn list_sources(
        &self,
        partners: Option<Vec<PartnerId>>,
    ) -> Result<Vec<SourceRecord>, StoreError>;
    /// Replaces a stored source; `false` if it does not exist.
    async fn update_source(&self, source: SourceRecord) -> Result<bool, StoreError>;
    async fn delete_source(&self, id: SourceId) -> Result<bool, StoreError>;
    async fn insert_rejection(&self, rejection: RejectionRecord) -> Result<(), StoreError>;
    /// Rejections matching the filter, newest first.
    async fn list_rejections(
        &self,
        filter: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError>;
    /// Counts of rejections since a time, by source and reason (most first).
    async fn rejection_summary(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError>;

    // --- deliveries ---

    /// Leases up to `limit` pending deliveries that are due at `now`, whose subscription is
    /// ACTIVE and which no live lease holds, until `lease_until`.
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Records an attempt and moves its delivery on, releasing the lease `owner` holds; and keeps
    /// the subscription's failure streak: a success ends it (and closes the breaker), a failure
    /// lengthens it, opens the breaker at the subscription's threshold, and sets the
    /// subscription INACTIVE when `policy` says the endpoint is gone or has failed too long.
    async fn complete_attempt(
        &self,
        attempt: AttemptRecord,
        next: DeliveryNext,
        owner: &str,
        policy: FailurePolicy,
    ) -> Result<AttemptEffects, StoreError>;
    /// Ends a delivery `owner` holds the lease of without an attempt (its subscription's
    /// transformation dropped it): `cancelled`, with `note` as its last error, and the lease
    /// released. False when the delivery was no longer pending or `owner` no longer held it.
    async fn cancel_delivery(
        &self,
        id: DeliveryId,
        owner: &str,
        at: Timestamp,
        note: &str,
    ) -> Result<bool, StoreError>;
    /// A polling subscription's deliveries after `after`, oldest first, at most `limit`: in
    /// the order they were stored, and only those no transaction still under way can come
    /// before, so that a reader that moves past one never skips another committed later.
    async fn poll_deliveries(
        &self,
        subscription: SubscriptionId,
        after: Option<(i64, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<Polled>, StoreError>;
    /// Holds all of a subscription's deliveries until `until` (an endpoint's 429 with
    /// `Retry-After`), on every node; an earlier time does not shorten a longer hold.
    async fn pace_subscription(
        &self,
        id: SubscriptionId,
        until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Drops every lease `owner` holds (graceful shutdown), so others may take them at once.
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError>;
    /// The earliest time a pending delivery of an ACTIVE subscription becomes claimable.
    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Deliveries matching the filter, newest first.
    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    async fn get_delivery(
        &self,
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError>;
    /// Makes a delivery pending and due at `now`, with a fresh retry cycle. `None` if missing.
    async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError>;
    /// Re-delivers every event of the subscription's partner and types received in
    /// `[since, until)`: existing deliveries are made pending again (same id, so the same
    /// `webhook-id`), missing ones are created. Returns how many are now pending.
    async fn replay(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Deletes one batch (at most `batch` rows of each kind) of what is older than `before`:
    /// attempts, rejections, and events none of whose deliveries is pending, with those
    /// deliveries. Call it until it removes nothing; each batch is a short write of its own.
    async fn purge_before(&self, before: Timestamp, batch: u32) -> Result<PurgeCounts, StoreError>;
    /// A subscription's delivery state: failure streak, breaker, hold, backlog.
    async fn subscription_state(&self, id: SubscriptionId)
    -> Result<SubscriptionState, StoreError>;
    /// Attempts of a subscription's deliveries since `since`, oldest first (at most `limit`).
    async fn attempts_since(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError>;

    // --- the console's views ---

    /// A subscription's callback log: attempts newest first, with their events.
    async fn list_attempts(&self, filter: &AttemptFilter)
    -> Result<Vec<LoggedAttempt>, StoreError>;
    /// Rejections, failed attempts and reported failures since `since`, counted per bucket of
    /// `bucket_secs`, for the partners given (`None`: all).
    async fn failure_report(
        &self,
        partners: Option<Vec<PartnerId>>,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError>;
    /// Records how a subscriber processed an event.
    async fn insert_outcome(&self, outcome: OutcomeRecord) -> Result<(), StoreError>;
    /// Outcomes matching the filter, newest first.
    async fn list_outcomes(&self, filter: &OutcomeFilter)
    -> Result<Vec<OutcomeRecord>, StoreError>;
    /// Accepted, duplicate and refused requests of a source.
    async fn source_stats(&self, source_id: SourceId) -> Result<SourceStats, StoreError>;
    /// Switches the console on or off for a partner (the API is not affected).
    async fn set_console_enabled(&self, partner_id: &str, enabled: bool) -> Result<(), StoreError>;
    /// The partners whose console was switched off.
    async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError>;

    // --- order facts, for seller performance notifications ---

    /// Applies changes to a partner's orders (each created on first sight): all of them in one
    /// transaction, or none if one does not apply. Concurrent changes to one order queue up.
    async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The orders of a partner changed at or after `since`, every marketplace.
    async fn partner_orders(
        &self,
        partner_id: &str,
        since: Timestamp,
    ) -> Result<Vec<switchyard_core::performance::OrderFacts>, StoreError>;
    // --- reconciliation ---

    /// Takes the lease on a source's reconciliation until `until`, when its next run is due at
    /// `now` (or `force`) and no other owner holds a live lease; answers its cursor. `None`:
    /// not due, or under way elsewhere.
    async fn lease_reconcile(
        &self,
        source: SourceId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        force: bool,
    ) -> Result<Option<ReconcileLease>, StoreError>;
    /// Records a run and, in the same transaction, moves the source's cursor (when `cursor` is
    /// given: a run that failed keeps it), sets its next run and releases `owner`'s lease.
    async fn finish_reconcile(
        &self,
        run: ReconcileRun,
        owner: &str,
        cursor: Option<Timestamp>,
        next_run_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Runs started at or after `since`, newest first: one source's, or every source's.
    async fn list_reconcile_runs(
        &self,
        source: Option<SourceId>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ReconcileRun>, StoreError>;
    /// Pending deliveries by state at `now` (see [`QueueDepth`]). Reads only pending rows,
    /// through the partial index on them, so it stays cheap however much history is kept.
    async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError>;
}
