//! The dispatcher: leases due deliveries, sends them with bounded concurrency, and records each
//! attempt with the next step its subscription's retry policy gives.
//!
//! It wakes when told (a publish, a retry, a resume), when an attempt finishes and frees a slot,
//! when the next delivery falls due, and at least every `poll_interval`. Leases are what make it
//! safe to run on several nodes: a delivery is attempted by the node holding its lease, and a
//! node that dies loses its leases when they expire.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use jiff::Timestamp;
use serde_json::json;
use switchyard_core::Clock;
use switchyard_core::metrics::{self, Metrics};
use switchyard_core::model::{AttemptRecord, AuthDetails, EventRecord, SubscriptionRecord};
use switchyard_core::retry::AttemptHistory;
use switchyard_core::secrets::{SecretBox, random_unit};
use switchyard_store::{ClaimedDelivery, DeliveryNext, FailurePolicy, InsertOutcome, Store};

/// The origin of the events the hub itself publishes.
pub const OPERATIONAL_ORIGIN: &str = "switchyard";

use tracing::Instrument as _;

use crate::envelope;
use crate::sender::{OutboundRequest, SendOutcome, Sender};
use crate::trace_context::{STAGE, continue_trace, trace_id, traceparent};
use crate::transform;

/// Stores an operational event (`subscription.disabled`, `source.rejections_spiking`, ...) for a
/// partner, once per `key`; `true` when it owes deliveries.
pub async fn publish_operational(
    store: &dyn Store,
    now: Timestamp,
    partner_id: &str,
    event_type: &str,
    key: String,
    payload: serde_json::Value,
) -> bool {
    let id = switchyard_core::model::EventId::new();
    let event = EventRecord {
        id,
        origin: OPERATIONAL_ORIGIN.into(),
        dedup_key: Some(key),
        partner_id: partner_id.into(),
        event_type: event_type.into(),
        event_version: switchyard_core::catalog::V1.into(),
        topic: None,
        public_event_id: id.to_string(),
        occurred_at: now,
        received_at: now,
        payload,
        normalized: None,
        raw_body: None,
        resource_key: None,
        headers: Default::default(),
        trace_parent: None,
        resource_version: None,
        native_elided: false,
    };
    match store.insert_event(event, None).await {
        Ok(InsertOutcome::Created { deliveries, .. }) => {
            tracing::info!(partner_id, event_type, "operational event");
            deliveries > 0
        }
        Ok(InsertOutcome::Duplicate { .. }) => false,
        Err(e) => {
            tracing::warn!(error = %e, event_type, "cannot store an operational event");
            false
        }
    }
}

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Requests in flight at once, over all subscriptions.
    pub concurrency: usize,
    /// How long a claimed delivery stays leased; longer than a request can take.
    pub lease: Duration,
    /// The longest sleep between looks at the store.
    pub poll_interval: Duration,
    /// Multiplies every retry delay (`SWITCHYARD_DELIVERY_TIME_SCALE`).
    pub time_scale: f64,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Where attempts are counted and timed (the hub's registry).
    pub metrics: Metrics,
    /// What one call of a subscription's transformation may use.
    pub transform_limits: transform::Limits,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            concurrency: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            time_scale: 1.0,
            shutdown_grace: Duration::from_secs(20),
            metrics: Metrics::default(),
            transform_limits: transform::Limits::default(),
        }
    }
}

/// Delivers what the store says is due. Share it with `Arc`.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    sender: Sender,
    clock: Arc<dyn Clock>,
    secrets: SecretBox,
    config: DispatcherConfig,
    /// This process's lease-owner name.
    owner: String,
    /// Wakes the loop early.
    wake: Notify,
    /// Wakes the long polls waiting on this node.
    stored: Notify,
    /// Bounds requests in flight.
    slots: Arc<Semaphore>,
    /// Bounds attempts made but not yet recorded: a request's slot is free once its answer is
    /// in, while the store records it (the lease keeps the delivery meanwhile), so recording
    /// overlaps the next requests instead of holding their slots.
    unrecorded: Arc<Semaphore>,
    /// Secrets already opened, by their sealed form (unique per seal: a rotated or edited
    /// secret is a new entry), so a delivery does not decrypt its subscription's each time.
    opened: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Opened secrets kept at most; past it the cache starts over.
