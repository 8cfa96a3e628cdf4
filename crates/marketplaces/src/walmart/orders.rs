//! Walmart's orders API for reconciliation (`docs/orders-apis.md` §1 has the sources).
//!
//! - Token: `POST {base}/v3/token`, `Authorization: Basic base64(clientId:clientSecret)`, form
//!   body `grant_type=client_credentials`, with `WM_QOS.CORRELATION_ID` and `WM_SVC.NAME`;
//!   the answer is `{access_token, token_type, expires_in}` (900 s).
//! - Orders: `GET {base}/v3/orders?lastModifiedStartDate=…&lastModifiedEndDate=…&limit=200`
//!   with `WM_SEC.ACCESS_TOKEN`, `WM_QOS.CORRELATION_ID`, `WM_SVC.NAME` and `Accept:
//!   application/json`. `createdStartDate` is sent 180 days back (Walmart's horizon), because
//!   its default (7 days) may narrow a last-modified query (unconfirmed).
//! - Paging: `list.meta.nextCursor` is a whole query string (it starts with `?` and carries the
//!   filters), sent verbatim after `/v3/orders`; absent on the last page.
//! - Errors: 401 bad token or credentials, 429 a rate limit (no `Retry-After` documented),
//!   `{"errors":[…]}` bodies.
//!
//! Credentials: `clientId`, `clientSecret`. Optional option `serviceName` (`WM_SVC.NAME`,
//! default `Walmart Marketplace`, the guide's example).
//!
//! What a webhook would have said: every order was created (`ORDER_UPDATES` with
//! `subEventType` `PO_CREATED`, the form that replaces the separate `PO_CREATED` event); an
//! order with a cancelled line was cancelled (`PO_LINE_AUTOCANCELLED`). Walmart sends no
//! webhook for acknowledgement, shipment or delivery, so those make no event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, iso_seconds, with_query,
};
use crate::{Kind, NativeEvent, util};

/// Walmart's orders client.
pub struct Api;

const DEFAULT_SERVICE_NAME: &str = "Walmart Marketplace";
const HORIZON: SignedDuration = SignedDuration::from_hours(180 * 24);

fn service_headers(ctx: &OrdersContext) -> Vec<(String, String)> {
    vec![
        ("WM_QOS.CORRELATION_ID".into(), ctx.nonce.to_string()),
        (
            "WM_SVC.NAME".into(),
            ctx.option("serviceName")
                .unwrap_or(DEFAULT_SERVICE_NAME)
                .to_string(),
        ),
        ("Accept".into(), "application/json".into()),
    ]
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://marketplace.walmartapis.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["clientId", "clientSecret"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        let basic = STANDARD.encode(format!(
            "{}:{}",
            ctx.credential("clientId")?,
            ctx.credential("clientSecret")?
        ));
        let mut headers = service_headers(ctx);
        headers.push(("Authorization".into(), format!("Basic {basic}")));
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        Ok(Some(ApiRequest {
            method: "POST",
            url: format!("{}/v3/token", ctx.base_url),
            headers,
            body: Some(b"grant_type=client_credentials".to_vec()),
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
        let url = match next {
            // The cursor is a query string with the filters in it; with or without its `?`.
            Some(cursor) => format!(
                "{}/v3/orders?{}",
                ctx.base_url,
                cursor.trim_start_matches('?')
            ),
            None => with_query(
                &format!("{}/v3/orders", ctx.base_url),
                &[
                    ("lastModifiedStartDate", &iso_seconds(window.since)),
                    ("lastModifiedEndDate", &iso_seconds(window.until)),
                    ("createdStartDate", &iso_seconds(ctx.now - HORIZON)),
                    ("limit", "200"),
                ],
            ),
        };
        let mut headers = service_headers(ctx);
        headers.push(("WM_SEC.ACCESS_TOKEN".into(), token.value.clone()));
        Ok(ApiRequest::get(url, headers))
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
        let list = body
            .get("list")
            .ok_or_else(|| ApiError::Protocol("the answer has no list".into()))?;
        let next = list
            .pointer("/meta/nextCursor")
            .and_then(Value::as_str)
            .filter(|s| !s.trim_start_matches('?').is_empty())
            .map(str::to_string);
        let orders = match list.pointer("/elements/order") {
            Some(Value::Array(orders)) => orders
                .iter()
                .map(|o| order(ctx, o))
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(ApiError::Protocol(
                    "list.elements.order is not an array".into(),
                ));
            }
        };
        Ok(Page { orders, next })
    }
}

fn millis(value: Option<&Value>) -> Option<Timestamp> {
    value
        .and_then(Value::as_i64)
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
}

/// One `PurchaseOrderTypeV3` order: its id, its line statuses, and the events for them.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    let id = o
        .get("purchaseOrderId")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no purchaseOrderId".into()))?;
    let lines = o
        .pointer("/orderLines/orderLine")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut statuses: Vec<String> = Vec::new();
    let mut updated_at = millis(o.get("orderDate"));
    for line in &lines {
        if let Some(at) = millis(line.get("statusDate")) {
            updated_at = Some(updated_at.map_or(at, |u| u.max(at)));
        }
        for s in line
            .pointer("/orderLineStatuses/orderLineStatus")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(status) = s.get("status").and_then(Value::as_str)
                && !statuses.iter().any(|known| known == status)
            {
                statuses.push(status.to_string());
            }
        }
    }
    let created_at = millis(o.get("orderDate"));
    let mut events = vec![event(ctx, &id, o, "PO_CREATED", created_at)];
    if statuses.iter().any(|s| s.eq_ignore_ascii_case("Cancelled")) {
        events.push(event(ctx, &id, o, "PO_LINE_AUTOCANCELLED", updated_at));
    }
    Ok(ApiOrder {
        order_id: id,
        status: statuses.join(","),
        updated_at,
        events,
    })
}

