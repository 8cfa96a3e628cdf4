//! The token URL of a Walmart source in the OAuth form: client credentials in, a token the
//! source's verifier then accepts.

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode};

use switchyard_core::model::SourceRecord;
use switchyard_core::secrets::tokens;
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::util::ct_eq;

use super::refusals::Arrival;
use crate::AppState;
use crate::error::AppError;
use crate::extract::basic_credentials;
use switchyard_core::model::SourceId;

/// A token issued at a source's token URL, in Walmart's shape (`token_type` is `Bearer`).
#[derive(Debug, serde::Serialize)]
pub struct SourceToken {
    pub access_token: String,
    pub expires_in: i64,
}

/// How long a token issued at a source's token URL is valid, as Walmart's own (`expires_in`).
const SOURCE_TOKEN_TTL_SECS: i64 = 900;

#[derive(serde::Serialize, serde::Deserialize)]
struct SourceTokenClaims {
    /// The source it was issued by.
    src: String,
    /// Expiry, Unix seconds.
    e: i64,
}

pub(crate) fn issued_token_valid(state: &AppState, source: &SourceRecord, token: &str) -> bool {
    tokens::verify(&state.source_token_key, token)
        .and_then(|payload| serde_json::from_str::<SourceTokenClaims>(&payload).ok())
        .is_some_and(|c| c.src == source.id.to_string() && c.e > state.clock.now().as_second())
}

/// Issues a token at a source's token URL (`POST /ingest/{sourceId}/oauth/token`): the token URL a Walmart subscription's `OAUTH`
/// `authUrl` names. Client credentials (HTTP Basic, or form fields) must be the source's
/// `oauthClientId` option and one of its secrets; the token is then accepted by that source only.
pub async fn issue_source_token(
    state: &AppState,
    source_ref: &str,
    headers: &HeaderMap,
    body: &[u8],
    remote: Option<SocketAddr>,
    started: Instant,
) -> Result<SourceToken, AppError> {
    let mut arrival = Arrival {
        source_ref,
        source: None,
        remote,
        body,
        started,
    };
    let source = match source_ref.parse::<SourceId>() {
        Ok(id) => state.sources.get(state, id).await?,
        Err(_) => None,
    };
    arrival.source = source.as_ref().map(|(s, _)| s.id);
    let Some((source, secrets)) = source.filter(|(s, _)| {
        s.kind == Kind::Walmart.as_str()
            && s.options.get("form").and_then(|f| f.as_str()) == Some("bearer")
    }) else {
        return Err(state
            .refuse(
                &arrival,
                &[],
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no Walmart OAuth source here".into(),
            )
            .await);
    };
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(body).unwrap_or_default();
    let (client_id, client_secret) = basic_credentials(headers)
        .or_else(|| {
            Some((
                form.get("client_id")?.clone(),
                form.get("client_secret")?.clone(),
            ))
        })
        .unwrap_or_default();
    let expected_id = source
        .options
        .get("oauthClientId")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let secret_ok = secrets
        .iter()
        .any(|s| ct_eq(s.value.as_bytes(), client_secret.as_bytes()));
    let id_ok = !expected_id.is_empty() && ct_eq(expected_id.as_bytes(), client_id.as_bytes());
    if !(secret_ok && id_ok)
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
    {
        return Err(state
            .refuse(
                &arrival,
                &source.partners,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client credentials or grant_type are wrong".into(),
            )
            .await);
    }
    let claims = SourceTokenClaims {
        src: source.id.to_string(),
        e: state.clock.now().as_second() + SOURCE_TOKEN_TTL_SECS,
    };
    let token = tokens::sign(
        &state.source_token_key,
        &serde_json::to_string(&claims).unwrap_or_default(),
    );
    Ok(SourceToken {
        access_token: token,
        expires_in: SOURCE_TOKEN_TTL_SECS,
    })
}
