//! TikTok Shop webhooks.
//!
//! TikTok POSTs a JSON body `{"type":<int>,"tts_notification_id","shop_id","timestamp","data":{…}}`
//! and signs it in one of two forms, chosen by the source's `form` option:
//!
//! - `"authorization"` (the default; TikTok's partner documentation and SDKs): the
//!   `Authorization` header (no `Bearer`) is the lowercase hex HMAC-SHA256, keyed by the app
//!   secret, of the app key immediately followed by the raw body. Hex in either case and base64
//!   are accepted.
//! - `"seed"`: the `x-tts-signature` header is the hex HMAC-SHA256 of the raw body, keyed by the
//!   shop secret.
//!
//! # Source options
//!
//! | option | meaning |
//! |---|---|
//! | `form` | `"authorization"` (default) or `"seed"`; anything else is a misconfiguration |
//! | `appKey` | the app key (required by the `authorization` form, which signs it) |
//!
//! The source's secrets are the app secret (`authorization`) or the shop secret (`seed`); every
//! secret is tried, so a new one can be added before the old one is removed.
//!
//! Neither form signs a time, so after the signature checks out the replay window is applied to
//! the body's `timestamp` (Unix seconds; a numeric string is accepted too): outside it the request
//! is refused as [`Refusal::StaleTimestamp`]; without one it is [`Refusal::MalformedBody`].
//!
//! # The native event
//!
//! - `event_type`: the `type` number as a string (`"1"` for an order status change).
//! - `dedup_key` and `native_event_id`: `tts_notification_id`; when absent, the dedup key is
//!   [`util::hash_key`] of type, `shop_id`, `timestamp` and the compact `data` JSON (keys sorted), and there is
//!   no native id.
//! - `partner_id`: `shop_id`.
//! - `occurred_at`: `data.update_time`, else `timestamp`.
//!
//! # Signing (simulator)
//!
//! [`sign`] builds the body for `req.event_type` (a type number, default `1`) with `shop_id` =
//! `req.partner_id`, `tts_notification_id` = `req.event_id` (left out when empty), `timestamp` =
//! `req.now` and `data.order_id` = `req.resource_id`, and signs it in the form of
//! `req.options["form"]` (default `authorization`, which needs `req.options["appKey"]`).
//! `req.options["orderStatus"]` sets type 1's `order_status` (default `AWAITING_SHIPMENT`), and
//! `req.options["status"]` the status of types 2, 5, 11 and 12.
//!
//! # Topics
//!
//! | type | topic | resource | status |
//! |---|---|---|---|
//! | 1 order status | `order.updated`, first sighting `order.created`; `order.cancelled` when the status is `CANCEL` (then with no first-sighting topic, so the cancellation is not hidden) | order `data.order_id` | `data.order_status` |
//! | 2 reverse status | `order.updated` | order | `data.reverse_order_status` |
//! | 3 recipient address | `order.updated` | order | — |
//! | 4 package update | `order.updated` | order (else package `data.package_id`) | `data.package_status` |
//! | 5 product status | `listing.approved` / `listing.rejected` when `data.status` or `data.product_status` clearly says so, else none | product `data.product_id` | that status |
//! | 6 deauthorization | `account.deauthorized` | account `shop_id` | — |
//! | 11 cancellation | `order.cancelled` | order | `data.cancel_status` |
//! | 12 return | `return.updated` | return `data.return_id` (else order) | `data.return_status` |

pub mod orders;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::util;
use crate::{
    Inbound, KeyStore, Kind, NativeEvent, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSettings,
};

/// The signature header of the default form.
pub const AUTHORIZATION_HEADER: &str = "Authorization";
/// The signature header of the seed's form.
pub const SEED_HEADER: &str = "x-tts-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Authorization,
    Seed,
}

fn form_of(name: Option<&str>) -> Result<Form, Refusal> {
    match name {
        None | Some("authorization") => Ok(Form::Authorization),
        Some("seed") => Ok(Form::Seed),
        Some(other) => Err(Refusal::Misconfigured(format!(
            "tiktok option form must be \"authorization\" or \"seed\", not {other:?}"
        ))),
    }
}

fn app_key(options: &Value) -> Result<&str, Refusal> {
    options
        .get("appKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Refusal::Misconfigured("the authorization form needs the option appKey".into())
        })
}

