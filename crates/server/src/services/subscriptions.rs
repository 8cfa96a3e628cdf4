//! Subscriptions: create, change, delete (the test notification is `super::test_notification`). Shapes follow Walmart's
//! `/v3/webhooks` (`docs/marketplaces.md`); creating or changing a subscription needs a scope other
//! than `no_access` on its resource (`seeds/001_*`). The routes of `/v3/webhooks`, the console and
//! SellerCenter's dialect are adapters over these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchyard_core::catalog::{self, EventType};
use switchyard_core::model::{
    Access, AuthDetails, Breaker, Client, DEFAULT_AUTO_DISABLE_AFTER_SECS, Envelope, Ordering,
    RateLimit, SubscriptionFilter, SubscriptionRecord, SubscriptionStatus, validate_header_name,
    validate_header_value,
};
use switchyard_core::retry::RetryPolicy;
use switchyard_core::signatures::standard_webhooks;

use switchyard_core::wire_schema::{EventTypeName, RateLimitInput, ResourceName, RetryPolicyInput};

pub use super::test_notification::{TestRequest, test_notification};

use super::scope::{resolve_partner, tenant, visible_subscription};
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::views;
use switchyard_core::model::PartnerId;
use switchyard_core::model::SubscriptionId;

/// The `eventUrl` of a polling subscription.
pub const POLL: &str = "poll:";

/// One entry of a create request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionInput {
    #[schema(value_type = EventTypeName)]
    pub event_type: String,
    /// Default: the type's version.
    pub event_version: Option<String>,
    /// The type's resource (`ORDER`, `ITEM`, …), as Walmart's API asks for it.
    #[schema(value_type = Option<ResourceName>)]
    pub resource_name: Option<String>,
    /// Where deliveries go: an http(s) URL, a broker (`nats://HOST:PORT/SUBJECT`,
    /// `amqp://HOST:PORT/VHOST?exchange=EX&routingKey=RK`, `redis://HOST:PORT/DB?stream=NAME`,
    /// `mqtt://HOST:PORT/TOPIC`), or `poll:` (nothing pushed; read at `pollUrl`).
    #[schema(format = "uri")]
    pub event_url: String,
    /// Default: `ACTIVE`.
    #[schema(value_type = Option<SubscriptionStatus>)]
    pub status: Option<String>,
    pub auth_details: Option<AuthDetails>,
    /// Sent with every delivery (at most 50).
    pub headers: Option<BTreeMap<String, String>>,
    /// Default: `walmart` (5, 15, 45 minutes).
    #[schema(value_type = Option<RetryPolicyInput>)]
    pub retry_policy: Option<RetryPolicy>,
    /// Default: `WM_PARTNER.ID`, else the client's only partner.
    pub partner_id: Option<String>,
    pub ordering: Option<Ordering>,
    /// At most this many deliveries to the endpoint at once.
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_in_flight: Option<u32>,
    #[schema(value_type = Option<RateLimitInput>)]
    pub rate_limit: Option<RateLimit>,
    pub circuit_breaker: Option<Breaker>,
    /// Disable the subscription after failing this long (default five days).
    #[schema(minimum = 60, maximum = 7_776_000)]
    pub auto_disable_after_seconds: Option<u64>,
    pub envelope: Option<Envelope>,
    /// A content filter: only events whose envelope it matches are delivered (see README,
    /// *Content filters*).
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// A transformation, `function handler(webhook) {…}` in JavaScript: receives
    /// `{eventType, payload, headers, url}` and returns it changed, or `{cancel: true}` (see
    /// README, *Transformations*). Compiled when set.
    pub transform: Option<String>,
    /// Latest state only: a pending delivery of a state event (inventory, price, listing
    /// status, order status) is superseded by a newer one for the same resource.
    pub coalesce: Option<bool>,
}

/// A create request: one subscription per entry.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateSubscriptions)]
pub struct CreateRequest {
    #[serde(alias = "event", alias = "eventTypes")]
    pub events: Vec<SubscriptionInput>,
}

/// What a create or test request names, checked.
pub(super) struct Checked {
    pub event_type: &'static EventType,
    pub event_version: String,
    pub event_url: String,
    pub status: SubscriptionStatus,
    pub auth: Option<AuthDetails>,
    pub headers: BTreeMap<String, String>,
    pub retry_policy: RetryPolicy,
    pub partner_id: PartnerId,
}

/// A subscription just created, with its signing secret (never shown again).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSubscription {
    pub event_type: String,
    pub event_version: String,
    pub partner_id: PartnerId,
    /// Where a polling subscription (`eventUrl` `poll:`) is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_url: Option<String>,
    pub resource_name: String,
    pub signing_secret: String,
    pub status: SubscriptionStatus,
    pub subscription_id: SubscriptionId,
}

