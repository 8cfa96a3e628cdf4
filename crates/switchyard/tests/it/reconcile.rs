//! Reconciliation, per marketplace, against its simulated orders API (`switchyard_simulator`,
//! written from the marketplace's documentation, not from the hub's client): the simulator holds
//! four orders, the hub receives signed webhooks for two, and a run backfills exactly the other
//! two, each delivered once to a subscriber; a webhook that arrives afterwards for a backfilled
//! order is a duplicate; a second run finds nothing new; bad credentials and 429s are run errors
//! that keep the cursor. On SQLite, and on PostgreSQL (`#[ignore]`d: `bash .ci/run` runs them).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use switchyard_marketplaces::{Kind, SignRequest, SignedRequest};
use switchyard_simulator::{SimConfig, SimOrder};

use crate::helpers::*;

/// One marketplace's part: what its simulator accepts, what the source sends it, and the
/// webhook that announces a new order.
struct Case {
    kind: Kind,
    /// The simulator's name for it.
    sim: &'static str,
    /// What the simulator accepts.
    sim_credentials: Value,
    /// The source's `reconcile.credentials` and `options`.
    credentials: Value,
    options: Value,
    /// The status a new order has at the marketplace.
    status: &'static str,
    /// The native webhook that announces such an order, and its signing options.
    webhook_event: &'static str,
    sign_options: Value,
    /// The source's fields beyond kind and partners (its webhook secret and options).
    source: Value,
    /// The secret webhooks are signed with.
    secret: &'static str,
    /// The credential a bad-credentials run changes (the others stay, as a rotated refresh
    /// token must).
    wrong: &'static str,
}

fn walmart() -> Case {
    Case {
        kind: Kind::Walmart,
        sim: "walmart",
        sim_credentials: json!({"clientId": "wm-id", "clientSecret": "wm-secret"}),
        credentials: json!({"clientId": "wm-id", "clientSecret": "wm-secret"}),
        options: json!({}),
        status: "Created",
        webhook_event: "PO_CREATED",
        sign_options: json!({"keyVersion": "1"}),
        source: json!({"secrets": [{"id": "1", "value": "walmart-secret"}]}),
        secret: "walmart-secret",
        wrong: "clientSecret",
    }
}

fn amazon() -> Case {
    Case {
        kind: Kind::AmazonSns,
        sim: "amazon_sns",
        sim_credentials: json!({"clientId": "amzn1.application-oa2-client.sim",
            "clientSecret": "amzn-secret", "refreshToken": "Atzr|sim-refresh"}),
        credentials: json!({"clientId": "amzn1.application-oa2-client.sim",
            "clientSecret": "amzn-secret", "refreshToken": "Atzr|sim-refresh"}),
        options: json!({"marketplaceIds": "ATVPDKIKX0DER"}),
        status: "Unshipped",
        webhook_event: "ORDER_CHANGE",
        // The certificate and topic are added by `signer` (a key is generated per test).
        sign_options: json!({"orderStatus": "Unshipped"}),
        source: json!({}),
        secret: "",
        wrong: "clientSecret",
    }
}

fn tiktok() -> Case {
    Case {
        kind: Kind::Tiktok,
        sim: "tiktok",
        sim_credentials: json!({"appKey": "tts-key", "appSecret": "tts-secret",
            "accessToken": "tts-token", "shopCipher": "ROW_cipher"}),
        credentials: json!({"appKey": "tts-key", "appSecret": "tts-secret",
            "accessToken": "tts-token"}),
        options: json!({"shopCipher": "ROW_cipher"}),
        status: "AWAITING_SHIPMENT",
        webhook_event: "1",
        sign_options: json!({"appKey": "tts-key", "orderStatus": "AWAITING_SHIPMENT"}),
        source: json!({"secret": "tts-secret", "options": {"appKey": "tts-key"}}),
        secret: "tts-secret",
        wrong: "accessToken",
    }
}

