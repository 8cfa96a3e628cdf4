//! How an event is kept: each fact once. Both backends store this form and read it back into
//! an [`EventRecord`].
//!
//! A received event carries its body three times over in the model: the raw bytes, the parsed
//! payload, and the normalized form whose `native` is that payload again. Stored, the raw body
//! is kept once; the payload only when it is not simply the body parsed (Amazon's, whose
//! `Message` is parsed inside the envelope); the normalized form without its `native` when that
//! is the payload (`native_elided`); the public event id only when it is not the id itself.

use switchyard_core::clock::{from_millis, to_millis};
use switchyard_core::envelope;
use switchyard_core::model::{EventRecord, SubscriptionRecord};
use uuid::Uuid;

use crate::StoreError;

/// An event as both stores write it.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub id: Uuid,
    pub origin: String,
    pub dedup_key: Option<String>,
    pub partner_id: String,
    pub event_type: String,
    pub event_version: String,
    pub topic: Option<String>,
    /// `None`: the id itself, hyphenated.
    pub public_event_id: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    /// The payload as JSON text; `None`: the raw body is the payload.
    pub payload: Option<String>,
    pub raw_body: Option<Vec<u8>>,
    /// The normalized form as JSON text, without `native` when `native_elided`.
    pub normalized: Option<String>,
    /// The normalized form's `native` is the payload and was left out.
    pub native_elided: bool,
    /// The normalized form's `marketplace`, for the console's filters.
    pub marketplace: Option<String>,
    pub resource_key: Option<String>,
    /// The received headers as a JSON object; `None` when there are none.
    pub headers: Option<String>,
    pub trace_parent: Option<String>,
    /// Its position in the log (`None` until stored): the resourceVersion of its envelopes.
    pub seq: Option<i64>,
}

/// Serializes one of our own values (maps of strings, JSON values): it cannot fail.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

impl StoredEvent {
    /// The stored form of a record. Serializing and the comparisons that elide copies happen
    /// here, on the caller's thread, not on a writer.
    pub fn from_record(e: EventRecord) -> StoredEvent {
        let payload_is_body = e
            .raw_body
            .as_ref()
            .is_some_and(|raw| crate::parses_to::parses_to(raw, &e.payload));
        let marketplace = e
            .normalized
            .as_ref()
            .and_then(|n| n.get("marketplace"))
            .and_then(|m| m.as_str())
            .map(str::to_string);
        let (normalized, native_elided) = match e.normalized {
            // Built without its copy of the payload: stored as it is.
            Some(normalized) if e.native_elided => (Some(json_text(&normalized)), true),
            Some(serde_json::Value::Object(mut map))
                if map.get("native").is_some_and(|n| *n == e.payload) =>
            {
                map.remove("native");
                (Some(json_text(&map)), true)
            }
            Some(other) => (Some(json_text(&other)), false),
            None => (None, false),
        };
        let hyphenated = e.id.to_string();
        StoredEvent {
            id: e.id.0,
            public_event_id: (e.public_event_id != hyphenated).then_some(e.public_event_id),
            origin: e.origin,
            dedup_key: e.dedup_key,
            partner_id: e.partner_id.0,
            event_type: e.event_type,
            event_version: e.event_version,
            topic: e.topic,
            occurred_at: to_millis(e.occurred_at),
            received_at: to_millis(e.received_at),
            payload: (!payload_is_body).then(|| json_text(&e.payload)),
            raw_body: e.raw_body,
            normalized,
            native_elided,
            marketplace,
            resource_key: e.resource_key,
            headers: (!e.headers.is_empty()).then(|| json_text(&e.headers)),
            trace_parent: e.trace_parent,
            seq: e.resource_version,
        }
    }

