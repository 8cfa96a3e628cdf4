//! The data an upgrade must keep: `populate` fills a hub with one of everything it stores and
//! returns a manifest (the secrets shown once at creation, and the API's answers about every
//! object); `write` saves a hub's database and that manifest as a fixture under
//! `tests/fixtures/<name>/`, for a later version's upgrade test (`tests/it/upgrade.rs`).
//!
//! `cargo run -p switchyard --example write-fixture -- NAME` runs it on this checkout's schema:
//! run it on a version before changing its schema, and commit what it writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use switchyard_core::model::Access;
use switchyard_marketplaces::Kind;

use crate::helpers::*;

pub const WALMART_SECRET: &str = "fixture-walmart-secret";
pub const BASIC_PASSWORD: &str = "fixture-basic-password";
pub const HMAC_SECRET: &str = "fixture-hmac-secret";
/// The schema name of the PostgreSQL dump, replaced when it is loaded.
pub const DUMP_SCHEMA: &str = "sy_fixture_upgrade";

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The GET paths whose answers must survive an upgrade unchanged.
pub fn snapshot_paths(manifest: &Value) -> Vec<String> {
    let mut paths = vec![
        "/v3/webhooks/subscriptions".to_string(),
        "/api/v1/sources".to_string(),
        "/api/v1/rejections".to_string(),
        "/api/v1/rejections/summary?since=2026-01-01T00:00:00Z".to_string(),
        "/api/v1/events?limit=100".to_string(),
        "/api/v1/deliveries?limit=100".to_string(),
    ];
    for key in ["events", "deliveries", "subscriptions", "sources"] {
        for id in manifest[key].as_array().into_iter().flatten() {
            let id = id.as_str().expect("an id");
            paths.push(match key {
                "events" => format!("/api/v1/events/{id}"),
                "deliveries" => format!("/api/v1/deliveries/{id}"),
                "subscriptions" => format!("/v3/webhooks/subscriptions/{id}"),
                _ => format!("/api/v1/sources/{id}"),
            });
        }
    }
    paths
}

pub async fn snapshot(app: &TestApp, token: &str, manifest: &Value) -> Value {
    let mut answers = serde_json::Map::new();
    for path in snapshot_paths(manifest) {
        let answer = app.get(&path, token).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        // URLs under the hub's own address (ingest URLs) name whichever port it runs on.
        let text = answer.body.to_string().replace(&app.base, "{hub}");
        answers.insert(path, serde_json::from_str(&text).expect("JSON"));
    }
    Value::Object(answers)
}

