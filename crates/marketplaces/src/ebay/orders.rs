//! eBay's orders API for reconciliation: the Sell Fulfillment API's `getOrders`
//! (`docs/orders-apis.md` §3 has the sources).
//!
//! - Token: `getOrders` needs a *user* access token. When the credentials hold `accessToken`
//!   it is used as it is (no token step); otherwise the refresh-token grant: `POST
//!   {base}/identity/v1/oauth2/token`, `Authorization: Basic base64(clientId:clientSecret)`,
//!   form body `grant_type=refresh_token&refresh_token=…&scope=…` (the scope is the option
//!   `scope`, default `https://api.ebay.com/oauth/api_scope/sell.fulfillment`; it must be
//!   among the scopes the seller consented to). The answer is `{access_token, expires_in,
//!   token_type}` (user tokens live about two hours); a 400 `invalid_grant`/`invalid_client`
//!   is a credentials problem.
//! - Orders: `GET {base}/sell/fulfillment/v1/order?filter=lastmodifieddate:[from..to]&limit=200
//!   &offset=N` with `Authorization: Bearer <token>` and `Accept: application/json`. The dates
//!   are ISO 8601 UTC with milliseconds, and eBay's bounds are inclusive at both ends (the
//!   window's end is sent as it is: an order changed exactly at `until` is read twice across
//!   consecutive windows, which the hub's fact claims absorb). The brackets and colon are
//!   percent-encoded, as eBay requires.
//! - Paging: `limit`/`offset`. eBay's `next` is a URI ("only returned if there is a next
//!   page"), absolute or relative; this client's `next` is only the offset read from it (or
//!   `offset + limit` of the answer when `next` names none), and the next request is rebuilt
//!   with the same filter, so a `next` that dropped the filter cannot widen the query.
//! - Errors: 401/403 (an expired or application token, missing scope) → `Unauthorized`; 429 →
//!   `RateLimited` (eBay documents no `Retry-After`; one sent is honoured); 5xx → `Transient`;
//!   another 4xx (`{"errors":[{errorId: 30800, …}]}`, bad filter or limit) → `Refused`. A 200
//!   carries at most `warnings`, which are not errors.
//!
//! Credentials: `clientId`, `clientSecret`, `refreshToken` — or `accessToken` alone. Options:
//! `scope` (see above); none required.
//!
//! What a webhook would have said (eBay's Notification API topics that `normalize` maps):
//! every order `getOrders` returns completed checkout, so it was confirmed
//! (`ORDER_CONFIRMATION` → `order.created`, at `creationDate`). An order whose
//! `orderFulfillmentStatus` is `IN_PROGRESS` (some line items shipped) or `FULFILLED` (all)
//! had an item marked shipped (`ITEM_MARKED_SHIPPED` → `order.updated` with status
//! `SHIPPED`, at `lastModifiedDate`). `NOT_STARTED` makes only the confirmation. eBay sends no
//! order-cancellation or payment topic, so a cancelled or refunded order makes no further
//! event. The events name the seller as the webhook does (`data.username`): the source's
//! partner, since the user token is that seller's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, form, with_query,
};
use crate::{Kind, NativeEvent, util};

/// eBay's orders client.
pub struct Api;

/// The scope asked for when the options name none.
pub const DEFAULT_SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

/// eBay's largest page.
const LIMIT: u64 = 200;

