//! SellerCenter's orders API for reconciliation (`docs/orders-apis.md` §8 has the sources):
//! the signed `GetOrders` call of the Rocket Internet lineage (Falabella, Jumia, Linio, Zalora).
//!
//! - No token step: every call is signed. `GET {base}/?Action=GetOrders&Format=JSON&Limit=100&
//!   Offset=…&Timestamp=…&UpdatedAfter=…&UpdatedBefore=…&UserID=…&Version=1.0&Signature=…`, the
//!   parameters in name order. `Signature` is the lowercase hex HMAC-SHA256, keyed by the user's
//!   API key, of every other parameter sorted by name, RFC 3986-encoded as `name=value` and
//!   joined with `&` ([`signature`]). `Timestamp` is `ctx.now` as ISO 8601 with its offset
//!   (`2026-12-05T10:30:15+00:00`), so each attempt is signed afresh when rebuilt.
//!   `User-Agent: <SellerId>/Rust/<version>`, which Falabella requires.
//! - The window: `UpdatedAfter` / `UpdatedBefore`, both inclusive ("after or on", "before or
//!   on").
//! - Paging, as documented: `Offset` / `Limit`; the cursor (`next`) is the offset in decimal
//!   (none: 0). The answer does not echo it, so pages are read with [`OrdersApi::read_page_of`],
//!   given the cursor asked with: the next offset is it plus the orders read, while the page is
//!   full or `Head.TotalCount` (all orders of the filters) counts more, and some were read
//!   (adding the orders read, not `Limit`, follows a page capped lower without a gap). No sort
//!   is sent (none is documented): the API's order is taken to hold across calls (unconfirmed).
//!   An order changed while a window is paged leaves the filter set and shifts the later ones
//!   down one offset, so one of them may go unread in that run.
//! - Answers: `{"SuccessResponse": {"Head": {…, "TotalCount"}, "Body": {"Orders": {"Order":
//!   […]}}}}`; a single order as an object and an empty `Orders` (`""`, `[]`) are read too
//!   (both unconfirmed). Times are RFC 3339 or `YYYY-MM-DD HH:MM:SS` (read as UTC, unconfirmed).
//! - Errors: `{"ErrorResponse": {"Head": {"ErrorCode", "ErrorMessage", …}}}` whatever the HTTP
//!   status: `E007` (login failed: signature, user or key) and `E009` (access denied,
//!   inferred) are [`ApiError::Unauthorized`], `E003` (timestamp expired: a re-signed retry
//!   works) [`ApiError::Transient`], `E429` (inferred) [`ApiError::RateLimited`], any other
//!   code [`ApiError::Refused`]. HTTP 429 and 5xx come first (rate limits are undocumented).
//!
//! Credentials: `userId` (the Seller Center user, usually an e-mail) and `apiKey`. Option
//! `sellerId` for the `User-Agent` (default: the partner).
//!
//! What a webhook would have said, for the order as it now stands: `onOrderCreated`
//! (`order.created`), then one `onOrderItemsStatusChanged` per status of its items other than
//! `pending` (the status an item is created in, inferred), with that `NewStatus`:
//! `order.updated`, or `order.cancelled` for `canceled`. Payloads are `{"event", "payload":
//! {"OrderId", …}}`, as [`crate::sellercenter::verify`] keeps a delivered callback.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page,
    Window,
};
use crate::{Kind, NativeEvent, util};

/// SellerCenter's orders client.
pub struct Api;

const LIMIT: usize = 100;

/// The documented signature: lowercase hex HMAC-SHA256, keyed by the API key, of the
/// parameters other than `Signature`, sorted by name, RFC 3986-encoded `name=value` joined
/// with `&`.
pub fn signature(api_key: &str, params: &[(&str, &str)]) -> String {
    hex::encode(util::hmac_sha256(
        api_key.as_bytes(),
        &[canonical(params).as_bytes()],
    ))
}

