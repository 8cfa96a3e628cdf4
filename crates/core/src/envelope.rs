//! The body a subscriber receives for an event: Walmart's envelope, SellerCenter's callback body,
//! or the normalized form. Pure, so that both the delivery (which sends it) and the store's
//! fan-out (which matches content filters against it) build the same bytes.

use jiff::Timestamp;

use crate::catalog;
use crate::model::{Envelope, EventRecord};

/// `{"source":{"eventType","eventVersion","eventTime","eventId","resourceVersion"},"payload":{...}}`.
///
/// A subscriber of the event's topic gets the normalized form under the topic's name; a
/// subscriber of its native type gets the payload as published or received.
///
/// `by_topic`: the subscription names the event's topic (rather than only its native type).
pub fn body(event: &EventRecord, envelope: Envelope, by_topic: bool) -> Vec<u8> {
    let by_topic = event.topic.as_ref().filter(|_| by_topic);
    if envelope == Envelope::Sellercenter {
        return sellercenter_body(event, by_topic.is_some());
    }
    let (event_type, payload) = match (by_topic, &event.normalized) {
        (Some(topic), Some(normalized)) => (topic.as_str(), normalized),
        (None, Some(normalized)) if envelope == Envelope::Normalized => (
            event.topic.as_deref().unwrap_or(&event.event_type),
            normalized,
        ),
        _ => (event.event_type.as_str(), &event.payload),
    };
    let envelope = WalmartEnvelope {
        payload,
        source: Source {
            event_id: &event.public_event_id,
            event_time: event_time(event.occurred_at),
            event_type,
            event_version: &event.event_version,
            resource_version: event.resource_version,
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The Walmart envelope, borrowing the stored payload rather than copying it into a new JSON
/// value (that copy showed in delivery profiles). Fields in key order, as a JSON object of
/// `serde_json` would write them. Its schema is the OpenAPI document's delivered body.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = DeliveredEnvelope)]
pub struct WalmartEnvelope<'a> {
    /// The payload as published or received, or the normalized form (a topic's subscriber, or
    /// the `normalized` envelope).
    #[schema(value_type = Object)]
    payload: &'a serde_json::Value,
    source: Source<'a>,
}

/// What the delivered event is.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DeliveredSource)]
pub struct Source<'a> {
    /// The publisher's `eventId`, or the marketplace's notification id.
    event_id: &'a str,
    /// When the event happened, `2019-02-21T01:01:08.000Z`.
    event_time: String,
    /// The native type, or the topic for a topic's subscriber.
    event_type: &'a str,
    event_version: &'a str,
    /// The event's place in the hub's log: for one resource, a later event's is larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<i64>,
}

/// SellerCenter's callback body, borrowing the payload likewise.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = DeliveredSellercenterBody)]
pub struct SellercenterEnvelope<'a> {
    /// `onOrderCreated`, …, or a topic under its SellerCenter name.
    event: &'a str,
    #[schema(value_type = Object)]
    payload: &'a serde_json::Value,
    /// As `source.resourceVersion` in the Walmart envelope.
    #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    resource_version: Option<i64>,
}

/// SellerCenter's callback body, `{"event":"onOrderCreated","payload":{…}}`. A SellerCenter event
/// goes as received; a normalized topic goes under its SellerCenter name with the normalized form.
fn sellercenter_body(event: &EventRecord, by_topic: bool) -> Vec<u8> {
    let (name, payload) = match (by_topic, &event.topic, &event.normalized) {
        (true, Some(topic), Some(normalized)) => (
            catalog::sellercenter_name_of_topic(topic).unwrap_or(topic.as_str()),
            normalized,
        ),
        _ => (event.event_type.as_str(), &event.payload),
    };
    serde_json::to_vec(&SellercenterEnvelope {
        event: name,
        payload,
        resource_version: event.resource_version,
    })
    .unwrap_or_default()
}

/// Walmart's time format: `2019-02-21T01:01:08.000Z`.
pub fn event_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
