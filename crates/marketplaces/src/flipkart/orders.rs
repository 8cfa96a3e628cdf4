//! Flipkart's orders API for reconciliation: the Seller API v3 shipments search
//! (`docs/orders-apis.md` §6 has the sources).
//!
//! - Token: `GET {base}/oauth-service/oauth/token?grant_type=client_credentials&scope=Seller_Api`
//!   with `Authorization: Basic base64(appId:appSecret)`; `{access_token, token_type: "bearer",
//!   expires_in, scope}` back.
//! - Search: `POST {base}/sellers/v3/shipments/filter/`, `Authorization: Bearer <token>`, body
//!   `{"filter": {"type", "states", "modifiedDate": {"from", "to"}, …}, "pagination":
//!   {"pageSize": 20}, "sort": {"field": "modifiedDate", "order": "asc"}}`. Times go as in the
//!   documentation's example, `2026-01-01T00:00:00.000+05:30`; the form Flipkart expects and
//!   whether `from`/`to` are inclusive are unconfirmed. 20 is the v2 search's cap (v3 states none).
//! - `filter.type` is required and its `states` depend on it, so a window takes six searches, in
//!   this order (each name is also its cursor's): `preDispatch` (`APPROVED`,
//!   `PACKING_IN_PROGRESS`, `PACKED`, `FORM_FAILED`, `READY_TO_DISPATCH`, `hold: false`);
//!   `preDispatch-held` (the same with `hold: true`: Flipkart's page [F3] says `hold` "defaults to
//!   False", which `docs/orders-apis.md` does not mention); `postDispatch` (`SHIPPED`,
//!   `DELIVERED`, `PICKUP_COMPLETE`); then `cancelled` with `states: ["CANCELLED"]` (unconfirmed)
//!   once per `cancellationType`: `sellerCancellation`, `buyerCancellation`,
//!   `marketplaceCancellation`. `RETURN_REQUESTED`, `RETURNED` and `COMPLETED` shipments are in
//!   no search's states and are not read.
//! - Paging: `hasMore` and `nextPageUrl` (`/v3/shipments/filter?next_token=…`), sent as a `GET`,
//!   resolved against `{base}/sellers` (or `{base}` when it starts with `/sellers/`); an absolute
//!   URL is cut to its path and query and sent to `{base}` too, so that the token only goes to
//!   the configured host (whether Flipkart sends it absolute is unconfirmed). The cursor is
//!   `<search>` (its first page) or `<search> <nextPageUrl>`; `None` after the last search.
//! - Errors: by HTTP status only (401: an expired or wrong token). 429 and `Retry-After` are not
//!   documented; the common meanings apply ([`ApiResponse::status_error`]).
//!
//! Credentials: `appId`, `appSecret` (a self-access application). No options.
//!
//! # Which search a page answers
//!
//! Flipkart's answer does not say which search it is for (an empty page is the same for all
//! six), yet the cursor after a search's last page names the next search: so pages are read
//! with [`OrdersApi::read_page_of`], which is given the cursor the page was asked with.
//!
//! # What a webhook would have said
//!
//! Each order of each shipment (items grouped by `orderId`; an order split over shipments is one
//! [`ApiOrder`] per shipment) makes, in the form [`crate::flipkart`] reads (`eventType`,
//! `shipmentId`, `attributes.orderItems[].{orderId, status}`): `shipment_created` with its items
//! `APPROVED` (as that notification has them), then one event per other item status Flipkart
//! notifies, with the items in it: `shipment_packed`, `shipment_form_failed`,
//! `shipment_ready_to_dispatch`, `shipment_pickup_complete`, `shipment_shipped`,
//! `shipment_delivered`, `shipment_cancelled` (names from Flipkart's Order Management
//! Notification Reference, seller.flipkart.com/api-docs/order-api-docs/NotifRef.html, which
//! `docs/orders-apis.md` does not cover). `PACKING_IN_PROGRESS` has no notification. Unlike the
//! real status notifications (`attributes.status` only), each event lists `orderItems` with their
//! `orderId`, so that it names the order as `shipment_created` does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, with_query,
};
use crate::{Kind, NativeEvent, util};

/// Flipkart's orders client.
pub struct Api;

