//! The answers of the JSON API, one type per shape (`*Out`, as Svix's server has them): the
//! routes build these, never ad-hoc JSON, so an answer's fields are named in one place. Fields
//! are declared in alphabetical order, the order the answers have always been written in.
//! (Requests are the `*Request` types beside their use cases in `services`.)

use serde::Serialize;
use uuid::Uuid;

use jiff::Timestamp;
use serde_json::Value;
use switchyard_core::model::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, EventRecord, RejectionRecord, SubscriptionStatus,
};
use switchyard_store::RejectionCount;

use crate::services::sources::SourceView;
use crate::services::subscriptions::CreatedSubscription;
use crate::views::SubscriptionOut;
use switchyard_core::model::PartnerId;
use switchyard_core::model::{DeliveryId, EventId, SourceId, SubscriptionId};

/// The catalog, in Walmart's list shape (`{"events": [...]}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventTypeList)]
pub struct EventTypeListOut {
    pub events: Vec<EventTypeOut>,
}

/// Subscriptions, in Walmart's list shape (`{"events": [...]}`), credentials masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SubscriptionList)]
pub struct SubscriptionListOut {
    pub events: Vec<SubscriptionOut>,
}

/// Subscriptions just created, in Walmart's list shape, each with its signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CreatedSubscriptions)]
pub struct CreatedSubscriptionsOut {
    pub events: Vec<CreatedSubscription>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SourceList)]
pub struct SourcesOut {
    pub sources: Vec<SourceView>,
}

/// A source's reconciliation runs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReconciliationList)]
pub struct ReconciliationsOut {
    pub reconciliations: Vec<switchyard_core::model::ReconcileRun>,
}

/// A page of events, newest first; `nextBefore` asks for the next.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventList)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<EventOut>,
    pub next_before: Option<EventId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryList)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesPage {
    pub deliveries: Vec<DeliveryRecord>,
    pub next_before: Option<DeliveryId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RejectionList)]
#[serde(rename_all = "camelCase")]
pub struct RejectionsPage {
    pub next_before: Option<Uuid>,
    pub rejections: Vec<RejectionRecord>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RejectionSummary)]
pub struct RejectionSummaryOut {
    pub counts: Vec<RejectionCount>,
    pub since: Timestamp,
    pub total: u64,
}

/// What publishing or receiving an event came to: `accepted` (with its deliveries, when
/// published) or `duplicate`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Accepted)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    pub event_id: EventId,
    pub status: &'static str,
}

/// An event's raw body: text when it is UTF-8 (marketplaces send JSON), else base64.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RawBody)]
pub struct RawBodyOut {
    pub body: String,
    pub encoding: &'static str,
}

/// An event as the API shows it; the raw body only on its own page, its deliveries too.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
#[serde(rename_all = "camelCase")]
pub struct EventOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryRecord>>,
    pub event_id: EventId,
    pub event_type: String,
    pub event_version: String,
    pub normalized: Option<Value>,
    pub occurred_at: Timestamp,
    /// How the event came: `webhook` (received from a source), `reconciliation` (made by a
    /// reconciliation for an order fact no webhook announced) or `publish` (published through
    /// the API, or by the hub itself: performance notifications, alarms).
    #[schema(value_type = String, example = "webhook")]
    pub origin: &'static str,
    pub partner_id: PartnerId,
    pub payload: Value,
    pub public_event_id: String,
    /// Absent in lists; `null` on the event's page when the event was published, not received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Option<RawBodyOut>>,
    pub received_at: Timestamp,
    /// The source it was received from (or reconciled for); absent for a published event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    pub topic: Option<String>,
}

/// How an event came to the hub, as `/api/v1/events` and the console name it.
pub fn origin_of(e: &EventRecord) -> &'static str {
    if source_of(e).is_none() {
        "publish"
    } else if e
        .normalized
        .as_ref()
        .and_then(|n| n.get("origin"))
        .and_then(Value::as_str)
        == Some("reconciliation")
    {
        "reconciliation"
    } else {
        "webhook"
    }
}

/// The source an event was received from: its origin is the source's id (a UUID), where a
/// published event's is `publish:{partner}` and the hub's own a name.
pub fn source_of(e: &EventRecord) -> Option<&str> {
    Uuid::parse_str(&e.origin)
        .is_ok()
        .then_some(e.origin.as_str())
}

impl EventOut {
    /// The event without its raw body or deliveries (a list's row).
    pub fn row(e: &EventRecord) -> EventOut {
        EventOut {
            deliveries: None,
            event_id: e.id,
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            normalized: e.normalized.clone(),
            occurred_at: e.occurred_at,
            origin: origin_of(e),
            partner_id: e.partner_id.clone(),
            payload: e.payload.clone(),
            public_event_id: e.public_event_id.clone(),
            raw: None,
            received_at: e.received_at,
            source_id: source_of(e).map(str::to_string),
            topic: e.topic.clone(),
        }
    }

