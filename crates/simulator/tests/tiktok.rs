//! TikTok Shop's orders client against TikTok Shop's simulated order search.

mod common;

use serde_json::{Value, json};
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::ApiError;
use switchyard_simulator::SimConfig;

fn config() -> SimConfig {
    SimConfig {
        credentials: json!({"appKey": "tts-key", "appSecret": "tts-secret",
            "accessToken": "tts-token", "shopCipher": "ROW_cipher"}),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn creds() -> Value {
    json!({"appKey": "tts-key", "appSecret": "tts-secret", "accessToken": "tts-token"})
}

fn options() -> Value {
    json!({"shopCipher": "ROW_cipher"})
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let mut orders = common::orders(5, "AWAITING_SHIPMENT");
    // Changed after the window ends: not read.
    orders.push(switchyard_simulator::SimOrder {
        id: "LATE".into(),
        status: "DELIVERED".into(),
        created_at: jiff::Timestamp::now(),
        updated_at: jiff::Timestamp::now(),
        extra: Value::Null,
    });
    let sim = switchyard_simulator::start("tiktok", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = common::fetch_all(
        Kind::Tiktok,
        &sim.base_url(),
        &creds(),
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
        assert_eq!(order.events.len(), 1);
        let n = Kind::Tiktok.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.updated"));
        assert_eq!(n.first_sighting_topic, Some("order.created"));
        assert_eq!(n.status.as_deref(), Some("AWAITING_SHIPMENT"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
    }
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "tiktok",
        "127.0.0.1:0",
        config(),
        common::orders(1, "AWAITING_SHIPMENT"),
    )
    .await
    .expect("starts");
    for wrong in [
        json!({"appKey": "tts-key", "appSecret": "nope", "accessToken": "tts-token"}),
        json!({"appKey": "other", "appSecret": "tts-secret", "accessToken": "tts-token"}),
        json!({"appKey": "tts-key", "appSecret": "tts-secret", "accessToken": "nope"}),
    ] {
        let refused = common::fetch_all(
            Kind::Tiktok,
            &sim.base_url(),
            &wrong,
            &options(),
            "s",
            common::last_day(),
        )
        .await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{wrong}: {refused:?}"
        );
    }
    let wrong_shop = common::fetch_all(
        Kind::Tiktok,
        &sim.base_url(),
        &creds(),
        &json!({"shopCipher": "ROW_other"}),
        "s",
        common::last_day(),
    )
    .await;
    assert!(
        matches!(wrong_shop, Err(ApiError::Unauthorized(_))),
        "{wrong_shop:?}"
    );
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        ..config()
    });
    let limited = common::fetch_all(
        Kind::Tiktok,
        &sim.base_url(),
        &creds(),
        &options(),
        "s",
        common::last_day(),
    )
    .await;
    assert!(
        matches!(limited, Err(ApiError::RateLimited { .. })),
        "{limited:?}"
    );
}
