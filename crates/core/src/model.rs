//! The records Switchyard keeps: clients, subscriptions, events, deliveries and attempts.
//!
//! Secrets inside records are already sealed by [`crate::secrets::SecretBox`]: the store never sees
//! a plaintext credential, and only the code that needs one (delivery, the masking of a read)
//! opens it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::ids::{ClientId, DeliveryId, EventId, PartnerId, SourceId, SubscriptionId};

use crate::CoreError;
use crate::retry::RetryPolicy;

/// Delegated access a client holds on a resource (`seeds/001_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    NoAccess,
    ViewOnly,
    FullAccess,
}

impl std::str::FromStr for Access {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no_access" => Ok(Access::NoAccess),
            "view_only" => Ok(Access::ViewOnly),
            "full_access" => Ok(Access::FullAccess),
            other => Err(CoreError::invalid(
                "scope",
                format!("unknown access {other:?}: use no_access, view_only or full_access"),
            )),
        }
    }
}

/// An API caller. Its secret is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// Hex SHA-256 of the client secret (the secret is random and high-entropy).
    pub secret_hash: String,
    /// The partners (sellers) this client manages.
    pub partners: Vec<PartnerId>,
    /// Delegated access per resource name (`ITEM`, `ORDER`, ...); a missing resource is `no_access`.
    pub scopes: BTreeMap<String, Access>,
    /// Admins see and change every partner's objects.
    pub admin: bool,
    pub created_at: Timestamp,
}

impl Client {
    pub fn access_to(&self, resource: &str) -> Access {
        if self.admin {
            return Access::FullAccess;
        }
        self.scopes
            .get(resource)
            .copied()
            .unwrap_or(Access::NoAccess)
    }

    pub fn manages(&self, partner_id: &str) -> bool {
        self.admin || self.partners.iter().any(|p| p == partner_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionStatus {
    Active,
    Inactive,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "ACTIVE",
            SubscriptionStatus::Inactive => "INACTIVE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(SubscriptionStatus::Active),
            "INACTIVE" => Some(SubscriptionStatus::Inactive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthMethod {
    BasicAuth,
    Hmac,
    Oauth,
}

/// Placeholder shown instead of a stored credential.
pub const MASK: &str = "********";

/// How a delivery authenticates to its endpoint, in Walmart's `authDetails` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthDetails {
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl AuthDetails {
    /// The header the credential goes in, with each method's default.
    pub fn header_name(&self) -> &str {
        match (&self.auth_header_name, self.auth_method) {
            (Some(name), _) if !name.is_empty() => name,
            (_, AuthMethod::Hmac) => "WM_SEC.AUTH_SIGNATURE",
            _ => "Authorization",
        }
    }

    /// Checks that the fields the method needs are present and well formed.
    pub fn validate(&self) -> Result<(), CoreError> {
        let need = |value: &Option<String>, field: &str| match value {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(CoreError::invalid(
                format!("authDetails.{field}"),
                format!("{field} is required for authMethod {:?}", self.auth_method),
            )),
        };
        match self.auth_method {
            AuthMethod::BasicAuth => {
                need(&self.user_name, "userName")?;
                need(&self.password, "password")?;
                if self.user_name.as_deref().is_some_and(|u| u.contains(':')) {
                    return Err(CoreError::invalid(
                        "authDetails.userName",
                        "userName must not contain ':'",
                    ));
                }
            }
            AuthMethod::Hmac => need(&self.client_secret, "clientSecret")?,
            AuthMethod::Oauth => {
                need(&self.auth_url, "authUrl")?;
                need(&self.client_id, "clientId")?;
                need(&self.client_secret, "clientSecret")?;
                validate_http_url(
                    "authDetails.authUrl",
                    self.auth_url.as_deref().unwrap_or(""),
                )?;
            }
        }
        if let Some(name) = &self.auth_header_name {
            validate_header_name("authDetails.authHeaderName", name)?;
        }
        Ok(())
    }

    /// The same details with every credential replaced by [`MASK`]: what reads return.
    pub fn masked(&self) -> AuthDetails {
        let mask = |v: &Option<String>| v.as_ref().map(|_| MASK.to_string());
        AuthDetails {
            password: mask(&self.password),
            client_secret: mask(&self.client_secret),
            ..self.clone()
        }
    }

    /// Applies a PATCH: fields given replace, a masked value keeps what is stored (so a client
    /// can send back what it read), and a new method starts from the new fields alone.
    pub fn merged_with(&self, patch: &AuthDetails) -> AuthDetails {
        if patch.auth_method != self.auth_method {
            return patch.clone();
        }
        let pick = |new: &Option<String>, old: &Option<String>| match new.as_deref() {
            Some(MASK) | None => old.clone(),
            Some(_) => new.clone(),
        };
        AuthDetails {
            auth_method: self.auth_method,
            user_name: pick(&patch.user_name, &self.user_name),
            password: pick(&patch.password, &self.password),
            auth_header_name: pick(&patch.auth_header_name, &self.auth_header_name),
            auth_url: pick(&patch.auth_url, &self.auth_url),
            client_id: pick(&patch.client_id, &self.client_id),
            client_secret: pick(&patch.client_secret, &self.client_secret),
        }
    }
}

/// Accepts only absolute `http`/`https` URLs with a host.
pub fn validate_http_url(field: &str, url: &str) -> Result<(), CoreError> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| CoreError::invalid(field, "must be an http or https URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || host.starts_with(':')
        || url.len() > 2048
        || url.contains(char::is_whitespace)
    {
        return Err(CoreError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    Ok(())
}

/// Accepts RFC 7230 token characters only, so a header name cannot smuggle a line break.
pub fn validate_header_name(field: &str, name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            field,
            format!("{name:?} is not a valid header name"),
        ))
    }
}

/// Accepts visible ASCII and spaces, so a header value cannot smuggle a line break.
pub fn validate_header_value(field: &str, value: &str) -> Result<(), CoreError> {
    if value.len() <= 4096
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        Ok(())
    } else {
        Err(CoreError::invalid(
            field,
            "header values must be printable ASCII",
        ))
    }
}

/// Whether a subscription receives deliveries for the same resource one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Full parallelism.
    #[default]
    None,
    /// Deliveries for the same resource (e.g. the same order) go one at a time, in the order the
    /// events were accepted; a failing one holds those behind it until it succeeds or fails for
    /// good.
    Resource,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Resource => "resource",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Ordering::None),
            "resource" => Some(Ordering::Resource),
            _ => None,
        }
    }
}