pub const TOKEN_PATH: &str = "/oauth-service/oauth/token";
pub const SEARCH_PATH: &str = "/sellers/v3/shipments/filter/";
const PAGE_SIZE: u32 = 20;

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The searches of a window, in order: cursor name, `filter.type`, `filter.hold`. A cancelled
/// search's name is its `cancellationType`.
const SEARCHES: [(&str, &str, Option<bool>); 6] = [
    ("preDispatch", "preDispatch", Some(false)),
    ("preDispatch-held", "preDispatch", Some(true)),
    ("postDispatch", "postDispatch", None),
    ("sellerCancellation", "cancelled", None),
    ("buyerCancellation", "cancelled", None),
    ("marketplaceCancellation", "cancelled", None),
];

fn states(kind: &str) -> &'static [&'static str] {
    match kind {
        "preDispatch" => &[
            "APPROVED",
            "PACKING_IN_PROGRESS",
            "PACKED",
            "FORM_FAILED",
            "READY_TO_DISPATCH",
        ],
        "postDispatch" => &["SHIPPED", "DELIVERED", "PICKUP_COMPLETE"],
        _ => &["CANCELLED"],
    }
}

/// The item statuses in lifecycle order, with the notification that announces each.
const NOTIFIED: [(&str, Option<&str>); 9] = [
    ("APPROVED", None),
    ("PACKING_IN_PROGRESS", None),
    ("PACKED", Some("shipment_packed")),
    ("FORM_FAILED", Some("shipment_form_failed")),
    ("READY_TO_DISPATCH", Some("shipment_ready_to_dispatch")),
    ("PICKUP_COMPLETE", Some("shipment_pickup_complete")),
    ("SHIPPED", Some("shipment_shipped")),
    ("DELIVERED", Some("shipment_delivered")),
    ("CANCELLED", Some("shipment_cancelled")),
];

/// A time as the documentation writes it: India time, to the millisecond.
pub fn flipkart_time(t: Timestamp) -> String {
    let ist = Offset::from_seconds(5 * 3600 + 30 * 60).unwrap_or(Offset::UTC);
    t.to_zoned(TimeZone::fixed(ist))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn search_body(index: usize, window: Window) -> Vec<u8> {
    let (name, kind, hold) = SEARCHES[index];
    let mut filter = json!({
        "type": kind,
        "states": states(kind),
        "modifiedDate": {"from": flipkart_time(window.since), "to": flipkart_time(window.until)},
    });
    if let Some(hold) = hold {
        filter["hold"] = json!(hold);
    }
    if kind == "cancelled" {
        filter["cancellationType"] = json!(name);
    }
    let body = json!({"filter": filter, "pagination": {"pageSize": PAGE_SIZE},
        "sort": {"field": "modifiedDate", "order": "asc"}});
    body.to_string().into_bytes()
}

/// A cursor: the search (its index) and, after its first page, the `nextPageUrl` to get.
fn parse_cursor(cursor: &str) -> Result<(usize, Option<&str>), ApiError> {
    let (name, url) = match cursor.trim().split_once(' ') {
        Some((name, url)) => (name, Some(url.trim()).filter(|u| !u.is_empty())),
        None => (cursor.trim(), None),
    };
    let index = SEARCHES
        .iter()
        .position(|s| s.0 == name)
        .ok_or_else(|| ApiError::Protocol(format!("not a Flipkart cursor: {cursor:?}")))?;
    Ok((index, url))
}

/// `nextPageUrl` resolved against the base URL (see the module documentation).
fn next_page_url(base_url: &str, next: &str) -> Result<String, ApiError> {
    let path = match next.split_once("://") {
        Some((scheme, rest)) if ["http", "https"].contains(&scheme) => rest
            .find('/')
            .map(|i| &rest[i..])
            .ok_or_else(|| ApiError::Protocol(format!("nextPageUrl has no path: {next:?}")))?,
        Some(_) => return Err(ApiError::Protocol(format!("not a URL: {next:?}"))),
        None => next,
    };
    let path = path.trim_start_matches('/');
    Ok(if path.starts_with("sellers/") {
        format!("{base_url}/{path}")
    } else {
        format!("{base_url}/sellers/{path}")
    })
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://api.flipkart.net"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["appId", "appSecret"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        let pair = format!(
            "{}:{}",
            ctx.credential("appId")?,
            ctx.credential("appSecret")?
        );
        let url = with_query(
            &format!("{}{TOKEN_PATH}", ctx.base_url),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "Seller_Api"),
            ],
        );
        let basic = format!("Basic {}", STANDARD.encode(pair));
        let headers = vec![
            header("Authorization", &basic),
            header("Accept", "application/json"),
        ];
        Ok(Some(ApiRequest::get(url, headers)))
    }

    fn page_request(
        &self,
        ctx: &OrdersContext,
        token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        let token = token.ok_or_else(|| ApiError::Config("no access token".into()))?;
        let (index, url) = next.map_or(Ok((0, None)), parse_cursor)?;
        let bearer = format!("Bearer {}", token.value);
        let mut headers = vec![
            header("Authorization", &bearer),
            header("Accept", "application/json"),
        ];
        let request = match url {
            Some(url) => ApiRequest::get(next_page_url(ctx.base_url, url)?, headers),
            None => {
                headers.push(header("Content-Type", "application/json"));
                ApiRequest {
                    method: "POST",
                    url: format!("{}{SEARCH_PATH}", ctx.base_url),
                    headers,
                    body: Some(search_body(index, window)),
                }
            }
        };
        Ok(request)
    }

    /// A page alone does not say which search it answers: see [`OrdersApi::read_page_of`].
    fn read_page(&self, _: &OrdersContext, _: Window, _: &ApiResponse) -> Result<Page, ApiError> {
        Err(ApiError::Protocol(
            "a Flipkart page is read knowing the request it answers (read_page_of)".into(),
        ))
    }

    fn read_page_of(
        &self,
        ctx: &OrdersContext,
        _window: Window,
        next: Option<&str>,
        response: &ApiResponse,
    ) -> Result<Page, ApiError> {
        if let Some(e) = response.status_error() {
            return Err(e);
        }
        let (index, _) = next.map_or(Ok((0, None)), parse_cursor)?;
        let body = response.json()?;
        let next = match body.get("hasMore") {
            Some(Value::Bool(true)) => {
                let url = body
                    .get("nextPageUrl")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ApiError::Protocol("hasMore is true but there is no nextPageUrl".into())
                    })?;
                Some(format!("{} {url}", SEARCHES[index].0))
            }
            None | Some(Value::Null | Value::Bool(false)) => {
                SEARCHES.get(index + 1).map(|s| s.0.to_string())
            }
            Some(_) => return Err(ApiError::Protocol("hasMore is not a boolean".into())),
        };
        let mut orders = Vec::new();
        match body.get("shipments") {
            Some(Value::Array(shipments)) => {
                for shipment in shipments {
                    orders.extend(shipment_orders(ctx, shipment)?);
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(ApiError::Protocol("shipments is not an array".into())),
        }
        Ok(Page { orders, next })
    }
}

