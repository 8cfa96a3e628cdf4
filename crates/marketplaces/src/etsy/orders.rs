//! Etsy's orders API for reconciliation: Open API v3 `getShopReceipts`
//! (`docs/orders-apis.md` §4 has the sources).
//!
//! - Every request carries `x-api-key: <keystring>:<shared secret>` (Etsy's form since January
//!   2026; the keystring alone is refused with 403).
//! - Token: when the credentials hold `refreshToken`, always the refresh grant: `POST
//!   {base}/v3/public/oauth/token`, form body `grant_type=refresh_token&client_id=<keystring>&
//!   refresh_token=…`; the answer is `{access_token, token_type, expires_in, refresh_token}`
//!   (an OAuth 2 answer, read by the default [`OrdersApi::read_token`]), the access token
//!   already in the `<user id>.<token>` form. Etsy rotates the refresh token on each use
//!   (third-party [Y7]): the answer's is [`AccessToken::refresh_token`], which the reconciler
//!   stores in place of the one sent, so tokens renew for as long as it is stored. Only when
//!   there is no `refreshToken` is `accessToken` (Etsy's whole token, `<numeric user
//!   id>.<token>`) used as it is, with no token step, until it expires.
//! - Orders: `GET {base}/v3/application/shops/{shopId}/receipts?min_last_modified=…&
//!   max_last_modified=…&sort_on=updated&sort_order=asc&limit=100&offset=…` with
//!   `Authorization: Bearer <token>` (scope `transactions_r`). The bounds are Unix seconds
//!   (floored; Etsy's `minimum` is 946684800); both are taken as inclusive (unconfirmed), so a
//!   receipt changed in the window's last second may be read again by the next window.
//!   `sort_on` and `sort_order` are documented parameters; sorting by update time, oldest
//!   first, to keep the offsets stable is the document's inference, not Etsy's word, and how
//!   Etsy orders receipts changed in the same second is unconfirmed (taken to be the same on
//!   every call).
//! - Paging, as documented: `limit`/`offset`; the cursor (`next`) is the offset in decimal
//!   (none: 0). The answer (`{count, results}`, `count` the receipts matching the filters) does
//!   not echo the offset, so pages are read with [`OrdersApi::read_page_of`], given the cursor
//!   asked with: the next offset is it plus the receipts read, while the page is full or
//!   `count` says there are more; an empty page is the last. A receipt changed while a window
//!   is paged leaves the filter set and shifts the later ones down one offset, so one of them
//!   may go unread in that run (the next window's overlap usually reads it).
//! - Errors: `{"error": "…"}` bodies; 401/403 (bad key, secret, token, or a shop the user
//!   does not own) → `Unauthorized`; 429 → `RateLimited` (a `retry-after` is honoured when
//!   sent; Etsy's is unconfirmed); 5xx → `Transient`; another 4xx → `Refused`.
//!
//! Credentials: `keystring`, `sharedSecret`, and `refreshToken` (or, without it, a ready
//! `accessToken`). Option `shopId`: the shop whose receipts are read, by default the source's
//! partner (the webhook's `shop_id` is its partner).
//!
//! What a webhook would have said (the event types [`crate::etsy::normalize`] maps, in the
//! form [`crate::etsy::sign`] builds: `event_type`, `resource_url` naming the receipt,
//! `shop_id`): a paid receipt was `order.paid` (→ `order.created`), one shipped (`is_shipped`,
//! or status `completed`) `order.shipped`, one canceled `order.canceled`. Etsy's own page lists
//! only `ORDER_PAID`; the shipped and canceled events are from third-party material (the
//! webhook module maps them too), and `order.delivered`, which `normalize` does not map, is not
//! made. A receipt that is `open` or `payment processing` makes no event. The events name the
//! shop as their partner, as the webhook's `shop_id` does.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, form, with_query,
};
use crate::{Kind, NativeEvent, util};

/// Etsy's orders client.
pub struct Api;

/// Etsy's largest page.
const LIMIT: usize = 100;

/// The earliest `min_last_modified` Etsy takes (2000-01-01).
const EARLIEST: i64 = 946_684_800;

/// Statuses of a receipt that was paid.
const PAID: [&str; 4] = ["paid", "completed", "fully refunded", "partially refunded"];

fn api_key(ctx: &OrdersContext) -> Result<String, ApiError> {
    Ok(format!(
        "{}:{}",
        ctx.credential("keystring")?,
        ctx.credential("sharedSecret")?
    ))
}

