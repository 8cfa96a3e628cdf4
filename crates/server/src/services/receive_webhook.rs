//! Receiving a marketplace's webhook, without HTTP: what `/ingest/{sourceId}` does once it has
//! the body, callable by the benchmark and the tests directly.
//!
//! The order of work is the promise: verify (before parsing anything the scheme does not need),
//! check the partner, dedup, store the raw body with the event and its deliveries in one
//! transaction, and only then return. Every refusal is recorded as a rejection
//! ([`super::refusals`]) and stores nothing else.

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use switchyard_core::metrics;
use switchyard_core::model::{EventRecord, FactClaim, ResourceSighting, SourceRecord};
use switchyard_core::secrets::random_token;
use switchyard_marketplaces::{
    Inbound, KeyRef, KeyStore, Kind, NativeEvent, Outcome, Refusal, SourceSecret, SourceSettings,
};
use switchyard_store::InsertOutcome;

use switchyard_delivery::trace_context::{STAGE, continue_trace, traceparent};
use tracing::Instrument as _;

use super::refusals::Arrival;
use super::scope::{inbound, of_source};
use super::source_token::issued_token_valid;
use crate::AppState;
use crate::error::AppError;
use switchyard_core::model::PartnerId;
use switchyard_core::model::{EventId, SourceId};

/// The header through which a SellerCenter source's URL token reaches its verifier.
const URL_TOKEN_HEADER: &str = "x-switchyard-url-token";

/// One inbound webhook as it arrived.
pub struct InboundWebhook<'a> {
    /// The source id as the URL names it (it may name no source).
    pub source_ref: &'a str,
    /// SellerCenter's form carries the source's token in the URL.
    pub url_token: Option<&'a str>,
    pub method: &'a str,
    /// The query string, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub remote: Option<SocketAddr>,
    /// When the request came in, for the acknowledgement latency.
    pub started: Instant,
}

/// What receiving a webhook came to.
#[derive(Debug)]
pub enum Receipt {
    /// Stored durably, with its deliveries.
    Accepted { event_id: EventId },
    /// The marketplace sent it before; the stored event's id.
    Duplicate { event_id: EventId },
    /// A scheme's handshake (a challenge, an SNS subscription confirmation): answered as it is,
    /// nothing stored.
    Handshake {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
}

/// Receives one inbound webhook: verifies it for the source its URL names, checks the partner,
/// deduplicates, and stores the raw body, the event and its deliveries in one transaction before
/// it returns. A refusal is recorded and returned as the error to answer with; nothing else of
/// it is stored.
pub async fn receive(state: &AppState, inbound: InboundWebhook<'_>) -> Result<Receipt, AppError> {
    // The `receive` stage span, continuing the sender's trace when it sent a `traceparent`.
    let span = tracing::info_span!(
        target: STAGE,
        "receive",
        source = inbound.source_ref,
        outcome = tracing::field::Empty,
    );
    if let Some(parent) = inbound
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        continue_trace(&span, parent);
    }
    let receipt = receive_in_span(state, inbound)
        .instrument(span.clone())
        .await;
    span.record(
        "outcome",
        match &receipt {
            Ok(Receipt::Accepted { .. }) => "accepted",
            Ok(Receipt::Duplicate { .. }) => "duplicate",
            Ok(Receipt::Handshake { .. }) => "handshake",
            Err(e) => e.code,
        },
    );
    receipt
}