fn flipkart() -> Case {
    Case {
        kind: Kind::Flipkart,
        sim: "flipkart",
        sim_credentials: json!({"appId": "fk-app", "appSecret": "fk-secret"}),
        credentials: json!({"appId": "fk-app", "appSecret": "fk-secret"}),
        options: json!({}),
        status: "APPROVED",
        webhook_event: "shipment_created",
        sign_options: json!({}),
        source: json!({"secret": "flipkart-secret"}),
        secret: "flipkart-secret",
        wrong: "appSecret",
    }
}

fn shopify() -> Case {
    Case {
        kind: Kind::Shopify,
        sim: "shopify",
        sim_credentials: json!({"accessToken": "shpat_sim"}),
        credentials: json!({"accessToken": "shpat_sim"}),
        options: json!({}),
        status: "paid",
        webhook_event: "orders/create",
        sign_options: json!({}),
        source: json!({"secret": "shopify-secret"}),
        secret: "shopify-secret",
        wrong: "accessToken",
    }
}

fn sellercenter() -> Case {
    Case {
        kind: Kind::Sellercenter,
        sim: "sellercenter",
        sim_credentials: json!({"userId": "api@seller.test", "apiKey": "sc-api-key"}),
        credentials: json!({"userId": "api@seller.test", "apiKey": "sc-api-key"}),
        options: json!({}),
        status: "pending",
        webhook_event: "onOrderCreated",
        sign_options: json!({}),
        source: json!({}),
        // The ingest URL's token (set once the source exists).
        secret: "",
        wrong: "apiKey",
    }
}

fn ebay() -> Case {
    let credentials = json!({"clientId": "ebay-app-id", "clientSecret": "ebay-cert-id",
        "refreshToken": "v^1.1#i^1#r^1#ebay-refresh"});
    Case {
        kind: Kind::Ebay,
        sim: "ebay",
        sim_credentials: credentials.clone(),
        credentials,
        options: json!({}),
        status: "NOT_STARTED",
        webhook_event: "ORDER_CONFIRMATION",
        sign_options: json!({"signatureForm": "hmac"}),
        source: json!({"secret": "ebay-dev-id", "options": {"signatureForm": "hmac"}}),
        secret: "ebay-dev-id",
        wrong: "clientSecret",
    }
}

fn etsy() -> Case {
    Case {
        kind: Kind::Etsy,
        sim: "etsy",
        sim_credentials: json!({"keystring": "1aa2bb33c44d55eeeeee6fff",
            "sharedSecret": "sim-shared-secret", "refreshToken": "12345678.sim-refresh",
            "userId": "12345678", "shopId": "23456789"}),
        // The refresh token rotates on every refresh: the hub stores each new one.
        credentials: json!({"keystring": "1aa2bb33c44d55eeeeee6fff",
            "sharedSecret": "sim-shared-secret", "refreshToken": "12345678.sim-refresh"}),
        options: json!({"shopId": "23456789"}),
        status: "paid",
        webhook_event: "order.paid",
        sign_options: json!({}),
        source: json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        wrong: "keystring",
    }
}

/// Signs the case's webhook for an order, as the marketplace would send it.
struct Signer {
    kind: Kind,
    secret: String,
    options: Value,
    url: String,
}

impl Signer {
    fn sign(&self, event_type: &str, order: &str, event_id: &str, now: Timestamp) -> SignedRequest {
        let mut signed = self
            .kind
            .sign(&SignRequest {
                event_type: event_type.into(),
                secret: self.secret.clone(),
                options: self.options.clone(),
                endpoint_url: self.url.clone(),
                partner_id: "seller-1".into(),
                resource_id: order.into(),
                event_id: event_id.into(),
                now,
            })
            .unwrap_or_else(|e| panic!("{:?} signs: {e}", self.kind));
        // The ingest URL already carries what the marketplace appends (SellerCenter's token).
        signed.url_suffix.clear();
        signed
    }
}

