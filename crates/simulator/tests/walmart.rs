//! Walmart's orders client against Walmart's simulated orders API.

mod common;

use serde_json::json;
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::ApiError;
use switchyard_simulator::SimConfig;

fn config() -> SimConfig {
    SimConfig {
        credentials: json!({"clientId": "wm-id", "clientSecret": "wm-secret"}),
        page_size: 2,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let sim = switchyard_simulator::start(
        "walmart",
        "127.0.0.1:0",
        config(),
        common::orders(5, "Created"),
    )
    .await
    .expect("starts");
    let creds = json!({"clientId": "wm-id", "clientSecret": "wm-secret"});
    let (orders, pages) = common::fetch_all(
        Kind::Walmart,
        &sim.base_url(),
        &creds,
        &json!({}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    assert_eq!(pages, 3, "two orders a page");
    assert!(
        orders
            .iter()
            .all(|o| Kind::Walmart.normalize(&o.events[0]).topic == Some("order.created"))
    );
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "walmart",
        "127.0.0.1:0",
        config(),
        common::orders(1, "Created"),
    )
    .await
    .expect("starts");
    let wrong = json!({"clientId": "wm-id", "clientSecret": "nope"});
    let refused = common::fetch_all(
        Kind::Walmart,
        &sim.base_url(),
        &wrong,
        &json!({}),
        "s",
        common::last_day(),
    )
    .await;
    assert!(
        matches!(refused, Err(ApiError::Unauthorized(_))),
        "{refused:?}"
    );
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        ..config()
    });
    let creds = json!({"clientId": "wm-id", "clientSecret": "wm-secret"});
    let limited = common::fetch_all(
        Kind::Walmart,
        &sim.base_url(),
        &creds,
        &json!({}),
        "s",
        common::last_day(),
    )
    .await;
    assert!(
        matches!(limited, Err(ApiError::RateLimited { .. })),
        "{limited:?}"
    );
}