const OPENED_SECRETS: usize = 10_000;

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Sender,
        clock: Arc<dyn Clock>,
        secrets: SecretBox,
        config: DispatcherConfig,
    ) -> Arc<Dispatcher> {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let unrecorded = Arc::new(Semaphore::new(config.concurrency.max(1) * 4));
        Arc::new(Dispatcher {
            store,
            sender,
            clock,
            secrets,
            owner: format!("node-{}", Uuid::now_v7().simple()),
            config,
            wake: Notify::new(),
            stored: Notify::new(),
            slots,
            unrecorded,
            opened: Default::default(),
        })
    }

    /// Asks the loop to look for due deliveries now, and tells whoever waits for new deliveries
    /// (a long poll) that there may be some.
    pub fn wake(&self) {
        self.wake.notify_one();
        self.stored.notify_waiters();
    }

    /// Resolves at the next [`Self::wake`] on this node: a write here stored deliveries. (Other
    /// nodes' writes are not seen here; a long poll also looks at the store on a timer.)
    pub async fn stored(&self) {
        self.stored.notified().await
    }

    /// Runs until `shutdown` turns true, then lets requests in flight finish (within the grace
    /// period) and releases the leases of any that did not.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut in_flight = JoinSet::new();
        // Other nodes' commits wake this one too (PostgreSQL's LISTEN/NOTIFY).
        let remote = self
            .store
            .wakeups()
            .unwrap_or_else(|| Arc::new(Notify::new()));
        // The last claim found nothing: the next one is a debug span, which the trace layer
        // (INFO on the stage target) does not export, so an idle hub sends no trace per poll.
        let mut idle = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            let free = self.free();
            // Under a backlog, claim in chunks rather than one delivery per freed slot: each
            // claim is a write, and a quarter of the slots amortizes it (an idle hub claims at once).
            let chunk = (self.config.concurrency / 4).max(1);
            let mut claimed_any = false;
            if free >= chunk || (free > 0 && in_flight.is_empty()) {
                let now = self.clock.now();
                let lease_until =
                    now + SignedDuration::try_from(self.config.lease).unwrap_or_default();
                let claim = if idle {
                    tracing::debug_span!(target: STAGE, "claim", claimed = tracing::field::Empty)
                } else {
                    tracing::info_span!(target: STAGE, "claim", claimed = tracing::field::Empty)
                };
                let result = self
                    .store
                    .claim_due(now, free.min(256) as u32, lease_until, &self.owner)
                    .instrument(claim.clone())
                    .await;
                if let Ok(claimed) = &result {
                    claim.record("claimed", claimed.len());
                }
                drop(claim);
                match result {
                    Ok(claimed) => {
                        claimed_any = !claimed.is_empty();
                        idle = !claimed_any;
                        for delivery in claimed {
                            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                                break;
                            };
                            let Ok(unrecorded) = self.unrecorded.clone().acquire_owned().await
                            else {
                                break;
                            };
                            let this = self.clone();
                            // Boxed: the attempt's future is several kilobytes, and the task
                            // spawned holds it by pointer instead of being copied whole into
                            // the runtime (the copies showed in delivery profiles).
                            in_flight.spawn(async move {
                                Box::pin(this.attempt(delivery, slot)).await;
                                drop(unrecorded);
                                this.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot claim due deliveries"),
                }
            }
            if claimed_any && self.free() >= chunk {
                continue;
            }
            // With too few slots free, the next finished attempt wakes the loop; nothing to ask.
            let sleep = if self.free() < chunk && !in_flight.is_empty() {
                self.config.poll_interval
            } else {
                self.sleep_until_next_due().await
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = remote.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => {}
            }
        }
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            in_flight.abort_all();
        }
        match self.store.release_leases(&self.owner).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "released unfinished deliveries"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot release leases; they expire by themselves")
            }
        }
    }

    /// Deliveries that may be claimed now: a request slot and a recording place each.
    fn free(&self) -> usize {
        self.slots
            .available_permits()
            .min(self.unrecorded.available_permits())
    }

    async fn sleep_until_next_due(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_due_at().await {
            Ok(Some(at)) => {
                let wait = at.duration_since(self.clock.now());
                if wait <= SignedDuration::ZERO {
                    // Due now but no slot free, or leased elsewhere: look again shortly.
                    Duration::from_millis(20).min(poll)
                } else {
                    Duration::try_from(wait).unwrap_or(poll).min(poll)
                }
            }
            _ => poll,
        }
    }

    /// Makes one attempt of a claimed delivery, frees its request `slot` once answered, and
    /// records it.
    async fn attempt(&self, claimed: ClaimedDelivery, slot: tokio::sync::OwnedSemaphorePermit) {
        let ClaimedDelivery {
            delivery,
            event,
            subscription,
            body,
        } = claimed;
        let attempted_at = self.clock.now();
        // The attempt continues the trace its event was stored in (possibly on another node, a
        // while ago), and the subscriber continues it from the `traceparent` sent to it.
        let span = tracing::info_span!(
            target: STAGE,
            "attempt",
            delivery = %delivery.id,
            subscription = %subscription.id,
            attempt = delivery.attempts + 1,
            status = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if let Some(parent) = &event.trace_parent {
            continue_trace(&span, parent);
        }
        let trace = trace_id(&span);
        let prepared = match self.build_request(&delivery, body, &subscription, attempted_at) {
            Ok((request, secrets)) => {
                self.transformed(
                    request,
                    &secrets,
                    &delivery,
                    &event,
                    &subscription,
                    attempted_at,
                )
                .await
            }
            Err(message) => Err(("config", message)),
        };
        let prepared = match prepared {
            Ok(Some(request)) => Ok(request),
            Ok(None) => {
                // Cancelled by the transformation: no attempt, the delivery ends here.
                drop(span);
                drop(slot);
                self.wake.notify_one();
                self.config
                    .metrics
                    .inc(&metrics::DELIVERY_ATTEMPTS, &[("outcome", "cancelled")]);
                let note = "cancelled by the subscription's transformation";
                if let Err(e) = self
                    .store
                    .cancel_delivery(delivery.id, &self.owner, attempted_at, note)
                    .await
                {
                    tracing::warn!(error = %e, delivery = %delivery.id, "cannot record a cancel");
                }
                return;
            }
            Err(failed) => Err(failed),
        };
        let outcome = match prepared {
            Ok(mut request) => {
                if let Some(traceparent) = traceparent(&span) {
                    request.headers.push(("traceparent".into(), traceparent));
                }
                let mut outcome = self.sender.send(&request).instrument(span.clone()).await;
                self.config.metrics.observe(
                    &metrics::DELIVERY_SECONDS,
                    &[],
                    outcome.latency.as_secs_f64(),
                );
                // SellerCenter's callbacks succeed on HTTP 200 only, not on any 2xx.
                if subscription.envelope == switchyard_core::model::Envelope::Sellercenter
                    && outcome.succeeded()
                    && outcome.status_code != Some(200)
                {
                    outcome.error_class = Some("http_status");
                    outcome.error_message = Some(format!(
                        "HTTP {} is not 200, the only success a SellerCenter callback has",
                        outcome.status_code.unwrap_or_default()
                    ));
                }
                outcome
            }
            Err((class, message)) => SendOutcome {
                status_code: None,
                latency: Duration::ZERO,
                error_class: Some(class),
                error_message: Some(message),
                response_excerpt: None,
                retry_after: None,
            },
        };
        if let Some(code) = outcome.status_code {
            span.record("status", code);
        }
        if let Some(class) = outcome.error_class {
            span.record("error", class);
        }
        drop(span);
        drop(slot);
        // Another request may start while this one is recorded.
        self.wake.notify_one();
        self.config.metrics.inc(
            &metrics::DELIVERY_ATTEMPTS,
            &[("outcome", outcome.error_class.unwrap_or("succeeded"))],
        );
        let next = if outcome.succeeded() {
            DeliveryNext::Succeeded
        } else {
            let history = AttemptHistory {
                first_attempt_at: delivery.first_attempt_at.unwrap_or(attempted_at),
                last_attempt_at: attempted_at,
                attempts_made: delivery.attempts + 1,
            };
            match subscription.retry_policy.next_attempt_at(
                &history,
                outcome.retry_after,
                self.config.time_scale,
                random_unit(),
            ) {
                Some(at) => DeliveryNext::RetryAt(at),
                None => DeliveryNext::Failed,
            }
        };
        let record = AttemptRecord {
            id: Uuid::now_v7(),
            delivery_id: delivery.id,
            attempted_at,
            succeeded: outcome.succeeded(),
            status_code: outcome.status_code,
            latency_ms: outcome.latency.as_millis() as u64,
            error_class: outcome.error_class.map(str::to_string),
            error_message: outcome.error_message.clone(),
            response_excerpt: outcome.response_excerpt.clone(),
            trace_id: trace,
        };
        tracing::debug!(
            delivery = %delivery.id,
            subscription = %subscription.id,
            status = ?outcome.status_code,
            error = ?outcome.error_class,
            "delivery attempt"
        );
        // A 429 with Retry-After slows this subscription down, and only it.
        if outcome.status_code == Some(429)
            && let Some(wait) = outcome.retry_after
        {
            let wait = wait.as_secs_f64() * self.config.time_scale;
            let until = attempted_at + SignedDuration::from_secs_f64(wait.clamp(0.0, 3600.0));
            if let Err(e) = self.store.pace_subscription(subscription.id, until).await {
                tracing::warn!(error = %e, "cannot pace the subscription");
            }
        }
        let scale = self.config.time_scale;
        let scaled = |secs: u64| SignedDuration::from_secs_f64((secs as f64 * scale).min(1e9));
        let policy = FailurePolicy {
            reopen_at: attempted_at + scaled(subscription.breaker.probe_interval_seconds),
            disable_if_failing_since: attempted_at
                .checked_sub(scaled(subscription.auto_disable_after_secs))
                .unwrap_or(Timestamp::MIN),
            gone: outcome.status_code == Some(410),
        };
        // The store may be briefly unavailable; the lease keeps others off meanwhile.
        let mut effects = None;
        for wait_ms in [0u64, 100, 500, 2000] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match self
                .store
                .complete_attempt(record.clone(), next, &self.owner, policy)
                .await
            {
                Ok(e) => {
                    effects = Some(e);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, delivery = %delivery.id, "cannot record attempt")
                }
            }
        }
        let Some(effects) = effects else { return };
        // Operational events, never about deliveries of operational events (no chains).
        if event.origin == OPERATIONAL_ORIGIN {
            return;
        }
        let about = json!({"subscriptionId": subscription.id, "eventUrl": subscription.event_url});
        if let Some(reason) = &effects.disabled {
            let mut payload = about.clone();
            payload["reason"] = json!(reason);
            self.emit(
                &subscription,
                "subscription.disabled",
                format!("disabled:{}", record.id),
                payload,
            )
            .await;
        }
        if effects.recovered {
            self.emit(
                &subscription,
                "subscription.recovered",
                format!("recovered:{}", record.id),
                about.clone(),
            )
            .await;
        }
        if next == DeliveryNext::Failed {
            let mut payload = about;
            payload["deliveryId"] = json!(delivery.id);
            payload["eventId"] = json!(event.id);
            payload["eventType"] = json!(event.event_type);
            payload["lastAttempt"] = json!(record);
            self.emit(
                &subscription,
                "delivery.exhausted",
                format!("exhausted:{}", delivery.id),
                payload,
            )
            .await;
        }
    }

    /// Publishes an operational event to the subscription's partner, once per key.
    async fn emit(
        &self,
        subscription: &SubscriptionRecord,
        event_type: &str,
        key: String,
        payload: serde_json::Value,
    ) {
        let now = self.clock.now();
        if publish_operational(
            self.store.as_ref(),
            now,
            &subscription.partner_id,
            event_type,
            key,
            payload,
        )
        .await
        {
            self.wake();
        }
    }

    /// The request as the subscription's transformation leaves it (re-signed over the new
    /// body), `None` when it cancels the delivery, or the attempt's failure (`transform`) when
    /// it throws, overruns or answers something else than a webhook. The code runs off the
    /// async threads: a call may take its whole time limit.
    async fn transformed(
        &self,
        mut request: OutboundRequest,
        secrets: &[String],
        delivery: &switchyard_core::model::DeliveryRecord,
        event: &switchyard_core::model::EventRecord,
        subscription: &switchyard_core::model::SubscriptionRecord,
        now: jiff::Timestamp,
    ) -> Result<Option<OutboundRequest>, (&'static str, String)> {
        let Some(code) = subscription.transform.clone() else {
            return Ok(Some(request));
        };
        let failed = |message: String| ("transform", message);
        let payload = serde_json::from_slice(&request.body)
            .map_err(|e| failed(format!("the envelope is not JSON: {e}")))?;
        let webhook = transform::Webhook {
            event_type: envelope::announced_type(event, subscription).to_string(),
            payload,
            headers: std::mem::take(&mut request.custom_headers),
            url: std::mem::take(&mut request.url),
        };
        let limits = self.config.transform_limits;
        let owner = subscription.id.to_string();
        let outcome = tokio::task::spawn_blocking(move || {
            transform::run_kept(&owner, &code, &webhook, &limits)
        })
        .await
        .map_err(|e| failed(format!("the transformation did not finish: {e}")))?;
        match outcome {
            Ok(transform::Transformed::Cancel) => Ok(None),
            Ok(transform::Transformed::Send(webhook)) => {
                request.body = serde_json::to_vec(&webhook.payload)
                    .map_err(|e| failed(format!("the new payload cannot be written: {e}")))?;
                request.custom_headers = webhook.headers;
                request.url = webhook.url;
                // Signed again over the new body, as of the attempt (as `build_request` did).
                let msg_id = envelope::webhook_id(delivery);
                request.headers =
                    envelope::standard_webhooks_headers(&msg_id, now, &request.body, secrets);
                Ok(Some(request))
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// The request of an attempt sending `body`, with the secrets that signed it.
    fn build_request(
        &self,
        delivery: &switchyard_core::model::DeliveryRecord,
        body: Vec<u8>,
        subscription: &switchyard_core::model::SubscriptionRecord,
        now: jiff::Timestamp,
    ) -> Result<(OutboundRequest, Vec<String>), String> {
        let open = |sealed: &str| -> Result<String, String> {
            let cached = self
                .opened
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(sealed)
                .cloned();
            if let Some(plain) = cached {
                return Ok(plain);
            }
            let plain = self.secrets.open(sealed).map_err(|_| {
                "a stored secret cannot be decrypted with this master key".to_string()
            })?;
            let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
            if opened.len() >= OPENED_SECRETS {
                opened.clear();
            }
            opened.insert(sealed.to_string(), plain.clone());
            Ok(plain)
        };
        let mut secrets = vec![open(&subscription.signing_secret_sealed)?];
        if let (Some(previous), Some(until)) = (
            &subscription.previous_secret_sealed,
            subscription.previous_secret_expires_at,
        ) && now < until
        {
            secrets.push(open(previous)?);
        }
        let auth = match &subscription.auth_sealed {
            Some(sealed) => Some(
                serde_json::from_str::<AuthDetails>(&open(sealed)?)
                    .map_err(|_| "stored authDetails cannot be read".to_string())?,
            ),
            None => None,
        };
        let msg_id = envelope::webhook_id(delivery);
        let headers = envelope::standard_webhooks_headers(&msg_id, now, &body, &secrets);
        Ok((
            OutboundRequest {
                url: subscription.event_url.clone(),
                body,
                headers,
                custom_headers: subscription.headers.clone(),
                auth,
                token_cache_key: Some(subscription.id.to_string()),
            },
            secrets,
        ))
    }
}
