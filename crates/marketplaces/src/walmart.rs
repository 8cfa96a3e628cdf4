//! Walmart Marketplace webhooks, and Switchyard's own deliveries (one hub can feed another).
//!
//! The body is the envelope `{"source":{"eventType","eventVersion","eventTime","eventId"},
//! "payload":{"partnerId",…}}` that Walmart sends and that Switchyard's deliveries send.
//!
//! # Source options
//!
//! | option | meaning |
//! |---|---|
//! | `form` | how requests authenticate: `"hmac"` (default), `"hmac-body"`, `"basic"` or `"bearer"` |
//! | `authHeaderName` | the header carrying the signature or credentials, when the subscription named another one (default `WM_SEC.AUTH_SIGNATURE` for `hmac`, `Authorization` for `basic` and `bearer`) |
//!
//! - `hmac` (the seed's form, and what Switchyard's `HMAC` deliveries send):
//!   `WM_SEC.AUTH_SIGNATURE` is the HMAC-SHA256, keyed by the client secret, of the
//!   `WM_SEC.TIMESTAMP` header string immediately followed by the raw body, in hex (either case;
//!   base64 is accepted too). `WM_SEC.TIMESTAMP` is Unix seconds (a value above 10^12 is taken as
//!   milliseconds) and must be within the source's replay window. `WM_SEC.KEY_VERSION` selects
//!   the secret whose `id` equals it; when the header is absent, or names no secret of the
//!   source, every secret is tried (so a sender that does not send versions still verifies, and
//!   rotation needs no coordination). A request without the signature or the timestamp is
//!   [`Refusal::MissingSignature`].
//! - `hmac-body` (Walmart's documented `HMAC` delivery auth): `authHeaderName` (default
//!   `Authorization`) carries the HMAC-SHA256 of the raw body alone, keyed by the client secret,
//!   in hex or base64 (Walmart does not document which). Nothing signed carries a time, so there
//!   is no replay window; replays are duplicates. It is a form of its own, never a fallback of
//!   `hmac`, so a request cannot escape the replay window by dropping its timestamp.
//! - `basic` (Walmart's `BASIC_AUTH`): `Authorization: Basic base64(user:pass)`, compared with
//!   every secret, each of which holds `user:pass`. There is no timestamp, hence no replay window.
//! - `bearer` (Walmart's `OAUTH`): `Authorization: Bearer <token>`, where the token is one the
//!   source issued at its token URL. The server keeps the issued tokens; it puts the currently
//!   valid ones in `source.secrets` for this form, and each is compared with the presented token.
//!   No replay window either.
//!
//! Header names are matched case-insensitively.
//!
//! # The native event
//!
//! `source.eventType`, `source.eventId` and `source.eventTime` (RFC 3339) must be present and
//! `payload` must be an object, else [`Refusal::MalformedBody`].
//!
//! - `event_type`: `source.eventType` (`ORDER_UPDATES` stays `ORDER_UPDATES`; its
//!   `payload.subEventType` is read by [`normalize`]).
//! - `dedup_key` and `native_event_id`: `source.eventId`.
//! - `partner_id`: `payload.partnerId` (absent: none; the server decides whether that is allowed).
//! - `occurred_at`: `source.eventTime`.
//!
//! # Signing (simulator)
//!
//! [`sign`] builds the envelope for `req.event_type` (default `PO_CREATED`), `eventVersion` `V1`,
//! `eventTime` = `req.now`, `eventId` = `req.event_id` (a hash of the request's fields when
//! empty), and a payload with `partnerId` = `req.partner_id` and the resource: `purchaseOrderId` =
//! `req.resource_id` for order events (for `ORDER_UPDATES`, `subEventType` from
//! `req.options["subEventType"]`, default `PO_CREATED`), `sku` for item events, `reportId` for
//! `REPORT_STATUS`, and `notificationType` (`req.options["notificationType"]`, default `ALARMS`)
//! for `SELLER_PERFORMANCE_NOTIFICATIONS`. `req.options["form"]` picks the auth as above
//! (default `hmac`, with `WM_SEC.KEY_VERSION` from `req.options["keyVersion"]`, default `"1"`);
//! `basic` sends `req.secret` as `user:pass`, `bearer` sends it as the token.
//!
//! # Topics
//!
//! | event type | topic | resource |
//! |---|---|---|
//! | `PO_CREATED`, `ORDER_UPDATES`·`PO_CREATED` | `order.created` | order `payload.purchaseOrderId` (or `orderId`) |
//! | `INTENT_TO_CANCEL`, `ORDER_UPDATES`·`INTENT_TO_CANCEL` | `order.updated` | order |
//! | `PO_LINE_AUTOCANCELLED`, `ORDER_UPDATES`·`PO_LINE_AUTOCANCELLED` / `FRAUD_CANCEL` | `order.cancelled` | order |
//! | `ORDER_UPDATES` with another or no `subEventType` | `order.updated` | order |
//! | `INVENTORY_OOS` | `inventory.low` | item `payload.sku` (or `itemId`) |
//! | `OFFER_PUBLISHED` / `OFFER_UNPUBLISHED` | `listing.approved` / `listing.rejected` | item |
//! | `BUY_BOX_CHANGED` | `pricing.changed` | item |
//! | `SELLER_PERFORMANCE_NOTIFICATIONS` | `performance.alarms` / `performance.report` by `payload.notificationType` (else none) | — |
//! | `REPORT_STATUS` and anything else | none | — |
//!
//! The status is the order event's sub-event (`ORDER_UPDATES`), the offer's `publishStatus`, or
//! the performance notification's `notificationType`, where present.

