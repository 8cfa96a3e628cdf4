//! Secrets never leave once created: no API answer, no log line at any level, and no byte of the
//! database file (with its WAL) holds a client secret, a delivery credential (Basic password,
//! HMAC and OAuth client secrets), a signing secret, a source secret or a source's orders API
//! credentials.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::*;

/// Where the test's log lines go: every level, from every task of the hub (the test runtime
/// has one thread, whose default subscriber this is).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_appear_in_no_answer_no_log_line_and_not_in_the_database_file() {
    // tracing caches each line's interest for the whole process and, while at most one
    // dispatcher exists, takes it from the thread that reaches the line first: a sibling test's
    // thread, with no subscriber, would cache "never" for the lines this test reads (a CI run
    // lost the dispatcher's debug line so). A second dispatcher, kept for the
    // test, makes every later answer ask all dispatchers, this test's among them.
    let _every_dispatcher_asked = tracing::Dispatch::new(tracing_subscriber::registry());
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    let sink = Sink::start().await;
    let token = app.admin_token().await;
    let basic = "basic-password-6f1d2c90";
    let hmac = "hmac-client-secret-2c9d4e71";
    let source_secret = "walmart-source-secret-5b8f1a33";
    let offer = |extra: serde_json::Value| {
        let mut e = json!({"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1",
            "resourceName": "ITEM", "eventUrl": sink.hook_url(), "partnerId": "p1"});
        if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(extra.clone());
        }
        e
    };
    let (basic_sub, basic_signing) = app
        .subscribe(
            &token,
            offer(json!({"authDetails": {"authMethod": "BASIC_AUTH", "userName": "shop", "password": basic}})),
        )
        .await;
    let (_, hmac_signing) = app
        .subscribe(
            &token,
            offer(json!({"authDetails": {"authMethod": "HMAC", "clientSecret": hmac}})),
        )
        .await;
    // A reconciling source: its orders API credentials are used by a run, against the simulator.
    let reconcile_secret = "walmart-api-client-secret-9e4c7d02";
    let orders_api = switchyard_simulator::start(
        "walmart",
        "127.0.0.1:0",
        switchyard_simulator::SimConfig {
            credentials: json!({"clientId": "wm-id", "clientSecret": reconcile_secret}),
            ..Default::default()
        },
        Vec::new(),
    )
    .await
    .expect("the simulator starts");
    let source = app
        .post(
            "/api/v1/sources",
            &token,
            json!({"kind": "walmart", "partners": ["p1"],
                   "secrets": [{"id": "1", "value": source_secret}],
                   "reconcile": {"apiBaseUrl": orders_api.base_url(),
                                 "credentials": {"clientId": "wm-id", "clientSecret": reconcile_secret}}}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.body);
    let source_id = source.body["sourceId"]
        .as_str()
        .or(source.body["id"].as_str())
        .expect("source id")
        .to_string();
    // Traffic that uses them: a reconciliation (a token asked with the credentials, then a
    // refused one: its error is recorded), deliveries with both credentials, and a forged
    // inbound request.
    let run = app
        .post(
            &format!("/api/v1/sources/{source_id}/reconcile"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(run.body["errors"], json!([]), "{}", run.body);
    let patched = app
        .patch(
            &format!("/api/v1/sources/{source_id}"),
            &token,
            json!({"reconcile": {"credentials": {"clientSecret": "another-wrong-api-secret"}}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let refused = app
        .post(
            &format!("/api/v1/sources/{source_id}/reconcile"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(
        refused.body["errors"][0]["code"], "unauthorized",
        "{}",
        refused.body
    );
    app.publish(&token, "p1", json!({"sku": "S-1"})).await;
    eventually("both deliveries arrive", || async {
        sink.hook_count() >= 2
    })
    .await;
    let forged = app
        .http
        .post(format!("{}/ingest/{source_id}", app.base))
        .header("WM_SEC.AUTH_SIGNATURE", "forged")
        .body("{}")
        .send()
        .await
        .expect("forged ingest");
    assert!(forged.status().is_client_error());
    // A wrong client secret is logged as a failure, never with the secret.
    let wrong = app
        .http
        .post(format!("{}/v3/token", app.base))
        .basic_auth(ADMIN_ID, Some("wrong-secret-that-is-not-logged"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(wrong.status(), 401);

    // Everything the API answers about them now.
    let mut answers = String::new();
    for path in [
        "/v3/webhooks/subscriptions".to_string(),
        format!("/v3/webhooks/subscriptions/{basic_sub}"),
        "/api/v1/sources".to_string(),
        format!("/api/v1/sources/{source_id}"),
        format!("/api/v1/sources/{source_id}/reconciliations"),
        "/api/v1/deliveries".to_string(),
        "/api/v1/events".to_string(),
        "/api/v1/rejections".to_string(),
    ] {
        let answer = app.get(&path, &token).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answers.push_str(&answer.body.to_string());
    }
    answers.push_str(
        &app.http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default(),
    );

    let database: Vec<u8> = ["switchyard.db", "switchyard.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(app.dir.path().join(f)).unwrap_or_default())
        .collect();
    // Controls: the search finds what is there (the event's payload in the file, the dispatcher's
    // debug lines in the logs), so a miss below means the secret is absent.
    assert!(contains(&database, "S-1"), "the database file was read");
    let logs = logs.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        contains(&logs, "delivery attempt"),
        "debug lines were captured"
    );
    // The `whsec_` prefix is not secret; what follows it is.
    let signing: Vec<String> = [basic_signing, hmac_signing]
        .iter()
        .map(|s| s.trim_start_matches("whsec_").to_string())
        .collect();
    let secrets = [
        ADMIN_SECRET,
        "wrong-secret-that-is-not-logged",
        basic,
        hmac,
        source_secret,
        reconcile_secret,
        "another-wrong-api-secret",
        &signing[0],
        &signing[1],
    ];
    for secret in secrets {
        assert!(!answers.contains(secret), "an API answer holds {secret:?}");
        assert!(!contains(&logs, secret), "a log line holds {secret:?}");
        if secret != "wrong-secret-that-is-not-logged" {
            assert!(
                !contains(&database, secret),
                "the database file holds {secret:?}"
            );
        }
    }
}
