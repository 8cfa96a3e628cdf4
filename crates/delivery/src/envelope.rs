//! What a subscriber receives: the Walmart envelope and the Standard Webhooks headers.

use jiff::Timestamp;
use serde_json::json;

use switchyard_core::model::{DeliveryRecord, EventRecord, SubscriptionRecord};
use switchyard_core::signatures::standard_webhooks;

/// `{"source":{"eventType","eventVersion","eventTime","eventId"},"payload":{...}}`.
///
/// A subscriber of the event's topic gets the normalized form under the topic's name; a
/// subscriber of its native type gets the payload as published or received.
pub fn body(event: &EventRecord, subscription: &SubscriptionRecord) -> Vec<u8> {
    let by_topic = event
        .topic
        .as_ref()
        .filter(|topic| subscription.event_types.iter().any(|t| t == *topic));
    let (event_type, payload) = match (by_topic, &event.normalized) {
        (Some(topic), Some(normalized)) => (topic.as_str(), normalized),
        _ => (event.event_type.as_str(), &event.payload),
    };
    let envelope = json!({
        "source": {
            "eventType": event_type,
            "eventVersion": event.event_version,
            "eventTime": event_time(event.occurred_at),
            "eventId": event.public_event_id,
        },
        "payload": payload,
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Walmart's time format: `2019-02-21T01:01:08.000Z`.
pub fn event_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The id a receiver dedups on: the delivery's id, stable across every retry of it.
pub fn webhook_id(delivery: &DeliveryRecord) -> String {
    format!("msg_{}", delivery.id.simple())
}

/// `webhook-id`, `webhook-timestamp` and `webhook-signature` (one `v1,` entry per secret).
pub fn standard_webhooks_headers(
    msg_id: &str,
    now: Timestamp,
    body: &[u8],
    secrets: &[String],
) -> Vec<(String, String)> {
    let timestamp = now.as_second();
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|s| standard_webhooks::sign(s, msg_id, timestamp, body).ok())
        .collect();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), msg_id.to_string()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
    ];
    if !signatures.is_empty() {
        headers.push(("webhook-signature".to_string(), signatures.join(" ")));
    }
    headers
}
