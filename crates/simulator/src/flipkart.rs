//! Flipkart Marketplace Seller API: the client-credentials token (`GET
//! /oauth-service/oauth/token`) and the v3 shipments search (`POST /sellers/v3/shipments/filter/`,
//! then `GET /sellers/v3/shipments/filter?next_token=…`), as `docs/orders-apis.md` §6 ("What a
//! simulator must imitate") describes them.
//!
//! - The token endpoint takes `Authorization: Basic base64(appId:appSecret)` and
//!   `grant_type=client_credentials` in the query (`scope`, when sent, must be `Seller_Api`); a
//!   wrong pair is 401 `{"error":"unauthorized","error_description":"Bad credentials"}`, a wrong
//!   grant 400 `invalid_grant`. It answers `{access_token, token_type: "bearer", expires_in:
//!   5183999, scope: "Seller_Api"}`. (`POST` is answered the same; Flipkart documents `GET`.)
//! - The search needs `Authorization: Bearer <a token it issued>`: 401
//!   `{"error":"invalid_token",…}` otherwise (the body is the simulator's; Flipkart documents
//!   only the status). A throttled call is 429 with no `Retry-After` (Flipkart documents
//!   neither).
//! - `filter.type` ∈ `preDispatch`, `postDispatch`, `cancelled` and `filter.states` (non-empty)
//!   must fit it: `APPROVED`, `PACKING_IN_PROGRESS`, `PACKED`, `FORM_FAILED`,
//!   `READY_TO_DISPATCH` for preDispatch; `SHIPPED`, `DELIVERED`, `PICKUP_COMPLETE` for
//!   postDispatch; `CANCELLED` for cancelled (unconfirmed), which also needs `cancellationType`
//!   ∈ `sellerCancellation`, `buyerCancellation`, `marketplaceCancellation`. `hold` (preDispatch
//!   only) defaults to `false`, as Flipkart documents: held shipments are only found with
//!   `hold: true`. Anything else is 400 `{"code":"BAD_REQUEST","message"}` (the simulator's
//!   shape).
//! - `filter.modifiedDate.{from,to}` keep `from ≤ updatedAt ≤ to`; `sort.field`
//!   (`modifiedDate` by default, or `orderDate`, `dispatchByDate`, `dispatchAfterDate`) and
//!   `sort.order` (`asc` by default, or `desc`) order them; `pagination.pageSize` (default 20,
//!   at least 1) is capped by the configured page size.
//! - `hasMore: true` comes with `nextPageUrl: "/v3/shipments/filter?next_token=<opaque>"`
//!   (relative to `/sellers`); the token carries the search and the offset, and a `GET` on it
//!   answers the next page in the same shape.
//! - Each order is one shipment `SHP-<id>` with one item `<id>-1` of order `<id>` whose status is
//!   the order's; times are written in India time (`+05:30`) as Flipkart's examples are. From
//!   `extra`: `hold` (bool) puts a pre-dispatch shipment on hold, `cancellationType` says which
//!   cancelled search finds a cancelled one (default `buyerCancellation`); `extra` is merged
//!   into the shipment as rendered (so it may replace `orderItems`). Orders whose status no
//!   search takes (`RETURNED`, `COMPLETED`, ...) are never found.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::{Shared, SimOrder, merged, page, param, parse_time, query_pairs};

const SEARCH: &str = "/sellers/v3/shipments/filter";
const PRE_DISPATCH: [&str; 5] = [
    "APPROVED",
    "PACKING_IN_PROGRESS",
    "PACKED",
    "FORM_FAILED",
    "READY_TO_DISPATCH",
];
const POST_DISPATCH: [&str; 3] = ["SHIPPED", "DELIVERED", "PICKUP_COMPLETE"];
const CANCELLATION_TYPES: [&str; 3] = [
    "sellerCancellation",
    "buyerCancellation",
    "marketplaceCancellation",
];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth-service/oauth/token", get(token).post(token))
        .route(SEARCH, get(next_page).post(search))
        .route("/sellers/v3/shipments/filter/", get(next_page).post(search))
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    json_answer(
        StatusCode::BAD_REQUEST,
        json!({"code": "BAD_REQUEST", "message": message}),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let app_id = shared.credential("appId");
    let app_secret = shared.credential("appSecret");
    let expected = format!("{app_id}:{app_secret}");
    let presented = header(&headers, "authorization")
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .unwrap_or_default();
    if app_id.is_empty() || presented != expected.as_bytes() {
        return json_answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "error_description": "Bad credentials"}),
        );
    }
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    if param(&pairs, "grant_type") != Some("client_credentials") {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant",
                "error_description": "grant_type must be client_credentials"}),
        );
    }
    if param(&pairs, "scope").is_some_and(|s| s != "Seller_Api") {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_scope", "error_description": "Invalid scope"}),
        );
    }
    axum::Json(json!({
        "access_token": shared.issue_token(),
        "token_type": "bearer",
        "expires_in": 5183999,
        "scope": "Seller_Api",
    }))
    .into_response()
}

