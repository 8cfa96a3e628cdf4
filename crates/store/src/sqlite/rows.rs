//! Mapping between SQLite rows and core records.

use rusqlite::Row;
use uuid::Uuid;

use switchyard_core::clock::{from_millis, to_millis};
use switchyard_core::model::{
    AttemptRecord, Breaker, Client, DeliveryRecord, DeliveryStatus, Envelope, EventRecord,
    LoggedAttempt, Ordering, OutcomeRecord, RateLimit, RejectionRecord, SourceRecord,
    SubscriptionRecord, SubscriptionStatus,
};

use crate::StoreError;
use crate::stored::StoredEvent;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(StoreError::Corrupt(what.to_string())))
}

/// A UUID column, as the id type the record's field has.
fn uuid<T: From<Uuid>>(row: &Row, idx: &str) -> rusqlite::Result<T> {
    row.get::<_, Uuid>(idx).map(T::from)
}

fn uuid_at<T: From<Uuid>>(row: &Row, idx: usize) -> rusqlite::Result<T> {
    row.get::<_, Uuid>(idx).map(T::from)
}

fn json_at<T: serde::de::DeserializeOwned>(row: &Row, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("column {idx}: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, idx: &str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{idx}: {e}")))
}

fn time(row: &Row, idx: &str) -> rusqlite::Result<jiff::Timestamp> {
    Ok(from_millis(row.get(idx)?))
}

pub(crate) fn ms(t: jiff::Timestamp) -> i64 {
    to_millis(t)
}

pub(crate) use crate::stored::json_text as to_json;

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
    s.previous_secret_expires_at, s.created_at, s.updated_at, s.ordering, s.max_in_flight, \
    s.rate_per_sec, s.rate_burst, s.disabled_reason, s.breaker_threshold, s.breaker_probe_secs, \
    s.auto_disable_after_secs, s.envelope, s.filter, s.transform, s.coalesce_state";

/// Reads a subscription whose columns (in `SUBSCRIPTION_COLUMNS` order) start at `at`, so the
/// same reader serves plain and joined rows.
pub(crate) fn subscription_at(row: &Row, at: usize) -> rusqlite::Result<SubscriptionRecord> {
    let status: String = row.get(at + 9)?;
    Ok(SubscriptionRecord {
        id: uuid_at(row, at)?,
        partner_id: row.get(at + 1)?,
        client_id: row.get(at + 2)?,
        event_types: json_at(row, at + 3)?,
        event_version: row.get(at + 4)?,
        resource_name: row.get(at + 5)?,
        event_url: row.get(at + 6)?,
        headers: json_at(row, at + 7)?,
        auth_sealed: row.get(at + 8)?,
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("subscription status {status:?}")))?,
        retry_policy: json_at(row, at + 10)?,
        signing_secret_sealed: row.get(at + 11)?,
        previous_secret_sealed: row.get(at + 12)?,
        previous_secret_expires_at: row.get::<_, Option<i64>>(at + 13)?.map(from_millis),
        created_at: from_millis(row.get(at + 14)?),
        updated_at: from_millis(row.get(at + 15)?),
        ordering: {
            let text: String = row.get(at + 16)?;
            Ordering::parse(&text).ok_or_else(|| corrupt(format!("ordering {text:?}")))?
        },
        max_in_flight: row
            .get::<_, Option<i64>>(at + 17)?
            .map(|n| n.clamp(0, u32::MAX as i64) as u32),
        rate_limit: match (
            row.get::<_, Option<f64>>(at + 18)?,
            row.get::<_, Option<f64>>(at + 19)?,
        ) {
            (Some(per_second), Some(burst)) => Some(RateLimit { per_second, burst }),
            _ => None,
        },
        disabled_reason: row.get(at + 20)?,
        breaker: Breaker {
            failure_threshold: row.get::<_, i64>(at + 21)?.clamp(1, u32::MAX as i64) as u32,
            probe_interval_seconds: row.get::<_, i64>(at + 22)?.max(0) as u64,
        },
        auto_disable_after_secs: row.get::<_, i64>(at + 23)?.max(0) as u64,
        envelope: {
            let text: String = row.get(at + 24)?;
            Envelope::parse(&text).ok_or_else(|| corrupt(format!("envelope {text:?}")))?
        },
        filter: row
            .get::<_, Option<String>>(at + 25)?
            .map(|text| serde_json::from_str(&text).map_err(|e| corrupt(format!("filter: {e}"))))
            .transpose()?,
        transform: row.get(at + 26)?,
        coalesce: row.get(at + 27)?,
    })
}

pub(crate) fn subscription(row: &Row) -> rusqlite::Result<SubscriptionRecord> {
    subscription_at(row, 0)
}

pub(crate) const EVENT_COLUMNS: &str = "e.id, e.origin, e.dedup_key, e.partner_id, e.event_type, \
    e.event_version, e.topic, e.public_event_id, e.occurred_at, e.received_at, e.payload, \
    e.raw_body, e.normalized, e.native_elided, e.marketplace, e.resource_key, e.headers, \
    e.trace_parent, e.seq";

/// `EVENT_COLUMNS` for a claimed delivery: an attempt needs neither the received headers nor
/// the raw body, which is read only when it is the payload.
pub(crate) const CLAIMED_EVENT_COLUMNS: &str = "e.id, e.origin, e.dedup_key, e.partner_id, \
    e.event_type, e.event_version, e.topic, e.public_event_id, e.occurred_at, e.received_at, \
    e.payload, CASE WHEN e.payload IS NULL THEN e.raw_body END, e.normalized, e.native_elided, \
    e.marketplace, e.resource_key, NULL, e.trace_parent, e.seq";

