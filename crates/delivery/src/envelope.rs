//! What a subscriber receives: the Walmart envelope and the Standard Webhooks headers.

use jiff::Timestamp;

use switchyard_core::catalog;
use switchyard_core::model::{DeliveryRecord, Envelope, EventRecord, SubscriptionRecord};
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
    if subscription.envelope == Envelope::Sellercenter {
        return sellercenter_body(event, by_topic.is_some());
    }
    let (event_type, payload) = match (by_topic, &event.normalized) {
        (Some(topic), Some(normalized)) => (topic.as_str(), normalized),
        (None, Some(normalized)) if subscription.envelope == Envelope::Normalized => (
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
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The Walmart envelope, borrowing the stored payload rather than copying it into a new JSON
/// value (that copy showed in delivery profiles). Fields in key order, as a JSON object of
/// `serde_json` would write them.
#[derive(serde::Serialize)]
struct WalmartEnvelope<'a> {
    payload: &'a serde_json::Value,
    source: Source<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Source<'a> {
    event_id: &'a str,
    event_time: String,
    event_type: &'a str,
    event_version: &'a str,
}

/// SellerCenter's callback body, borrowing the payload likewise.
#[derive(serde::Serialize)]
struct SellercenterEnvelope<'a> {
    event: &'a str,
    payload: &'a serde_json::Value,
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
    })
    .unwrap_or_default()
}

/// Walmart's time format: `2019-02-21T01:01:08.000Z`.
pub fn event_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The id a receiver dedups on: the delivery's id, stable across every retry of it.
pub fn webhook_id(delivery: &DeliveryRecord) -> String {
    format!("msg_{}", delivery.id.0.simple())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_core::model::{Breaker, SubscriptionStatus};
    use switchyard_core::retry::RetryPolicy;
    use uuid::Uuid;

    fn event() -> EventRecord {
        let at: Timestamp = "2026-11-23T12:00:00Z".parse().expect("time");
        EventRecord {
            id: Uuid::now_v7().into(),
            origin: "source".into(),
            dedup_key: Some("k".into()),
            partner_id: "p1".into(),
            event_type: "ORDER_STATUS_CHANGE".into(),
            event_version: "V1".into(),
            topic: Some("order.created".into()),
            public_event_id: "n-1".into(),
            occurred_at: at,
            received_at: at,
            payload: json!({"native": true}),
            normalized: Some(
                json!({"marketplace": "tiktok", "resource": {"type": "order", "id": "TT-1"}}),
            ),
            raw_body: None,
            resource_key: Some("order:TT-1".into()),
            headers: Default::default(),
            trace_parent: None,
        }
    }

    fn subscription(types: &[&str], envelope: Envelope) -> SubscriptionRecord {
        let at: Timestamp = "2026-11-23T12:00:00Z".parse().expect("time");
        SubscriptionRecord {
            id: Uuid::now_v7().into(),
            partner_id: "p1".into(),
            client_id: "c".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            event_version: "V1".into(),
            resource_name: "ORDER".into(),
            event_url: "https://example.com".into(),
            headers: Default::default(),
            auth_sealed: None,
            status: SubscriptionStatus::Active,
            retry_policy: RetryPolicy::Walmart,
            signing_secret_sealed: String::new(),
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            created_at: at,
            updated_at: at,
            ordering: Default::default(),
            max_in_flight: None,
            rate_limit: None,
            disabled_reason: None,
            breaker: Breaker::default(),
            auto_disable_after_secs: 3600,
            envelope,
        }
    }

    fn parsed(body: Vec<u8>) -> serde_json::Value {
        serde_json::from_slice(&body).expect("JSON body")
    }

    #[test]
    fn each_envelope_shapes_the_body() {
        let e = event();
        let native = parsed(body(
            &e,
            &subscription(&["ORDER_STATUS_CHANGE"], Envelope::Walmart),
        ));
        assert_eq!(native["source"]["eventType"], "ORDER_STATUS_CHANGE");
        assert_eq!(native["payload"], json!({"native": true}));

        let normalized = parsed(body(
            &e,
            &subscription(&["ORDER_STATUS_CHANGE"], Envelope::Normalized),
        ));
        assert_eq!(normalized["source"]["eventType"], "order.created");
        assert_eq!(normalized["payload"]["marketplace"], "tiktok");

        let sc = parsed(body(
            &e,
            &subscription(&["onOrderCreated", "order.created"], Envelope::Sellercenter),
        ));
        assert_eq!(sc["event"], "onOrderCreated");
        assert_eq!(sc["payload"]["resource"]["id"], "TT-1");
        assert!(sc.get("source").is_none());
    }

    /// The bytes subscribers verify signatures over: keys in order, nothing added.
    #[test]
    fn the_walmart_envelope_is_exactly_these_bytes() {
        let body = body(
            &event(),
            &subscription(&["ORDER_STATUS_CHANGE"], Envelope::Walmart),
        );
        assert_eq!(
            String::from_utf8(body).expect("UTF-8"),
            r#"{"payload":{"native":true},"source":{"eventId":"n-1","eventTime":"2026-11-23T12:00:00.000Z","eventType":"ORDER_STATUS_CHANGE","eventVersion":"V1"}}"#
        );
    }
}