/// The bearer check and the throttle every search call goes through.
fn admit(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = header(headers, "authorization")
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    if !shared.token_valid(token) {
        return Some(json_answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token",
                "error_description": "Invalid or expired access token"}),
        ));
    }
    if shared.throttle() {
        return Some(shared.too_many(
            json!({"error": "too_many_requests", "error_description": "Rate limit exceeded"}),
            false,
        ));
    }
    None
}

async fn search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = admit(&shared, &headers) {
        return refused;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(request @ Value::Object(_)) => answer(&shared, &request, 0),
        _ => bad_request("the body is not a JSON object"),
    }
}

async fn next_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = admit(&shared, &headers) {
        return refused;
    }
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    let state = param(&pairs, "next_token")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let offset = state
        .as_ref()
        .and_then(|s| s.get("offset"))
        .and_then(Value::as_u64);
    match (state.as_ref().and_then(|s| s.get("search")), offset) {
        (Some(request), Some(offset)) => answer(&shared, request, offset as usize),
        _ => bad_request("next_token is missing or invalid"),
    }
}

/// What a search asks for, checked.
struct Filter {
    kind: String,
    states: Vec<String>,
    hold: bool,
    cancellation: Option<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    size: usize,
    sort_field: String,
    descending: bool,
}

fn read_filter(request: &Value) -> Result<Filter, String> {
    let filter = request
        .get("filter")
        .filter(|f| f.is_object())
        .ok_or("filter is required")?;
    let kind = filter
        .get("type")
        .and_then(Value::as_str)
        .ok_or("filter.type is required")?;
    let allowed: &[&str] = match kind {
        "preDispatch" => &PRE_DISPATCH,
        "postDispatch" => &POST_DISPATCH,
        "cancelled" => &["CANCELLED"],
        _ => return Err("filter.type must be preDispatch, postDispatch or cancelled".into()),
    };
    let states: Vec<String> = match filter.get("states").and_then(Value::as_array) {
        Some(states) if !states.is_empty() => states
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("filter.states must be strings")?,
        _ => return Err("filter.states is required".into()),
    };
    if let Some(wrong) = states.iter().find(|s| !allowed.contains(&s.as_str())) {
        return Err(format!("state {wrong} is not valid for type {kind}"));
    }
    let hold = match filter.get("hold") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("filter.hold must be a boolean".into()),
    };
    let cancellation = match (kind, filter.get("cancellationType").and_then(Value::as_str)) {
        ("cancelled", Some(t)) if CANCELLATION_TYPES.contains(&t) => Some(t.to_string()),
        ("cancelled", _) => {
            return Err(
                "filter.cancellationType is required for type cancelled and must be \
                        sellerCancellation, buyerCancellation or marketplaceCancellation"
                    .into(),
            );
        }
        _ => None,
    };
    let bound = |name: &str| -> Result<Option<Timestamp>, String> {
        match filter.get("modifiedDate").and_then(|d| d.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(parse_time)
                .map(Some)
                .ok_or(format!("filter.modifiedDate.{name} is not a date-time")),
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    let size = match request.pointer("/pagination/pageSize") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n as usize,
            _ => return Err("pagination.pageSize must be a positive integer".into()),
        },
    };
    let sort_field = request
        .pointer("/sort/field")
        .and_then(Value::as_str)
        .unwrap_or("modifiedDate");
    if ![
        "modifiedDate",
        "orderDate",
        "dispatchByDate",
        "dispatchAfterDate",
    ]
    .contains(&sort_field)
    {
        return Err(format!("sort.field {sort_field} is not valid"));
    }
    let descending = match request.pointer("/sort/order").and_then(Value::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("sort.order {other} is not valid")),
    };
    Ok(Filter {
        kind: kind.to_string(),
        states,
        hold,
        cancellation,
        from,
        to,
        size,
        sort_field: sort_field.to_string(),
        descending,
    })
}

