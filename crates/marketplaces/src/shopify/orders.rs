//! Shopify's orders API for reconciliation (`docs/orders-apis.md` §7 has the sources): the REST
//! Admin API's order list, which Shopify calls legacy since October 2024 but still serves to
//! existing and custom apps.
//!
//! - No token step: the shop's Admin API access token (`accessToken`, got when the app was
//!   installed) goes in `X-Shopify-Access-Token` on every call.
//! - Orders: `GET {base}/admin/api/{version}/orders.json?status=any&updated_at_min=…&
//!   updated_at_max=…&limit=250`. `status=any`, or Shopify leaves out closed and cancelled
//!   orders (its default is `open`); 250 is the documented maximum. Both bounds are inclusive
//!   ("at or after"), the times are ISO 8601 with an offset (`2026-12-05T10:30:15+00:00`, the
//!   reference's form).
//! - Paging: the `Link` header's `rel="next"` URL; its `page_info` value is this client's `next`,
//!   as it appears there (Shopify: it "must be used exactly as it appears"). The next request
//!   carries only `limit` and `page_info`, since Shopify refuses the filters beside `page_info`.
//!   No `rel="next"`: the last page.
//! - Errors: `{"errors": …}` bodies; 401/403 bad token or scope, 429 a rate limit with
//!   `Retry-After` (seconds, possibly fractional: `2.0`), 5xx transient, other 4xx refused (402 a
//!   frozen shop, 404 an unknown shop, 423 a locked one).
//!
//! Credentials: `accessToken`. Options (none required): `shop`, the shop's `*.myshopify.com`
//! name (with or without the domain), put into the default base URL
//! `https://{shop}.myshopify.com`; without it, the partner (the shop's domain, as
//! `X-Shopify-Shop-Domain` names it) is used. A base URL without `{shop}` (a simulator) is used
//! as it is. `apiVersion`, default `2026-07` (the version of the official library's order
//! resource the notes read; Shopify serves each version for about a year).
//!
//! What a webhook would have said, for the order as it now stands: `orders/create` (every order
//! was created: `order.created`), then `orders/fulfilled` when `fulfillment_status` is
//! `fulfilled` or `orders/partially_fulfilled` when it is `partial` (`order.updated` with that
//! status), then `orders/cancelled` when `cancelled_at` is set (`order.cancelled`). Each payload
//! is the order as the API returned it, as Shopify's order webhooks carry the order resource
//! itself. `orders/paid` and `orders/updated` are not made: they say nothing a status change
//! does not, and an `orders/updated` fires on any edit (which ones were sent cannot be told from
//! the order; this choice is the module's, not the documentation's).

use jiff::Timestamp;
use serde_json::Value;

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, with_query,
};
use crate::{Kind, NativeEvent, util};

/// Shopify's orders client.
pub struct Api;

/// The production base URL; `{shop}` is replaced by the shop's name.
pub const DEFAULT_BASE_URL: &str = "https://{shop}.myshopify.com";
const DEFAULT_VERSION: &str = "2026-07";
const LIMIT: &str = "250";

/// A time as the reference writes it: ISO 8601 with an offset, to the second.
fn iso_offset(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// `{base}/admin/api/{version}/orders.json`, with `{shop}` filled in when the base has it.
fn orders_url(ctx: &OrdersContext) -> Result<String, ApiError> {
    let version = ctx.option("apiVersion").unwrap_or(DEFAULT_VERSION);
    if !version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::Config(format!(
            "options.apiVersion {version:?} is not a Shopify API version (such as 2026-07)"
        )));
    }
    let base = if ctx.base_url.contains("{shop}") {
        let given = ctx.option("shop").unwrap_or(ctx.partner_id);
        let shop = given
            .trim()
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .trim_end_matches(".myshopify.com");
        if shop.is_empty() || !shop.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ApiError::Config(format!(
                "options.shop {given:?} is not a shop's myshopify.com name"
            )));
        }
        ctx.base_url.replace("{shop}", shop)
    } else {
        ctx.base_url.to_string()
    };
    Ok(format!("{base}/admin/api/{version}/orders.json"))
}

