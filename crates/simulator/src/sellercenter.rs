//! SellerCenter (Falabella, Jumia, Linio, Zalora): the signed `GET /?Action=GetOrders&…` call
//! (`docs/orders-apis.md` §8, "What a simulator must imitate").
//!
//! - Every call needs `Action`, `UserID`, `Version`, `Timestamp` and `Signature`
//!   (`E001: Parameter … is mandatory` otherwise) and, as Falabella requires, a `User-Agent` of
//!   the form `<SellerId>/<Language>/<LanguageVersion>` (refused with `E001` too: what Falabella
//!   answers is unconfirmed). `Signature` must be the lowercase hex HMAC-SHA256, keyed by the
//!   configured `apiKey`, of every other parameter sorted by name, RFC 3986-encoded as
//!   `name=value` and joined with `&`, and `UserID` the configured `userId`: `E007: Login
//!   failed` otherwise. A `Timestamp` more than five minutes from now is `E003: Timestamp has
//!   expired`; an `Action` other than `GetOrders` is `E008: Invalid Action`.
//! - `GetOrders` needs `UpdatedAfter` or `CreatedAfter` (`E001`), filters `UpdatedAfter ≤
//!   UpdatedAt ≤ UpdatedBefore` and `CreatedAfter ≤ CreatedAt ≤ CreatedBefore` (ISO 8601; a bad
//!   date is `E017`), `Status` (an item status; `E036` for an unknown one), sorts by `SortBy`
//!   (`created_at`, the default, or `updated_at`; `E075` otherwise) in `SortDirection` (`DESC`,
//!   the default, or `ASC`; `E074`), ties by order id, and pages with `Offset` (default 0,
//!   `E014`) and `Limit` (default 100, `E019`; further capped by the configured page size).
//!   The E014–E075 codes are those of Jumia's GetOrders reference; the sort parameters' names
//!   and defaults are the legacy Lazada API's (both beyond the notes, unconfirmed).
//!   `Head.TotalCount` counts every order of the filters, whatever `Offset`.
//! - Answers follow `Format`: `JSON`, or XML (the default). JSON is written as SellerCenter's
//!   XML converts: counts as strings, one order as an object rather than a list, no orders as
//!   `""`, `Statuses` as `{"Status": …}` (all unconfirmed). Errors are `ErrorResponse` with
//!   HTTP 400 (the real status is unconfirmed); a throttled call is HTTP 429 with an
//!   `ErrorResponse` `E429` and no `Retry-After` (SellerCenter documents no rate limit).
//! - Orders render with `CreatedAt` / `UpdatedAt` as `YYYY-MM-DD HH:MM:SS` (UTC), `Statuses`
//!   from the status (a comma-separated status is several item statuses), `extra` merged.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::{Shared, SimOrder, merged, page, param, query_pairs};

const DEFAULT_LIMIT: usize = 100;
const STATUSES: [&str; 8] = [
    "pending",
    "canceled",
    "ready_to_ship",
    "delivered",
    "returned",
    "shipped",
    "failed",
    "return_waiting_for_approval",
];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/", get(call))
}

/// How an answer is written.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Xml,
}

fn render(format: Format, status: StatusCode, root: &str, value: Value) -> Response {
    match format {
        Format::Json => (status, axum::Json(json!({ root: value }))).into_response(),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            xml(root, &value, &mut out);
            (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                out,
            )
                .into_response()
        }
    }
}

/// `value` as the element `name`: objects nest, lists repeat the element.
fn xml(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| xml(name, v, out)),
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            // `Head` before `Body`, as SellerCenter writes them.
            let (head, rest): (Vec<_>, Vec<_>) = map.iter().partition(|(k, _)| *k == "Head");
            head.into_iter()
                .chain(rest)
                .for_each(|(k, v)| xml(k, v, out));
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An ISO 8601 time: with an offset, or without one (UTC), or a date alone (midnight UTC).
/// (Not `crate::parse_time`, which reads a date-time without an offset as its date's
/// midnight.)
fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let utc = |d: jiff::civil::DateTime| d.to_zoned(jiff::tz::TimeZone::UTC).ok();
    s.parse::<Timestamp>()
        .ok()
        .or_else(|| {
            s.parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(utc)
                .map(|z| z.timestamp())
        })
        .or_else(|| {
            s.parse::<jiff::civil::Date>()
                .ok()
                .filter(|_| s.len() == 10)
                .and_then(|d| utc(d.to_datetime(jiff::civil::Time::midnight())))
                .map(|z| z.timestamp())
        })
}