pub fn check_headers(
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
pub(super) fn check_input(
    caller: &Client,
    header_partner: Option<&str>,
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
    switchyard_core::destination::parse(&field("eventUrl"), &event_url)?;
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
    let partner_id = resolve_partner(caller, partner_id, header_partner, &field("partnerId"))?;
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

/// Creates one subscription per entry, all or none; each answer carries its signing secret,
/// shown this once.
pub async fn create(
    state: &AppState,
    caller: &Client,
    header_partner: Option<&str>,
    request: CreateRequest,
) -> AppResult<Vec<CreatedSubscription>> {
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
            caller,
            header_partner,
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
            id: SubscriptionId::new(),
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
            filter: check_filter(input.filter, &format!("events[{i}].filter"))?,
            transform: super::transformations::check(
                input.transform,
                &format!("events[{i}].transform"),
            )
            .await?,
            coalesce: input.coalesce.unwrap_or(false),
        });
        secrets.push(signing_secret);
    }
    tenant(state, caller)
        .create_subscriptions(records.clone())
        .await?;
    Ok(records
        .into_iter()
        .zip(secrets)
        .map(|(s, signing_secret)| CreatedSubscription {
            poll_url: views::poll_url(&s),
            event_type: s.event_types.into_iter().next().unwrap_or_default(),
            event_version: s.event_version,
            partner_id: s.partner_id,
            resource_name: s.resource_name,
            signing_secret,
            status: s.status,
            subscription_id: s.id,
        })
        .collect())
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

/// A content filter, checked: a 400 naming the path inside it (`filter.payload.total.$gt`).
pub(super) fn check_filter(filter: Option<Value>, field: &str) -> AppResult<Option<Value>> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    match switchyard_core::filter::Filter::parse(&filter) {
        Ok(_) => Ok(Some(filter)),
        Err(e) => {
            let path = e.path.replacen("filter", field, 1);
            Err(AppError::invalid(
                path.clone(),
                format!("{path}: {}", e.message),
            ))
        }
    }
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

/// A change to a subscription: each field given replaces what is stored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = SubscriptionPatch)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchRequest {
    /// Where deliveries go (between `poll:` and a pushed destination it cannot change): an http(s) URL, a broker (`nats://HOST:PORT/SUBJECT`,
    /// `amqp://HOST:PORT/VHOST?exchange=EX&routingKey=RK`, `redis://HOST:PORT/DB?stream=NAME`,
    /// `mqtt://HOST:PORT/TOPIC`), or `poll:` (nothing pushed; read at `pollUrl`).
    #[schema(format = "uri")]
    pub event_url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    /// Absent: unchanged; `null`: removed; an object: merged (masked values keep what is stored).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AuthDetails>)]
    pub auth_details: Option<Value>,
    #[schema(value_type = Option<SubscriptionStatus>)]
    pub status: Option<String>,
    pub event_version: Option<String>,
    #[schema(value_type = Option<RetryPolicyInput>)]
    pub retry_policy: Option<RetryPolicy>,
    pub ordering: Option<Ordering>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10_000)]
    pub max_in_flight: Option<Value>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitInput>)]
    pub rate_limit: Option<Value>,
    pub circuit_breaker: Option<Breaker>,
    #[schema(minimum = 60, maximum = 7_776_000)]
    pub auto_disable_after_seconds: Option<u64>,
    pub envelope: Option<Envelope>,
    /// `null` removes the filter.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// `null` removes the transformation.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub transform: Option<Value>,
    pub coalesce: Option<bool>,
    /// Read-only; ignored (cleared by the hub when the subscription is resumed).
    #[serde(rename = "disabledReason")]
    #[schema(value_type = Option<Value>)]
    pub _disabled_reason: Option<serde::de::IgnoredAny>,
    // Read-only fields a client may send back unchanged from a read.
    /// Read-only: may only be sent back unchanged.
    pub subscription_id: Option<Value>,
    /// Read-only: may only be sent back unchanged.
    pub partner_id: Option<Value>,
    /// Read-only: may only be sent back unchanged.
    pub event_type: Option<Value>,
    /// Read-only: may only be sent back unchanged.
    pub event_types: Option<Value>,
    /// Read-only: may only be sent back unchanged.
    pub resource_name: Option<Value>,
    /// Read-only; ignored.
    #[serde(rename = "createdAt")]
    #[schema(value_type = Option<Value>)]
    pub _created_at: Option<serde::de::IgnoredAny>,
    /// Read-only; ignored.
    #[serde(rename = "updatedAt")]
    #[schema(value_type = Option<Value>)]
    pub _updated_at: Option<serde::de::IgnoredAny>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(Value::Null)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Changes a subscription the caller may see; returns it as stored.