/// Fills a hub with one of everything it keeps: clients, subscriptions with each auth method and
/// a signing secret, a source with its secret, published and received events, deliveries that
/// succeeded, failed and are still pending, their attempts, a duplicate, a rejection, an outcome,
/// order facts and a partner with its console switched off. Returns the manifest.
pub async fn populate(app: &TestApp) -> Value {
    let admin = app.admin_token().await;
    app.partner_client(
        "seller-app",
        &["seller-1"],
        &[
            ("ORDER", Access::FullAccess),
            ("ITEM", Access::FullAccess),
            ("FEEDS", Access::FullAccess),
        ],
    )
    .await;
    let sink = Sink::start().await;
    let (basic_sub, basic_secret) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
                   "eventUrl": sink.hook_url(), "partnerId": "seller-1",
                   "headers": {"x-team": "offers"},
                   "authDetails": {"authMethod": "BASIC_AUTH", "userName": "fixture-user",
                                   "password": BASIC_PASSWORD}}),
        )
        .await;
    let (hmac_sub, hmac_secret) = app
        .subscribe(
            &admin,
            json!({"eventType": "order.created", "eventVersion": "V1", "resourceName": "ORDER",
                   "eventUrl": sink.hook_url(), "partnerId": "seller-1",
                   "envelope": "normalized", "ordering": "resource",
                   "authDetails": {"authMethod": "HMAC", "clientSecret": HMAC_SECRET}}),
        )
        .await;
    let (failing_sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
                   "eventUrl": format!("{}/gone", sink.base), "partnerId": "seller-2",
                   "retryPolicy": {"type": "delays", "delaysSeconds": []}}),
        )
        .await;

    // Delivered at once.
    let delivered = app
        .publish(&admin, "seller-1", json!({"sku": "SKU-1"}))
        .await;
    eventually("the first delivery", || async { sink.hook_count() == 1 }).await;
    // Failed once, pending a retry five minutes on (Walmart's policy).
    sink.answer_with(&[500]);
    let pending = app
        .publish(&admin, "seller-1", json!({"sku": "SKU-2"}))
        .await;
    eventually("the failed attempt", || async { sink.hook_count() == 2 }).await;
    // Failed for good: no route at /gone, and a policy without retries.
    let failed = app
        .publish(&admin, "seller-2", json!({"sku": "SKU-3"}))
        .await;

    // Received through a source: an order, its duplicate, and a forged request.
    let (source_id, url) = source(
        app,
        &admin,
        json!({"kind": "walmart", "name": "Walmart US", "partners": ["seller-1"],
               "secrets": [{"id": "1", "value": WALMART_SECRET}]}),
    )
    .await;
    let now = switchyard_core::Clock::now(&app.clock);
    let order = sign(
        Kind::Walmart,
        WALMART_SECRET,
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-1",
        "wm-evt-1",
        now,
    );
    let accepted = send(app, &url, &order).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let received = accepted.body["eventId"].as_str().expect("id").to_string();
    assert_eq!(send(app, &url, &order).await.body["status"], "duplicate");
    let forged = sign(
        Kind::Walmart,
        "not-the-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-2",
        "wm-evt-2",
        now,
    );
    assert_eq!(send(app, &url, &forged).await.status, 401);
    eventually("the order's delivery", || async { sink.hook_count() == 3 }).await;

    let outcome = app
        .post(
            &format!("/api/v1/events/{delivered}/outcome"),
            &admin,
            json!({"status": "failed", "reason": "inventory_mismatch", "message": "SKU-1 unknown"}),
        )
        .await;
    assert_eq!(outcome.status, 201, "{}", outcome.body);
    let facts = app
        .post(
            "/api/v1/orders/facts",
            &admin,
            json!({"partnerId": "seller-1", "facts": [
                {"fact": "shipped", "poNumber": "PO-1", "marketplace": "walmart", "carrier": "UPS",
                 "trackingNumber": "1Z999AA10123456784", "shippedAt": now}]}),
        )
        .await;
    assert_eq!(facts.status, 202, "{}", facts.body);
    app.state
        .store
        .unscoped()
        .set_console_enabled("seller-2", false)
        .await
        .expect("console switch");

    let deliveries_of = |event: String| {
        let admin = admin.clone();
        async move {
            let answer = app.get(&format!("/api/v1/events/{event}"), &admin).await;
            answer.body["deliveries"]
                .as_array()
                .expect("deliveries")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_string())
                .collect::<Vec<_>>()
        }
    };
    let mut deliveries = Vec::new();
    for event in [&delivered, &pending, &failed, &received] {
        deliveries.extend(deliveries_of(event.clone()).await);
    }
    eventually("every delivery settled", || async {
        let failed_one = app.get(&format!("/api/v1/events/{failed}"), &admin).await;
        failed_one.body["deliveries"][0]["status"] == "failed"
    })
    .await;
    let pending_delivery = deliveries_of(pending.clone()).await[0].clone();
    let mut manifest = json!({
        "masterKey": "test master key 0123456789",
        "admin": {"id": ADMIN_ID, "secret": ADMIN_SECRET},
        "partnerClient": {"id": "seller-app", "secret": "seller-app-secret"},
        "events": [delivered, pending, failed, received],
        "deliveries": deliveries,
        "subscriptions": [basic_sub, hmac_sub, failing_sub],
        "sources": [source_id],
        "basicSubscription": {"id": basic_sub, "signingSecret": basic_secret,
                              "userName": "fixture-user", "password": BASIC_PASSWORD},
        "hmacSubscription": {"id": hmac_sub, "signingSecret": hmac_secret},
        "pendingDelivery": pending_delivery,
        "receivedEventId": received,
        "walmartSecret": WALMART_SECRET,
    });
    manifest["answers"] = snapshot(app, &admin, &manifest).await;
    manifest
}

pub fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

pub async fn drop_schema(base: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is up");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop schema");
}

pub async fn create_schema(base: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is up");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
}

/// Writes a fixture into `out` from this checkout's schema: the SQLite file and its manifest,
/// and with a PostgreSQL URL (and `pg_dump` on PATH) the same data as a dump and its manifest.
pub async fn write(out: &Path, postgres: Option<&str>) {
    std::fs::create_dir_all(out).expect("fixture dir");
    let app = spawn_app().await;
    let manifest = populate(&app).await;
    // A copy of the file with its WAL, opened and closed by a store of its own: the last
    // connection to close checkpoints the WAL into the file, which is then whole.
    let copy = tempfile::tempdir().expect("temp dir");
    for suffix in ["", "-wal"] {
        let from = app.dir.path().join(format!("switchyard.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, copy.path().join(format!("switchyard.db{suffix}"))).expect("copy");
        }
    }
    drop(app);
    let db = copy.path().join("switchyard.db");
    drop(switchyard_store::SqliteStore::open(&db).expect("open the copy"));
    for _ in 0..50 {
        if !copy.path().join("switchyard.db-wal").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !copy.path().join("switchyard.db-wal").exists(),
        "the WAL was checkpointed into the file"
    );
    std::fs::copy(&db, out.join("switchyard.db")).expect("copy the database");
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).expect("json"),
    )
    .expect("manifest");

    if let Some(base) = postgres {
        let schema = DUMP_SCHEMA;
        let url = schema_url(base, schema);
        drop_schema(base, schema).await;
        create_schema(base, schema).await;
        let app = spawn_app_with(|s| s.database_url = Some(url.clone())).await;
        let pg_manifest = populate(&app).await;
        drop(app);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let dump = std::process::Command::new("pg_dump")
            .args([
                "--schema",
                schema,
                "--inserts",
                "--no-owner",
                "--no-privileges",
                base,
            ])
            .output()
            .expect("pg_dump runs");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        std::fs::write(out.join("postgres.sql"), &dump.stdout).expect("dump");
        std::fs::write(
            out.join("manifest-postgres.json"),
            serde_json::to_string_pretty(&pg_manifest).expect("json"),
        )
        .expect("manifest");
        drop_schema(base, schema).await;
    }
}
