//! Shopify webhooks (`docs/marketplaces.md`, Shopify), where integrators forward orders.
//!
//! `X-Shopify-Hmac-Sha256` is base64 HMAC-SHA256 of the raw body keyed by the app's client
//! secret; any of the source's secrets may have signed. Topic: `X-Shopify-Topic` (required);
//! partner: `X-Shopify-Shop-Domain`; dedup key: `X-Shopify-Webhook-Id`, else
//! `X-Shopify-Event-Id`, else a hash of topic and body; native id: `X-Shopify-Event-Id`, else
//! `X-Shopify-Webhook-Id`; time: `X-Shopify-Triggered-At`. The body must be a JSON object.
//!
//! Nothing timed is signed, and Shopify retries for 4 hours, so no replay window applies unless
//! `checkTriggeredAt` is set: then a parsable `X-Shopify-Triggered-At` outside the source's replay
//! window is refused as stale (checked after the signature).
//!
//! # Options (`source.options`)
//!
//! | option | values | default |
//! |---|---|---|
//! | `checkTriggeredAt` | `true` or `false` | `false` |
//!
//! # Signing (`sign`)
//!
//! `secret` is the client secret; `event_type` the topic (default `orders/create`). Headers:
//! topic, HMAC, `X-Shopify-Shop-Domain` = partner_id, `X-Shopify-Webhook-Id` = event_id,
//! `X-Shopify-Event-Id` = option `eventId` (default event_id), `X-Shopify-Triggered-At` = now,
//! `X-Shopify-API-Version`. Body: for `inventory_levels/*` `{"inventory_item_id", "location_id",
//! "available" (option `available`, default 0), "updated_at"}`; for `products/*` `{"id", "title",
//! "updated_at"}`; otherwise an order `{"id", "admin_graphql_api_id", "name", "created_at",
//! "updated_at", "financial_status" (option `financialStatus`, default "paid"),
//! "fulfillment_status" (option `fulfillmentStatus`, default null), "cancelled_at"}`. Ids are
//! numbers when resource_id is numeric.

pub mod orders;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::util;
use crate::*;

pub const HMAC_HEADER: &str = "x-shopify-hmac-sha256";
pub const TOPIC_HEADER: &str = "x-shopify-topic";
pub const SHOP_HEADER: &str = "x-shopify-shop-domain";
pub const WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";
pub const EVENT_ID_HEADER: &str = "x-shopify-event-id";
pub const TRIGGERED_AT_HEADER: &str = "x-shopify-triggered-at";

fn check_triggered_at(options: &Value) -> Result<bool, Refusal> {
    match options.get("checkTriggeredAt") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Refusal::Misconfigured(format!(
            "checkTriggeredAt must be true or false, not {other}"
        ))),
    }
}

/// Refuses the options [`verify`] would refuse as misconfigured: only a `checkTriggeredAt` that
/// is not a boolean, so that a source is refused when it is set up rather than on every request.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    check_triggered_at(options).map(|_| ())
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    util::require_post(req, "Shopify webhooks")?;
    let check_window = check_triggered_at(&source.options)?;
    let header = |name: &str| req.header(name).map(str::trim).filter(|v| !v.is_empty());
    let presented = header(HMAC_HEADER).ok_or(Refusal::MissingSignature)?;
    let secrets = util::secrets(source)?;
    let presented = STANDARD
        .decode(presented)
        .map_err(|_| Refusal::SignatureMismatch)?;
    let mut ok = false;
    for secret in secrets {
        ok |= util::ct_eq(
            &util::hmac_sha256(secret.as_bytes(), &[req.body]),
            &presented,
        );
    }
    if !ok {
        return Err(Refusal::SignatureMismatch);
    }

    let occurred_at = header(TRIGGERED_AT_HEADER).and_then(|t| util::parse_time(&json!(t)));
    if check_window && let Some(at) = occurred_at {
        util::check_window(at.as_second(), req.now, source.replay_window)?;
    }
    let topic = header(TOPIC_HEADER)
        .ok_or_else(|| Refusal::MalformedBody("X-Shopify-Topic is missing".into()))?
        .to_string();
    let payload = util::parse_object(req.body)?;
    let webhook_id = header(WEBHOOK_ID_HEADER).map(String::from);
    let event_id = header(EVENT_ID_HEADER).map(String::from);
    let dedup_key = webhook_id
        .clone()
        .or_else(|| event_id.clone())
        .unwrap_or_else(|| util::hash_key(&[&topic, &String::from_utf8_lossy(req.body)]));
    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Shopify,
        event_type: topic,
        dedup_key,
        native_event_id: event_id.or(webhook_id),
        partner_id: header(SHOP_HEADER).map(String::from),
        occurred_at,
        payload,
    }))
}

