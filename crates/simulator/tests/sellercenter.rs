//! SellerCenter's orders client (signed `GetOrders`) against SellerCenter's simulated API.

mod common;

use serde_json::{Value, json};
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::{ApiError, ApiOrder, fact_of};
use switchyard_marketplaces::sellercenter::orders::signature;
use switchyard_simulator::{Running, SimConfig, SimOrder};

fn credentials() -> Value {
    json!({"userId": "api@seller.test", "apiKey": "sc-api-key"})
}

fn config() -> SimConfig {
    SimConfig {
        credentials: credentials(),
        page_size: 2,
        ..SimConfig::default()
    }
}

async fn read(sim: &Running, creds: &Value) -> Result<(Vec<ApiOrder>, usize), ApiError> {
    common::fetch_all(
        Kind::Sellercenter,
        &sim.base_url(),
        creds,
        &json!({}),
        "SELLER1",
        common::last_day(),
    )
    .await
}

#[tokio::test]
async fn every_order_of_the_window_is_read_across_pages() {
    let mut orders = common::orders(5, "pending");
    // Changed after the window ends: not read.
    orders.push(SimOrder {
        id: "LATE".into(),
        status: "pending".into(),
        created_at: jiff::Timestamp::now(),
        updated_at: jiff::Timestamp::now(),
        extra: Value::Null,
    });
    let sim = switchyard_simulator::start("sellercenter", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    let (orders, pages) = read(&sim, &credentials()).await.expect("reads");
    let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["ORD-0", "ORD-1", "ORD-2", "ORD-3", "ORD-4"]);
    // Two a page, at Offset 0, 2 and 4: TotalCount says the third is the last (no empty page).
    assert_eq!(pages, 3);
    for order in &orders {
        assert_eq!(order.status, "pending");
        assert_eq!(order.events.len(), 1, "created, no status change yet");
        let n = Kind::Sellercenter.normalize(&order.events[0]);
        assert_eq!(n.topic, Some("order.created"));
        assert_eq!(n.resource.map(|r| r.id), Some(order.order_id.clone()));
    }
}

#[tokio::test]
async fn pages_follow_the_offset_and_each_order_is_read_once() {
    let base = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let orders: Vec<SimOrder> = [
        (200, "shipped"),
        (201, "shipped"),
        (202, "canceled"),
        (203, "delivered"),
        (204, "pending"),
    ]
    .iter()
    .map(|(id, status)| SimOrder {
        id: id.to_string(),
        status: status.to_string(),
        created_at: base - jiff::SignedDuration::from_hours(2),
        updated_at: base + jiff::SignedDuration::from_secs(id % 10),
        extra: Value::Null,
    })
    .collect();
    let sim = switchyard_simulator::start("sellercenter", "127.0.0.1:0", config(), orders)
        .await
        .expect("starts");
    // A last page short of the page size, a page size the orders fill exactly, one a page.
    for (page_size, expected_pages) in [(3, 2), (5, 1), (1, 5)] {
        sim.shared.set_config(SimConfig {
            page_size,
            ..config()
        });
        let (orders, pages) = read(&sim, &credentials()).await.expect("reads");
        let mut ids: Vec<_> = orders.iter().map(|o| o.order_id.clone()).collect();
        ids.sort();
        assert_eq!(ids, ["200", "201", "202", "203", "204"], "once each");
        assert_eq!(pages, expected_pages, "{page_size} a page");
        let cancelled = orders.iter().find(|o| o.order_id == "202").expect("read");
        let facts: Vec<String> = cancelled
            .events
            .iter()
            .map(|e| {
                let n = Kind::Sellercenter.normalize(e);
                assert_eq!(n.resource.map(|r| r.id), Some("202".to_string()));
                fact_of(n.topic, n.status.as_deref())
            })
            .collect();
        assert_eq!(facts, ["order.created", "order.cancelled|canceled"]);
    }
}

