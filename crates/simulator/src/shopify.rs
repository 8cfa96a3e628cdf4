//! Shopify: the REST Admin API order list, `GET /admin/api/{version}/orders.json`, with cursor
//! paging in the `Link` header (`docs/orders-apis.md` §7, "What a simulator must imitate").
//!
//! - `X-Shopify-Access-Token` must be the configured `accessToken`: otherwise 401
//!   `{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
//!   password)"}` (the notes only say "an errors body"; the wording is Shopify's usual one,
//!   unconfirmed here). `{version}` is `YYYY-MM` or `unstable` (404 `{"errors": "Not Found"}`
//!   otherwise).
//! - The first page filters `updated_at_min ≤ updated_at ≤ updated_at_max` (ISO 8601, either
//!   optional) and `status` (`open` by default, `closed`, `cancelled`, `any`), and
//!   `financial_status` (exact, default `any`); `limit` is 1..=250, default 50, further capped
//!   by the configured page size. A bad value is 400 `{"errors": {"<param>": "…"}}` (the
//!   simulator's; what Shopify answers for a bad date or limit is unconfirmed).
//! - While more remain, `Link: <http://{host}/admin/api/{version}/orders.json?limit=N&
//!   page_info=…>; rel="next"` (and `rel="previous"` after the first page). `page_info` is
//!   opaque (the filters and an offset); beside it only `limit` and `fields` may be sent, any
//!   other parameter is 400 `{"errors": {"<param>": "<param> cannot be passed when page_info
//!   is present"}}`.
//! - A leaky bucket of 40 calls leaking 2 a second: every answer carries
//!   `X-Shopify-Shop-Api-Call-Limit: n/40`, a full bucket is 429 with `Retry-After: 2.0`. The
//!   configured throttling (`rate_limit_every`, `always_rate_limit`) is 429 too, with the
//!   configured `Retry-After`. The 429 body's wording is Shopify's usual one (unconfirmed).
//! - Orders render as Shopify orders with times in a shop time zone of UTC−5: `id` (a number
//!   when the id is one), `admin_graphql_api_id`, `name`, `created_at`, `updated_at`,
//!   `financial_status`, `fulfillment_status`, `cancelled_at`, `closed_at`. The status maps as:
//!   `cancelled` → `cancelled_at` set, `voided`; `closed` → `closed_at` set, `paid` and
//!   `fulfilled`; `fulfilled` / `partial` → that fulfillment status, `paid`; `open` →
//!   `pending`; anything else is the financial status (`paid`, `pending`, `refunded`, ...).
//!   `extra` is merged last, and the `status` filter reads the merged order.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Shared, SimOrder, merged, page, param, query_pairs};

const BUCKET_SIZE: f64 = 40.0;
const LEAK_PER_SECOND: f64 = 2.0;
const MAX_LIMIT: usize = 250;
const DEFAULT_LIMIT: usize = 50;
/// The parameters allowed beside `page_info`.
const WITH_PAGE_INFO: [&str; 3] = ["page_info", "limit", "fields"];

/// The shop's leaky bucket (one per simulator: [`routes`] makes it).
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    /// Leaks, then takes one call if it fits; the level after, and whether it fit.
    fn take(&mut self) -> (f64, bool) {
        let now = Instant::now();
        let leaked = now.duration_since(self.at).as_secs_f64() * LEAK_PER_SECOND;
        self.level = (self.level - leaked).max(0.0);
        self.at = now;
        if self.level + 1.0 > BUCKET_SIZE {
            (self.level, false)
        } else {
            self.level += 1.0;
            (self.level, true)
        }
    }
}

pub fn routes() -> Router<Arc<Shared>> {
    let bucket = Arc::new(Mutex::new(Bucket {
        level: 0.0,
        at: Instant::now(),
    }));
    Router::new().route(
        "/admin/api/{version}/orders.json",
        get(
            move |state: State<Arc<Shared>>,
                  path: Path<String>,
                  headers: HeaderMap,
                  query: RawQuery| {
                let bucket = bucket.clone();
                async move { orders(state, path, headers, query, bucket).await }
            },
        ),
    )
}

fn errors(status: StatusCode, errors: Value) -> Response {
    (status, axum::Json(json!({ "errors": errors }))).into_response()
}

