//! The body a subscriber receives for an event: Walmart's envelope, SellerCenter's callback body,
//! or the normalized form. Pure, so that both the delivery (which sends it) and the store's
//! fan-out (which matches content filters against it) build the same JSON.

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
    let normalized = event.normalized_whole();
    let (event_type, payload) = match (by_topic, normalized.as_deref()) {
        (Some(topic), Some(normalized)) => (topic.as_str(), normalized),
        (None, Some(normalized)) if envelope == Envelope::Normalized => (
            event.topic.as_deref().unwrap_or(&event.event_type),
            normalized,
        ),
        _ => (event.event_type.as_str(), &event.payload),
    };
    let envelope = WalmartEnvelope {
        payload,
        source: source(event, event_type),
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Whether a subscription of `event_types` names the event's `topic` (rather than only its
/// native type): the `by_topic` of [`body`].
pub fn names_topic(topic: Option<&str>, event_types: &[String]) -> bool {
    topic.is_some_and(|topic| event_types.iter().any(|t| t == topic))
}

/// Whether [`body`] puts the normalized form in (a subscriber of the topic, or of the
/// `normalized` envelope), rather than the payload.
pub fn uses_normalized(has_normalized: bool, envelope: Envelope, by_topic: bool) -> bool {
    has_normalized && (by_topic || envelope == Envelope::Normalized)
}

/// [`body`] for a delivery that carries the payload (`uses_normalized` false), with the payload
/// given as JSON text (a stored event's: its body as received, or its payload as written when
/// stored) and spliced in as it is, where [`body`] parses it into a value and writes it again.
/// The bytes differ only where the text does (its spacing and key order, the publisher's);
/// `event.payload` is not read.
pub fn body_with_payload_text(event: &EventRecord, envelope: Envelope, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 192);
    // Writing a struct of our own into a Vec cannot fail; nor can these strings.
    if envelope == Envelope::Sellercenter {
        out.extend_from_slice(br#"{"event":"#);
        let _ = serde_json::to_writer(&mut out, &event.event_type);
        out.extend_from_slice(br#","payload":"#);
        out.extend_from_slice(payload);
        if let Some(version) = event.resource_version {
            out.extend_from_slice(br#","resourceVersion":"#);
            out.extend_from_slice(version.to_string().as_bytes());
        }
    } else {
        out.extend_from_slice(br#"{"payload":"#);
        out.extend_from_slice(payload);
        out.extend_from_slice(br#","source":"#);
        let _ = serde_json::to_writer(&mut out, &source(event, &event.event_type));
    }
    out.push(b'}');
    out
}

fn source<'a>(event: &'a EventRecord, event_type: &'a str) -> Source<'a> {
    Source {
        event_id: &event.public_event_id,
        event_time: event_time(event.occurred_at),
        event_type,
        event_version: &event.event_version,
        resource_version: event.resource_version,
    }
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
    let normalized = event.normalized_whole();
    let (name, payload) = match (by_topic, &event.topic, normalized.as_deref()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventId;
    use serde_json::{Value, json};

    fn event(resource_version: Option<i64>) -> EventRecord {
        let at: Timestamp = "2026-11-23T12:00:00.250Z".parse().expect("time");
        EventRecord {
            id: EventId::new(),
            origin: "source".into(),
            dedup_key: None,
            partner_id: "p1".into(),
            event_type: "onOrderCreated".into(),
            event_version: "V1".into(),
            topic: None,
            public_event_id: "n-1".into(),
            occurred_at: at,
            received_at: at,
            payload: json!({"b": [1, 2], "a": "é"}),
            normalized: None,
            raw_body: None,
            resource_key: None,
            headers: Default::default(),
            trace_parent: None,
            resource_version,
            native_elided: false,
        }
    }

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("JSON")
    }

    #[test]
    fn a_spliced_payload_makes_the_same_envelope_with_the_publishers_bytes() {
        let text = br#" { "b": [1, 2],  "a": "\u00e9" } "#;
        for version in [None, Some(7)] {
            let e = event(version);
            for envelope in [
                Envelope::Walmart,
                Envelope::Normalized,
                Envelope::Sellercenter,
            ] {
                let spliced = body_with_payload_text(&e, envelope, text);
                assert_eq!(
                    parsed(&spliced),
                    parsed(&body(&e, envelope, false)),
                    "{envelope:?}"
                );
                let as_text = String::from_utf8(spliced).expect("UTF-8");
                assert!(
                    as_text.contains(r#" "b": [1, 2],  "a": "\u00e9" "#),
                    "{as_text}"
                );
            }
        }
        let walmart = parsed(&body_with_payload_text(
            &event(Some(7)),
            Envelope::Walmart,
            text,
        ));
        assert_eq!(
            walmart,
            json!({"payload": {"a": "é", "b": [1, 2]}, "source": {"eventId": "n-1",
                "eventTime": "2026-11-23T12:00:00.250Z", "eventType": "onOrderCreated",
                "eventVersion": "V1", "resourceVersion": 7}})
        );
        let sellercenter = parsed(&body_with_payload_text(
            &event(None),
            Envelope::Sellercenter,
            text,
        ));
        assert_eq!(
            sellercenter,
            json!({"event": "onOrderCreated", "payload": {"a": "é", "b": [1, 2]}})
        );
    }

    #[test]
    fn a_record_without_its_native_copy_makes_the_envelope_of_the_whole_one() {
        let mut whole = event(Some(3));
        whole.topic = Some("order.created".into());
        whole.normalized = Some(json!({"marketplace": "walmart", "native": whole.payload}));
        let mut elided = whole.clone();
        elided.normalized = Some(json!({"marketplace": "walmart"}));
        elided.native_elided = true;
        for envelope in [
            Envelope::Walmart,
            Envelope::Normalized,
            Envelope::Sellercenter,
        ] {
            for by_topic in [false, true] {
                let expected = parsed(&body(&whole, envelope, by_topic));
                assert_eq!(parsed(&body(&elided, envelope, by_topic)), expected);
                if uses_normalized(true, envelope, by_topic) {
                    assert_eq!(expected["payload"]["native"], whole.payload);
                }
            }
        }
    }

    #[test]
    fn the_normalized_form_goes_to_a_topics_subscriber_and_the_normalized_envelope() {
        assert!(uses_normalized(true, Envelope::Walmart, true));
        assert!(uses_normalized(true, Envelope::Normalized, false));
        assert!(uses_normalized(true, Envelope::Sellercenter, true));
        assert!(!uses_normalized(true, Envelope::Walmart, false));
        assert!(!uses_normalized(true, Envelope::Sellercenter, false));
        assert!(!uses_normalized(false, Envelope::Normalized, true));
    }
}
