//! Mapping between SQLite rows and core records.

use rusqlite::Row;
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis};
use switchyard_core::model::{
    AttemptRecord, Client, DeliveryRecord, DeliveryStatus, EventRecord, SubscriptionRecord,
    SubscriptionStatus,
};

use crate::StoreError;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(StoreError::Corrupt(what.to_string())))
}

fn uuid(row: &Row, idx: &str) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text).map_err(|e| corrupt(format!("{idx}: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, idx: &str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{idx}: {e}")))
}

fn time(row: &Row, idx: &str) -> rusqlite::Result<jiff::Timestamp> {
    Ok(from_millis(row.get(idx)?))
}

fn opt_time(row: &Row, idx: &str) -> rusqlite::Result<Option<jiff::Timestamp>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(from_millis))
}

pub(crate) fn ms(t: jiff::Timestamp) -> i64 {
    to_millis(t)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain records cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) const CLIENT_COLUMNS: &str =
    "id, name, secret_hash, partners, scopes, admin, created_at";

pub(crate) fn client(row: &Row) -> rusqlite::Result<Client> {
    Ok(Client {
        id: row.get("id")?,
        name: row.get("name")?,
        secret_hash: row.get("secret_hash")?,
        partners: json(row, "partners")?,
        scopes: json(row, "scopes")?,
        admin: row.get("admin")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) const SUBSCRIPTION_COLUMNS: &str = "s.id, s.partner_id, s.client_id, s.event_types, \
    s.event_version, s.resource_name, s.event_url, s.headers, s.auth_sealed, s.status, \
    s.retry_policy, s.signing_secret_sealed, s.previous_secret_sealed, \
    s.previous_secret_expires_at, s.created_at, s.updated_at";

pub(crate) fn subscription(row: &Row) -> rusqlite::Result<SubscriptionRecord> {
    let status: String = row.get("status")?;
    Ok(SubscriptionRecord {
        id: uuid(row, "id")?,
        partner_id: row.get("partner_id")?,
        client_id: row.get("client_id")?,
        event_types: json(row, "event_types")?,
        event_version: row.get("event_version")?,
        resource_name: row.get("resource_name")?,
        event_url: row.get("event_url")?,
        headers: json(row, "headers")?,
        auth_sealed: row.get("auth_sealed")?,
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("subscription status {status:?}")))?,
        retry_policy: json(row, "retry_policy")?,
        signing_secret_sealed: row.get("signing_secret_sealed")?,
        previous_secret_sealed: row.get("previous_secret_sealed")?,
        previous_secret_expires_at: opt_time(row, "previous_secret_expires_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) const EVENT_COLUMNS: &str = "e.id, e.origin, e.dedup_key, e.partner_id, e.event_type, \
    e.event_version, e.topic, e.public_event_id, e.occurred_at, e.received_at, e.payload";

pub(crate) fn event(row: &Row) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: uuid(row, "id")?,
        origin: row.get("origin")?,
        dedup_key: row.get("dedup_key")?,
        partner_id: row.get("partner_id")?,
        event_type: row.get("event_type")?,
        event_version: row.get("event_version")?,
        topic: row.get("topic")?,
        public_event_id: row.get("public_event_id")?,
        occurred_at: time(row, "occurred_at")?,
        received_at: time(row, "received_at")?,
        payload: json(row, "payload")?,
    })
}

pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.subscription_id, d.partner_id, \
    d.status, d.attempts, d.next_attempt_at, d.first_attempt_at, d.last_attempt_at, \
    d.last_status_code, d.last_error, d.created_at, d.updated_at";

pub(crate) fn delivery(row: &Row) -> rusqlite::Result<DeliveryRecord> {
    let status: String = row.get("status")?;
    Ok(DeliveryRecord {
        id: uuid(row, "id")?,
        event_id: uuid(row, "event_id")?,
        subscription_id: uuid(row, "subscription_id")?,
        partner_id: row.get("partner_id")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("delivery status {status:?}")))?,
        attempts: row.get("attempts")?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        first_attempt_at: opt_time(row, "first_attempt_at")?,
        last_attempt_at: opt_time(row, "last_attempt_at")?,
        last_status_code: row.get("last_status_code")?,
        last_error: row.get("last_error")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) const ATTEMPT_COLUMNS: &str = "a.id, a.delivery_id, a.attempted_at, a.succeeded, \
    a.status_code, a.latency_ms, a.error_class, a.error_message, a.response_excerpt";

pub(crate) fn attempt(row: &Row) -> rusqlite::Result<AttemptRecord> {
    Ok(AttemptRecord {
        id: uuid(row, "id")?,
        delivery_id: uuid(row, "delivery_id")?,
        attempted_at: time(row, "attempted_at")?,
        succeeded: row.get("succeeded")?,
        status_code: row.get("status_code")?,
        latency_ms: row.get::<_, i64>("latency_ms")?.max(0) as u64,
        error_class: row.get("error_class")?,
        error_message: row.get("error_message")?,
        response_excerpt: row.get("response_excerpt")?,
    })
}
