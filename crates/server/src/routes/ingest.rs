//! `/ingest/{sourceId}`: where marketplaces send their webhooks.
//!
//! The order of work is the promise: verify (before parsing anything the scheme does not need),
//! check the partner, dedup, store the raw body with the normalized event and its deliveries in
//! one transaction, and only then answer 2xx. Every refusal is answered with a JSON error, is
//! recorded as a rejection (reason, remote address, body hash and size; never the body or a
//! secret), and stores nothing else.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchyard_core::metrics;
use switchyard_core::model::{EventRecord, RejectionRecord, ResourceSighting, SourceRecord};
use switchyard_core::secrets::{random_token, tokens};
use switchyard_marketplaces::util::ct_eq;
use switchyard_marketplaces::{
    Inbound, KeyRef, KeyStore, Kind, NativeEvent, Outcome, Refusal, SourceSecret, SourceSettings,
};
use switchyard_store::InsertOutcome;

use super::sources::open_secrets;
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathParams;

/// How long a fetched certificate or public key is trusted before it is fetched again.
/// The header through which a SellerCenter source's URL token reaches its verifier.
const URL_TOKEN_HEADER: &str = "x-switchyard-url-token";

/// What the request looked like, for the rejection record and the metrics.
struct Received<'a> {
    source_ref: &'a str,
    /// The stored source the URL names, once known; `None` labels metrics `unknown`.
    source: Option<Uuid>,
    remote: Option<SocketAddr>,
    body: &'a [u8],
    /// When the request came in, for the acknowledgement latency.
    started: Instant,
}

