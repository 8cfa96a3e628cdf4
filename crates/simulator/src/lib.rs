//! Each marketplace's orders API, served on 127.0.0.1 from orders it is given, so that
//! reconciliation can be tried and tested without a marketplace account.
//!
//! Each module follows that marketplace's public documentation (`docs/orders-apis.md`, "What a
//! simulator must imitate"): its token endpoint and auth, its window filter, its paging and its
//! error bodies. None of it shares code with the hub's own clients
//! (`switchyard_marketplaces::*::orders`), so a client that misreads the documentation fails
//! against it instead of agreeing with itself.
//!
//! Beside the marketplace's routes, every simulator serves its own controls:
//! - `GET /_simulator/orders`, `PUT /_simulator/orders` (replace all), `POST /_simulator/orders`
//!   (add one, or replace the one with its `id`): [`SimOrder`]s.
//! - `PUT /_simulator/config`: a [`SimConfig`] (credentials, page size, 429s).
//! - `GET /_simulator/requests`: how many API calls it answered, and how many with 429.

// Handlers' helpers answer a refusal as the marketplace's own `Response`: its size is axum's.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod amazon;
pub mod ebay;
pub mod etsy;
pub mod flipkart;
pub mod sellercenter;
pub mod shopify;
pub mod tiktok;
pub mod walmart;

/// The marketplaces simulated, by the name `switchyard simulate orders --marketplace` takes
/// (the hub's source kinds).
pub const MARKETPLACES: [&str; 8] = [
    "amazon_sns",
    "ebay",
    "etsy",
    "tiktok",
    "walmart",
    "flipkart",
    "sellercenter",
    "shopify",
];

/// An order the simulated marketplace holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimOrder {
    pub id: String,
    /// The marketplace's own status name (`Created`, `Unshipped`, `AWAITING_SHIPMENT`, ...).
    pub status: String,
    pub created_at: Timestamp,
    /// When it last changed: what the window filters on.
    pub updated_at: Timestamp,
    /// Fields merged into the order as rendered (marketplace-specific).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub extra: Value,
}

/// How the simulated API behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// What it accepts, by the names the marketplace's module reads (`clientId`,
    /// `clientSecret`, `accessToken`, `appKey`, ...).
    pub credentials: Value,
    /// Orders per page, at most (the marketplace's own cap applies too).
    pub page_size: usize,
    /// Every Nth API call answers 429 (0: never).
    pub rate_limit_every: u64,
    /// Every API call answers 429.
    pub always_rate_limit: bool,
    /// Seconds sent in `Retry-After` with a 429, where the marketplace sends one (`None`: no
    /// header).
    pub retry_after: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            credentials: json!({}),
            page_size: 2,
            rate_limit_every: 0,
            always_rate_limit: false,
            retry_after: None,
        }
    }
}

/// What a simulator holds; each marketplace's routes read it.
#[derive(Debug, Default)]
pub struct Shared {
    config: RwLock<SimConfig>,
    orders: RwLock<Vec<SimOrder>>,
    calls: AtomicU64,
    throttled: AtomicU64,
    tokens: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(config: SimConfig, orders: Vec<SimOrder>) -> Arc<Shared> {
        Arc::new(Shared {
            config: RwLock::new(config),
            orders: RwLock::new(orders),
            ..Shared::default()
        })
    }