fn now_text() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

fn error(format: Format, status: StatusCode, action: &str, code: &str, message: &str) -> Response {
    render(
        format,
        status,
        "ErrorResponse",
        json!({
            "Head": {
                "RequestAction": action,
                "ErrorType": "Sender",
                "ErrorCode": code,
                "ErrorMessage": format!("{code}: {message}"),
            },
            "Body": "",
        }),
    )
}

/// RFC 3986 encoding: unreserved characters kept, everything else `%XX`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The documented signature over every parameter but `Signature`.
fn signature(key: &str, pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let message = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn user_agent_ok(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| {
            let parts: Vec<&str> = ua.split('/').collect();
            parts.len() == 3 && parts.iter().all(|p| !p.trim().is_empty())
        })
}

async fn call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    let format = match param(&pairs, "Format") {
        Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Xml,
    };
    let action = param(&pairs, "Action").unwrap_or_default().to_string();
    let refuse =
        |code: &str, message: &str| error(format, StatusCode::BAD_REQUEST, &action, code, message);
    for name in ["Action", "UserID", "Version", "Timestamp", "Signature"] {
        if param(&pairs, name).is_none_or(str::is_empty) {
            return refuse("E001", &format!("Parameter {name} is mandatory"));
        }
    }
    if !user_agent_ok(&headers) {
        return refuse(
            "E001",
            "Header User-Agent (<SellerId>/<Language>/<LanguageVersion>) is mandatory",
        );
    }
    let user = param(&pairs, "UserID").unwrap_or_default();
    let presented = param(&pairs, "Signature").unwrap_or_default();
    let key = shared.credential("apiKey");
    let expected = signature(&key, &pairs);
    if key.is_empty()
        || !ct_eq(user, &shared.credential("userId"))
        || expected.is_empty()
        || !ct_eq(&presented.to_ascii_lowercase(), &expected)
    {
        return refuse("E007", "Login failed. Signature mismatching");
    }
    let fresh = param(&pairs, "Timestamp")
        .and_then(parse_time)
        .is_some_and(|t| t.duration_since(Timestamp::now()).as_secs().abs() <= 300);
    if !fresh {
        return refuse("E003", "Timestamp has expired");
    }
    if shared.throttle() {
        // Not `Shared::too_many`, which writes JSON only: no `Retry-After` (none documented).
        return error(
            format,
            StatusCode::TOO_MANY_REQUESTS,
            &action,
            "E429",
            "Too many requests",
        );
    }
    if action != "GetOrders" {
        return refuse("E008", "Invalid Action");
    }
    get_orders(&shared, format, &pairs).unwrap_or_else(|(code, message)| refuse(code, &message))
}

