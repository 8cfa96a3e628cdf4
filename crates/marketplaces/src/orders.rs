//! Each marketplace's orders API, for reconciliation: which orders changed in a time window,
//! and the events a webhook would have produced for them.
//!
//! Like the rest of this crate it does no I/O (sans-I/O): a module's [`OrdersApi`] builds each
//! request ([`ApiRequest`]) and reads each answer ([`ApiResponse`]); the hub's reconciler sends
//! them, keeps the token, retries what may be retried and compares what it reads with what the
//! hub already knows. So each client is tested without a network, and the same client runs
//! against the marketplace, its sandbox or `switchyard simulate orders`.
//!
//! What each module's requests rest on (the documentation read, what is unconfirmed) is in
//! `docs/orders-apis.md`.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::NativeEvent;

/// What a reconciliation run gives a marketplace's client.
#[derive(Debug, Clone)]
pub struct OrdersContext<'a> {
    /// `apiBaseUrl`, without a trailing `/`: the marketplace's production API unless the
    /// source names another (a sandbox, the simulator).
    pub base_url: &'a str,
    /// The source's reconcile credentials, opened (each module documents the names it reads).
    pub credentials: &'a Value,
    /// The reconcile options that are not secret (`marketplaceIds`, `shopId`, ...).
    pub options: &'a Value,
    /// The partner (seller) the source speaks for by default.
    pub partner_id: &'a str,
    /// The current time (injected), for signatures and timestamps.
    pub now: Timestamp,
    /// A fresh random string per request (correlation ids, nonces).
    pub nonce: &'a str,
}

impl OrdersContext<'_> {
    /// A credential, or the error naming it.
    pub fn credential(&self, name: &str) -> Result<&str, ApiError> {
        text(self.credentials, name)
            .ok_or_else(|| ApiError::Config(format!("credentials.{name} is required")))
    }

    /// An option, when set.
    pub fn option(&self, name: &str) -> Option<&str> {
        text(self.options, name)
    }
}

fn text<'v>(value: &'v Value, name: &str) -> Option<&'v str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The window asked for: orders changed at or after `since` and before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}

/// A request to send, exactly as built.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: &'static str,
    /// The whole URL, query included.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    pub fn get(url: String, headers: Vec<(String, String)>) -> ApiRequest {
        ApiRequest {
            method: "GET",
            url,
            headers,
            body: None,
        }
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or a `Protocol` error saying what came instead.
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::Protocol(format!(
                "HTTP {}: the answer is not JSON ({e}): {}",
                self.status,
                self.snippet()
            ))
        })
    }

    /// The start of the body, for an error message.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(200).collect()
    }

    /// What a non-2xx status means, as most APIs use them: 401/403 bad credentials, 429 a rate
    /// limit (with `Retry-After` in seconds when sent), 5xx and 408 transient, others a refusal.
    /// `None` for a 2xx.
    pub fn status_error(&self) -> Option<ApiError> {
        let s = self.status;
        let what = || format!("HTTP {s}: {}", self.snippet());
        match s {
            200..=299 => None,
            401 | 403 => Some(ApiError::Unauthorized(what())),
            429 => Some(ApiError::RateLimited {
                retry_after: self
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(|v| SignedDuration::from_secs_f64(v.min(3600.0))),
                message: what(),
            }),
            408 | 500..=599 => Some(ApiError::Transient(what())),
            _ => Some(ApiError::Refused(what())),
        }
    }
}

/// An access token, and how long it may be used.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    pub value: String,
    pub expires_in: Option<SignedDuration>,
    /// A new refresh token the answer carried (Etsy's rotate on every refresh): the caller
    /// stores it in place of the one it sent, which no longer works.
    pub refresh_token: Option<String>,
}

/// One page of the orders changed in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub orders: Vec<ApiOrder>,
    /// Where the next page is: the module's own form (a cursor, a URL, an offset), given back
    /// to [`OrdersApi::page_request`]; `None` on the last page.
    pub next: Option<String>,
}

/// An order as the API reports it, with what a webhook would have announced of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiOrder {
    pub order_id: String,
    /// The marketplace's own status of the order, as the API names it.
    pub status: String,
    /// When the order last changed, as the API says.
    pub updated_at: Option<Timestamp>,
    /// The events a webhook would have produced for the order as it now stands, oldest first:
    /// each in the marketplace's own webhook form (native type, payload), so that it is
    /// normalized, deduplicated and delivered like a received one. A status no webhook
    /// announces makes none.
    pub events: Vec<NativeEvent>,
}

/// Why a call did not give a page.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The source's reconcile settings cannot make the call (a credential missing).
    #[error("reconcile settings: {0}")]
    Config(String),
    /// The marketplace refused the credentials (401, 403, or its own code for it).
    #[error("credentials refused: {0}")]
    Unauthorized(String),
    /// Too many requests; wait `retry_after` when the marketplace says.
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<SignedDuration>,
        message: String,
    },
    /// A failure worth retrying (5xx, a timeout, a connection reset).
    #[error("transient failure: {0}")]
    Transient(String),
    /// The marketplace refused the request (another 4xx, or its error code).
    #[error("refused: {0}")]
    Refused(String),
    /// The answer is not what the documentation describes.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ApiError {
    /// The short code a run's errors and the metrics carry.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Config(_) => "config",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Transient(_) => "transient",
            ApiError::Refused(_) => "refused",
            ApiError::Protocol(_) => "protocol",
        }
    }

    /// Whether sending the same request again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, ApiError::RateLimited { .. } | ApiError::Transient(_))
    }
}

