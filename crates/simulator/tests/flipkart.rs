//! Flipkart's orders client (v3 shipments search, client-credentials token) against Flipkart's
//! simulated Seller API.

mod common;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchyard_marketplaces::orders::{ApiError, fact_of};
use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings,
};
use switchyard_simulator::{SimConfig, SimOrder};

fn config() -> SimConfig {
    SimConfig {
        credentials: json!({"appId": "fk-app", "appSecret": "fk-secret"}),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn creds() -> Value {
    json!({"appId": "fk-app", "appSecret": "fk-secret"})
}

fn order(id: &str, status: &str, minutes_ago: i64, extra: Value) -> SimOrder {
    let at = Timestamp::now() - SignedDuration::from_mins(minutes_ago);
    SimOrder {
        id: id.into(),
        status: status.into(),
        created_at: at - SignedDuration::from_hours(1),
        updated_at: at,
        extra,
    }
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let mut orders = common::orders(5, "APPROVED");
    // Changed after the window ends: not read.
    orders.push(order("LATE", "APPROVED", 0, Value::Null));
    let sim = switchyard_simulator::start("flipkart", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = common::fetch_all(
        Kind::Flipkart,
        &sim.base_url(),
        &creds(),
        &json!({}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    // Three pages of preDispatch, then one (empty) for each of the five other searches.
    assert_eq!(pages, 8);
    for order in &orders {
        assert_eq!(order.status, "APPROVED");
        assert_eq!(order.events.len(), 1);
        let n = Kind::Flipkart.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.created"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
    }
}

#[tokio::test]
async fn every_search_finds_its_orders_and_cancellations_cancel() {
    let orders = vec![
        order("OD-NEW", "APPROVED", 90, Value::Null),
        order("OD-HELD", "PACKED", 80, json!({"hold": true})),
        order("OD-RTD", "READY_TO_DISPATCH", 70, Value::Null),
        order("OD-SHIPPED", "SHIPPED", 60, Value::Null),
        order("OD-DELIVERED", "DELIVERED", 50, Value::Null),
        order(
            "OD-SELLER",
            "CANCELLED",
            40,
            json!({"cancellationType": "sellerCancellation"}),
        ),
        order("OD-BUYER", "CANCELLED", 30, Value::Null),
        order(
            "OD-FK",
            "CANCELLED",
            20,
            json!({"cancellationType": "marketplaceCancellation"}),
        ),
        // No search takes returns: not read.
        order("OD-RETURNED", "RETURNED", 10, Value::Null),
    ];
    let sim = switchyard_simulator::start("flipkart", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, _) = common::fetch_all(
        Kind::Flipkart,
        &sim.base_url(),
        &creds(),
        &json!({}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    let facts = common::facts_by_order(Kind::Flipkart, &orders);
    assert_eq!(
        facts,
        [
            common::expected("OD-NEW", &["order.created"]),
            common::expected(
                "OD-RTD",
                &["order.created", "order.updated|READY_TO_DISPATCH"]
            ),
            common::expected("OD-HELD", &["order.created", "order.updated|PACKED"]),
            common::expected("OD-SHIPPED", &["order.created", "order.updated|SHIPPED"]),
            common::expected(
                "OD-DELIVERED",
                &["order.created", "order.updated|DELIVERED"]
            ),
            common::expected("OD-SELLER", &["order.created", "order.cancelled|CANCELLED"]),
            common::expected("OD-BUYER", &["order.created", "order.cancelled|CANCELLED"]),
            common::expected("OD-FK", &["order.created", "order.cancelled|CANCELLED"]),
        ]
    );
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "flipkart",
        "127.0.0.1:0",
        config(),
        common::orders(1, "APPROVED"),
    )
    .await
    .expect("starts");
    for wrong in [
        json!({"appId": "fk-app", "appSecret": "nope"}),
        json!({"appId": "other", "appSecret": "fk-secret"}),
    ] {
        let refused = common::fetch_all(
            Kind::Flipkart,
            &sim.base_url(),
            &wrong,
            &json!({}),
            "s",
            common::last_day(),
        )
        .await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{wrong}: {refused:?}"
        );
    }
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        ..config()
    });
    let limited = common::fetch_all(
        Kind::Flipkart,
        &sim.base_url(),
        &creds(),
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

#[tokio::test]
async fn a_token_it_did_not_issue_is_refused() {
    let sim = switchyard_simulator::start(
        "flipkart",
        "127.0.0.1:0",
        config(),
        common::orders(1, "APPROVED"),
    )
    .await
    .expect("starts");
    let api = Kind::Flipkart.orders().expect("an orders API");
    let credentials = creds();
    let options = json!({});
    let base_url = sim.base_url();
    let ctx = switchyard_marketplaces::orders::OrdersContext {
        base_url: &base_url,
        credentials: &credentials,
        options: &options,
        partner_id: "s",
        now: Timestamp::now(),
        nonce: "forged-1",
    };
    let forged = switchyard_marketplaces::orders::AccessToken {
        value: "not-issued".into(),
        expires_in: None,
        refresh_token: None,
    };
    let request = api
        .page_request(&ctx, Some(&forged), common::last_day(), None)
        .expect("builds");
    let response = common::send(&reqwest::Client::new(), &request).await;
    assert_eq!(response.status, 401);
    assert!(matches!(
        api.read_page_of(&ctx, common::last_day(), None, &response),
        Err(ApiError::Unauthorized(_))
    ));
}

/// The webhook `Kind::Flipkart.sign` makes for an order (the `seed` form the source verifies by
/// default), verified and normalized, states the same fact about the same order as the event
/// the client read for it from the simulator.
fn signed_webhook(event_type: &str, status: &str, order_id: &str) -> NativeEvent {
    let now = Timestamp::now();
    let endpoint_url = "https://hub.example/ingest/src_fk";
    let signed = Kind::Flipkart
        .sign(&SignRequest {
            event_type: event_type.into(),
            secret: "hook-secret".into(),
            options: json!({"status": status}),
            endpoint_url: endpoint_url.into(),
            partner_id: "seller-1".into(),
            resource_id: order_id.into(),
            event_id: String::new(),
            now,
        })
        .expect("signs");
    let headers: Vec<(String, String)> = (signed.headers.iter())
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let source = SourceSettings {
        kind: Kind::Flipkart,
        secrets: vec![SourceSecret {
            id: "0".into(),
            value: "hook-secret".into(),
        }],
        replay_window: SignedDuration::from_mins(5),
        options: json!({}),
    };
    let inbound = Inbound {
        method: "POST",
        endpoint_url,
        query: "",
        headers: &headers,
        body: &signed.body,
        now,
    };
    match Kind::Flipkart.verify(&inbound, &source, &NoKeys) {
        Ok(Outcome::Event(native)) => native,
        other => panic!("the signed webhook verifies: {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_webhook_states_the_same_fact_as_the_order_read() {
    let cases = [
        ("OD-1", "APPROVED", "shipment_created", 0),
        ("OD-2", "READY_TO_DISPATCH", "shipment_ready_to_dispatch", 1),
        ("OD-3", "DELIVERED", "shipment_delivered", 1),
        ("OD-4", "CANCELLED", "shipment_cancelled", 1),
    ];
    let orders = (cases.iter().enumerate())
        .map(|(i, (id, status, _, _))| order(id, status, 40 - i as i64, Value::Null))
        .collect();
    let sim = switchyard_simulator::start("flipkart", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, _) = common::fetch_all(
        Kind::Flipkart,
        &sim.base_url(),
        &creds(),
        &json!({}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    for (id, status, event_type, index) in cases {
        let read = orders.iter().find(|o| o.order_id == id).expect("read");
        let ours = &read.events[index];
        let webhook = signed_webhook(event_type, status, id);
        assert_eq!(ours.event_type, webhook.event_type);
        assert_eq!(ours.partner_id, webhook.partner_id);
        let (ours, theirs) = (
            Kind::Flipkart.normalize(ours),
            Kind::Flipkart.normalize(&webhook),
        );
        assert_eq!(ours, theirs, "{event_type}");
        assert_eq!(
            ours.resource.map(|r| (r.kind, r.id)),
            Some(("order".to_string(), id.to_string()))
        );
        assert_eq!(
            fact_of(ours.topic, ours.status.as_deref()),
            fact_of(theirs.topic, theirs.status.as_deref())
        );
    }
}
