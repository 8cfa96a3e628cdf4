//! Walmart Marketplace: `POST /v3/token` (client credentials) and `GET /v3/orders` by
//! last-modified window with `nextCursor` paging (`docs/orders-apis.md` §1).
//!
//! - The token endpoint takes `Authorization: Basic base64(clientId:clientSecret)` and a form
//!   body with `grant_type=client_credentials`; a wrong pair is 401 `invalid_client`. It answers
//!   `{access_token, token_type: "Bearer", expires_in: 900}`.
//! - `/v3/orders` needs `WM_SEC.ACCESS_TOKEN` (401 `UNAUTHORIZED` otherwise), and
//!   `WM_QOS.CORRELATION_ID` and `WM_SVC.NAME` (400 `MISSING_REQUEST_HEADER`). It filters
//!   `lastModifiedStartDate ≤ modified ≤ lastModifiedEndDate` (a date or a date-time), caps
//!   `limit` at 200 (default 100), and pages with a `nextCursor` that starts with `?` and
//!   carries `hasMoreElements=true&soIndex=…&poIndex=…` and the filters; the next request may
//!   come as `/v3/orders?limit=…` or `/v3/orders??limit=…`. A 429 has the `errors` body and no
//!   `Retry-After` (Walmart documents none).
//! - Orders render as `PurchaseOrderTypeV3`: one line whose status is the order's, dates in
//!   epoch milliseconds.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::{Shared, SimOrder, merged, page, param, parse_time, query_pairs};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/token", post(token))
        .route("/v3/orders", get(orders))
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errors": [{"code": code, "message": message,
            "category": "REQUEST", "severity": "ERROR"}]})),
    )
        .into_response()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            shared.credential("clientId"),
            shared.credential("clientSecret")
        ))
    );
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if presented != expected {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client",
                "error_description": "Invalid client credentials"})),
        )
            .into_response();
    }
    if param(&query_pairs(&body), "grant_type") != Some("client_credentials") {
        return errors(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "grant_type must be client_credentials",
        );
    }
    axum::Json(json!({
        "access_token": shared.issue_token(),
        "token_type": "Bearer",
        "expires_in": 900,
    }))
    .into_response()
}

async fn orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if !shared.token_valid(&header("WM_SEC.ACCESS_TOKEN")) {
        return errors(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED.GMP_GATEWAY_API",
            "Unauthorized",
        );
    }
    for required in ["WM_QOS.CORRELATION_ID", "WM_SVC.NAME"] {
        if header(required).is_empty() {
            return errors(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUEST_HEADER",
                &format!("{required} is required"),
            );
        }
    }
    if shared.throttle() {
        return shared.too_many(
            json!({"errors": [{"code": "TOO_MANY_REQUESTS", "message": "Too Many Requests",
                "category": "REQUEST", "severity": "ERROR"}]}),
            false,
        );
    }
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    // A bound that is not a date names itself.
    let time = |name: &'static str| -> Result<Option<jiff::Timestamp>, &'static str> {
        match param(&pairs, name) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or(name),
        }
    };
    let (since, until) = match (time("lastModifiedStartDate"), time("lastModifiedEndDate")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(name), _) | (_, Err(name)) => {
            return errors(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_PARAM",
                &format!("{name} is not a date"),
            );
        }
    };
    let limit = match param(&pairs, "limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=200).contains(&n) => n,
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_PARAM",
                "limit cannot be larger than 200",
            );
        }
    }
    .min(shared.config().page_size);
    let offset = param(&pairs, "soIndex")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let changed = shared.changed(since, until);
    let (slice, more) = page(&changed, offset, limit);
    let mut meta = json!({"totalCount": changed.len(), "limit": limit});
    if more {
        let mut cursor = format!(
            "?limit={limit}&hasMoreElements=true&soIndex={}&poIndex={}",
            offset + slice.len(),
            offset + slice.len()
        );
        for name in [
            "lastModifiedStartDate",
            "lastModifiedEndDate",
            "createdStartDate",
        ] {
            if let Some(v) = param(&pairs, name) {
                cursor += &format!("&{name}={}", encode(v));
            }
        }
        meta["nextCursor"] = json!(cursor);
    }
    axum::Json(json!({"list": {
        "meta": meta,
        "elements": {"order": slice.iter().map(render).collect::<Vec<Value>>()},
    }}))
    .into_response()
}

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

fn render(order: &SimOrder) -> Value {
    merged(
        json!({
            "purchaseOrderId": order.id,
            "customerOrderId": format!("C{}", order.id),
            "orderDate": order.created_at.as_millisecond(),
            "orderLines": {"orderLine": [{
                "lineNumber": "1",
                "statusDate": order.updated_at.as_millisecond(),
                "orderLineStatuses": {"orderLineStatus": [{
                    "status": order.status,
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"},
                }]},
            }]},
        }),
        &order.extra,
    )
}
