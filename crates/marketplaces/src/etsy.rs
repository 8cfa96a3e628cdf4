//! Etsy Open API v3 webhooks (`docs/marketplaces.md`, Etsy).
//!
//! Two forms, chosen per source:
//!
//! - `standard` (default): Standard Webhooks — `webhook-id`, `webhook-timestamp`,
//!   `webhook-signature` with the source's `whsec_…` secrets, the timestamp within the source's
//!   replay window (see [`crate::standard`]).
//! - `bearer` (the seed's form): `Authorization: Bearer <token>`, compared in constant time with
//!   each of the source's secrets.
//!
//! A body `{"challenge": "…"}` (with no `event_type`) is Etsy's verification challenge: it is
//! answered `200` with `{"challenge": "…"}` and nothing is stored. In the standard form only once
//! the signature verifies; in the bearer form a challenge may come before any token is set up, so
//! it is answered without one — but a token that is present must be right.
//!
//! **Event.** Body `{"event_type": "order.paid", "resource_url": "…/shops/{shop}/receipts/{id}",
//! "shop_id": …}`. Event type: `event_type`; partner: `shop_id`; dedup key and native id:
//! `webhook-id` (standard form) or, in the bearer form, a hash of the body (no native id). Time:
//! body `created_timestamp` or `timestamp` when present, else (standard form) `webhook-timestamp`.
//! The resource id is read from `resource_url` (`receipts/{id}`, `listings/{id}`) or from
//! `receipt_id`/`listing_id`.
//!
//! # Options (`source.options`)
//!
//! | option | values | default |
//! |---|---|---|
//! | `form` | `"standard"` or `"bearer"` | `"standard"` |
//!
//! # Signing (`sign`)
//!
//! Option `form` as above. Body `{"event_type": event_type (default "order.paid"), "resource_url":
//! "https://openapi.etsy.com/v3/application/shops/{partner_id}/receipts/{resource_id}"
//! (`listings/` for `listing.*` types), "shop_id": partner_id (a number when numeric)}`. Standard
//! form: `secret` is the `whsec_` secret and `webhook-id` is `event_id` (or a hash of the body);
//! bearer form: `secret` is the token. `event_type` `challenge` sends `{"challenge": event_id}`.

pub mod orders;

use serde_json::{Value, json};

use crate::standard::{sign_headers, verify_headers};
use crate::util;
use crate::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Standard,
    Bearer,
}

fn form_of(options: &Value) -> Result<Form, Refusal> {
    match options.get("form") {
        None | Some(Value::Null) => Ok(Form::Standard),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("standard") => Ok(Form::Standard),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("bearer") => Ok(Form::Bearer),
        Some(other) => Err(Refusal::Misconfigured(format!(
            "form must be \"standard\" or \"bearer\", not {other}"
        ))),
    }
}

/// Refuses the options [`verify`] would refuse as misconfigured: only a `form` other than
/// `standard` and `bearer`, so that a source is refused when it is set up rather than on every
/// request.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    form_of(options).map(|_| ())
}

/// The standard form verifies Standard Webhooks signatures: it needs a `whsec_` secret.
pub fn check_secrets(options: &Value, secrets: &[&str]) -> Result<(), Refusal> {
    match form_of(options)? {
        Form::Standard => crate::standard::check_secrets(secrets),
        _ => Ok(()),
    }
}

/// The challenge string, when the body is a challenge.
fn challenge_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("event_type").is_some() {
        return None;
    }
    v.get("challenge")?.as_str().map(String::from)
}

fn answer(challenge: String) -> Outcome {
    Outcome::Handshake(Handshake {
        status: 200,
        content_type: "application/json",
        body: serde_json::to_vec(&json!({ "challenge": challenge })).unwrap_or_default(),
        confirm_url: None,
    })
}

