//! Flipkart seller notifications.
//!
//! Flipkart POSTs `{"eventType":"shipment_created","source":"flipkart","version":"v3",
//! "timestamp","shipmentId","locationId","attributes":{…"orderItems":[{"orderItemId","orderId",
//! "status",…}]}}` (return events carry a `returnId`). Two forms of authentication exist; a source
//! checks the one its `form` option names.
//!
//! # Source options
//!
//! | option | meaning |
//! |---|---|
//! | `form` | `"seed"` (the default) or `"fklogin"` |
//! | `appId` | the application id the `fklogin` form must carry (required by that form) |
//!
//! - `seed` (the default, because it is the form the seeds describe and the only one that
//!   authenticates the body): `Authorization: Bearer <static token>` AND
//!   `X-Flipkart-Signature` = hex (or base64) HMAC-SHA256 of the raw body. Both must hold. The
//!   token is compared with the secrets whose `id` is `"token"`, the HMAC is keyed by the secrets
//!   whose `id` is `"hmac"`; when no secret has that id, every secret is tried (so a source with a
//!   single secret uses it for both). Either header missing is [`Refusal::MissingSignature`].
//! - `fklogin` (Flipkart's prose documentation): `X_Date` (an HTTP date) and
//!   `X_Authorization: FKLOGIN base64(appId:sig)`, where `sig` is the plain SHA-1 digest (not an
//!   HMAC) of the date string, the notification URL (`Inbound::endpoint_url`), the method and the
//!   secret, concatenated; hex or base64. Every secret is tried. `appId` must equal the option, and
//!   `X_Date` must be within the replay window ([`Refusal::StaleTimestamp`]). Because some proxies
//!   drop header names with underscores, `X-Date` and `X-Authorization` are accepted too. This form
//!   signs no body bytes: it authenticates the sender, not the payload.
//!
//! # The native event
//!
//! - `event_type`: `eventType` (required, else [`Refusal::MalformedBody`]).
//! - `dedup_key`: [`util::hash_key`] of `eventType`, `shipmentId` (else `returnId`) and
//!   `timestamp`; when both the id and the timestamp are absent, the compact body (keys sorted) is
//!   hashed in as well. Flipkart has no event id, so `native_event_id` is `None`.
//! - `partner_id`: `None` (`locationId` is a warehouse, not a seller).
//! - `occurred_at`: `timestamp` (RFC 3339, or Unix seconds or milliseconds).
//!
//! # Signing (simulator)
//!
//! [`sign`] builds a body for `req.event_type` (default `shipment_created`) with `timestamp` =
//! `req.now`, `shipmentId` = `req.options["shipmentId"]` (default `SHP-<resource_id>`), one order
//! item of order `req.resource_id` whose status is `req.options["status"]` (default from the event
//! type), and for return events `returnId` = `req.options["returnId"]` (default
//! `RET-<resource_id>`). Flipkart has no event id: the same `now` and resource make the same
//! dedup key. `req.options["form"]` picks the form; `seed` sends `req.secret` as the HMAC key and,
//! unless `req.options["token"]` is set, as the bearer token; `fklogin` needs
//! `req.options["appId"]` and signs `req.endpoint_url` with method `POST`.
//!
//! # Topics
//!
//! | event type | topic |
//! |---|---|
//! | `return_*` (and anything starting with `return`) | `return.updated`, resource return `returnId` (else the order) |
//! | containing `cancel`, or an order item status of cancelled | `order.cancelled` |
//! | `shipment_created` | `order.created` |
//! | other `shipment_*` / `order_*` (`shipment_shipped`, `shipment_delivered`, …) | `order.updated` |
//! | anything else | none |
//!
//! The resource is order `attributes.orderItems[0].orderId`, else shipment `shipmentId`; the
//! status is that order item's `status`.

pub mod orders;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use jiff::fmt::rfc2822;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::util;
use crate::{
    Inbound, KeyStore, Kind, NativeEvent, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSettings,
};

pub const SIGNATURE_HEADER: &str = "X-Flipkart-Signature";
pub const DATE_HEADER: &str = "X_Date";
pub const FKLOGIN_HEADER: &str = "X_Authorization";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Seed,
    Fklogin,
}

fn form_of(name: Option<&str>) -> Result<Form, Refusal> {
    match name {
        None | Some("seed") => Ok(Form::Seed),
        Some("fklogin") => Ok(Form::Fklogin),
        Some(other) => Err(Refusal::Misconfigured(format!(
            "flipkart option form must be \"seed\" or \"fklogin\", not {other:?}"
        ))),
    }
}

