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

mod actions;
mod documents;

pub(crate) use documents::ErrorOut as SellercenterErrorOut;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use hmac::Mac;
use jiff::{SignedDuration, Timestamp};

use crate::AppState;
use actions::Answer;
use documents::{
    ErrorHead, ErrorOut, ErrorResponse, SuccessHead, SuccessOut, SuccessResponse, answer,
};

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

/// What RFC 3986 leaves unencoded: `A-Z a-z 0-9 - _ . ~`; everything else is `%XX`.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// RFC 3986 percent-encoding, as SellerCenter signs its parameters.
fn rfc3986(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
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
pub(crate) struct ScError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

pub(crate) fn refuse(code: &'static str, message: impl Into<String>) -> ScError {
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

/// The signed query of every SellerCenter call.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, non_snake_case)] // Describes the query `handle` reads; never built.
struct SellercenterQuery {
    /// The action.
    #[param(inline, value_type = Option<ActionName>)]
    Action: Option<String>,
    /// The Switchyard client id.
    UserID: Option<String>,
    /// `1.0`.
    Version: Option<String>,
    /// ISO 8601, within 5 minutes of the hub's clock.
    Timestamp: Option<String>,
    /// `JSON` (default) or `XML`.
    #[param(inline, value_type = Option<FormatName>)]
    Format: Option<String>,
    /// Hex HMAC-SHA256 with the user's API key over the other parameters, sorted, RFC
    /// 3986-encoded, `name=value` joined by `&`.
    Signature: Option<String>,
    /// DeleteWebhook: the webhook.
    WebhookId: Option<String>,
    /// CreateWebhook: the partner, for a client managing several.
    PartnerId: Option<String>,
    /// CreateWebhook: the callback URL, when not in the body.
    CallbackUrl: Option<String>,
    /// CreateWebhook: comma-separated events or entity names, when not in the body.
    Events: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Names the actions in the document.
enum ActionName {
    CreateWebhook,
    GetWebhooks,
    DeleteWebhook,
    GetWebhookEntities,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "UPPERCASE")]
#[allow(dead_code)] // Names the formats in the document.
enum FormatName {
    Json,
    Xml,
}

/// SellerCenter's refusals: an `ErrorResponse`, as JSON or XML.
struct SellercenterRefusals;

impl utoipa::IntoResponses for SellercenterRefusals {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        use utoipa::PartialSchema as _;
        [
            ("400", "`ErrorResponse`: E001 missing parameter, E002 version, E003 stale timestamp, E004 timestamp format, E005 invalid request, E008 invalid action, E009 access denied."),
            ("401", "`ErrorResponse` E007: signature mismatch (or unknown user)."),
            ("403", "`ErrorResponse`: the client may not act for that partner."),
            ("409", "`ErrorResponse`: a conflicting write."),
            ("503", "`ErrorResponse` E006: the database is unavailable."),
        ]
        .into_iter()
        .map(|(status, description)| {
            let answer = utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name(
                        "SellercenterError",
                    ))),
                )
                .content("application/xml", utoipa::openapi::Content::new(Some(String::schema())))
                .build();
            (status.to_string(), answer.into())
        })
        .collect()
    }
}

/// SellerCenter API (GET)
///
/// SellerCenter's webhook API: `CreateWebhook` (body `<Request><Webhook><CallbackUrl>…</CallbackUrl><Events><Event>onOrderCreated</Event>…</Events></Webhook></Request>`;
/// an entity name alone means all its events), `GetWebhooks`, `DeleteWebhook`,
/// `GetWebhookEntities`. Signed with the user's SellerCenter API key, not a bearer token.
#[utoipa::path(
    get, path = "/sellercenter", tag = "sellercenter", operation_id = "sellercenterGet",
    security(()),
    params(SellercenterQuery),
    responses(
        (status = 200, description = "`SuccessResponse` with `Head` and `Body`.", content((SuccessOut = "application/json"), (String = "application/xml"))),
        SellercenterRefusals,
    ),
)]
pub async fn handle_get(state: State<AppState>, query: RawQuery, body: Bytes) -> Response {
    handle(state, query, body).await
}

/// SellerCenter API (POST)
///
/// SellerCenter's webhook API: `CreateWebhook` (body `<Request><Webhook><CallbackUrl>…</CallbackUrl><Events><Event>onOrderCreated</Event>…</Events></Webhook></Request>`;
/// an entity name alone means all its events), `GetWebhooks`, `DeleteWebhook`,
/// `GetWebhookEntities`. Signed with the user's SellerCenter API key, not a bearer token.
#[utoipa::path(
    post, path = "/sellercenter", tag = "sellercenter", operation_id = "sellercenterPost",
    security(()),
    params(SellercenterQuery),
    request_body(content = String, content_type = "application/xml", example = json!("<Request><Webhook><CallbackUrl>https://shop.example/hook</CallbackUrl><Events><Event>onOrderCreated</Event></Events></Webhook></Request>")),
    responses(
        (status = 200, description = "`SuccessResponse` with `Head` and `Body`.", content((SuccessOut = "application/json"), (String = "application/xml"))),
        SellercenterRefusals,
    ),
)]
pub async fn handle_post(state: State<AppState>, query: RawQuery, body: Bytes) -> Response {
    handle(state, query, body).await
}

/// `GET|POST /sellercenter`.
async fn handle(State(state): State<AppState>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    let format_xml = params
        .get("Format")
        .is_some_and(|f| f.eq_ignore_ascii_case("XML"));
    match run(&state, &params, &action, &body).await {
        Ok((response_type, body)) => {
            let head = SuccessHead {
                request_action: action,
                request_id: "",
                response_type,
                timestamp: state.clock.now().to_string(),
            };
            let document = SuccessOut {
                success_response: SuccessResponse { body, head },
            };
            let inner = &document.success_response;
            answer(
                format_xml,
                StatusCode::OK,
                &document,
                "SuccessResponse",
                inner,
            )
        }
        Err(e) => {
            let head = ErrorHead {
                error_code: e.code,
                error_message: e.message,
                error_type: if e.code == "E006" {
                    "Platform"
                } else {
                    "Sender"
                },
                request_action: action,
            };
            let document = ErrorOut {
                error_response: ErrorResponse { body: "", head },
            };
            let inner = &document.error_response;
            answer(format_xml, e.status, &document, "ErrorResponse", inner)
        }
    }
}

/// Authenticates the call and runs its action: the response type and body.
async fn run(
    state: &AppState,
    params: &BTreeMap<String, String>,
    action: &str,
    body: &[u8],
) -> Answer {
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
        "GetWebhookEntities" => actions::entities(),
        "GetWebhooks" => actions::get_webhooks(state, &client).await,
        "CreateWebhook" => actions::create_webhook(state, &client, params, body).await,
        "DeleteWebhook" => actions::delete_webhook(state, &client, &param("WebhookId")).await,
        _ => Err(refuse("E008", "Invalid Action")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The worked example of SellerCenter's documentation (`tests/vectors/sellercenter_request.json`).
    #[test]
    fn the_public_vector_signs_to_its_signature() {
        let text = include_str!("../../../../../tests/vectors/sellercenter_request.json");
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
}
