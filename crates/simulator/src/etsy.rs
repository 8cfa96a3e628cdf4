//! Etsy Open API v3: the OAuth refresh (`POST /v3/public/oauth/token`) and `getShopReceipts`
//! (`GET /v3/application/shops/{shop_id}/receipts`) by last-modified time with
//! `limit`/`offset` paging (`docs/orders-apis.md` §4, "What a simulator must imitate").
//!
//! Configured credentials: `keystring`, `sharedSecret`, `refreshToken`, optionally
//! `accessToken` (a long-lived `<user id>.<token>` to accept as it is), `userId` (the shop
//! owner, default `12345678`) and `shopId` (the user's shop; when unset any shop is theirs).
//! Etsy's shop and receipt ids are integers; the simulator takes any string for both.
//!
//! - Every receipts call needs `x-api-key: <keystring>:<sharedSecret>`: the keystring alone is
//!   403 `{"error":"Shared secret is required in x-api-key header."}`, anything else 403
//!   `{"error":"Invalid API key"}` (that message is unconfirmed). Then `Authorization: Bearer
//!   <user id>.<token>`: missing or unknown is 401 `{"error":"invalid_token"}` (unconfirmed
//!   wording); a token of another user than the shop's owner, or another shop, 403.
//! - The token endpoint takes a form body `grant_type=refresh_token&client_id=<keystring>&
//!   refresh_token=…` (a wrong `client_id` is 401 `invalid_client`, a wrong or already used
//!   refresh token 400 `invalid_grant`, another grant 400 `unsupported_grant_type`) and answers
//!   `{access_token: "<user id>.<token>", token_type: "Bearer", expires_in: 3600,
//!   refresh_token}` (the lifetime is unconfirmed). The refresh token rotates: the answer's is
//!   the only one accepted next, the one used is refused from then on (the configuration's
//!   `refreshToken` is replaced). Whether it needs `x-api-key` is unconfirmed: not required.
//! - Receipts: `min_last_modified ≤ updated ≤ max_last_modified` and `min_created ≤ created ≤
//!   max_created` (Unix seconds, each ≥ 946684800; both ends inclusive: unconfirmed), the
//!   nullable booleans `was_paid`, `was_shipped`, `was_delivered`, `was_canceled`; sorted by
//!   `sort_on` (`created` default, `updated`, `receipt_id`) in `sort_order` (`asc`,
//!   `ascending`, `up`, or `desc` default, `descending`, `down`), ties by id; `limit` 1–100
//!   (default 25; above 100 is 400, unconfirmed), capped by the configured page size, and
//!   `offset` ≥ 0. The answer is `{"count": <all matching>, "results": [...]}` with
//!   `x-limit-per-second`, `x-remaining-this-second`, `x-limit-per-day`, `x-remaining-today`
//!   (10 and 10,000, the older page's defaults). Bad parameters are 400 `{"error": …}`.
//! - A throttled call is 429 `{"error":"Too many requests"}` (wording unconfirmed) without the
//!   `x-limit-*` headers, with `retry-after` when configured (only third-party material
//!   claims Etsy sends one).
//! - Receipts render as `ShopReceipt`s: `receipt_id` (a number when the id is numeric), the
//!   simulated status as `status`, `is_paid` (status `paid`, `completed`, `fully refunded` or
//!   `partially refunded`), `is_shipped` (status `completed`), both spellings of each
//!   timestamp in Unix seconds, one transaction, a shipment when shipped; `extra` merged.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Shared, SimConfig, SimOrder, merged, page, param, query_pairs};

const DEFAULT_USER: &str = "12345678";
const EARLIEST: i64 = 946_684_800;
const PER_SECOND: u64 = 10;
const PER_DAY: u64 = 10_000;
const PAID: [&str; 4] = ["paid", "completed", "fully refunded", "partially refunded"];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/public/oauth/token", post(token))
        .route("/v3/application/shops/{shop_id}/receipts", get(receipts))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn user_id(shared: &Shared) -> String {
    let user = shared.credential("userId");
    if user.is_empty() {
        DEFAULT_USER.to_string()
    } else {
        user
    }
}