const AMAZON_CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-r.pem";
const AMAZON_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";

/// The source body and the signer for a case (Amazon's key and pinned certificate made here).
fn source_and_signer(case: &Case, now: Timestamp) -> (Value, Signer) {
    let mut body = json!({"kind": case.kind.as_str(), "partners": ["seller-1"]});
    let mut signer = Signer {
        kind: case.kind,
        secret: case.secret.to_string(),
        options: case.sign_options.clone(),
        url: String::new(),
    };
    if case.kind == Kind::AmazonSns {
        let mut options = case.sign_options.clone();
        options["certUrl"] = json!(AMAZON_CERT_URL);
        options["topicArn"] = json!(AMAZON_TOPIC);
        signer.options = options;
        let first = signer.sign("ORDER_CHANGE", "0", "key", now);
        signer.secret = first.key_pem.expect("a generated key");
        body["options"] = json!({
            "topicArns": [AMAZON_TOPIC],
            "pinnedCertificates": {AMAZON_CERT_URL: first.certificate_pem.expect("its certificate")},
        });
    }
    if let (Some(b), Some(extra)) = (body.as_object_mut(), case.source.as_object()) {
        b.extend(extra.clone());
    }
    (body, signer)
}

fn now_of(app: &TestApp) -> Timestamp {
    use switchyard_core::Clock;
    app.clock.now()
}

/// Order ids the simulators all take (some marketplaces' ids are numbers).
fn order_id(i: usize) -> String {
    format!("58000{i}")
}

async fn run(app: &TestApp, token: &str, source: &str) -> Value {
    let answer = app
        .post(
            &format!("/api/v1/sources/{source}/reconcile"),
            token,
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "the run answers: {}", answer.body);
    answer.body
}

fn backfilled_orders(run: &Value) -> Vec<String> {
    let mut ids: Vec<String> = run["backfilled"]
        .as_array()
        .expect("backfilled")
        .iter()
        .map(|b| b["resourceId"].as_str().expect("resourceId").to_string())
        .collect();
    ids.sort();
    ids
}

