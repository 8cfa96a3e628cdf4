//! One outbound HTTP request with a subscription's headers and auth, and what came of it.
//!
//! Auth methods, as Walmart defines them (`seeds/001_*`; Walmart's *Subscribe to an event notification*):
//! - `BASIC_AUTH`: `authHeaderName: Basic base64(userName:password)`.
//! - `HMAC`: `authHeaderName` (default `WM_SEC.AUTH_SIGNATURE`) = hex HMAC-SHA256 with
//!   `clientSecret` over `WM_SEC.TIMESTAMP` followed by the body, with `WM_SEC.TIMESTAMP` and
//!   `WM_SEC.KEY_VERSION`.
//! - `OAUTH`: client credentials POSTed to `authUrl` with HTTP Basic; the token is cached until
//!   shortly before `expires_in` runs out, and fetched afresh once after a 401.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument as _;

use switchyard_core::Clock;
use switchyard_core::model::{AuthDetails, AuthMethod, RESPONSE_EXCERPT_BYTES};
use switchyard_core::signatures::walmart;

use crate::DeliveryError;
use crate::guard::{AddressGuard, GuardError, GuardedResolver};

/// Settings of the outbound HTTP client.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub connect_timeout: Duration,
    /// The whole request, from connecting to the last byte of the (truncated) answer.
    pub request_timeout: Duration,
    pub allow_private_targets: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            allow_private_targets: false,
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: String,
    pub body: Vec<u8>,
    /// Headers set by Switchyard (content type, Standard Webhooks).
    pub headers: Vec<(String, String)>,
    /// The subscription's custom headers (also sent to an OAuth `authUrl`).
    pub custom_headers: BTreeMap<String, String>,
    pub auth: Option<AuthDetails>,
    /// Key under which an OAuth token is cached (the subscription id); `None`: no caching.
    pub token_cache_key: Option<String>,
}

/// What came of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcome {
    pub status_code: Option<u16>,
    pub latency: Duration,
    /// `None` on success; else `http_status`, `timeout`, `connect`, `refused_target`, `auth`,
    /// `request`.
    pub error_class: Option<&'static str>,
    pub error_message: Option<String>,
    pub response_excerpt: Option<String>,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<SignedDuration>,
}

impl SendOutcome {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }

    pub(crate) fn failed(
        class: &'static str,
        message: impl Into<String>,
        started: Instant,
    ) -> Self {
        SendOutcome {
            status_code: None,
            latency: started.elapsed(),
            error_class: Some(class),
            error_message: Some(message.into()),
            response_excerpt: None,
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    /// When to stop using it: shortly before it expires.
    use_until: Timestamp,
}

/// Sends requests through the guarded client. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: AddressGuard,
    clock: Arc<dyn Clock>,
    /// OAuth tokens by cache key (subscription id, auth URL and client id).
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
    /// Endpoint URLs already parsed: parsing one (IDNA included) showed in delivery profiles.
    urls: Arc<Mutex<HashMap<String, reqwest::Url>>>,
    /// Connections to the brokers that `eventUrl`s name.
    brokers: crate::brokers::Brokers,
}

/// Parsed URLs kept at most; past it the cache starts over.
const PARSED_URLS: usize = 10_000;