/// A time as eBay writes it: ISO 8601 UTC with milliseconds.
fn ebay_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://api.ebay.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["clientId", "clientSecret", "refreshToken", "accessToken"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        if ctx.credential("accessToken").is_ok() {
            return Ok(None);
        }
        let basic = STANDARD.encode(format!(
            "{}:{}",
            ctx.credential("clientId")?,
            ctx.credential("clientSecret")?
        ));
        let refresh = ctx.credential("refreshToken").map_err(|_| {
            ApiError::Config(
                "credentials.refreshToken (or credentials.accessToken) is required".into(),
            )
        })?;
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("scope", ctx.option("scope").unwrap_or(DEFAULT_SCOPE)),
        ]);
        Ok(Some(ApiRequest {
            method: "POST",
            url: format!("{}/identity/v1/oauth2/token", ctx.base_url),
            headers: vec![
                ("Authorization".into(), format!("Basic {basic}")),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
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
        let bearer = match token {
            Some(token) => token.value.clone(),
            None => ctx
                .credential("accessToken")
                .map_err(|_| ApiError::Config("no access token".into()))?
                .to_string(),
        };
        let offset = match next {
            None => 0,
            Some(n) => n
                .parse::<u64>()
                .map_err(|_| ApiError::Config(format!("not an eBay paging offset: {n:?}")))?,
        };
        let filter = format!(
            "lastmodifieddate:[{}..{}]",
            ebay_time(window.since),
            ebay_time(window.until)
        );
        let url = with_query(
            &format!("{}/sell/fulfillment/v1/order", ctx.base_url),
            &[
                ("filter", &filter),
                ("limit", &LIMIT.to_string()),
                ("offset", &offset.to_string()),
            ],
        );
        Ok(ApiRequest::get(
            url,
            vec![
                ("Authorization".into(), format!("Bearer {bearer}")),
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
        if !body.is_object() {
            return Err(ApiError::Protocol("the answer is not an object".into()));
        }
        let orders = match body.get("orders") {
            Some(Value::Array(orders)) => orders
                .iter()
                .map(|o| order(ctx, o))
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(ApiError::Protocol("orders is not an array".into())),
        };
        let next = match body.get("next").and_then(Value::as_str) {
            Some(href) if !href.is_empty() => Some(next_offset(href, &body, orders.len())?),
            _ => None,
        };
        Ok(Page { orders, next })
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    value.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// The offset the `next` href names, else the answer's `offset` plus what it held.
fn next_offset(href: &str, body: &Value, read: usize) -> Result<String, ApiError> {
    let query = href.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let named = util::query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "offset")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let offset = named
        .or_else(|| {
            let at = number(body.get("offset")).unwrap_or(0);
            let step = number(body.get("limit")).unwrap_or(read as u64);
            (step > 0).then_some(at + step)
        })
        .ok_or_else(|| ApiError::Protocol(format!("next {href:?} names no offset")))?;
    Ok(offset.to_string())
}

/// One `Order`: its id, fulfillment status, and the events for them.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    let id = o
        .get("orderId")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no orderId".into()))?;
    let status = o
        .get("orderFulfillmentStatus")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let created_at = o.get("creationDate").and_then(util::parse_time);
    let updated_at = o.get("lastModifiedDate").and_then(util::parse_time);
    let item_id = o
        .get("lineItems")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find_map(|i| i.get("legacyItemId")))
        .and_then(util::as_id);
    let mut events = vec![event(
        ctx,
        &id,
        "ORDER_CONFIRMATION",
        None,
        created_at.or(updated_at),
    )];
    if status.eq_ignore_ascii_case("IN_PROGRESS") || status.eq_ignore_ascii_case("FULFILLED") {
        events.push(event(
            ctx,
            &id,
            "ITEM_MARKED_SHIPPED",
            item_id.as_deref(),
            updated_at.or(created_at),
        ));
    }
    Ok(ApiOrder {
        order_id: id,
        status,
        updated_at,
        events,
    })
}

/// The Notification API message eBay would have sent for `topic`.
fn event(
    ctx: &OrdersContext,
    id: &str,
    topic: &str,
    item_id: Option<&str>,
    at: Option<Timestamp>,
) -> NativeEvent {
    let at = at.unwrap_or(ctx.now);
    let notification_id = util::hash_key(&["ebay", ctx.partner_id, id, topic]);
    let mut data = json!({"orderId": id, "username": ctx.partner_id});
    if topic.starts_with("ITEM_") {
        data["itemId"] = json!(item_id.unwrap_or(id));
    }
    let date = ebay_time(at);
    NativeEvent {
        kind: Kind::Ebay,
        event_type: topic.to_string(),
        dedup_key: notification_id.clone(),
        native_event_id: Some(notification_id.clone()),
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at),
        payload: json!({
            "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": false},
            "notification": {
                "notificationId": notification_id,
                "eventDate": date,
                "publishDate": date,
                "publishAttemptCount": 1,
                "data": data,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use crate::{Inbound, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings};

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://ebay.test",
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

    fn ok(body: Value) -> ApiResponse {
        ApiResponse {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_token_request_is_the_refresh_grant_with_basic_auth() {
        let creds = json!({"clientId": "eb-id", "clientSecret": "eb-secret",
            "refreshToken": "v^1.1#r^1"});
        let none = json!({});
        let request = Api
            .token_request(&ctx(&creds, &none))
            .expect("builds")
            .expect("a token step");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://ebay.test/identity/v1/oauth2/token");
        // base64("eb-id:eb-secret"), computed with python3's base64.
        assert_eq!(
            request.header("authorization"),
            Some("Basic ZWItaWQ6ZWItc2VjcmV0")
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            String::from_utf8(request.body.expect("a body")).expect("utf-8"),
            "grant_type=refresh_token&refresh_token=v%5E1.1%23r%5E1&scope=\
             https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope%2Fsell.fulfillment"
        );
        let token = Api
            .read_token(
                &ctx(&creds, &none),
                &ok(json!({"access_token": "v^1.1#u", "expires_in": 7200,
                    "token_type": "User Access Token"})),
            )
            .expect("reads");
        assert_eq!(token.value, "v^1.1#u");
        assert_eq!(
            token.expires_in,
            Some(jiff::SignedDuration::from_secs(7200))
        );
        let refused = Api.read_token(
            &ctx(&creds, &none),
            &ApiResponse {
                status: 400,
                headers: vec![],
                body: br#"{"error":"invalid_grant"}"#.to_vec(),
            },
        );
        assert!(matches!(refused, Err(ApiError::Unauthorized(_))));
        let missing = json!({"clientId": "eb-id", "clientSecret": "eb-secret"});
        assert!(matches!(
            Api.token_request(&ctx(&missing, &none)),
            Err(ApiError::Config(m)) if m.contains("refreshToken")
        ));
    }

    #[test]
    fn a_given_access_token_skips_the_token_step() {
        let creds = json!({"accessToken": "v^1.1#given"});
        let none = json!({});
        assert_eq!(Api.token_request(&ctx(&creds, &none)), Ok(None));
        let request = Api
            .page_request(&ctx(&creds, &none), None, window(), None)
            .expect("builds");
        assert_eq!(request.header("authorization"), Some("Bearer v^1.1#given"));
    }

    #[test]
    fn pages_filter_on_last_modified_and_step_by_offset() {
        let creds = json!({});
        let none = json!({});
        let token = AccessToken {
            value: "tok".into(),
            expires_in: None,
            refresh_token: None,
        };
        let first = Api
            .page_request(&ctx(&creds, &none), Some(&token), window(), None)
            .expect("builds");
        assert_eq!(first.method, "GET");
        // The filter percent-encoded by hand (python3 urllib.parse.quote, safe="").
        assert_eq!(
            first.url,
            "http://ebay.test/sell/fulfillment/v1/order?filter=lastmodifieddate%3A%5B\
             2026-12-04T12%3A00%3A00.000Z..2026-12-05T11%3A58%3A00.000Z%5D&limit=200&offset=0"
        );
        assert_eq!(first.header("authorization"), Some("Bearer tok"));
        let second = Api
            .page_request(&ctx(&creds, &none), Some(&token), window(), Some("200"))
            .expect("builds");
        assert!(
            second.url.ends_with("&limit=200&offset=200"),
            "{}",
            second.url
        );
        assert!(matches!(
            Api.page_request(&ctx(&creds, &none), Some(&token), window(), Some("x")),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn orders_are_confirmed_and_shipped_ones_marked_shipped() {
        let creds = json!({});
        let none = json!({});
        let body = json!({
        "href": "https://api.ebay.com/sell/fulfillment/v1/order?limit=2&offset=0",
        "limit": 2, "offset": 0, "total": 5,
        "next": "https://api.ebay.com/sell/fulfillment/v1/order?filter=x&limit=2&offset=2",
        "orders": [
            {"orderId": "12-34567-89012", "creationDate": "2026-12-04T13:00:00.000Z",
             "lastModifiedDate": "2026-12-04T14:00:00.000Z",
             "orderFulfillmentStatus": "NOT_STARTED", "orderPaymentStatus": "PAID"},
            {"orderId": "12-34567-89013", "creationDate": "2026-12-04T13:00:00.000Z",
             "lastModifiedDate": "2026-12-04T15:00:00.000Z",
             "orderFulfillmentStatus": "FULFILLED",
             "lineItems": [{"lineItemId": "1", "legacyItemId": "110551234567"}]}
        ]});
        let page = Api
            .read_page(&ctx(&creds, &none), window(), &ok(body))
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("2"));
        assert_eq!(page.orders.len(), 2);
        assert_eq!(page.orders[0].status, "NOT_STARTED");
        assert_eq!(page.orders[0].events.len(), 1);
        let shipped = &page.orders[1];
        assert_eq!(
            shipped.updated_at,
            Some("2026-12-04T15:00:00Z".parse().expect("time"))
        );
        let normalized: Vec<_> = shipped
            .events
            .iter()
            .map(|e| Kind::Ebay.normalize(e))
            .collect();
        assert_eq!(
            normalized.iter().map(|n| n.topic).collect::<Vec<_>>(),
            vec![Some("order.created"), Some("order.updated")]
        );
        assert_eq!(normalized[1].status.as_deref(), Some("SHIPPED"));
        assert!(
            normalized
                .iter()
                .all(|n| n.resource.as_ref().map(|r| r.id.as_str()) == Some("12-34567-89013"))
        );
        assert_eq!(shipped.events[0].partner_id.as_deref(), Some("seller-1"));
        assert_eq!(
            shipped.events[0].occurred_at,
            Some("2026-12-04T13:00:00Z".parse().expect("time"))
        );
        // Deterministic: the same order read again makes the same events.
        let again = order(
            &ctx(&creds, &none),
            &json!({"orderId": "12-34567-89013",
            "orderFulfillmentStatus": "IN_PROGRESS"}),
        )
        .expect("reads");
        assert_eq!(again.events[1].dedup_key, shipped.events[1].dedup_key);

        // A relative `next`, and one without an offset, still page on.
        let relative = json!({"limit": 2, "offset": 4, "total": 9,
            "next": "order?limit=2&offset=6", "orders": []});
        assert_eq!(
            Api.read_page(&ctx(&creds, &none), window(), &ok(relative))
                .expect("reads")
                .next
                .as_deref(),
            Some("6")
        );
        let bare = json!({"limit": 2, "offset": 4, "next": "order", "orders": []});
        assert_eq!(
            Api.read_page(&ctx(&creds, &none), window(), &ok(bare))
                .expect("reads")
                .next
                .as_deref(),
            Some("6")
        );
        let last = json!({"limit": 2, "offset": 4, "total": 5, "orders": [
            {"orderId": "x"}]});
        assert_eq!(
            Api.read_page(&ctx(&creds, &none), window(), &ok(last))
                .expect("reads")
                .next,
            None
        );
    }

    #[test]
    fn errors_map_to_their_meanings() {
        let creds = json!({});
        let none = json!({});
        let answer = |status: u16, headers: Vec<(String, String)>, body: &str| ApiResponse {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        };
        let read = |r: ApiResponse| Api.read_page(&ctx(&creds, &none), window(), &r);
        assert!(matches!(
            read(answer(401, vec![], r#"{"errors":[{"errorId":1001}]}"#)),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(answer(403, vec![], r#"{"errors":[{"errorId":1100}]}"#)),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(answer(429, vec![("retry-after".into(), "2".into())], "{}")),
            Err(ApiError::RateLimited { retry_after: Some(d), .. }) if d.as_secs() == 2
        ));
        assert!(matches!(
            read(answer(500, vec![], r#"{"errors":[{"errorId":30500}]}"#)),
            Err(ApiError::Transient(_))
        ));
        assert!(matches!(
            read(answer(400, vec![], r#"{"errors":[{"errorId":30810}]}"#)),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(answer(200, vec![], "<html>")),
            Err(ApiError::Protocol(_))
        ));
        assert!(matches!(
            read(answer(200, vec![], r#"{"orders":[{"creationDate":"x"}]}"#)),
            Err(ApiError::Protocol(_))
        ));
    }

    #[test]
    fn a_confirmation_states_the_fact_a_signed_webhook_states() {
        let creds = json!({});
        let none = json!({});
        let api_order = order(
            &ctx(&creds, &none),
            &json!({"orderId": "ORD-1", "orderFulfillmentStatus": "NOT_STARTED",
                "creationDate": "2026-12-04T13:00:00.000Z"}),
        )
        .expect("reads");
        assert_eq!(api_order.events.len(), 1);
        let ours = Kind::Ebay.normalize(&api_order.events[0]);

        let secret = "hmac-secret";
        let options = json!({"signatureForm": "hmac"});
        let signed = Kind::Ebay
            .sign(&SignRequest {
                event_type: "ORDER_CONFIRMATION".into(),
                secret: secret.into(),
                options: options.clone(),
                endpoint_url: "http://hub.test/ingest/src".into(),
                partner_id: "seller-1".into(),
                resource_id: "ORD-1".into(),
                event_id: "n-1".into(),
                now: "2026-12-05T12:00:00Z".parse().expect("time"),
            })
            .expect("signs");
        let source = SourceSettings {
            kind: Kind::Ebay,
            secrets: vec![SourceSecret {
                id: "1".into(),
                value: secret.into(),
            }],
            replay_window: jiff::SignedDuration::from_mins(5),
            options,
        };
        let verified = Kind::Ebay
            .verify(
                &Inbound {
                    method: signed.method,
                    endpoint_url: "http://hub.test/ingest/src",
                    query: "",
                    headers: &signed.headers,
                    body: &signed.body,
                    now: "2026-12-05T12:00:00Z".parse().expect("time"),
                },
                &source,
                &NoKeys,
            )
            .expect("verifies");
        let Outcome::Event(webhook) = verified else {
            panic!("an event");
        };
        let theirs = Kind::Ebay.normalize(&webhook);
        assert_eq!(
            fact_of(ours.topic, ours.status.as_deref()),
            fact_of(theirs.topic, theirs.status.as_deref())
        );
        assert_eq!(fact_of(ours.topic, ours.status.as_deref()), "order.created");
        assert_eq!(ours.resource, theirs.resource);
        assert_eq!(api_order.events[0].partner_id, webhook.partner_id);
        assert_eq!(api_order.events[0].event_type, webhook.event_type);
    }
}