impl Received<'_> {
    /// The `source` label: a stored source's id, never what an unknown URL says.
    fn source_label(&self) -> String {
        self.source
            .map(|id| id.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

impl AppState {
    /// Records a refusal and builds its answer. A failure to record is logged, never hidden
    /// behind a different answer.
    async fn refuse(
        &self,
        received: &Received<'_>,
        partners: &[String],
        status: StatusCode,
        code: &'static str,
        message: String,
    ) -> Response {
        let rejection = RejectionRecord {
            id: Uuid::now_v7(),
            source_id: received.source_ref.chars().take(100).collect(),
            partners: partners.to_vec(),
            reason: code.to_string(),
            status_code: status.as_u16(),
            message: message.clone(),
            remote_addr: received.remote.map(|a| a.ip().to_string()),
            body_sha256: hex::encode(Sha256::digest(received.body)),
            body_size: received.body.len() as u64,
            received_at: self.clock.now(),
        };
        if let Err(e) = self.store.insert_rejection(rejection).await {
            tracing::error!(error = %e, "cannot record a rejection");
        }
        self.metrics.inc(
            &metrics::INGEST_REQUESTS,
            &[
                ("source", &received.source_label()),
                ("outcome", "refused"),
                ("reason", code),
            ],
        );
        self.watch_rejection_spike(received.source_ref, partners)
            .await;
        tracing::info!(
            source = received.source_ref,
            reason = code,
            "inbound request refused"
        );
        AppError::new(status, code, message).into_response()
    }
}

/// Refusals in this window count towards a source's spike threshold.
const SPIKE_WINDOW: SignedDuration = SignedDuration::from_mins(5);
/// Default of the source option `rejectionSpikeThreshold`.
const DEFAULT_SPIKE_THRESHOLD: u32 = 50;

impl AppState {
    /// Announces `source.rejections_spiking` (once per source and window) when a source's
    /// refusals in the last five minutes reach its threshold.
    async fn watch_rejection_spike(&self, source_ref: &str, partners: &[String]) {
        let Ok(id) = Uuid::parse_str(source_ref) else {
            return;
        };
        let Some(first_partner) = partners.first() else {
            return;
        };
        let threshold = match self.store.get_source(id).await {
            Ok(Some(source)) => source
                .options
                .get("rejectionSpikeThreshold")
                .and_then(|v| v.as_u64())
                .map(|t| t.clamp(1, 1000) as u32)
                .unwrap_or(DEFAULT_SPIKE_THRESHOLD),
            _ => return,
        };
        let now = self.clock.now();
        let filter = switchyard_core::model::RejectionFilter {
            source_id: Some(source_ref.to_string()),
            since: Some(now - SPIKE_WINDOW),
            limit: threshold,
            ..Default::default()
        };
        let Ok(recent) = self.store.list_rejections(&filter).await else {
            return;
        };
        if (recent.len() as u32) < threshold {
            return;
        }
        // One announcement per source and five-minute window.
        let window = now.as_second() / SPIKE_WINDOW.as_secs();
        let payload = json!({
            "sourceId": source_ref,
            "rejections": recent.len(),
            "windowSeconds": SPIKE_WINDOW.as_secs(),
            "threshold": threshold,
            "reasons": recent.iter().map(|r| r.reason.clone()).collect::<std::collections::BTreeSet<_>>(),
        });
        let key = format!("spike:{source_ref}:{window}");
        if switchyard_delivery::dispatcher::publish_operational(
            self.store.as_ref(),
            now,
            first_partner,
            "source.rejections_spiking",
            key,
            payload,
        )
        .await
        {
            self.dispatcher.wake();
        }
    }
}

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
    let body = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            // Refused before the source is loaded; look it up for the metrics label only.
            let source = match Uuid::parse_str(&source_ref) {
                Ok(id) => state
                    .store
                    .get_source(id)
                    .await
                    .ok()
                    .flatten()
                    .map(|s| s.id),
                Err(_) => None,
            };
            let received = Received {
                source_ref: &source_ref,
                source,
                remote,
                body: &[],
                started,
            };
            return state
                .refuse(
                    &received,
                    &[],
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the body is over the limit of {} bytes",
                        state.max_body_bytes
                    ),
                )
                .await;
        }
    };
    let mut received = Received {
        source_ref: &source_ref,
        source: None,
        remote,
        body: &body,
        started,
    };
    let source = match Uuid::parse_str(&source_ref) {
        Ok(id) => match state.sources.get(&state, id).await {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        },
        Err(_) => None,
    };
    let Some((source, secrets)) = source else {
        return state
            .refuse(
                &received,
                &[],
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no such source".into(),
            )
            .await;
    };
    received.source = Some(source.id);
    let Some(kind) = Kind::parse(&source.kind) else {
        tracing::error!(source = %source.id, kind = %source.kind, "source of an unknown kind");
        return AppError::internal().into_response();
    };
    // A Walmart source in the OAuth form accepts the tokens it issued; its verifier compares
    // the presented token with the ones the server vouches for.
    let secrets = if kind == Kind::Walmart
        && source.options.get("form").and_then(|f| f.as_str()) == Some("bearer")
    {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let vouched = if issued_token_valid(&state, &source, presented) {
            presented.to_string()
        } else {
            // Nothing the sender can present matches this.
            random_token::<32>()
        };
        vec![SourceSecret {
            id: "issued".into(),
            value: vouched,
        }]
    } else {
        secrets.to_vec()
    };
    let settings = SourceSettings {
        kind,
        secrets,
        replay_window: SignedDuration::from_secs(source.replay_window_secs),
        options: source.options.clone(),
    };
    // Headers as the verifiers take them; the URL token comes only from the path.
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str() != URL_TOKEN_HEADER)
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(token) = &url_token {
        pairs.push((URL_TOKEN_HEADER.into(), token.clone()));
    }
    let endpoint_url = source
        .options
        .get("endpointUrl")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/ingest/{}", state.public_url, source.id));
    let now = state.clock.now();
    let inbound = Inbound {
        method: method.as_str(),
        endpoint_url: &endpoint_url,
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body: &body,
        now,
    };
    let outcome = match verify_fetching_keys(&state, kind, &inbound, &settings).await {
        Ok(outcome) => outcome,
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return state
                .refuse(
                    &received,
                    &source.partners,
                    status,
                    refusal.code(),
                    refusal.to_string(),
                )
                .await;
        }
    };
    match outcome {
        Outcome::Handshake(h) => {
            if let Some(url) = h.confirm_url.clone() {
                let sender = state.sender.clone();
                let source_id = source.id;
                tokio::spawn(async move {
                    match sender.fetch(&url, &[], 64 * 1024).await {
                        Ok(_) => {
                            tracing::info!(source = %source_id, "confirmed the SNS subscription")
                        }
                        Err(e) => {
                            tracing::warn!(source = %source_id, error = %e, "cannot confirm the SNS subscription")
                        }
                    }
                });
            }
            let status = StatusCode::from_u16(h.status).unwrap_or(StatusCode::OK);
            (
                status,
                [(axum::http::header::CONTENT_TYPE, h.content_type)],
                h.body,
            )
                .into_response()
        }
        Outcome::Event(native) => {
            let kept = kept_headers(&headers);
            store_event(
                &state,
                &received,
                &source,
                kind,
                native,
                body.to_vec(),
                kept,
                now,
            )
            .await
        }
    }
}