async fn token(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let pairs = query_pairs(&body);
    if param(&pairs, "grant_type") != Some("refresh_token") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be refresh_token",
        );
    }
    let keystring = shared.credential("keystring");
    if keystring.is_empty() || param(&pairs, "client_id") != Some(keystring.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is not a known API keystring",
        );
    }
    let expected = shared.credential("refreshToken");
    if expected.is_empty() || param(&pairs, "refresh_token") != Some(expected.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh_token is invalid, expired or already used",
        );
    }
    let user = user_id(&shared);
    let access_token = format!("{user}.{}", shared.issue_token());
    // Rotation: the new refresh token replaces the one just used.
    let refresh_token = format!(
        "{user}.rotated-{}",
        hex::encode(Timestamp::now().as_nanosecond().to_be_bytes())
    );
    let mut config: SimConfig = shared.config();
    if let Value::Object(map) = &mut config.credentials {
        map.insert("refreshToken".into(), json!(refresh_token));
    }
    shared.set_config(config);
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh_token,
    }))
    .into_response()
}

/// Checks the key, the token and the shop; the refusal to send, if any.
fn refusal(shared: &Shared, headers: &HeaderMap, shop_id: &str) -> Option<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let keystring = shared.credential("keystring");
    let key = header("x-api-key");
    if !keystring.is_empty() && key == keystring {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Shared secret is required in x-api-key header.",
        ));
    }
    if keystring.is_empty() || key != format!("{keystring}:{}", shared.credential("sharedSecret")) {
        return Some(error(StatusCode::FORBIDDEN, "Invalid API key"));
    }
    let authorization = header("authorization");
    let token = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    let Some((user, rest)) = token.split_once('.') else {
        return Some(error(StatusCode::UNAUTHORIZED, "invalid_token"));
    };
    let given = shared.credential("accessToken");
    if !(shared.token_valid(rest) || (!given.is_empty() && token == given)) {
        return Some(error(StatusCode::UNAUTHORIZED, "invalid_token"));
    }
    let shop = shared.credential("shopId");
    if user != user_id(shared) || (!shop.is_empty() && shop_id != shop) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "The user does not own this shop or cannot read its receipts.",
        ));
    }
    None
}

/// The parameters of a receipts query.
struct Query {
    modified: (Option<i64>, Option<i64>),
    created: (Option<i64>, Option<i64>),
    flags: Vec<(&'static str, bool)>,
    sort_on: &'static str,
    ascending: bool,
    limit: usize,
    offset: usize,
}

fn query(pairs: &[(String, String)]) -> Result<Query, String> {
    let bound = |name: &str| -> Result<Option<i64>, String> {
        match param(pairs, name) {
            None | Some("") => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= EARLIEST => Ok(Some(n)),
                Ok(_) => Err(format!(
                    "{name} must be greater than or equal to {EARLIEST}"
                )),
                Err(_) => Err(format!("{name} must be an integer")),
            },
        }
    };
    let mut flags = Vec::new();
    for name in ["was_paid", "was_shipped", "was_delivered", "was_canceled"] {
        match param(pairs, name) {
            None | Some("") => {}
            Some("true") | Some("1") => flags.push((name, true)),
            Some("false") | Some("0") => flags.push((name, false)),
            Some(_) => return Err(format!("{name} must be a boolean")),
        }
    }
    let sort_on = match param(pairs, "sort_on") {
        None | Some("") | Some("created") => "created",
        Some("updated") => "updated",
        Some("receipt_id") => "receipt_id",
        Some(other) => {
            return Err(format!(
                "sort_on must be one of created, updated, receipt_id, not {other:?}"
            ));
        }
    };
    let ascending = match param(pairs, "sort_order") {
        None | Some("") | Some("desc") | Some("descending") | Some("down") => false,
        Some("asc") | Some("ascending") | Some("up") => true,
        Some(other) => return Err(format!("sort_order {other:?} is not a sort order")),
    };
    let limit = match param(pairs, "limit").map(|v| v.trim().parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err("limit must be between 1 and 100".into()),
    };
    let offset = match param(pairs, "offset").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(_) => return Err("offset must be an integer greater than or equal to 0".into()),
    };
    Ok(Query {
        modified: (bound("min_last_modified")?, bound("max_last_modified")?),
        created: (bound("min_created")?, bound("max_created")?),
        flags,
        sort_on,
        ascending,
        limit,
        offset,
    })
}

fn within(t: Timestamp, (min, max): (Option<i64>, Option<i64>)) -> bool {
    let s = t.as_second();
    min.is_none_or(|m| s >= m) && max.is_none_or(|m| s <= m)
}