/// Refuses the options [`verify`] would refuse as misconfigured: a `form` other than the two, or
/// the `authorization` form without an `appKey`. Read as `verify` reads them (a `form` that is
/// not a string is the default), so that a source is refused when it is set up rather than on
/// every request.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    match form_of(options.get("form").and_then(Value::as_str))? {
        Form::Authorization => app_key(options).map(|_| ()),
        Form::Seed => Ok(()),
    }
}

/// The MAC a form puts on a body.
fn mac(form: Form, app_key: &str, secret: &str, body: &[u8]) -> [u8; 32] {
    match form {
        Form::Authorization => util::hmac_sha256(secret.as_bytes(), &[app_key.as_bytes(), body]),
        Form::Seed => util::hmac_sha256(secret.as_bytes(), &[body]),
    }
}

/// Unix seconds from a number or a numeric string.
fn unix_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    let form = form_of(source.option_str("form"))?;
    let secrets = util::secrets(source)?;
    let app_key = match form {
        Form::Authorization => app_key(&source.options)?,
        Form::Seed => "",
    };
    let header = match form {
        Form::Authorization => AUTHORIZATION_HEADER,
        Form::Seed => SEED_HEADER,
    };
    let presented = req
        .header(header)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::MissingSignature)?;
    // Every secret is tried (no early exit), each compared in constant time.
    let matched = secrets.iter().fold(false, |acc, secret| {
        acc | util::mac_matches(&mac(form, app_key, secret, req.body), presented)
    });
    if !matched {
        return Err(Refusal::SignatureMismatch);
    }

    let body = util::parse_object(req.body)?;
    let timestamp = body
        .get("timestamp")
        .and_then(unix_seconds)
        .ok_or_else(|| Refusal::MalformedBody("timestamp (Unix seconds) is missing".into()))?;
    util::check_window(timestamp, req.now, source.replay_window)?;
    let event_type = body
        .get("type")
        .and_then(util::as_id)
        .ok_or_else(|| Refusal::MalformedBody("type is missing".into()))?;

    let shop_id = body.get("shop_id").and_then(util::as_id);
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let native_event_id = body.get("tts_notification_id").and_then(util::as_id);
    let dedup_key = match &native_event_id {
        Some(id) => id.clone(),
        None => util::hash_key(&[
            &event_type,
            shop_id.as_deref().unwrap_or(""),
            &timestamp.to_string(),
            &crate::sellercenter::canonical_json(&data),
        ]),
    };
    let occurred_at = data
        .get("update_time")
        .and_then(util::parse_time)
        .or_else(|| Timestamp::from_second(timestamp).ok());

    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Tiktok,
        event_type,
        dedup_key,
        native_event_id,
        partner_id: shop_id,
        occurred_at,
        payload: body,
    }))
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let form = form_of(req.options.get("form").and_then(Value::as_str))?;
    let app_key = match form {
        Form::Authorization => app_key(&req.options)?,
        Form::Seed => "",
    };
    let event_type = if req.event_type.is_empty() {
        "1"
    } else {
        req.event_type.as_str()
    };
    let kind: i64 = event_type.trim().parse().map_err(|_| {
        Refusal::Unsupported(format!(
            "a TikTok event type is a number, not {event_type:?}"
        ))
    })?;
    let now = req.now.as_second();
    let option = |name: &str, default: &str| {
        req.options
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let order_id = req.resource_id.as_str();
    let data = match kind {
        1 => json!({
            "order_id": order_id,
            "order_status": option("orderStatus", "AWAITING_SHIPMENT"),
            "update_time": now,
        }),
        2 => json!({
            "order_id": order_id,
            "reverse_order_id": format!("R{order_id}"),
            "reverse_order_status": option("status", "1"),
            "update_time": now,
        }),
        4 => json!({
            "order_id": order_id,
            "package_id": format!("P{order_id}"),
            "update_time": now,
        }),
        5 => json!({
            "product_id": order_id,
            "status": option("status", "PRODUCT_AUDIT_SUCCESS"),
            "update_time": now,
        }),
        6 => json!({ "update_time": now }),
        11 => json!({
            "order_id": order_id,
            "cancel_status": option("status", "CANCELLATION_REQUEST_COMPLETE"),
            "update_time": now,
        }),
        12 => json!({
            "order_id": order_id,
            "return_id": format!("RT{order_id}"),
            "return_status": option("status", "RETURN_OR_REFUND_REQUEST_PENDING"),
            "update_time": now,
        }),
        _ => json!({ "order_id": order_id, "update_time": now }),
    };
    let mut body = serde_json::Map::new();
    body.insert("type".into(), json!(kind));
    if !req.event_id.is_empty() {
        body.insert("tts_notification_id".into(), json!(req.event_id));
    }
    body.insert("shop_id".into(), json!(req.partner_id));
    body.insert("timestamp".into(), json!(now));
    body.insert("data".into(), data);
    let body = Value::Object(body).to_string().into_bytes();

    let signature = hex::encode(mac(form, app_key, &req.secret, &body));
    let header = match form {
        Form::Authorization => AUTHORIZATION_HEADER,
        Form::Seed => SEED_HEADER,
    };
    Ok(SignedRequest {
        method: "POST",
        url_suffix: String::new(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (header.into(), signature),
        ],
        body,
        key_pem: None,
        certificate_pem: None,
    })
}

fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `Some(true)` when a product status clearly says approved, `Some(false)` when it clearly says
/// rejected, `None` otherwise (frozen, deleted, deactivated, draft, pending, ...).
fn listing_verdict(status: &str) -> Option<bool> {
    let s: String = status
        .trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    const APPROVED: &[&str] = &[
        "APPROVED",
        "APPROVE",
        "AUDIT_SUCCESS",
        "AUDIT_PASS",
        "AUDIT_PASSED",
        "PRODUCT_AUDIT_SUCCESS",
        "ACTIVATE",
        "ACTIVATED",
        "LIVE",
        "PUBLISHED",
    ];
    const REJECTED: &[&str] = &[
        "REJECTED",
        "REJECT",
        "FAILED",
        "AUDIT_FAILED",
        "AUDIT_FAILURE",
        "AUDIT_REJECTED",
        "PRODUCT_AUDIT_FAILURE",
        "PRODUCT_AUDIT_FAILED",
    ];
    if APPROVED.contains(&s.as_str()) {
        Some(true)
    } else if REJECTED.contains(&s.as_str()) {
        Some(false)
    } else {
        None
    }
}

fn is_cancel(status: &str) -> bool {
    matches!(
        status.trim().to_ascii_uppercase().as_str(),
        "CANCEL" | "CANCELLED" | "CANCELED"
    )
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let payload = &event.payload;
    let null = Value::Null;
    let data = payload.get("data").unwrap_or(&null);
    let order = Resource::of("order", data.get("order_id").and_then(util::as_id));
    let status = |name: &str| text(data, name).map(str::to_string);
    match event.event_type.as_str() {
        "1" => {
            let status = status("order_status");
            if status.as_deref().is_some_and(is_cancel) {
                Normalized {
                    topic: Some("order.cancelled"),
                    resource: order,
                    status,
                    first_sighting_topic: None,
                }
            } else {
                Normalized {
                    topic: Some("order.updated"),
                    resource: order,
                    status,
                    first_sighting_topic: Some("order.created"),
                }
            }
        }
        "2" => Normalized {
            topic: Some("order.updated"),
            resource: order,
            status: data
                .get("reverse_order_status")
                .and_then(util::as_id)
                .or_else(|| status("reverse_event_type")),
            first_sighting_topic: None,
        },
        "3" => Normalized {
            topic: Some("order.updated"),
            resource: order,
            ..Normalized::default()
        },
        "4" => Normalized {
            topic: Some("order.updated"),
            resource: order
                .or_else(|| Resource::of("package", data.get("package_id").and_then(util::as_id))),
            status: status("package_status"),
            first_sighting_topic: None,
        },
        "5" => {
            let status = status("status").or_else(|| status("product_status"));
            let topic = match status.as_deref().and_then(listing_verdict) {
                Some(true) => Some("listing.approved"),
                Some(false) => Some("listing.rejected"),
                None => None,
            };
            Normalized {
                topic,
                resource: Resource::of("product", data.get("product_id").and_then(util::as_id)),
                status,
                first_sighting_topic: None,
            }
        }
        "6" => Normalized {
            topic: Some("account.deauthorized"),
            resource: Resource::of("account", payload.get("shop_id").and_then(util::as_id)),
            ..Normalized::default()
        },
        "11" => Normalized {
            topic: Some("order.cancelled"),
            resource: order,
            status: status("cancel_status"),
            first_sighting_topic: None,
        },
        "12" => Normalized {
            topic: Some("return.updated"),
            resource: Resource::of("return", data.get("return_id").and_then(util::as_id)).or(order),
            status: status("return_status"),
            first_sighting_topic: None,
        },
        _ => Normalized {
            resource: order,
            ..Normalized::default()
        },
    }
}
