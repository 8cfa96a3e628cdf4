//! Amazon Selling Partner API: Login with Amazon's `POST /auth/o2/token` (refresh-token grant)
//! and Orders API v0 `GET /orders/v0/orders` by last-update window with `NextToken` paging
//! (`docs/orders-apis.md` §2). Amazon serves the two on different hosts
//! (`api.amazon.com`, `sellingpartnerapi-*.amazon.com`); this simulator serves both.
//!
//! - The token endpoint takes the grant as a form body or a JSON body (Amazon's own SDKs send
//!   each): `grant_type=refresh_token`, `refresh_token`, `client_id`, `client_secret`, checked
//!   against the configured `refreshToken`, `clientId`, `clientSecret`. A wrong client is 401
//!   `invalid_client`, a wrong refresh token 400 `invalid_grant`, another grant 400
//!   `unsupported_grant_type`, a missing field 400 `invalid_request`. It answers
//!   `{access_token, refresh_token, token_type: "bearer", expires_in: 3600}`.
//! - `/orders/v0/orders` ignores `Authorization` (SigV4 is disregarded) and requires
//!   `x-amz-access-token` (403 `Unauthorized` otherwise), then counts against the rate limit
//!   (429 `QuotaExceeded`, no `Retry-After`: Amazon declares none). It requires
//!   `MarketplaceIds` (comma-separated, at most 50; any ids are accepted and orders are not
//!   filtered by them) and one of `CreatedAfter` / `LastUpdatedAfter` but not both (400
//!   `InvalidInput`), rejects a `LastUpdatedBefore` earlier than `LastUpdatedAfter` or later
//!   than now − 2 min, filters `LastUpdatedAfter ≤ LastUpdateDate ≤ LastUpdatedBefore` (or
//!   `CreatedAfter ≤ PurchaseDate ≤ CreatedBefore`), and `OrderStatuses` when sent.
//!   `MaxResultsPerPage` is 1–100 (default 100), also capped by the configured page size.
//! - `NextToken` is opaque (base64 of the filters and the offset); a request with it may resend
//!   the original filters or not (the two readings of Amazon's documentation), the token's own
//!   are used either way.
//! - 2xx answers carry `x-amzn-RateLimit-Limit: 0.0167`; all carry `x-amzn-RequestId`.
//! - Orders render as v0 `Order`: `AmazonOrderId`, `PurchaseDate`, `LastUpdateDate`,
//!   `OrderStatus` (the order's status as given), and MFN single-item defaults; `extra` is
//!   merged in (e.g. `MarketplaceId`, `FulfillmentChannel`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::{Shared, SimOrder, merged, page, param, parse_time, query_pairs};

/// Amazon's documented page cap for `getOrders`.
const MAX_PAGE: usize = 100;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/auth/o2/token", post(token))
        .route("/orders/v0/orders", get(orders))
}

fn request_id() -> String {
    let n = Timestamp::now().as_nanosecond();
    format!("{:08x}-sim-{:012x}", (n >> 48) as u32, n & 0xffff_ffff_ffff)
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// An SP-API error answer (`{"errors":[{code, message, details}]}`).
fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    with_request_id(
        (
            status,
            axum::Json(json!({"errors": [{"code": code, "message": message, "details": ""}]})),
        )
            .into_response(),
    )
}

fn invalid(message: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, "InvalidInput", message)
}

