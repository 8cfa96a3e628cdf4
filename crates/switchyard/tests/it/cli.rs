//! The command line: `switchyard clients create` prints credentials once, and they work.

use std::process::Command;

use serde_json::{Value, json};

fn switchyard(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .env("SWITCHYARD_LOG", "warn")
        .env_remove("SWITCHYARD_MASTER_KEY")
        .env_remove("SWITCHYARD_DATABASE_URL")
        .output()
        .expect("switchyard runs")
}

#[tokio::test]
async fn clients_create_prints_credentials_that_get_a_token_with_the_given_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        dir.path(),
        &[
            "clients",
            "create",
            "--name",
            "Acme",
            "--partner",
            "p1",
            "--scope",
            "ITEM=full_access",
            "--scope",
            "ORDER=no_access",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let id = created["clientId"].as_str().unwrap().to_string();
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);

    let bad = switchyard(
        dir.path(),
        &[
            "clients",
            "create",
            "--name",
            "X",
            "--partner",
            "p",
            "--scope",
            "ITEM=all",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ITEM=all"));
    let migrated = switchyard(dir.path(), &["migrate"]);
    assert!(migrated.status.success());

    // The hub, on the same data directory, accepts the client.
    let mut settings = switchyard_server::Settings::new(dir.path().to_path_buf(), Vec::new());
    settings.master_key = std::fs::read_to_string(dir.path().join("master.key"))
        .map(|k| hex_decode(k.trim()))
        .unwrap();
    let hub =
        switchyard_server::Hub::build(&settings, std::sync::Arc::new(switchyard_core::SystemClock))
            .await
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(hub.serve(listener, stopped));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/v3/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token").to_string();
    let create = |event_type: &str, resource: &str| {
        http.post(format!("{base}/v3/webhooks/subscriptions"))
            .bearer_auth(&token)
            .json(&json!({"events": [{"eventType": event_type, "resourceName": resource, "eventUrl": "https://example.com/h"}]}))
            .send()
    };
    assert_eq!(
        create("OFFER_PUBLISHED", "ITEM").await.unwrap().status(),
        200
    );
    assert_eq!(create("PO_CREATED", "ORDER").await.unwrap().status(), 403);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `switchyard replay` re-pends a subscription's deliveries of a time range beside a serving hub,
/// which delivers them again under the same ids; piped, it prints one line and no bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_delivers_a_time_range_again_beside_a_serving_hub() {
    use crate::helpers::{Sink, wait_for};
    use crate::restart::{admin_token, free_port, start_hub, subscribe};
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let hub = start_hub(dir.path(), free_port()).await;
    let http = reqwest::Client::new();
    let token = admin_token(&http, &hub.base).await;
    let sub = subscribe(
        &http,
        &hub.base,
        &token,
        json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
               "partnerId": "p1", "eventUrl": sink.hook_url()}),
    )
    .await;
    for n in 0..4 {
        let published = http
            .post(format!("{}/api/v1/events", hub.base))
            .bearer_auth(&token)
            .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                          "payload": {"sku": format!("SKU-{n}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 202);
    }
    wait_for("the first deliveries", || async {
        (sink.hook_count() == 4).then_some(())
    })
    .await;

    let out = switchyard(
        dir.path(),
        &[
            "replay",
            "--subscription",
            &sub,
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("4 deliveries of subscription {sub} are pending again")
    );
    assert!(out.stderr.is_empty(), "no bar when piped: {:?}", out.stderr);
    wait_for("the replayed deliveries", || async {
        (sink.hook_count() == 8).then_some(())
    })
    .await;
    let ids: std::collections::BTreeSet<String> = sink
        .hooks()
        .iter()
        .filter_map(|h| h.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 4, "again under the same webhook-ids");

    let out = switchyard(
        dir.path(),
        &[
            "replay",
            "--subscription",
            "not-an-id",
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(!out.status.success());
    drop(hub);
}