type Refusal = (&'static str, String);

fn get_orders(
    shared: &Shared,
    format: Format,
    pairs: &[(String, String)],
) -> Result<Response, Refusal> {
    let time = |name: &str| -> Result<Option<Timestamp>, Refusal> {
        match param(pairs, name) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| ("E017", format!("\"{v}\" Invalid Date Format"))),
        }
    };
    let (updated_after, updated_before) = (time("UpdatedAfter")?, time("UpdatedBefore")?);
    let (created_after, created_before) = (time("CreatedAfter")?, time("CreatedBefore")?);
    if updated_after.is_none() && created_after.is_none() {
        return Err((
            "E001",
            "Either CreatedAfter or UpdatedAfter is mandatory".into(),
        ));
    }
    let number =
        |name: &str, default: usize, code: &'static str, what: &str| match param(pairs, name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| name != "Limit" || *n > 0)
                .ok_or_else(|| (code, format!("\"{v}\" Invalid {what}"))),
        };
    let limit = number("Limit", DEFAULT_LIMIT, "E019", "Limit")?;
    let offset = number("Offset", 0, "E014", "Offset")?;
    let status = param(pairs, "Status").filter(|s| !s.is_empty());
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(("E036", "Invalid status filter".into()));
    }
    let by_update = match param(pairs, "SortBy").unwrap_or("created_at") {
        "created_at" => false,
        "updated_at" => true,
        _ => return Err(("E075", "Invalid sort filter.".into())),
    };
    let descending = match param(pairs, "SortDirection").unwrap_or("DESC") {
        s if s.eq_ignore_ascii_case("DESC") => true,
        s if s.eq_ignore_ascii_case("ASC") => false,
        _ => return Err(("E074", "Invalid sort direction.".into())),
    };

    let mut found: Vec<SimOrder> = shared
        .changed(updated_after, updated_before)
        .into_iter()
        .filter(|o| created_after.is_none_or(|t| o.created_at >= t))
        .filter(|o| created_before.is_none_or(|t| o.created_at <= t))
        .filter(|o| status.is_none_or(|s| item_statuses(o).contains(&s)))
        .collect();
    found.sort_by(|a, b| {
        let key = |o: &SimOrder| {
            (
                if by_update {
                    o.updated_at
                } else {
                    o.created_at
                },
                o.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    if descending {
        found.reverse();
    }
    let limit = limit.min(shared.config().page_size.max(1));
    let (slice, _) = page(&found, offset, limit);
    let orders = match slice.len() {
        0 => json!(""),
        1 => json!({ "Order": render_order(&slice[0]) }),
        _ => json!({ "Order": slice.iter().map(render_order).collect::<Vec<_>>() }),
    };
    Ok(render(
        format,
        StatusCode::OK,
        "SuccessResponse",
        json!({
            "Head": {
                "RequestId": "",
                "RequestAction": "GetOrders",
                "ResponseType": "Orders",
                "Timestamp": now_text(),
                "TotalCount": found.len().to_string(),
            },
            "Body": { "Orders": orders },
        }),
    ))
}

fn item_statuses(order: &SimOrder) -> Vec<&str> {
    order
        .status
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn seller_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn render_order(order: &SimOrder) -> Value {
    let statuses = item_statuses(order);
    let status = match statuses.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let mut base = Map::new();
    for (k, v) in [
        ("OrderId", json!(order.id)),
        ("CustomerFirstName", json!("Ada")),
        ("CustomerLastName", json!("Lovelace")),
        ("OrderNumber", json!(format!("3{}", order.id))),
        ("PaymentMethod", json!("CashOnDelivery")),
        ("Remarks", json!("")),
        ("Price", json!("10.00")),
        ("GiftOption", json!("0")),
        ("CreatedAt", json!(seller_time(order.created_at))),
        ("UpdatedAt", json!(seller_time(order.updated_at))),
        ("ItemsCount", json!(statuses.len().max(1).to_string())),
        ("Statuses", json!({ "Status": status })),
    ] {
        base.insert(k.to_string(), v);
    }
    merged(Value::Object(base), &order.extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_repository_vector() {
        let pairs: Vec<(String, String)> = [
            ("UserID", "look@me.com"),
            ("Version", "1.0"),
            ("Action", "FeedList"),
            ("Format", "XML"),
            ("Timestamp", "2015-07-01T11:11:11+00:00"),
            ("Signature", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("b1bdb357ced10fe4e9a69840cdd4f0e9c03d77fe", &pairs),
            "3ceb8ed91049dfc718b0d2d176fb2ed0e5fd74f76c5971f34cdab48412476041"
        );
    }

    #[test]
    fn times_with_and_without_an_offset_parse() {
        let t: Timestamp = "2026-12-07T06:47:31Z".parse().expect("time");
        assert_eq!(parse_time("2026-12-07T06:47:31"), Some(t));
        assert_eq!(parse_time("2026-12-07 06:47:31"), Some(t));
        assert_eq!(parse_time("2026-12-07T06:47:31+00:00"), Some(t));
        assert_eq!(parse_time("2026-12-07T03:47:31-03:00"), Some(t));
        assert_eq!(
            parse_time("2026-12-07"),
            Some("2026-12-07T00:00:00Z".parse().expect("time"))
        );
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn xml_nests_objects_and_repeats_lists() {
        let mut out = String::new();
        xml(
            "Orders",
            &json!({"Order": [{"OrderId": "1", "Statuses": {"Status": ["a", "b&c"]}},
                              {"OrderId": "2"}]}),
            &mut out,
        );
        assert_eq!(
            out,
            "<Orders><Order><OrderId>1</OrderId><Statuses><Status>a</Status>\
             <Status>b&amp;c</Status></Statuses></Order><Order><OrderId>2</OrderId></Order>\
             </Orders>"
        );
    }
}