/// The `page_info` of the `Link` header's `rel="next"` URL, as it appears there.
pub fn next_page_info(link: &str) -> Option<String> {
    // `<url>; rel="previous", <url>; rel="next"`: a URL may hold commas (`fields=a,b`), so
    // each link is read from its `<` to its `>`, then its parameters up to the next `<`.
    let mut rest = link;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let url = &after[..end];
        let params_end = after[end..].find('<').map_or(after.len(), |i| end + i);
        let params = &after[end + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=").is_some_and(|v| {
                v.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            let query = url.split_once('?')?.1;
            let query = query.split('#').next().unwrap_or(query);
            return query
                .split('&')
                .find_map(|pair| pair.strip_prefix("page_info="))
                .filter(|v| !v.is_empty())
                .map(str::to_string);
        }
        rest = &after[params_end..];
    }
    None
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        DEFAULT_BASE_URL
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["accessToken"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        // The access token is a credential, used as it is; check what a call needs.
        ctx.credential("accessToken")?;
        orders_url(ctx)?;
        Ok(None)
    }

    fn page_request(
        &self,
        ctx: &OrdersContext,
        _token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        let token = ctx.credential("accessToken")?;
        let url = orders_url(ctx)?;
        let url = match next.filter(|n| !n.is_empty()) {
            Some(page_info) => {
                // Sent as it appeared in the Link header (already encoded there); a value
                // that could break out of its parameter is not one Shopify gave.
                if page_info
                    .bytes()
                    .any(|b| matches!(b, b'&' | b'#') || b <= b' ')
                {
                    return Err(ApiError::Protocol(format!(
                        "page_info {page_info:?} is not a cursor"
                    )));
                }
                format!("{url}?limit={LIMIT}&page_info={page_info}")
            }
            None => with_query(
                &url,
                &[
                    ("status", "any"),
                    ("updated_at_min", &iso_offset(window.since)),
                    ("updated_at_max", &iso_offset(window.until)),
                    ("limit", LIMIT),
                ],
            ),
        };
        Ok(ApiRequest::get(
            url,
            vec![
                ("X-Shopify-Access-Token".into(), token.to_string()),
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
        if let Some(errors) = body.get("errors") {
            // Shopify answers errors with a 4xx; one in a 2xx is refused all the same.
            return Err(ApiError::Refused(format!(
                "HTTP {}: {errors}",
                response.status
            )));
        }
        let orders = match body.get("orders") {
            Some(Value::Array(orders)) => orders
                .iter()
                .map(|o| order(ctx, o))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(ApiError::Protocol("the answer has no orders array".into())),
        };
        let next = response.header("link").and_then(next_page_info);
        Ok(Page { orders, next })
    }
}

fn text<'a>(o: &'a Value, name: &str) -> Option<&'a str> {
    o.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn time(o: &Value, name: &str) -> Option<Timestamp> {
    o.get(name).and_then(util::parse_time)
}

/// One order of `orders`: its id, its state, and the webhooks that state stands for.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    if !o.is_object() {
        return Err(ApiError::Protocol("an order is not an object".into()));
    }
    let id = o
        .get("id")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no id".into()))?;
    let updated_at = time(o, "updated_at").or_else(|| time(o, "created_at"));
    let cancelled_at = time(o, "cancelled_at");
    let fulfillment = text(o, "fulfillment_status");
    let mut events = vec![event(ctx, &id, o, "orders/create", time(o, "created_at"))];
    match fulfillment {
        Some("fulfilled") => events.push(event(ctx, &id, o, "orders/fulfilled", updated_at)),
        Some("partial") => {
            events.push(event(ctx, &id, o, "orders/partially_fulfilled", updated_at))
        }
        _ => {}
    }
    if o.get("cancelled_at").is_some_and(|c| !c.is_null()) {
        events.push(event(
            ctx,
            &id,
            o,
            "orders/cancelled",
            cancelled_at.or(updated_at),
        ));
    }
    // The state as one string: financial status, then fulfillment, then cancelled/closed.
    let mut status: Vec<&str> = Vec::new();
    status.extend(text(o, "financial_status"));
    status.extend(fulfillment);
    if o.get("cancelled_at").is_some_and(|c| !c.is_null()) {
        status.push("cancelled");
    } else if o.get("closed_at").is_some_and(|c| !c.is_null()) {
        status.push("closed");
    }
    Ok(ApiOrder {
        order_id: id,
        status: status.join(","),
        updated_at,
        events,
    })
}