fn status_of(item: &Value) -> &str {
    item.get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The orders of one shipment: its items grouped by `orderId`, with their events.
fn shipment_orders(ctx: &OrdersContext, shipment: &Value) -> Result<Vec<ApiOrder>, ApiError> {
    let shipment_id = shipment
        .get("shipmentId")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("a shipment has no shipmentId".into()))?;
    let updated_at = shipment.get("updatedAt").and_then(util::parse_time);
    let mut by_order: Vec<(String, Vec<&Value>)> = Vec::new();
    let items = shipment.get("orderItems").and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        let order_id = item.get("orderId").and_then(util::as_id).ok_or_else(|| {
            ApiError::Protocol(format!("an item of shipment {shipment_id} has no orderId"))
        })?;
        match by_order.iter_mut().find(|(id, _)| *id == order_id) {
            Some((_, items)) => items.push(item),
            None => by_order.push((order_id, vec![item])),
        }
    }
    let order = |(order_id, items): (String, Vec<&Value>)| {
        let mut statuses: Vec<&str> = Vec::new();
        for status in items.iter().map(|i| status_of(i)) {
            if !status.is_empty() && !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        let rank = |s: &&str| NOTIFIED.iter().position(|(n, _)| n == s);
        statuses.sort_by_key(|s| rank(s).unwrap_or(NOTIFIED.len()));
        let ordered_at = items
            .iter()
            .filter_map(|i| i.get("orderDate").and_then(util::parse_time))
            .min();
        let of = Of {
            ctx,
            shipment,
            shipment_id: &shipment_id,
            order_id: &order_id,
        };
        let created_at = ordered_at.or(updated_at);
        let mut events = vec![of.event("shipment_created", "APPROVED", &items, created_at)];
        for status in &statuses {
            if let Some((_, Some(event_type))) = NOTIFIED.iter().find(|(s, _)| s == status) {
                let with: Vec<&Value> = items
                    .iter()
                    .copied()
                    .filter(|i| status_of(i) == *status)
                    .collect();
                events.push(of.event(event_type, status, &with, updated_at));
            }
        }
        ApiOrder {
            status: statuses.join(","),
            order_id,
            updated_at,
            events,
        }
    };
    Ok(by_order.into_iter().map(order).collect())
}