pub mod orders;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use switchyard_core::signatures::walmart as wm;

use crate::util;
use crate::{
    Inbound, KeyStore, Kind, NativeEvent, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSettings,
};

pub use wm::{KEY_VERSION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Hmac,
    /// Walmart's documented `HMAC` delivery auth: the MAC of the body alone, no timestamp.
    HmacBody,
    Basic,
    Bearer,
}

impl Form {
    fn parse(name: Option<&str>) -> Result<Form, Refusal> {
        match name {
            None | Some("hmac") => Ok(Form::Hmac),
            Some("hmac-body") => Ok(Form::HmacBody),
            Some("basic") => Ok(Form::Basic),
            Some("bearer") => Ok(Form::Bearer),
            Some(other) => Err(Refusal::Misconfigured(format!(
                "walmart option form must be \"hmac\", \"hmac-body\", \"basic\" or \"bearer\", not {other:?}"
            ))),
        }
    }

    fn default_header(self) -> &'static str {
        match self {
            Form::Hmac => SIGNATURE_HEADER,
            Form::HmacBody | Form::Basic | Form::Bearer => "Authorization",
        }
    }
}

fn header_name(options: &Value, form: Form) -> &str {
    options
        .get("authHeaderName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(form.default_header())
}

/// Refuses the options [`verify`] would refuse as misconfigured: only a `form` other than the
/// four (`authHeaderName` falls back to the form's header when unusable). Read as `verify` reads
/// it (a `form` that is not a string is the default), so that a source is refused when it is set
/// up rather than on every request.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    Form::parse(options.get("form").and_then(Value::as_str)).map(|_| ())
}

/// The credentials after an auth scheme (`Basic`, `Bearer`), the scheme matched
/// case-insensitively.
fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim();
    let (name, rest) = value.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// `WM_SEC.TIMESTAMP` as Unix seconds (milliseconds above 10^12).
fn timestamp_seconds(value: &str) -> Option<i64> {
    let n: i64 = value.trim().parse().ok()?;
    Some(if n > 1_000_000_000_000 { n / 1000 } else { n })
}