/// The parameters but `Signature`, sorted and encoded: what is signed, and the query sent.
fn canonical(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().filter(|(k, _)| *k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", util::percent_encode(k), util::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A time as the reference writes it: ISO 8601 with an offset, to the second.
fn iso_offset(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// A time the API wrote: RFC 3339, or `YYYY-MM-DD HH:MM:SS` without an offset (read as UTC).
fn parse_time(value: &Value) -> Option<Timestamp> {
    let s = value.as_str()?.trim();
    s.parse::<Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

/// The offset a cursor names: 0 for the first page.
fn offset_of(next: Option<&str>) -> Result<usize, ApiError> {
    next.filter(|n| !n.is_empty()).map_or(Ok(0), |n| {
        n.parse()
            .map_err(|_| ApiError::Protocol(format!("not a SellerCenter offset: {n:?}")))
    })
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        "https://sellercenter-api.falabella.com"
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &["userId", "apiKey"]
    }

    fn token_request(&self, ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        ctx.credential("userId")?;
        ctx.credential("apiKey")?;
        Ok(None)
    }

    fn page_request(
        &self,
        ctx: &OrdersContext,
        _token: Option<&AccessToken>,
        window: Window,
        next: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        let user = ctx.credential("userId")?;
        let key = ctx.credential("apiKey")?;
        let seller = ctx.option("sellerId").unwrap_or(ctx.partner_id);
        if seller.is_empty() {
            return Err(ApiError::Config(
                "options.sellerId is required (Falabella's User-Agent names the seller)".into(),
            ));
        }
        let offset = offset_of(next)?.to_string();
        let after = iso_offset(window.since);
        let limit = LIMIT.to_string();
        let timestamp = iso_offset(ctx.now);
        let before = iso_offset(window.until);
        let mut params: Vec<(&str, &str)> = vec![
            ("Action", "GetOrders"),
            ("Format", "JSON"),
            ("Limit", &limit),
            ("Offset", &offset),
            ("Timestamp", &timestamp),
            ("UpdatedAfter", &after),
            ("UpdatedBefore", &before),
            ("UserID", user),
            ("Version", "1.0"),
        ];
        let sign = signature(key, &params);
        params.push(("Signature", &sign));
        let url = format!("{}/?{}&Signature={sign}", ctx.base_url, canonical(&params));
        Ok(ApiRequest::get(
            url,
            vec![
                (
                    "User-Agent".into(),
                    format!("{seller}/Rust/{}", env!("CARGO_PKG_RUST_VERSION")),
                ),
                ("Accept".into(), "application/json".into()),
            ],
        ))
    }

    /// Refused: the answer does not say its offset. Read as the first page it would be right
    /// for that page only, each later one naming the same next offset again (a repeated
    /// cursor, which the reconciler refuses). Pages are read with [`OrdersApi::read_page_of`].
    fn read_page(&self, _: &OrdersContext, _: Window, _: &ApiResponse) -> Result<Page, ApiError> {
        Err(ApiError::Protocol(
            "a SellerCenter page is read knowing the offset it was asked for (read_page_of)".into(),
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
        let status_error = response.status_error();
        if let Some(e @ (ApiError::RateLimited { .. } | ApiError::Transient(_))) = status_error {
            return Err(e);
        }
        let body = match response.json() {
            Ok(body) => body,
            Err(e) => return Err(status_error.unwrap_or(e)),
        };
        if let Some(error) = body.get("ErrorResponse") {
            return Err(body_error(response.status, error));
        }
        if let Some(e) = status_error {
            return Err(e);
        }
        let success = body.get("SuccessResponse").ok_or_else(|| {
            ApiError::Protocol(format!(
                "HTTP {}: neither SuccessResponse nor ErrorResponse: {}",
                response.status,
                response.snippet()
            ))
        })?;
        let total = success.pointer("/Head/TotalCount").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        });
        let listed = match success.pointer("/Body/Orders") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
            Some(Value::Array(a)) if a.is_empty() => Vec::new(),
            Some(orders) => match orders.get("Order") {
                Some(Value::Array(list)) => list.clone(),
                Some(one @ Value::Object(_)) => vec![one.clone()],
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(ApiError::Protocol("Body.Orders.Order is not a list".into()));
                }
            },
        };
        let orders = listed
            .iter()
            .map(|o| order(ctx, o))
            .collect::<Result<Vec<_>, _>>()?;
        let after = offset + orders.len();
        let more = orders.len() >= LIMIT || total.is_some_and(|total| total > after as u64);
        let next = (more && !orders.is_empty()).then(|| after.to_string());
        Ok(Page { orders, next })
    }
}

/// The error an `ErrorResponse` names.
fn body_error(status: u16, error: &Value) -> ApiError {
    let head = error.get("Head").unwrap_or(error);
    let field = |name: &str| {
        head.get(name)
            .and_then(|v| v.as_str().map(String::from).or_else(|| util::as_id(v)))
            .unwrap_or_default()
    };
    let code = field("ErrorCode");
    let message = format!("HTTP {status}: {code}: {}", field("ErrorMessage"));
    // The code may come as `E007` or as the number (`7`).
    let n: Option<u32> = code.trim_start_matches(['E', 'e']).parse().ok();
    match n {
        Some(7 | 9) => ApiError::Unauthorized(message),
        Some(3) => ApiError::Transient(message),
        Some(429) => ApiError::RateLimited {
            retry_after: None,
            message,
        },
        _ => ApiError::Refused(message),
    }
}

/// The item statuses of `Statuses`, whatever its JSON shape (a string, a list, `{"Status": …}`).
fn statuses(value: Option<&Value>, out: &mut Vec<String>) {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let s = s.trim().to_string();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Some(Value::Array(items)) => items.iter().for_each(|v| statuses(Some(v), out)),
        Some(Value::Object(map)) => map.values().for_each(|v| statuses(Some(v), out)),
        _ => {}
    }
}

