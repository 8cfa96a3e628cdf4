//! Walmart Marketplace's `/v3/webhooks` API: event types, subscriptions, test notifications.
//!
//! Shapes follow Walmart's (`docs/marketplaces.md`): answers say `events`, requests may also say
//! `event` or `eventTypes`. Listing event types and subscriptions needs no scope; creating or
//! changing a subscription needs a scope other than `no_access` on its resource (`seeds/001_*`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use switchyard_core::catalog::{self, EventType};
use switchyard_core::model::{
    Access, AuthDetails, Breaker, Client, DEFAULT_AUTO_DISABLE_AFTER_SECS, Envelope, Ordering,
    RateLimit, SubscriptionFilter, SubscriptionRecord, SubscriptionStatus, validate_header_name,
    validate_header_value, validate_http_url,
};
use switchyard_core::retry::RetryPolicy;
use switchyard_core::signatures::standard_webhooks;
use switchyard_delivery::OutboundRequest;
use switchyard_delivery::envelope;

use super::parse_id;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::views;

pub async fn event_types() -> impl IntoResponse {
    let events: Vec<Value> = catalog::all()
        .iter()
        .map(|t| {
            json!({
                "eventType": t.event_type,
                "eventVersion": t.event_version,
                "resourceName": t.resource_name,
                "description": t.description,
                "family": t.family,
                "schema": t.schema,
            })
        })
        .collect();
    axum::Json(json!({ "events": events }))
}

/// One entry of a create request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionInput {
    event_type: String,
    event_version: Option<String>,
    resource_name: Option<String>,
    event_url: String,
    status: Option<String>,
    auth_details: Option<AuthDetails>,
    headers: Option<BTreeMap<String, String>>,
    retry_policy: Option<RetryPolicy>,
    partner_id: Option<String>,
    ordering: Option<Ordering>,
    max_in_flight: Option<u32>,
    rate_limit: Option<RateLimit>,
    circuit_breaker: Option<Breaker>,
    auto_disable_after_seconds: Option<u64>,
    envelope: Option<Envelope>,
}

#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(alias = "event", alias = "eventTypes")]
    events: Vec<SubscriptionInput>,
}

/// What a create or test request names, checked.
struct Checked {
    event_type: &'static EventType,
    event_version: String,
    event_url: String,
    status: SubscriptionStatus,
    auth: Option<AuthDetails>,
    headers: BTreeMap<String, String>,
    retry_policy: RetryPolicy,
    partner_id: String,
}

