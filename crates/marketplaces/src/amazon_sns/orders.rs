//! Amazon's Selling Partner API orders for reconciliation (`docs/orders-apis.md` §2 has the
//! sources): Orders API v0 `getOrders`, as the issue names it. Amazon has deprecated v0 in
//! favour of v2026-01-01 `searchOrders` (v0 users "must migrate … by March 27, 2027"); the
//! move is a new module when it comes, the events it makes stay these.
//!
//! - Token (Login with Amazon, refresh-token grant): `POST {tokenUrl}` with the form body
//!   `grant_type=refresh_token&refresh_token=…&client_id=…&client_secret=…`
//!   (`application/x-www-form-urlencoded;charset=UTF-8`, as Amazon's JavaScript helper posts
//!   it); the answer is `{access_token, token_type, expires_in}` (3600 s), a failure 400/401
//!   `{error, error_description}` (read as bad credentials).
//! - The token URL is on another host than the SP-API: the option `tokenUrl` when set; else
//!   `https://api.amazon.com/auth/o2/token` when `apiBaseUrl` is one of Amazon's own hosts
//!   (`amazon.com` or a subdomain, such as `sellingpartnerapi-na.amazon.com` or a sandbox),
//!   and `{apiBaseUrl}/auth/o2/token` otherwise (a simulator serving both, like
//!   `switchyard simulate orders --marketplace amazon_sns`).
//! - Orders: `GET {base}/orders/v0/orders?MarketplaceIds=…&LastUpdatedAfter=…&LastUpdatedBefore=…
//!   &MaxResultsPerPage=100` with `x-amz-access-token`, `x-amz-date`, `user-agent` and
//!   `Accept: application/json`; no SigV4 (Amazon has ignored it since October 2023).
//!   `MarketplaceIds` is one comma-separated value (Swagger 2.0's default `csv` format, inferred).
//!   `LastUpdatedBefore` must be at least two minutes before now, so the window's end is moved
//!   back to `now − 2 min` when it is later (Amazon has not published those changes yet
//!   anyway); a window that then ends before it starts is refused as a whole.
//! - Paging: `payload.NextToken`, when present and not empty, is the `next` string as it is; the
//!   next request resends the same filters with `NextToken=…` (the current model says the token
//!   "doesn't affect any filters", the older guide that it replaces them: either works).
//! - Errors: 401/403 bad or expired token, 429 a rate limit (no `Retry-After` documented; read
//!   when sent), 5xx transient, other 4xx refused, all with an `errors` body; an `errors` list in
//!   a 200 answer is mapped by its `code` (`Unauthorized`, `InvalidAccessToken`, `AccessDenied`
//!   → bad credentials; `QuotaExceeded` → rate limit; `InternalFailure`, `ServiceUnavailable` →
//!   transient; others refused).
//!
//! Credentials: `clientId`, `clientSecret`, `refreshToken` (the LWA app's and the seller's
//! authorization). Required option: `marketplaceIds`, a comma-separated string or an array of
//! strings (such as `ATVPDKIKX0DER`). Optional: `tokenUrl` (above), `userAgent`.
//!
//! What a webhook would have said: Amazon's order news is the `ORDER_CHANGE` notification, sent
//! on every order status change (the first one included), carrying the order's status in
//! `Summary.OrderStatus`; the hub itself makes the first sighting of an order `order.created`.
//! So every order read makes exactly one event: the `ORDER_CHANGE` notification (change type
//! `OrderStatusChange`) for its current `OrderStatus`, whatever the status (`Pending`,
//! `Unshipped`, `PartiallyShipped`, `Shipped`, `Canceled`, `Unfulfillable`,
//! `InvoiceUnconfirmed`, `PendingAvailability`), in the form `amazon_sns::verify` gives a
//! delivered one: the SNS envelope with its `Message` parsed, partner = the seller
//! (`SellerId`, here `ctx.partner_id`, which `sign` and a real subscription put there too).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, form, iso_seconds, with_query,
};
use crate::{Kind, NativeEvent, util};

/// Amazon's orders client.
pub struct Api;

/// Login with Amazon's token endpoint, for Amazon's own API hosts.
pub const AMAZON_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";
const DEFAULT_USER_AGENT: &str = "Switchyard/1.0 (Language=Rust)";
/// How long Amazon takes to publish a change; `LastUpdatedBefore` may be no later than this ago.
const PUBLISH_DELAY: SignedDuration = SignedDuration::from_mins(2);

