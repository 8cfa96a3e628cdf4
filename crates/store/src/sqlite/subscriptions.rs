//! Subscriptions (with the index fan-out reads) and API clients.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use uuid::Uuid;

use switchyard_core::model::{Client, SubscriptionFilter, SubscriptionRecord};

use super::rows::{self, CLIENT_COLUMNS, SUBSCRIPTION_COLUMNS, ms, to_json};
use super::{Shared, placeholders};
use crate::StoreError;

pub(super) fn create_client(conn: &Connection, client: &Client) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO clients (id, name, secret_hash, partners, scopes, admin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        params![
            client.id,
            client.name,
            client.secret_hash,
            to_json(&client.partners),
            to_json(&client.scopes),
            client.admin,
            ms(client.created_at),
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("client {}", client.id)));
    }
    Ok(())
}

pub(super) fn get_client(conn: &Connection, id: &str) -> Result<Option<Client>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"),
            [id],
            rows::client,
        )
        .optional()?)
}

/// A subscription's columns as `?1`…`?28`, in the order the insert and the update name them.
fn subscription_params(s: &SubscriptionRecord) -> Vec<Box<dyn rusqlite::ToSql>> {
    vec![
        Box::new(s.id),
        Box::new(s.partner_id.clone()),
        Box::new(s.client_id.clone()),
        Box::new(to_json(&s.event_types)),
        Box::new(s.event_version.clone()),
        Box::new(s.resource_name.clone()),
        Box::new(s.event_url.clone()),
        Box::new(to_json(&s.headers)),
        Box::new(s.auth_sealed.clone()),
        Box::new(s.status.as_str()),
        Box::new(to_json(&s.retry_policy)),
        Box::new(s.signing_secret_sealed.clone()),
        Box::new(s.previous_secret_sealed.clone()),
        Box::new(s.previous_secret_expires_at.map(ms)),
        Box::new(ms(s.created_at)),
        Box::new(ms(s.updated_at)),
        Box::new(s.ordering.as_str()),
        Box::new(s.max_in_flight),
        Box::new(s.rate_limit.map(|r| r.per_second)),
        Box::new(s.rate_limit.map(|r| r.burst)),
        Box::new(s.disabled_reason.clone()),
        Box::new(s.breaker.failure_threshold),
        Box::new(s.breaker.probe_interval_seconds as i64),
        Box::new(s.auto_disable_after_secs as i64),
        Box::new(s.envelope.as_str()),
        Box::new(s.filter.as_ref().map(to_json)),
        Box::new(s.transform.clone()),
        Box::new(s.coalesce),
    ]
}

pub(super) fn insert(
    conn: &Connection,
    shared: &Shared,
    s: &SubscriptionRecord,
) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO subscriptions (id, partner_id, client_id, event_types, event_version,
            resource_name, event_url, headers, auth_sealed, status, retry_policy,
            signing_secret_sealed, previous_secret_sealed, previous_secret_expires_at,
            created_at, updated_at, ordering, max_in_flight, rate_per_sec, rate_burst,
            disabled_reason, breaker_threshold, breaker_probe_secs, auto_disable_after_secs,
            envelope, filter, transform, coalesce_state, consecutive_failures)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, 0)
         ON CONFLICT (id) DO NOTHING",
        params_from_iter(subscription_params(s)),
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("subscription {}", s.id)));
    }
    index_event_types(conn, s)?;
    shared.clear_fanout();
    Ok(())
}

fn index_event_types(conn: &Connection, s: &SubscriptionRecord) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM subscription_event_types WHERE subscription_id = ?1",
        [s.id],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_event_types (partner_id, event_type, subscription_id)
         VALUES (?1, ?2, ?3)",
    )?;
    for event_type in &s.event_types {
        stmt.execute(params![s.partner_id, event_type, s.id])?;
    }
    Ok(())
}

pub(super) fn select(
    conn: &Connection,
    id: Uuid,
) -> Result<Option<SubscriptionRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.id = ?1"
        ))?
        .query_row([id], rows::subscription)
        .optional()?)
}

pub(super) fn list(
    conn: &Connection,
    filter: &SubscriptionFilter,
) -> Result<Vec<SubscriptionRecord>, StoreError> {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(partners) = &filter.partners {
        sql += &format!(" AND s.partner_id IN ({})", placeholders(partners.len()));
        args.extend(partners.iter().map(|p| Value::Text(p.0.clone())));
    }
    if let Some(id) = filter.subscription_id {
        sql += " AND s.id = ?";
        args.push(Value::Blob(id.0.as_bytes().to_vec()));
    }
    if let Some(event_type) = &filter.event_type {
        sql += " AND EXISTS (SELECT 1 FROM subscription_event_types t
                  WHERE t.subscription_id = s.id AND t.event_type = ?)";
        args.push(Value::Text(event_type.clone()));
    }
    if let Some(resource) = &filter.resource_name {
        sql += " AND s.resource_name = ?";
        args.push(Value::Text(resource.clone()));
    }
    if let Some(status) = filter.status {
        sql += " AND s.status = ?";
        args.push(Value::Text(status.as_str().to_string()));
    }
    sql += " ORDER BY s.id";
    let mut stmt = conn.prepare(&sql)?;
    let found = stmt
        .query_map(params_from_iter(args.iter()), rows::subscription)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub(super) fn update(
    conn: &Connection,
    shared: &Shared,
    s: &SubscriptionRecord,
) -> Result<bool, StoreError> {
    let updated = conn.execute(
        "UPDATE subscriptions SET partner_id = ?2, client_id = ?3, event_types = ?4,
            event_version = ?5, resource_name = ?6, event_url = ?7, headers = ?8,
            auth_sealed = ?9, status = ?10, retry_policy = ?11,
            signing_secret_sealed = ?12, previous_secret_sealed = ?13,
            previous_secret_expires_at = ?14, created_at = ?15, updated_at = ?16,
            ordering = ?17, max_in_flight = ?18, rate_per_sec = ?19, rate_burst = ?20,
            disabled_reason = ?21, breaker_threshold = ?22, breaker_probe_secs = ?23,
            auto_disable_after_secs = ?24, envelope = ?25, filter = ?26, transform = ?27,
            coalesce_state = ?28,
            -- Resuming starts afresh: no failure streak, no open breaker.
            consecutive_failures = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN 0 ELSE consecutive_failures END,
            failing_since = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN NULL ELSE failing_since END,
            breaker_until = CASE WHEN ?10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN NULL ELSE breaker_until END
         WHERE id = ?1",
        params_from_iter(subscription_params(s)),
    )?;
    if updated == 1 {
        index_event_types(conn, s)?;
    }
    shared.clear_fanout();
    Ok(updated == 1)
}

/// Deletes a subscription; its pending deliveries end as failed, and attempts in flight for
/// them will not move them on.
pub(super) fn delete(
    conn: &Connection,
    shared: &Shared,
    id: Uuid,
    now: jiff::Timestamp,
) -> Result<bool, StoreError> {
    let deleted = conn.execute("DELETE FROM subscriptions WHERE id = ?1", [id])?;
    conn.execute(
        "DELETE FROM subscription_event_types WHERE subscription_id = ?1",
        [id],
    )?;
    conn.execute(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
            last_error = 'subscription deleted', updated_at = ?2
         WHERE subscription_id = ?1 AND status = 'pending'",
        params![id, ms(now)],
    )?;
    shared
        .leases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .release_subscription(id);
    shared.clear_fanout();
    Ok(deleted == 1)
}