/// Where a request names a partner: the body, else `WM_PARTNER.ID`, else the client's only one.
pub(crate) fn resolve_partner(
    caller: &Client,
    given: Option<String>,
    headers: &HeaderMap,
    field: &str,
) -> AppResult<String> {
    let named = given.or_else(|| {
        headers
            .get("WM_PARTNER.ID")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    match named {
        Some(p) if p.trim().is_empty() => Err(AppError::invalid(field, "partnerId is empty")),
        Some(p) if caller.manages(&p) => Ok(p),
        Some(p) => Err(AppError::forbidden(
            "partner_not_managed",
            format!("this client does not manage partner {p:?}"),
        )
        .with_field(field)),
        None if !caller.admin && caller.partners.len() == 1 => Ok(caller.partners[0].clone()),
        None => Err(AppError::invalid(
            field,
            "partnerId is required (in the body or WM_PARTNER.ID) for a client managing several partners",
        )),
    }
}

pub(crate) fn check_headers(
    headers: Option<BTreeMap<String, String>>,
    field: &str,
) -> AppResult<BTreeMap<String, String>> {
    let headers = headers.unwrap_or_default();
    if headers.len() > 50 {
        return Err(AppError::invalid(field, "at most 50 custom headers"));
    }
    for (name, value) in &headers {
        validate_header_name(field, name)?;
        validate_header_value(&format!("{field}.{name}"), value)?;
    }
    Ok(headers)
}

fn check_scope(caller: &Client, resource: &str) -> AppResult<()> {
    if caller.access_to(resource) == Access::NoAccess {
        return Err(AppError::forbidden(
            "insufficient_scope",
            format!(
                "subscribing to {resource} events needs the view_only or full_access scope on \
                 {resource}; this client has no_access"
            ),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_input(
    caller: &Client,
    headers: &HeaderMap,
    prefix: &str,
    event_type: &str,
    event_version: Option<String>,
    resource_name: Option<String>,
    event_url: String,
    status: Option<String>,
    auth: Option<AuthDetails>,
    custom_headers: Option<BTreeMap<String, String>>,
    retry_policy: Option<RetryPolicy>,
    partner_id: Option<String>,
) -> AppResult<Checked> {
    let field = |name: &str| format!("{prefix}{name}");
    let entry = catalog::find(event_type).ok_or_else(|| {
        AppError::bad_request(
            "unknown_event_type",
            format!("unknown event type {event_type:?}; GET /v3/webhooks/eventTypes lists them"),
        )
        .with_field(field("eventType"))
    })?;
    let event_version = event_version.unwrap_or_else(|| entry.event_version.to_string());
    if event_version != entry.event_version {
        return Err(AppError::bad_request(
            "unknown_event_version",
            format!(
                "{event_type} has version {}, not {event_version:?}",
                entry.event_version
            ),
        )
        .with_field(field("eventVersion")));
    }
    let resource = resource_name
        .ok_or_else(|| AppError::invalid(field("resourceName"), "resourceName is required"))?;
    if resource != entry.resource_name {
        return Err(AppError::bad_request(
            "resource_mismatch",
            format!(
                "{event_type} belongs to resource {}, not {resource:?}",
                entry.resource_name
            ),
        )
        .with_field(field("resourceName")));
    }
    validate_http_url(&field("eventUrl"), &event_url)?;
    let status = match status.as_deref() {
        None => SubscriptionStatus::Active,
        Some(s) => SubscriptionStatus::parse(s).ok_or_else(|| {
            AppError::invalid(field("status"), "status must be ACTIVE or INACTIVE")
        })?,
    };
    if let Some(auth) = &auth {
        auth.validate()
            .map_err(|e| AppError::from(e).with_field(field("authDetails")))?;
    }
    let custom_headers = check_headers(custom_headers, &field("headers"))?;
    let retry_policy = retry_policy.unwrap_or_default();
    retry_policy.validate()?;
    let partner_id = resolve_partner(caller, partner_id, headers, &field("partnerId"))?;
    check_scope(caller, entry.resource_name)?;
    Ok(Checked {
        event_type: entry,
        event_version,
        event_url,
        status,
        auth,
        headers: custom_headers,
        retry_policy,
        partner_id,
    })
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> AppResult<impl IntoResponse> {
    if request.events.is_empty() || request.events.len() > 100 {
        return Err(AppError::invalid("events", "give between 1 and 100 events"));
    }
    let now = state.clock.now();
    let mut records = Vec::new();
    let mut secrets = Vec::new();
    for (i, input) in request.events.into_iter().enumerate() {
        let ordering = input.ordering.unwrap_or_default();
        let field = |name: &str| format!("events[{i}].{name}");
        let max_in_flight = check_max_in_flight(input.max_in_flight, &field("maxInFlight"))?;
        let rate_limit = input.rate_limit;
        let breaker = check_breaker(
            input.circuit_breaker.unwrap_or_default(),
            &field("circuitBreaker"),
        )?;
        let auto_disable_after_secs = check_auto_disable(
            input
                .auto_disable_after_seconds
                .unwrap_or(DEFAULT_AUTO_DISABLE_AFTER_SECS),
            &field("autoDisableAfterSeconds"),
        )?;
        if let Some(r) = &rate_limit {
            r.validate()
                .map_err(|e| AppError::from(e).with_field(field("rateLimit")))?;
        }
        let c = check_input(
            &caller,
            &headers,
            &format!("events[{i}]."),
            &input.event_type,
            input.event_version,
            input.resource_name,
            input.event_url,
            input.status,
            input.auth_details,
            input.headers,
            input.retry_policy,
            input.partner_id,
        )?;
        let signing_secret = standard_webhooks::generate_secret();
        records.push(SubscriptionRecord {
            id: Uuid::now_v7(),
            partner_id: c.partner_id,
            client_id: caller.id.clone(),
            event_types: vec![c.event_type.event_type.to_string()],
            event_version: c.event_version,
            resource_name: c.event_type.resource_name.to_string(),
            event_url: c.event_url,
            headers: c.headers,
            auth_sealed: c.auth.map(|a| {
                state
                    .secrets
                    .seal(&serde_json::to_string(&a).unwrap_or_default())
            }),
            status: c.status,
            retry_policy: c.retry_policy,
            signing_secret_sealed: state.secrets.seal(&signing_secret),
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
            ordering,
            max_in_flight,
            rate_limit,
            disabled_reason: None,
            breaker,
            auto_disable_after_secs,
            envelope: input.envelope.unwrap_or_default(),
        });
        secrets.push(signing_secret);
    }
    state.store.create_subscriptions(records.clone()).await?;
    let events: Vec<Value> = records
        .iter()
        .zip(secrets)
        .map(|(s, secret)| {
            json!({
                "eventType": s.event_types[0],
                "subscriptionId": s.id,
                "partnerId": s.partner_id,
                "eventVersion": s.event_version,
                "resourceName": s.resource_name,
                "status": s.status,
                "signingSecret": secret,
            })
        })
        .collect();
    Ok((StatusCode::OK, axum::Json(json!({ "events": events }))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    subscription_id: Option<String>,
    event_type: Option<String>,
    resource_name: Option<String>,
    status: Option<String>,
}

fn check_breaker(b: Breaker, field: &str) -> AppResult<Breaker> {
    if !(1..=10_000).contains(&b.failure_threshold)
        || !(1..=86_400).contains(&b.probe_interval_seconds)
    {
        return Err(AppError::invalid(
            field,
            "circuitBreaker needs failureThreshold 1..10000 and probeIntervalSeconds 1..86400",
        ));
    }
    Ok(b)
}

fn check_auto_disable(secs: u64, field: &str) -> AppResult<u64> {
    if !(60..=90 * 86_400).contains(&secs) {
        return Err(AppError::invalid(
            field,
            "autoDisableAfterSeconds must be between 60 and 7776000",
        ));
    }
    Ok(secs)
}

fn check_max_in_flight(value: Option<u32>, field: &str) -> AppResult<Option<u32>> {
    match value {
        Some(n) if !(1..=10_000).contains(&n) => Err(AppError::invalid(
            field,
            "maxInFlight must be between 1 and 10000",
        )),
        other => Ok(other),
    }
}

/// The partners a client may see: `None` for admins (all).
pub(crate) fn visible_partners(caller: &Client) -> Option<Vec<String>> {
    (!caller.admin).then(|| caller.partners.clone())
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            SubscriptionStatus::parse(s)
                .ok_or_else(|| AppError::invalid("status", "status must be ACTIVE or INACTIVE"))?,
        ),
    };
    let subscription_id = match q.subscription_id.as_deref() {
        None => None,
        Some(raw) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            // No subscription has that id.
            Err(_) => return Ok(axum::Json(json!({"events": []}))),
        },
    };
    let filter = SubscriptionFilter {
        partners: visible_partners(&caller),
        subscription_id,
        event_type: q.event_type,
        resource_name: q.resource_name,
        status,
    };
    let subs = state.store.list_subscriptions(&filter).await?;
    let events = subs
        .iter()
        .map(|s| views::subscription(&state, s))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(axum::Json(json!({ "events": events })))
}

/// A subscription the caller may see, or 404 (another tenant's objects do not exist for it).
pub(crate) async fn visible_subscription(
    state: &AppState,
    caller: &Client,
    raw_id: &str,
) -> AppResult<SubscriptionRecord> {
    let id = parse_id(raw_id, "subscription")?;
    match state.store.get_subscription(id).await? {
        Some(s) if caller.manages(&s.partner_id) => Ok(s),
        _ => Err(AppError::not_found("subscription")),
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchRequest {
    event_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    /// Absent: unchanged; `null`: removed; an object: merged (masked values keep what is stored).
    #[serde(default, deserialize_with = "present")]
    auth_details: Option<Value>,
    status: Option<String>,
    event_version: Option<String>,
    retry_policy: Option<RetryPolicy>,
    ordering: Option<Ordering>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    max_in_flight: Option<Value>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Value>,
    circuit_breaker: Option<Breaker>,
    auto_disable_after_seconds: Option<u64>,
    envelope: Option<Envelope>,
    // Shown in reads; cleared by the hub when the subscription is resumed.
    #[serde(rename = "disabledReason")]
    _disabled_reason: Option<serde::de::IgnoredAny>,
    // Read-only fields a client may send back unchanged from a read.
    subscription_id: Option<Value>,
    partner_id: Option<Value>,
    event_type: Option<Value>,
    event_types: Option<Value>,
    resource_name: Option<Value>,
    #[serde(rename = "createdAt")]
    _created_at: Option<serde::de::IgnoredAny>,
    #[serde(rename = "updatedAt")]
    _updated_at: Option<serde::de::IgnoredAny>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(Value::Null)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<PatchRequest>,
) -> AppResult<impl IntoResponse> {
    let mut sub = visible_subscription(&state, &caller, &id).await?;
    check_scope(&caller, &sub.resource_name)?;
    let current = views::subscription(&state, &sub)?;
    let read_only = [
        ("subscriptionId", &patch.subscription_id),
        ("partnerId", &patch.partner_id),
        ("eventType", &patch.event_type),
        ("eventTypes", &patch.event_types),
        ("resourceName", &patch.resource_name),
    ];
    for (name, value) in read_only {
        if let Some(value) = value
            && Some(value) != current.get(name)
        {
            return Err(AppError::bad_request(
                "read_only",
                format!("{name} cannot be changed; create a new subscription instead"),
            )
            .with_field(name));
        }
    }
    let was_active = sub.status == SubscriptionStatus::Active;
    if let Some(url) = patch.event_url {
        validate_http_url("eventUrl", &url)?;
        sub.event_url = url;
    }
    if let Some(headers) = patch.headers {
        sub.headers = check_headers(Some(headers), "headers")?;
    }
    if let Some(status) = patch.status {
        sub.status = SubscriptionStatus::parse(&status)
            .ok_or_else(|| AppError::invalid("status", "status must be ACTIVE or INACTIVE"))?;
    }
    if let Some(version) = patch.event_version {
        let supported = sub
            .event_types
            .iter()
            .all(|t| catalog::find(t).is_some_and(|e| e.event_version == version));
        if !supported {
            return Err(AppError::bad_request(
                "unknown_event_version",
                format!("version {version:?} is not offered for this event type"),
            )
            .with_field("eventVersion"));
        }
        sub.event_version = version;
    }
    if let Some(ordering) = patch.ordering {
        sub.ordering = ordering;
    }
    if let Some(b) = patch.circuit_breaker {
        sub.breaker = check_breaker(b, "circuitBreaker")?;
    }
    if let Some(secs) = patch.auto_disable_after_seconds {
        sub.auto_disable_after_secs = check_auto_disable(secs, "autoDisableAfterSeconds")?;
    }
    if let Some(envelope) = patch.envelope {
        sub.envelope = envelope;
    }
    match patch.max_in_flight {
        None => {}
        Some(Value::Null) => sub.max_in_flight = None,
        Some(v) => {
            let n = serde_json::from_value::<u32>(v).map_err(|_| {
                AppError::invalid("maxInFlight", "maxInFlight must be a whole number")
            })?;
            sub.max_in_flight = check_max_in_flight(Some(n), "maxInFlight")?;
        }
    }
    match patch.rate_limit {
        None => {}
        Some(Value::Null) => sub.rate_limit = None,
        Some(v) => {
            let r: RateLimit = serde_json::from_value(v)
                .map_err(|e| AppError::invalid("rateLimit", format!("invalid rateLimit: {e}")))?;
            r.validate()?;
            sub.rate_limit = Some(r);
        }
    }
    if let Some(policy) = patch.retry_policy {
        policy.validate()?;
        sub.retry_policy = policy;
    }
    match patch.auth_details {
        None => {}
        Some(Value::Null) => sub.auth_sealed = None,
        Some(value) => {
            let given: AuthDetails = serde_json::from_value(value).map_err(|e| {
                AppError::invalid("authDetails", format!("invalid authDetails: {e}"))
            })?;
            let merged = match views::open_auth(&state, &sub)? {
                Some(stored) => stored.merged_with(&given),
                None => given,
            };
            merged
                .validate()
                .map_err(|e| AppError::from(e).with_field("authDetails"))?;
            sub.auth_sealed = Some(
                state
                    .secrets
                    .seal(&serde_json::to_string(&merged).unwrap_or_default()),
            );
        }
    }
    if !was_active && sub.status == SubscriptionStatus::Active {
        sub.disabled_reason = None;
    }
    sub.updated_at = state.clock.now();
    if !state.store.update_subscription(sub.clone()).await? {
        return Err(AppError::not_found("subscription"));
    }
    if !was_active && sub.status == SubscriptionStatus::Active {
        // Held deliveries may be due now.
        state.dispatcher.wake();
    }
    Ok(axum::Json(views::subscription(&state, &sub)?))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let sub = visible_subscription(&state, &caller, &id).await?;
    if !state
        .store
        .delete_subscription(sub.id, state.clock.now())
        .await?
    {
        return Err(AppError::not_found("subscription"));
    }
    Ok(axum::Json(json!({
        "subscriptionId": sub.id,
        "message": "Successfully deleted subscription",
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRequest {
    event_type: String,
    event_version: Option<String>,
    resource_name: Option<String>,
    event_url: String,
    auth_details: Option<AuthDetails>,
    headers: Option<BTreeMap<String, String>>,
    partner_id: Option<String>,
}

/// Sends a sample of the event type to `eventUrl` now and says how the endpoint answered.
pub async fn test(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(t): JsonBody<TestRequest>,
) -> AppResult<impl IntoResponse> {
    let c = check_input(
        &caller,
        &headers,
        "",
        &t.event_type,
        t.event_version,
        t.resource_name,
        t.event_url,
        None,
        t.auth_details,
        t.headers,
        None,
        t.partner_id,
    )?;
    let now = state.clock.now();
    let event_id = Uuid::now_v7();
    let body = serde_json::to_vec(&json!({
        "source": {
            "eventType": c.event_type.event_type,
            "eventVersion": c.event_version,
            "eventTime": envelope::event_time(now),
            "eventId": event_id,
        },
        "payload": catalog::sample_payload(c.event_type, &c.partner_id),
    }))
    .map_err(|_| AppError::internal())?;
    let msg_id = format!("msg_test_{}", event_id.simple());
    let request = OutboundRequest {
        url: c.event_url,
        headers: envelope::standard_webhooks_headers(&msg_id, now, &body, &[]),
        body,
        custom_headers: c.headers,
        auth: c.auth,
        token_cache_key: None,
    };
    let outcome = state.sender.send(&request).await;
    if outcome.succeeded() {
        return Ok(axum::Json(
            json!({"message": "Eventurl successfully validated"}),
        ));
    }
    let message = match (outcome.status_code, &outcome.error_message) {
        (Some(code), _) => format!("eventUrl answered HTTP {code}"),
        (None, Some(m)) => format!("eventUrl could not be reached: {m}"),
        (None, None) => "eventUrl could not be reached".to_string(),
    };
    Err(AppError::bad_request("test_delivery_failed", message).with_field("eventUrl"))
}
