//! SellerCenter's API dialect (`GET|POST /sellercenter?Action=…`): `CreateWebhook`,
//! `GetWebhooks`, `DeleteWebhook` and `GetWebhookEntities`, signed the SellerCenter way
//! (`docs/marketplaces.md`), answered in its `SuccessResponse` / `ErrorResponse` shapes as JSON
//! or XML.
//!
//! `UserID` is a Switchyard client id; the user's API key is derived from the hub's master key
//! and the client id ([`api_key`]), shown by `switchyard clients create`. A webhook made here is
//! an ordinary subscription with the `sellercenter` envelope and retry ladder: it also lists the
//! normalized topics its events correspond to, so orders from every marketplace reach it under
//! SellerCenter's event names.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use hmac::Mac;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use switchyard_core::catalog::{self, Family};
use switchyard_core::model::{Client, Envelope, SubscriptionRecord, validate_http_url};

use crate::AppState;
use crate::services::scope::{resolve_partner, visible_subscription};
use crate::services::subscriptions::{self, ListQuery, SellercenterWebhook};

/// How far a request's `Timestamp` may be from the hub's clock.
const TIMESTAMP_WINDOW: SignedDuration = SignedDuration::from_mins(5);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A client's SellerCenter API key: hex HMAC-SHA256 of its id under a key derived from the
/// master key. Nothing is stored; a new key means a new client.
pub fn api_key(derived: &[u8; 32], client_id: &str) -> String {
    let mut mac =
        <HmacSha256 as hmac::KeyInit>::new_from_slice(derived).expect("HMAC takes any key length");
    mac.update(client_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~`.
fn rfc3986(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string SellerCenter signs: every parameter but `Signature`, sorted by name, encoded,
/// `name=value` joined by `&`.
pub fn string_to_sign(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex HMAC-SHA256 of [`string_to_sign`] with the API key.
pub fn signature(api_key: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(api_key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(string_to_sign(params).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A refused call, in SellerCenter's terms.
struct ScError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> ScError {
    let status = match code {
        "E007" => StatusCode::UNAUTHORIZED,
        "E006" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ScError {
        status,
        code,
        message: message.into(),
    }
}

impl From<crate::error::AppError> for ScError {
    fn from(e: crate::error::AppError) -> Self {
        let code = if e.status.is_server_error() {
            "E006"
        } else {
            "E005"
        };
        let message = match e.field {
            Some(field) => format!("{field}: {}", e.message),
            None => e.message,
        };
        ScError {
            status: e.status,
            code,
            message,
        }
    }
}

impl From<switchyard_store::StoreError> for ScError {
    fn from(e: switchyard_store::StoreError) -> Self {
        crate::error::AppError::from(e).into()
    }
}

/// JSON as SellerCenter's XML: objects become elements, an array repeats its key's element.
fn xml(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            for item in items {
                xml(name, item, out);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                xml(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", crate::console::esc(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn answer(format_xml: bool, status: StatusCode, root: &str, document: Value) -> Response {
    if format_xml {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        xml(root, &document, &mut body);
        (
            status,
            [(CONTENT_TYPE, "application/xml; charset=utf-8")],
            body,
        )
            .into_response()
    } else {
        (status, axum::Json(json!({ root: document }))).into_response()
    }
}

/// `GET|POST /sellercenter`.
pub async fn handle(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    let format_xml = params
        .get("Format")
        .is_some_and(|f| f.eq_ignore_ascii_case("XML"));
    match run(&state, &params, &action, &body).await {
        Ok((response_type, body)) => {
            let head = json!({
                "RequestId": "",
                "RequestAction": action,
                "ResponseType": response_type,
                "Timestamp": state.clock.now().to_string(),
            });
            answer(
                format_xml,
                StatusCode::OK,
                "SuccessResponse",
                json!({"Head": head, "Body": body}),
            )
        }
        Err(e) => {
            let head = json!({
                "RequestAction": action,
                "ErrorType": if e.code == "E006" { "Platform" } else { "Sender" },
                "ErrorCode": e.code,
                "ErrorMessage": e.message,
            });
            answer(
                format_xml,
                e.status,
                "ErrorResponse",
                json!({"Head": head, "Body": ""}),
            )
        }
    }
}

/// Authenticates the call and runs its action: the response type and body.
async fn run(
    state: &AppState,
    params: &BTreeMap<String, String>,
    action: &str,
    body: &[u8],
) -> Result<(&'static str, Value), ScError> {
    for name in ["Action", "UserID", "Version", "Timestamp", "Signature"] {
        if params.get(name).is_none_or(|v| v.is_empty()) {
            return Err(refuse("E001", format!("Parameter {name} is mandatory")));
        }
    }
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    if param("Version") != "1.0" {
        return Err(refuse("E002", "Invalid Version"));
    }
    let timestamp: Timestamp = param("Timestamp")
        .parse()
        .map_err(|_| refuse("E004", "Invalid Timestamp format"))?;
    let skew = state.clock.now().duration_since(timestamp).abs();
    if skew > TIMESTAMP_WINDOW {
        return Err(refuse("E003", "Timestamp has expired"));
    }
    let signature_mismatch = || refuse("E007", "Login failed. Signature mismatching");
    let client = state
        .store
        .get_client(&param("UserID"))
        .await?
        .ok_or_else(signature_mismatch)?;
    let expected = signature(&api_key(&state.sellercenter_key, &client.id), params);
    let given = param("Signature").to_ascii_lowercase();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        given.as_bytes(),
    )) {
        return Err(signature_mismatch());
    }
    match action {
        "GetWebhookEntities" => Ok(("WebhookEntities", entities())),
        "GetWebhooks" => get_webhooks(state, &client).await,
        "CreateWebhook" => create_webhook(state, &client, params, body).await,
        "DeleteWebhook" => delete_webhook(state, &client, &param("WebhookId")).await,
        _ => Err(refuse("E008", "Invalid Action")),
    }
}

/// SellerCenter's entities (`Feed`, `Order`, `Metrics`, `Statistics`, `Product`) with their events.
fn entities_map() -> BTreeMap<&'static str, Vec<&'static catalog::EventType>> {
    let mut map: BTreeMap<&str, Vec<&catalog::EventType>> = BTreeMap::new();
    for t in catalog::all() {
        if t.family == Family::Sellercenter
            && let Some(entity) = t.entity
        {
            map.entry(entity).or_default().push(t);
        }
    }
    map
}

fn entities() -> Value {
    let entities: Vec<Value> = entities_map()
        .iter()
        .map(|(name, events)| {
            json!({
                "Name": name,
                "Events": {"Event": events.iter().map(|e| e.event_type).collect::<Vec<_>>()},
            })
        })
        .collect();
    json!({"Entities": {"Entity": entities}})
}

fn sellercenter_events(sub: &SubscriptionRecord) -> Vec<&str> {
    sub.event_types
        .iter()
        .map(String::as_str)
        .filter(|t| catalog::find(t).is_some_and(|e| e.family == Family::Sellercenter))
        .collect()
}

fn webhook_view(sub: &SubscriptionRecord) -> Value {
    json!({
        "WebhookId": sub.id,
        "CallbackUrl": sub.event_url,
        "Events": {"Event": sellercenter_events(sub)},
    })
}

async fn get_webhooks(state: &AppState, client: &Client) -> Result<(&'static str, Value), ScError> {
    let subs = subscriptions::list(state, client, ListQuery::default()).await?;
    let webhooks: Vec<Value> = subs
        .iter()
        .filter(|s| s.envelope == Envelope::Sellercenter)
        .map(webhook_view)
        .collect();
    Ok(("Webhooks", json!({"Webhooks": {"Webhook": webhooks}})))
}

/// The text of every `<tag>…</tag>` in a small XML document, entities decoded.
fn xml_values(doc: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(
            after[..end]
                .trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    found
}

/// CallbackUrl and Events from the body (SellerCenter's XML, or the same as JSON) or the query.
fn webhook_input(
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(String, Vec<String>), ScError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse("E005", "Invalid Request Format: the body is not UTF-8"))?
        .trim();
    let (url, events) = if text.starts_with('<') {
        (
            xml_values(text, "CallbackUrl").into_iter().next(),
            xml_values(text, "Event"),
        )
    } else if text.starts_with('{') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| refuse("E005", format!("Invalid Request Format: {e}")))?;
        let webhook = &v["Request"]["Webhook"];
        let events = match &webhook["Events"]["Event"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        (webhook["CallbackUrl"].as_str().map(str::to_string), events)
    } else {
        (
            params.get("CallbackUrl").cloned(),
            params
                .get("Events")
                .map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
        )
    };
    let url = url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| refuse("E005", "CallbackUrl is mandatory"))?;
    if events.is_empty() {
        return Err(refuse(
            "E005",
            "give at least one Event (an event or an entity name)",
        ));
    }
    Ok((url, events))
}

async fn create_webhook(
    state: &AppState,
    client: &Client,
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(&'static str, Value), ScError> {
    let (url, names) = webhook_input(params, body)?;
    validate_http_url("CallbackUrl", &url).map_err(crate::error::AppError::from)?;
    let entities = entities_map();
    // An entity name alone means all of its events.
    let mut chosen: Vec<&'static catalog::EventType> = Vec::new();
    for name in &names {
        let events: Vec<&catalog::EventType> = match entities.get(name.as_str()) {
            Some(all) => all.clone(),
            None => match catalog::find(name) {
                Some(t) if t.family == Family::Sellercenter => vec![t],
                _ => return Err(refuse("E005", format!("unknown event or entity {name:?}"))),
            },
        };
        for e in events {
            if !chosen.iter().any(|c| c.event_type == e.event_type) {
                chosen.push(e);
            }
        }
    }
    for e in &chosen {
        if client.access_to(e.resource_name) == switchyard_core::model::Access::NoAccess {
            return Err(refuse(
                "E009",
                format!(
                    "Access Denied: this user has no access to {} events",
                    e.resource_name
                ),
            ));
        }
    }
    let partner = resolve_partner(client, params.get("PartnerId").cloned(), None, "PartnerId")?;
    let mut event_types: Vec<String> = Vec::new();
    for e in &chosen {
        event_types.push(e.event_type.to_string());
        for topic in catalog::topics_of_sellercenter_event(e.event_type) {
            if !event_types.iter().any(|t| t == topic) {
                event_types.push(topic.to_string());
            }
        }
    }
    let record = subscriptions::create_sellercenter(
        state,
        client,
        SellercenterWebhook {
            partner_id: partner,
            event_url: url,
            event_types,
            resource_name: chosen[0].resource_name.to_string(),
        },
    )
    .await?;
    Ok(("Webhook", json!({"Webhook": webhook_view(&record)})))
}

async fn delete_webhook(
    state: &AppState,
    client: &Client,
    id: &str,
) -> Result<(&'static str, Value), ScError> {
    let not_found = || refuse("E005", "Webhook not found");
    // Another tenant's webhook, a webhook of the JSON API, or no UUID at all: not found.
    let sub = match visible_subscription(state, client, id).await {
        Ok(s) if s.envelope == Envelope::Sellercenter => s,
        Ok(_) => return Err(not_found()),
        Err(e) if matches!(e.status.as_u16(), 400 | 404) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    subscriptions::delete(state, client, &sub.id.to_string())
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                not_found()
            } else {
                e.into()
            }
        })?;
    Ok(("Webhook", json!({"Webhook": {"WebhookId": sub.id}})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of SellerCenter's documentation (`tests/vectors/sellercenter_request.json`).
    #[test]
    fn the_public_vector_signs_to_its_signature() {
        let text = include_str!("../../../../tests/vectors/sellercenter_request.json");
        let vector: Value = serde_json::from_str(text).expect("JSON");
        let params: BTreeMap<String, String> = vector["params"]
            .as_object()
            .expect("params")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(string_to_sign(&params), vector["string_to_sign"]);
        let key = vector["api_key"].as_str().expect("key");
        assert_eq!(signature(key, &params), vector["signature"]);
        let mut with_signature = params.clone();
        with_signature.insert("Signature".into(), "ignored".into());
        assert_eq!(
            signature(key, &with_signature),
            vector["signature"],
            "Signature is not signed"
        );
    }

    #[test]
    fn xml_answers_repeat_array_elements_and_escape_text() {
        let mut out = String::new();
        xml(
            "Body",
            &json!({"Events": {"Event": ["a<b", "c"]}, "Empty": null}),
            &mut out,
        );
        assert_eq!(
            out,
            "<Body><Empty/><Events><Event>a&lt;b</Event><Event>c</Event></Events></Body>"
        );
        assert_eq!(
            xml_values("<R><Event> x &amp; y </Event><Event>z</Event></R>", "Event"),
            vec!["x & y", "z"]
        );
    }
}