fn param_error(name: &str, message: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, json!({ name: message }))
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn version_ok(version: &str) -> bool {
    let b = version.as_bytes();
    version == "unstable"
        || (b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()))
}

async fn orders(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    bucket: Arc<Mutex<Bucket>>,
) -> Response {
    let (level, fits) = bucket.lock().unwrap_or_else(|p| p.into_inner()).take();
    let mut response = answer(&shared, &version, &headers, query.as_deref(), fits);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", level.ceil() as u64, BUCKET_SIZE)) {
        response
            .headers_mut()
            .insert("x-shopify-shop-api-call-limit", v);
    }
    response
}

const THROTTLED: &str = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted \
     service.";

/// What the filters of a first page were, carried in `page_info` to the later ones.
struct Filters {
    min: Option<Timestamp>,
    max: Option<Timestamp>,
    status: String,
    financial: String,
}

fn answer(
    shared: &Shared,
    version: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    fits: bool,
) -> Response {
    if !version_ok(version) {
        return errors(StatusCode::NOT_FOUND, json!("Not Found"));
    }
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = shared.credential("accessToken");
    if token.is_empty() || expected.is_empty() || !ct_eq(token, &expected) {
        return errors(
            StatusCode::UNAUTHORIZED,
            json!("[API] Invalid API key or access token (unrecognized login or wrong password)"),
        );
    }
    if shared.throttle() {
        return shared.too_many(json!({ "errors": THROTTLED }), true);
    }
    if !fits {
        let mut response = errors(StatusCode::TOO_MANY_REQUESTS, json!(THROTTLED));
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("2.0"));
        return response;
    }
    let pairs = query_pairs(query.unwrap_or_default());
    let limit = match param(&pairs, "limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return param_error("limit", "must be between 1 and 250"),
    };
    let (filters, offset) = match param(&pairs, "page_info") {
        Some(info) => {
            if let Some((name, _)) = pairs
                .iter()
                .find(|(k, _)| !WITH_PAGE_INFO.contains(&k.as_str()))
            {
                return param_error(
                    name,
                    &format!("{name} cannot be passed when page_info is present"),
                );
            }
            match read_page_info(info) {
                Some(read) => read,
                None => return param_error("page_info", "Invalid value."),
            }
        }
        None => {
            let time = |name: &str| match param(&pairs, name) {
                None | Some("") => Ok(None),
                Some(v) => parse_time(v).map(Some).ok_or(()),
            };
            let (Ok(min), Ok(max)) = (time("updated_at_min"), time("updated_at_max")) else {
                return param_error("updated_at", "must be an ISO 8601 date-time");
            };
            let status = param(&pairs, "status").unwrap_or("open").to_string();
            if !matches!(status.as_str(), "open" | "closed" | "cancelled" | "any") {
                return param_error("status", "must be open, closed, cancelled or any");
            }
            let filters = Filters {
                min,
                max,
                status,
                financial: param(&pairs, "financial_status")
                    .unwrap_or("any")
                    .to_string(),
            };
            (filters, 0)
        }
    };
    let limit = limit.min(shared.config().page_size.max(1));
    let matching: Vec<Value> = shared
        .changed(filters.min, filters.max)
        .iter()
        .map(render)
        .filter(|o| keeps(&filters, o))
        .collect();
    let (slice, more) = page(&matching, offset, limit);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let link = |offset: usize, rel: &str| {
        format!(
            "<http://{host}/admin/api/{version}/orders.json?limit={limit}&page_info={}>; \
             rel=\"{rel}\"",
            page_info(&filters, offset)
        )
    };
    let mut links = Vec::new();
    if offset > 0 {
        links.push(link(offset.saturating_sub(limit), "previous"));
    }
    if more {
        links.push(link(offset + slice.len(), "next"));
    }
    let mut response = axum::Json(json!({ "orders": slice })).into_response();
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", v);
    }
    response
}

fn page_info(filters: &Filters, offset: usize) -> String {
    let data = json!({
        "min": filters.min.map(|t| t.to_string()),
        "max": filters.max.map(|t| t.to_string()),
        "status": filters.status,
        "financial": filters.financial,
        "offset": offset,
    });
    URL_SAFE_NO_PAD.encode(data.to_string())
}

