//! SellerCenter (Rocket Internet's platform: Falabella, Jumia, Linio, Zalora) callbacks.
//!
//! SellerCenter POSTs `{"event":"onOrderCreated","payload":{…}}` and documents no signature,
//! timestamp or event id. A SellerCenter source is therefore protected by a secret token in its
//! URL, `/ingest/{sourceId}/{token}`, registered as the webhook's `CallbackUrl`.
//!
//! # Contract with the server
//!
//! The server takes the token from the URL path and passes it to [`verify`] as the header
//! [`TOKEN_HEADER`] (`x-switchyard-url-token`). The server must set that header only from the
//! path, replacing any header of that name the client sent, or anyone could pick the token.
//! [`verify`] compares it in constant time with every secret of the source: missing or empty is
//! [`Refusal::MissingSignature`], different is [`Refusal::SignatureMismatch`]. A callback is
//! answered with HTTP 200 on success (SellerCenter treats anything else as a failure); that is the
//! server's to send. There is no timestamp, so no replay window: duplicates are caught by the
//! dedup key.
//!
//! # Source options
//!
//! None. The secrets are the URL tokens (several while one is being rotated).
//!
//! # The native event
//!
//! - `event_type`: `event` (a non-empty string, else [`Refusal::MalformedBody`]). Unknown event
//!   names are still events; [`normalize`] gives them no topic.
//! - `dedup_key`: [`util::hash_key`] of the event name and the compact JSON of `payload` with keys
//!   sorted (`null` when absent), so a retry hashes alike whatever its key order.
//! - `native_event_id`, `partner_id` and `occurred_at`: `None`.
//!
//! # Signing (simulator)
//!
//! [`sign`] builds `{"event": req.event_type (default onOrderCreated), "payload": …}` with a
//! payload shaped for the event (`OrderId` = `req.resource_id`, a number when it is one; feeds
//! `Feed`; products `SellerSkus`; `NewStatus` from `req.options["status"]`), sets
//! [`TOKEN_HEADER`] to `req.secret`, and, unless `req.endpoint_url` already ends with the token,
//! puts `/<token>` (percent-encoded) in `url_suffix` so the request reaches
//! `/ingest/{sourceId}/{token}`.
//!
//! # Topics
//!
//! | event | topic | resource | status |
//! |---|---|---|---|
//! | `onOrderCreated` | `order.created` | order `OrderId` | — |
//! | `onOrderItemsStatusChanged` | `order.updated`; `order.cancelled` when `NewStatus` is canceled/cancelled | order `OrderId`, else item `OrderItemIds[0]` (or `OrderItemsId`) | `NewStatus` |
//! | `onReturnStatusChanged` | `return.updated` | as above | `NewStatus` |
//! | `onFeedCreated` / `onFeedCompleted` | `feed.created` / `feed.completed` | feed `Feed` | — |
//! | `onMetricsUpdated` | `metrics.updated` | — | — |
//! | `onStatisticsUpdated` | `statistics.updated` | — | — |
//! | `onProductCreated`, `onProductUpdated` | none | product `SellerSkus[0]` | — |
//! | `onProductQcStatusChanged` | `listing.approved` / `listing.rejected` when `NewStatus`, `QcStatus` or `Status` says approved/rejected, else none | product `SellerSkus[0]` | that status |

pub mod orders;

use serde_json::{Value, json};

use crate::util;
use crate::{
    Inbound, KeyStore, Kind, NativeEvent, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSettings,
};

/// The header through which the server hands over the token from the URL path.
pub const TOKEN_HEADER: &str = "x-switchyard-url-token";

/// A source of this kind has no options, so none can be wrong (unknown ones are ignored, as
/// [`verify`] ignores them).
pub fn check_options(_options: &Value) -> Result<(), Refusal> {
    Ok(())
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    let secrets = util::secrets(source)?;
    let token = req
        .header(TOKEN_HEADER)
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::MissingSignature)?;
    let matched = secrets.iter().fold(false, |acc, s| {
        acc | util::ct_eq(s.as_bytes(), token.as_bytes())
    });
    if !matched {
        return Err(Refusal::SignatureMismatch);
    }

    let body = util::parse_object(req.body)?;
    let event_type = body
        .get("event")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::MalformedBody("event is missing".into()))?
        .to_string();
    let payload = body.get("payload").cloned().unwrap_or(Value::Null);
    let dedup_key = util::hash_key(&[&event_type, &canonical_json(&payload)]);

    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Sellercenter,
        event_type,
        dedup_key,
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: body,
    }))
}

