//! Etsy's orders client (Open API v3 `getShopReceipts`, `x-api-key` with the shared secret,
//! OAuth refresh) against Etsy's simulated API.

mod common;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchyard_marketplaces::orders::{AccessToken, ApiError, ApiOrder, OrdersContext, fact_of};
use switchyard_marketplaces::{
    Inbound, Kind, NoKeys, Outcome, SignRequest, SourceSecret, SourceSettings,
};
use switchyard_simulator::{Running, SimConfig, SimOrder};

const SHOP: &str = "23456789";

fn sim_credentials() -> Value {
    json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "sim-shared-secret",
        "refreshToken": "12345678.sim-refresh", "accessToken": "12345678.sim-access",
        "userId": "12345678", "shopId": SHOP})
}

fn credentials() -> Value {
    json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "sim-shared-secret",
        "accessToken": "12345678.sim-access"})
}

fn config() -> SimConfig {
    SimConfig {
        credentials: sim_credentials(),
        page_size: 2,
        ..SimConfig::default()
    }
}

fn order(id: &str, status: &str, updated_mins_ago: i64) -> SimOrder {
    let at = Timestamp::now() - SignedDuration::from_mins(updated_mins_ago);
    SimOrder {
        id: id.into(),
        status: status.into(),
        created_at: at - SignedDuration::from_mins(30),
        updated_at: at,
        extra: Value::Null,
    }
}

async fn read(sim: &Running, creds: &Value) -> Result<(Vec<ApiOrder>, usize), ApiError> {
    common::fetch_all(
        Kind::Etsy,
        &sim.base_url(),
        creds,
        &json!({"shopId": SHOP}),
        SHOP,
        common::last_day(),
    )
    .await
}