/// Checks `Authorization: Bearer <token>` against every secret, in constant time.
fn check_bearer(authorization: &str, source: &SourceSettings) -> Result<(), Refusal> {
    let secrets = util::secrets(source)?;
    let token = authorization
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Refusal::MissingSignature)?;
    let mut ok = false;
    for secret in secrets {
        ok |= util::ct_eq(token.as_bytes(), secret.as_bytes());
    }
    if ok {
        Ok(())
    } else {
        Err(Refusal::SignatureMismatch)
    }
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    util::require_post(req, "Etsy webhooks")?;
    let (dedup_key, native_event_id, signed_at) = match form_of(&source.options)? {
        Form::Standard => {
            let signed = verify_headers(req, source)?;
            (
                signed.id.to_string(),
                Some(signed.id.to_string()),
                Timestamp::from_second(signed.timestamp).ok(),
            )
        }
        Form::Bearer => {
            match req.header("authorization").filter(|v| !v.trim().is_empty()) {
                Some(authorization) => check_bearer(authorization, source)?,
                None => {
                    return match challenge_of(req.body) {
                        Some(challenge) => Ok(answer(challenge)),
                        None => Err(Refusal::MissingSignature),
                    };
                }
            }
            let body = String::from_utf8_lossy(req.body);
            (util::hash_key(&[&body]), None, None)
        }
    };
    if let Some(challenge) = challenge_of(req.body) {
        return Ok(answer(challenge));
    }
    let payload = util::parse_object(req.body)?;
    let event_type = payload
        .get("event_type")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::MalformedBody("event_type is missing".into()))?
        .to_string();
    let partner_id = payload.get("shop_id").and_then(util::as_id);
    let occurred_at = ["created_timestamp", "timestamp"]
        .iter()
        .find_map(|n| payload.get(*n).and_then(util::parse_time))
        .or(signed_at);
    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Etsy,
        event_type,
        dedup_key,
        native_event_id,
        partner_id,
        occurred_at,
        payload,
    }))
}

/// The path segment after `…/{collection}/` in a URL.
fn segment_after(url: &str, collection: &str) -> Option<String> {
    let marker = format!("/{collection}/");
    let at = url.rfind(&marker)?;
    let rest = url.get(at + marker.len()..)?;
    let id = rest.split(['/', '?', '#']).next()?;
    (!id.is_empty()).then(|| id.to_string())
}

fn id_of(payload: &Value, collection: &str, field: &str) -> Option<String> {
    payload
        .get("resource_url")
        .and_then(Value::as_str)
        .and_then(|u| segment_after(u, collection))
        .or_else(|| payload.get(field).and_then(util::as_id))
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let form = form_of(&req.options)?;
    let event_type = if req.event_type.is_empty() {
        "order.paid"
    } else {
        req.event_type.as_str()
    };
    let body = if event_type == "challenge" {
        json!({"challenge": req.event_id})
    } else {
        let collection = if event_type.starts_with("listing.") {
            "listings"
        } else {
            "receipts"
        };
        let shop_id = req
            .partner_id
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(req.partner_id.as_str()));
        json!({
            "event_type": event_type,
            "resource_url": format!(
                "https://openapi.etsy.com/v3/application/shops/{}/{collection}/{}",
                util::percent_encode(&req.partner_id),
                util::percent_encode(&req.resource_id),
            ),
            "shop_id": shop_id,
        })
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| Refusal::Misconfigured(format!("cannot serialize: {e}")))?;
    let headers = match form {
        Form::Standard => {
            let id = if req.event_id.is_empty() {
                util::hash_key(&[&String::from_utf8_lossy(&body)])
            } else {
                req.event_id.clone()
            };
            sign_headers(&req.secret, &id, req.now.as_second(), &body)?
        }
        Form::Bearer => {
            if req.secret.is_empty() {
                return Err(Refusal::Misconfigured(
                    "the bearer form needs a token".into(),
                ));
            }
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                (
                    "authorization".to_string(),
                    format!("Bearer {}", req.secret),
                ),
            ]
        }
    };
    Ok(SignedRequest::post(headers, body))
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let p = &event.payload;
    let order = |topic: &'static str, status: Option<String>| Normalized {
        topic: Some(topic),
        resource: id_of(p, "receipts", "receipt_id").map(|id| Resource {
            kind: "order".into(),
            id,
        }),
        status,
        first_sighting_topic: None,
    };
    let listing = |topic: &'static str| Normalized {
        topic: Some(topic),
        resource: id_of(p, "listings", "listing_id").map(|id| Resource {
            kind: "item".into(),
            id,
        }),
        status: p.get("state").and_then(Value::as_str).map(String::from),
        first_sighting_topic: None,
    };
    let body_status = p.get("status").and_then(Value::as_str).map(String::from);
    match event.event_type.as_str() {
        "order.paid" => order("order.created", Some("paid".into())),
        "order.created" => order("order.created", body_status),
        "order.updated" => order("order.updated", body_status),
        "order.shipped" => order("order.updated", Some("shipped".into())),
        "order.canceled" | "order.cancelled" => order("order.cancelled", Some("canceled".into())),
        "listing.activated" | "listing.active" | "listing.published" | "listing.renewed"
        | "listing.approved" => listing("listing.approved"),
        "listing.deactivated"
        | "listing.inactive"
        | "listing.expired"
        | "listing.removed"
        | "listing.deleted"
        | "listing.rejected"
        | "listing.unpublished" => listing("listing.rejected"),
        "listing.sold_out" | "listing.out_of_stock" => listing("inventory.low"),
        _ => Normalized::default(),
    }
}
