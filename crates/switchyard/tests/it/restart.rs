//! The real binary: a publish is acknowledged, the process is killed with SIGKILL before the
//! delivery could be made, and after a restart the delivery is still made, once, under the same
//! `webhook-id`. Then SIGTERM stops it cleanly.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) struct Hub {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_hub(data_dir: &std::path::Path, port: u16) -> Hub {
    start_hub_with(data_dir, port, &[]).await
}

impl Hub {
    /// Asks the hub to stop, as an init system would (SIGTERM).
    pub(crate) fn sigterm(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent");
    }
}

/// A hub process with more environment settings (`SWITCHYARD_…`).
pub(crate) async fn start_hub_with(
    data_dir: &std::path::Path,
    port: u16,
    settings: &[(&str, &str)],
) -> Hub {
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("serve")
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .env("SWITCHYARD_ALLOW_PRIVATE_TARGETS", "true")
        .env("SWITCHYARD_POLL_INTERVAL_MS", "50")
        .env("SWITCHYARD_BOOTSTRAP_CLIENT_ID", ADMIN_ID)
        .env("SWITCHYARD_BOOTSTRAP_CLIENT_SECRET", ADMIN_SECRET)
        .env("SWITCHYARD_LOG", "warn")
        .env_remove("SWITCHYARD_MASTER_KEY")
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("switchyard starts");
    let hub = Hub {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    wait_for("the hub answers /readyz", || async {
        let ok = http
            .get(format!("{}/readyz", hub.base))
            .send()
            .await
            .map(|r| r.status() == 200);
        ok.unwrap_or(false).then_some(())
    })
    .await;
    hub
}

pub(crate) async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let answer: Value = http
        .post(format!("{base}/v3/token"))
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

/// Creates one subscription (Walmart shape) on a hub process; returns its id.
pub(crate) async fn subscribe(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    event: Value,
) -> String {
    let answer = http
        .post(format!("{base}/v3/webhooks/subscriptions"))
        .bearer_auth(token)
        .json(&json!({"events": [event]}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(answer.status(), 200, "subscription created");
    let created: Value = answer.json().await.expect("subscription json");
    created["events"][0]["subscriptionId"]
        .as_str()
        .expect("a subscription id")
        .to_string()
}

#[tokio::test]
async fn an_acknowledged_publish_survives_sigkill_and_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    // The receiver is down at first: its port is reserved but nobody listens.
    let sink_port = free_port();
    let hub_port = free_port();
    let hub = start_hub(dir.path(), hub_port).await;
    let token = admin_token(&http, &hub.base).await;
    let sub = subscribe(
        &http,
        &hub.base,
        &token,
        json!({
            "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "p1",
            "eventUrl": format!("http://127.0.0.1:{sink_port}/hook"),
            "retryPolicy": {"type": "delays", "delaysSeconds": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]},
        }),
    )
    .await;
    let published = http
        .post(format!("{}/api/v1/events", hub.base))
        .bearer_auth(&token)
        .json(
            &json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1", "payload": {"sku": "S1"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    let event_id = published.json::<Value>().await.unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_string();

    // Acknowledged: now kill it without warning.
    let mut hub = hub;
    hub.child.kill().expect("SIGKILL");
    hub.child.wait().unwrap();
    drop(hub);

    // The receiver comes up, and so does the hub.
    let sink = Sink::serve_on(
        tokio::net::TcpListener::bind(("127.0.0.1", sink_port))
            .await
            .unwrap(),
    )
    .await;
    let mut hub = start_hub(dir.path(), hub_port).await;
    eventually("the delivery is made after the restart", || async {
        sink.hook_count() >= 1
    })
    .await;
    let token = admin_token(&http, &hub.base).await;
    let deliveries: Value = http
        .get(format!(
            "{}/api/v1/deliveries?subscriptionId={sub}",
            hub.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &deliveries["deliveries"][0];
    assert_eq!(d["eventId"], event_id.as_str());
    let got = &sink.hooks()[0];
    assert_eq!(got.json()["payload"]["sku"], "S1");
    assert_eq!(
        got.header("webhook-id").unwrap(),
        format!("msg_{}", d["id"].as_str().unwrap().replace('-', ""))
    );
    eventually("marked succeeded", || async {
        let d: Value = http
            .get(format!(
                "{}/api/v1/deliveries?subscriptionId={sub}",
                hub.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        d["deliveries"][0]["status"] == "succeeded"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 1, "delivered once");

    // SIGTERM: a clean, prompt exit.
    let pid = hub.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut exited = None;
    for _ in 0..500 {
        exited = hub.child.try_wait().ok().flatten();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exited = exited.expect("the hub exits within 10 s of SIGTERM");
    assert!(exited.success(), "clean exit: {exited:?}");
}
