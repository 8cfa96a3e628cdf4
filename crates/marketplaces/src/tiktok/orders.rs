//! TikTok Shop's orders API for reconciliation (`docs/orders-apis.md` §5 has the sources; all of
//! them third-party, TikTok's Partner Center pages were not read).
//!
//! - No token step: the seller's `accessToken` (got and refreshed outside the hub, through
//!   `auth.tiktok-shops.com`) goes in `x-tts-access-token` as it is, and every call is signed.
//! - Orders: `POST {base}/order/202309/orders/search?app_key=…&timestamp=…&shop_cipher=…&
//!   page_size=50&sort_field=update_time&sort_order=ASC[&page_token=…]&sign=…`, with
//!   `content-type: application/json` and the body `{"update_time_ge":<unix s>,
//!   "update_time_lt":<unix s>}`: the window is half-open, `[ge, lt)`, as TikTok's filter is.
//! - Signature: the query parameters except `sign` and `access_token`, sorted by name and
//!   concatenated as `{name}{value}`, after the path and before the raw body, the whole wrapped
//!   in the app secret (`secret + path + params + body + secret`); `sign` is the lowercase hex
//!   HMAC-SHA256 of that, keyed by the app secret. `timestamp` is `ctx.now` in Unix seconds.
//! - Paging: `data.next_page_token` (empty on the last page) is sent back as `page_token` with
//!   the same body; it is this client's `next` as it is.
//! - Errors: every answer is `{code, message, request_id, data}` and `code ≠ 0` is an error
//!   whatever the HTTP status: `105…` (access token) and `360…` codes (authorization, as
//!   EcomPHP treats them) and `106…` (signature, app key, timestamp) are
//!   [`ApiError::Unauthorized`], any other code [`ApiError::Refused`]. HTTP 429 is
//!   [`ApiError::RateLimited`] (a 429 and any `Retry-After` are unconfirmed), 5xx
//!   [`ApiError::Transient`], 401/403 [`ApiError::Unauthorized`].
//!
//! Credentials: `appKey`, `appSecret`, `accessToken`. Required option `shopCipher` (the shop's
//! `cipher` from Get Authorized Shops). Page size 50 (TikTok's cap is unconfirmed; integrators
//! use 50–100).
//!
//! What a webhook would have said: TikTok's order status change notification (type `1`) for
//! the order's current status, in the form [`crate::tiktok::sign`] builds (`shop_id` = the
//! partner, `data.order_id`, `data.order_status`, `data.update_time`). The status API names
//! `CANCELLED` is sent as `CANCEL`, the name the notification uses; every other status (the
//! notification's list: `UNPAID`, `ON_HOLD`, `AWAITING_SHIPMENT`, `PARTIALLY_SHIPPING`,
//! `AWAITING_COLLECTION`, `IN_TRANSIT`, `DELIVERED`, `COMPLETED`) as it is. TikTok has no
//! creation notification: the hub makes an order's first sighting `order.created` itself, so
//! each order gives exactly one event, and an order whose status is empty gives none.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window, with_query,
};
use crate::{Kind, NativeEvent, util};

/// TikTok Shop's orders client.
pub struct Api;

/// The order search's path (also signed).
pub const SEARCH_PATH: &str = "/order/202309/orders/search";
const PAGE_SIZE: &str = "50";