fn extra_bool(order: &SimOrder, name: &str) -> bool {
    order
        .extra
        .get(name)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn cancellation_type(order: &SimOrder) -> &str {
    order
        .extra
        .get("cancellationType")
        .and_then(Value::as_str)
        .unwrap_or("buyerCancellation")
}

/// Whether the search `filter` finds `order` (its time bound aside).
fn finds(filter: &Filter, order: &SimOrder) -> bool {
    let status = order.status.as_str();
    if !filter.states.iter().any(|s| s == status) {
        return false;
    }
    match filter.kind.as_str() {
        "preDispatch" => PRE_DISPATCH.contains(&status) && extra_bool(order, "hold") == filter.hold,
        "postDispatch" => POST_DISPATCH.contains(&status),
        _ => {
            status == "CANCELLED"
                && filter.cancellation.as_deref() == Some(cancellation_type(order))
        }
    }
}

fn dispatch_after(order: &SimOrder) -> Timestamp {
    order.created_at + SignedDuration::from_hours(1)
}

fn dispatch_by(order: &SimOrder) -> Timestamp {
    order.created_at + SignedDuration::from_hours(48)
}

/// The page of `request` from `offset`.
fn answer(shared: &Shared, request: &Value, offset: usize) -> Response {
    let filter = match read_filter(request) {
        Ok(filter) => filter,
        Err(message) => return bad_request(&message),
    };
    let mut found: Vec<SimOrder> = shared
        .changed(filter.from, filter.to)
        .into_iter()
        .filter(|o| finds(&filter, o))
        .collect();
    let key = |o: &SimOrder| match filter.sort_field.as_str() {
        "orderDate" => o.created_at,
        "dispatchByDate" => dispatch_by(o),
        "dispatchAfterDate" => dispatch_after(o),
        _ => o.updated_at,
    };
    found.sort_by(|a, b| (key(a), &a.id).cmp(&(key(b), &b.id)));
    if filter.descending {
        found.reverse();
    }
    let size = filter.size.min(shared.config().page_size.max(1));
    let (slice, more) = page(&found, offset, size);
    let mut body = json!({
        "hasMore": more,
        "shipments": slice.iter().map(render).collect::<Vec<Value>>(),
    });
    if more {
        let state = json!({"search": request, "offset": offset + slice.len()});
        body["nextPageUrl"] = json!(format!(
            "/v3/shipments/filter?next_token={}",
            URL_SAFE_NO_PAD.encode(state.to_string())
        ));
    }
    axum::Json(body).into_response()
}

/// A time as Flipkart's examples write it: India time, to the millisecond.
fn ist(t: Timestamp) -> String {
    let offset = Offset::from_seconds(5 * 3600 + 1800).unwrap_or(Offset::UTC);
    t.to_zoned(TimeZone::fixed(offset))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn render(order: &SimOrder) -> Value {
    let cancelled = order.status == "CANCELLED";
    merged(
        json!({
            "shipmentId": format!("SHP-{}", order.id),
            "dispatchAfterDate": ist(dispatch_after(order)),
            "dispatchByDate": ist(dispatch_by(order)),
            "updatedAt": ist(order.updated_at),
            "locationId": "LOC0001",
            "hold": extra_bool(order, "hold"),
            "mps": false,
            "packagingPolicy": "DEFAULT",
            "subShipments": [{"subShipmentId": "SS-1", "packages": []}],
            "orderItems": [{
                "orderItemId": format!("{}-1", order.id),
                "orderId": order.id,
                "cancellationGroupId": format!("grp-{}-1", order.id),
                "orderDate": ist(order.created_at),
                "cancellationDate": if cancelled { json!(ist(order.updated_at)) } else { Value::Null },
                "paymentType": "PREPAID",
                "status": order.status,
                "cancellationReason": if cancelled { json!("buyer_cancellation") } else { Value::Null },
                "quantity": 1,
                "fsn": "FSNSIM00000001",
                "sku": "SKU-1",
                "listingId": "LSTSIM00000001",
                "title": "Simulated item",
                "packageIds": [],
                "priceComponents": {"sellingPrice": 499.0, "totalPrice": 499.0,
                    "shippingCharge": 0.0, "customerPrice": 499.0, "flipkartDiscount": 0.0},
                "serviceProfile": "NON_FBF",
                "is_replacement": false,
            }],
            "forms": [],
        }),
        &order.extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_must_fit_their_type() {
        let ok = read_filter(
            &json!({"filter": {"type": "cancelled", "states": ["CANCELLED"],
            "cancellationType": "sellerCancellation"}}),
        );
        assert!(ok.is_ok());
        for wrong in [
            json!({"filter": {"type": "preDispatch", "states": ["SHIPPED"]}}),
            json!({"filter": {"type": "postDispatch", "states": []}}),
            json!({"filter": {"type": "cancelled", "states": ["CANCELLED"]}}),
            json!({"filter": {"type": "shipped", "states": ["SHIPPED"]}}),
            json!({"filter": {"type": "postDispatch", "states": ["SHIPPED"],
                "modifiedDate": {"from": "yesterday"}}}),
            json!({"filter": {"type": "postDispatch", "states": ["SHIPPED"]},
                "pagination": {"pageSize": 0}}),
        ] {
            assert!(read_filter(&wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn times_are_written_in_india_time() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(ist(t), "2026-01-01T05:30:00.000+05:30");
        assert_eq!(parse_time(&ist(t)), Some(t));
    }
}