/// Whether `base_url` is on one of Amazon's own hosts (`amazon.com` or a subdomain).
fn is_amazon_host(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    host == "amazon.com" || host.ends_with(".amazon.com")
}

/// The LWA token URL (see the module doc).
pub fn token_url(ctx: &OrdersContext) -> String {
    match ctx.option("tokenUrl") {
        Some(url) => url.to_string(),
        None if is_amazon_host(ctx.base_url) => AMAZON_TOKEN_URL.to_string(),
        None => format!("{}/auth/o2/token", ctx.base_url),
    }
}

/// The `marketplaceIds` option, as the comma-separated value `MarketplaceIds` takes.
fn marketplace_ids(ctx: &OrdersContext) -> Result<String, ApiError> {
    let missing =
        || ApiError::Config("options.marketplaceIds is required (e.g. \"ATVPDKIKX0DER\")".into());
    let ids: Vec<&str> = match ctx.options.get("marketplaceIds") {
        Some(Value::String(s)) => s.split(',').map(str::trim).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::trim))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::Config("options.marketplaceIds must be strings".into()))?,
        None | Some(Value::Null) => return Err(missing()),
        Some(_) => {
            return Err(ApiError::Config(
                "options.marketplaceIds must be a string or an array of strings".into(),
            ));
        }
    };
    let ids: Vec<&str> = ids.into_iter().filter(|s| !s.is_empty()).collect();
    if ids.is_empty() {
        return Err(missing());
    }
    if ids.len() > 50 {
        return Err(ApiError::Config(
            "options.marketplaceIds: getOrders takes at most 50".into(),
        ));
    }
    Ok(ids.join(","))
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://sellingpartnerapi-na.amazon.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["clientId", "clientSecret", "refreshToken"]
    }

    fn required_options(&self) -> &'static [&'static str] {
        &["marketplaceIds"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", ctx.credential("refreshToken")?),
            ("client_id", ctx.credential("clientId")?),
            ("client_secret", ctx.credential("clientSecret")?),
        ]);
        Ok(Some(ApiRequest {
            method: "POST",
            url: token_url(ctx),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded;charset=UTF-8".into(),
                ),
                ("Accept".into(), "application/json".into()),
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
        let token = token.ok_or_else(|| ApiError::Config("no access token".into()))?;
        let marketplaces = marketplace_ids(ctx)?;
        let until = window.until.min(ctx.now - PUBLISH_DELAY);
        if until < window.since {
            return Err(ApiError::Refused(format!(
                "the window [{}, {}] ends less than two minutes ago, before Amazon publishes \
                 its changes (LastUpdatedBefore must be at least two minutes before now)",
                window.since, window.until
            )));
        }
        let after = iso_seconds(window.since);
        let before = iso_seconds(until);
        let mut query: Vec<(&str, &str)> = vec![
            ("MarketplaceIds", &marketplaces),
            ("LastUpdatedAfter", &after),
            ("LastUpdatedBefore", &before),
            ("MaxResultsPerPage", "100"),
        ];
        if let Some(next) = next {
            query.push(("NextToken", next));
        }
        let url = with_query(&format!("{}/orders/v0/orders", ctx.base_url), &query);
        Ok(ApiRequest::get(
            url,
            vec![
                ("x-amz-access-token".into(), token.value.clone()),
                (
                    "x-amz-date".into(),
                    ctx.now.strftime("%Y%m%dT%H%M%SZ").to_string(),
                ),
                (
                    "user-agent".into(),
                    ctx.option("userAgent")
                        .unwrap_or(DEFAULT_USER_AGENT)
                        .to_string(),
                ),
                ("Accept".into(), "application/json".into()),
            ],
        ))
    }

    fn read_page(
        &self,
        ctx: &OrdersContext,
        _window: Window,
        response: &ApiResponse,
    ) -> Result<Page, ApiError> {
        if let Some(e) = response.status_error() {
            return Err(e);
        }
        let body = response.json()?;
        if let Some(e) = body_error(&body, response.status) {
            return Err(e);
        }
        let payload = body
            .get("payload")
            .filter(|p| p.is_object())
            .ok_or_else(|| ApiError::Protocol("the answer has no payload".into()))?;
        let next = payload
            .get("NextToken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let orders = match payload.get("Orders") {
            Some(Value::Array(orders)) => orders
                .iter()
                .map(|o| order(ctx, o))
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(ApiError::Protocol("payload.Orders is not an array".into())),
        };
        Ok(Page { orders, next })
    }
}

