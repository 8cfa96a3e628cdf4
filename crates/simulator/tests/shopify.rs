//! Shopify's orders client (REST Admin `orders.json`, `Link` paging) against Shopify's
//! simulated orders API.

mod common;

use serde_json::{Value, json};
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::ApiError;
use switchyard_simulator::{SimConfig, SimOrder};

fn credentials() -> Value {
    json!({"accessToken": "shpat_sim"})
}

fn config() -> SimConfig {
    SimConfig {
        credentials: credentials(),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn order(id: &str, status: &str, minutes_ago: i64) -> SimOrder {
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
    SimOrder {
        id: id.into(),
        status: status.into(),
        created_at: at - jiff::SignedDuration::from_mins(30),
        updated_at: at,
        extra: Value::Null,
    }
}

async fn read(
    sim: &switchyard_simulator::Running,
    creds: &Value,
) -> Result<Vec<switchyard_marketplaces::orders::ApiOrder>, ApiError> {
    common::fetch_all(
        Kind::Shopify,
        &sim.base_url(),
        creds,
        &json!({}),
        "demo-shop.myshopify.com",
        common::last_day(),
    )
    .await
    .map(|(orders, _)| orders)
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let mut orders = common::orders(5, "paid");
    // Changed after the window ends, and two days ago: not read.
    orders.push(order("LATE", "paid", 0));
    orders.push(order("OLD", "paid", 48 * 60));
    let sim = switchyard_simulator::start("shopify", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = common::fetch_all(
        Kind::Shopify,
        &sim.base_url(),
        &credentials(),
        &json!({}),
        "demo-shop.myshopify.com",
        common::last_day(),
    )
    .await
    .expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    assert_eq!(pages, 3, "two orders a page");
    for order in &orders {
        assert_eq!(order.status, "paid");
        assert_eq!(order.events.len(), 1, "created, nothing more");
        let n = Kind::Shopify.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.created"));
        assert_eq!(n.status.as_deref(), Some("paid"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
    }
}

#[tokio::test]
async fn closed_and_cancelled_orders_are_read_with_their_events() {
    let orders = vec![
        order("1001", "paid", 90),
        order("1002", "cancelled", 80),
        order("1003", "closed", 70),
        order("1004", "partial", 60),
    ];
    let sim = switchyard_simulator::start("shopify", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let orders = read(&sim, &credentials()).await.expect("reads");
    let facts = common::facts_by_order(Kind::Shopify, &orders);
    assert_eq!(
        facts,
        vec![
            common::expected("1001", &["order.created"]),
            common::expected("1002", &["order.created", "order.cancelled|voided"]),
            common::expected("1003", &["order.created", "order.updated|fulfilled"]),
            common::expected("1004", &["order.created", "order.updated|partial"]),
        ],
        "status=any reads the cancelled and closed orders a default query leaves out"
    );
    assert_eq!(orders[1].status, "voided,cancelled");
    assert_eq!(orders[2].status, "paid,fulfilled,closed");
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "shopify",
        "127.0.0.1:0",
        config(),
        common::orders(1, "paid"),
    )
    .await
    .expect("starts");
    let refused = read(&sim, &json!({"accessToken": "shpat_wrong"})).await;
    assert!(
        matches!(refused, Err(ApiError::Unauthorized(_))),
        "{refused:?}"
    );
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        retry_after: Some(3),
        ..config()
    });
    let limited = read(&sim, &credentials()).await;
    match limited {
        Err(ApiError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(jiff::SignedDuration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_simulator_refuses_filters_beside_page_info_and_keeps_a_bucket() {
    let sim = switchyard_simulator::start(
        "shopify",
        "127.0.0.1:0",
        config(),
        common::orders(3, "paid"),
    )
    .await
    .expect("starts");
    let client = reqwest::Client::new();
    let get = |query: String| {
        client
            .get(format!(
                "{}/admin/api/2026-07/orders.json?{query}",
                sim.base_url()
            ))
            .header("X-Shopify-Access-Token", "shpat_sim")
            .send()
    };
    let first = get("status=any".into()).await.expect("answers");
    assert_eq!(first.status(), 200);
    assert_eq!(
        first
            .headers()
            .get("x-shopify-shop-api-call-limit")
            .and_then(|v| v.to_str().ok()),
        Some("1/40")
    );
    let link = first
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a next link")
        .to_string();
    let page_info =
        switchyard_marketplaces::shopify::orders::next_page_info(&link).expect("a page_info");
    let refused = get(format!("page_info={page_info}&status=any"))
        .await
        .expect("answers");
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": {"status": "status cannot be passed when page_info is present"}})
    );
    sim.shared.put_order(order("1009", "cancelled", 70));
    sim.shared.set_config(SimConfig {
        page_size: 10,
        ..config()
    });
    let count = |body: Value| body["orders"].as_array().map(Vec::len);
    let open_only = get("limit=250".into()).await.expect("answers");
    assert_eq!(
        count(open_only.json().await.expect("json")),
        Some(3),
        "status defaults to open"
    );
    let any = get("limit=250&status=any".into()).await.expect("answers");
    assert_eq!(count(any.json().await.expect("json")), Some(4));

    let mut throttled = None;
    for _ in 0..200 {
        let response = get("status=any".into()).await.expect("answers");
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
    }
    let throttled = throttled.expect("a full bucket answers 429");
    assert_eq!(
        throttled
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2.0")
    );
}