fn error_codes(run: &Value) -> Vec<String> {
    run["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["code"].as_str().expect("code").to_string())
        .collect()
}

/// The whole story for one marketplace, on the hub's default store or the database given.
async fn reconciles(case: Case, database_url: Option<String>) {
    let app = match database_url {
        Some(url) => spawn_app_with(|s| s.database_url = Some(url)).await,
        None => spawn_app().await,
    };
    // The hub's clock at the real now: like the marketplaces, the simulators check request
    // timestamps (TikTok's, SellerCenter's) against their own clock. Nothing here depends on
    // the day.
    app.clock
        .set(Timestamp::from_second(Timestamp::now().as_second()).expect("a whole second"));
    let token = app.admin_token().await;
    let sink = Sink::start().await;
    app.subscribe(
        &token,
        json!({"eventType": "order.created", "resourceName": "ORDER",
            "eventUrl": sink.hook_url(), "partnerId": "seller-1"}),
    )
    .await;
    let now = now_of(&app);
    let orders: Vec<SimOrder> = (0..4)
        .map(|i| SimOrder {
            id: order_id(i),
            status: case.status.to_string(),
            created_at: now - SignedDuration::from_hours(3),
            updated_at: now - SignedDuration::from_hours(1) + SignedDuration::from_mins(i as i64),
            extra: Value::Null,
        })
        .collect();
    let config = SimConfig {
        credentials: case.sim_credentials.clone(),
        page_size: 2,
        ..SimConfig::default()
    };
    let sim = switchyard_simulator::start(case.sim, "127.0.0.1:0", config.clone(), orders)
        .await
        .expect("the simulator starts");
    let (mut body, mut signer) = source_and_signer(&case, now);
    body["reconcile"] = json!({
        "apiBaseUrl": sim.base_url(), "credentials": case.credentials,
        "options": case.options, "intervalSeconds": 900, "lookbackSeconds": 86400,
    });
    let (source, url) = crate::helpers::source(&app, &token, body).await;
    signer.url = url.clone();
    let kind = case.kind;
    if kind == Kind::Sellercenter {
        signer.secret = url.rsplit('/').next().expect("a token").to_string();
    }

    // The source shows its settings, credentials masked.
    let shown = app.get(&format!("/api/v1/sources/{source}"), &token).await;
    assert_eq!(shown.body["reconcile"]["apiBaseUrl"], sim.base_url());
    for (name, _) in case.credentials.as_object().expect("credentials") {
        assert_eq!(
            shown.body["reconcile"]["credentials"][name], "********",
            "{kind:?}: {name} is write-only"
        );
    }

    // Webhooks announce two of the four orders.
    for i in 0..2 {
        let signed = signer.sign(case.webhook_event, &order_id(i), &format!("wh-{i}"), now);
        let answer = send(&app, &url, &signed).await;
        assert_eq!(answer.status, 200, "{kind:?} webhook {i}: {}", answer.body);
        assert_eq!(answer.body["status"], "accepted", "{kind:?}");
    }

    // The run backfills exactly the other two.
    let first = run(&app, &token, &source).await;
    assert_eq!(
        error_codes(&first),
        Vec::<String>::new(),
        "{kind:?}: {first}"
    );
    assert_eq!(first["ordersChecked"], 4, "{kind:?}: {first}");
    assert_eq!(first["missing"], 2, "{kind:?}: {first}");
    assert_eq!(
        backfilled_orders(&first),
        [order_id(2), order_id(3)],
        "{kind:?}: {first}"
    );
    for b in first["backfilled"].as_array().unwrap() {
        assert_eq!(b["topic"], "order.created", "{kind:?}: {first}");
    }

    // One event per order, the backfilled ones marked as reconciliation's.
    let events = app.get("/api/v1/events?limit=100", &token).await;
    let mut origins: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events.body["events"].as_array().expect("events") {
        let id = e["normalized"]["resource"]["id"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(e["origin"], e["normalized"]["origin"], "{kind:?}: {e}");
        assert_eq!(e["sourceId"], source.as_str(), "{kind:?}");
        origins
            .entry(id.to_string())
            .or_default()
            .push(e["origin"].as_str().unwrap_or_default().to_string());
    }
    let expected: BTreeMap<String, Vec<String>> = (0..4)
        .map(|i| {
            let origin = if i < 2 { "webhook" } else { "reconciliation" };
            (order_id(i), vec![origin.to_string()])
        })
        .collect();
    assert_eq!(origins, expected, "{kind:?}");
    for b in first["backfilled"].as_array().unwrap() {
        let event = app
            .get(
                &format!("/api/v1/events/{}", b["eventId"].as_str().unwrap()),
                &token,
            )
            .await;
        assert_eq!(event.body["topic"], "order.created", "{kind:?}");
        assert_eq!(event.body["partnerId"], "seller-1", "{kind:?}");
        assert_eq!(event.body["normalized"]["marketplace"], kind.marketplace());
    }

    // Each order is delivered once.
    eventually("four deliveries", || async { sink.hook_count() >= 4 }).await;

    // A webhook that comes late for a backfilled order is a duplicate.
    let late = signer.sign(case.webhook_event, &order_id(2), "wh-late", now);
    let answer = send(&app, &url, &late).await;
    assert_eq!(answer.status, 200, "{kind:?}: {}", answer.body);
    assert_eq!(
        answer.body["status"], "duplicate",
        "{kind:?}: {}",
        answer.body
    );

    // A second run finds nothing new.
    let second = run(&app, &token, &source).await;
    assert_eq!(
        error_codes(&second),
        Vec::<String>::new(),
        "{kind:?}: {second}"
    );
    assert_eq!(second["ordersChecked"], 4, "{kind:?}");
    assert_eq!(second["missing"], 0, "{kind:?}: {second}");
    assert_eq!(backfilled_orders(&second), Vec::<String>::new());

    // Bad credentials: a run error, shown on the source's runs.
    let patched = app
        .patch(
            &format!("/api/v1/sources/{source}"),
            &token,
            json!({"reconcile": {"credentials": {case.wrong: "wrong"}}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    // Each run 15 seconds after the one before, so that a window that moved would show it
    // (the clock stays near the simulators' real one: Amazon refuses a window ending later
    // than two minutes before its now, TikTok a timestamp five minutes off).
    app.advance(SignedDuration::from_secs(15));
    let refused = run(&app, &token, &source).await;
    assert_eq!(
        error_codes(&refused),
        ["unauthorized"],
        "{kind:?}: {refused}"
    );

    // 429s past the retries: a run error too.
    let patched = app
        .patch(
            &format!("/api/v1/sources/{source}"),
            &token,
            json!({"reconcile": {"credentials": {case.wrong: case.credentials[case.wrong]}}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    // From the simulator's config as it is now (Etsy's refresh token has rotated in it).
    sim.shared.set_config(SimConfig {
        always_rate_limit: true,
        retry_after: Some(0),
        ..sim.shared.config()
    });
    app.advance(SignedDuration::from_secs(15));
    let limited = run(&app, &token, &source).await;
    assert_eq!(
        error_codes(&limited),
        ["rate_limited"],
        "{kind:?}: {limited}"
    );

    let runs = app
        .get(&format!("/api/v1/sources/{source}/reconciliations"), &token)
        .await;
    assert_eq!(runs.status, 200);
    let listed: Vec<Vec<String>> = runs.body["reconciliations"]
        .as_array()
        .expect("runs")
        .iter()
        .map(error_codes)
        .collect();
    assert_eq!(
        listed,
        [
            vec!["rate_limited".to_string()],
            vec!["unauthorized".into()],
            vec![],
            vec![]
        ],
        "{kind:?}: newest first"
    );

    // The failed runs kept the cursor: the next window starts from the last good run's end.
    sim.shared.set_config(SimConfig {
        always_rate_limit: false,
        ..sim.shared.config()
    });
    app.advance(SignedDuration::from_secs(15));
    let resumed = run(&app, &token, &source).await;
    assert_eq!(
        error_codes(&resumed),
        Vec::<String>::new(),
        "{kind:?}: {resumed}"
    );
    let since: Timestamp = resumed["since"].as_str().unwrap().parse().unwrap();
    let last_good_until: Timestamp = second["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        since,
        last_good_until - SignedDuration::from_hours(24),
        "{kind:?}"
    );
    assert_eq!(resumed["missing"], 0, "{kind:?}");

    // Still one delivery per order.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 4, "{kind:?}: each order delivered once");
}

#[tokio::test]
async fn walmart_reconciles_on_sqlite() {
    reconciles(walmart(), None).await;
}

#[tokio::test]
async fn amazon_reconciles_on_sqlite() {
    reconciles(amazon(), None).await;
}

#[tokio::test]
async fn flipkart_reconciles_on_sqlite() {
    reconciles(flipkart(), None).await;
}

#[tokio::test]
async fn shopify_reconciles_on_sqlite() {
    reconciles(shopify(), None).await;
}

#[tokio::test]
async fn sellercenter_reconciles_on_sqlite() {
    reconciles(sellercenter(), None).await;
}

#[tokio::test]
async fn ebay_reconciles_on_sqlite() {
    reconciles(ebay(), None).await;
}

#[tokio::test]
async fn etsy_reconciles_on_sqlite() {
    reconciles(etsy(), None).await;
}

#[tokio::test]
async fn tiktok_reconciles_on_sqlite() {
    reconciles(tiktok(), None).await;
}

/// A fresh schema on the test PostgreSQL server (`SWITCHYARD_TEST_POSTGRES_URL`), dropped after
/// the story ran.
async fn on_postgres(case: Case) {
    let base = match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("this test needs PostgreSQL: set SWITCHYARD_TEST_POSTGRES_URL"),
    };
    let schema = format!("sy_reconcile_{}", uuid::Uuid::now_v7().simple());
    crate::fixture::create_schema(&base, &schema).await;
    reconciles(case, Some(crate::fixture::schema_url(&base, &schema))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    crate::fixture::drop_schema(&base, &schema).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn walmart_reconciles_on_postgres() {
    on_postgres(walmart()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn amazon_reconciles_on_postgres() {
    on_postgres(amazon()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn flipkart_reconciles_on_postgres() {
    on_postgres(flipkart()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn shopify_reconciles_on_postgres() {
    on_postgres(shopify()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn sellercenter_reconciles_on_postgres() {
    on_postgres(sellercenter()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn ebay_reconciles_on_postgres() {
    on_postgres(ebay()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn etsy_reconciles_on_postgres() {
    on_postgres(etsy()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn tiktok_reconciles_on_postgres() {
    on_postgres(tiktok()).await;
}

/// The reconciler runs a source that is due by itself, once per interval, and `/metrics` counts
/// its runs, the orders it checked and what it found missing.
#[tokio::test]
async fn the_reconciler_runs_a_due_source_on_its_own_once_per_interval() {
    let app = spawn_app_with(|s| s.reconcile_tick = Duration::from_millis(100)).await;
    let token = app.admin_token().await;
    let now = now_of(&app);
    let case = walmart();
    let order = SimOrder {
        id: order_id(0),
        status: case.status.into(),
        created_at: now - SignedDuration::from_hours(2),
        updated_at: now - SignedDuration::from_hours(1),
        extra: Value::Null,
    };
    let sim = switchyard_simulator::start(
        case.sim,
        "127.0.0.1:0",
        SimConfig {
            credentials: case.sim_credentials.clone(),
            ..SimConfig::default()
        },
        vec![order],
    )
    .await
    .expect("the simulator starts");
    let (mut body, _) = source_and_signer(&case, now);
    body["reconcile"] = json!({"apiBaseUrl": sim.base_url(), "credentials": case.credentials});
    let (source, _) = crate::helpers::source(&app, &token, body).await;
    eventually("a scheduled run", || async {
        !runs_of(&app, &source, &token).await.is_empty()
    })
    .await;
    let listed = runs_of(&app, &source, &token).await;
    assert_eq!(listed[0]["trigger"], "schedule");
    assert_eq!(listed[0]["missing"], 1, "{}", listed[0]);
    // Not due again for the interval (900 seconds of the hub's clock, which stands still).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        runs_of(&app, &source, &token).await.len(),
        1,
        "one run per interval"
    );
    // Due again once the interval (give or take a tenth) has passed.
    app.advance(SignedDuration::from_secs(991));
    let token = app.admin_token().await;
    eventually("the next scheduled run", || async {
        runs_of(&app, &source, &token).await.len() == 2
    })
    .await;

    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    for (name, labels, value) in [
        (
            "switchyard_reconcile_runs_total",
            format!("source=\"{source}\",outcome=\"ok\""),
            "2",
        ),
        (
            "switchyard_reconcile_orders_checked_total",
            format!("source=\"{source}\""),
            "2",
        ),
        (
            "switchyard_reconcile_missing_total",
            format!("source=\"{source}\""),
            "1",
        ),
    ] {
        assert!(
            metrics.contains(&format!("{} {value}\n", line(name, &labels))),
            "{name} {labels} = {value} in\n{metrics}"
        );
    }
}

async fn runs_of(app: &TestApp, source: &str, token: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/sources/{source}/reconciliations"), token)
        .await
        .body["reconciliations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