pub async fn update(
    state: &AppState,
    caller: &Client,
    id: &str,
    patch: PatchRequest,
) -> AppResult<SubscriptionRecord> {
    let mut sub = visible_subscription(state, caller, id).await?;
    check_scope(caller, &sub.resource_name)?;
    let current = serde_json::to_value(views::subscription(state, &sub)?)
        .map_err(|_| AppError::internal())?;
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
        switchyard_core::destination::parse("eventUrl", &url)?;
        if (url == POLL) != (sub.event_url == POLL) {
            // Its deliveries wait to be read, or are pushed: never both.
            return Err(AppError::bad_request(
                "read_only",
                "eventUrl cannot change between poll: and a pushed destination; create a new subscription instead",
            )
            .with_field("eventUrl"));
        }
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
    match patch.filter {
        None => {}
        Some(Value::Null) => sub.filter = None,
        Some(filter) => sub.filter = check_filter(Some(filter), "filter")?,
    }
    match patch.transform {
        None => {}
        Some(Value::Null) => sub.transform = None,
        Some(Value::String(code)) => {
            sub.transform = super::transformations::check(Some(code), "transform").await?
        }
        Some(_) => {
            return Err(AppError::invalid(
                "transform",
                "transform must be JavaScript source text, or null to remove it",
            ));
        }
    }
    if let Some(coalesce) = patch.coalesce {
        sub.coalesce = coalesce;
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
            let merged = match views::open_auth(state, &sub)? {
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
    if !tenant(state, caller)
        .update_subscription(sub.clone())
        .await?
    {
        return Err(AppError::not_found("subscription"));
    }
    if !was_active && sub.status == SubscriptionStatus::Active {
        // Held deliveries may be due now.
        state.dispatcher.wake();
    }
    Ok(sub)
}

/// Deletes a subscription the caller may see; returns its id.
pub async fn delete(state: &AppState, caller: &Client, id: &str) -> AppResult<SubscriptionId> {
    let sub = visible_subscription(state, caller, id).await?;
    if !tenant(state, caller)
        .delete_subscription(sub.id, state.clock.now())
        .await?
    {
        return Err(AppError::not_found("subscription"));
    }
    Ok(sub.id)
}

/// Which of the caller's subscriptions to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this subscription (an id that is not a UUID matches nothing).
    pub subscription_id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this resource.
    pub resource_name: Option<String>,
    /// Only this status.
    #[param(value_type = Option<SubscriptionStatus>)]
    pub status: Option<String>,
}

/// The subscriptions of the partners the caller may see, filtered by the query.
pub async fn list(
    state: &AppState,
    caller: &Client,
    q: ListQuery,
) -> AppResult<Vec<SubscriptionRecord>> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            SubscriptionStatus::parse(s)
                .ok_or_else(|| AppError::invalid("status", "status must be ACTIVE or INACTIVE"))?,
        ),
    };
    let subscription_id = match q.subscription_id.as_deref() {
        None => None,
        Some(raw) => match raw.parse::<SubscriptionId>() {
            Ok(id) => Some(id),
            // No subscription has that id.
            Err(_) => return Ok(vec![]),
        },
    };
    let filter = SubscriptionFilter {
        partners: None,
        subscription_id,
        event_type: q.event_type,
        resource_name: q.resource_name,
        status,
    };
    Ok(tenant(state, caller).list_subscriptions(&filter).await?)
}

/// SellerCenter retries for 30 days; the breaker's auto-disable must not end that earlier.
const SELLERCENTER_AUTO_DISABLE_AFTER_SECS: u64 = 31 * 86_400;

/// A SellerCenter webhook: one subscription to several event types (its events and the
/// normalized topics they carry), with SellerCenter's envelope and retry ladder.
#[derive(Debug)]
pub struct SellercenterWebhook {
    pub partner_id: PartnerId,
    pub event_url: String,
    pub event_types: Vec<String>,
    pub resource_name: String,
}

/// Creates a SellerCenter webhook for a partner the caller manages (the dialect has checked the
/// URL, the event types and the caller's scopes).
pub async fn create_sellercenter(
    state: &AppState,
    caller: &Client,
    w: SellercenterWebhook,
) -> AppResult<SubscriptionRecord> {
    if !caller.manages(&w.partner_id) {
        return Err(AppError::forbidden(
            "partner_not_managed",
            format!("this client does not manage partner {:?}", w.partner_id),
        ));
    }
    let now = state.clock.now();
    let record = SubscriptionRecord {
        id: SubscriptionId::new(),
        partner_id: w.partner_id,
        client_id: caller.id.clone(),
        event_types: w.event_types,
        event_version: catalog::V1.into(),
        resource_name: w.resource_name,
        event_url: w.event_url,
        headers: BTreeMap::new(),
        auth_sealed: None,
        status: SubscriptionStatus::Active,
        retry_policy: RetryPolicy::Sellercenter,
        signing_secret_sealed: state.secrets.seal(&standard_webhooks::generate_secret()),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        ordering: Default::default(),
        max_in_flight: None,
        rate_limit: None,
        disabled_reason: None,
        breaker: Default::default(),
        auto_disable_after_secs: SELLERCENTER_AUTO_DISABLE_AFTER_SECS,
        envelope: Envelope::Sellercenter,
        filter: None,
        transform: None,
        coalesce: false,
    };
    tenant(state, caller)
        .create_subscriptions(vec![record.clone()])
        .await?;
    Ok(record)
}
