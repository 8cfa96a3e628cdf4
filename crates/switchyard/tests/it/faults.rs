//! Faults inside the hub and at its edge: a background task that dies is restarted and reported
//! by `/readyz`; a flood past the bound on requests in flight is shed at once with 503 and
//! `Retry-After`, the probes still answering; SIGTERM with a request and a delivery hanging
//! ends within the grace, exit 0, and the delivery cut off is made after a restart under the
//! same `webhook-id`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use switchyard_server::supervise::supervise;

use crate::helpers::*;
use crate::restart::{admin_token, free_port, start_hub_with};

#[tokio::test]
async fn readyz_names_a_background_task_while_it_is_down_and_recovers_when_it_is_restarted() {
    let app = spawn_app().await;
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // A task of the hub's own supervision that fails its first three runs, then stays up.
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = runs.clone();
    let _handle = supervise(
        &app.state.tasks,
        &app.state.metrics,
        "probe_task",
        stopped,
        move || {
            let run = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                // Fails after a moment, so each run is seen up before it goes down.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if run < 3 {
                    panic!("probe task failure {run}");
                }
                std::future::pending::<()>().await
            }
        },
    );
    let down: Value = wait_for("/readyz reports the task down", || async {
        let answer = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .ok()?;
        if answer.status() != 503 {
            return None;
        }
        answer.json().await.ok()
    })
    .await;
    assert_eq!(down["error"]["code"], "task_down");
    assert_eq!(down["error"]["tasks"][0]["name"], "probe_task");
    let reason = down["error"]["tasks"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("probe task failure"), "{reason}");

    eventually(
        "the task is restarted and /readyz is ready again",
        || async {
            runs.load(std::sync::atomic::Ordering::SeqCst) >= 4
                && app
                    .http
                    .get(format!("{}/readyz", app.base))
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false)
        },
    )
    .await;
    let scraped = crate::outage::scrape(&app.http, &app.base).await;
    assert!(
        scraped.contains("switchyard_task_restarts_total{task=\"probe_task\"} 3"),
        "three restarts counted"
    );
    // The hub's own tasks are up and were never restarted.
    for task in ["dispatcher", "retention", "performance_scheduler"] {
        assert!(
            scraped.contains(&format!(
                "switchyard_task_restarts_total{{task=\"{task}\"}} 0"
            )),
            "{task} is supervised and up"
        );
    }
}

/// Starts a `POST` whose body never finishes: the request holds one of the hub's places until
/// the connection is closed.
async fn hold_a_place(base: &str, token: &str) -> TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"eventType\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn past_the_queueing_deadline_a_request_is_shed_with_retry_after_and_the_probes_answer() {
    let app = spawn_app_with(|s| {
        s.max_in_flight = 2;
        s.queue_deadline = Duration::from_millis(300);
    })
    .await;
    let token = app.admin_token().await;
    let held = [
        hold_a_place(&app.base, &token).await,
        hold_a_place(&app.base, &token).await,
    ];
    eventually("both places are taken", || async {
        app.state.admission.in_flight() == 2
    })
    .await;

    let shed = app
        .http
        .post(format!("{}/api/v1/events", app.base))
        .bearer_auth(&token)
        .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                      "eventId": "evt-shed", "payload": {"sku": "S1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");

    // The probes and the scrape take no place.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path} answers while the hub is full");
    }
    let scraped = crate::outage::scrape(&app.http, &app.base).await;
    assert!(
        scraped.contains("switchyard_http_shed_total{reason=\"deadline\"} 1"),
        "the shed request is counted"
    );
    assert!(scraped.contains("switchyard_http_in_flight 2"));
    assert!(
        scraped.contains(
            "switchyard_http_requests_total{route=\"/api/v1/events\",method=\"POST\",status=\"503\"} 1"
        ),
        "and recorded with its route and status"
    );

    // Places come back when the held requests end; the shed event was never stored, so the
    // same publish is now new, not a duplicate.
    drop(held);
    eventually("the places are free", || async {
        app.state.admission.in_flight() == 0
    })
    .await;
    let again = app
        .post(
            "/api/v1/events",
            &token,
            json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                   "eventId": "evt-shed", "payload": {"sku": "S1"}}),
        )
        .await;
    // 202 `accepted`: a duplicate would be 200 `duplicate`.
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["status"], "accepted", "{}", again.body);
}

/// A receiver that reads each request's head and never answers; it keeps the heads it read.
/// Aborting the task frees the port.
async fn hanging_receiver(port: u16) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let mut read = 0;
            while !String::from_utf8_lossy(&buf[..read]).contains("\r\n\r\n") {
                match stream.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..read]).to_string());
            open.push(stream);
        }
    });
    (heads, task)
}

fn header_in(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[tokio::test]
async fn sigterm_ends_within_the_grace_and_a_delivery_cut_off_is_retried_under_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let receiver_port = free_port();
    let hub_port = free_port();
    let settings = [
        ("SWITCHYARD_SHUTDOWN_GRACE_SECS", "1"),
        // Longer than the grace: the delivery in flight is cut off, not timed out.
        ("SWITCHYARD_REQUEST_TIMEOUT_SECS", "60"),
    ];
    let (heads, receiver) = hanging_receiver(receiver_port).await;
    let hub = start_hub_with(dir.path(), hub_port, &settings).await;
    let token = admin_token(&http, &hub.base).await;
    let created = http
        .post(format!("{}/v3/webhooks/subscriptions", hub.base))
        .bearer_auth(&token)
        .json(&json!({"events": [{
            "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "p1",
            "eventUrl": format!("http://127.0.0.1:{receiver_port}/hook"),
            "retryPolicy": {"type": "delays", "delaysSeconds": [1, 1, 1, 1, 1]},
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
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
    let first_id = wait_for(
        "the delivery is in flight at the hanging receiver",
        || async {
            heads
                .lock()
                .unwrap()
                .first()
                .and_then(|head| header_in(head, "webhook-id"))
        },
    )
    .await;
    // And an inbound request hangs too: its body never finishes.
    let _inbound = hold_a_place(&hub.base, &token).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut hub = hub;
    hub.sigterm();
    let mut exited = None;
    for _ in 0..1500 {
        exited = hub.child.try_wait().ok().flatten();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exited = exited.expect("the hub exits within 30 s of SIGTERM (its grace is 1 s)");
    assert!(exited.success(), "exit 0 after SIGTERM: {exited:?}");
    drop(hub);

    // The receiver is fixed; the restarted hub makes the delivery that was cut off, under the
    // id it had.
    receiver.abort();
    let _ = receiver.await;
    let sink = Sink::serve_on(
        tokio::net::TcpListener::bind(("127.0.0.1", receiver_port))
            .await
            .unwrap(),
    )
    .await;
    let _hub = start_hub_with(dir.path(), hub_port, &settings).await;
    eventually("the delivery is made after the restart", || async {
        sink.hook_count() >= 1
    })
    .await;
    assert_eq!(sink.hooks()[0].header("webhook-id"), Some(first_id));
}
