//! `/ingest/{sourceId}`: where marketplaces send their webhooks. These are the HTTP adapters over
//! [`crate::services::receive_webhook`] and [`crate::services::source_token`]: they read the body
//! (refusing one over the limit) and turn the receipt or the error into an answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::RefOr;

use crate::AppState;
use crate::error::ErrorOut;
use crate::extract::PathParams;
use crate::models::{AcceptedOut, TokenOut};
use crate::openapi::error_answer;
use crate::services::receive_webhook::{self, InboundWebhook, Receipt};
use crate::services::source_token;

/// What the routes that receive webhooks refuse with (each refusal is recorded as a rejection).
struct IngestRefusals;

impl utoipa::IntoResponses for IngestRefusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "`malformed_body` or `unsupported_message`."),
            ("401", "`missing_signature`, `signature_mismatch`, `stale_timestamp` or `key_unavailable`."),
            ("403", "The payload names a partner the source may not speak for (`unknown_partner`)."),
            ("404", "No such source (`unknown_source`)."),
            ("413", "The body is over the size limit (`too_large`)."),
            ("500", "The source is misconfigured (`source_misconfigured`) or its secrets cannot be opened (`internal`)."),
            ("503", "The database did not commit (`store_unavailable`), or the hub is stopping or past its queueing deadline; the marketplace sends it again after `Retry-After` seconds."),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_string(), error_answer(description).build().into()))
        .collect()
    }
}

/// What `/ingest` answers: `{"status": "accepted"|"duplicate", "eventId"}` for an event; a
/// handshake's own JSON answer otherwise (`{"status": "confirming"}`, `{"challengeResponse"}`,
/// `{"challenge"}`).
#[derive(utoipa::ToSchema)]
#[schema(as = IngestAnswer)]
#[allow(dead_code)] // Describes the answers the handshakes and [`AcceptedOut`] give.
struct IngestAnswer {
    status: Option<String>,
    /// The stored event.
    #[schema(rename = "eventId")]
    event_id: Option<switchyard_core::model::EventId>,
}

/// Receive a marketplace webhook
///
/// Verified in the source's marketplace scheme before anything else is read; a handshake (SNS
/// subscription confirmation, Etsy's challenge) is answered here and stores nothing. An event is
/// stored with its deliveries and only then answered 200 (`accepted` or `duplicate`). Every
/// refusal is recorded as a rejection.
#[utoipa::path(
    post, path = "/ingest/{source_id}", tag = "ingest", operation_id = "ingest",
    security(()),
    params(("source_id" = String, Path, description = "The source's id, from its `ingestUrl`.")),
    request_body(content = serde_json::Value, description = "The marketplace's webhook body, as it signed it.", example = json!({"eventType": "PO_CREATED"})),
    responses(
        (status = 200, description = "Accepted, a duplicate, or a handshake's answer.", body = IngestAnswer),
        IngestRefusals,
    ),
)]
pub async fn ingest(
    state: State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    PathParams(source_id): PathParams<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        state,
        Some(remote),
        source_id,
        None,
        method,
        uri,
        headers,
        body,
    )
    .await
}

/// Answer a marketplace's challenge
///
/// eBay's `GET ?challenge_code=…` is answered `{"challengeResponse": …}`; other GETs are verified
/// and refused like any unsigned request.
#[utoipa::path(
    get, path = "/ingest/{source_id}", tag = "ingest", operation_id = "ingestChallenge",
    security(()),
    params(
        ("source_id" = String, Path, description = "The source's id, from its `ingestUrl`."),
        ("challenge_code" = Option<String>, Query, description = "eBay's challenge."),
    ),
    responses(
        (status = 200, description = "The challenge's answer.", body = IngestAnswer),
        IngestRefusals,
    ),
)]
pub async fn ingest_challenge(
    state: State<AppState>,
    remote: ConnectInfo<SocketAddr>,
    source_id: PathParams<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingest(state, remote, source_id, method, uri, headers, body).await
}

/// Receive a SellerCenter callback
///
/// SellerCenter's form: the URL carries the source's generated token, which the verifier checks.
#[utoipa::path(
    post, path = "/ingest/{source_id}/{token}", tag = "ingest", operation_id = "ingestWithToken",
    security(()),
    params(
        ("source_id" = String, Path, description = "The source's id, from its `ingestUrl`."),
        ("token" = String, Path, description = "The source's generated token, from its `ingestUrl`."),
    ),
    request_body(content = serde_json::Value, description = "The marketplace's webhook body, as it signed it.", example = json!({"event": "onOrderCreated", "payload": {"OrderId": 1}})),
    responses(
        (status = 200, description = "Accepted or a duplicate.", body = IngestAnswer),
        IngestRefusals,
    ),
)]
pub async fn ingest_with_token(
    state: State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    PathParams((source_id, token)): PathParams<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        state,
        Some(remote),
        source_id,
        Some(token),
        method,
        uri,
        headers,
        body,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    State(state): State<AppState>,
    remote: Option<SocketAddr>,
    source_ref: String,
    url_token: Option<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return receive_webhook::refuse_too_large(&state, &source_ref, remote, started)
            .await
            .into_response();
    };
    let inbound = InboundWebhook {
        source_ref: &source_ref,
        url_token: url_token.as_deref(),
        method: method.as_str(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
        remote,
        started,
    };
    match receive_webhook::receive(&state, inbound).await {
        Ok(Receipt::Accepted { event_id }) => axum::Json(AcceptedOut {
            deliveries: None,
            event_id,
            status: "accepted",
        })
        .into_response(),
        Ok(Receipt::Duplicate { event_id }) => axum::Json(AcceptedOut {
            deliveries: None,
            event_id,
            status: "duplicate",
        })
        .into_response(),
        Ok(Receipt::Handshake {
            status,
            content_type,
            body,
        }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        // Not acknowledged: the marketplace sends it again.
        Err(e) => e.into_response(),
    }
}

/// A Walmart source's OAuth token URL
///
/// For a `walmart` source in the `bearer` form: the `authUrl` of a Walmart subscription's `OAUTH`
/// auth. Client credentials (HTTP Basic or form fields) must be the source's `oauthClientId`
/// option and one of its secrets; the token is accepted by that source only
/// ([`source_token::issue_source_token`]).
#[utoipa::path(
    post, path = "/ingest/{source_id}/oauth/token", tag = "ingest", operation_id = "ingestOauthToken",
    security(("clientBasic" = []), ()),
    params(("source_id" = String, Path, description = "The source's id, from its `ingestUrl`.")),
    request_body(
        content = super::token::TokenForm, content_type = "application/x-www-form-urlencoded",
        example = json!({"grant_type": "client_credentials"}),
    ),
    responses(
        (status = 200, description = "A token for this source.", body = TokenOut),
        (status = 401, description = "Wrong credentials or `grant_type` (`invalid_client`).", body = ErrorOut),
        (status = 404, description = "No Walmart OAuth source here (`unknown_source`).", body = ErrorOut),
        (status = 500, response = crate::openapi::Internal),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
pub async fn oauth_token(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    PathParams(source_ref): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    match source_token::issue_source_token(
        &state,
        &source_ref,
        &headers,
        &body,
        Some(remote),
        started,
    )
    .await
    {
        Ok(token) => axum::Json(TokenOut {
            access_token: token.access_token,
            expires_in: token.expires_in,
            token_type: "Bearer",
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}
