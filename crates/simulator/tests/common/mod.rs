//! Drives a marketplace's orders client (`switchyard_marketplaces::*::orders`) against its
//! simulator over real HTTP on 127.0.0.1: the token step, then every page of a window. The
//! hub's reconciler does the same with retries and a cursor; this is the bare loop, so that a
//! client and a simulator written from the same documentation are checked against each other.

#![allow(dead_code)]

use jiff::Timestamp;
use serde_json::Value;
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::{
    AccessToken, ApiError, ApiOrder, ApiRequest, ApiResponse, OrdersContext, Window,
};

pub async fn send(client: &reqwest::Client, request: &ApiRequest) -> ApiResponse {
    let method: reqwest::Method = request.method.parse().expect("method");
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().await.expect("the simulator answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = response.bytes().await.expect("body").to_vec();
    ApiResponse {
        status,
        headers,
        body,
    }
}

/// Every order of `window`, page by page; the first error ends it.
pub async fn fetch_all(
    kind: Kind,
    base_url: &str,
    credentials: &Value,
    options: &Value,
    partner_id: &str,
    window: Window,
) -> Result<(Vec<ApiOrder>, usize), ApiError> {
    let api = kind.orders().expect("the kind has an orders API");
    let client = reqwest::Client::new();
    let mut n = 0u64;
    let mut ctx = |now: Timestamp| {
        n += 1;
        OrdersContext {
            base_url,
            credentials,
            options,
            partner_id,
            now,
            nonce: Box::leak(format!("nonce-{n}").into_boxed_str()),
        }
    };
    let token: Option<AccessToken> = match api.token_request(&ctx(Timestamp::now()))? {
        Some(request) => {
            let response = send(&client, &request).await;
            Some(api.read_token(&ctx(Timestamp::now()), &response)?)
        }
        None => None,
    };
    let mut orders = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let c = ctx(Timestamp::now());
        let request = api.page_request(&c, token.as_ref(), window, next.as_deref())?;
        let response = send(&client, &request).await;
        let page = api.read_page_of(&c, window, next.as_deref(), &response)?;
        pages += 1;
        orders.extend(page.orders);
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    Ok((orders, pages))
}

/// Orders `0..n` of `status`, changed a minute apart ending an hour ago.
pub fn orders(n: usize, status: &str) -> Vec<switchyard_simulator::SimOrder> {
    let base = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    (0..n)
        .map(|i| switchyard_simulator::SimOrder {
            id: format!("ORD-{i}"),
            status: status.to_string(),
            created_at: base - jiff::SignedDuration::from_mins(60),
            updated_at: base - jiff::SignedDuration::from_mins(i as i64),
            extra: Value::Null,
        })
        .collect()
}

/// The last day, ending two minutes ago.
pub fn last_day() -> Window {
    let now = Timestamp::now();
    Window {
        since: now - jiff::SignedDuration::from_hours(24),
        until: now - jiff::SignedDuration::from_mins(2),
    }
}

/// Each order's id with the facts its events state, checking that every event names the order.
pub fn facts_by_order(kind: Kind, orders: &[ApiOrder]) -> Vec<(String, Vec<String>)> {
    orders
        .iter()
        .map(|o| {
            let facts = o
                .events
                .iter()
                .map(|e| {
                    let n = kind.normalize(e);
                    assert_eq!(n.resource.map(|r| r.id), Some(o.order_id.clone()));
                    switchyard_marketplaces::orders::fact_of(n.topic, n.status.as_deref())
                })
                .collect();
            (o.order_id.clone(), facts)
        })
        .collect()
}

/// An order id with the facts expected of it, as [`facts_by_order`] lists them.
pub fn expected(id: &str, facts: &[&str]) -> (String, Vec<String>) {
    (
        id.to_string(),
        facts.iter().map(|f| f.to_string()).collect(),
    )
}