/// Compact JSON with object keys sorted, so that a dedup key does not depend on the sender's key
/// order or on how `serde_json` happens to be built (`preserve_order`). Recursion is bounded by
/// `serde_json`'s nesting limit (128) on parsed input. (Used by the TikTok and Flipkart modules
/// too; a candidate for `util`.)
pub(crate) fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// An id as a JSON number when it is one (SellerCenter sends `"OrderId":190`), else a string.
fn id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(id))
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    if req.secret.is_empty() {
        return Err(Refusal::Misconfigured(
            "the URL token (secret) is empty".into(),
        ));
    }
    let event = if req.event_type.is_empty() {
        "onOrderCreated"
    } else {
        req.event_type.as_str()
    };
    let id = req.resource_id.as_str();
    let status = req
        .options
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let payload = match event {
        "onOrderCreated" => json!({ "OrderId": id_value(id), "OrderNr": id }),
        "onOrderItemsStatusChanged" | "onReturnStatusChanged" => json!({
            "OrderId": id_value(id),
            "OrderItemIds": [id_value(&format!("{id}1"))],
            "NewStatus": status.unwrap_or(if event == "onReturnStatusChanged" {
                "return_waiting_for_approval"
            } else {
                "shipped"
            }),
        }),
        "onFeedCreated" | "onFeedCompleted" => json!({ "Feed": id }),
        "onProductQcStatusChanged" => json!({
            "SellerSkus": [id],
            "NewStatus": status.unwrap_or("approved"),
        }),
        "onProductCreated" | "onProductUpdated" => json!({ "SellerSkus": [id] }),
        _ => json!({}),
    };
    let body = json!({ "event": event, "payload": payload })
        .to_string()
        .into_bytes();
    let suffix = format!("/{}", util::percent_encode(&req.secret));
    let url_suffix = if req.endpoint_url.trim_end_matches('/').ends_with(&suffix) {
        String::new()
    } else {
        suffix
    };
    Ok(SignedRequest {
        method: "POST",
        url_suffix,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (TOKEN_HEADER.into(), req.secret.clone()),
        ],
        body,
        key_pem: None,
        certificate_pem: None,
    })
}

/// The first id of a list, or the value itself when it is a single id.
fn first_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Array(items) => items.first().and_then(util::as_id),
        other => util::as_id(other),
    }
}

/// `Some(true)` for a QC status that clearly says approved, `Some(false)` for rejected.
fn qc_verdict(status: &str) -> Option<bool> {
    match status.trim().to_ascii_lowercase().as_str() {
        "approved" | "approve" | "accepted" | "passed" | "qc_approved" | "live" => Some(true),
        "rejected" | "reject" | "failed" | "qc_rejected" | "declined" => Some(false),
        _ => None,
    }
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let null = Value::Null;
    let payload = event.payload.get("payload").unwrap_or(&null);
    let text = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let order_or_item = || {
        Resource::of("order", payload.get("OrderId").and_then(util::as_id)).or_else(|| {
            Resource::of(
                "item",
                first_id(
                    payload
                        .get("OrderItemIds")
                        .or_else(|| payload.get("OrderItemsId")),
                ),
            )
        })
    };
    let product = || Resource::of("product", first_id(payload.get("SellerSkus")));
    let feed = || Resource::of("feed", payload.get("Feed").and_then(util::as_id));
    let simple = |topic: &'static str, resource: Option<Resource>| Normalized {
        topic: Some(topic),
        resource,
        ..Normalized::default()
    };

    match event.event_type.as_str() {
        "onOrderCreated" => simple("order.created", order_or_item()),
        "onOrderItemsStatusChanged" => {
            let status = text("NewStatus");
            let cancelled = status.as_deref().is_some_and(|s| {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "canceled" | "cancelled"
                )
            });
            Normalized {
                topic: Some(if cancelled {
                    "order.cancelled"
                } else {
                    "order.updated"
                }),
                resource: order_or_item(),
                status,
                first_sighting_topic: None,
            }
        }
        "onReturnStatusChanged" => Normalized {
            topic: Some("return.updated"),
            resource: order_or_item(),
            status: text("NewStatus"),
            first_sighting_topic: None,
        },
        "onFeedCreated" => simple("feed.created", feed()),
        "onFeedCompleted" => simple("feed.completed", feed()),
        "onMetricsUpdated" => simple("metrics.updated", None),
        "onStatisticsUpdated" => simple("statistics.updated", None),
        "onProductQcStatusChanged" => {
            let status = ["NewStatus", "QcStatus", "Status", "status"]
                .iter()
                .find_map(|n| text(n));
            let topic = match status.as_deref().and_then(qc_verdict) {
                Some(true) => Some("listing.approved"),
                Some(false) => Some("listing.rejected"),
                None => None,
            };
            Normalized {
                topic,
                resource: product(),
                status,
                first_sighting_topic: None,
            }
        }
        "onProductCreated" | "onProductUpdated" => Normalized {
            resource: product(),
            ..Normalized::default()
        },
        _ => Normalized::default(),
    }
}
