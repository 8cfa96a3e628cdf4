//! Upgrades: a database made by an earlier version opens in today's hub with everything in it
//! intact and working.
//!
//! `tests/fixtures/<version>/` holds what an earlier version wrote (`fixture::write`, run on that
//! version's checkout by `cargo run -p switchyard --example write-fixture -- NAME`): a SQLite file, the same data as a PostgreSQL dump, and
//! `manifest.json` with the secrets that were shown once at creation and the API's answers
//! about every object at the time. The tests open a copy with today's code (migrating it on
//! start), ask the API the same questions and expect the same answers, then use what is there:
//! sign in with the old client secrets, deliver a pending delivery with its old signing secret
//! and credentials, ingest through an old source with its secret, and dedup against old events.

use std::time::Duration;

use base64::Engine;
use jiff::SignedDuration;
use serde_json::{Value, json};

use switchyard_marketplaces::Kind;

use crate::fixture::*;
use crate::helpers::*;

/// The fixture today's tests upgrade from: written by commit f40f4cc, the last schema before
/// events and deliveries were reshaped.
const FIXTURE: &str = "schema-1-f40f4cc";

fn manifest(file: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(FIXTURE).join(file))
        .expect("the fixture's manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

/// An answer the fixture's version gave, with the changes the API has made on purpose since:
/// an event's `origin` names how it came (`webhook`, `publish`; `reconciliation` is new), and a
/// received event's source moved to `sourceId`.
fn as_of_today(answer: &Value) -> Value {
    match answer {
        Value::Array(items) => Value::Array(items.iter().map(as_of_today).collect()),
        Value::Object(fields) => {
            let mut fields: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), as_of_today(v)))
                .collect();
            let is_event = fields.contains_key("publicEventId");
            if let (true, Some(Value::String(origin))) = (is_event, fields.get("origin").cloned())
                && !["webhook", "publish", "reconciliation"].contains(&origin.as_str())
            {
                if uuid::Uuid::parse_str(&origin).is_ok() {
                    fields.insert("origin".into(), json!("webhook"));
                    fields.insert("sourceId".into(), json!(origin));
                } else {
                    fields.insert("origin".into(), json!("publish"));
                }
            }
            Value::Object(fields)
        }
        other => other.clone(),
    }
}