/// A marketplace's orders API, request by request. Implementations are stateless: the caller
/// keeps the token and the paging position.
pub trait OrdersApi: Sync {
    /// The production API's base URL.
    fn default_base_url(&self) -> &'static str;

    /// The credential names the client reads (all of them write-only at the API).
    fn credential_names(&self) -> &'static [&'static str];

    /// The option names it requires, beyond the credentials (`[]` when none).
    fn required_options(&self) -> &'static [&'static str] {
        &[]
    }

    /// The request that gets an access token, or `None` when the credentials are used as they
    /// are (a long-lived token, a signature per request).
    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError>;

    /// Reads the token endpoint's answer; the default reads an OAuth 2 token answer
    /// (`{access_token, expires_in}`, errors by status), which every API here with a token
    /// endpoint gives. Never called when [`OrdersApi::token_request`] asks for none.
    fn read_token(
        &self,
        ctx: &OrdersContext,
        response: &ApiResponse,
    ) -> Result<AccessToken, ApiError> {
        let _ = ctx;
        oauth_token(response)
    }

    /// The request for one page: the first when `next` is `None`, else the one
    /// [`Page::next`] named.
    fn page_request(
        &self,
        ctx: &OrdersContext,
        token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError>;

    /// Reads one page. An error the marketplace reports inside a 2xx answer is an error here.
    fn read_page(
        &self,
        ctx: &OrdersContext,
        window: Window,
        response: &ApiResponse,
    ) -> Result<Page, ApiError>;

    /// Reads the page that [`OrdersApi::page_request`] asked for with `next`: what the caller
    /// calls. The default reads it with [`OrdersApi::read_page`], for the APIs whose answer
    /// says where the next page is; a module whose next cursor depends on the request it
    /// answers (Flipkart's, whose searches follow one another) reads `next` here.
    fn read_page_of(
        &self,
        ctx: &OrdersContext,
        window: Window,
        next: Option<&str>,
        response: &ApiResponse,
    ) -> Result<Page, ApiError> {
        let _ = next;
        self.read_page(ctx, window, response)
    }
}

/// The fact an order event states, by which a webhook and a reconciliation that say the same
/// thing are one event: an order's creation (whatever status or form announced it), or its
/// topic with its status. `None` for events about no order.
pub fn fact_of(topic: Option<&str>, status: Option<&str>) -> String {
    match topic {
        Some("order.created") => "order.created".into(),
        Some(topic) => format!("{topic}|{}", status.unwrap_or_default()),
        None => format!("|{}", status.unwrap_or_default()),
    }
}

/// `application/x-www-form-urlencoded` pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::util::percent_encode(k),
                crate::util::percent_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL with a query string of `pairs`, percent-encoded.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        url.to_string()
    } else {
        format!("{url}?{}", form(pairs))
    }
}

/// A time as ISO 8601 in UTC, to the second (`2026-12-05T10:30:15Z`).
pub fn iso_seconds(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `expires_in` field of an OAuth token answer.
pub fn expires_in(body: &Value) -> Option<SignedDuration> {
    body.get("expires_in")
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|s| *s > 0)
        .map(SignedDuration::from_secs)
}

/// Reads a standard OAuth token answer (`access_token`, `expires_in`).
pub fn oauth_token(response: &ApiResponse) -> Result<AccessToken, ApiError> {
    if let Some(e) = response.status_error() {
        // A token endpoint's 400 (`invalid_client`, `invalid_grant`) is a credentials problem.
        return Err(match e {
            ApiError::Refused(m) => ApiError::Unauthorized(m),
            other => other,
        });
    }
    let body = response.json()?;
    let value = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::Protocol("the token answer has no access_token".into()))?;
    Ok(AccessToken {
        value: value.to_string(),
        expires_in: expires_in(&body),
        refresh_token: body
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creation_is_one_fact_whatever_announced_it() {
        assert_eq!(
            fact_of(Some("order.created"), Some("PO_CREATED")),
            fact_of(Some("order.created"), None)
        );
        assert_ne!(
            fact_of(Some("order.updated"), Some("Shipped")),
            fact_of(Some("order.updated"), Some("Delivered"))
        );
    }

    #[test]
    fn status_errors_follow_the_common_meanings() {
        let answer = |status, headers: Vec<(String, String)>| ApiResponse {
            status,
            headers,
            body: b"{}".to_vec(),
        };
        assert_eq!(answer(200, vec![]).status_error(), None);
        assert!(matches!(
            answer(401, vec![]).status_error(),
            Some(ApiError::Unauthorized(_))
        ));
        match answer(429, vec![("retry-after".into(), "3".into())]).status_error() {
            Some(ApiError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Some(SignedDuration::from_secs(3)))
            }
            other => panic!("{other:?}"),
        }
        match answer(429, vec![]).status_error() {
            Some(ApiError::RateLimited { retry_after, .. }) => assert_eq!(retry_after, None),
            other => panic!("{other:?}"),
        }
        assert!(answer(503, vec![]).status_error().unwrap().retryable());
        assert!(!answer(404, vec![]).status_error().unwrap().retryable());
    }
}