async fn receipts(
    State(shared): State<Arc<Shared>>,
    Path(shop_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers, &shop_id) {
        return refused;
    }
    if shared.throttle() {
        return shared.too_many(json!({"error": "Too many requests"}), true);
    }
    let q = match query(&query_pairs(raw.as_deref().unwrap_or_default())) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let user = user_id(&shared);
    let mut found: Vec<(SimOrder, Value)> = shared
        .orders()
        .into_iter()
        .filter(|o| within(o.updated_at, q.modified) && within(o.created_at, q.created))
        .map(|o| {
            let rendered = render(&o, &shop_id, &user);
            (o, rendered)
        })
        .filter(|(_, r)| {
            q.flags.iter().all(|(name, want)| {
                let has = match *name {
                    "was_paid" => r["is_paid"].as_bool(),
                    "was_shipped" => r["is_shipped"].as_bool(),
                    "was_delivered" => r["is_delivered"].as_bool(),
                    _ => r["status"]
                        .as_str()
                        .map(|s| s.eq_ignore_ascii_case("canceled")),
                };
                has.unwrap_or(false) == *want
            })
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| {
        let by = match q.sort_on {
            "updated" => a.updated_at.as_second().cmp(&b.updated_at.as_second()),
            "receipt_id" => match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.id.cmp(&b.id),
            },
            _ => a.created_at.as_second().cmp(&b.created_at.as_second()),
        };
        let by = by.then_with(|| a.id.cmp(&b.id));
        if q.ascending { by } else { by.reverse() }
    });
    let size = q.limit.min(shared.config().page_size.max(1));
    let (slice, _) = page(&found, q.offset, size);
    let mut response = axum::Json(json!({
        "count": found.len(),
        "results": slice.into_iter().map(|(_, r)| r).collect::<Vec<Value>>(),
    }))
    .into_response();
    let remaining_today = PER_DAY.saturating_sub(shared.calls());
    for (name, value) in [
        ("x-limit-per-second", PER_SECOND),
        ("x-remaining-this-second", PER_SECOND - 1),
        ("x-limit-per-day", PER_DAY),
        ("x-remaining-today", remaining_today),
    ] {
        response
            .headers_mut()
            .insert(name, HeaderValue::from(value));
    }
    response
}

/// A number when the id is one (Etsy's ids are integers), else the string.
fn id_value(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
}

fn render(order: &SimOrder, shop_id: &str, user: &str) -> Value {
    let status = order.status.to_ascii_lowercase();
    let paid = PAID.contains(&status.as_str());
    let shipped = status == "completed";
    let created = order.created_at.as_second();
    let updated = order.updated_at.as_second();
    let id = id_value(&order.id);
    let shipments = if shipped {
        json!([{"receipt_shipping_id": id, "shipment_notification_timestamp": updated,
            "carrier_name": "usps", "tracking_code": format!("SIM{}", order.id)}])
    } else {
        json!([])
    };
    merged(
        json!({
            "receipt_id": id,
            "receipt_type": 0,
            "seller_user_id": id_value(user),
            "shop_id": id_value(shop_id),
            "buyer_user_id": 1,
            "name": "Sim Buyer",
            "status": order.status,
            "is_paid": paid,
            "is_shipped": shipped,
            "is_gift": false,
            "create_timestamp": created,
            "created_timestamp": created,
            "update_timestamp": updated,
            "updated_timestamp": updated,
            "grandtotal": {"amount": 1000, "divisor": 100, "currency_code": "USD"},
            "transactions": [{
                "transaction_id": id,
                "receipt_id": id,
                "title": "Simulated item",
                "quantity": 1,
                "listing_id": 1,
                "paid_timestamp": if paid { json!(created) } else { Value::Null },
                "shipped_timestamp": if shipped { json!(updated) } else { Value::Null },
            }],
            "shipments": shipments,
            "refunds": [],
        }),
        &order.extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_and_checked_as_etsy_documents_them() {
        let pairs = |q: &str| query_pairs(q);
        let q = query(&pairs(
            "min_last_modified=1796385600&sort_on=updated&sort_order=up",
        ))
        .expect("reads");
        assert_eq!(q.modified, (Some(1_796_385_600), None));
        assert_eq!(
            (q.sort_on, q.ascending, q.limit, q.offset),
            ("updated", true, 25, 0)
        );
        assert!(query(&pairs("limit=101")).is_err());
        assert!(query(&pairs("limit=0")).is_err());
        assert!(query(&pairs("offset=-1")).is_err());
        assert!(query(&pairs("min_last_modified=946684799")).is_err());
        assert!(query(&pairs("sort_on=price")).is_err());
        assert!(query(&pairs("was_paid=maybe")).is_err());
        let t = Timestamp::from_second(1_796_385_600).expect("time");
        assert!(within(t, (Some(1_796_385_600), Some(1_796_385_600))));
        assert!(!within(t, (Some(1_796_385_601), None)));
    }
}