/// What an upgraded hub must still have and do.
async fn check_upgraded(app: &TestApp, manifest: &Value) {
    let admin = app
        .token(
            manifest["admin"]["id"].as_str().expect("id"),
            manifest["admin"]["secret"].as_str().expect("secret"),
        )
        .await;
    app.token(
        manifest["partnerClient"]["id"].as_str().expect("id"),
        manifest["partnerClient"]["secret"]
            .as_str()
            .expect("secret"),
    )
    .await;

    // Every answer the API gave about every object, unchanged.
    let now = snapshot(app, &admin, manifest).await;
    for (path, before) in manifest["answers"].as_object().expect("answers") {
        let before = as_of_today(before);
        assert_eq!(now[path], before, "GET {path} changed in the upgrade");
    }
    let outcomes = app
        .state
        .store
        .unscoped()
        .list_outcomes(&switchyard_core::model::OutcomeFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].reason.as_deref(), Some("inventory_mismatch"));
    let orders = app
        .state
        .store
        .unscoped()
        .partner_orders("seller-1", jiff::Timestamp::UNIX_EPOCH)
        .await
        .expect("orders");
    assert_eq!(orders.len(), 1, "PO-1's facts");
    assert_eq!(
        app.state
            .store
            .console_disabled_partners()
            .await
            .expect("console switches"),
        vec!["seller-2".to_string()]
    );

    // The pending delivery goes out, under its old id, signed with the old secret and with the
    // old credentials.
    let sink = Sink::start().await;
    let basic = &manifest["basicSubscription"];
    let sub = basic["id"].as_str().expect("id");
    let hmac = &manifest["hmacSubscription"];
    for sub in [sub, hmac["id"].as_str().expect("id")] {
        let patched = app
            .patch(
                &format!("/v3/webhooks/subscriptions/{sub}"),
                &admin,
                json!({"eventUrl": sink.hook_url()}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
    }
    app.advance(SignedDuration::from_mins(6));
    eventually("the pending delivery's retry", || async {
        sink.hook_count() >= 1
    })
    .await;
    let got = sink.hooks()[0].clone();
    let pending = manifest["pendingDelivery"].as_str().expect("id");
    assert_eq!(
        got.header("webhook-id").as_deref(),
        Some(format!("msg_{}", pending.replace('-', "")).as_str())
    );
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            basic["userName"].as_str().expect("user"),
            basic["password"].as_str().expect("password")
        ))
    );
    assert_eq!(
        got.header("authorization").as_deref(),
        Some(expected_auth.as_str())
    );
    let signature = switchyard_core::signatures::standard_webhooks::sign(
        basic["signingSecret"].as_str().expect("secret"),
        &got.header("webhook-id").expect("id"),
        got.header("webhook-timestamp")
            .expect("timestamp")
            .parse()
            .expect("seconds"),
        &got.body,
    )
    .expect("sign");
    assert_eq!(got.header("webhook-signature"), Some(signature));
    eventually("the retried delivery succeeded", || async {
        app.delivery(&admin, pending).await["status"] == "succeeded"
    })
    .await;

    // The old source still verifies with its secret, and its old events still dedup.
    let source_id = manifest["sources"][0].as_str().expect("source");
    let url = format!("{}/ingest/{source_id}", app.base);
    let secret = manifest["walmartSecret"].as_str().expect("secret");
    let now = switchyard_core::Clock::now(&app.clock);
    let again = sign(
        Kind::Walmart,
        secret,
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-1",
        "wm-evt-1",
        now,
    );
    let answer = send(app, &url, &again).await;
    assert_eq!(answer.body["status"], "duplicate", "{}", answer.body);
    assert_eq!(answer.body["eventId"], manifest["receivedEventId"]);
    let fresh = sign(
        Kind::Walmart,
        secret,
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-9",
        "wm-evt-9",
        now,
    );
    let answer = send(app, &url, &fresh).await;
    assert_eq!(answer.body["status"], "accepted", "{}", answer.body);
    // It reaches the HMAC subscriber, signed with that subscription's old secret.
    eventually("the new order's delivery", || async {
        sink.hooks()
            .iter()
            .any(|h| h.json()["payload"]["resource"]["id"] == "PO-9")
    })
    .await;
    let got = sink
        .hooks()
        .into_iter()
        .find(|h| h.json()["payload"]["resource"]["id"] == "PO-9")
        .expect("delivered");
    let signature = switchyard_core::signatures::standard_webhooks::sign(
        hmac["signingSecret"].as_str().expect("secret"),
        &got.header("webhook-id").expect("id"),
        got.header("webhook-timestamp")
            .expect("timestamp")
            .parse()
            .expect("seconds"),
        &got.body,
    )
    .expect("sign");
    assert_eq!(got.header("webhook-signature"), Some(signature));
    let timestamp = got.header("wm_sec.timestamp").expect("WM_SEC.TIMESTAMP");
    assert_eq!(
        got.header("wm_sec.auth_signature"),
        Some(switchyard_core::signatures::walmart::sign(
            HMAC_SECRET,
            &timestamp,
            &got.body
        ))
    );

    // The old source reconciles: an order received before the upgrade (with no claim on its
    // fact) and one received since are known; only the one no webhook announced is backfilled.
    let now = switchyard_core::Clock::now(&app.clock);
    let order = |id: &str| switchyard_simulator::SimOrder {
        id: id.into(),
        status: "Created".into(),
        created_at: now - SignedDuration::from_hours(2),
        updated_at: now - SignedDuration::from_hours(1),
        extra: Value::Null,
    };
    let credentials = json!({"clientId": "wm-id", "clientSecret": "wm-secret"});
    let sim = switchyard_simulator::start(
        "walmart",
        "127.0.0.1:0",
        switchyard_simulator::SimConfig {
            credentials: credentials.clone(),
            ..Default::default()
        },
        vec![order("PO-1"), order("PO-9"), order("PO-NEW")],
    )
    .await
    .expect("the simulator starts");
    let patched = app
        .patch(
            &format!("/api/v1/sources/{source_id}"),
            &admin,
            json!({"reconcile": {"apiBaseUrl": sim.base_url(), "credentials": credentials}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let run = app
        .post(
            &format!("/api/v1/sources/{source_id}/reconcile"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.body["errors"], json!([]), "{}", run.body);
    assert_eq!(run.body["ordersChecked"], 3, "{}", run.body);
    assert_eq!(run.body["missing"], 1, "{}", run.body);
    assert_eq!(run.body["backfilled"][0]["resourceId"], "PO-NEW");
}

/// This version's fixture writer still works, and what it writes reads back: the next schema
/// change will need it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_of_this_schema_is_written_and_read_back() {
    let out = tempfile::tempdir().expect("temp dir");
    write(out.path(), None).await;
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        out.path().join("switchyard.db"),
        dir.path().join("switchyard.db"),
    )
    .expect("copy");
    let app = spawn_app_in(dir, |_| {}).await;
    check_upgraded(&app, &manifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_the_previous_schema_upgrades_in_place() {
    let manifest = manifest("manifest.json");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        fixtures_dir().join(FIXTURE).join("switchyard.db"),
        dir.path().join("switchyard.db"),
    )
    .expect("copy the fixture");
    let app = spawn_app_in(dir, |_| {}).await;
    check_upgraded(&app, &manifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn a_postgres_schema_of_the_previous_version_upgrades_in_place() {
    let base = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .expect("this test needs PostgreSQL: set SWITCHYARD_TEST_POSTGRES_URL");
    let manifest = manifest("manifest-postgres.json");
    let dump = std::fs::read_to_string(fixtures_dir().join(FIXTURE).join("postgres.sql"))
        .expect("the fixture's dump");
    let schema = format!("sy_upgrade_{}", uuid::Uuid::now_v7().simple());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is up");
    tokio::spawn(conn);
    // The dump names its schema everywhere; load it under a fresh name, without psql's
    // meta-commands (`\restrict`), which are not SQL.
    let sql: String = dump
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| line.replace(DUMP_SCHEMA, &schema) + "\n")
        .collect();
    client.batch_execute(&sql).await.expect("the dump loads");
    let url = schema_url(&base, &schema);
    let app = spawn_app_with(|s| s.database_url = Some(url.clone())).await;
    check_upgraded(&app, &manifest).await;
    drop(app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop_schema(&base, &schema).await;
}