/// A subscription as stored: who gets which events where, with secrets sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub id: SubscriptionId,
    pub partner_id: PartnerId,
    /// The client that created it.
    pub client_id: ClientId,
    /// Native event types or normalized topics this subscription receives (Walmart: one).
    pub event_types: Vec<String>,
    pub event_version: String,
    pub resource_name: String,
    pub event_url: String,
    pub headers: BTreeMap<String, String>,
    /// `authDetails` as JSON, sealed.
    pub auth_sealed: Option<String>,
    pub status: SubscriptionStatus,
    pub retry_policy: RetryPolicy,
    /// The Standard Webhooks secret (`whsec_...`), sealed.
    pub signing_secret_sealed: String,
    /// The previous signing secret, still used alongside until `previous_secret_expires_at`.
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// `none`, or `resource`: one delivery at a time per resource, in order.
    pub ordering: Ordering,
    /// Requests in flight at once (`maxInFlight`), over all nodes.
    pub max_in_flight: Option<u32>,
    /// Deliveries per second, with bursts (`rateLimit`), over all nodes.
    pub rate_limit: Option<RateLimit>,
    /// Why the hub set it INACTIVE (410 Gone, failing too long); cleared when resumed.
    pub disabled_reason: Option<String>,
    /// When to stop sending every due delivery and probe instead.
    pub breaker: Breaker,
    /// A subscription failing continuously this long is set INACTIVE (default 5 days).
    pub auto_disable_after_secs: u64,
    /// The body shape its deliveries take.
    pub envelope: Envelope,
    /// A content filter (`core::filter`), checked when set: an event whose envelope it rejects
    /// makes no delivery to this subscription.
    pub filter: Option<serde_json::Value>,
    /// A transformation (`function handler(webhook)`, JavaScript), compiled when set and run on
    /// each attempt's request.
    pub transform: Option<String>,
    /// Latest state only: a state event's pending delivery is superseded by a newer one for the
    /// same resource (`catalog::is_state`).
    pub coalesce: bool,
}