fn shop_id<'c>(ctx: &'c OrdersContext) -> Result<&'c str, ApiError> {
    ctx.option("shopId")
        .or(Some(ctx.partner_id).filter(|p| !p.is_empty()))
        .ok_or_else(|| ApiError::Config("options.shopId (or a partner) is required".into()))
}

/// The offset a cursor names: 0 for the first page.
fn offset_of(next: Option<&str>) -> Result<usize, ApiError> {
    next.filter(|n| !n.is_empty()).map_or(Ok(0), |n| {
        n.parse()
            .map_err(|_| ApiError::Protocol(format!("not an Etsy offset: {n:?}")))
    })
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://api.etsy.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["keystring", "sharedSecret", "accessToken", "refreshToken"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        let Ok(refresh) = ctx.credential("refreshToken") else {
            return match ctx.credential("accessToken") {
                Ok(_) => Ok(None),
                Err(_) => Err(ApiError::Config(
                    "credentials.refreshToken (or credentials.accessToken) is required".into(),
                )),
            };
        };
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("client_id", ctx.credential("keystring")?),
            ("refresh_token", refresh),
        ]);
        Ok(Some(ApiRequest {
            method: "POST",
            url: format!("{}/v3/public/oauth/token", ctx.base_url),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Accept".into(), "application/json".into()),
                // "Every request" carries the key (docs/orders-apis.md §4); whether the token
                // endpoint needs it is unconfirmed.
                ("x-api-key".into(), api_key(ctx)?),
            ],
            body: Some(body.into_bytes()),
        }))
    }

    fn page_request(
        &self,
        ctx: &OrdersContext,
        token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        let bearer = match token {
            Some(token) => token.value.clone(),
            None => {
                let given = ctx
                    .credential("accessToken")
                    .map_err(|_| ApiError::Config("no access token".into()))?;
                let user = given.split_once('.').map(|(user, _)| user);
                if !user.is_some_and(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit())) {
                    return Err(ApiError::Config(
                        "credentials.accessToken must be Etsy's `<user id>.<token>`".into(),
                    ));
                }
                given.to_string()
            }
        };
        let offset = offset_of(next)?;
        let url = with_query(
            &format!(
                "{}/v3/application/shops/{}/receipts",
                ctx.base_url,
                util::percent_encode(shop_id(ctx)?)
            ),
            &[
                (
                    "min_last_modified",
                    &window.since.as_second().max(EARLIEST).to_string(),
                ),
                ("max_last_modified", &window.until.as_second().to_string()),
                ("sort_on", "updated"),
                ("sort_order", "asc"),
                ("limit", &LIMIT.to_string()),
                ("offset", &offset.to_string()),
            ],
        );
        Ok(ApiRequest::get(
            url,
            vec![
                ("x-api-key".into(), api_key(ctx)?),
                ("Authorization".into(), format!("Bearer {bearer}")),
                ("Accept".into(), "application/json".into()),
            ],
        ))
    }

    /// Refused: the answer does not say its offset. Read as the first page it would be right
    /// for that page only, each later one naming the same next offset again (a repeated
    /// cursor, which the reconciler refuses). Pages are read with [`OrdersApi::read_page_of`].
    fn read_page(&self, _: &OrdersContext, _: Window, _: &ApiResponse) -> Result<Page, ApiError> {
        Err(ApiError::Protocol(
            "an Etsy page is read knowing the offset it was asked for (read_page_of)".into(),
        ))
    }

    fn read_page_of(
        &self,
        ctx: &OrdersContext,
        _window: Window,
        next: Option<&str>,
        response: &ApiResponse,
    ) -> Result<Page, ApiError> {
        let offset = offset_of(next)?;
        if let Some(e) = response.status_error() {
            return Err(e);
        }
        let body = response.json()?;
        let results = match body.get("results") {
            Some(Value::Array(results)) => results,
            _ => return Err(ApiError::Protocol("the answer has no results array".into())),
        };
        let count = number(body.get("count"))
            .ok_or_else(|| ApiError::Protocol("the answer has no count".into()))?;
        let shop = shop_id(ctx)?;
        let orders = results
            .iter()
            .map(|r| receipt(ctx, shop, r))
            .collect::<Result<Vec<_>, _>>()?;
        let after = offset + orders.len();
        let more = orders.len() >= LIMIT || count > after as u64;
        let next = (more && !orders.is_empty()).then(|| after.to_string());
        Ok(Page { orders, next })
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    value.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// The first of `names` that is a time (Etsy writes both spellings of each timestamp).
fn time(r: &Value, names: &[&str]) -> Option<Timestamp> {
    names
        .iter()
        .find_map(|n| r.get(*n).and_then(util::parse_time))
}

/// The earliest `field` among the receipt's entries of `list`.
fn earliest(r: &Value, list: &str, field: &str) -> Option<Timestamp> {
    r.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get(field).and_then(util::parse_time))
        .filter(|t| t.as_second() > 0)
        .min()
}