/// The order webhook `topic` Shopify would have sent, as `shopify::verify` gives one.
fn event(
    ctx: &OrdersContext,
    id: &str,
    order: &Value,
    topic: &str,
    at: Option<Timestamp>,
) -> NativeEvent {
    let key = util::hash_key(&["shopify", ctx.partner_id, id, topic]);
    NativeEvent {
        kind: Kind::Shopify,
        event_type: topic.to_string(),
        dedup_key: key.clone(),
        native_event_id: Some(key),
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at.unwrap_or(ctx.now)),
        payload: order.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use crate::{Inbound, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings};
    use jiff::SignedDuration;
    use serde_json::json;

    fn ctx<'a>(base_url: &'a str, credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url,
            credentials,
            options,
            partner_id: "demo-shop.myshopify.com",
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

    fn answer(status: u16, headers: Vec<(String, String)>, body: Value) -> ApiResponse {
        ApiResponse {
            status,
            headers,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_first_page_asks_for_any_status_in_the_window() {
        let creds = json!({"accessToken": "shpat_1"});
        let none = json!({});
        let c = ctx(DEFAULT_BASE_URL, &creds, &none);
        assert_eq!(Api.token_request(&c), Ok(None));
        let first = Api.page_request(&c, None, window(), None).expect("builds");
        assert_eq!(first.method, "GET");
        assert_eq!(
            first.url,
            "https://demo-shop.myshopify.com/admin/api/2026-07/orders.json?status=any\
             &updated_at_min=2026-12-04T12%3A00%3A00%2B00%3A00\
             &updated_at_max=2026-12-05T11%3A58%3A00%2B00%3A00&limit=250"
        );
        assert_eq!(first.header("x-shopify-access-token"), Some("shpat_1"));
        assert_eq!(first.body, None);

        let opts = json!({"shop": "other-shop", "apiVersion": "2026-10"});
        let other = Api
            .page_request(&ctx(DEFAULT_BASE_URL, &creds, &opts), None, window(), None)
            .expect("builds");
        assert!(
            other
                .url
                .starts_with("https://other-shop.myshopify.com/admin/api/2026-10/orders.json?"),
            "{}",
            other.url
        );
        let sim = Api
            .page_request(
                &ctx("http://127.0.0.1:9", &creds, &opts),
                None,
                window(),
                None,
            )
            .expect("builds");
        assert!(
            sim.url
                .starts_with("http://127.0.0.1:9/admin/api/2026-10/orders.json?")
        );

        let missing = json!({});
        assert!(matches!(
            Api.token_request(&ctx(DEFAULT_BASE_URL, &missing, &none)),
            Err(ApiError::Config(_))
        ));
        let bad_shop = json!({"shop": "evil.example/x"});
        assert!(matches!(
            Api.token_request(&ctx(DEFAULT_BASE_URL, &creds, &bad_shop)),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn later_pages_send_only_limit_and_page_info() {
        let creds = json!({"accessToken": "shpat_1"});
        let none = json!({});
        let c = ctx("http://shop.test", &creds, &none);
        let next = Api
            .page_request(&c, None, window(), Some("eyJsYXN0X2lkIjo0fQ"))
            .expect("builds");
        assert_eq!(
            next.url,
            "http://shop.test/admin/api/2026-07/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0fQ"
        );
        assert!(matches!(
            Api.page_request(&c, None, window(), Some("x&status=open")),
            Err(ApiError::Protocol(_))
        ));
    }

    #[test]
    fn the_next_link_is_found_among_several() {
        let both = "<https://s.myshopify.com/admin/api/2026-07/orders.json?limit=2&fields=id,name\
                    &page_info=prev123>; rel=\"previous\", \
                    <https://s.myshopify.com/admin/api/2026-07/orders.json?limit=2\
                    &page_info=next%3D456>; rel=\"next\"";
        assert_eq!(next_page_info(both).as_deref(), Some("next%3D456"));
        let only_previous =
            "<https://s.myshopify.com/x.json?page_info=p&limit=2>; rel=\"previous\"";
        assert_eq!(next_page_info(only_previous), None);
        assert_eq!(
            next_page_info("<https://s/x.json?page_info=abc&limit=2>; rel=next").as_deref(),
            Some("abc")
        );
        assert_eq!(next_page_info(""), None);
    }

    fn orders_body() -> Value {
        json!({"orders": [
            {"id": 450789469, "admin_graphql_api_id": "gid://shopify/Order/450789469",
             "name": "#1001", "created_at": "2026-12-05T06:00:00-05:00",
             "updated_at": "2026-12-05T06:10:00-05:00", "financial_status": "paid",
             "fulfillment_status": null, "cancelled_at": null, "closed_at": null},
            {"id": 450789470, "created_at": "2026-12-05T06:00:00-05:00",
             "updated_at": "2026-12-05T06:20:00-05:00", "financial_status": "paid",
             "fulfillment_status": "fulfilled", "cancelled_at": null,
             "closed_at": "2026-12-05T06:20:00-05:00"},
            {"id": 450789471, "created_at": "2026-12-05T06:00:00-05:00",
             "updated_at": "2026-12-05T06:30:00-05:00", "financial_status": "voided",
             "fulfillment_status": null, "cancelled_at": "2026-12-05T06:30:00-05:00"}
        ]})
    }

    #[test]
    fn each_order_is_created_then_fulfilled_or_cancelled() {
        let creds = json!({"accessToken": "shpat_1"});
        let none = json!({});
        let c = ctx("http://shop.test", &creds, &none);
        let link = "<http://shop.test/admin/api/2026-07/orders.json?limit=250&page_info=abc>; \
                    rel=\"next\"";
        let page = Api
            .read_page(
                &c,
                window(),
                &answer(200, vec![("link".into(), link.into())], orders_body()),
            )
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("abc"));
        assert_eq!(page.orders.len(), 3);
        let first = &page.orders[0];
        assert_eq!(first.order_id, "450789469");
        assert_eq!(first.status, "paid");
        assert_eq!(
            first.updated_at,
            Some("2026-12-05T11:10:00Z".parse().expect("time"))
        );
        let facts = |o: &ApiOrder| -> Vec<String> {
            o.events
                .iter()
                .map(|e| {
                    let n = Kind::Shopify.normalize(e);
                    assert_eq!(n.resource.map(|r| r.id), Some(o.order_id.clone()));
                    fact_of(n.topic, n.status.as_deref())
                })
                .collect()
        };
        assert_eq!(facts(first), ["order.created"]);
        assert_eq!(page.orders[1].status, "paid,fulfilled,closed");
        assert_eq!(
            facts(&page.orders[1]),
            ["order.created", "order.updated|fulfilled"]
        );
        assert_eq!(page.orders[2].status, "voided,cancelled");
        assert_eq!(
            facts(&page.orders[2]),
            ["order.created", "order.cancelled|voided"]
        );
        let cancel = &page.orders[2].events[1];
        assert_eq!(cancel.event_type, "orders/cancelled");
        assert_eq!(
            cancel.occurred_at,
            Some("2026-12-05T11:30:00Z".parse().expect("time"))
        );
        assert_eq!(
            cancel.partner_id.as_deref(),
            Some("demo-shop.myshopify.com")
        );
        let last = Api
            .read_page(&c, window(), &answer(200, vec![], json!({"orders": []})))
            .expect("reads");
        assert_eq!(last, Page::default(), "no Link header: the last page");
    }

    #[test]
    fn errors_map_by_status() {
        let creds = json!({"accessToken": "shpat_1"});
        let none = json!({});
        let c = ctx("http://shop.test", &creds, &none);
        let read =
            |status, headers, body| Api.read_page(&c, window(), &answer(status, headers, body));
        assert!(matches!(
            read(
                401,
                vec![],
                json!({"errors": "[API] Invalid API key or access token"})
            ),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(403, vec![], json!({"errors": "read_orders scope needed"})),
            Err(ApiError::Unauthorized(_))
        ));
        match read(
            429,
            vec![("retry-after".into(), "2.0".into())],
            json!({"errors": "Exceeded 2 calls per second for api client."}),
        ) {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Some(SignedDuration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(
                400,
                vec![],
                json!({"errors": {"status": "status cannot be passed when page_info is present"}})
            ),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(503, vec![], json!({})),
            Err(ApiError::Transient(_))
        ));
        assert!(matches!(
            read(200, vec![], json!({"errors": "Not Found"})),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(200, vec![], json!({"order": {}})),
            Err(ApiError::Protocol(_))
        ));
        assert!(matches!(
            read(200, vec![], json!({"orders": [{"name": "#1"}]})),
            Err(ApiError::Protocol(_))
        ));
    }

    fn verified(topic: &str, options: Value) -> crate::NativeEvent {
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("time");
        let signed = Kind::Shopify
            .sign(&SignRequest {
                event_type: topic.into(),
                secret: "shpss_secret".into(),
                options,
                endpoint_url: "https://hub.example/ingest/src_1".into(),
                partner_id: "demo-shop.myshopify.com".into(),
                resource_id: "450789469".into(),
                event_id: "wh-1".into(),
                now,
            })
            .expect("signs");
        let headers: Vec<(String, String)> = signed
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let source = SourceSettings {
            kind: Kind::Shopify,
            secrets: vec![SourceSecret {
                id: "0".into(),
                value: "shpss_secret".into(),
            }],
            replay_window: SignedDuration::from_mins(5),
            options: json!({}),
        };
        let inbound = Inbound {
            method: "POST",
            endpoint_url: "https://hub.example/ingest/src_1",
            query: "",
            headers: &headers,
            body: &signed.body,
            now,
        };
        let Ok(Outcome::Event(native)) = Kind::Shopify.verify(&inbound, &source, &NoKeys) else {
            panic!("the signed webhook verifies");
        };
        native
    }

    #[test]
    fn the_events_state_the_same_facts_as_signed_webhooks() {
        let creds = json!({"accessToken": "shpat_1"});
        let none = json!({});
        let c = ctx("http://shop.test", &creds, &none);
        let page = Api
            .read_page(&c, window(), &answer(200, vec![], orders_body()))
            .expect("reads");
        let fact = |e: &crate::NativeEvent| {
            let n = Kind::Shopify.normalize(e);
            (
                fact_of(n.topic, n.status.as_deref()),
                n.resource.map(|r| (r.kind, r.id)),
            )
        };
        let created = verified("orders/create", json!({}));
        let ours = &page.orders[0].events[0];
        assert_eq!(created.event_type, ours.event_type);
        assert_eq!(created.partner_id, ours.partner_id);
        assert_eq!(fact(&created), fact(ours));
        assert_eq!(
            fact(ours),
            (
                "order.created".to_string(),
                Some(("order".to_string(), "450789469".to_string()))
            )
        );
        // The same order, cancelled with its authorization voided.
        let mut cancelled_body = orders_body();
        cancelled_body["orders"][2]["id"] = json!(450789469);
        let page = Api
            .read_page(&c, window(), &answer(200, vec![], cancelled_body))
            .expect("reads");
        let cancelled = verified("orders/cancelled", json!({"financialStatus": "voided"}));
        assert_eq!(fact(&cancelled), fact(&page.orders[2].events[1]));
        let fulfilled = verified(
            "orders/fulfilled",
            json!({"fulfillmentStatus": "fulfilled"}),
        );
        let mut fulfilled_body = orders_body();
        fulfilled_body["orders"][1]["id"] = json!(450789469);
        let page = Api
            .read_page(&c, window(), &answer(200, vec![], fulfilled_body))
            .expect("reads");
        assert_eq!(fact(&fulfilled), fact(&page.orders[1].events[1]));
    }
}