async fn receive_in_span(
    state: &AppState,
    inbound: InboundWebhook<'_>,
) -> Result<Receipt, AppError> {
    let InboundWebhook {
        source_ref,
        url_token,
        method,
        query,
        headers,
        body,
        remote,
        started,
    } = inbound;
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
    let Some((source, secrets)) = source else {
        return Err(state
            .refuse(
                &arrival,
                &[],
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no such source".into(),
            )
            .await);
    };
    arrival.source = Some(source.id);
    let Some(kind) = Kind::parse(&source.kind) else {
        tracing::error!(source = %source.id, kind = %source.kind, "source of an unknown kind");
        return Err(AppError::internal());
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
        let vouched = if issued_token_valid(state, &source, presented) {
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
    if let Some(token) = url_token {
        pairs.push((URL_TOKEN_HEADER.into(), token.to_string()));
    }
    let endpoint_url = source
        .options
        .get("endpointUrl")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/ingest/{}", state.public_url, source.id));
    let now = state.clock.now();
    let inbound = Inbound {
        method,
        endpoint_url: &endpoint_url,
        query,
        headers: &pairs,
        body,
        now,
    };
    let verify = tracing::info_span!(target: STAGE, "verify", kind = kind.as_str());
    let outcome = match verify_fetching_keys(state, kind, &inbound, &settings)
        .instrument(verify)
        .await
    {
        Ok(outcome) => outcome,
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(state
                .refuse(
                    &arrival,
                    &source.partners,
                    status,
                    refusal.code(),
                    refusal.to_string(),
                )
                .await);
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
            Ok(Receipt::Handshake {
                status: h.status,
                content_type: h.content_type,
                body: h.body,
            })
        }
        Outcome::Event(native) => {
            let kept = kept_headers(headers);
            store_event(
                state,
                &arrival,
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

/// Refuses a body over the size limit, before its source is loaded (looked up for the metrics
/// label only).
pub async fn refuse_too_large(
    state: &AppState,
    source_ref: &str,
    remote: Option<SocketAddr>,
    started: Instant,
) -> AppError {
    let source = match source_ref.parse::<SourceId>() {
        Ok(id) => inbound(state)
            .get_source(id)
            .await
            .ok()
            .flatten()
            .map(|s| s.id),
        Err(_) => None,
    };
    let arrival = Arrival {
        source_ref,
        source,
        remote,
        body: &[],
        started,
    };
    state
        .refuse(
            &arrival,
            &[],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is over the limit of {} bytes",
                state.max_body_bytes
            ),
        )
        .await
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
    // Whether `name` contains one of them: `str::contains` nine times a header was 3% of an
    // ingest's instructions, most of it comparisons at positions whose first byte differs.
    let secret_like = |name: &[u8]| {
        (0..name.len()).any(|at| {
            SECRET_LIKE.iter().any(|s| {
                let s = s.as_bytes();
                name[at] == s[0] && name[at..].starts_with(s)
            })
        })
    };
    headers
        .iter()
        .filter(|(name, _)| !secret_like(name.as_str().as_bytes()))
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
    arrival: &Arrival<'_>,
    source: &SourceRecord,
    kind: Kind,
    native: NativeEvent,
    raw_body: Vec<u8>,
    headers: std::collections::BTreeMap<String, String>,
    now: Timestamp,
) -> Result<Receipt, AppError> {
    let partner = match &native.partner_id {
        Some(p) if source.partners.iter().any(|q| q == p) => PartnerId::from(p.as_str()),
        Some(p) => {
            return Err(state
                .refuse(
                    arrival,
                    &source.partners,
                    StatusCode::FORBIDDEN,
                    "unknown_partner",
                    format!("this source may not speak for partner {p:?}"),
                )
                .await);
        }
        None => match source.partners.first() {
            Some(p) => p.clone(),
            None => return Err(AppError::internal()),
        },
    };
    let (event, sighting) = event_of(
        kind,
        source,
        native,
        partner,
        Arrived::Webhook { raw_body, headers },
        now,
    );
    let span = store_span();
    let stored = of_source(state, source)
        .insert_event(event, sighting)
        .instrument(span.clone())
        .await;
    record_store(&span, &stored);
    match stored {
        Ok(InsertOutcome::Created {
            event_id,
            deliveries,
        }) => {
            if deliveries > 0 {
                state.dispatcher.wake();
            }
            count_ack(state, arrival, "accepted");
            Ok(Receipt::Accepted { event_id })
        }
        Ok(InsertOutcome::Duplicate { event_id }) => {
            count_ack(state, arrival, "duplicate");
            Ok(Receipt::Duplicate { event_id })
        }
        // Not acknowledged: the marketplace retries.
        Err(e) => Err(AppError::from(e)),
    }
}

/// How an event came to the hub.
pub enum Arrived {
    /// A marketplace's webhook, with its body and kept headers.
    Webhook {
        raw_body: Vec<u8>,
        headers: std::collections::BTreeMap<String, String>,
    },
    /// Made by a reconciliation for a fact no webhook announced.
    Reconciliation,
}

/// The event to store for a verified native event of `source`, and its sighting: the same for
/// a webhook and for a reconciliation's backfill, so that both normalize, fan out and claim
/// facts alike. The normalized form's `origin` says which it was.
pub fn event_of(
    kind: Kind,
    source: &SourceRecord,
    native: NativeEvent,
    partner: PartnerId,
    arrived: Arrived,
    now: Timestamp,
) -> (EventRecord, Option<ResourceSighting>) {
    let threshold = source
        .options
        .get("inventoryLowThreshold")
        .and_then(|t| t.as_i64());
    let normalized = kind.normalize_with_threshold(&native, threshold);
    let occurred_at = native.occurred_at.unwrap_or(now);
    let id = EventId::new();
    let reconciled = matches!(arrived, Arrived::Reconciliation);
    let normalized_json = json!({
        "marketplace": kind.marketplace(),
        "partnerId": partner,
        "resource": normalized.resource,
        "status": normalized.status,
        "occurredAt": occurred_at,
        "nativeEventType": native.event_type,
        "nativeEventId": native.native_event_id,
        "origin": if reconciled { "reconciliation" } else { "webhook" },
        // Its `native` member is the payload: left out, not copied (`native_elided`).
    });
    let fact =
        switchyard_marketplaces::orders::fact_of(normalized.topic, normalized.status.as_deref());
    // The registry of resources seen matters where a first sighting decides the topic; a source
    // that reconciles claims each order fact its events state.
    let claims = reconciled || source.reconcile.is_some();
    let sighting = normalized
        .resource
        .as_ref()
        .filter(|r| kind.first_sighting_decides_topic() || (claims && r.kind == "order"))
        .map(|r| ResourceSighting {
            marketplace: kind.marketplace().into(),
            partner_id: partner.clone(),
            resource_kind: r.kind.clone(),
            resource_id: r.id.clone(),
            status: normalized.status.clone(),
            first_sighting_topic: normalized.first_sighting_topic.map(str::to_string),
            claim: (claims && r.kind == "order").then(|| FactClaim {
                fact: fact.clone(),
                by_reconciliation: reconciled,
            }),
        });
    let resource_key = normalized
        .resource
        .as_ref()
        .map(|r| format!("{}:{}", r.kind, r.id));
    let (dedup_key, raw_body, headers) = match arrived {
        Arrived::Webhook { raw_body, headers } => {
            (native.dedup_key.clone(), Some(raw_body), headers)
        }
        // One event per fact and source, whatever run finds it.
        Arrived::Reconciliation => (
            format!(
                "reconciliation:{}:{fact}",
                resource_key.as_deref().unwrap_or_default()
            ),
            None,
            Default::default(),
        ),
    };
    let event = EventRecord {
        id,
        origin: source.id.to_string(),
        dedup_key: Some(dedup_key),
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
        raw_body,
        resource_key,
        headers,
        // Deliveries continue the trace the event is stored in (`attempt` spans).
        trace_parent: traceparent(&tracing::Span::current()),
        resource_version: None,
        native_elided: true,
    };
    (event, sighting)
}

/// Counts an acknowledged event and times it from the request's arrival.
fn count_ack(state: &AppState, arrival: &Arrival<'_>, outcome: &str) {
    state.metrics.inc(
        &metrics::INGEST_REQUESTS,
        &[("source", &arrival.source_label()), ("outcome", outcome)],
    );
    state.metrics.observe(
        &metrics::INGEST_ACK_SECONDS,
        &[],
        arrival.started.elapsed().as_secs_f64(),
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

/// The `store` stage span: dedup, the event and its fan-out to deliveries are one transaction,
/// so they are its attributes (`duplicate`, `fan_out`), not spans of their own.
pub(crate) fn store_span() -> tracing::Span {
    tracing::info_span!(
        target: STAGE,
        "store",
        duplicate = tracing::field::Empty,
        fan_out = tracing::field::Empty,
    )
}

/// Records what the store did on its `store` span.
pub(crate) fn record_store<E>(span: &tracing::Span, stored: &Result<InsertOutcome, E>) {
    match stored {
        Ok(InsertOutcome::Created { deliveries, .. }) => {
            span.record("duplicate", false);
            span.record("fan_out", *deliveries);
        }
        Ok(InsertOutcome::Duplicate { .. }) => {
            span.record("duplicate", true);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    use super::kept_headers;

    #[test]
    fn headers_that_carry_a_credential_or_a_signature_are_not_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("wm_sec.timestamp", "1700000000000"),
            ("wm_sec.auth_signature", "c2lnbmF0dXJl"),
            ("authorization", "Bearer t"),
            ("x-shopify-hmac-sha256", "aG1hYw=="),
            ("x-api-key", "k"),
            ("cookie", "c=1"),
            ("x-amz-sns-message-type", "Notification"),
            ("x-passwords", "p"),
            ("x-tiktok-token", "t"),
            ("x-client-secret", "s"),
            ("x-hub-signature-256", "sha256=00"),
            ("oauth-thing", "o"),
            ("x-long", &"v".repeat(513)),
            ("user-agent", "Walmart"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let kept: Vec<String> = kept_headers(&headers).into_keys().collect();
        assert_eq!(
            kept,
            [
                "content-type",
                "user-agent",
                "wm_sec.timestamp",
                "x-amz-sns-message-type"
            ]
        );
    }
}