/// The documented signature: lowercase hex HMAC-SHA256, keyed by the app secret, of
/// `secret + path + {name}{value}… (sorted, without sign and access_token) + body + secret`.
pub fn signature(app_secret: &str, path: &str, params: &[(&str, &str)], body: &[u8]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params
        .iter()
        .filter(|(k, _)| *k != "sign" && *k != "access_token")
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut message = Vec::with_capacity(app_secret.len() * 2 + path.len() + body.len() + 64);
    message.extend_from_slice(app_secret.as_bytes());
    message.extend_from_slice(path.as_bytes());
    for (k, v) in sorted {
        message.extend_from_slice(k.as_bytes());
        message.extend_from_slice(v.as_bytes());
    }
    message.extend_from_slice(body);
    message.extend_from_slice(app_secret.as_bytes());
    hex::encode(util::hmac_sha256(app_secret.as_bytes(), &[&message]))
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://open-api.tiktokglobalshop.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["appKey", "appSecret", "accessToken"]
    }

    fn required_options(&self) -> &'static [&'static str] {
        &["shopCipher"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        // The access token is a credential; only check that everything a call needs is there.
        ctx.credential("appKey")?;
        ctx.credential("appSecret")?;
        ctx.credential("accessToken")?;
        Ok(None)
    }

    fn page_request(
        &self,
        ctx: &OrdersContext,
        _token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        let app_key = ctx.credential("appKey")?;
        let app_secret = ctx.credential("appSecret")?;
        let access_token = ctx.credential("accessToken")?;
        let shop_cipher = ctx
            .option("shopCipher")
            .ok_or_else(|| ApiError::Config("options.shopCipher is required".into()))?;
        let timestamp = ctx.now.as_second().to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("app_key", app_key),
            ("timestamp", &timestamp),
            ("shop_cipher", shop_cipher),
            ("page_size", PAGE_SIZE),
            ("sort_field", "update_time"),
            ("sort_order", "ASC"),
        ];
        if let Some(token) = next.filter(|t| !t.is_empty()) {
            params.push(("page_token", token));
        }
        let body = format!(
            r#"{{"update_time_ge":{},"update_time_lt":{}}}"#,
            window.since.as_second(),
            window.until.as_second()
        )
        .into_bytes();
        let sign = signature(app_secret, SEARCH_PATH, &params, &body);
        params.push(("sign", &sign));
        Ok(ApiRequest {
            method: "POST",
            url: with_query(&format!("{}{SEARCH_PATH}", ctx.base_url), &params),
            headers: vec![
                ("x-tts-access-token".into(), access_token.to_string()),
                ("content-type".into(), "application/json".into()),
            ],
            body: Some(body),
        })
    }

    fn read_page(
        &self,
        ctx: &OrdersContext,
        _window: Window,
        response: &ApiResponse,
    ) -> Result<Page, ApiError> {
        let status_error = response.status_error();
        if let Some(
            e @ (ApiError::RateLimited { .. } | ApiError::Transient(_) | ApiError::Unauthorized(_)),
        ) = status_error
        {
            return Err(e);
        }
        let body = match response.json() {
            Ok(body) => body,
            Err(e) => return Err(status_error.unwrap_or(e)),
        };
        let code = body.get("code").and_then(Value::as_i64).ok_or_else(|| {
            ApiError::Protocol(format!(
                "HTTP {}: the answer has no code: {}",
                response.status,
                response.snippet()
            ))
        })?;
        if code != 0 {
            let message = format!(
                "HTTP {}: code {code}: {}",
                response.status,
                body.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            let family = code.to_string();
            return Err(
                if ["105", "106", "360"].iter().any(|p| family.starts_with(p)) {
                    ApiError::Unauthorized(message)
                } else {
                    ApiError::Refused(message)
                },
            );
        }
        if let Some(e) = status_error {
            return Err(e);
        }
        let data = body
            .get("data")
            .ok_or_else(|| ApiError::Protocol("the answer has no data".into()))?;
        let next = data
            .get("next_page_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let orders = match data.get("orders") {
            Some(Value::Array(orders)) => orders
                .iter()
                .map(|o| order(ctx, o))
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(ApiError::Protocol("data.orders is not an array".into())),
        };
        Ok(Page { orders, next })
    }
}

fn seconds(value: Option<&Value>) -> Option<Timestamp> {
    value.and_then(util::parse_time)
}

/// The status a type-1 notification names for an API status.
fn notification_status(status: &str) -> &str {
    match status {
        "CANCELLED" | "CANCELED" => "CANCEL",
        other => other,
    }
}

/// One order of `data.orders`: its id, status, and the notification for that status.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    let id = o
        .get("id")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no id".into()))?;
    let status = o
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let updated_at = seconds(o.get("update_time")).or_else(|| seconds(o.get("create_time")));
    let events = if status.is_empty() {
        Vec::new()
    } else {
        vec![event(ctx, &id, notification_status(&status), updated_at)]
    };
    Ok(ApiOrder {
        order_id: id,
        status,
        updated_at,
        events,
    })
}

