//! Mapping between PostgreSQL rows and core records; readers are positional, in the order of
//! the column lists here.

use tokio_postgres::Row;
use uuid::Uuid;

use switchyard_core::clock::from_millis;
use switchyard_core::model::{
    AttemptRecord, Breaker, Client, DeliveryRecord, DeliveryStatus, Envelope, EventRecord,
    LoggedAttempt, Ordering, OutcomeRecord, RateLimit, RejectionRecord, SourceRecord,
    SubscriptionRecord, SubscriptionStatus,
};

use crate::StoreError;
use crate::stored::StoredEvent;

type R<T> = Result<T, StoreError>;

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> R<T> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// A UUID column, as the id type the record's field has.
fn uuid<T: From<Uuid>>(row: &Row, i: usize) -> R<T> {
    get::<Uuid>(row, i).map(T::from)
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> R<T> {
    let text: String = get(row, i)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

fn time(row: &Row, i: usize) -> R<jiff::Timestamp> {
    Ok(from_millis(get(row, i)?))
}

fn opt_time(row: &Row, i: usize) -> R<Option<jiff::Timestamp>> {
    Ok(get::<Option<i64>>(row, i)?.map(from_millis))
}

pub(crate) const CLIENT_COLUMNS: &str =
    "id, name, secret_hash, partners, scopes, admin, created_at";

pub(crate) fn client(row: &Row) -> R<Client> {
    Ok(Client {
        id: get(row, 0)?,
        name: get(row, 1)?,
        secret_hash: get(row, 2)?,
        partners: json(row, 3)?,
        scopes: json(row, 4)?,
        admin: get(row, 5)?,
        created_at: time(row, 6)?,
    })
}

pub(crate) const SUBSCRIPTION_COLUMNS: &str = "s.id, s.partner_id, s.client_id, s.event_types, \
    s.event_version, s.resource_name, s.event_url, s.headers, s.auth_sealed, s.status, \
    s.retry_policy, s.signing_secret_sealed, s.previous_secret_sealed, \
    s.previous_secret_expires_at, s.created_at, s.updated_at, s.ordering, s.max_in_flight, \
    s.rate_per_sec, s.rate_burst, s.disabled_reason, s.breaker_threshold, s.breaker_probe_secs, \
    s.auto_disable_after_secs, s.envelope, s.filter, s.transform, s.coalesce_state";

pub(crate) fn subscription_at(row: &Row, at: usize) -> R<SubscriptionRecord> {
    let status: String = get(row, at + 9)?;
    Ok(SubscriptionRecord {
        id: uuid(row, at)?,
        partner_id: get(row, at + 1)?,
        client_id: get(row, at + 2)?,
        event_types: json(row, at + 3)?,
        event_version: get(row, at + 4)?,
        resource_name: get(row, at + 5)?,
        event_url: get(row, at + 6)?,
        headers: json(row, at + 7)?,
        auth_sealed: get(row, at + 8)?,
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("subscription status {status:?}")))?,
        retry_policy: json(row, at + 10)?,
        signing_secret_sealed: get(row, at + 11)?,
        previous_secret_sealed: get(row, at + 12)?,
        previous_secret_expires_at: opt_time(row, at + 13)?,
        created_at: time(row, at + 14)?,
        updated_at: time(row, at + 15)?,
        ordering: {
            let text: String = get(row, at + 16)?;
            Ordering::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("ordering {text:?}")))?
        },
        max_in_flight: get::<Option<i32>>(row, at + 17)?.map(|n| n.max(0) as u32),
        rate_limit: match (
            get::<Option<f64>>(row, at + 18)?,
            get::<Option<f64>>(row, at + 19)?,
        ) {
            (Some(per_second), Some(burst)) => Some(RateLimit { per_second, burst }),
            _ => None,
        },
        disabled_reason: get(row, at + 20)?,
        breaker: Breaker {
            failure_threshold: get::<i32>(row, at + 21)?.max(1) as u32,
            probe_interval_seconds: get::<i64>(row, at + 22)?.max(0) as u64,
        },
        auto_disable_after_secs: get::<i64>(row, at + 23)?.max(0) as u64,
        envelope: {
            let text: String = get(row, at + 24)?;
            Envelope::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("envelope {text:?}")))?
        },
        filter: get::<Option<String>>(row, at + 25)?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("filter: {e}")))
            })
            .transpose()?,
        transform: get(row, at + 26)?,
        coalesce: get(row, at + 27)?,
    })
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
    e.marketplace, e.resource_key, NULL::text, e.trace_parent, e.seq";

pub(crate) fn stored_event_at(row: &Row, at: usize) -> R<StoredEvent> {
    Ok(StoredEvent {
        id: uuid(row, at)?,
        origin: get(row, at + 1)?,
        dedup_key: get(row, at + 2)?,
        partner_id: get(row, at + 3)?,
        event_type: get(row, at + 4)?,
        event_version: get(row, at + 5)?,
        topic: get(row, at + 6)?,
        public_event_id: get(row, at + 7)?,
        occurred_at: get(row, at + 8)?,
        received_at: get(row, at + 9)?,
        payload: get(row, at + 10)?,
        raw_body: get(row, at + 11)?,
        normalized: get(row, at + 12)?,
        native_elided: get(row, at + 13)?,
        marketplace: get(row, at + 14)?,
        resource_key: get(row, at + 15)?,
        headers: get(row, at + 16)?,
        trace_parent: get(row, at + 17)?,
        seq: get(row, at + 18)?,
    })
}