    pub fn config(&self) -> SimConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_config(&self, config: SimConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// A credential the simulated API expects, or `""`.
    pub fn credential(&self, name: &str) -> String {
        self.config()
            .credentials
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn orders(&self) -> Vec<SimOrder> {
        self.orders
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_orders(&self, orders: Vec<SimOrder>) {
        *self.orders.write().unwrap_or_else(|p| p.into_inner()) = orders;
    }

    /// Adds an order, or replaces the one with its id.
    pub fn put_order(&self, order: SimOrder) {
        let mut orders = self.orders.write().unwrap_or_else(|p| p.into_inner());
        match orders.iter_mut().find(|o| o.id == order.id) {
            Some(existing) => *existing = order,
            None => orders.push(order),
        }
    }

    /// The orders changed in `[since, until]` (either bound optional), oldest change first
    /// (ties by id), so pages are stable while nothing changes.
    pub fn changed(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Vec<SimOrder> {
        let mut found: Vec<SimOrder> = self
            .orders()
            .into_iter()
            .filter(|o| since.is_none_or(|s| o.updated_at >= s))
            .filter(|o| until.is_none_or(|u| o.updated_at <= u))
            .collect();
        found.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        found
    }

    /// Counts an API call; `true` when this one is to be answered 429.
    pub fn throttle(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let config = self.config();
        let limited = config.always_rate_limit
            || (config.rate_limit_every > 0 && n.is_multiple_of(config.rate_limit_every));
        if limited {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        }
        limited
    }

    /// A 429 with `body`, and `Retry-After` when configured and `with_retry_after`.
    pub fn too_many(&self, body: Value, with_retry_after: bool) -> Response {
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        if with_retry_after && let Some(secs) = self.config().retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }

    /// Issues an access token (kept until the simulator stops).
    pub fn issue_token(&self) -> String {
        let n = self.calls.load(Ordering::SeqCst);
        let token = format!(
            "sim-token-{}-{n}",
            hex::encode(Timestamp::now().as_nanosecond().to_be_bytes())
        );
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.clone());
        token
    }

    /// Whether `token` is one this simulator issued.
    pub fn token_valid(&self, token: &str) -> bool {
        !token.is_empty()
            && self
                .tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|t| t == token)
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The routes of one marketplace's orders API, with the simulator's controls.
pub fn router(marketplace: &str, shared: Arc<Shared>) -> Option<Router> {
    let api = match marketplace {
        "amazon_sns" | "amazon" => amazon::routes(),
        "ebay" => ebay::routes(),
        "etsy" => etsy::routes(),
        "tiktok" => tiktok::routes(),
        "walmart" => walmart::routes(),
        "flipkart" => flipkart::routes(),
        "sellercenter" => sellercenter::routes(),
        "shopify" => shopify::routes(),
        _ => return None,
    };
    Some(
        api.route(
            "/_simulator/orders",
            get(list_orders).put(replace_orders).post(add_order),
        )
        .route("/_simulator/config", get(show_config).put(replace_config))
        .route("/_simulator/requests", get(requests))
        .with_state(shared),
    )
}

async fn list_orders(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<SimOrder>> {
    axum::Json(shared.orders())
}

async fn replace_orders(
    State(shared): State<Arc<Shared>>,
    axum::Json(orders): axum::Json<Vec<SimOrder>>,
) -> StatusCode {
    shared.set_orders(orders);
    StatusCode::NO_CONTENT
}

async fn add_order(
    State(shared): State<Arc<Shared>>,
    axum::Json(order): axum::Json<SimOrder>,
) -> StatusCode {
    shared.put_order(order);
    StatusCode::NO_CONTENT
}

async fn show_config(State(shared): State<Arc<Shared>>) -> axum::Json<SimConfig> {
    axum::Json(shared.config())
}

async fn replace_config(
    State(shared): State<Arc<Shared>>,
    axum::Json(config): axum::Json<SimConfig>,
) -> StatusCode {
    shared.set_config(config);
    StatusCode::NO_CONTENT
}

async fn requests(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(json!({
        "calls": shared.calls(),
        "throttled": shared.throttled.load(Ordering::SeqCst),
    }))
}

/// A simulator serving on a port of its own until dropped.
pub struct Running {
    pub address: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// `http://127.0.0.1:port`: the `apiBaseUrl` to give a source.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `marketplace`'s orders API on `listen` (`127.0.0.1:0` for any free port).
pub async fn start(
    marketplace: &str,
    listen: &str,
    config: SimConfig,
    orders: Vec<SimOrder>,
) -> std::io::Result<Running> {
    let shared = Shared::new(config, orders);
    let app = router(marketplace, shared.clone()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "no orders API is simulated for {marketplace:?}; use one of {}",
                MARKETPLACES.join(", ")
            ),
        )
    })?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Running {
        address,
        shared,
        stop: Some(stop),
    })
}

/// The pairs of a raw query string, percent-decoded (`+` is a space); leading `?`s ignored.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `name` among `pairs`.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A time as a marketplace may write it: RFC 3339, a date alone (midnight UTC), or Unix
/// seconds.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Timestamp::from_second(secs).ok();
    }
    // `2026-12-05T10:30:15` without an offset, or a bare date (its midnight): UTC. The
    // date-time first: a `civil::Date` parse accepts a date-time and drops its time.
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The page of `items` starting at `offset`, at most `limit` long, and whether more follow.
pub fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> (Vec<T>, bool) {
    let limit = limit.max(1);
    let start = offset.min(items.len());
    let end = (start + limit).min(items.len());
    (items[start..end].to_vec(), end < items.len())
}

/// Merges `extra`'s fields into `base` (an object), for [`SimOrder::extra`].
pub fn merged(mut base: Value, extra: &Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_times_parse_in_each_form() {
        let pairs = query_pairs("??a=1%3A2&b=x+y&c");
        assert_eq!(param(&pairs, "a"), Some("1:2"));
        assert_eq!(param(&pairs, "b"), Some("x y"));
        assert_eq!(param(&pairs, "c"), Some(""));
        let t: Timestamp = "2026-12-05T00:00:00Z".parse().expect("time");
        assert_eq!(parse_time("2026-12-05"), Some(t));
        assert_eq!(parse_time("2026-12-05T00:00:00Z"), Some(t));
        assert_eq!(parse_time("2026-12-05T00:00:00"), Some(t));
        let later: Timestamp = "2026-12-05T06:47:31Z".parse().expect("time");
        assert_eq!(
            parse_time("2026-12-05T06:47:31"),
            Some(later),
            "not its midnight"
        );
        assert_eq!(parse_time(&t.as_second().to_string()), Some(t));
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<u32> = (0..5).collect();
        assert_eq!(page(&items, 0, 2), (vec![0, 1], true));
        assert_eq!(page(&items, 4, 2), (vec![4], false));
        assert_eq!(page(&items, 9, 2), (vec![], false));
    }
}