/// An LWA error answer.
fn lwa_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The token request's fields, from a JSON or a form body.
fn grant_fields(headers: &HeaderMap, body: &str) -> Vec<(String, String)> {
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if json_type || body.trim_start().starts_with('{') {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) {
            return map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect();
        }
        return Vec::new();
    }
    query_pairs(body)
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let fields = grant_fields(&headers, &body);
    let field = |name: &str| param(&fields, name).unwrap_or_default();
    match field("grant_type") {
        "refresh_token" => {}
        "" => {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter : grant_type",
            );
        }
        _ => {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            );
        }
    }
    for name in ["refresh_token", "client_id", "client_secret"] {
        if field(name).is_empty() {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The request is missing a required parameter : {name}"),
            );
        }
    }
    let expected_id = shared.credential("clientId");
    let expected_secret = shared.credential("clientSecret");
    if expected_id.is_empty()
        || field("client_id") != expected_id
        || field("client_secret") != expected_secret
    {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let expected_refresh = shared.credential("refreshToken");
    if expected_refresh.is_empty() || field("refresh_token") != expected_refresh {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    axum::Json(json!({
        "access_token": format!("Atza|{}", shared.issue_token()),
        "refresh_token": expected_refresh,
        "token_type": "bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

/// What a `NextToken` carries: the filters of the first request and where the next page starts.
#[derive(Debug, Clone, PartialEq, Default)]
struct Filters {
    /// `true`: by last update; `false`: by purchase date.
    by_update: bool,
    after: Option<Timestamp>,
    before: Option<Timestamp>,
    statuses: Vec<String>,
    limit: usize,
    offset: usize,
}

impl Filters {
    fn encode(&self) -> String {
        let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
        STANDARD.encode(
            json!({
                "u": self.by_update,
                "a": time(self.after),
                "b": time(self.before),
                "s": self.statuses,
                "l": self.limit,
                "o": self.offset,
            })
            .to_string(),
        )
    }

    fn decode(token: &str) -> Option<Filters> {
        let bytes = STANDARD.decode(token.trim()).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let time = |name: &str| match v.get(name) {
            Some(Value::String(s)) => s.parse::<Timestamp>().ok().map(Some),
            Some(Value::Null) | None => Some(None),
            Some(_) => None,
        };
        Some(Filters {
            by_update: v.get("u")?.as_bool()?,
            after: time("a")?,
            before: time("b")?,
            statuses: v
                .get("s")?
                .as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
            limit: usize::try_from(v.get("l")?.as_u64()?)
                .ok()?
                .clamp(1, MAX_PAGE),
            offset: usize::try_from(v.get("o")?.as_u64()?).ok()?,
        })
    }
}

/// The filters of a first request, or the answer refusing it.
fn first_filters(pairs: &[(String, String)], now: Timestamp) -> Result<Filters, Response> {
    let time = |name: &str| -> Result<Option<Timestamp>, Response> {
        match param(pairs, name) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| invalid(&format!("{name} is not a valid ISO 8601 date: {v}"))),
        }
    };
    let created_after = time("CreatedAfter")?;
    let created_before = time("CreatedBefore")?;
    let updated_after = time("LastUpdatedAfter")?;
    let updated_before = time("LastUpdatedBefore")?;
    let latest = now - SignedDuration::from_mins(2);
    let (by_update, after, before) = match (created_after, updated_after) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "CreatedAfter and LastUpdatedAfter cannot be specified together",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "Either CreatedAfter or LastUpdatedAfter must be specified",
            ));
        }
        (Some(after), None) => {
            if updated_before.is_some() {
                return Err(invalid(
                    "LastUpdatedBefore cannot be specified with CreatedAfter",
                ));
            }
            (false, after, created_before)
        }
        (None, Some(after)) => {
            if created_before.is_some() {
                return Err(invalid(
                    "CreatedBefore cannot be specified with LastUpdatedAfter",
                ));
            }
            (true, after, updated_before)
        }
    };
    if after > latest {
        return Err(invalid(
            "The after date must be at least two minutes before the current time",
        ));
    }
    if let Some(before) = before {
        if before < after {
            return Err(invalid(
                "The before date must be on or after the after date",
            ));
        }
        if before > latest {
            return Err(invalid(
                "The before date must be no later than two minutes before the current time",
            ));
        }
    }
    let statuses = param(pairs, "OrderStatuses")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let limit = match param(pairs, "MaxResultsPerPage").map(str::parse::<usize>) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => return Err(invalid("MaxResultsPerPage must be between 1 and 100")),
    };
    Ok(Filters {
        by_update,
        after: Some(after),
        before: Some(before.unwrap_or(latest)),
        statuses,
        limit,
        offset: 0,
    })
}

async fn orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let access_token = headers
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let issued = access_token
        .strip_prefix("Atza|")
        .is_some_and(|t| shared.token_valid(t));
    if !issued {
        return errors(
            StatusCode::FORBIDDEN,
            "Unauthorized",
            "Access to requested resource is denied.",
        );
    }
    if shared.throttle() {
        return with_request_id(shared.too_many(
            json!({"errors": [{"code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.", "details": ""}]}),
            false,
        ));
    }
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    let marketplaces: Vec<&str> = param(&pairs, "MarketplaceIds")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if marketplaces.is_empty() {
        return invalid("MarketplaceIds is required");
    }
    if marketplaces.len() > 50 {
        return invalid("MarketplaceIds may list at most 50 marketplaces");
    }
    let now = Timestamp::now();
    let filters = match param(&pairs, "NextToken").filter(|t| !t.is_empty()) {
        Some(token) => match Filters::decode(token) {
            Some(filters) => filters,
            None => return invalid("Invalid NextToken"),
        },
        None => match first_filters(&pairs, now) {
            Ok(filters) => filters,
            Err(refusal) => return refusal,
        },
    };

    let matching: Vec<SimOrder> = if filters.by_update {
        shared.changed(filters.after, filters.before)
    } else {
        let mut found: Vec<SimOrder> = shared
            .orders()
            .into_iter()
            .filter(|o| filters.after.is_none_or(|a| o.created_at >= a))
            .filter(|o| filters.before.is_none_or(|b| o.created_at <= b))
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        found
    }
    .into_iter()
    .filter(|o| filters.statuses.is_empty() || filters.statuses.contains(&o.status))
    .collect();

    let limit = filters.limit.min(shared.config().page_size).max(1);
    let (slice, more) = page(&matching, filters.offset, limit);
    let mut payload = json!({
        "Orders": slice.iter().map(|o| render(o, marketplaces[0])).collect::<Vec<Value>>(),
    });
    if more {
        let next = Filters {
            offset: filters.offset + slice.len(),
            ..filters.clone()
        };
        payload["NextToken"] = json!(next.encode());
    }
    if let Some(before) = filters.before {
        let key = if filters.by_update {
            "LastUpdatedBefore"
        } else {
            "CreatedBefore"
        };
        payload[key] = json!(iso(before));
    }
    let mut response = with_request_id(axum::Json(json!({"payload": payload})).into_response());
    response
        .headers_mut()
        .insert("x-amzn-ratelimit-limit", HeaderValue::from_static("0.0167"));
    response
}

fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn render(order: &SimOrder, marketplace: &str) -> Value {
    let shipped = matches!(order.status.as_str(), "Shipped" | "InvoiceUnconfirmed");
    merged(
        json!({
            "AmazonOrderId": order.id,
            "PurchaseDate": iso(order.created_at),
            "LastUpdateDate": iso(order.updated_at),
            "OrderStatus": order.status,
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.com",
            "ShipServiceLevel": "Std US D2D Dom",
            "OrderTotal": {"CurrencyCode": "USD", "Amount": "10.00"},
            "NumberOfItemsShipped": if shipped { 1 } else { 0 },
            "NumberOfItemsUnshipped": if shipped { 0 } else { 1 },
            "PaymentMethod": "Other",
            "MarketplaceId": marketplace,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": "StandardOrder",
            "EarliestShipDate": iso(order.created_at),
            "LatestShipDate": iso(order.created_at + SignedDuration::from_hours(48)),
            "IsBusinessOrder": false,
            "IsPrime": false,
            "IsPremiumOrder": false,
            "IsGlobalExpressEnabled": false,
            "IsReplacementOrder": false,
            "IsSoldByAB": false,
            "IsISPU": false,
            "IsAccessPointOrder": false,
            "HasRegulatedItems": false,
        }),
        &order.extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tokens_round_trip_and_reject_garbage() {
        let filters = Filters {
            by_update: true,
            after: Some("2026-12-04T12:00:00Z".parse().expect("time")),
            before: None,
            statuses: vec!["Unshipped".into()],
            limit: 2,
            offset: 4,
        };
        assert_eq!(Filters::decode(&filters.encode()), Some(filters));
        assert_eq!(Filters::decode("not base64!"), None);
        assert_eq!(Filters::decode(&STANDARD.encode("{}")), None);
    }

    #[test]
    fn the_grant_comes_as_a_form_or_as_json() {
        let form = HeaderMap::new();
        let mut json_type = HeaderMap::new();
        json_type.insert("content-type", HeaderValue::from_static("application/json"));
        let from_form = grant_fields(&form, "grant_type=refresh_token&refresh_token=Atzr%7Cx");
        let from_json = grant_fields(
            &json_type,
            r#"{"grant_type":"refresh_token","refresh_token":"Atzr|x"}"#,
        );
        for fields in [from_form, from_json] {
            assert_eq!(param(&fields, "grant_type"), Some("refresh_token"));
            assert_eq!(param(&fields, "refresh_token"), Some("Atzr|x"));
        }
        assert!(grant_fields(&json_type, "{not json").is_empty());
    }

    #[test]
    fn first_requests_need_one_after_bound_in_the_past() {
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("time");
        let pairs = |q: &str| query_pairs(q);
        let ok = first_filters(
            &pairs("LastUpdatedAfter=2026-12-04T12:00:00Z&LastUpdatedBefore=2026-12-05T11:58:00Z"),
            now,
        )
        .expect("accepted");
        assert!(ok.by_update);
        assert_eq!(ok.limit, 100);
        for bad in [
            "",
            "CreatedAfter=2026-12-04T12:00:00Z&LastUpdatedAfter=2026-12-04T12:00:00Z",
            "LastUpdatedAfter=2026-12-04T12:00:00Z&LastUpdatedBefore=2026-12-05T11:59:00Z",
            "LastUpdatedAfter=2026-12-04T12:00:00Z&LastUpdatedBefore=2026-12-03T00:00:00Z",
            "LastUpdatedAfter=yesterday",
            "LastUpdatedAfter=2026-12-04T12:00:00Z&MaxResultsPerPage=101",
        ] {
            assert!(first_filters(&pairs(bad), now).is_err(), "{bad}");
        }
    }
}