/// The request headers an event keeps for the console: none that carries a credential or a
/// signature, and none longer than 512 bytes.
fn kept_headers(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    const SECRET_LIKE: [&str; 9] = [
        "authorization",
        "cookie",
        "signature",
        "token",
        "secret",
        "auth",
        "hmac",
        "key",
        "password",
    ];
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !SECRET_LIKE.iter().any(|s| name.contains(s))
        })
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            (value.len() <= 512).then(|| (name.as_str().to_string(), value.to_string()))
        })
        .take(64)
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn store_event(
    state: &AppState,
    received: &Received<'_>,
    source: &SourceRecord,
    kind: Kind,
    native: NativeEvent,
    raw_body: Vec<u8>,
    headers: std::collections::BTreeMap<String, String>,
    now: Timestamp,
) -> Response {
    let partner = match &native.partner_id {
        Some(p) if source.partners.iter().any(|q| q == p) => p.clone(),
        Some(p) => {
            return state
                .refuse(
                    received,
                    &source.partners,
                    StatusCode::FORBIDDEN,
                    "unknown_partner",
                    format!("this source may not speak for partner {p:?}"),
                )
                .await;
        }
        None => match source.partners.first() {
            Some(p) => p.clone(),
            None => return AppError::internal().into_response(),
        },
    };
    let threshold = source
        .options
        .get("inventoryLowThreshold")
        .and_then(|t| t.as_i64());
    let normalized = kind.normalize_with_threshold(&native, threshold);
    let occurred_at = native.occurred_at.unwrap_or(now);
    let id = Uuid::now_v7();
    let normalized_json = json!({
        "marketplace": kind.marketplace(),
        "partnerId": partner,
        "resource": normalized.resource,
        "status": normalized.status,
        "occurredAt": occurred_at,
        "nativeEventType": native.event_type,
        "nativeEventId": native.native_event_id,
        "native": native.payload,
    });
    // The registry of resources seen matters only where a first sighting decides the topic.
    let sighting = normalized
        .resource
        .as_ref()
        .filter(|_| kind.first_sighting_decides_topic())
        .map(|r| ResourceSighting {
            marketplace: kind.marketplace().into(),
            partner_id: partner.clone(),
            resource_kind: r.kind.clone(),
            resource_id: r.id.clone(),
            status: normalized.status.clone(),
            first_sighting_topic: normalized.first_sighting_topic.map(str::to_string),
        });
    let event = EventRecord {
        id,
        origin: source.id.to_string(),
        dedup_key: Some(native.dedup_key.clone()),
        partner_id: partner,
        event_type: native.event_type.clone(),
        event_version: switchyard_core::catalog::V1.into(),
        topic: normalized.topic.map(str::to_string),
        public_event_id: native
            .native_event_id
            .clone()
            .unwrap_or_else(|| id.to_string()),
        occurred_at,
        received_at: now,
        payload: native.payload,
        normalized: Some(normalized_json),
        raw_body: Some(raw_body),
        resource_key: normalized
            .resource
            .as_ref()
            .map(|r| format!("{}:{}", r.kind, r.id)),
        headers,
    };
    match state.store.insert_event(event, sighting).await {
        Ok(InsertOutcome::Created {
            event_id,
            deliveries,
        }) => {
            if deliveries > 0 {
                state.dispatcher.wake();
            }
            count_ack(state, received, "accepted");
            axum::Json(json!({"status": "accepted", "eventId": event_id})).into_response()
        }
        Ok(InsertOutcome::Duplicate { event_id }) => {
            count_ack(state, received, "duplicate");
            axum::Json(json!({"status": "duplicate", "eventId": event_id})).into_response()
        }
        // Not acknowledged: the marketplace retries.
        Err(e) => AppError::from(e).into_response(),
    }
}

/// Counts an acknowledged event and times it from the request's arrival.
fn count_ack(state: &AppState, received: &Received<'_>, outcome: &str) {
    state.metrics.inc(
        &metrics::INGEST_REQUESTS,
        &[("source", &received.source_label()), ("outcome", outcome)],
    );
    state.metrics.observe(
        &metrics::INGEST_ACK_SECONDS,
        &[],
        received.started.elapsed().as_secs_f64(),
    );
}

/// The keys a source pins in its options, then those fetched before.
struct Keys<'a> {
    source: &'a SourceSettings,
    state: &'a AppState,
    now: Timestamp,
}

impl KeyStore for Keys<'_> {
    fn get(&self, key: &KeyRef) -> Option<Vec<u8>> {
        if let KeyRef::CertificateUrl(url) = key
            && let Some(pem) = self
                .source
                .options
                .get("pinnedCertificates")
                .and_then(|p| p.get(url))
                .and_then(|v| v.as_str())
        {
            return Some(pem.as_bytes().to_vec());
        }
        self.state.keys.cached(key, self.now)
    }
}

