//! Publishing an event through the API: checked against the catalog and the caller's scope, then
//! stored with its deliveries in one transaction. Callable without HTTP.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use switchyard_core::catalog::{self, Family};
use switchyard_core::model::{Access, Client, EventRecord};
use switchyard_store::InsertOutcome;

use switchyard_delivery::trace_context::traceparent;
use tracing::Instrument as _;

use super::receive_webhook::{record_store, store_span};
use super::scope::{resolve_partner, tenant};
use crate::AppState;
use crate::error::{AppError, AppResult};
use switchyard_core::model::EventId;

/// An event to publish.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishRequest {
    #[schema(value_type = switchyard_core::wire_schema::EventTypeName)]
    pub event_type: String,
    /// Default: the type's version.
    pub event_version: Option<String>,
    /// Default: `WM_PARTNER.ID`, else the client's only partner.
    pub partner_id: Option<String>,
    /// The publisher's id; repeating it creates nothing.
    #[schema(min_length = 1, max_length = 255)]
    pub event_id: Option<String>,
    /// When the fact happened; defaults to now.
    pub occurred_at: Option<Timestamp>,
    /// What the event is about, for subscriptions with `ordering: "resource"`.
    pub resource: Option<ResourceRef>,
    /// Must match the type's schema.
    pub payload: Value,
}

/// What an event is about.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// What publishing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Stored, with this many deliveries.
    Accepted { event_id: EventId, deliveries: u32 },
    /// The event id (or idempotency key) was published before; the stored event's id.
    Duplicate { event_id: EventId },
}

/// Stores an event with its deliveries in one transaction; returns only after the commit.
pub async fn publish(
    state: &AppState,
    caller: &Client,
    header_partner: Option<&str>,
    idempotency_key: Option<&str>,
    p: PublishRequest,
) -> AppResult<Published> {
    let entry = catalog::find(&p.event_type).ok_or_else(|| {
        AppError::bad_request(
            "unknown_event_type",
            format!(
                "unknown event type {:?}; GET /v3/webhooks/eventTypes lists them",
                p.event_type
            ),
        )
        .with_field("eventType")
    })?;
    let version = p
        .event_version
        .unwrap_or_else(|| entry.event_version.to_string());
    if version != entry.event_version {
        return Err(AppError::bad_request(
            "unknown_event_version",
            format!("{} has version {}", entry.event_type, entry.event_version),
        )
        .with_field("eventVersion"));
    }
    let partner_id = resolve_partner(caller, p.partner_id, header_partner, "partnerId")?;
    if caller.access_to(entry.resource_name) != Access::FullAccess {
        return Err(AppError::forbidden(
            "insufficient_scope",
            format!(
                "publishing {} events needs full_access on {}",
                entry.event_type, entry.resource_name
            ),
        ));
    }
    catalog::validate_payload(entry.event_type, &p.payload)?;
    if let Some(r) = &p.resource
        && (r.kind.is_empty() || r.id.is_empty() || r.kind.len() + r.id.len() > 255)
    {
        return Err(AppError::invalid(
            "resource",
            "resource needs a type and an id (255 characters at most)",
        ));
    }
    let dedup_key = p
        .event_id
        .clone()
        .or_else(|| idempotency_key.map(str::to_string));
    if dedup_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 255)
    {
        return Err(AppError::invalid(
            "eventId",
            "eventId must be 1 to 255 characters",
        ));
    }
    let now = state.clock.now();
    let id = EventId::new();
    let event = EventRecord {
        id,
        origin: format!("publish:{partner_id}"),
        dedup_key,
        partner_id,
        event_type: entry.event_type.to_string(),
        event_version: version,
        topic: (entry.family == Family::Normalized).then(|| entry.event_type.to_string()),
        public_event_id: p.event_id.unwrap_or_else(|| id.to_string()),
        occurred_at: p.occurred_at.unwrap_or(now),
        received_at: now,
        payload: p.payload,
        normalized: None,
        raw_body: None,
        resource_key: p.resource.map(|r| format!("{}:{}", r.kind, r.id)),
        headers: Default::default(),
        // Deliveries continue the trace the event is published in (`attempt` spans).
        trace_parent: traceparent(&tracing::Span::current()),
        resource_version: None,
        native_elided: false,
    };
    let span = store_span();
    let stored = tenant(state, caller)
        .insert_event(event, None)
        .instrument(span.clone())
        .await;
    record_store(&span, &stored);
    match stored? {
        InsertOutcome::Created {
            event_id,
            deliveries,
        } => {
            if deliveries > 0 {
                state.dispatcher.wake();
            }
            Ok(Published::Accepted {
                event_id,
                deliveries,
            })
        }
        InsertOutcome::Duplicate { event_id } => Ok(Published::Duplicate { event_id }),
    }
}