    /// What an attempt of a delivery of this event to `subscription` needs: the record, and
    /// the body it sends. The body carries the payload or the normalized form
    /// (`switchyard_core::envelope::body`); when it carries the payload, the stored text is
    /// spliced into the envelope and the record's `payload` left `Null`, its `normalized`
    /// `None`: no attempt parses JSON into a value only to write it out again (the parse, the
    /// write and the value's drop were a tenth of a delivery's CPU).
    pub fn into_claimed(
        mut self,
        subscription: &SubscriptionRecord,
    ) -> Result<(EventRecord, Vec<u8>), StoreError> {
        let by_topic = envelope::names_topic(self.topic.as_deref(), &subscription.event_types);
        let envelope = subscription.envelope;
        if envelope::uses_normalized(self.normalized.is_some(), envelope, by_topic) {
            let record = self.into_record(false)?;
            let body = envelope::body(&record, envelope, by_topic);
            return Ok((record, body));
        }
        let payload = match (self.payload.take(), self.raw_body.take()) {
            (Some(text), _) => text.into_bytes(),
            (None, Some(raw)) => raw,
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "event {} has neither payload nor body",
                    self.id
                )));
            }
        };
        self.normalized = None;
        // What is left parses nothing but the headers, which a claim does not read.
        self.payload = Some("null".into());
        let record = self.into_record(false)?;
        let body = envelope::body_with_payload_text(&record, envelope, &payload);
        Ok((record, body))
    }

    /// The record back. `with_body` false leaves `raw_body` out (an attempt does not need it),
    /// though it is still read when it is the payload.
    pub fn into_record(self, with_body: bool) -> Result<EventRecord, StoreError> {
        let corrupt =
            |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{what}: {e}"));
        let payload: serde_json::Value = match (&self.payload, &self.raw_body) {
            (Some(text), _) => serde_json::from_str(text).map_err(|e| corrupt("payload", e))?,
            (None, Some(raw)) => serde_json::from_slice(raw).map_err(|e| corrupt("raw body", e))?,
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "event {} has neither payload nor body",
                    self.id
                )));
            }
        };
        let normalized = match &self.normalized {
            Some(text) => {
                let mut value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| corrupt("normalized", e))?;
                if self.native_elided
                    && let Some(map) = value.as_object_mut()
                {
                    map.insert("native".into(), payload.clone());
                }
                Some(value)
            }
            None => None,
        };
        let headers = match &self.headers {
            Some(text) => serde_json::from_str(text).map_err(|e| corrupt("headers", e))?,
            None => Default::default(),
        };
        Ok(EventRecord {
            public_event_id: self.public_event_id.unwrap_or_else(|| self.id.to_string()),
            id: self.id.into(),
            origin: self.origin,
            dedup_key: self.dedup_key,
            partner_id: self.partner_id.into(),
            event_type: self.event_type,
            event_version: self.event_version,
            topic: self.topic,
            occurred_at: from_millis(self.occurred_at),
            received_at: from_millis(self.received_at),
            payload,
            normalized,
            raw_body: if with_body { self.raw_body } else { None },
            resource_key: self.resource_key,
            headers,
            trace_parent: self.trace_parent,
            resource_version: self.seq,
            native_elided: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received(raw: &str, payload: serde_json::Value) -> EventRecord {
        let id = switchyard_core::model::EventId::new();
        EventRecord {
            id,
            origin: "source-1".into(),
            dedup_key: Some("k".into()),
            partner_id: "p1".into(),
            event_type: "PO_CREATED".into(),
            event_version: "V1".into(),
            topic: Some("order.created".into()),
            public_event_id: id.to_string(),
            occurred_at: from_millis(1_000),
            received_at: from_millis(2_000),
            normalized: Some(json!({"marketplace": "walmart", "native": payload.clone(),
                                    "resource": {"type": "order", "id": "PO-1"}})),
            payload,
            raw_body: Some(raw.as_bytes().to_vec()),
            resource_key: Some("order:PO-1".into()),
            headers: [("x-a".to_string(), "1".to_string())].into(),
            trace_parent: None,
            resource_version: None,
            native_elided: false,
        }
    }

    #[test]
    fn a_received_event_keeps_its_body_once_and_reads_back_whole() {
        let raw = r#"{ "b": [1, 2],  "a": "é" }"#;
        let e = received(raw, serde_json::from_str(raw).unwrap());
        let stored = StoredEvent::from_record(e.clone());
        assert_eq!(stored.payload, None, "the body is the payload");
        assert!(stored.native_elided);
        assert!(!stored.normalized.as_deref().unwrap().contains("native"));
        assert_eq!(stored.public_event_id, None);
        assert_eq!(stored.marketplace.as_deref(), Some("walmart"));
        assert_eq!(stored.into_record(true).unwrap(), e);
    }

    #[test]
    fn a_record_built_without_its_native_copy_is_stored_as_the_whole_one() {
        let raw = r#"{"a": {"b": [1, null, "x"]}, "c": 2.5}"#;
        let whole = received(raw, serde_json::from_str(raw).unwrap());
        let mut elided = whole.clone();
        if let Some(serde_json::Value::Object(map)) = &mut elided.normalized {
            map.remove("native");
        }
        elided.native_elided = true;
        assert_eq!(
            elided.normalized_whole().as_deref(),
            whole.normalized.as_ref()
        );
        let (a, b) = (
            StoredEvent::from_record(whole.clone()),
            StoredEvent::from_record(elided),
        );
        assert_eq!(a.normalized, b.normalized);
        assert!(a.native_elided && b.native_elided);
        assert_eq!(b.into_record(true).unwrap(), whole);
    }

    #[test]
    fn a_payload_that_is_not_the_body_is_kept_and_a_foreign_native_too() {
        let mut e = received(r#"{"Message": "{\"a\":1}"}"#, json!({"Message": {"a": 1}}));
        e.normalized = Some(json!({"marketplace": "amazon", "native": {"other": true}}));
        e.public_event_id = "amz-1".into();
        let stored = StoredEvent::from_record(e.clone());
        assert!(stored.payload.is_some());
        assert!(!stored.native_elided);
        assert_eq!(stored.public_event_id.as_deref(), Some("amz-1"));
        assert_eq!(stored.into_record(true).unwrap(), e);
    }

    #[test]
    fn a_published_event_is_its_payload() {
        let mut e = received("", json!({"n": 1}));
        e.raw_body = None;
        e.normalized = None;
        e.headers = Default::default();
        let stored = StoredEvent::from_record(e.clone());
        assert_eq!(stored.payload.as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(stored.headers, None);
        let back = stored.into_record(false).unwrap();
        assert_eq!(back, e);
    }
}
