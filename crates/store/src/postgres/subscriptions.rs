//! Subscriptions (with the index fan-out reads) and API clients.

use jiff::Timestamp;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use switchyard_core::clock::to_millis as ms;
use switchyard_core::model::{Client, SubscriptionFilter, SubscriptionRecord};

use super::rows::{self, CLIENT_COLUMNS, SUBSCRIPTION_COLUMNS};
use super::{Conn, Sql, execute, json_text, notify_due, query, query_opt};
use crate::StoreError;

pub(super) async fn create_client(conn: &Conn, c: &Client) -> Result<(), StoreError> {
    let inserted = execute(
        conn,
        "INSERT INTO clients (id, name, secret_hash, partners, scopes, admin, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        &[
            &c.id,
            &c.name,
            &c.secret_hash,
            &json_text(&c.partners),
            &json_text(&c.scopes),
            &c.admin,
            &ms(c.created_at),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("client {}", c.id)));
    }
    Ok(())
}

pub(super) async fn get_client(conn: &Conn, id: &str) -> Result<Option<Client>, StoreError> {
    let row = query_opt(
        conn,
        &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"),
        &[&id],
    )
    .await?;
    row.map(|r| rows::client(&r)).transpose()
}

type Param = Box<dyn ToSql + Sync + Send>;

/// A subscription's columns as `$1`…`$25`, in the order the insert and the update name them.
fn subscription_params(s: &SubscriptionRecord) -> Vec<Param> {
    let int = |n: u32| n.min(i32::MAX as u32) as i32;
    vec![
        Box::new(s.id),
        Box::new(s.partner_id.clone()),
        Box::new(s.client_id.clone()),
        Box::new(json_text(&s.event_types)),
        Box::new(s.event_version.clone()),
        Box::new(s.resource_name.clone()),
        Box::new(s.event_url.clone()),
        Box::new(json_text(&s.headers)),
        Box::new(s.auth_sealed.clone()),
        Box::new(s.status.as_str().to_string()),
        Box::new(json_text(&s.retry_policy)),
        Box::new(s.signing_secret_sealed.clone()),
        Box::new(s.previous_secret_sealed.clone()),
        Box::new(s.previous_secret_expires_at.map(ms)),
        Box::new(ms(s.created_at)),
        Box::new(ms(s.updated_at)),
        Box::new(s.ordering.as_str().to_string()),
        Box::new(s.max_in_flight.map(int)),
        Box::new(s.rate_limit.map(|r| r.per_second)),
        Box::new(s.rate_limit.map(|r| r.burst)),
        Box::new(s.disabled_reason.clone()),
        Box::new(int(s.breaker.failure_threshold)),
        Box::new(s.breaker.probe_interval_seconds as i64),
        Box::new(s.auto_disable_after_secs as i64),
        Box::new(s.envelope.as_str()),
        Box::new(s.filter.as_ref().map(json_text)),
        Box::new(s.transform.clone()),
        Box::new(s.coalesce),
    ]
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

pub(super) async fn insert(conn: &Conn, s: &SubscriptionRecord) -> Result<(), StoreError> {
    let inserted = execute(
        conn,
        "INSERT INTO subscriptions (id, partner_id, client_id, event_types, event_version,
            resource_name, event_url, headers, auth_sealed, status, retry_policy,
            signing_secret_sealed, previous_secret_sealed, previous_secret_expires_at,
            created_at, updated_at, ordering, max_in_flight, rate_per_sec, rate_burst,
            disabled_reason, breaker_threshold, breaker_probe_secs, auto_disable_after_secs,
            envelope, filter, transform, coalesce_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)
         ON CONFLICT (id) DO NOTHING",
        &refs(&subscription_params(s)),
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("subscription {}", s.id)));
    }
    index_event_types(conn, s).await
}