/// One `ShopReceipt`: its id, status, and the events for them.
fn receipt(ctx: &OrdersContext, shop: &str, r: &Value) -> Result<ApiOrder, ApiError> {
    let id = r
        .get("receipt_id")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("a receipt has no receipt_id".into()))?;
    let status = r
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let is = |s: &str| status.eq_ignore_ascii_case(s);
    let created_at = time(r, &["created_timestamp", "create_timestamp"]);
    let updated_at = time(r, &["updated_timestamp", "update_timestamp"]);
    let paid = r
        .get("is_paid")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| PAID.iter().any(|s| is(s)));
    let shipped = r
        .get("is_shipped")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || is("completed");
    let mut events = Vec::new();
    if paid {
        let at = earliest(r, "transactions", "paid_timestamp").or(created_at);
        events.push(event(ctx, shop, &id, "order.paid", at));
    }
    if shipped {
        let at = earliest(r, "shipments", "shipment_notification_timestamp")
            .or_else(|| earliest(r, "transactions", "shipped_timestamp"))
            .or(updated_at);
        events.push(event(ctx, shop, &id, "order.shipped", at));
    }
    if is("canceled") || is("cancelled") {
        events.push(event(ctx, shop, &id, "order.canceled", updated_at));
    }
    Ok(ApiOrder {
        order_id: id,
        status,
        updated_at,
        events,
    })
}