pub(crate) fn event_at(row: &Row, at: usize, with_body: bool) -> R<EventRecord> {
    stored_event_at(row, at)?.into_record(with_body)
}

/// A delivery's columns; its partner is its event's, so every query that reads these joins
/// `events e`.
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.subscription_id, e.partner_id, \
    d.status, d.attempts, d.next_attempt_at, d.first_attempt_at, d.last_attempt_at, \
    d.last_status_code, d.last_error, d.created_at, d.updated_at";
pub(crate) const DELIVERY_COLUMN_COUNT: usize = 13;
pub(crate) const EVENT_COLUMN_COUNT: usize = 19;

pub(crate) fn delivery(row: &Row) -> R<DeliveryRecord> {
    let status: String = get(row, 4)?;
    Ok(DeliveryRecord {
        id: uuid(row, 0)?,
        event_id: uuid(row, 1)?,
        subscription_id: uuid(row, 2)?,
        partner_id: get(row, 3)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?,
        attempts: get::<i32>(row, 5)?.max(0) as u32,
        next_attempt_at: opt_time(row, 6)?,
        first_attempt_at: opt_time(row, 7)?,
        last_attempt_at: opt_time(row, 8)?,
        last_status_code: get::<Option<i32>>(row, 9)?.and_then(|c| u16::try_from(c).ok()),
        last_error: get(row, 10)?,
        created_at: time(row, 11)?,
        updated_at: time(row, 12)?,
    })
}

pub(crate) const ATTEMPT_COLUMNS: &str = "a.id, a.delivery_id, a.attempted_at, a.succeeded, \
    a.status_code, a.latency_ms, a.error_class, a.error_message, a.response_excerpt, a.trace_id";

pub(crate) fn attempt(row: &Row) -> R<AttemptRecord> {
    Ok(AttemptRecord {
        id: uuid(row, 0)?,
        delivery_id: uuid(row, 1)?,
        attempted_at: time(row, 2)?,
        succeeded: get(row, 3)?,
        status_code: get::<Option<i32>>(row, 4)?.and_then(|c| u16::try_from(c).ok()),
        latency_ms: get::<i64>(row, 5)?.max(0) as u64,
        error_class: get(row, 6)?,
        error_message: get(row, 7)?,
        response_excerpt: get(row, 8)?,
        trace_id: get(row, 9)?,
    })
}

pub(crate) const SOURCE_COLUMNS: &str = "id, kind, name, partners, secrets_sealed, \
    replay_window_secs, options, client_id, created_at, updated_at, reconcile";

pub(crate) fn source(row: &Row) -> R<SourceRecord> {
    Ok(SourceRecord {
        id: uuid(row, 0)?,
        kind: get(row, 1)?,
        name: get(row, 2)?,
        partners: json(row, 3)?,
        secrets_sealed: get(row, 4)?,
        replay_window_secs: get(row, 5)?,
        options: json(row, 6)?,
        client_id: get(row, 7)?,
        created_at: time(row, 8)?,
        updated_at: time(row, 9)?,
        reconcile: match get::<Option<String>>(row, 10)? {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("source reconcile settings: {e}")))?,
            ),
            None => None,
        },
    })
}

pub(crate) const REJECTION_COLUMNS: &str = "id, source_id, partners, reason, status_code, \
    message, remote_addr, body_sha256, body_size, received_at";

pub(crate) fn rejection(row: &Row) -> R<RejectionRecord> {
    Ok(RejectionRecord {
        id: uuid(row, 0)?,
        source_id: get(row, 1)?,
        partners: json(row, 2)?,
        reason: get(row, 3)?,
        status_code: u16::try_from(get::<i32>(row, 4)?).unwrap_or(0),
        message: get(row, 5)?,
        remote_addr: get(row, 6)?,
        body_sha256: get(row, 7)?,
        body_size: get::<i64>(row, 8)?.max(0) as u64,
        received_at: time(row, 9)?,
    })
}

/// An attempt followed by `subscription_id`, `event_id` and `event_type`.
pub(crate) fn logged_attempt(row: &Row) -> R<LoggedAttempt> {
    Ok(LoggedAttempt {
        attempt: attempt(row)?,
        subscription_id: uuid(row, 10)?,
        event_id: uuid(row, 11)?,
        event_type: get(row, 12)?,
    })
}

pub(crate) const OUTCOME_COLUMNS: &str =
    "o.id, o.event_id, o.partner_id, o.client_id, o.status, o.reason, o.message, o.reported_at";

pub(crate) fn outcome(row: &Row) -> R<OutcomeRecord> {
    Ok(OutcomeRecord {
        id: uuid(row, 0)?,
        event_id: uuid(row, 1)?,
        partner_id: get(row, 2)?,
        client_id: get(row, 3)?,
        status: get(row, 4)?,
        reason: get(row, 5)?,
        message: get(row, 6)?,
        reported_at: time(row, 7)?,
    })
}