fn check_auth(req: &Inbound, source: &SourceSettings) -> Result<(), Refusal> {
    let form = Form::parse(source.option_str("form"))?;
    let all = util::secrets(source)?;
    let presented = req
        .header(header_name(&source.options, form))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::MissingSignature)?;
    match form {
        Form::Hmac => {
            let timestamp = req
                .header(TIMESTAMP_HEADER)
                .filter(|s| !s.trim().is_empty())
                .ok_or(Refusal::MissingSignature)?;
            let version = req.header(KEY_VERSION_HEADER).map(str::trim);
            let versioned: Vec<&str> = source
                .secrets
                .iter()
                .filter(|s| !s.value.is_empty() && Some(s.id.as_str()) == version)
                .map(|s| s.value.as_str())
                .collect();
            let candidates = if versioned.is_empty() { all } else { versioned };
            let matched = candidates.iter().fold(false, |acc, secret| {
                let mac = util::hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), req.body]);
                acc | util::mac_matches(&mac, presented)
            });
            if !matched {
                return Err(Refusal::SignatureMismatch);
            }
            let seconds = timestamp_seconds(timestamp).ok_or_else(|| {
                Refusal::MalformedBody(format!("{TIMESTAMP_HEADER} is not a Unix time"))
            })?;
            util::check_window(seconds, req.now, source.replay_window)
        }
        Form::HmacBody => {
            // Nothing signed carries a time, so replays are caught by the dedup key only.
            let matched = all.iter().fold(false, |acc, secret| {
                acc | util::mac_matches(
                    &util::hmac_sha256(secret.as_bytes(), &[req.body]),
                    presented,
                )
            });
            if matched {
                Ok(())
            } else {
                Err(Refusal::SignatureMismatch)
            }
        }
        Form::Basic => {
            let decoded = credentials(presented, "Basic")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .ok_or(Refusal::SignatureMismatch)?;
            let matched = all.iter().fold(false, |acc, secret| {
                acc | util::ct_eq(secret.as_bytes(), &decoded)
            });
            if matched {
                Ok(())
            } else {
                Err(Refusal::SignatureMismatch)
            }
        }
        Form::Bearer => {
            let token = credentials(presented, "Bearer").ok_or(Refusal::SignatureMismatch)?;
            let matched = all.iter().fold(false, |acc, secret| {
                acc | util::ct_eq(secret.as_bytes(), token.as_bytes())
            });
            if matched {
                Ok(())
            } else {
                Err(Refusal::SignatureMismatch)
            }
        }
    }
}

fn required<'a>(object: &'a Value, name: &str, path: &str) -> Result<&'a Value, Refusal> {
    object
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| Refusal::MalformedBody(format!("{path} is missing")))
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    check_auth(req, source)?;

    let body = util::parse_object(req.body)?;
    let envelope = required(&body, "source", "source")?;
    let event_type = required(envelope, "eventType", "source.eventType")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::MalformedBody("source.eventType is not a string".into()))?
        .to_string();
    let event_id = util::as_id(required(envelope, "eventId", "source.eventId")?)
        .ok_or_else(|| Refusal::MalformedBody("source.eventId is not an id".into()))?;
    let occurred_at = util::parse_time(required(envelope, "eventTime", "source.eventTime")?)
        .ok_or_else(|| Refusal::MalformedBody("source.eventTime is not a time".into()))?;
    let payload = required(&body, "payload", "payload")?;
    if !payload.is_object() {
        return Err(Refusal::MalformedBody("payload is not an object".into()));
    }
    let partner_id = payload.get("partnerId").and_then(util::as_id);

    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Walmart,
        event_type,
        dedup_key: event_id.clone(),
        native_event_id: Some(event_id),
        partner_id,
        occurred_at: Some(occurred_at),
        payload: body,
    }))
}