/// Reads an event's stored form whose columns (in `EVENT_COLUMNS` order) start at `at`.
pub(crate) fn stored_event_at(row: &Row, at: usize) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: uuid_at(row, at)?,
        origin: row.get(at + 1)?,
        dedup_key: row.get(at + 2)?,
        partner_id: row.get(at + 3)?,
        event_type: row.get(at + 4)?,
        event_version: row.get(at + 5)?,
        topic: row.get(at + 6)?,
        public_event_id: row.get(at + 7)?,
        occurred_at: row.get(at + 8)?,
        received_at: row.get(at + 9)?,
        payload: row.get(at + 10)?,
        raw_body: row.get(at + 11)?,
        normalized: row.get(at + 12)?,
        native_elided: row.get(at + 13)?,
        marketplace: row.get(at + 14)?,
        resource_key: row.get(at + 15)?,
        headers: row.get(at + 16)?,
        trace_parent: row.get(at + 17)?,
        seq: row.get(at + 18)?,
    })
}

/// Reads an event whose columns (in `EVENT_COLUMNS` order) start at `at`.
pub(crate) fn event_at(row: &Row, at: usize, with_body: bool) -> rusqlite::Result<EventRecord> {
    stored_event_at(row, at)?
        .into_record(with_body)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(crate) fn event(row: &Row) -> rusqlite::Result<EventRecord> {
    event_at(row, 0, true)
}

/// Number of columns in `DELIVERY_COLUMNS`, where a joined row's event columns start.
pub(crate) const DELIVERY_COLUMN_COUNT: usize = 13;

pub(crate) const SOURCE_COLUMNS: &str = "id, kind, name, partners, secrets_sealed, \
    replay_window_secs, options, client_id, created_at, updated_at, reconcile";

pub(crate) fn source(row: &Row) -> rusqlite::Result<SourceRecord> {
    Ok(SourceRecord {
        id: uuid(row, "id")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        partners: json(row, "partners")?,
        secrets_sealed: row.get("secrets_sealed")?,
        replay_window_secs: row.get("replay_window_secs")?,
        options: json(row, "options")?,
        client_id: row.get("client_id")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        reconcile: optional_json(row.get::<_, Option<String>>("reconcile")?)?,
    })
}

/// A JSON column that may be NULL.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned>(
    text: Option<String>,
) -> rusqlite::Result<Option<T>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("reconcile: {e}"))))
        .transpose()
}

pub(crate) const REJECTION_COLUMNS: &str = "id, source_id, partners, reason, status_code, \
    message, remote_addr, body_sha256, body_size, received_at";

pub(crate) fn rejection(row: &Row) -> rusqlite::Result<RejectionRecord> {
    Ok(RejectionRecord {
        id: uuid(row, "id")?,
        source_id: row.get("source_id")?,
        partners: json(row, "partners")?,
        reason: row.get("reason")?,
        status_code: row.get("status_code")?,
        message: row.get("message")?,
        remote_addr: row.get("remote_addr")?,
        body_sha256: row.get("body_sha256")?,
        body_size: row.get::<_, i64>("body_size")?.max(0) as u64,
        received_at: time(row, "received_at")?,
    })
}

/// A delivery's columns; its partner is its event's, so every query that reads these joins
/// `events e`.
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.subscription_id, e.partner_id, \
    d.status, d.attempts, d.next_attempt_at, d.first_attempt_at, d.last_attempt_at, \
    d.last_status_code, d.last_error, d.created_at, d.updated_at";

/// Reads a delivery whose columns (in `DELIVERY_COLUMNS` order) start at column 0.
pub(crate) fn delivery(row: &Row) -> rusqlite::Result<DeliveryRecord> {
    let status: String = row.get(4)?;
    let at = |i: usize| -> rusqlite::Result<Option<jiff::Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(from_millis))
    };
    Ok(DeliveryRecord {
        id: uuid_at(row, 0)?,
        event_id: uuid_at(row, 1)?,
        subscription_id: uuid_at(row, 2)?,
        partner_id: row.get(3)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("delivery status {status:?}")))?,
        attempts: row.get(5)?,
        next_attempt_at: at(6)?,
        first_attempt_at: at(7)?,
        last_attempt_at: at(8)?,
        last_status_code: row.get(9)?,
        last_error: row.get(10)?,
        created_at: from_millis(row.get(11)?),
        updated_at: from_millis(row.get(12)?),
    })
}

pub(crate) const ATTEMPT_COLUMNS: &str = "a.id, a.delivery_id, a.attempted_at, a.succeeded, \
    a.status_code, a.latency_ms, a.error_class, a.error_message, a.response_excerpt, a.trace_id";

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
        trace_id: row.get("trace_id")?,
    })
}

/// An attempt with `subscription_id`, `event_id` and `event_type` selected beside it.
pub(crate) fn logged_attempt(row: &Row) -> rusqlite::Result<LoggedAttempt> {
    Ok(LoggedAttempt {
        attempt: attempt(row)?,
        subscription_id: uuid(row, "subscription_id")?,
        event_id: uuid(row, "event_id")?,
        event_type: row.get("event_type")?,
    })
}

pub(crate) const OUTCOME_COLUMNS: &str =
    "o.id, o.event_id, o.partner_id, o.client_id, o.status, o.reason, o.message, o.reported_at";

pub(crate) fn outcome(row: &Row) -> rusqlite::Result<OutcomeRecord> {
    Ok(OutcomeRecord {
        id: uuid(row, "id")?,
        event_id: uuid(row, "event_id")?,
        partner_id: row.get("partner_id")?,
        client_id: row.get("client_id")?,
        status: row.get("status")?,
        reason: row.get("reason")?,
        message: row.get("message")?,
        reported_at: time(row, "reported_at")?,
    })
}