/// The error an `errors` list in a 2xx answer reports, if it lists any.
fn body_error(body: &Value, status: u16) -> Option<ApiError> {
    let first = body.get("errors")?.as_array()?.first()?;
    let code = first
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = format!(
        "HTTP {status}: {code}: {}",
        first
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    Some(match code {
        "Unauthorized" | "InvalidAccessToken" | "AccessDenied" | "Forbidden" => {
            ApiError::Unauthorized(message)
        }
        "QuotaExceeded" | "TooManyRequests" => ApiError::RateLimited {
            retry_after: None,
            message,
        },
        "InternalFailure" | "InternalError" | "ServiceUnavailable" => ApiError::Transient(message),
        _ => ApiError::Refused(message),
    })
}

/// A string field of an order, if it has one.
fn text<'a>(order: &'a Value, name: &str) -> Option<&'a str> {
    order
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One `Order`: its id, status, last change and its `ORDER_CHANGE` event.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    let id = o
        .get("AmazonOrderId")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no AmazonOrderId".into()))?;
    let status = text(o, "OrderStatus")
        .ok_or_else(|| ApiError::Protocol(format!("order {id} has no OrderStatus")))?
        .to_string();
    let updated_at = o.get("LastUpdateDate").and_then(util::parse_time);
    let events = vec![order_change(ctx, &id, &status, o, updated_at)];
    Ok(ApiOrder {
        order_id: id,
        status,
        updated_at,
        events,
    })
}

