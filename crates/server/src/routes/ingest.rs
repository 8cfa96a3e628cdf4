//! `/ingest/{sourceId}`: where marketplaces send their webhooks. These are the HTTP adapters over
//! [`crate::services::receive_webhook`] and [`crate::services::source_token`]: they read the body
//! (refusing one over the limit) and turn the receipt or the error into an answer.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::extract::PathParams;
use crate::models::{AcceptedOut, TokenOut};
use crate::services::receive_webhook::{self, InboundWebhook, Receipt};
use crate::services::source_token;

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

/// SellerCenter's form, whose URL carries the source's token.
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

/// `POST /ingest/{sourceId}/oauth/token`: the token URL a Walmart subscription's `OAUTH`
/// `authUrl` names ([`source_token::issue_source_token`]).
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