const ITEM_EVENTS: &[&str] = &[
    "INVENTORY_OOS",
    "OFFER_PUBLISHED",
    "OFFER_UNPUBLISHED",
    "BUY_BOX_CHANGED",
];

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let form = Form::parse(req.options.get("form").and_then(Value::as_str))?;
    let option = |name: &str, default: &str| {
        req.options
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    let event_type = if req.event_type.is_empty() {
        "PO_CREATED"
    } else {
        req.event_type.as_str()
    };
    let now = req.now.as_second();
    let event_id = if req.event_id.is_empty() {
        let hash = util::hash_key(&[
            event_type,
            &req.partner_id,
            &req.resource_id,
            &now.to_string(),
        ]);
        hash.chars().take(32).collect()
    } else {
        req.event_id.clone()
    };

    let mut payload = Map::new();
    payload.insert("partnerId".into(), json!(req.partner_id));
    match event_type {
        "ORDER_UPDATES" => {
            payload.insert(
                "subEventType".into(),
                json!(option("subEventType", "PO_CREATED")),
            );
            payload.insert("purchaseOrderId".into(), json!(req.resource_id));
        }
        "SELLER_PERFORMANCE_NOTIFICATIONS" => {
            payload.insert(
                "notificationType".into(),
                json!(option("notificationType", "ALARMS")),
            );
        }
        "REPORT_STATUS" => {
            payload.insert("reportId".into(), json!(req.resource_id));
        }
        t if ITEM_EVENTS.contains(&t) => {
            payload.insert("sku".into(), json!(req.resource_id));
        }
        _ => {
            payload.insert("purchaseOrderId".into(), json!(req.resource_id));
        }
    }
    let body = json!({
        "source": {
            "eventType": event_type,
            "eventVersion": "V1",
            "eventTime": req.now.to_string(),
            "eventId": event_id,
        },
        "payload": payload,
    })
    .to_string()
    .into_bytes();

    let header = header_name(&req.options, form).to_string();
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    match form {
        Form::Hmac => {
            let timestamp = now.to_string();
            headers.push((header, wm::sign(&req.secret, &timestamp, &body)));
            headers.push((TIMESTAMP_HEADER.into(), timestamp));
            headers.push((KEY_VERSION_HEADER.into(), option("keyVersion", "1")));
        }
        Form::HmacBody => headers.push((
            header,
            hex::encode(util::hmac_sha256(req.secret.as_bytes(), &[&body])),
        )),
        Form::Basic => headers.push((header, format!("Basic {}", STANDARD.encode(&req.secret)))),
        Form::Bearer => headers.push((header, format!("Bearer {}", req.secret))),
    }
    Ok(SignedRequest::post(headers, body))
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
    let id = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| payload.get(*n).and_then(util::as_id))
    };
    let order = || Resource::of("order", id(&["purchaseOrderId", "orderId"]));
    let item = || Resource::of("item", id(&["sku", "itemId"]));
    let order_topic = |sub: &str| match sub {
        "PO_CREATED" => "order.created",
        "PO_LINE_AUTOCANCELLED" | "FRAUD_CANCEL" => "order.cancelled",
        _ => "order.updated",
    };

    match event.event_type.as_str() {
        "ORDER_UPDATES" => {
            let sub = text("subEventType");
            Normalized {
                topic: Some(order_topic(sub.as_deref().unwrap_or(""))),
                resource: order(),
                status: sub,
                first_sighting_topic: None,
            }
        }
        t @ ("PO_CREATED" | "INTENT_TO_CANCEL" | "PO_LINE_AUTOCANCELLED" | "FRAUD_CANCEL") => {
            Normalized {
                topic: Some(order_topic(t)),
                resource: order(),
                ..Normalized::default()
            }
        }
        "INVENTORY_OOS" => Normalized {
            topic: Some("inventory.low"),
            resource: item(),
            ..Normalized::default()
        },
        t @ ("OFFER_PUBLISHED" | "OFFER_UNPUBLISHED") => Normalized {
            topic: Some(if t == "OFFER_PUBLISHED" {
                "listing.approved"
            } else {
                "listing.rejected"
            }),
            resource: item(),
            status: text("publishStatus"),
            first_sighting_topic: None,
        },
        "BUY_BOX_CHANGED" => Normalized {
            topic: Some("pricing.changed"),
            resource: item(),
            ..Normalized::default()
        },
        "SELLER_PERFORMANCE_NOTIFICATIONS" => {
            let kind = text("notificationType");
            let upper = kind.as_deref().unwrap_or("").to_ascii_uppercase();
            let topic = if upper.contains("ALARM") {
                Some("performance.alarms")
            } else if upper.contains("REPORT") {
                Some("performance.report")
            } else {
                None
            };
            Normalized {
                topic,
                status: kind,
                ..Normalized::default()
            }
        }
        _ => Normalized::default(),
    }
}