async fn index_event_types(conn: &Conn, s: &SubscriptionRecord) -> Result<(), StoreError> {
    execute(
        conn,
        "DELETE FROM subscription_event_types WHERE subscription_id = $1",
        &[&s.id],
    )
    .await?;
    execute(
        conn,
        "INSERT INTO subscription_event_types (partner_id, event_type, subscription_id)
         SELECT $1, t, $3 FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING",
        &[&s.partner_id, &s.event_types, &s.id],
    )
    .await?;
    Ok(())
}

pub(super) async fn select(
    conn: &Conn,
    id: Uuid,
) -> Result<Option<SubscriptionRecord>, StoreError> {
    let row = query_opt(
        conn,
        &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.id = $1"),
        &[&id],
    )
    .await?;
    row.map(|r| rows::subscription_at(&r, 0)).transpose()
}

pub(super) async fn list(
    conn: &Conn,
    f: &SubscriptionFilter,
) -> Result<Vec<SubscriptionRecord>, StoreError> {
    let mut sql = Sql::new(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE TRUE"
    ));
    if let Some(partners) = &f.partners {
        sql.and(" AND s.partner_id = ANY({})", partners.clone());
    }
    if let Some(id) = f.subscription_id {
        sql.and(" AND s.id = {}", id);
    }
    if let Some(t) = &f.event_type {
        sql.and(
            " AND EXISTS (SELECT 1 FROM subscription_event_types t
                          WHERE t.subscription_id = s.id AND t.event_type = {})",
            t.clone(),
        );
    }
    if let Some(r) = &f.resource_name {
        sql.and(" AND s.resource_name = {}", r.clone());
    }
    if let Some(st) = f.status {
        sql.and(" AND s.status = {}", st.as_str().to_string());
    }
    sql.text.push_str(" ORDER BY s.id");
    let rows = query(conn, &sql.text, &sql.params()).await?;
    rows.iter().map(|r| rows::subscription_at(r, 0)).collect()
}

pub(super) async fn update(conn: &Conn, s: &SubscriptionRecord) -> Result<bool, StoreError> {
    let updated = execute(
        conn,
        "UPDATE subscriptions SET partner_id = $2, client_id = $3, event_types = $4,
            event_version = $5, resource_name = $6, event_url = $7, headers = $8,
            auth_sealed = $9, status = $10, retry_policy = $11,
            signing_secret_sealed = $12, previous_secret_sealed = $13,
            previous_secret_expires_at = $14, created_at = $15, updated_at = $16,
            ordering = $17, max_in_flight = $18, rate_per_sec = $19, rate_burst = $20,
            disabled_reason = $21, breaker_threshold = $22, breaker_probe_secs = $23,
            auto_disable_after_secs = $24, envelope = $25, filter = $26, transform = $27,
            coalesce_state = $28,
            -- Resuming starts afresh: no failure streak, no open breaker.
            consecutive_failures = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN 0 ELSE consecutive_failures END,
            failing_since = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN NULL ELSE failing_since END,
            breaker_until = CASE WHEN $10 = 'ACTIVE' AND status = 'INACTIVE'
                THEN NULL ELSE breaker_until END
         WHERE id = $1",
        &refs(&subscription_params(s)),
    )
    .await?;
    if updated == 1 {
        index_event_types(conn, s).await?;
        // A resumed subscription's held deliveries may be due on any node.
        notify_due(conn).await?;
    }
    Ok(updated == 1)
}

/// Deletes a subscription; its pending deliveries end as failed.
pub(super) async fn delete(conn: &Conn, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
    let deleted = execute(conn, "DELETE FROM subscriptions WHERE id = $1", &[&id]).await?;
    execute(
        conn,
        "DELETE FROM subscription_event_types WHERE subscription_id = $1",
        &[&id],
    )
    .await?;
    execute(
        conn,
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
            last_error = 'subscription deleted', locked_until = NULL, lease_owner = NULL,
            updated_at = $2
         WHERE subscription_id = $1 AND status = 'pending'",
        &[&id, &ms(now)],
    )
    .await?;
    Ok(deleted == 1)
}