/// The webhook Etsy would have sent for `event_type`, in the form `etsy::sign` builds.
fn event(
    ctx: &OrdersContext,
    shop: &str,
    id: &str,
    event_type: &str,
    at: Option<Timestamp>,
) -> NativeEvent {
    let at = at.unwrap_or(ctx.now);
    let key = util::hash_key(&["etsy", shop, id, event_type]);
    let shop_id = shop
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(shop));
    NativeEvent {
        kind: Kind::Etsy,
        event_type: event_type.to_string(),
        dedup_key: key.clone(),
        native_event_id: Some(key),
        partner_id: Some(shop.to_string()),
        occurred_at: Some(at),
        payload: json!({
            "event_type": event_type,
            "resource_url": format!(
                "https://openapi.etsy.com/v3/application/shops/{}/receipts/{}",
                util::percent_encode(shop),
                util::percent_encode(id),
            ),
            "shop_id": shop_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://etsy.test",
            credentials,
            options,
            partner_id: "23456789",
            now: "2026-12-05T12:00:00Z".parse().expect("time"),
            nonce: "n-1",
        }
    }

    fn window() -> Window {
        Window {
            since: "2026-12-04T12:00:00.700Z".parse().expect("time"),
            until: "2026-12-05T11:58:00Z".parse().expect("time"),
        }
    }

    fn creds() -> Value {
        json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "s3cr3t",
            "accessToken": "12345678.O1zLuwveeKjpIqCQ"})
    }

    fn shop() -> Value {
        json!({"shopId": "23456789"})
    }

    fn ok(body: Value) -> ApiResponse {
        ApiResponse {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_token_request_is_the_refresh_grant() {
        let refresh = json!({"keystring": "key", "sharedSecret": "sec",
            "refreshToken": "12345678.JNGIJtvLmwfDMhlYoOJl8a"});
        let request = Api
            .token_request(&ctx(&refresh, &shop()))
            .expect("builds")
            .expect("a token step");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://etsy.test/v3/public/oauth/token");
        assert_eq!(request.header("x-api-key"), Some("key:sec"));
        assert_eq!(
            String::from_utf8(request.body.expect("a body")).expect("utf-8"),
            "grant_type=refresh_token&client_id=key&refresh_token=12345678.JNGIJtvLmwfDMhlYoOJl8a"
        );
        // A refresh token wins over an access token, which would expire.
        let both = json!({"keystring": "key", "sharedSecret": "sec",
            "refreshToken": "12345678.r", "accessToken": "12345678.a"});
        let request = Api.token_request(&ctx(&both, &shop())).expect("builds");
        assert!(request.is_some_and(|r| r.url.ends_with("/oauth/token")));
        assert_eq!(Api.token_request(&ctx(&creds(), &shop())), Ok(None));
        let no_secret = json!({"keystring": "key", "refreshToken": "1.r"});
        assert!(matches!(
            Api.token_request(&ctx(&no_secret, &shop())),
            Err(ApiError::Config(m)) if m.contains("sharedSecret")
        ));
        let neither = json!({"keystring": "key", "sharedSecret": "sec"});
        assert!(matches!(
            Api.token_request(&ctx(&neither, &shop())),
            Err(ApiError::Config(m)) if m.contains("refreshToken")
        ));
    }

    #[test]
    fn the_token_answer_carries_the_rotated_refresh_token() {
        let refresh = json!({"keystring": "key", "sharedSecret": "sec",
            "refreshToken": "12345678.JNGIJtvLmwfDMhlYoOJl8a"});
        let token = Api
            .read_token(
                &ctx(&refresh, &shop()),
                &ok(
                    json!({"access_token": "12345678.new", "token_type": "Bearer",
                    "expires_in": 3600, "refresh_token": "12345678.rotated"}),
                ),
            )
            .expect("reads");
        assert_eq!(token.value, "12345678.new");
        assert_eq!(
            token.expires_in,
            Some(jiff::SignedDuration::from_secs(3600))
        );
        assert_eq!(token.refresh_token.as_deref(), Some("12345678.rotated"));
        let refused = ApiResponse {
            status: 400,
            headers: vec![],
            body: br#"{"error":"invalid_grant"}"#.to_vec(),
        };
        assert!(matches!(
            Api.read_token(&ctx(&refresh, &shop()), &refused),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn pages_filter_on_last_modified_and_page_by_offset() {
        let first = Api
            .page_request(&ctx(&creds(), &shop()), None, window(), None)
            .expect("builds");
        assert_eq!(first.method, "GET");
        // 2026-12-04T12:00:00Z and 2026-12-05T11:58:00Z in Unix seconds (`date -d … +%s`).
        assert_eq!(
            first.url,
            "http://etsy.test/v3/application/shops/23456789/receipts?min_last_modified=1796385600\
             &max_last_modified=1796471880&sort_on=updated&sort_order=asc&limit=100&offset=0"
        );
        assert_eq!(
            first.header("x-api-key"),
            Some("1aa2bb33c44d55eeeeee6fff:s3cr3t")
        );
        assert_eq!(
            first.header("authorization"),
            Some("Bearer 12345678.O1zLuwveeKjpIqCQ")
        );
        let token = AccessToken {
            value: "12345678.issued".into(),
            expires_in: None,
            refresh_token: None,
        };
        let later = Api
            .page_request(&ctx(&creds(), &shop()), Some(&token), window(), Some("200"))
            .expect("builds");
        assert!(
            later.url.contains("min_last_modified=1796385600&")
                && later.url.ends_with("&offset=200"),
            "the same filters, from the offset: {}",
            later.url
        );
        assert_eq!(
            later.header("authorization"),
            Some("Bearer 12345678.issued")
        );
        assert!(matches!(
            Api.page_request(
                &ctx(&creds(), &shop()),
                None,
                window(),
                Some("1796430000:1")
            ),
            Err(ApiError::Protocol(_))
        ));
        // The shop is the partner unless the options name one.
        let partners = Api
            .page_request(&ctx(&creds(), &json!({})), None, window(), None)
            .expect("builds");
        assert!(partners.url.contains("/shops/23456789/receipts?"));
        let named = Api
            .page_request(
                &ctx(&creds(), &json!({"shopId": "42"})),
                None,
                window(),
                None,
            )
            .expect("builds");
        assert!(named.url.contains("/shops/42/receipts?"));
        let bare = json!({"keystring": "k", "sharedSecret": "s", "accessToken": "no-user-id"});
        assert!(matches!(
            Api.page_request(&ctx(&bare, &shop()), None, window(), None),
            Err(ApiError::Config(m)) if m.contains("user id")
        ));
    }

    fn receipt_json(id: u64, status: &str, updated: i64) -> Value {
        json!({"receipt_id": id, "status": status, "create_timestamp": 1796390000,
            "created_timestamp": 1796390000, "update_timestamp": updated,
            "updated_timestamp": updated, "is_paid": status != "open",
            "is_shipped": status == "completed", "transactions": [], "shipments": []})
    }

    fn read(next: Option<&str>, body: Value) -> Result<Page, ApiError> {
        Api.read_page_of(&ctx(&creds(), &shop()), window(), next, &ok(body))
    }

    #[test]
    fn the_next_offset_is_the_asked_one_plus_the_receipts_read() {
        // Receipts changed in one second are paged like any others.
        let same = |ids: std::ops::Range<u64>| {
            ids.map(|i| receipt_json(i, "paid", 1796400000))
                .collect::<Vec<_>>()
        };
        let page = read(None, json!({"count": 5, "results": same(1..3)})).expect("reads");
        assert_eq!(page.orders.len(), 2);
        assert_eq!(page.next.as_deref(), Some("2"));
        let page = read(Some("2"), json!({"count": 5, "results": same(3..5)})).expect("reads");
        assert_eq!(page.next.as_deref(), Some("4"));
        let last = read(Some("4"), json!({"count": 5, "results": same(5..6)})).expect("reads");
        assert_eq!(last.next, None, "count says it was the last");
        // A full page is followed whatever count says; an empty one is the last.
        let full = read(Some("100"), json!({"count": 100, "results": same(0..100)}));
        assert_eq!(full.expect("reads").next.as_deref(), Some("200"));
        let empty = read(Some("200"), json!({"count": 250, "results": []})).expect("reads");
        assert_eq!(empty.next, None);
        assert!(matches!(
            read(Some("two"), json!({"count": 5, "results": []})),
            Err(ApiError::Protocol(_))
        ));
        // Without the offset asked, a page cannot be read.
        assert!(matches!(
            Api.read_page(
                &ctx(&creds(), &shop()),
                window(),
                &ok(json!({"count": 0, "results": []}))
            ),
            Err(ApiError::Protocol(m)) if m.contains("read_page_of")
        ));
    }

    #[test]
    fn receipts_make_the_events_their_state_announces() {
        let page = read(
            None,
            json!({"count": 4, "results": [
                receipt_json(11, "open", 1796400000),
                receipt_json(12, "paid", 1796400001),
                receipt_json(13, "completed", 1796400002),
                receipt_json(14, "canceled", 1796400003)]}),
        )
        .expect("reads");
        let facts: Vec<Vec<String>> = page
            .orders
            .iter()
            .map(|o| {
                o.events
                    .iter()
                    .map(|e| {
                        let n = Kind::Etsy.normalize(e);
                        assert_eq!(n.resource.map(|r| r.id), Some(o.order_id.clone()));
                        assert_eq!(e.partner_id.as_deref(), Some("23456789"));
                        fact_of(n.topic, n.status.as_deref())
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            facts,
            vec![
                vec![],
                vec!["order.created".to_string()],
                vec!["order.created".to_string(), "order.updated|shipped".into()],
                vec![
                    "order.created".to_string(),
                    "order.cancelled|canceled".into()
                ],
            ]
        );
        assert_eq!(page.orders[1].order_id, "12");
        assert_eq!(
            page.orders[1].updated_at,
            Timestamp::from_second(1796400001).ok()
        );
        // The shipment's own time, when the receipt names one.
        let shipped = receipt(
            &ctx(&creds(), &shop()),
            "23456789",
            &json!({"receipt_id": 15, "status": "completed", "update_timestamp": 1796400009,
                "shipments": [{"shipment_notification_timestamp": 1796400005}]}),
        )
        .expect("reads");
        assert_eq!(
            shipped.events[1].occurred_at,
            Timestamp::from_second(1796400005).ok()
        );
    }

    #[test]
    fn errors_map_to_their_meanings() {
        let answer = |status: u16, headers: Vec<(String, String)>, body: &str| ApiResponse {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        };
        let read = |r: ApiResponse| Api.read_page_of(&ctx(&creds(), &shop()), window(), None, &r);
        assert!(matches!(
            read(answer(
                403,
                vec![],
                r#"{"error":"Shared secret is required in x-api-key header."}"#
            )),
            Err(ApiError::Unauthorized(m)) if m.contains("Shared secret")
        ));
        assert!(matches!(
            read(answer(401, vec![], r#"{"error":"invalid_token"}"#)),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(answer(429, vec![("retry-after".into(), "1".into())], "")),
            Err(ApiError::RateLimited { retry_after: Some(d), .. }) if d.as_secs() == 1
        ));
        assert!(matches!(
            read(answer(400, vec![], r#"{"error":"limit must be <= 100"}"#)),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(answer(503, vec![], "")),
            Err(ApiError::Transient(_))
        ));
        assert!(matches!(
            read(answer(200, vec![], r#"{"results":[]}"#)),
            Err(ApiError::Protocol(_))
        ));
        assert!(matches!(
            read(answer(
                200,
                vec![],
                r#"{"count":1,"results":[{"status":"paid"}]}"#
            )),
            Err(ApiError::Protocol(_))
        ));
    }
}