/// The body shape of a subscription's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// `{"source":{eventType,eventVersion,eventTime,eventId},"payload":…}` (Walmart's).
    #[default]
    Walmart,
    /// `{"event":"onOrderCreated","payload":…}` (SellerCenter's); only HTTP 200 is success.
    Sellercenter,
    /// The Walmart envelope always carrying the normalized form when the event has one.
    Normalized,
}

impl Envelope {
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Walmart => "walmart",
            Envelope::Sellercenter => "sellercenter",
            Envelope::Normalized => "normalized",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "walmart" => Some(Envelope::Walmart),
            "sellercenter" => Some(Envelope::Sellercenter),
            "normalized" => Some(Envelope::Normalized),
            _ => None,
        }
    }
}

/// Circuit breaking: after `failureThreshold` failed attempts in a row the endpoint gets one
/// probe every `probeIntervalSeconds` instead of every due delivery, until one succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CircuitBreaker)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Breaker {
    pub failure_threshold: u32,
    pub probe_interval_seconds: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failure_threshold: 5,
            probe_interval_seconds: 60,
        }
    }
}

/// Five days, the default before a continuously failing subscription is disabled.
pub const DEFAULT_AUTO_DISABLE_AFTER_SECS: u64 = 5 * 86_400;

/// A subscription's pace: `perSecond` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// Checks the numbers: a positive rate of at most 10,000 per second, a burst of at least 1.
    pub fn validate(&self) -> Result<(), CoreError> {
        let ok = self.per_second.is_finite()
            && self.per_second > 0.0
            && self.per_second <= 10_000.0
            && self.burst.is_finite()
            && (1.0..=100_000.0).contains(&self.burst);
        if ok {
            Ok(())
        } else {
            Err(CoreError::invalid(
                "rateLimit",
                "rateLimit needs 0 < perSecond <= 10000 and 1 <= burst <= 100000",
            ))
        }
    }
}

/// `rateLimit` as the API takes it: a number (per second, bursts of that many) or
/// `{"perSecond", "burst"}`.
impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Rate(f64),
            #[serde(rename_all = "camelCase")]
            Full {
                per_second: f64,
                burst: Option<f64>,
            },
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Rate(r) => RateLimit {
                per_second: r,
                burst: r.ceil().max(1.0),
            },
            Wire::Full { per_second, burst } => RateLimit {
                per_second,
                burst: burst.unwrap_or(per_second.ceil().max(1.0)),
            },
        })
    }
}

/// Filters for listing subscriptions; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    /// Limit to these partners (`None`: every partner, for admins).
    pub partners: Option<Vec<PartnerId>>,
    pub subscription_id: Option<SubscriptionId>,
    pub event_type: Option<String>,
    pub resource_name: Option<String>,
    pub status: Option<SubscriptionStatus>,
}

/// One immutable fact, published by a producer or received from a marketplace.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    /// Where it came from: `publish` or a source id.
    pub origin: String,
    /// Dedup key within the origin (the producer's `eventId`, a marketplace's notification id).
    pub dedup_key: Option<String>,
    pub partner_id: PartnerId,
    pub event_type: String,
    pub event_version: String,
    /// The normalized topic, when one applies.
    pub topic: Option<String>,
    /// The event id a receiver sees in `source.eventId`.
    pub public_event_id: String,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    /// The payload delivered to subscribers of the event type: as published, or the
    /// marketplace's own payload.
    pub payload: serde_json::Value,
    /// The normalized form, delivered to subscribers of the topic (received events only).
    pub normalized: Option<serde_json::Value>,
    /// Whether `normalized` leaves out its `native` member because that member is `payload`.
    /// A received event is built so, without a second copy of its payload, and the store takes
    /// it as it stores it (no comparing the two to find out). Records read from the store carry
    /// `native` whole and say `false`.
    pub native_elided: bool,
    /// The request body byte for byte, as a marketplace sent it (received events only).
    pub raw_body: Option<Vec<u8>>,
    /// The resource the event is about, `type:id` (e.g. `order:PO-1`), for per-resource ordering.
    pub resource_key: Option<String>,
    /// The request headers kept with a received event, credentials and signatures left out.
    pub headers: BTreeMap<String, String>,
    /// The `traceparent` of the span the event was stored in, when traces are kept: its
    /// deliveries' `attempt` spans continue that trace.
    pub trace_parent: Option<String>,
    /// The event's position in the hub's log, given when it is stored: for any one resource a
    /// later event has a larger one. Envelopes carry it as `resourceVersion`.
    pub resource_version: Option<i64>,
}