/// One order of one shipment, as its notifications name it.
struct Of<'a> {
    ctx: &'a OrdersContext<'a>,
    shipment: &'a Value,
    shipment_id: &'a str,
    order_id: &'a str,
}

impl Of<'_> {
    /// The notification Flipkart would have sent: `event_type`, with `items` at `status`.
    fn event(
        &self,
        event_type: &str,
        status: &str,
        items: &[&Value],
        at: Option<Timestamp>,
    ) -> NativeEvent {
        let at = at.unwrap_or(self.ctx.now);
        let items: Vec<Value> = items
            .iter()
            .map(|item| {
                let mut item = (*item).clone();
                if let Some(object) = item.as_object_mut() {
                    object.insert("status".into(), json!(status));
                }
                item
            })
            .collect();
        let mut attributes = json!({"orderItems": items});
        if event_type != "shipment_created" {
            attributes["status"] = json!(status);
        }
        let mut payload = json!({"eventType": event_type, "source": "flipkart", "version": "v3",
            "timestamp": at.to_string(), "shipmentId": self.shipment_id, "attributes": attributes});
        if let Some(location) = self.shipment.get("locationId") {
            payload["locationId"] = location.clone();
        }
        let parts = [
            "flipkart-orders",
            self.shipment_id,
            self.order_id,
            event_type,
        ];
        NativeEvent {
            kind: Kind::Flipkart,
            event_type: event_type.to_string(),
            // Stable across runs: the same shipment, order and notification.
            dedup_key: util::hash_key(&parts),
            // As for a received notification: Flipkart has no event id and names no seller.
            native_event_id: None,
            partner_id: None,
            occurred_at: Some(at),
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use jiff::SignedDuration;

    fn ctx<'a>(credentials: &'a Value, nonce: &'a str) -> OrdersContext<'a> {
        static NONE: Value = Value::Null;
        let now = "2026-12-05T12:00:00Z".parse().expect("time");
        let (base_url, partner_id, options) = ("http://fk.test", "seller-1", &NONE);
        OrdersContext {
            base_url,
            credentials,
            options,
            partner_id,
            now,
            nonce,
        }
    }

    fn window() -> Window {
        let t = |s: &str| s.parse().expect("time");
        Window {
            since: t("2026-12-04T12:00:00Z"),
            until: t("2026-12-05T11:58:00Z"),
        }
    }

    fn token() -> AccessToken {
        AccessToken {
            value: "tok".into(),
            expires_in: None,
            refresh_token: None,
        }
    }

    fn answer(status: u16, body: &[u8]) -> ApiResponse {
        let headers = vec![header("retry-after", "4")];
        ApiResponse {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    fn ask(ctx: &OrdersContext, cursor: Option<&str>) -> ApiRequest {
        Api.page_request(ctx, Some(&token()), window(), cursor)
            .expect("builds")
    }

    /// Asks for the page of `cursor`, then reads `body` as its answer.
    fn read(ctx: &OrdersContext, cursor: Option<&str>, body: &Value) -> Page {
        ask(ctx, cursor);
        let answer = answer(200, body.to_string().as_bytes());
        Api.read_page_of(ctx, window(), cursor, &answer)
            .expect("reads")
    }

    fn filter_of(request: &ApiRequest) -> Value {
        let body: Value = serde_json::from_slice(request.body.as_deref().expect("a body")).unwrap();
        body["filter"].clone()
    }

    fn shipment(id: &str, order: &str, status: &str) -> Value {
        json!({"shipmentId": id, "locationId": "LOC1", "updatedAt": "2026-12-05T16:00:00.000+05:30",
            "orderItems": [{"orderId": order,
            "orderItemId": "1", "orderDate": "2026-12-05T15:00:00.000+05:30", "status": status}]})
    }

    #[test]
    fn the_token_request_is_a_basic_get_of_client_credentials() {
        let c = creds();
        let request = Api
            .token_request(&ctx(&c, "n"))
            .expect("builds")
            .expect("a token step");
        assert_eq!(request.method, "GET");
        let url = "http://fk.test/oauth-service/oauth/token?grant_type=client_credentials";
        assert_eq!(request.url, format!("{url}&scope=Seller_Api"));
        // base64("app-1:secret-1"), computed with python3.
        assert_eq!(
            request.header("authorization"),
            Some("Basic YXBwLTE6c2VjcmV0LTE=")
        );
        assert_eq!(request.body, None);
        let read = |r: &ApiResponse| Api.read_token(&ctx(&c, "n"), r);
        let granted = read(&answer(
            200,
            br#"{"access_token":"a","expires_in":5183999}"#,
        ));
        assert_eq!(
            granted.map(|t| t.expires_in),
            Ok(Some(SignedDuration::from_secs(5183999)))
        );
        let refused = read(&answer(401, br#"{"error":"unauthorized"}"#));
        assert!(matches!(refused, Err(ApiError::Unauthorized(_))));
        let missing = json!({"appId": "app-1"});
        let missing = Api.token_request(&ctx(&missing, "n"));
        assert!(matches!(missing, Err(ApiError::Config(_))));
    }

    fn creds() -> Value {
        json!({"appId": "app-1", "appSecret": "secret-1"})
    }

    #[test]
    fn each_search_is_a_post_and_its_next_pages_gets() {
        let c = creds();
        let c = ctx(&c, "requests");
        let first = ask(&c, None);
        assert_eq!(
            (first.method, first.url.as_str()),
            ("POST", "http://fk.test/sellers/v3/shipments/filter/")
        );
        assert_eq!(first.header("authorization"), Some("Bearer tok"));
        assert_eq!(first.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(first.body.as_deref().expect("a body")).unwrap();
        let (from, to) = (
            "2026-12-04T17:30:00.000+05:30",
            "2026-12-05T17:28:00.000+05:30",
        );
        assert_eq!(
            body,
            json!({"filter": {"type": "preDispatch", "states": ["APPROVED",
            "PACKING_IN_PROGRESS", "PACKED", "FORM_FAILED", "READY_TO_DISPATCH"], "hold": false,
            "modifiedDate": {"from": from, "to": to}}, "pagination": {"pageSize": 20},
            "sort": {"field": "modifiedDate", "order": "asc"}})
        );
        assert_eq!(
            filter_of(&ask(&c, Some("preDispatch-held")))["hold"],
            json!(true)
        );
        let shipped = filter_of(&ask(&c, Some("postDispatch")));
        assert_eq!(
            shipped["states"],
            json!(["SHIPPED", "DELIVERED", "PICKUP_COMPLETE"])
        );
        let cancelled = filter_of(&ask(&c, Some("buyerCancellation")));
        let expected = json!({"type": "cancelled", "states": ["CANCELLED"],
            "cancellationType": "buyerCancellation", "modifiedDate": {"from": from, "to": to}});
        assert_eq!(cancelled, expected);

        let url = "http://fk.test/sellers/v3/shipments/filter?next_token=abc";
        for given in ["/v3", "/sellers/v3", "https://api.flipkart.net/sellers/v3"] {
            let next = ask(
                &c,
                Some(&format!(
                    "postDispatch {given}/shipments/filter?next_token=abc"
                )),
            );
            assert_eq!(
                (next.method, next.url.as_str(), &next.body),
                ("GET", url, &None)
            );
            assert_eq!(next.header("authorization"), Some("Bearer tok"));
        }
        let untokened = Api.page_request(&c, None, window(), None);
        assert!(matches!(untokened, Err(ApiError::Config(_))));
        let unknown = Api.page_request(&c, Some(&token()), window(), Some("later"));
        assert!(matches!(unknown, Err(ApiError::Protocol(_))));
    }

    #[test]
    fn a_window_reads_every_search_page_by_page() {
        let c = creds();
        // A base URL of its own: the fallback below must not find another test's request.
        let c = OrdersContext {
            base_url: "http://sweep.test",
            ..ctx(&c, "sweep")
        };
        let more = json!({"hasMore": true, "nextPageUrl": "/v3/shipments/filter?next_token=t2",
            "shipments": [shipment("S1", "OD1", "APPROVED")]});
        let mut cursor = read(&c, None, &more).next;
        let mut seen = Vec::new();
        while let Some(next) = cursor {
            cursor = read(&c, Some(&next), &json!({"hasMore": false, "shipments": []})).next;
            seen.push(next);
        }
        let expected = [
            "preDispatch /v3/shipments/filter?next_token=t2",
            "preDispatch-held",
            "postDispatch",
            "sellerCancellation",
            "buyerCancellation",
            "marketplaceCancellation",
        ];
        assert_eq!(seen, expected);

        // The page's search comes from the cursor it was asked with.
        let page = Api
            .read_page_of(&c, window(), Some("postDispatch"), &answer(200, b"{}"))
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("sellerCancellation"));
        let no_url = Api.read_page_of(&c, window(), None, &answer(200, br#"{"hasMore": true}"#));
        assert!(matches!(no_url, Err(ApiError::Protocol(_))));
        let bare = Api.read_page(&c, window(), &answer(200, b"{}"));
        assert!(
            matches!(bare, Err(ApiError::Protocol(_))),
            "not without its cursor"
        );
    }

    #[test]
    fn each_order_is_created_then_announced_in_its_status() {
        let c = creds();
        let c = ctx(&c, "orders");
        let mut split = shipment("S3", "OD3", "SHIPPED");
        let items = split["orderItems"].as_array_mut().expect("items");
        items.push(json!({"orderItemId": "2", "orderId": "OD3", "status": "DELIVERED"}));
        items.push(json!({"orderItemId": "3", "orderId": "OD4", "status": "DELIVERED"}));
        let body = json!({"shipments": [shipment("S1", "OD1", "APPROVED"),
            shipment("S2", "OD2", "PACKING_IN_PROGRESS"), split, shipment("S5", "OD5", "CANCELLED")]});
        let page = read(&c, Some("postDispatch"), &body);
        assert_eq!(page.next.as_deref(), Some("sellerCancellation"));
        let facts: Vec<String> = (page.orders.iter())
            .map(|o| {
                let facts = o.events.iter().map(|e| {
                    let n = Kind::Flipkart.normalize(e);
                    let resource = n.resource.map(|r| (r.kind, r.id));
                    assert_eq!(resource, Some(("order".into(), o.order_id.clone())));
                    fact_of(n.topic, n.status.as_deref())
                });
                format!("{}: {}", o.order_id, facts.collect::<Vec<_>>().join(" "))
            })
            .collect();
        let expected = [
            "OD1: order.created",
            "OD2: order.created", // PACKING_IN_PROGRESS has no notification
            "OD3: order.created order.updated|SHIPPED order.updated|DELIVERED",
            "OD4: order.created order.updated|DELIVERED",
            "OD5: order.created order.cancelled|CANCELLED",
        ];
        assert_eq!(facts, expected);
        assert_eq!(page.orders[2].status, "SHIPPED,DELIVERED");

        let t = |s: &str| Some(s.parse::<Timestamp>().expect("time"));
        let (od1, od5) = (&page.orders[0], &page.orders[4].events);
        assert_eq!(od1.updated_at, t("2026-12-05T10:30:00Z"));
        let creation = &od1.events[0].payload;
        assert_eq!(od1.events[0].occurred_at, t("2026-12-05T09:30:00Z"));
        assert_eq!(creation["eventType"], json!("shipment_created"));
        assert_eq!(creation["shipmentId"], json!("S1"));
        assert_eq!(od5[1].occurred_at, od1.updated_at);
        assert_eq!(od5[1].payload["attributes"]["status"], json!("CANCELLED"));
        let first_item = &od5[0].payload["attributes"]["orderItems"][0];
        assert_eq!(first_item["status"], json!("APPROVED"));
        let again = read(&c, Some("postDispatch"), &body);
        assert_eq!(
            again.orders, page.orders,
            "the same answer, the same events"
        );

        let bad =
            json!({"shipments": [{"shipmentId": "S9", "orderItems": [{"status": "PACKED"}]}]});
        let bad = Api.read_page_of(&c, window(), None, &answer(200, bad.to_string().as_bytes()));
        assert!(matches!(bad, Err(ApiError::Protocol(_))));
    }

    #[test]
    fn errors_follow_the_http_status() {
        let c = creds();
        let c = ctx(&c, "errors");
        let read =
            |status, body: &[u8]| Api.read_page_of(&c, window(), None, &answer(status, body));
        let expired = read(401, br#"{"error":"invalid_token"}"#);
        assert!(matches!(expired, Err(ApiError::Unauthorized(_))));
        let retry_after = Some(SignedDuration::from_secs(4));
        let message = "HTTP 429: {}".to_string();
        assert_eq!(
            read(429, b"{}"),
            Err(ApiError::RateLimited {
                retry_after,
                message
            })
        );
        assert!(matches!(read(503, b""), Err(ApiError::Transient(_))));
        assert!(matches!(read(400, b"{}"), Err(ApiError::Refused(_))));
        assert!(matches!(read(200, b"<html>"), Err(ApiError::Protocol(_))));
        assert!(matches!(
            read(200, br#"{"shipments": {}}"#),
            Err(ApiError::Protocol(_))
        ));
    }
}