/// One `Order`: its id, its item statuses, and the callbacks for them.
fn order(ctx: &OrdersContext, o: &Value) -> Result<ApiOrder, ApiError> {
    let id = o
        .get("OrderId")
        .and_then(util::as_id)
        .ok_or_else(|| ApiError::Protocol("an order has no OrderId".into()))?;
    let created_at = o.get("CreatedAt").and_then(parse_time);
    let updated_at = o.get("UpdatedAt").and_then(parse_time);
    let mut found = Vec::new();
    statuses(o.get("Statuses"), &mut found);
    let number = o
        .get("OrderNumber")
        .and_then(util::as_id)
        .unwrap_or_else(|| id.clone());
    let mut events = vec![event(
        ctx,
        &id,
        "onOrderCreated",
        json!({ "OrderId": id_value(&id), "OrderNr": number }),
        created_at.or(updated_at),
    )];
    for status in found.iter().filter(|s| !s.eq_ignore_ascii_case("pending")) {
        events.push(event(
            ctx,
            &id,
            "onOrderItemsStatusChanged",
            json!({ "OrderId": id_value(&id), "NewStatus": status }),
            updated_at,
        ));
    }
    Ok(ApiOrder {
        order_id: id,
        status: found.join(","),
        updated_at,
        events,
    })
}

/// An id as a JSON number when it is one, as SellerCenter's callbacks send `OrderId`.
fn id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(id))
}