fn read_page_info(info: &str) -> Option<(Filters, usize)> {
    let data: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(info).ok()?).ok()?;
    let time = |name: &str| match data.get(name) {
        Some(Value::String(s)) => s.parse::<Timestamp>().ok().map(Some),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    let text = |name: &str| data.get(name).and_then(Value::as_str).map(String::from);
    Some((
        Filters {
            min: time("min")?,
            max: time("max")?,
            status: text("status")?,
            financial: text("financial")?,
        },
        usize::try_from(data.get("offset")?.as_u64()?).ok()?,
    ))
}

fn set(order: &Value, name: &str) -> bool {
    order.get(name).is_some_and(|v| !v.is_null())
}

/// Whether a rendered order passes the `status` and `financial_status` filters.
fn keeps(filters: &Filters, order: &Value) -> bool {
    let status = match filters.status.as_str() {
        "open" => !set(order, "cancelled_at") && !set(order, "closed_at"),
        "closed" => set(order, "closed_at"),
        "cancelled" => set(order, "cancelled_at"),
        _ => true,
    };
    status
        && (filters.financial == "any"
            || order.get("financial_status").and_then(Value::as_str)
                == Some(filters.financial.as_str()))
}

/// A time as the reference writes it (`2014-04-25T16:15:47-04:00`); without an offset, in the
/// shop's time zone. (Not `crate::parse_time`, which reads a date-time without an offset as
/// its date's midnight.)
fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    s.parse::<Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|d| d.to_zoned(shop_zone()).ok())
            .map(|z| z.timestamp())
    })
}

fn shop_zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::fixed(jiff::tz::offset(-5))
}

/// A time as Shopify writes it, in the shop's time zone (here UTC−5).
fn shop_time(t: Timestamp) -> String {
    t.to_zoned(shop_zone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn render(order: &SimOrder) -> Value {
    let at = json!(shop_time(order.updated_at));
    let (financial, fulfillment, cancelled_at, closed_at) =
        match order.status.to_ascii_lowercase().as_str() {
            "cancelled" | "canceled" => ("voided", Value::Null, at.clone(), Value::Null),
            "closed" => ("paid", json!("fulfilled"), Value::Null, at.clone()),
            "fulfilled" => ("paid", json!("fulfilled"), Value::Null, Value::Null),
            "partial" => ("paid", json!("partial"), Value::Null, Value::Null),
            "open" => ("pending", Value::Null, Value::Null, Value::Null),
            _ => (order.status.as_str(), Value::Null, Value::Null, Value::Null),
        };
    let id = order
        .id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(order.id));
    merged(
        json!({
            "id": id,
            "admin_graphql_api_id": format!("gid://shopify/Order/{}", order.id),
            "name": format!("#{}", order.id),
            "created_at": shop_time(order.created_at),
            "updated_at": shop_time(order.updated_at),
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "cancelled_at": cancelled_at,
            "cancel_reason": if cancelled_at.is_null() { Value::Null } else { json!("customer") },
            "closed_at": closed_at,
            "currency": "USD",
            "total_price": "10.00",
        }),
        &order.extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_info_keeps_the_filters() {
        let filters = Filters {
            min: Some("2026-12-05T00:00:00Z".parse().expect("time")),
            max: None,
            status: "any".into(),
            financial: "paid".into(),
        };
        let (read, offset) = read_page_info(&page_info(&filters, 4)).expect("reads");
        assert_eq!(offset, 4);
        assert_eq!(read.min, filters.min);
        assert_eq!(read.max, None);
        assert_eq!(read.status, "any");
        assert_eq!(read.financial, "paid");
        assert!(read_page_info("not-base64!").is_none());
    }

    #[test]
    fn versions_and_times_render_as_shopify_writes_them() {
        assert!(version_ok("2026-07"));
        assert!(version_ok("unstable"));
        assert!(!version_ok("2026-7"));
        assert_eq!(
            shop_time("2026-12-05T11:00:00Z".parse().expect("time")),
            "2026-12-05T06:00:00-05:00"
        );
        let t = Some("2026-12-05T11:30:15Z".parse().expect("time"));
        assert_eq!(parse_time("2026-12-05T06:30:15-05:00"), t);
        assert_eq!(parse_time("2026-12-05T11:30:15+00:00"), t);
        assert_eq!(parse_time("2026-12-05T06:30:15"), t, "the shop's zone");
        assert_eq!(parse_time("later"), None);
    }
}
