//! Amazon's orders client (SP-API Orders v0 `getOrders`, LWA token) against Amazon's simulated
//! orders API.

mod common;

use serde_json::{Value, json};
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::ApiError;
use switchyard_simulator::SimConfig;

fn credentials() -> Value {
    json!({"clientId": "amzn1.application-oa2-client.sim", "clientSecret": "amzn-secret",
        "refreshToken": "Atzr|sim-refresh"})
}

fn config() -> SimConfig {
    SimConfig {
        credentials: credentials(),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn options() -> Value {
    json!({"marketplaceIds": "ATVPDKIKX0DER"})
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let sim = switchyard_simulator::start(
        "amazon_sns",
        "127.0.0.1:0",
        config(),
        common::orders(5, "Unshipped"),
    )
    .await
    .expect("starts");
    let (orders, pages) = common::fetch_all(
        Kind::AmazonSns,
        &sim.base_url(),
        &credentials(),
        &options(),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    assert_eq!(pages, 3, "two orders a page");
    for order in &orders {
        assert_eq!(order.status, "Unshipped");
        assert_eq!(order.events.len(), 1, "one ORDER_CHANGE per order");
        let n = Kind::AmazonSns.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.updated"));
        assert_eq!(n.first_sighting_topic, Some("order.created"));
        assert_eq!(n.status.as_deref(), Some("Unshipped"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
    }
}

#[tokio::test]
async fn the_window_filters_on_last_update() {
    let mut orders = common::orders(3, "Shipped");
    // Changed two days ago: outside the last day.
    orders[2].updated_at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let sim = switchyard_simulator::start("amazon_sns", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, _) = common::fetch_all(
        Kind::AmazonSns,
        &sim.base_url(),
        &credentials(),
        &json!({"marketplaceIds": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1"]);
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "amazon_sns",
        "127.0.0.1:0",
        config(),
        common::orders(1, "Unshipped"),
    )
    .await
    .expect("starts");
    for wrong in [
        json!({"clientId": "amzn1.application-oa2-client.sim", "clientSecret": "nope",
            "refreshToken": "Atzr|sim-refresh"}),
        json!({"clientId": "amzn1.application-oa2-client.sim", "clientSecret": "amzn-secret",
            "refreshToken": "Atzr|revoked"}),
    ] {
        let refused = common::fetch_all(
            Kind::AmazonSns,
            &sim.base_url(),
            &wrong,
            &options(),
            "s",
            common::last_day(),
        )
        .await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{refused:?}"
        );
    }
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        retry_after: Some(7),
        ..config()
    });
    let limited = common::fetch_all(
        Kind::AmazonSns,
        &sim.base_url(),
        &credentials(),
        &options(),
        "s",
        common::last_day(),
    )
    .await;
    assert!(
        matches!(
            limited,
            Err(ApiError::RateLimited {
                retry_after: None,
                ..
            })
        ),
        "Amazon sends no Retry-After: {limited:?}"
    );
}

#[tokio::test]
async fn a_forged_access_token_is_refused() {
    let sim = switchyard_simulator::start(
        "amazon_sns",
        "127.0.0.1:0",
        config(),
        common::orders(1, "Unshipped"),
    )
    .await
    .expect("starts");
    let api = Kind::AmazonSns.orders().expect("an orders API");
    let base = sim.base_url();
    let creds = credentials();
    let options = options();
    let ctx = switchyard_marketplaces::orders::OrdersContext {
        base_url: &base,
        credentials: &creds,
        options: &options,
        partner_id: "s",
        now: jiff::Timestamp::now(),
        nonce: "n",
    };
    let forged = switchyard_marketplaces::orders::AccessToken {
        value: "Atza|forged".into(),
        expires_in: None,
        refresh_token: None,
    };
    let request = api
        .page_request(&ctx, Some(&forged), common::last_day(), None)
        .expect("builds");
    let response = common::send(&reqwest::Client::new(), &request).await;
    assert_eq!(response.status, 403);
    assert!(matches!(
        api.read_page(&ctx, common::last_day(), &response),
        Err(ApiError::Unauthorized(_))
    ));
}