    /// The event with its raw body and deliveries (its own page).
    pub fn detail(e: &EventRecord, deliveries: Vec<DeliveryRecord>) -> EventOut {
        let raw = e
            .raw_body
            .as_ref()
            .map(|raw| match std::str::from_utf8(raw) {
                Ok(text) => RawBodyOut {
                    body: text.to_string(),
                    encoding: "utf-8",
                },
                Err(_) => RawBodyOut {
                    body: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw),
                    encoding: "base64",
                },
            });
        EventOut {
            deliveries: Some(deliveries),
            raw: Some(raw),
            ..EventOut::row(e)
        }
    }
}

/// A delivery with every attempt: the delivery's fields, with `attempts` the attempts themselves
/// rather than their count. (It was once the delivery flattened beside `attempts`, which wrote
/// the key twice, the count and then the list; clients read the list.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DeliveryDetail)]
pub struct DeliveryDetailOut {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub partner_id: PartnerId,
    pub status: DeliveryStatus,
    /// Every attempt made.
    pub attempts: Vec<AttemptRecord>,
    pub next_attempt_at: Option<Timestamp>,
    pub first_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl DeliveryDetailOut {
    pub fn new(d: DeliveryRecord, attempts: Vec<AttemptRecord>) -> Self {
        DeliveryDetailOut {
            id: d.id,
            event_id: d.event_id,
            subscription_id: d.subscription_id,
            partner_id: d.partner_id,
            status: d.status,
            attempts,
            next_attempt_at: d.next_attempt_at,
            first_attempt_at: d.first_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Replayed)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOut {
    pub replayed: u64,
    pub subscription_id: SubscriptionId,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SubscriptionDeleted)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDeletedOut {
    pub message: &'static str,
    pub subscription_id: SubscriptionId,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SourceDeleted)]
#[serde(rename_all = "camelCase")]
pub struct SourceDeletedOut {
    pub message: &'static str,
    pub source_id: SourceId,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageOut {
    pub message: &'static str,
}

/// A test notification's answer: Walmart's message, and with a `filter`, whether the sample
/// passes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Tested)]
pub struct TestedOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_matches: Option<bool>,
    pub message: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Status)]
pub struct StatusOut {
    pub status: &'static str,
}

/// An OAuth token, in the shape of Walmart's `/v3/token` (`token_type` is `Bearer`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Token)]
pub struct TokenOut {
    pub access_token: String,
    pub expires_in: i64,
    pub token_type: &'static str,
}

/// A subscription's delivery health over the last 24 hours.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SubscriptionHealth)]
#[serde(rename_all = "camelCase")]
pub struct HealthOut {
    pub attempts: usize,
    pub backlog: u64,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub breaker_until: Option<Timestamp>,
    pub consecutive_failures: usize,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub oldest_pending_at: Option<Timestamp>,
    pub paced: bool,
    pub paced_until: Option<Timestamp>,
    pub status: SubscriptionStatus,
    pub subscription_id: SubscriptionId,
    pub success_rate: Option<f64>,
    pub window: &'static str,
}

/// One type of the catalog, as `GET /v3/webhooks/eventTypes` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventType)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub description: &'static str,
    pub event_type: &'static str,
    pub event_version: &'static str,
    pub family: switchyard_core::catalog::Family,
    pub resource_name: &'static str,
    pub schema: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = FactsApplied)]
#[serde(rename_all = "camelCase")]
pub struct FactsAppliedOut {
    pub applied: usize,
    pub partner_id: PartnerId,
}

/// A performance notification computed now, not sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PerformancePreview)]
#[serde(rename_all = "camelCase")]
pub struct PerformancePreviewOut {
    pub as_of: Timestamp,
    pub notification_type: &'static str,
    pub partner_id: PartnerId,
    /// `null` when the partner has nothing to report for the type.
    pub payload: Option<Value>,
}

/// A background task that is down, in `/readyz`'s 503.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TaskDown)]
pub struct TaskDownOut {
    pub name: &'static str,
    pub reason: String,
}

/// `/readyz`'s 503 when tasks are down: the error envelope every refusal has, with the tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TasksDown)]
pub struct TasksDownOut {
    pub error: TasksDownError,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TasksDownError)]
pub struct TasksDownError {
    pub code: &'static str,
    pub message: String,
    /// Present with `task_down`, absent with `store_unavailable`.
    #[schema(required = false)]
    pub tasks: Vec<TaskDownOut>,
}