/// The order status change notification (type 1) TikTok would have sent.
fn event(ctx: &OrdersContext, id: &str, status: &str, at: Option<Timestamp>) -> NativeEvent {
    let at = at.unwrap_or(ctx.now);
    let key = util::hash_key(&["tiktok", ctx.partner_id, id, "1", status]);
    NativeEvent {
        kind: Kind::Tiktok,
        event_type: "1".into(),
        dedup_key: key.clone(),
        native_event_id: Some(key.clone()),
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at),
        payload: json!({
            "type": 1,
            "tts_notification_id": key,
            "shop_id": ctx.partner_id,
            "timestamp": at.as_second(),
            "data": {
                "order_id": id,
                "order_status": status,
                "update_time": at.as_second(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use crate::{Inbound, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings};
    use jiff::SignedDuration;

    fn creds() -> Value {
        json!({"appKey": "app-key-1", "appSecret": "app-secret-1", "accessToken": "at-1"})
    }

    fn options() -> Value {
        json!({"shopCipher": "ROW_cipher1"})
    }

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://tts.test",
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

    fn answer(status: u16, body: Value) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_signature_matches_the_documented_example() {
        // The guide's example inputs ([T7]); the digest computed with python3 hmac.
        let sign = signature(
            "e59af819cc",
            "/event/202309/webhooks",
            &[
                ("timestamp", "1696909648"),
                ("shop_cipher", "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"),
                ("app_key", "68xu9ks5p4i8"),
                ("sign", "ignored"),
                ("access_token", "ignored"),
            ],
            br#"{"address":"https://partner.tiktokshop.com","event_type": "PACKAGE_UPDATE"}"#,
        );
        assert_eq!(
            sign,
            "f7ca36a232c721e1ec037d357b5dc51aa7dceda28b119d37122adaa3fb7dd6ca"
        );
    }

    #[test]
    fn a_search_is_signed_over_path_sorted_query_and_body() {
        let (c, o) = (creds(), options());
        assert_eq!(Api.token_request(&ctx(&c, &o)), Ok(None));
        let first = Api
            .page_request(&ctx(&c, &o), None, window(), None)
            .expect("builds");
        assert_eq!(first.method, "POST");
        assert_eq!(
            first.body.as_deref(),
            Some(&br#"{"update_time_ge":1796385600,"update_time_lt":1796471880}"#[..])
        );
        assert_eq!(first.header("x-tts-access-token"), Some("at-1"));
        assert_eq!(first.header("content-type"), Some("application/json"));
        // python3: hmac.new(b"app-secret-1", b"app-secret-1/order/202309/orders/search"
        // b"app_keyapp-key-1page_size50shop_cipherROW_cipher1sort_fieldupdate_time"
        // b"sort_orderASCtimestamp1796472000" + body + b"app-secret-1", sha256).hexdigest()
        assert_eq!(
            first.url,
            "http://tts.test/order/202309/orders/search?app_key=app-key-1&timestamp=1796472000\
             &shop_cipher=ROW_cipher1&page_size=50&sort_field=update_time&sort_order=ASC\
             &sign=162746ffd4308453706a25a3c6f8cc9408bd6b388440ea4d93681348b50b250b"
        );
        let next = Api
            .page_request(&ctx(&c, &o), None, window(), Some("tok2"))
            .expect("builds");
        assert!(
            next.url.ends_with(
                "&page_token=tok2\
                 &sign=f3163f5589364bc6679e1af69dc6b8bcf800563050c36c284da82a79500a5a2d"
            ),
            "{}",
            next.url
        );
        assert_eq!(next.body, first.body, "the same body on every page");

        let none = json!({});
        assert!(matches!(
            Api.page_request(&ctx(&c, &none), None, window(), None),
            Err(ApiError::Config(_))
        ));
        let missing = json!({"appKey": "k", "appSecret": "s"});
        assert!(matches!(
            Api.token_request(&ctx(&missing, &o)),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn each_order_is_one_status_notification() {
        let (c, o) = (creds(), options());
        let body = json!({"code": 0, "message": "Success", "request_id": "r1", "data": {
        "next_page_token": "tok2", "total_count": 3, "orders": [
            {"id": "576461413038785752", "status": "AWAITING_SHIPMENT",
             "create_time": 1796385000, "update_time": 1796385700},
            {"id": 576461413038785753_i64, "status": "CANCELLED",
             "create_time": 1796385000, "update_time": 1796385800},
            {"id": "576461413038785754", "status": "DELIVERED",
             "create_time": 1796385000, "update_time": 1796385900}
        ]}});
        let page = Api
            .read_page(&ctx(&c, &o), window(), &answer(200, body))
            .expect("reads");
        assert_eq!(page.next.as_deref(), Some("tok2"));
        assert_eq!(page.orders.len(), 3);
        assert!(page.orders.iter().all(|o| o.events.len() == 1));
        let first = &page.orders[0];
        assert_eq!(first.order_id, "576461413038785752");
        assert_eq!(first.updated_at, Timestamp::from_second(1796385700).ok());
        let n: Vec<_> = page
            .orders
            .iter()
            .map(|o| Kind::Tiktok.normalize(&o.events[0]))
            .collect();
        assert_eq!(n[0].topic, Some("order.updated"));
        assert_eq!(n[0].first_sighting_topic, Some("order.created"));
        assert_eq!(n[0].status.as_deref(), Some("AWAITING_SHIPMENT"));
        assert_eq!(
            n[0].resource
                .as_ref()
                .map(|r| (r.kind.as_str(), r.id.as_str())),
            Some(("order", "576461413038785752"))
        );
        assert_eq!(page.orders[1].status, "CANCELLED");
        assert_eq!(n[1].topic, Some("order.cancelled"));
        assert_eq!(n[1].status.as_deref(), Some("CANCEL"));
        assert_eq!(n[2].status.as_deref(), Some("DELIVERED"));
        let e = &first.events[0];
        assert_eq!(e.partner_id.as_deref(), Some("seller-1"));
        assert_eq!(e.occurred_at, first.updated_at);
        let again = Api
            .read_page(
                &ctx(&c, &o),
                window(),
                &answer(
                    200,
                    json!({"code": 0, "data": {"next_page_token": "", "orders": [
                        {"id": "576461413038785752", "status": "AWAITING_SHIPMENT",
                         "update_time": 1796385700}]}}),
                ),
            )
            .expect("reads");
        assert_eq!(again.next, None, "an empty token ends the paging");
        assert_eq!(again.orders[0].events[0].dedup_key, e.dedup_key);
    }

    #[test]
    fn the_event_states_the_same_fact_as_the_signed_webhook() {
        let (c, o) = (creds(), options());
        let body = json!({"code": 0, "data": {"next_page_token": "", "orders": [
            {"id": "ORD-1", "status": "AWAITING_SHIPMENT", "update_time": 1796385700}]}});
        let page = Api
            .read_page(&ctx(&c, &o), window(), &answer(200, body))
            .expect("reads");
        let ours = Kind::Tiktok.normalize(&page.orders[0].events[0]);

        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("time");
        let signed = Kind::Tiktok
            .sign(&SignRequest {
                event_type: "1".into(),
                secret: "webhook-secret".into(),
                options: json!({"appKey": "app-key-1", "orderStatus": "AWAITING_SHIPMENT"}),
                endpoint_url: "https://hub.example/ingest/src_1".into(),
                partner_id: "seller-1".into(),
                resource_id: "ORD-1".into(),
                event_id: "notif-1".into(),
                now,
            })
            .expect("signs");
        let headers: Vec<(String, String)> = signed
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let source = SourceSettings {
            kind: Kind::Tiktok,
            secrets: vec![SourceSecret {
                id: "0".into(),
                value: "webhook-secret".into(),
            }],
            replay_window: SignedDuration::from_mins(5),
            options: json!({"appKey": "app-key-1"}),
        };
        let inbound = Inbound {
            method: "POST",
            endpoint_url: "https://hub.example/ingest/src_1",
            query: "",
            headers: &headers,
            body: &signed.body,
            now,
        };
        let Ok(Outcome::Event(native)) = Kind::Tiktok.verify(&inbound, &source, &NoKeys) else {
            panic!("the signed webhook verifies");
        };
        let theirs = Kind::Tiktok.normalize(&native);
        assert_eq!(native.event_type, page.orders[0].events[0].event_type);
        assert_eq!(native.partner_id, page.orders[0].events[0].partner_id);
        assert_eq!(theirs.resource, ours.resource);
        assert_eq!(theirs.first_sighting_topic, ours.first_sighting_topic);
        assert_eq!(
            fact_of(theirs.topic, theirs.status.as_deref()),
            fact_of(ours.topic, ours.status.as_deref())
        );
        assert_eq!(
            fact_of(ours.topic, ours.status.as_deref()),
            "order.updated|AWAITING_SHIPMENT"
        );
    }

    #[test]
    fn errors_in_the_body_and_the_status_are_mapped() {
        let (c, o) = (creds(), options());
        let read =
            |status, body: Value| Api.read_page(&ctx(&c, &o), window(), &answer(status, body));
        assert!(matches!(
            read(
                401,
                json!({"code": 106001, "message": "signature is invalid", "request_id": "r"})
            ),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(
                200,
                json!({"code": 105002, "message": "access token expired", "data": {}})
            ),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(
                200,
                json!({"code": 36004004, "message": "the shop is not authorized"})
            ),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            read(
                200,
                json!({"code": 12052900, "message": "invalid page token"})
            ),
            Err(ApiError::Refused(_))
        ));
        assert!(matches!(
            read(400, json!({"code": 0, "data": {}})),
            Err(ApiError::Refused(_))
        ));
        let limited = Api.read_page(
            &ctx(&c, &o),
            window(),
            &ApiResponse {
                status: 429,
                headers: vec![("retry-after".into(), "2".into())],
                body: br#"{"code":36009004,"message":"too many requests"}"#.to_vec(),
            },
        );
        assert_eq!(
            limited,
            Err(ApiError::RateLimited {
                retry_after: Some(SignedDuration::from_secs(2)),
                message: r#"HTTP 429: {"code":36009004,"message":"too many requests"}"#.into(),
            })
        );
        assert!(matches!(
            read(503, json!({"code": 1})),
            Err(ApiError::Transient(_))
        ));
        assert!(matches!(
            Api.read_page(
                &ctx(&c, &o),
                window(),
                &ApiResponse {
                    status: 200,
                    headers: vec![],
                    body: b"<html>".to_vec()
                }
            ),
            Err(ApiError::Protocol(_))
        ));
    }
}