impl EventRecord {
    /// The normalized form with its `native` member, put back (a copy of the payload) where
    /// the record left it out.
    pub fn normalized_whole(&self) -> Option<std::borrow::Cow<'_, serde_json::Value>> {
        let normalized = self.normalized.as_ref()?;
        match normalized {
            serde_json::Value::Object(map) if self.native_elided => {
                let mut map = map.clone();
                map.insert("native".into(), self.payload.clone());
                Some(std::borrow::Cow::Owned(serde_json::Value::Object(map)))
            }
            _ => Some(std::borrow::Cow::Borrowed(normalized)),
        }
    }
}

/// The last status seen of a resource, kept so that the first sighting of an order can be
/// `order.created` where a marketplace only sends status changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSighting {
    pub marketplace: String,
    pub partner_id: PartnerId,
    pub resource_kind: String,
    pub resource_id: String,
    pub status: Option<String>,
    /// The topic to use instead of the event's when this resource was never seen before.
    pub first_sighting_topic: Option<String>,
    /// The order fact the event states, claimed in the same transaction (sources that
    /// reconcile; see [`FactClaim`]).
    pub claim: Option<FactClaim>,
}

/// An order fact an event claims (`switchyard_marketplaces::orders::fact_of`: an order's
/// creation, or a topic with a status), so that a webhook and a reconciliation that state the
/// same fact are one event. A reconciliation's claim of a fact already claimed makes no event;
/// a webhook's claim of a fact only a reconciliation claimed is a duplicate of that event
/// (once: the fact is then the webhook's); a webhook's claim of a fact a webhook claimed is a
/// new event as before (a marketplace may state one fact twice, in two events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactClaim {
    pub fact: String,
    pub by_reconciliation: bool,
}

/// An inbound endpoint for one marketplace connection. Secrets are sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub id: SourceId,
    /// `amazon_sns`, `ebay`, `etsy`, `tiktok`, `walmart`, `flipkart`, `sellercenter`, `shopify`,
    /// `standard`.
    pub kind: String,
    pub name: String,
    /// The partners (sellers) this source may speak for; the first is the default.
    pub partners: Vec<PartnerId>,
    /// The secrets as a JSON array of `{id, value}`, sealed.
    pub secrets_sealed: String,
    pub replay_window_secs: i64,
    /// The kind's options.
    pub options: serde_json::Value,
    pub client_id: ClientId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Reconciliation against the marketplace's orders API, when set up.
    pub reconcile: Option<ReconcileSettings>,
}

/// How a source reconciles against its marketplace's orders API. Stored as JSON with the
/// source; the credentials sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileSettings {
    /// The API's base URL; `None`: the marketplace's production API.
    pub api_base_url: Option<String>,
    /// The credentials as a JSON object, sealed.
    pub credentials_sealed: String,
    /// What the marketplace's client reads that is not secret (`marketplaceIds`, `shopId`).
    #[serde(default)]
    pub options: serde_json::Value,
    pub interval_seconds: i64,
    pub lookback_seconds: i64,
}

/// What one reconciliation run found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Reconciliation)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRun {
    pub run_id: Uuid,
    pub source_id: SourceId,
    /// The source's partners when it ran.
    pub partners: Vec<PartnerId>,
    pub marketplace: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The window asked for: orders changed at or after `since`, before `until`.
    pub since: Timestamp,
    pub until: Timestamp,
    /// Orders the API reported in the window.
    pub orders_checked: u64,
    /// Order facts the API reported that no received event covered.
    pub missing: u64,
    /// The events made for them.
    pub backfilled: Vec<Backfilled>,
    pub errors: Vec<RunError>,
}

/// An event a reconciliation made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backfilled {
    pub event_id: EventId,
    pub resource_id: String,
    pub topic: Option<String>,
}

/// A call of a run that failed (after its retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// `unauthorized`, `rate_limited`, `transient`, `refused`, `protocol`, `config`, `store`.
    pub code: String,
    pub message: String,
}