fn app_id(options: &Value) -> Result<&str, Refusal> {
    options
        .get("appId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::Misconfigured("the fklogin form needs the option appId".into()))
}

/// Refuses the options [`verify`] would refuse as misconfigured: a `form` other than the two, or
/// the `fklogin` form without an `appId`. Read as `verify` reads them (a `form` that is not a
/// string is the default), so that a source is refused when it is set up rather than on every
/// request.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    match form_of(options.get("form").and_then(Value::as_str))? {
        Form::Seed => Ok(()),
        Form::Fklogin => app_id(options).map(|_| ()),
    }
}

/// The secrets labelled `id`, or every secret when none is.
fn labelled<'a>(source: &'a SourceSettings, id: &str) -> Result<Vec<&'a str>, Refusal> {
    let with_id: Vec<&str> = source
        .secrets
        .iter()
        .filter(|s| s.id == id && !s.value.is_empty())
        .map(|s| s.value.as_str())
        .collect();
    if with_id.is_empty() {
        util::secrets(source)
    } else {
        Ok(with_id)
    }
}

/// A header under its name, or the same name with `-` for `_`.
fn header<'a>(req: &'a Inbound, name: &str) -> Option<&'a str> {
    req.header(name)
        .or_else(|| req.header(&name.replace('_', "-")))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The FKLOGIN digest: SHA-1 of date + URL + method + secret.
fn fklogin_digest(date: &str, url: &str, method: &str, secret: &str) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(date.as_bytes());
    h.update(url.as_bytes());
    h.update(method.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().to_vec()
}

fn verify_seed(req: &Inbound, source: &SourceSettings) -> Result<(), Refusal> {
    let tokens = labelled(source, "token")?;
    let keys = labelled(source, "hmac")?;
    let authorization = header(req, "Authorization");
    let signature = header(req, SIGNATURE_HEADER);
    let (Some(authorization), Some(signature)) = (authorization, signature) else {
        return Err(Refusal::MissingSignature);
    };
    let token = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    let token_ok = tokens.iter().fold(false, |acc, t| {
        acc | util::ct_eq(t.as_bytes(), token.as_bytes())
    });
    let mac_ok = keys.iter().fold(false, |acc, key| {
        acc | util::mac_matches(&util::hmac_sha256(key.as_bytes(), &[req.body]), signature)
    });
    if token_ok & mac_ok {
        Ok(())
    } else {
        Err(Refusal::SignatureMismatch)
    }
}

fn verify_fklogin(req: &Inbound, source: &SourceSettings) -> Result<(), Refusal> {
    let app_id = app_id(&source.options)?;
    let secrets = util::secrets(source)?;
    let date = header(req, DATE_HEADER);
    let authorization = header(req, FKLOGIN_HEADER);
    let (Some(date), Some(authorization)) = (date, authorization) else {
        return Err(Refusal::MissingSignature);
    };
    let decoded = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("FKLOGIN"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(Refusal::SignatureMismatch)?;
    let (presented_app, sig) = decoded.rsplit_once(':').ok_or(Refusal::SignatureMismatch)?;
    let app_ok = util::ct_eq(presented_app.as_bytes(), app_id.as_bytes());
    let sig_ok = secrets.iter().fold(false, |acc, secret| {
        acc | util::mac_matches(
            &fklogin_digest(date, req.endpoint_url, req.method, secret),
            sig,
        )
    });
    if !(app_ok & sig_ok) {
        return Err(Refusal::SignatureMismatch);
    }
    let at = rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .map_err(|_| Refusal::MalformedBody(format!("{DATE_HEADER} is not an HTTP date")))?;
    util::check_window(at.as_second(), req.now, source.replay_window)
}

/// A time as RFC 3339, or Unix seconds, or Unix milliseconds (above 10^12).
fn event_time(value: &Value) -> Option<Timestamp> {
    let millis = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match millis {
        Some(n) if n > 1_000_000_000_000 => Timestamp::from_millisecond(n).ok(),
        _ => util::parse_time(value),
    }
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    match form_of(source.option_str("form"))? {
        Form::Seed => verify_seed(req, source)?,
        Form::Fklogin => verify_fklogin(req, source)?,
    }

    let body = util::parse_object(req.body)?;
    let event_type = body
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::MalformedBody("eventType is missing".into()))?
        .to_string();
    let id = body
        .get("shipmentId")
        .and_then(util::as_id)
        .or_else(|| body.get("returnId").and_then(util::as_id));
    let timestamp = body.get("timestamp").and_then(util::as_id);
    let dedup_key = if id.is_none() && timestamp.is_none() {
        util::hash_key(&[
            &event_type,
            "",
            "",
            &crate::sellercenter::canonical_json(&body),
        ])
    } else {
        util::hash_key(&[
            &event_type,
            id.as_deref().unwrap_or(""),
            timestamp.as_deref().unwrap_or(""),
        ])
    };
    let occurred_at = body.get("timestamp").and_then(event_time);

    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Flipkart,
        event_type,
        dedup_key,
        native_event_id: None,
        partner_id: None,
        occurred_at,
        payload: body,
    }))
}