fn ids(orders: &[ApiOrder]) -> Vec<String> {
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let mut orders = common::orders(5, "paid");
    // Changed after the window ends, and two days ago: not read.
    orders.push(order("LATE", "paid", 0));
    orders.push(order("OLD", "paid", 48 * 60));
    let sim = switchyard_simulator::start("etsy", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = read(&sim, &credentials()).await.expect("reads");
    assert_eq!(ids(&orders), ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    assert_eq!(
        pages, 3,
        "two receipts a page; count says the third is the last"
    );
    for order in &orders {
        assert_eq!(order.status, "paid");
        assert_eq!(order.events.len(), 1, "paid, nothing more");
        let n = Kind::Etsy.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.created"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
        assert_eq!(order.events[0].partner_id.as_deref(), Some(SHOP));
    }
}

#[tokio::test]
async fn more_receipts_changed_in_one_second_than_a_page_holds_are_each_read_once() {
    let at = Timestamp::from_second(Timestamp::now().as_second() - 3600).expect("a second");
    let same = |id: String| SimOrder {
        id,
        status: "paid".into(),
        created_at: at - SignedDuration::from_hours(2),
        updated_at: at,
        extra: Value::Null,
    };
    // Five in one second, two a page; then one changed later.
    let mut orders: Vec<SimOrder> = (1..=5).map(|i| same(format!("300{i}"))).collect();
    orders.push(order("3006", "paid", 30));
    let sim = switchyard_simulator::start("etsy", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = read(&sim, &credentials()).await.expect("reads");
    assert_eq!(
        orders
            .iter()
            .map(|o| o.order_id.as_str())
            .collect::<Vec<_>>(),
        ["3001", "3002", "3003", "3004", "3005", "3006"]
    );
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn cancelled_and_shipped_receipts_are_read_with_their_events() {
    let orders = vec![
        order("1001", "paid", 90),
        order("1002", "canceled", 80),
        order("1003", "completed", 70),
        order("1004", "open", 60),
        order("1005", "fully refunded", 50),
    ];
    let sim = switchyard_simulator::start("etsy", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, _) = read(&sim, &credentials()).await.expect("reads");
    let facts = common::facts_by_order(Kind::Etsy, &orders);
    assert_eq!(
        facts,
        vec![
            common::expected("1001", &["order.created"]),
            common::expected("1002", &["order.cancelled|canceled"]),
            common::expected("1003", &["order.created", "order.updated|shipped"]),
            common::expected("1004", &[]),
            common::expected("1005", &["order.created"]),
        ],
        "oldest change first; an open receipt announces nothing yet"
    );
}

/// One refresh grant with `refresh_token`, as the reconciler makes it.
async fn refresh(sim: &Running, refresh_token: &str) -> Result<AccessToken, ApiError> {
    let api = Kind::Etsy.orders().expect("an orders API");
    let credentials = json!({"keystring": "1aa2bb33c44d55eeeeee6fff",
        "sharedSecret": "sim-shared-secret", "refreshToken": refresh_token});
    let options = json!({"shopId": SHOP});
    let base_url = sim.base_url();
    let ctx = OrdersContext {
        base_url: &base_url,
        credentials: &credentials,
        options: &options,
        partner_id: SHOP,
        now: Timestamp::now(),
        nonce: "n",
    };
    let request = api.token_request(&ctx)?.expect("a token step");
    let response = common::send(&reqwest::Client::new(), &request).await;
    api.read_token(&ctx, &response)
}

#[tokio::test]
async fn each_refresh_uses_the_refresh_token_the_last_one_returned() {
    let sim =
        switchyard_simulator::start("etsy", "127.0.0.1:0", config(), common::orders(3, "paid"))
            .await
            .expect("starts");
    let mut current = "12345678.sim-refresh".to_string();
    for _ in 0..3 {
        let token = refresh(&sim, &current).await.expect("refreshes");
        assert!(token.value.starts_with("12345678."), "{}", token.value);
        let rotated = token.refresh_token.expect("a rotated refresh token");
        assert_ne!(rotated, current);
        let used = refresh(&sim, &current).await;
        assert!(
            matches!(used, Err(ApiError::Unauthorized(_))),
            "a used refresh token is refused: {used:?}"
        );
        current = rotated;
    }
    // The last one returned reads the receipts (and rotates again).
    let creds = json!({"keystring": "1aa2bb33c44d55eeeeee6fff",
        "sharedSecret": "sim-shared-secret", "refreshToken": current});
    assert_eq!(read(&sim, &creds).await.expect("reads").0.len(), 3);
    let again = read(&sim, &creds).await;
    assert!(matches!(again, Err(ApiError::Unauthorized(_))), "{again:?}");
}

#[tokio::test]
async fn a_refresh_token_is_used_even_beside_an_access_token() {
    let sim =
        switchyard_simulator::start("etsy", "127.0.0.1:0", config(), common::orders(1, "paid"))
            .await
            .expect("starts");
    let creds = json!({"keystring": "1aa2bb33c44d55eeeeee6fff",
        "sharedSecret": "sim-shared-secret", "refreshToken": "12345678.sim-refresh",
        "accessToken": "12345678.sim-access"});
    assert_eq!(read(&sim, &creds).await.expect("reads").0.len(), 1);
    assert_ne!(
        sim.shared.credential("refreshToken"),
        "12345678.sim-refresh",
        "the refresh grant was made (and rotated the refresh token)"
    );
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim =
        switchyard_simulator::start("etsy", "127.0.0.1:0", config(), common::orders(1, "paid"))
            .await
            .expect("starts");
    for wrong in [
        json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "nope",
            "accessToken": "12345678.sim-access"}),
        json!({"keystring": "other", "sharedSecret": "sim-shared-secret",
            "accessToken": "12345678.sim-access"}),
        json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "sim-shared-secret",
            "accessToken": "12345678.forged"}),
        json!({"keystring": "1aa2bb33c44d55eeeeee6fff", "sharedSecret": "sim-shared-secret",
            "refreshToken": "12345678.revoked"}),
    ] {
        let refused = read(&sim, &wrong).await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{wrong}: {refused:?}"
        );
    }
    let other_shop = common::fetch_all(
        Kind::Etsy,
        &sim.base_url(),
        &credentials(),
        &json!({"shopId": "99999999"}),
        SHOP,
        common::last_day(),
    )
    .await;
    assert!(
        matches!(other_shop, Err(ApiError::Unauthorized(ref m)) if m.contains("403")),
        "another user's shop: {other_shop:?}"
    );
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        retry_after: Some(2),
        ..config()
    });
    match read(&sim, &credentials()).await {
        Err(ApiError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(SignedDuration::from_secs(2)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_simulator_checks_the_key_and_sends_its_limits() {
    let sim =
        switchyard_simulator::start("etsy", "127.0.0.1:0", config(), common::orders(1, "paid"))
            .await
            .expect("starts");
    let client = reqwest::Client::new();
    let get = |key: &str, query: &str| {
        client
            .get(format!(
                "{}/v3/application/shops/{SHOP}/receipts?{query}",
                sim.base_url()
            ))
            .header("x-api-key", key)
            .bearer_auth("12345678.sim-access")
            .send()
    };
    let keystring_only = get("1aa2bb33c44d55eeeeee6fff", "").await.expect("answers");
    assert_eq!(keystring_only.status(), 403);
    assert_eq!(
        keystring_only.json::<Value>().await.expect("json"),
        json!({"error": "Shared secret is required in x-api-key header."})
    );
    let key = "1aa2bb33c44d55eeeeee6fff:sim-shared-secret";
    let ok = get(key, "").await.expect("answers");
    assert_eq!(ok.status(), 200);
    for name in [
        "x-limit-per-second",
        "x-remaining-this-second",
        "x-limit-per-day",
        "x-remaining-today",
    ] {
        assert!(ok.headers().contains_key(name), "{name}");
    }
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["count"], 1);
    let receipt = &body["results"][0];
    for name in [
        "create_timestamp",
        "created_timestamp",
        "update_timestamp",
        "updated_timestamp",
    ] {
        assert!(receipt[name].is_i64(), "{name}: {receipt}");
    }
    for query in [
        "limit=101",
        "offset=-1",
        "min_last_modified=100",
        "sort_on=price",
    ] {
        let refused = get(key, query).await.expect("answers");
        assert_eq!(refused.status(), 400, "{query}");
        assert!(refused.json::<Value>().await.expect("json")["error"].is_string());
    }
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        ..config()
    });
    let limited = get(key, "").await.expect("answers");
    assert_eq!(limited.status(), 429);
    assert!(!limited.headers().contains_key("x-limit-per-day"));
    assert!(!limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_paid_receipt_read_is_the_fact_a_signed_webhook_states() {
    let sim = switchyard_simulator::start(
        "etsy",
        "127.0.0.1:0",
        config(),
        vec![order("580001", "paid", 60)],
    )
    .await
    .expect("starts");
    let (orders, _) = read(&sim, &credentials()).await.expect("reads");
    let ours = Kind::Etsy.normalize(&orders[0].events[0]);

    let now = Timestamp::now();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signed = Kind::Etsy
        .sign(&SignRequest {
            event_type: "order.paid".into(),
            secret: secret.into(),
            options: json!({}),
            endpoint_url: "http://hub.test/ingest/etsy".into(),
            partner_id: SHOP.into(),
            resource_id: "580001".into(),
            event_id: "msg_1".into(),
            now,
        })
        .expect("signs");
    let source = SourceSettings {
        kind: Kind::Etsy,
        secrets: vec![SourceSecret {
            id: "1".into(),
            value: secret.into(),
        }],
        replay_window: SignedDuration::from_mins(5),
        options: json!({}),
    };
    let Outcome::Event(webhook) = Kind::Etsy
        .verify(
            &Inbound {
                method: signed.method,
                endpoint_url: "http://hub.test/ingest/etsy",
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
    let theirs = Kind::Etsy.normalize(&webhook);
    assert_eq!(ours.topic, Some("order.created"));
    assert_eq!(ours.topic, theirs.topic);
    assert_eq!(ours.resource, theirs.resource);
    assert_eq!(
        fact_of(ours.topic, ours.status.as_deref()),
        fact_of(theirs.topic, theirs.status.as_deref())
    );
    assert_eq!(orders[0].events[0].event_type, webhook.event_type);
    assert_eq!(orders[0].events[0].partner_id, webhook.partner_id);
}

#[tokio::test]
async fn the_shop_is_the_partner_when_the_options_name_none() {
    let now = Timestamp::now();
    let orders = (0..4)
        .map(|i| SimOrder {
            id: format!("58000{i}"),
            status: "paid".into(),
            created_at: now - SignedDuration::from_hours(3),
            updated_at: now - SignedDuration::from_hours(1) + SignedDuration::from_mins(i),
            extra: Value::Null,
        })
        .collect();
    let mut credentials_of_sim = sim_credentials();
    credentials_of_sim["shopId"] = json!("seller-1");
    let sim = switchyard_simulator::start(
        "etsy",
        "127.0.0.1:0",
        SimConfig {
            credentials: credentials_of_sim,
            ..config()
        },
        orders,
    )
    .await
    .expect("starts");
    let (orders, pages) = common::fetch_all(
        Kind::Etsy,
        &sim.base_url(),
        &credentials(),
        &json!({}),
        "seller-1",
        common::last_day(),
    )
    .await
    .expect("reads");
    assert_eq!(ids(&orders), ["580000", "580001", "580002", "580003"]);
    assert_eq!(orders.len(), 4, "each receipt read once");
    assert_eq!(pages, 2);
    assert!(
        orders
            .iter()
            .all(|o| o.events[0].partner_id.as_deref() == Some("seller-1"))
    );
}
