//! eBay's orders client (Sell Fulfillment `getOrders`, refresh-token grant) against eBay's
//! simulated orders API.

mod common;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchyard_marketplaces::orders::{ApiError, fact_of};
use switchyard_marketplaces::{
    Inbound, Kind, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings,
};
use switchyard_simulator::{SimConfig, SimOrder};

fn credentials() -> Value {
    json!({"clientId": "sim-app-PRD-1234", "clientSecret": "PRD-sim-secret",
        "refreshToken": "v^1.1#i^1#r^1#sim-refresh"})
}

fn config() -> SimConfig {
    SimConfig {
        credentials: credentials(),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn order(id: &str, status: &str, created_mins_ago: i64, updated_mins_ago: i64) -> SimOrder {
    let now = Timestamp::now();
    SimOrder {
        id: id.into(),
        status: status.into(),
        created_at: now - SignedDuration::from_mins(created_mins_ago),
        updated_at: now - SignedDuration::from_mins(updated_mins_ago),
        extra: Value::Null,
    }
}

async fn read(
    sim: &switchyard_simulator::Running,
    creds: &Value,
) -> Result<(Vec<switchyard_marketplaces::orders::ApiOrder>, usize), ApiError> {
    common::fetch_all(
        Kind::Ebay,
        &sim.base_url(),
        creds,
        &json!({}),
        "sim-seller",
        common::last_day(),
    )
    .await
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        config(),
        common::orders(5, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    let (orders, pages) = read(&sim, &credentials()).await.expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    assert_eq!(pages, 3, "two orders a page");
    for order in &orders {
        assert_eq!(order.status, "NOT_STARTED");
        assert_eq!(order.events.len(), 1, "confirmed, nothing more");
        let n = Kind::Ebay.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.created"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
        assert_eq!(order.events[0].partner_id.as_deref(), Some("sim-seller"));
    }
}

#[tokio::test]
async fn the_window_filters_on_last_modified_not_creation() {
    let orders = vec![
        // Created long ago, changed within the window: read.
        order("OLD-CHANGED", "FULFILLED", 60 * 24 * 30, 60),
        order("IN-PROGRESS", "IN_PROGRESS", 120, 90),
        // Changed two days ago, and after the window's end: not read.
        order("STALE", "NOT_STARTED", 60 * 48, 60 * 48),
        order("LATE", "NOT_STARTED", 1, 0),
    ];
    let sim = switchyard_simulator::start("ebay", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, _) = read(&sim, &credentials()).await.expect("reads");
    let facts = common::facts_by_order(Kind::Ebay, &orders);
    assert_eq!(
        facts,
        vec![
            (
                "OLD-CHANGED".to_string(),
                vec!["order.created".to_string(), "order.updated|SHIPPED".into()]
            ),
            (
                "IN-PROGRESS".to_string(),
                vec!["order.created".to_string(), "order.updated|SHIPPED".into()]
            ),
        ],
        "oldest creation first; shipped orders had an item marked shipped"
    );
}

#[tokio::test]
async fn a_given_user_token_is_used_as_it_is() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        SimConfig {
            credentials: json!({"accessToken": "v^1.1#i^1#p^3#sim-user-token"}),
            ..config()
        },
        common::orders(3, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    let (orders, pages) = read(
        &sim,
        &json!({"accessToken": "v^1.1#i^1#p^3#sim-user-token"}),
    )
    .await
    .expect("reads");
    assert_eq!(orders.len(), 3);
    assert_eq!(pages, 2);
    assert_eq!(sim.shared.calls(), 2, "no token call");
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        config(),
        common::orders(1, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    for wrong in [
        json!({"clientId": "sim-app-PRD-1234", "clientSecret": "nope",
            "refreshToken": "v^1.1#i^1#r^1#sim-refresh"}),
        json!({"clientId": "sim-app-PRD-1234", "clientSecret": "PRD-sim-secret",
            "refreshToken": "v^1.1#revoked"}),
        json!({"accessToken": "v^1.1#forged"}),
    ] {
        let refused = read(&sim, &wrong).await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{wrong}: {refused:?}"
        );
    }
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        retry_after: Some(7),
        ..config()
    });
    let limited = read(&sim, &credentials()).await;
    assert!(
        matches!(
            limited,
            Err(ApiError::RateLimited {
                retry_after: None,
                ..
            })
        ),
        "eBay documents no Retry-After: {limited:?}"
    );
}

#[tokio::test]
async fn an_application_token_is_refused_as_insufficient() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        config(),
        common::orders(1, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{}/identity/v1/oauth2/token", sim.base_url()))
        .basic_auth("sim-app-PRD-1234", Some("PRD-sim-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope")
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let app_token = token["access_token"].as_str().expect("a token").to_string();
    let refused = read(&sim, &json!({"accessToken": app_token})).await;
    assert!(
        matches!(refused, Err(ApiError::Unauthorized(ref m)) if m.contains("403")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_simulator_answers_bad_filters_and_limits_with_ebay_errors() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        SimConfig {
            credentials: json!({"accessToken": "tok"}),
            ..config()
        },
        common::orders(1, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    let client = reqwest::Client::new();
    let get = |query: &str| {
        client
            .get(format!(
                "{}/sell/fulfillment/v1/order?{query}",
                sim.base_url()
            ))
            .bearer_auth("tok")
            .send()
    };
    for (query, id) in [
        ("limit=201", 31100),
        ("offset=-1", 31000),
        ("filter=lastmodifieddate%3A%5Byesterday..%5D", 30810),
        (
            "filter=lastmodifieddate%3A%5B2999-01-01T00%3A00%3A00.000Z..%5D",
            30850,
        ),
        ("filter=sortorder%3Aasc", 30700),
        // eBay requires the brackets percent-encoded.
        (
            "filter=lastmodifieddate:[2026-01-01T00:00:00.000Z..]",
            30800,
        ),
    ] {
        let response = get(query).await.expect("answers");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["errors"][0]["errorId"], json!(id), "{query}: {body}");
        assert_eq!(body["errors"][0]["domain"], json!("API_FULFILLMENT"));
    }
    let missing = client
        .get(format!("{}/sell/fulfillment/v1/order", sim.base_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["errors"][0]["errorId"], json!(1002));
    assert_eq!(body["errors"][0]["domain"], json!("ACCESS"));
}

#[tokio::test]
async fn a_confirmation_read_is_the_fact_a_signed_webhook_states() {
    let sim = switchyard_simulator::start(
        "ebay",
        "127.0.0.1:0",
        config(),
        common::orders(1, "NOT_STARTED"),
    )
    .await
    .expect("starts");
    let (orders, _) = read(&sim, &credentials()).await.expect("reads");
    let ours = Kind::Ebay.normalize(&orders[0].events[0]);

    let now = Timestamp::now();
    let secret = "sim-dev-id";
    let options = json!({"signatureForm": "hmac"});
    let signed = Kind::Ebay
        .sign(&SignRequest {
            event_type: "ORDER_CONFIRMATION".into(),
            secret: secret.into(),
            options: options.clone(),
            endpoint_url: "http://hub.test/ingest/ebay".into(),
            partner_id: "sim-seller".into(),
            resource_id: "ORD-0".into(),
            event_id: "notification-1".into(),
            now,
        })
        .expect("signs");
    let source = SourceSettings {
        kind: Kind::Ebay,
        secrets: vec![SourceSecret {
            id: "1".into(),
            value: secret.into(),
        }],
        replay_window: SignedDuration::from_mins(5),
        options,
    };
    let Outcome::Event(webhook) = Kind::Ebay
        .verify(
            &Inbound {
                method: signed.method,
                endpoint_url: "http://hub.test/ingest/ebay",
                query: "",
                headers: &signed.headers,
                body: &signed.body,
                now,
            },
            &source,
            &NoKeys,
        )
        .expect("verifies")
    else {
        panic!("an event");
    };
    let theirs = Kind::Ebay.normalize(&webhook);
    assert_eq!(ours.topic, theirs.topic);
    assert_eq!(ours.resource, theirs.resource);
    assert_eq!(
        fact_of(ours.topic, ours.status.as_deref()),
        fact_of(theirs.topic, theirs.status.as_deref())
    );
    assert_eq!(orders[0].events[0].event_type, webhook.event_type);
    assert_eq!(orders[0].events[0].partner_id, webhook.partner_id);
}