/// An inbound request that was refused: the failures dashboard's data. Holds no secret and no
/// body, only the body's hash and size.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Rejection)]
#[serde(rename_all = "camelCase")]
pub struct RejectionRecord {
    pub id: Uuid,
    /// The source id as the URL named it (it may name no source).
    pub source_id: String,
    /// The partners of the source, when it exists (for tenant filtering).
    #[serde(skip)]
    pub partners: Vec<PartnerId>,
    pub reason: String,
    pub status_code: u16,
    pub message: String,
    pub remote_addr: Option<String>,
    pub body_sha256: String,
    pub body_size: u64,
    pub received_at: Timestamp,
}

/// Filters for listing rejections, newest first.
#[derive(Debug, Clone, Default)]
pub struct RejectionFilter {
    pub partners: Option<Vec<PartnerId>>,
    pub source_id: Option<String>,
    pub reason: Option<String>,
    pub since: Option<Timestamp>,
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Filters for listing events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub partners: Option<Vec<PartnerId>>,
    pub topic: Option<String>,
    /// The origin's marketplace: matched against `marketplace` in the normalized form.
    pub marketplace: Option<String>,
    pub partner_id: Option<PartnerId>,
    /// Events about any of these resources (`type:id`, e.g. `order:PO-1`).
    pub resource_keys: Option<Vec<String>>,
    pub since: Option<Timestamp>,
    /// Received strictly before this time.
    pub until: Option<Timestamp>,
    pub before: Option<EventId>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    /// A newer event for the same resource took its place before it went out (`coalesce`).
    Superseded,
    /// The subscription's transformation dropped it (`cancel: true`).
    Cancelled,
    /// Waiting to be read by a polling subscription (`poll:`); never pushed.
    Polling,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Superseded => "superseded",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Polling => "polling",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            "superseded" => Some(DeliveryStatus::Superseded),
            "cancelled" => Some(DeliveryStatus::Cancelled),
            "polling" => Some(DeliveryStatus::Polling),
            _ => None,
        }
    }
}

/// One event owed to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub partner_id: PartnerId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub first_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One try of a delivery, as the callback log shows it. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Attempt)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub id: Uuid,
    pub delivery_id: DeliveryId,
    pub attempted_at: Timestamp,
    pub succeeded: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// `http_status`, `timeout`, `connect`, `refused_target`, `auth`, `request`.
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    /// The first 4 KiB of the response body.
    pub response_excerpt: Option<String>,
    /// The trace the attempt is part of (32 hex digits), when traces are kept
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`); the subscriber got it in `traceparent`. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// Maximum bytes of a response body kept with an attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;

/// Filters for listing deliveries, paged by id (newest first).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub partners: Option<Vec<PartnerId>>,
    pub subscription_id: Option<SubscriptionId>,
    pub event_id: Option<EventId>,
    pub status: Option<DeliveryStatus>,
    /// Return deliveries with ids strictly below this one (the previous page's cursor).
    pub before: Option<DeliveryId>,
    pub limit: u32,
}

/// Filters for a webhook's callback log: its attempts, newest first, paged by attempt.
#[derive(Debug, Clone)]
pub struct AttemptFilter {
    pub subscription_id: SubscriptionId,
    /// `Some(true)`: only successes; `Some(false)`: only failures.
    pub succeeded: Option<bool>,
    pub since: Option<Timestamp>,
    /// Attempted strictly before this time.
    pub until: Option<Timestamp>,
    /// Attempts after this one in the log's order (the previous page's last attempt id).
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// One line of a callback log: an attempt, with the delivery and event it was for.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedAttempt {
    pub attempt: AttemptRecord,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
}

/// How a subscriber says it processed an event (`POST /api/v1/events/{id}/outcome`): the
/// failures dashboard shows the reasons of the failed ones beside the hub's own failures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Outcome)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeRecord {
    #[serde(rename = "outcomeId")]
    pub id: Uuid,
    pub event_id: EventId,
    pub partner_id: PartnerId,
    pub client_id: ClientId,
    /// `processed` or `failed`.
    pub status: String,
    /// A short machine-readable reason (`inventory_mismatch`), for failures.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub reported_at: Timestamp,
}

/// Filters for listing outcomes, newest first.
#[derive(Debug, Clone, Default)]
pub struct OutcomeFilter {
    pub partners: Option<Vec<PartnerId>>,
    pub event_id: Option<EventId>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub since: Option<Timestamp>,
    pub before: Option<Uuid>,
    pub limit: u32,
}