/// The callback SellerCenter would have POSTed, as `sellercenter::verify` keeps it.
fn event(
    ctx: &OrdersContext,
    id: &str,
    name: &str,
    payload: Value,
    at: Option<Timestamp>,
) -> NativeEvent {
    let status = payload
        .get("NewStatus")
        .and_then(Value::as_str)
        .unwrap_or_default();
    NativeEvent {
        kind: Kind::Sellercenter,
        event_type: name.to_string(),
        dedup_key: util::hash_key(&["sellercenter", ctx.partner_id, id, name, status]),
        native_event_id: None,
        partner_id: Some(ctx.partner_id.to_string()),
        occurred_at: Some(at.unwrap_or(ctx.now)),
        payload: json!({ "event": name, "payload": payload }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::fact_of;
    use crate::{Inbound, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings};

    const KEY: &str = "b1bdb357ced10fe4e9a69840cdd4f0e9c03d77fe";

    fn creds() -> Value {
        json!({"userId": "look@me.com", "apiKey": KEY})
    }

    fn ctx<'a>(credentials: &'a Value, options: &'a Value) -> OrdersContext<'a> {
        OrdersContext {
            base_url: "http://sc.test",
            credentials,
            options,
            partner_id: "JJJ123",
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
    fn the_signature_matches_the_vectors() {
        // tests/vectors/sellercenter_request.json (FeedList).
        let feed_list = [
            ("UserID", "look@me.com"),
            ("Version", "1.0"),
            ("Action", "FeedList"),
            ("Format", "XML"),
            ("Timestamp", "2015-07-01T11:11:11+00:00"),
        ];
        assert_eq!(
            canonical(&feed_list),
            "Action=FeedList&Format=XML&Timestamp=2015-07-01T11%3A11%3A11%2B00%3A00\
             &UserID=look%40me.com&Version=1.0"
        );
        assert_eq!(
            signature(KEY, &feed_list),
            "3ceb8ed91049dfc718b0d2d176fb2ed0e5fd74f76c5971f34cdab48412476041"
        );
        // The notes' computed GetOrders example.
        let get_orders = [
            ("Action", "GetOrders"),
            ("Format", "JSON"),
            ("Limit", "100"),
            ("Offset", "0"),
            ("Timestamp", "2015-07-01T11:11:11+00:00"),
            ("UpdatedAfter", "2015-07-01T00:00:00+00:00"),
            ("UserID", "look@me.com"),
            ("Version", "1.0"),
            ("Signature", "ignored"),
        ];
        assert_eq!(
            signature(KEY, &get_orders),
            "188d93b01cd3b8c2fa3fa458a5e4ef698a4aa290a949419dba05dc3d52c24b38"
        );
    }

    #[test]
    fn a_page_request_is_signed_over_sorted_parameters() {
        let (c, none) = (creds(), json!({}));
        assert_eq!(Api.token_request(&ctx(&c, &none)), Ok(None));
        let first = Api
            .page_request(&ctx(&c, &none), None, window(), None)
            .expect("builds");
        assert_eq!(first.method, "GET");
        // python3: hmac.new(KEY, b"Action=GetOrders&Format=JSON&Limit=100&Offset=0&Timestamp="
        // b"2026-12-05T12%3A00%3A00%2B00%3A00&UpdatedAfter=2026-12-04T12%3A00%3A00%2B00%3A00&"
        // b"UpdatedBefore=2026-12-05T11%3A58%3A00%2B00%3A00&UserID=look%40me.com&Version=1.0",
        // sha256).hexdigest()
        assert_eq!(
            first.url,
            "http://sc.test/?Action=GetOrders&Format=JSON&Limit=100&Offset=0\
             &Timestamp=2026-12-05T12%3A00%3A00%2B00%3A00\
             &UpdatedAfter=2026-12-04T12%3A00%3A00%2B00%3A00\
             &UpdatedBefore=2026-12-05T11%3A58%3A00%2B00%3A00&UserID=look%40me.com&Version=1.0\
             &Signature=d823265085c5cc445b9e6818919572d03caf4494fec9aec726d9f068bb8daebe"
        );
        assert_eq!(
            first.header("user-agent"),
            Some(format!("JJJ123/Rust/{}", env!("CARGO_PKG_RUST_VERSION")).as_str())
        );
        // A later page: the same window, at the cursor's offset.
        let later = |next| Api.page_request(&ctx(&c, &none), None, window(), Some(next));
        let url = later("200").expect("builds").url;
        let (unsigned, _) = first.url.split_once("&Signature=").expect("signed");
        assert!(url.starts_with(&unsigned.replace("&Offset=0&", "&Offset=200&")));
        for bad in ["nonsense", "-1", "2026-12-05T10:00:07;3"] {
            assert!(matches!(later(bad), Err(ApiError::Protocol(_))), "{bad}");
        }
        let missing = json!({"userId": "look@me.com"});
        assert!(matches!(
            Api.token_request(&ctx(&missing, &none)),
            Err(ApiError::Config(_))
        ));
    }

    fn page_body(total: Value, orders: Value) -> Value {
        json!({"SuccessResponse": {"Head": {"RequestId": "", "RequestAction": "GetOrders",
            "ResponseType": "Orders", "Timestamp": "2026-12-05T12:00:00+0000",
            "TotalCount": total}, "Body": {"Orders": {"Order": orders}}}})
    }

    #[test]
    fn pages_follow_the_offset_and_statuses_make_callbacks() {
        let (c, none) = (creds(), json!({}));
        let read =
            |next, body| Api.read_page_of(&ctx(&c, &none), window(), next, &answer(200, body));
        let page = read(
            Some("2"),
            page_body(
                json!("7"),
                json!([
                    {"OrderId": "190", "OrderNumber": "300190", "CreatedAt": "2026-12-05 09:00:00",
                     "UpdatedAt": "2026-12-05 10:00:00", "Statuses": {"Status": "pending"}},
                    {"OrderId": 191, "UpdatedAt": "2026-12-05 10:00:07",
                     "Statuses": {"Status": ["shipped", "canceled"]}},
                    {"OrderId": "192", "UpdatedAt": "2026-12-05 10:00:07", "Statuses": ["delivered"]}
                ]),
            ),
        )
        .expect("reads");
        // Asked at offset 2, three orders read, seven in all.
        assert_eq!(page.next.as_deref(), Some("5"));
        assert_eq!(page.orders.len(), 3);
        assert_eq!(page.orders[0].order_id, "190");
        assert_eq!(page.orders[0].status, "pending");
        assert_eq!(
            page.orders[0].updated_at,
            Some("2026-12-05T10:00:00Z".parse().expect("time"))
        );
        let facts: Vec<Vec<String>> = page
            .orders
            .iter()
            .map(|o| {
                o.events
                    .iter()
                    .map(|e| {
                        let n = Kind::Sellercenter.normalize(e);
                        assert_eq!(n.resource.map(|r| r.id), Some(o.order_id.clone()));
                        fact_of(n.topic, n.status.as_deref())
                    })
                    .collect()
            })
            .collect();
        assert_eq!(facts[0], ["order.created"]);
        let shipped_and_cancelled = "order.created order.updated|shipped order.cancelled|canceled";
        assert_eq!(facts[1].join(" "), shipped_and_cancelled);
        assert_eq!(facts[2], ["order.created", "order.updated|delivered"]);

        // One order as an object, and everything counted: the last page.
        let one = json!({"OrderId": "193", "UpdatedAt": "2026-12-05T10:30:00+00:00",
                         "Statuses": {"Status": "ready_to_ship"}});
        let last = read(Some("6"), page_body(json!(7), one)).expect("reads");
        assert_eq!(
            (last.next, last.orders[0].status.as_str()),
            (None, "ready_to_ship")
        );
        let orders = |n: usize| {
            (0..n)
                .map(|i| json!({"OrderId": i, "UpdatedAt": "2026-12-05 10:00:00"}))
                .collect::<Vec<_>>()
        };
        let next_of = |next, total: Value, n| read(next, page_body(total, json!(orders(n))));
        // A full page goes on, whatever the count; a short one when the count says more (a
        // page capped lower than Limit), by the orders read; else, or with none read, it ends.
        let cases = [
            (None, json!("100"), 100, Some("100")),
            (Some("100"), json!(null), 100, Some("200")),
            (Some("4"), json!(9), 2, Some("6")),
            (Some("4"), json!(6), 2, None),
            (Some("4"), json!(null), 2, None),
            (Some("20"), json!(9), 0, None),
        ];
        for (next, total, n, expected) in cases {
            let page = next_of(next, total.clone(), n).expect("reads");
            assert_eq!(page.next.as_deref(), expected, "{next:?} {total} {n}");
            assert_eq!(page.orders.len(), n);
        }
        let empty =
            json!({"SuccessResponse": {"Head": {"TotalCount": "0"}, "Body": {"Orders": ""}}});
        assert_eq!(read(None, empty), Ok(Page::default()));
        let bad_cursor = read(Some("x"), page_body(json!(1), json!(orders(1))));
        assert!(matches!(bad_cursor, Err(ApiError::Protocol(_))));
        // Without the cursor the next offset cannot be told.
        let bare = Api.read_page(&ctx(&c, &none), window(), &answer(200, json!({})));
        assert!(matches!(bare, Err(ApiError::Protocol(_))), "{bare:?}");
    }

    #[test]
    fn error_responses_map_by_code() {
        let (c, none) = (creds(), json!({}));
        let read =
            |status, body| Api.read_page_of(&ctx(&c, &none), window(), None, &answer(status, body));
        let error = |code: &str| {
            json!({"ErrorResponse": {"Head": {"RequestAction": "GetOrders", "ErrorType": "Sender",
                "ErrorCode": code, "ErrorMessage": "E: something"}, "Body": ""}})
        };
        let code = |status, body| read(status, body).err().map(|e| e.code());
        let cases = [
            (200, error("E007"), "unauthorized"),
            (400, error("7"), "unauthorized"),
            (400, error("E003"), "transient"),
            (400, error("E001"), "refused"),
            (200, error("E008"), "refused"),
            (429, error("E429"), "rate_limited"),
            (502, json!({}), "transient"),
            (403, json!({}), "unauthorized"),
            (200, json!({"Other": 1}), "protocol"),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                code(status, body.clone()),
                Some(expected),
                "{status} {body}"
            );
        }
        let xml = ApiResponse {
            status: 200,
            headers: vec![],
            body: b"<?xml version=\"1.0\"?><SuccessResponse/>".to_vec(),
        };
        let read_xml = Api.read_page_of(&ctx(&c, &none), window(), None, &xml);
        assert!(matches!(read_xml, Err(ApiError::Protocol(_))));
    }

    fn verified(event_type: &str, options: Value) -> NativeEvent {
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("time");
        let signed = Kind::Sellercenter
            .sign(&SignRequest {
                event_type: event_type.into(),
                secret: "url-token-1".into(),
                options,
                endpoint_url: "https://hub.example/ingest/src_1".into(),
                partner_id: "JJJ123".into(),
                resource_id: "190".into(),
                event_id: "cb-1".into(),
                now,
            })
            .expect("signs");
        let headers: Vec<(String, String)> = signed
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let source = SourceSettings {
            kind: Kind::Sellercenter,
            secrets: vec![SourceSecret {
                id: "0".into(),
                value: "url-token-1".into(),
            }],
            replay_window: jiff::SignedDuration::from_mins(5),
            options: json!({}),
        };
        let inbound = Inbound {
            method: "POST",
            endpoint_url: "https://hub.example/ingest/src_1/url-token-1",
            query: "",
            headers: &headers,
            body: &signed.body,
            now,
        };
        let Ok(Outcome::Event(native)) = Kind::Sellercenter.verify(&inbound, &source, &NoKeys)
        else {
            panic!("the signed callback verifies");
        };
        native
    }

    #[test]
    fn the_callbacks_state_the_same_facts_as_signed_webhooks() {
        let (c, none) = (creds(), json!({}));
        let listed = json!([{"OrderId": "190", "UpdatedAt": "2026-12-05 10:00:00",
                             "Statuses": {"Status": ["pending", "canceled"]}}]);
        let answer = answer(200, page_body(json!(1), listed));
        let page = Api.read_page_of(&ctx(&c, &none), window(), None, &answer);
        let page = page.expect("reads");
        let fact = |e: &NativeEvent| {
            let n = Kind::Sellercenter.normalize(e);
            (
                fact_of(n.topic, n.status.as_deref()),
                n.resource.map(|r| (r.kind, r.id)),
            )
        };
        let events = &page.orders[0].events;
        let created = verified("onOrderCreated", json!({}));
        assert_eq!(created.event_type, events[0].event_type);
        assert_eq!(fact(&created), fact(&events[0]));
        assert_eq!(
            fact(&events[0]),
            (
                "order.created".to_string(),
                Some(("order".to_string(), "190".to_string()))
            )
        );
        let cancelled = verified("onOrderItemsStatusChanged", json!({"status": "canceled"}));
        assert_eq!(fact(&cancelled), fact(&events[1]));
        assert_eq!(fact(&events[1]).0, "order.cancelled|canceled");
    }
}