/// A time as SP-API notifications write it (`2026-12-05T10:30:15.000Z`).
fn millis(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `ORDER_CHANGE` notification Amazon would have sent for the order in `status`, in the
/// SNS envelope, as `amazon_sns::verify` makes a delivered one into an event.
fn order_change(
    ctx: &OrdersContext,
    id: &str,
    status: &str,
    order: &Value,
    updated_at: Option<Timestamp>,
) -> NativeEvent {
    let at = updated_at.unwrap_or(ctx.now);
    let at_text = millis(at);
    let notification_id = util::hash_key(&["amazon_sns", ctx.partner_id, id, status]);

    let mut summary = Map::new();
    for (from, to) in [
        ("MarketplaceId", "MarketplaceId"),
        ("PurchaseDate", "PurchaseDate"),
        ("FulfillmentChannel", "FulfillmentType"),
        ("OrderType", "OrderType"),
        ("NumberOfItemsShipped", "NumberOfItemsShipped"),
        ("NumberOfItemsUnshipped", "NumberOfItemsUnshipped"),
        ("EarliestShipDate", "EarliestShipDate"),
        ("LatestShipDate", "LatestShipDate"),
        ("EarliestDeliveryDate", "EarliestDeliveryDate"),
        ("LatestDeliveryDate", "LatestDeliveryDate"),
        ("IsBusinessOrder", "IsBusinessOrder"),
        ("IsPrime", "IsPrime"),
        ("IsPremiumOrder", "IsPremiumOrder"),
        ("IsISPU", "IsISPU"),
    ] {
        if let Some(value) = order.get(from).filter(|v| !v.is_null()) {
            summary.insert(to.into(), value.clone());
        }
    }
    summary.insert("OrderStatus".into(), json!(status));

    let message = json!({
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": at_text,
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": ctx.partner_id,
                "AmazonOrderId": id,
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": {
                    "TimeOfOrderChange": at_text,
                    "ChangeReason": "Order status changed",
                },
                "Summary": Value::Object(summary),
            },
        },
        "NotificationMetadata": {
            "PublishTime": at_text,
            "NotificationId": notification_id,
        },
    });
    NativeEvent {
        kind: Kind::AmazonSns,
        event_type: "ORDER_CHANGE".into(),
        dedup_key: notification_id.clone(),
        native_event_id: Some(notification_id.clone()),
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at),
        payload: json!({
            "Type": "Notification",
            "MessageId": notification_id,
            "Message": message,
            "Timestamp": at_text,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use crate::{Inbound, KeyRef, Outcome, SignRequest, SourceSettings};

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://amz.test",
            credentials,
            options,
            partner_id: "seller-1",
            now: "2026-12-05T12:00:00Z".parse().expect("time"),
            nonce: "n-1",
        }
    }

    fn window() -> Window {
        Window {
            since: "2026-12-04T12:00:00Z".parse().expect("time"),
            until: "2026-12-05T11:58:00Z".parse().expect("time"),
        }
    }

    fn token() -> AccessToken {
        AccessToken {
            value: "Atza|tok".into(),
            expires_in: None,
            refresh_token: None,
        }
    }

    fn answer(status: u16, body: &Value) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_token_request_is_the_lwa_refresh_token_grant() {
        let creds =
            json!({"clientId": "amzn1.id", "clientSecret": "s/cret", "refreshToken": "Atzr|r+1"});
        let none = json!({});
        let request = Api
            .token_request(&ctx(&creds, &none))
            .expect("builds")
            .expect("a token step");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://amz.test/auth/o2/token");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded;charset=UTF-8")
        );
        // Percent-encoded by hand: `|` %7C, `+` %2B, `/` %2F.
        assert_eq!(
            request.body.as_deref(),
            Some(
                &b"grant_type=refresh_token&refresh_token=Atzr%7Cr%2B1&client_id=amzn1.id&client_secret=s%2Fcret"[..]
            )
        );
        let missing = json!({"clientId": "id", "clientSecret": "s"});
        assert!(matches!(
            Api.token_request(&ctx(&missing, &none)),
            Err(ApiError::Config(m)) if m.contains("refreshToken")
        ));
    }

    #[test]
    fn the_token_url_is_amazons_for_amazon_hosts_else_the_base_urls() {
        let creds = json!({});
        let none = json!({});
        let mut c = ctx(&creds, &none);
        assert_eq!(token_url(&c), "http://amz.test/auth/o2/token");
        for amazon in [
            "https://sellingpartnerapi-na.amazon.com",
            "https://sandbox.sellingpartnerapi-eu.amazon.com",
            "https://SELLINGPARTNERAPI-FE.AMAZON.COM:443",
        ] {
            c.base_url = amazon;
            assert_eq!(token_url(&c), AMAZON_TOKEN_URL, "{amazon}");
        }
        c.base_url = "https://amazon.com.evil.test";
        assert_eq!(token_url(&c), "https://amazon.com.evil.test/auth/o2/token");
        let options = json!({"tokenUrl": "http://lwa.test/auth/o2/token"});
        let mut c = ctx(&creds, &options);
        c.base_url = "https://sellingpartnerapi-na.amazon.com";
        assert_eq!(token_url(&c), "http://lwa.test/auth/o2/token");
    }

    #[test]
    fn pages_ask_by_last_update_and_resend_the_filters_with_next_token() {
        let creds = json!({});
        let options = json!({"marketplaceIds": "ATVPDKIKX0DER, A2EUQ1WTGCTBG2"});
        let first = Api
            .page_request(&ctx(&creds, &options), Some(&token()), window(), None)
            .expect("builds");
        assert_eq!(first.method, "GET");
        assert_eq!(
            first.url,
            "http://amz.test/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER%2CA2EUQ1WTGCTBG2\
             &LastUpdatedAfter=2026-12-04T12%3A00%3A00Z&LastUpdatedBefore=2026-12-05T11%3A58%3A00Z\
             &MaxResultsPerPage=100"
        );
        assert_eq!(first.header("x-amz-access-token"), Some("Atza|tok"));
        assert_eq!(first.header("x-amz-date"), Some("20261205T120000Z"));
        assert_eq!(first.header("authorization"), None, "no SigV4");

        let array = json!({"marketplaceIds": ["ATVPDKIKX0DER"]});
        let next = Api
            .page_request(
                &ctx(&creds, &array),
                Some(&token()),
                window(),
                Some("2YgY+a/b="),
            )
            .expect("builds");
        assert_eq!(
            next.url,
            "http://amz.test/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER\
             &LastUpdatedAfter=2026-12-04T12%3A00%3A00Z&LastUpdatedBefore=2026-12-05T11%3A58%3A00Z\
             &MaxResultsPerPage=100&NextToken=2YgY%2Ba%2Fb%3D"
        );

        // A window ending now ends two minutes ago instead.
        let late = Window {
            since: window().since,
            until: "2026-12-05T12:00:00Z".parse().expect("time"),
        };
        let clamped = Api
            .page_request(&ctx(&creds, &array), Some(&token()), late, None)
            .expect("builds");
        assert!(
            clamped
                .url
                .contains("LastUpdatedBefore=2026-12-05T11%3A58%3A00Z"),
            "{}",
            clamped.url
        );
        let too_recent = Window {
            since: "2026-12-05T11:59:00Z".parse().expect("time"),
            until: "2026-12-05T12:00:00Z".parse().expect("time"),
        };
        assert!(matches!(
            Api.page_request(&ctx(&creds, &array), Some(&token()), too_recent, None),
            Err(ApiError::Refused(_))
        ));

        for bad in [
            json!({}),
            json!({"marketplaceIds": ""}),
            json!({"marketplaceIds": [1]}),
        ] {
            assert!(
                matches!(
                    Api.page_request(&ctx(&creds, &bad), Some(&token()), window(), None),
                    Err(ApiError::Config(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Api.page_request(&ctx(&creds, &array), None, window(), None),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn each_order_is_one_order_change_for_its_status() {
        let creds = json!({});
        let options = json!({"marketplaceIds": "ATVPDKIKX0DER"});
        let body = json!({"payload": {"NextToken": "tok-2", "LastUpdatedBefore": "2026-12-05T11:58:00Z",
            "Orders": [
            {"AmazonOrderId": "902-3159896-1390916", "PurchaseDate": "2026-12-05T10:00:00Z",
             "LastUpdateDate": "2026-12-05T10:30:00Z", "OrderStatus": "Unshipped",
             "MarketplaceId": "ATVPDKIKX0DER", "FulfillmentChannel": "MFN",
             "NumberOfItemsShipped": 0, "NumberOfItemsUnshipped": 2},
            {"AmazonOrderId": "902-0000000-0000002", "PurchaseDate": "2026-12-05T09:00:00Z",
             "LastUpdateDate": "2026-12-05T11:00:00Z", "OrderStatus": "Canceled"}
        ]}});
        let page = Api
            .read_page(&ctx(&creds, &options), window(), &answer(200, &body))
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("tok-2"));
        assert_eq!(page.orders.len(), 2);
        let first = &page.orders[0];
        assert_eq!(first.order_id, "902-3159896-1390916");
        assert_eq!(first.status, "Unshipped");
        assert_eq!(
            first.updated_at,
            Some("2026-12-05T10:30:00Z".parse().expect("time"))
        );
        assert_eq!(first.events.len(), 1);
        let event = &first.events[0];
        assert_eq!(event.event_type, "ORDER_CHANGE");
        assert_eq!(event.partner_id.as_deref(), Some("seller-1"));
        assert_eq!(event.occurred_at, first.updated_at);
        assert_eq!(
            event
                .payload
                .pointer("/Message/Payload/OrderChangeNotification/Summary/FulfillmentType"),
            Some(&json!("MFN"))
        );
        let n = Kind::AmazonSns.normalize(event);
        assert_eq!(n.topic, Some("order.updated"));
        assert_eq!(n.first_sighting_topic, Some("order.created"));
        assert_eq!(n.status.as_deref(), Some("Unshipped"));
        assert_eq!(
            n.resource.map(|r| r.id).as_deref(),
            Some("902-3159896-1390916")
        );
        let cancelled = Kind::AmazonSns.normalize(&page.orders[1].events[0]);
        assert_eq!(cancelled.topic, Some("order.cancelled"));
        assert_eq!(cancelled.status.as_deref(), Some("Canceled"));

        // The same read makes the same events (deterministic ids), another status another id.
        let again = Api
            .read_page(&ctx(&creds, &options), window(), &answer(200, &body))
            .expect("reads");
        assert_eq!(again, page);
        assert_ne!(
            page.orders[0].events[0].dedup_key,
            page.orders[1].events[0].dedup_key
        );

        let last = Api
            .read_page(
                &ctx(&creds, &options),
                window(),
                &answer(200, &json!({"payload": {"Orders": [], "NextToken": ""}})),
            )
            .expect("reads");
        assert_eq!(last, Page::default());
        let no_id = json!({"payload": {"Orders": [{"OrderStatus": "Shipped"}]}});
        assert!(matches!(
            Api.read_page(&ctx(&creds, &options), window(), &answer(200, &no_id)),
            Err(ApiError::Protocol(_))
        ));
    }

    #[test]
    fn errors_map_by_status_and_by_code() {
        let creds = json!({});
        let options = json!({"marketplaceIds": "ATVPDKIKX0DER"});
        let read = |status, body: Value| {
            Api.read_page(&ctx(&creds, &options), window(), &answer(status, &body))
        };
        let errors = |code: &str| json!({"errors": [{"code": code, "message": "m"}]});
        assert!(matches!(
            read(403, errors("Unauthorized")),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(429, errors("QuotaExceeded")),
            Err(ApiError::RateLimited {
                retry_after: None,
                ..
            })
        ));
        assert!(matches!(
            read(503, errors("ServiceUnavailable")),
            Err(ApiError::Transient(_))
        ));
        assert!(matches!(
            read(400, errors("InvalidInput")),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(200, errors("InvalidAccessToken")),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(200, errors("QuotaExceeded")),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(matches!(
            read(200, errors("InvalidInput")),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(200, json!({"errors": []})),
            Err(ApiError::Protocol(_))
        ));
        let bad_grant = ApiResponse {
            status: 400,
            headers: vec![],
            body: br#"{"error":"invalid_grant","error_description":"bad"}"#.to_vec(),
        };
        assert!(matches!(
            Api.read_token(&ctx(&creds, &options), &bad_grant),
            Err(ApiError::Unauthorized(_))
        ));
        let good = answer(
            200,
            &json!({"access_token": "Atza|x", "token_type": "bearer", "expires_in": 3600}),
        );
        let token = Api
            .read_token(&ctx(&creds, &options), &good)
            .expect("reads");
        assert_eq!(token.value, "Atza|x");
        assert_eq!(token.expires_in, Some(SignedDuration::from_hours(1)));
    }

    /// A signed `ORDER_CHANGE` webhook for the same order and status states the same fact as
    /// the event reconciliation makes.
    #[test]
    fn a_signed_webhook_states_the_same_fact() {
        let creds = json!({});
        let options = json!({"marketplaceIds": "ATVPDKIKX0DER"});
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("time");
        for status in ["Unshipped", "Shipped", "Canceled", "Pending"] {
            let signed = Kind::AmazonSns
                .sign(&SignRequest {
                    event_type: "ORDER_CHANGE".into(),
                    secret: String::new(),
                    options: json!({"orderStatus": status}),
                    endpoint_url: "http://hub.test/hooks/amazon".into(),
                    partner_id: "seller-1".into(),
                    resource_id: "ORD-1".into(),
                    event_id: String::new(),
                    now,
                })
                .expect("signs");
            let mut keys = std::collections::HashMap::new();
            keys.insert(
                KeyRef::CertificateUrl(
                    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-switchyard.pem"
                        .into(),
                ),
                signed
                    .certificate_pem
                    .clone()
                    .expect("a certificate")
                    .into_bytes(),
            );
            let source = SourceSettings {
                kind: Kind::AmazonSns,
                secrets: vec![],
                replay_window: SignedDuration::from_mins(5),
                options: json!({}),
            };
            let inbound = Inbound {
                method: signed.method,
                endpoint_url: "http://hub.test/hooks/amazon",
                query: "",
                headers: &signed.headers,
                body: &signed.body,
                now,
            };
            let Ok(Outcome::Event(webhook)) = Kind::AmazonSns.verify(&inbound, &source, &keys)
            else {
                panic!("the signed webhook verifies");
            };
            let body = json!({"payload": {"Orders": [{"AmazonOrderId": "ORD-1",
                "PurchaseDate": "2026-12-05T10:00:00Z", "LastUpdateDate": "2026-12-05T11:00:00Z",
                "OrderStatus": status}]}});
            let page = Api
                .read_page(&ctx(&creds, &options), window(), &answer(200, &body))
                .expect("reads");
            let ours = Kind::AmazonSns.normalize(&page.orders[0].events[0]);
            let theirs = Kind::AmazonSns.normalize(&webhook);
            assert_eq!(
                fact_of(ours.topic, ours.status.as_deref()),
                fact_of(theirs.topic, theirs.status.as_deref()),
                "{status}"
            );
            assert_eq!(ours, theirs, "{status}");
            assert_eq!(webhook.partner_id, page.orders[0].events[0].partner_id);
            assert_eq!(webhook.event_type, page.orders[0].events[0].event_type);
        }
    }
}