#[tokio::test]
async fn bad_credentials_and_rate_limits_are_errors() {
    let sim = switchyard_simulator::start(
        "sellercenter",
        "127.0.0.1:0",
        config(),
        common::orders(1, "pending"),
    )
    .await
    .expect("starts");
    for wrong in [
        json!({"userId": "api@seller.test", "apiKey": "nope"}),
        json!({"userId": "other@seller.test", "apiKey": "sc-api-key"}),
    ] {
        let refused = read(&sim, &wrong).await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{wrong}: {refused:?}"
        );
    }
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        ..config()
    });
    let limited = read(&sim, &credentials()).await;
    assert!(
        matches!(limited, Err(ApiError::RateLimited { .. })),
        "{limited:?}"
    );
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A signed call with `params` (Timestamp, UserID and Version added unless given).
async fn call(sim: &Running, params: &[(&str, &str)], user_agent: Option<&str>) -> (u16, String) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    for (k, v) in [
        ("Timestamp", now.as_str()),
        ("UserID", "api@seller.test"),
        ("Version", "1.0"),
    ] {
        if !all.iter().any(|(name, _)| *name == k) {
            all.push((k, v));
        }
    }
    let sign = signature("sc-api-key", &all);
    all.push(("Signature", &sign));
    let query: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut request =
        reqwest::Client::new().get(format!("{}/?{}", sim.base_url(), query.join("&")));
    if let Some(ua) = user_agent {
        request = request.header("User-Agent", ua);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_simulator_checks_what_the_documentation_says() {
    let sim = switchyard_simulator::start(
        "sellercenter",
        "127.0.0.1:0",
        config(),
        common::orders(1, "ready_to_ship"),
    )
    .await
    .expect("starts");
    let ua = Some("SELLER1/Rust/1.89");
    let since = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24))
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let get_orders = [("Action", "GetOrders"), ("UpdatedAfter", since.as_str())];
    // XML by default.
    let (status, body) = call(&sim, &get_orders, ua).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<SuccessResponse><Head>"), "{body}");
    assert!(
        body.contains("<Statuses><Status>ready_to_ship</Status></Statuses>"),
        "{body}"
    );
    let with = |extra: (&'static str, &'static str)| {
        let mut p = get_orders.to_vec();
        p.push(extra);
        p
    };
    let (_, body) = call(&sim, &with(("Format", "JSON")), ua).await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["SuccessResponse"]["Head"]["TotalCount"], "1");
    assert_eq!(
        body["SuccessResponse"]["Body"]["Orders"]["Order"]["OrderId"], "ORD-0",
        "one order comes as an object"
    );
    let code = |body: &str| -> String {
        let v: Value = serde_json::from_str(body).expect("json");
        v["ErrorResponse"]["Head"]["ErrorCode"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let json = ("Format", "JSON");
    let (status, body) = call(&sim, &with(json), None).await;
    assert_eq!((status, code(&body)), (400, "E001".into()), "no User-Agent");
    let (_, body) = call(&sim, &[("Action", "GetOrders"), json], ua).await;
    assert_eq!(code(&body), "E001", "neither UpdatedAfter nor CreatedAfter");
    let (_, body) = call(&sim, &[("Action", "FeedList"), json], ua).await;
    assert_eq!(code(&body), "E008");
    let mut stale = with(json);
    stale.push(("Timestamp", "2015-07-01T11:11:11+00:00"));
    let (_, body) = call(&sim, &stale, ua).await;
    assert_eq!(code(&body), "E003");
    let mut sorted = with(json);
    sorted.push(("SortBy", "price"));
    let (_, body) = call(&sim, &sorted, ua).await;
    assert_eq!(code(&body), "E075");
    let mut forged = with(json);
    forged.push(("UserID", "other@seller.test"));
    let (_, body) = call(&sim, &forged, ua).await;
    assert_eq!(code(&body), "E007");
}
