//! What a subscriber receives: the body (`switchyard_core::envelope`) and the Standard Webhooks
//! headers.

use jiff::Timestamp;

use switchyard_core::model::{DeliveryRecord, EventRecord, SubscriptionRecord};
use switchyard_core::signatures::standard_webhooks;

pub use switchyard_core::envelope::event_time;

/// The body of a delivery of `event` to `subscription`.
pub fn body(event: &EventRecord, subscription: &SubscriptionRecord) -> Vec<u8> {
    let by_topic =
        switchyard_core::envelope::names_topic(event.topic.as_deref(), &subscription.event_types);
    switchyard_core::envelope::body(event, subscription.envelope, by_topic)
}

/// The type a delivery of `event` to `subscription` is announced under: its topic to a
/// subscriber of the topic or of the normalized envelope, else its native type.
pub fn announced_type<'a>(event: &'a EventRecord, subscription: &SubscriptionRecord) -> &'a str {
    match &event.topic {
        Some(topic)
            if switchyard_core::envelope::names_topic(Some(topic), &subscription.event_types)
                || (subscription.envelope == switchyard_core::model::Envelope::Normalized
                    && event.normalized.is_some()) =>
        {
            topic
        }
        _ => &event.event_type,
    }
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
    use switchyard_core::model::{Breaker, Envelope, SubscriptionStatus};
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
            resource_version: None,
            native_elided: false,
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
            filter: None,
            transform: None,
            coalesce: false,
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