/// The `ORDER_UPDATES` webhook Walmart would have sent for `sub_event`.
fn event(
    ctx: &OrdersContext,
    id: &str,
    order: &Value,
    sub_event: &str,
    at: Option<Timestamp>,
) -> NativeEvent {
    let at = at.unwrap_or(ctx.now);
    let event_id = util::hash_key(&["walmart", ctx.partner_id, id, sub_event]);
    let mut payload = json!({
        "partnerId": ctx.partner_id,
        "subEventType": sub_event,
        "purchaseOrderId": id,
    });
    if let Some(customer) = order.get("customerOrderId") {
        payload["customerOrderId"] = customer.clone();
    }
    NativeEvent {
        kind: Kind::Walmart,
        event_type: "ORDER_UPDATES".into(),
        dedup_key: event_id.clone(),
        native_event_id: Some(event_id.clone()),
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at),
        payload: json!({
            "source": {
                "eventType": "ORDER_UPDATES",
                "eventVersion": "V1",
                "eventTime": at.to_string(),
                "eventId": event_id,
            },
            "payload": payload,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://wm.test",
            credentials,
            options,
            partner_id: "seller-1",
            now: "2026-12-05T12:00:00Z".parse().expect("time"),
            nonce: "corr-1",
        }
    }

    fn window() -> Window {
        Window {
            since: "2026-12-04T12:00:00Z".parse().expect("time"),
            until: "2026-12-05T11:58:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn the_token_request_is_basic_client_credentials() {
        let creds = json!({"clientId": "id", "clientSecret": "secret"});
        let none = json!({});
        let request = Api
            .token_request(&ctx(&creds, &none))
            .expect("builds")
            .expect("a token step");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://wm.test/v3/token");
        // base64("id:secret"), computed by hand.
        assert_eq!(request.header("authorization"), Some("Basic aWQ6c2VjcmV0"));
        assert_eq!(request.header("WM_SVC.NAME"), Some("Walmart Marketplace"));
        assert_eq!(request.header("WM_QOS.CORRELATION_ID"), Some("corr-1"));
        assert_eq!(
            request.body.as_deref(),
            Some(&b"grant_type=client_credentials"[..])
        );
        let missing = json!({"clientId": "id"});
        assert!(matches!(
            Api.token_request(&ctx(&missing, &none)),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn pages_follow_next_cursor_verbatim() {
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
        assert!(first.url.starts_with("http://wm.test/v3/orders?"));
        assert!(
            first
                .url
                .contains("lastModifiedStartDate=2026-12-04T12%3A00%3A00Z"),
            "{}",
            first.url
        );
        assert_eq!(first.header("WM_SEC.ACCESS_TOKEN"), Some("tok"));
        let next = Api
            .page_request(
                &ctx(&creds, &none),
                Some(&token),
                window(),
                Some("?limit=200&hasMoreElements=true&soIndex=2"),
            )
            .expect("builds");
        assert_eq!(
            next.url,
            "http://wm.test/v3/orders?limit=200&hasMoreElements=true&soIndex=2"
        );
    }

    #[test]
    fn an_order_is_created_and_a_cancelled_line_cancels_it() {
        let creds = json!({});
        let none = json!({});
        let body = json!({"list": {"meta": {"totalCount": 2, "nextCursor": "?soIndex=2"},
        "elements": {"order": [
            {"purchaseOrderId": "PO-1", "customerOrderId": "C-1", "orderDate": 1764936000000_i64,
             "orderLines": {"orderLine": [{"lineNumber": "1", "statusDate": 1764936100000_i64,
                "orderLineStatuses": {"orderLineStatus": [{"status": "Created"}]}}]}},
            {"purchaseOrderId": "PO-2", "orderDate": 1764936000000_i64,
             "orderLines": {"orderLine": [{"lineNumber": "1",
                "orderLineStatuses": {"orderLineStatus": [{"status": "Cancelled"}]}}]}}
        ]}}});
        let page = Api
            .read_page(
                &ctx(&creds, &none),
                window(),
                &ApiResponse {
                    status: 200,
                    headers: vec![],
                    body: body.to_string().into_bytes(),
                },
            )
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("?soIndex=2"));
        assert_eq!(page.orders.len(), 2);
        let normalized: Vec<_> = page.orders[1]
            .events
            .iter()
            .map(|e| Kind::Walmart.normalize(e).topic)
            .collect();
        assert_eq!(
            normalized,
            vec![Some("order.created"), Some("order.cancelled")]
        );
        let created = Kind::Walmart.normalize(&page.orders[0].events[0]);
        assert_eq!(
            created.resource.map(|r| r.id),
            Some("PO-1".to_string()),
            "the resource is the order, as a webhook names it"
        );
        let unauthorized = Api.read_page(
            &ctx(&creds, &none),
            window(),
            &ApiResponse {
                status: 401,
                headers: vec![],
                body: br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
            },
        );
        assert!(matches!(unauthorized, Err(ApiError::Unauthorized(_))));
    }
}