fn is_return(event_type: &str) -> bool {
    event_type.to_ascii_lowercase().starts_with("return")
}

fn default_status(event_type: &str) -> &'static str {
    let t = event_type.to_ascii_lowercase();
    if t.contains("cancel") {
        "CANCELLED"
    } else if is_return(&t) {
        "RETURN_REQUESTED"
    } else if t.contains("delivered") {
        "DELIVERED"
    } else if t.contains("shipped") || t.contains("dispatch") {
        "SHIPPED"
    } else {
        "APPROVED"
    }
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let form = form_of(req.options.get("form").and_then(Value::as_str))?;
    let option = |name: &str| {
        req.options
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let event_type = if req.event_type.is_empty() {
        "shipment_created"
    } else {
        req.event_type.as_str()
    };
    let order_id = req.resource_id.as_str();
    let mut body = json!({
        "eventType": event_type,
        "source": "flipkart",
        "version": "v3",
        "timestamp": req.now.to_string(),
        "shipmentId": option("shipmentId").unwrap_or_else(|| format!("SHP-{order_id}")),
        "locationId": option("locationId").unwrap_or_else(|| "LOC0001".into()),
        "attributes": {
            "orderItems": [{
                "orderItemId": format!("{order_id}-1"),
                "orderId": order_id,
                "status": option("status").unwrap_or_else(|| default_status(event_type).into()),
                "quantity": 1,
            }],
        },
    });
    if is_return(event_type)
        && let Some(object) = body.as_object_mut()
    {
        object.insert(
            "returnId".into(),
            json!(option("returnId").unwrap_or_else(|| format!("RET-{order_id}"))),
        );
    }
    let body = body.to_string().into_bytes();

    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    match form {
        Form::Seed => {
            let token = option("token").unwrap_or_else(|| req.secret.clone());
            headers.push(("Authorization".into(), format!("Bearer {token}")));
            headers.push((
                SIGNATURE_HEADER.into(),
                hex::encode(util::hmac_sha256(req.secret.as_bytes(), &[&body])),
            ));
        }
        Form::Fklogin => {
            let app_id = app_id(&req.options)?;
            let date = rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&req.now)
                .map_err(|e| Refusal::Unsupported(format!("cannot print the date: {e}")))?;
            let sig = hex::encode(fklogin_digest(
                &date,
                &req.endpoint_url,
                "POST",
                &req.secret,
            ));
            headers.push((DATE_HEADER.into(), date));
            headers.push((
                FKLOGIN_HEADER.into(),
                format!("FKLOGIN {}", STANDARD.encode(format!("{app_id}:{sig}"))),
            ));
        }
    }
    Ok(SignedRequest::post(headers, body))
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let payload = &event.payload;
    let attributes = payload.get("attributes");
    let first_item = attributes
        .and_then(|a| a.get("orderItems"))
        .and_then(Value::as_array)
        .and_then(|items| items.first());
    let order = Resource::of(
        "order",
        first_item
            .and_then(|i| i.get("orderId"))
            .and_then(util::as_id),
    );
    let shipment = || Resource::of("shipment", payload.get("shipmentId").and_then(util::as_id));
    let status = first_item
        .and_then(|i| i.get("status"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let event_type = event.event_type.to_ascii_lowercase();
    let status_cancelled = status
        .as_deref()
        .is_some_and(|s| s.to_ascii_lowercase().contains("cancel"));

    if is_return(&event_type) {
        let return_id = payload
            .get("returnId")
            .or_else(|| attributes.and_then(|a| a.get("returnId")))
            .and_then(util::as_id);
        return Normalized {
            topic: Some("return.updated"),
            resource: Resource::of("return", return_id)
                .or(order)
                .or_else(shipment),
            status,
            first_sighting_topic: None,
        };
    }
    let topic = if event_type.contains("cancel") || status_cancelled {
        Some("order.cancelled")
    } else if event_type == "shipment_created" {
        Some("order.created")
    } else if event_type.starts_with("shipment_") || event_type.starts_with("order_") {
        Some("order.updated")
    } else {
        None
    };
    Normalized {
        topic,
        resource: order.or_else(shipment),
        status,
        first_sighting_topic: None,
    }
}