fn numeric_or_string(s: &str) -> Value {
    s.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(s))
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    if req.secret.is_empty() {
        return Err(Refusal::Misconfigured(
            "Shopify signs with the app's client secret".into(),
        ));
    }
    let topic = if req.event_type.is_empty() {
        "orders/create"
    } else {
        req.event_type.as_str()
    };
    let opt = |name: &str| req.options.get(name).cloned();
    let now = req.now.to_string();
    let id = numeric_or_string(&req.resource_id);
    let body = if topic.starts_with("inventory_levels/") {
        json!({
            "inventory_item_id": id,
            "location_id": opt("locationId").unwrap_or(json!(1)),
            "available": opt("available").unwrap_or(json!(0)),
            "updated_at": now,
        })
    } else if topic.starts_with("products/") {
        json!({"id": id, "title": format!("Product {}", req.resource_id), "updated_at": now})
    } else {
        json!({
            "id": id,
            "admin_graphql_api_id": format!("gid://shopify/Order/{}", req.resource_id),
            "name": format!("#{}", req.resource_id),
            "created_at": now,
            "updated_at": now,
            "financial_status": opt("financialStatus").unwrap_or(json!("paid")),
            "fulfillment_status": opt("fulfillmentStatus").unwrap_or(Value::Null),
            "cancelled_at": if topic == "orders/cancelled" { json!(now) } else { Value::Null },
        })
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| Refusal::Misconfigured(format!("cannot serialize: {e}")))?;
    let mac = util::hmac_sha256(req.secret.as_bytes(), &[&body]);
    let event_id = req
        .options
        .get("eventId")
        .and_then(util::as_id)
        .unwrap_or_else(|| req.event_id.clone());
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (TOPIC_HEADER.to_string(), topic.to_string()),
        (HMAC_HEADER.to_string(), STANDARD.encode(mac)),
        (SHOP_HEADER.to_string(), req.partner_id.clone()),
        (WEBHOOK_ID_HEADER.to_string(), req.event_id.clone()),
        (EVENT_ID_HEADER.to_string(), event_id),
        (TRIGGERED_AT_HEADER.to_string(), now),
        ("x-shopify-api-version".to_string(), "2025-07".to_string()),
    ];
    Ok(SignedRequest::post(headers, body))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let p = &event.payload;
    let text = |name: &str| p.get(name).and_then(Value::as_str).map(String::from);
    let order = |topic: &'static str, status: Option<String>| Normalized {
        topic: Some(topic),
        resource: p.get("id").and_then(util::as_id).map(|id| Resource {
            kind: "order".into(),
            id,
        }),
        status,
        first_sighting_topic: None,
    };
    let financial_first = || text("financial_status").or_else(|| text("fulfillment_status"));
    let fulfillment_first = || text("fulfillment_status").or_else(|| text("financial_status"));
    match event.event_type.as_str() {
        "orders/create" => order("order.created", financial_first()),
        "orders/updated" | "orders/paid" => order("order.updated", financial_first()),
        "orders/fulfilled" | "orders/partially_fulfilled" => {
            order("order.updated", fulfillment_first())
        }
        "orders/cancelled" => order(
            "order.cancelled",
            financial_first().or_else(|| Some("cancelled".into())),
        ),
        "inventory_levels/update" => match p.get("available").and_then(number) {
            Some(available) if available <= 0.0 => Normalized {
                topic: Some("inventory.low"),
                resource: p
                    .get("inventory_item_id")
                    .and_then(util::as_id)
                    .map(|id| Resource {
                        kind: "item".into(),
                        id,
                    }),
                status: None,
                first_sighting_topic: None,
            },
            _ => Normalized::default(),
        },
        "app/uninstalled" => Normalized {
            topic: Some("account.deauthorized"),
            resource: ["myshopify_domain", "domain", "id"]
                .iter()
                .find_map(|n| p.get(*n).and_then(util::as_id))
                .or_else(|| event.partner_id.clone())
                .map(|id| Resource {
                    kind: "account".into(),
                    id,
                }),
            status: None,
            first_sighting_topic: None,
        },
        _ => Normalized::default(),
    }
}