impl Sender {
    pub fn new(config: &SenderConfig, clock: Arc<dyn Clock>) -> Result<Sender, DeliveryError> {
        // One TLS provider in the whole binary; installing twice is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let guard = AddressGuard {
            allow_private: config.allow_private_targets,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver::shared(guard))
            .build()
            .map_err(|e| DeliveryError::Client(e.to_string()))?;
        Ok(Sender {
            client,
            guard,
            clock,
            tokens: Arc::new(Mutex::new(HashMap::new())),
            urls: Arc::new(Mutex::new(HashMap::new())),
            brokers: crate::brokers::Brokers::new(guard, config.request_timeout),
        })
    }

    /// GETs a small document (a signing certificate, a public key, a subscription confirmation)
    /// through the guarded client; at most `limit` bytes of the answer are read.
    pub async fn fetch(
        &self,
        url: &str,
        headers: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<u8>, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        self.guard.check_url(&url).map_err(|e| e.0)?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            insert_header(&mut map, name, value)?;
        }
        let response = self
            .client
            .get(url)
            .headers(map)
            .send()
            .await
            .map_err(|e| classify(e).1)?;
        let status = response.status();
        let body = read_limited(response, limit).await;
        if !status.is_success() {
            return Err(format!("answered {}", status.as_u16()));
        }
        Ok(body)
    }

    /// Sends one request, authenticating as its auth details say. Never panics on what the
    /// endpoint answers.
    pub async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        let started = Instant::now();
        let scheme = request.url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        {
            return self.send_elsewhere(request, started).await;
        }
        let url = match self.parse_url(&request.url) {
            Ok(url) => url,
            Err(e) => return SendOutcome::failed("request", format!("bad URL: {e}"), started),
        };
        if let Err(e) = self.guard.check_url(&url) {
            return SendOutcome::failed("refused_target", e.0, started);
        }
        let mut outcome = self.send_once(request, &url, started, false).await;
        let is_oauth = request
            .auth
            .as_ref()
            .is_some_and(|a| a.auth_method == AuthMethod::Oauth);
        if is_oauth && outcome.status_code == Some(401) {
            // The endpoint no longer accepts our token: fetch a new one, once.
            outcome = self.send_once(request, &url, started, true).await;
        }
        outcome
    }

    /// A delivery whose `eventUrl` is not HTTP: a broker publish (credentials from
    /// `BASIC_AUTH`), or nothing for `poll:`, which its subscriber reads.
    async fn send_elsewhere(&self, request: &OutboundRequest, started: Instant) -> SendOutcome {
        use switchyard_core::destination::{self, Destination};
        let address = match destination::parse("eventUrl", &request.url) {
            Ok(Destination::Broker(address)) => address,
            Ok(Destination::Poll) => {
                return SendOutcome::failed(
                    "request",
                    "poll: is read by its subscriber, never pushed",
                    started,
                );
            }
            // `send` keeps http(s) URLs itself.
            Ok(Destination::Http(_)) => {
                return SendOutcome::failed("request", "an http URL routed as a broker's", started);
            }
            Err(e) => return SendOutcome::failed("request", e.to_string(), started),
        };
        let credentials = match &request.auth {
            None => crate::brokers::Credentials::default(),
            Some(auth) if auth.auth_method == AuthMethod::BasicAuth => {
                crate::brokers::Credentials {
                    user: auth.user_name.clone(),
                    password: auth.password.clone(),
                }
            }
            Some(_) => {
                return SendOutcome::failed(
                    "auth",
                    "a broker takes BASIC_AUTH credentials (userName and password; a NATS token as the password alone)",
                    started,
                );
            }
        };
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .cloned()
            .chain(
                request
                    .custom_headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .collect();
        let id = request
            .headers
            .iter()
            .find(|(name, _)| name == "webhook-id")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let message = crate::brokers::Message {
            id,
            body: &request.body,
            headers: &headers,
        };
        self.brokers.publish(&address, &credentials, &message).await
    }

    /// `url` parsed, from the cache when it was parsed before.
    fn parse_url(&self, url: &str) -> Result<reqwest::Url, url::ParseError> {
        let cached = self
            .urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned();
        if let Some(parsed) = cached {
            return Ok(parsed);
        }
        let parsed = reqwest::Url::parse(url)?;
        let mut urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        if urls.len() >= PARSED_URLS {
            urls.clear();
        }
        urls.insert(url.to_string(), parsed.clone());
        Ok(parsed)
    }

    async fn send_once(
        &self,
        request: &OutboundRequest,
        url: &reqwest::Url,
        started: Instant,
        fresh_token: bool,
    ) -> SendOutcome {
        let mut headers = HeaderMap::new();
        let pairs = request
            .custom_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .chain(request.headers.iter().map(|(k, v)| (k.as_str(), v.clone())));
        for (name, value) in pairs {
            if let Err(e) = insert_header(&mut headers, name, &value) {
                return SendOutcome::failed("request", e, started);
            }
        }
        if let Some(auth) = &request.auth {
            match self.auth_headers(auth, request, fresh_token).await {
                Ok(auth_headers) => {
                    for (name, value) in auth_headers {
                        if let Err(e) = insert_header(&mut headers, &name, &value) {
                            return SendOutcome::failed("request", e, started);
                        }
                    }
                }
                Err(outcome) => {
                    return SendOutcome {
                        latency: started.elapsed(),
                        ..outcome
                    };
                }
            }
        }
        let result = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(request.body.clone())
            .send()
            .await;
        match result {
            Ok(response) => read_outcome(response, started).await,
            Err(e) => {
                let (class, message) = classify(e);
                SendOutcome::failed(class, message, started)
            }
        }
    }

    /// The auth headers for a request, or the failed outcome when they cannot be made.
    async fn auth_headers(
        &self,
        auth: &AuthDetails,
        request: &OutboundRequest,
        fresh_token: bool,
    ) -> Result<Vec<(String, String)>, SendOutcome> {
        let header = auth.header_name().to_string();
        match auth.auth_method {
            AuthMethod::BasicAuth => {
                let user = auth.user_name.as_deref().unwrap_or("");
                let pass = auth.password.as_deref().unwrap_or("");
                let value = format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")));
                Ok(vec![(header, value)])
            }
            AuthMethod::Hmac => {
                let secret = auth.client_secret.as_deref().unwrap_or("");
                let timestamp = self.clock.now().as_second().to_string();
                let signature = walmart::sign(secret, &timestamp, &request.body);
                Ok(vec![
                    (header, signature),
                    (walmart::TIMESTAMP_HEADER.into(), timestamp),
                    (walmart::KEY_VERSION_HEADER.into(), "1".into()),
                ])
            }
            AuthMethod::Oauth => {
                let token = self.oauth_token(auth, request, fresh_token).await?;
                Ok(vec![(header, format!("Bearer {token}"))])
            }
        }
    }

    /// A cached token, or a new one from `authUrl`.
    async fn oauth_token(
        &self,
        auth: &AuthDetails,
        request: &OutboundRequest,
        fresh: bool,
    ) -> Result<String, SendOutcome> {
        let started = Instant::now();
        let auth_url = auth.auth_url.as_deref().unwrap_or("");
        let client_id = auth.client_id.as_deref().unwrap_or("");
        let key = request
            .token_cache_key
            .as_ref()
            .map(|k| format!("{k}|{auth_url}|{client_id}"));
        let now = self.clock.now();
        if let (Some(key), false) = (&key, fresh) {
            let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cached) = tokens.get(key)
                && now < cached.use_until
            {
                return Ok(cached.token.clone());
            }
        }
        self.fetch_token(auth, request, key, started, now)
            .instrument(tracing::info_span!(target: crate::trace_context::STAGE, "token_fetch"))
            .await
    }

    /// A new token from `authUrl` (the `token_fetch` stage), cached under `key`.
    async fn fetch_token(
        &self,
        auth: &AuthDetails,
        request: &OutboundRequest,
        key: Option<String>,
        started: Instant,
        now: Timestamp,
    ) -> Result<String, SendOutcome> {
        let auth_url = auth.auth_url.as_deref().unwrap_or("");
        let client_id = auth.client_id.as_deref().unwrap_or("");
        let fail = |message: String| SendOutcome::failed("auth", message, started);
        let url = reqwest::Url::parse(auth_url).map_err(|e| fail(format!("bad authUrl: {e}")))?;
        self.guard.check_url(&url).map_err(|e| {
            SendOutcome::failed("refused_target", format!("authUrl: {}", e.0), started)
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.custom_headers {
            insert_header(&mut headers, name, value).map_err(fail)?;
        }
        let response = self
            .client
            .post(url)
            .headers(headers)
            .basic_auth(client_id, auth.client_secret.as_deref())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| {
                let (class, message) = classify(e);
                let class = if class == "refused_target" {
                    class
                } else {
                    "auth"
                };
                SendOutcome::failed(class, format!("token request failed: {message}"), started)
            })?;
        let status = response.status();
        let body = read_limited(response, 64 * 1024).await;
        if !status.is_success() {
            return Err(fail(format!("token endpoint answered {}", status.as_u16())));
        }
        let parsed: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| fail("token endpoint answered no JSON".into()))?;
        let token = parsed
            .get("access_token")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("token answer has no access_token".into()))?
            .to_string();
        let expires_in = match parsed.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| fail("token answer has no valid expires_in".into()))?;
        if let Some(key) = key {
            // Stop using a token a little before it expires: 10% of its life, at most a minute.
            let margin = (expires_in * 0.1).min(60.0);
            let use_until = now
                .checked_add(SignedDuration::from_secs_f64(
                    (expires_in - margin).max(0.0),
                ))
                .unwrap_or(now);
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    key,
                    CachedToken {
                        token: token.clone(),
                        use_until,
                    },
                );
        }
        Ok(token)
    }
}

fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let value =
        HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
    headers.insert(name, value);
    Ok(())
}

/// Reads at most `limit` bytes of a response body.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    body
}

async fn read_outcome(response: reqwest::Response, started: Instant) -> SendOutcome {
    let status = response.status();
    let retry_after =
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        } else {
            None
        };
    let body = read_limited(response, RESPONSE_EXCERPT_BYTES).await;
    let latency = started.elapsed();
    let excerpt = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    let ok = status.is_success();
    SendOutcome {
        status_code: Some(status.as_u16()),
        latency,
        error_class: (!ok).then_some("http_status"),
        error_message: (!ok).then(|| format!("endpoint answered {}", status.as_u16())),
        response_excerpt: excerpt,
        retry_after,
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(value: &str) -> Option<SignedDuration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(SignedDuration::from_secs(secs.min(86400 * 30) as i64));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(
        at.duration_since(Timestamp::now())
            .max(SignedDuration::ZERO),
    )
}

/// Sorts a client error into an error class and a message without credentials.
fn classify(e: reqwest::Error) -> (&'static str, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(guard) = err.downcast_ref::<GuardError>() {
            return ("refused_target", guard.0.clone());
        }
        source = err.source();
    }
    // reqwest's messages name the URL; drop it, since a URL may carry credentials.
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    let class = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    (class, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(
            parse_retry_after("120"),
            Some(SignedDuration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SignedDuration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
