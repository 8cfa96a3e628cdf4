//! Any sender using Standard Webhooks (<https://www.standardwebhooks.com/>): `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature` (space-separated `v1,<base64>`
//! entries, HMAC-SHA256 over `id.timestamp.body` keyed by the base64 after `whsec_`). Signing and
//! checking are [`switchyard_core::signatures::standard_webhooks`]'s; this module adds the replay
//! window and reads the event.
//!
//! Any of the source's secrets (`whsec_…`) may have signed; any `v1,` entry may match. The
//! signature is checked first, then `webhook-timestamp` against the source's replay window.
//!
//! **Event.** The body must be a JSON object. Event type: body `type`, else `eventType`, else
//! `event_type` (a string), else `source.eventType` (the envelope Switchyard itself delivers);
//! none of them is malformed. Dedup key and native id: `webhook-id`. Partner: `partnerId`, else
//! `data.partnerId`, else `payload.partnerId`. Time: `timestamp`, else `source.eventTime`, when it
//! parses (RFC 3339 or Unix seconds).
//!
//! **Normalize.** When the event type is one of the normalized topics of
//! [`switchyard_core::catalog`] it is the topic, with the resource from `data.resource` (or
//! `payload.resource`) `{type, id}` and the status from `data.status`/`payload.status`; any other
//! type has no topic.
//!
//! # Options (`source.options`)
//!
//! None.
//!
//! # Signing (`sign`)
//!
//! `secret` is a `whsec_` secret. Body: `{"type", "timestamp", "data": {"partnerId", "resource":
//! {"type", "id"}}}` with `type` = event_type (default `order.created`), `timestamp` = now (RFC
//! 3339), `partnerId` = partner_id, the resource type from option `resourceType` (default
//! `order`) and its id = resource_id. `webhook-id` is `event_id` (or a hash of the body when
//! empty).

use serde_json::{Value, json};
use switchyard_core::catalog::{self, Family};
use switchyard_core::signatures::standard_webhooks;

use crate::util;
use crate::*;

/// The signed message's id and timestamp.
pub(crate) struct Verified<'a> {
    pub id: &'a str,
    pub timestamp: i64,
}

fn decodable(secret: &str) -> bool {
    use base64::Engine;
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .is_ok()
}

/// Checks the three Standard Webhooks headers against the source's secrets and the replay window.
pub(crate) fn verify_headers<'a>(
    req: &'a Inbound,
    source: &SourceSettings,
) -> Result<Verified<'a>, Refusal> {
    let header = |name: &str| req.header(name).map(str::trim).filter(|v| !v.is_empty());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(Refusal::MissingSignature);
    };
    let secrets = util::secrets(source)?;
    if !secrets.iter().any(|s| decodable(s)) {
        return Err(Refusal::Misconfigured(
            "no secret of the source is a whsec_ (base64) secret".into(),
        ));
    }
    // A timestamp that is not plain Unix seconds cannot be the one that was signed.
    let ts: i64 = timestamp.parse().map_err(|_| Refusal::SignatureMismatch)?;
    if !standard_webhooks::verify(&secrets, id, ts, req.body, signature) {
        return Err(Refusal::SignatureMismatch);
    }
    util::check_window(ts, req.now, source.replay_window)?;
    Ok(Verified { id, timestamp: ts })
}

/// The three Standard Webhooks headers (and `content-type`) for a body.
pub(crate) fn sign_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Vec<(String, String)>, Refusal> {
    if secret.is_empty() {
        return Err(Refusal::Misconfigured("a whsec_ secret is needed".into()));
    }
    let signature = standard_webhooks::sign(secret, id, timestamp, body)
        .map_err(|e| Refusal::Misconfigured(e.to_string()))?;
    Ok(vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
        ("webhook-signature".to_string(), signature),
    ])
}

fn first_str<'v>(payload: &'v Value, pointers: &[&str]) -> Option<&'v str> {
    pointers
        .iter()
        .find_map(|p| payload.pointer(p).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// A source of this kind has no options, so none can be wrong (unknown ones are ignored, as
/// [`verify`] ignores them).
pub fn check_options(_options: &Value) -> Result<(), Refusal> {
    Ok(())
}

/// At least one secret must be a Standard Webhooks secret (`whsec_` and base64), as
/// `verify_headers` refuses otherwise.
pub fn check_secrets(secrets: &[&str]) -> Result<(), Refusal> {
    if secrets.iter().any(|s| !s.is_empty() && decodable(s)) {
        Ok(())
    } else {
        Err(Refusal::Misconfigured(
            "no secret of the source is a whsec_ (base64) secret".into(),
        ))
    }
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    _keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    util::require_post(req, "Standard Webhooks")?;
    let signed = verify_headers(req, source)?;
    let payload = util::parse_object(req.body)?;
    let event_type = first_str(
        &payload,
        &["/type", "/eventType", "/event_type", "/source/eventType"],
    )
    .ok_or_else(|| Refusal::MalformedBody("the body names no type".into()))?
    .to_string();
    let partner_id = ["/partnerId", "/data/partnerId", "/payload/partnerId"]
        .iter()
        .find_map(|p| payload.pointer(p).and_then(util::as_id));
    let occurred_at = ["/timestamp", "/source/eventTime"]
        .iter()
        .find_map(|p| payload.pointer(p).and_then(util::parse_time));
    Ok(Outcome::Event(NativeEvent {
        kind: Kind::Standard,
        event_type,
        dedup_key: signed.id.to_string(),
        native_event_id: Some(signed.id.to_string()),
        partner_id,
        occurred_at,
        payload,
    }))
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let event_type = if req.event_type.is_empty() {
        "order.created"
    } else {
        req.event_type.as_str()
    };
    let resource_type = req
        .options
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("order");
    let body = json!({
        "type": event_type,
        "timestamp": req.now.to_string(),
        "data": {
            "partnerId": req.partner_id,
            "resource": {"type": resource_type, "id": req.resource_id},
        },
    });
    let body = serde_json::to_vec(&body)
        .map_err(|e| Refusal::Misconfigured(format!("cannot serialize: {e}")))?;
    let id = if req.event_id.is_empty() {
        format!(
            "msg_{}",
            util::hash_key(&[&String::from_utf8_lossy(&body)])
                .get(..24)
                .unwrap_or_default()
        )
    } else {
        req.event_id.clone()
    };
    let headers = sign_headers(&req.secret, &id, req.now.as_second(), &body)?;
    Ok(SignedRequest::post(headers, body))
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let Some(topic) = catalog::find(&event.event_type).filter(|t| t.family == Family::Normalized)
    else {
        return Normalized::default();
    };
    let resource = ["/data/resource", "/payload/resource"]
        .iter()
        .find_map(|p| event.payload.pointer(p))
        .and_then(|r| {
            Some(Resource {
                kind: r.get("type").and_then(Value::as_str)?.to_string(),
                id: r.get("id").and_then(util::as_id)?,
            })
        });
    let status = first_str(&event.payload, &["/data/status", "/payload/status"]).map(String::from);
    Normalized {
        topic: Some(topic.event_type),
        resource,
        status,
        first_sighting_topic: None,
    }
}