/// Verifies; when the verifier needs a key it does not have, fetches it once and verifies again.
async fn verify_fetching_keys(
    state: &AppState,
    kind: Kind,
    inbound: &Inbound<'_>,
    settings: &SourceSettings,
) -> Result<Outcome, Refusal> {
    let keys = Keys {
        source: settings,
        state,
        now: inbound.now,
    };
    match kind.verify(inbound, settings, &keys) {
        Err(Refusal::KeyNeeded(key)) => {
            state
                .keys
                .get_or_fetch(&key, inbound.now, fetch_key(state, settings, &key))
                .await
                .map_err(Refusal::KeyUnavailable)?;
            match kind.verify(inbound, settings, &keys) {
                Err(Refusal::KeyNeeded(_)) => Err(Refusal::KeyUnavailable(
                    "key still missing after fetching it".into(),
                )),
                other => other,
            }
        }
        other => other,
    }
}

async fn fetch_key(
    state: &AppState,
    settings: &SourceSettings,
    key: &KeyRef,
) -> Result<Vec<u8>, String> {
    match key {
        KeyRef::CertificateUrl(url) => state.sender.fetch(url, &[], 64 * 1024).await,
        KeyRef::EbayPublicKey(kid) => {
            let base = settings
                .option_str("publicKeyUrl")
                .ok_or("no publicKeyUrl option to fetch eBay's public key from")?;
            let headers: Vec<(String, String)> = settings
                .option_str("publicKeyToken")
                .map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))])
                .unwrap_or_default();
            let body = state
                .sender
                .fetch(&format!("{base}{kid}"), &headers, 64 * 1024)
                .await?;
            // eBay answers {"algorithm","digest","key"}; a bare PEM is taken as it is.
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => v
                    .get("key")
                    .and_then(|k| k.as_str())
                    .map(|k| k.as_bytes().to_vec())
                    .ok_or_else(|| "the key answer has no key".to_string()),
                Err(_) => Ok(body),
            }
        }
    }
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

fn issued_token_valid(state: &AppState, source: &SourceRecord, token: &str) -> bool {
    tokens::verify(&state.source_token_key, token)
        .and_then(|payload| serde_json::from_str::<SourceTokenClaims>(&payload).ok())
        .is_some_and(|c| c.src == source.id.to_string() && c.e > state.clock.now().as_second())
}

/// `POST /ingest/{sourceId}/oauth/token`: the token URL a Walmart subscription's `OAUTH`
/// `authUrl` names. Client credentials (HTTP Basic, or form fields) must be the source's
/// `oauthClientId` option and one of its secrets; the token is then accepted by that source only.
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
    let mut received = Received {
        source_ref: &source_ref,
        source: None,
        remote: Some(remote),
        body: &body,
        started,
    };
    let source = match Uuid::parse_str(&source_ref) {
        Ok(id) => state.store.get_source(id).await.ok().flatten(),
        Err(_) => None,
    };
    received.source = source.as_ref().map(|s| s.id);
    let Some(source) = source.filter(|s| {
        s.kind == Kind::Walmart.as_str()
            && s.options.get("form").and_then(|f| f.as_str()) == Some("bearer")
    }) else {
        return state
            .refuse(
                &received,
                &[],
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no Walmart OAuth source here".into(),
            )
            .await;
    };
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b.trim()).ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|b| {
            b.split_once(':')
                .map(|(i, s)| (i.to_string(), s.to_string()))
        });
    let (client_id, client_secret) = basic
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
    let secrets = match open_secrets(&state, &source) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let secret_ok = secrets
        .iter()
        .any(|s| ct_eq(s.value.as_bytes(), client_secret.as_bytes()));
    let id_ok = !expected_id.is_empty() && ct_eq(expected_id.as_bytes(), client_id.as_bytes());
    if !(secret_ok && id_ok)
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
    {
        return state
            .refuse(
                &received,
                &source.partners,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client credentials or grant_type are wrong".into(),
            )
            .await;
    }
    let claims = SourceTokenClaims {
        src: source.id.to_string(),
        e: state.clock.now().as_second() + SOURCE_TOKEN_TTL_SECS,
    };
    let token = tokens::sign(
        &state.source_token_key,
        &serde_json::to_string(&claims).unwrap_or_default(),
    );
    axum::Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": SOURCE_TOKEN_TTL_SECS}),
    )
    .into_response()
}
