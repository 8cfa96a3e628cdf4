//! Delivery controls as a receiver sees them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// With `ordering: "resource"`, each order's events arrive one at a time and in order, even with
/// many requests in flight and a receiver that fails at random; different orders interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_resource_ordering_holds_under_parallel_load_and_random_failures() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // A receiver that fails about a third of the time (a fixed pseudo-random sequence).
    let arrivals: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let counter = Arc::new(AtomicU64::new(0));
    let router = {
        let arrivals = arrivals.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: Bytes| {
                let arrivals = arrivals.clone();
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, AtomicOrdering::SeqCst);
                    let fail = (n.wrapping_mul(2_654_435_761) >> 7).is_multiple_of(3);
                    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let order = body["payload"]["order"].as_str().unwrap_or("").to_string();
                    let seq = body["payload"]["seq"].as_u64().unwrap_or(u64::MAX);
                    arrivals.lock().unwrap().push((order, seq, !fail));
                    if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    app.subscribe(&token, json!({
        "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": url, "partnerId": "p1",
        "ordering": "resource", "retryPolicy": {"type": "delays", "delaysSeconds": vec![0; 60]},
    }))
    .await;

    const ORDERS: usize = 12;
    const EACH: u64 = 8;
    let mut publishers = tokio::task::JoinSet::new();
    for o in 0..ORDERS {
        let (http, base, token) = (app.http.clone(), app.base.clone(), token.clone());
        publishers.spawn(async move {
            // One order's events are accepted one after the other; orders publish in parallel.
            for seq in 0..EACH {
                let answer = http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                                  "resource": {"type": "order", "id": format!("O-{o}")},
                                  "payload": {"order": format!("O-{o}"), "seq": seq}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 202);
            }
        });
    }
    while publishers.join_next().await.is_some() {}
    eventually("every event delivered", || async {
        arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ok)| *ok)
            .count()
            == ORDERS * EACH as usize
    })
    .await;

    let arrivals = arrivals.lock().unwrap().clone();
    let mut per_order: HashMap<String, Vec<(u64, bool)>> = HashMap::new();
    for (order, seq, ok) in &arrivals {
        per_order
            .entry(order.clone())
            .or_default()
            .push((*seq, *ok));
    }
    for (order, seen) in &per_order {
        // In order; a failed attempt is tried again before anything later is sent.
        let mut expected = 0;
        for (seq, ok) in seen {
            assert_eq!(
                *seq, expected,
                "{order} saw {seq} while waiting for {expected}: {seen:?}"
            );
            if *ok {
                expected += 1;
            }
        }
        assert_eq!(expected, EACH, "{order} got all its events");
    }
    assert!(
        arrivals.iter().any(|(_, _, ok)| !ok),
        "the receiver did fail sometimes"
    );
    let switches = arrivals.windows(2).filter(|w| w[0].0 != w[1].0).count();
    assert!(
        switches > ORDERS * 2,
        "different orders interleave ({switches} switches)"
    );
}

/// A 50/s rate limit, counted over injected time: a burst of 50, then 5 per 100 ms.
#[tokio::test]
async fn a_rate_limit_holds_over_a_measured_window() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let token = app.admin_token().await;
    app.subscribe(
        &token,
        json!({
            "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": sink.hook_url(),
            "partnerId": "p1", "rateLimit": {"perSecond": 50, "burst": 50},
        }),
    )
    .await;
    for n in 0..200 {
        app.publish(&token, "p1", json!({"n": n})).await;
    }
    eventually("the first burst", || async { sink.hook_count() >= 50 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        sink.hook_count(),
        50,
        "nothing beyond the burst without time passing"
    );
    // Two seconds of injected time in 100 ms steps.
    for step in 1..=20 {
        app.advance(jiff::SignedDuration::from_millis(100));
        eventually("this step's tokens spent", || async {
            sink.hook_count() >= 50 + 5 * step
        })
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let delivered = sink.hook_count();
    // 50 + 2 s × 50/s = 150; within 10%.
    assert!(
        (135..=165).contains(&delivered),
        "{delivered} delivered in the window"
    );
}

/// `maxInFlight`: a slow receiver never sees more requests at once than the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_caps_concurrent_requests() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let current = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let router = {
        let (current, peak, done) = (current.clone(), peak.clone(), done.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (current, peak, done) = (current.clone(), peak.clone(), done.clone());
                async move {
                    let now = current.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                    peak.fetch_max(now, AtomicOrdering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                    current.fetch_sub(1, AtomicOrdering::SeqCst);
                    done.fetch_add(1, AtomicOrdering::SeqCst);
                    StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    app.subscribe(&token, json!({
        "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": url, "partnerId": "p1", "maxInFlight": 3,
    }))
    .await;
    for n in 0..24 {
        app.publish(&token, "p1", json!({"n": n})).await;
    }
    eventually("all delivered", || async {
        done.load(AtomicOrdering::SeqCst) == 24
    })
    .await;
    let peak = peak.load(AtomicOrdering::SeqCst);
    assert!(peak <= 3, "at most 3 at once, saw {peak}");
    assert!(peak >= 2, "requests did overlap up to the cap (saw {peak})");
}

/// A 429 with Retry-After holds that subscription only; the others keep flowing.
#[tokio::test]
async fn a_429_slows_down_only_its_own_subscription() {
    let app = spawn_app().await;
    let fine = Sink::start().await;
    let token = app.admin_token().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU64::new(0));
    let router = {
        let hits = hits.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, AtomicOrdering::SeqCst);
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "60")])
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, router).await });
    for url in [busy_url.clone(), fine.hook_url()] {
        app.subscribe(&token, json!({
            "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": url, "partnerId": "p1",
            "retryPolicy": {"type": "delays", "delaysSeconds": [0, 0, 0, 0, 0]},
        }))
        .await;
    }
    for n in 0..10 {
        app.publish(&token, "p1", json!({"n": n})).await;
    }
    eventually("the healthy endpoint gets everything", || async {
        fine.hook_count() == 10
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let while_held = hits.load(AtomicOrdering::SeqCst);
    assert!(
        while_held <= 10,
        "held after the first 429s (saw {while_held})"
    );
    app.advance(jiff::SignedDuration::from_secs(61));
    eventually("attempted again once the hold ends", || async {
        hits.load(AtomicOrdering::SeqCst) > while_held
    })
    .await;
}

/// Subscribes `url` to OFFER_UNPUBLISHED and an operator sink to the operational events.
async fn with_operational_watch(
    app: &TestApp,
    token: &str,
    url: &str,
    extra: Value,
) -> (String, Sink) {
    let watch = Sink::start().await;
    for event_type in [
        "subscription.disabled",
        "subscription.recovered",
        "delivery.exhausted",
    ] {
        app.subscribe(token, json!({
            "eventType": event_type, "resourceName": "WEBHOOKS", "eventUrl": watch.hook_url(), "partnerId": "p1",
        }))
        .await;
    }
    let mut body = json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": url, "partnerId": "p1"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (id, _) = app.subscribe(token, body).await;
    (id, watch)
}

fn operational_types(watch: &Sink) -> Vec<String> {
    watch
        .hooks()
        .iter()
        .map(|h| {
            h.json()["source"]["eventType"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// A 410 Gone sets the subscription INACTIVE at once, with its reason, and says so once.
#[tokio::test]
async fn a_410_disables_the_subscription_and_tells_the_operator_once() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let gone = Sink::start().await;
    gone.answer_with(&[410, 410, 410]);
    let (sub, watch) = with_operational_watch(&app, &token, &gone.hook_url(), json!({})).await;
    app.publish(&token, "p1", json!({"n": 1})).await;
    app.publish(&token, "p1", json!({"n": 2})).await;
    eventually("the operator hears of it", || async {
        operational_types(&watch).contains(&"subscription.disabled".to_string())
    })
    .await;
    let shown = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &token)
        .await;
    assert_eq!(shown.body["status"], "INACTIVE");
    assert_eq!(
        shown.body["disabledReason"],
        "the endpoint answered 410 Gone"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let disabled = operational_types(&watch)
        .iter()
        .filter(|t| *t == "subscription.disabled")
        .count();
    assert_eq!(disabled, 1, "once, however many deliveries were in flight");
    let health = app
        .get(&format!("/api/v1/subscriptions/{sub}/health"), &token)
        .await;
    assert_eq!(
        health.body["disabledReason"],
        "the endpoint answered 410 Gone"
    );
}

/// The breaker opens after repeated failures (probes at a slow pace instead of every due
/// delivery), closes when a probe succeeds, says `subscription.recovered`, and the backlog drains.
#[tokio::test]
async fn the_breaker_opens_probes_and_recovers() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let flaky = Sink::start().await;
    // As many failures as events: however many of the ten are in flight when the breaker opens,
    // and in whatever order their answers are recorded, no success can interrupt the streak
    // (with fewer, a success recorded early could keep it under the threshold for good). The
    // failures the first attempts leave over go to the probes.
    flaky.answer_with(&[500; 10]);
    let (sub, watch) = with_operational_watch(
        &app,
        &token,
        &flaky.hook_url(),
        json!({
            "circuitBreaker": {"failureThreshold": 3, "probeIntervalSeconds": 60},
            "retryPolicy": {"type": "delays", "delaysSeconds": vec![1; 50]},
        }),
    )
    .await;
    for n in 0..10 {
        app.publish(&token, "p1", json!({"n": n})).await;
    }
    eventually("the breaker opens", || async {
        app.get(&format!("/api/v1/subscriptions/{sub}/health"), &token)
            .await
            .body["breaker"]
            == "open"
    })
    .await;
    let while_open = flaky.hook_count();
    // Time passes, but less than the probe interval: retries stay held.
    app.advance(jiff::SignedDuration::from_secs(30));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        flaky.hook_count(),
        while_open,
        "nothing while the breaker is open"
    );
    // Probe time: one request at a time until one succeeds.
    let mut probes = 0;
    while !flaky.state.script.lock().unwrap().is_empty() && probes < 10 {
        let before = flaky.hook_count();
        app.advance(jiff::SignedDuration::from_secs(61));
        eventually("a probe", || async { flaky.hook_count() > before }).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(flaky.hook_count(), before + 1, "exactly one probe");
        probes += 1;
    }
    // The receiver is healthy now: the next probe succeeds and the backlog drains.
    app.advance(jiff::SignedDuration::from_secs(61));
    eventually("the backlog drains", || async {
        app.deliveries_of(&token, &sub)
            .await
            .iter()
            .all(|d| d["status"] == "succeeded")
    })
    .await;
    let token = app.admin_token().await;
    eventually("recovered is announced", || async {
        operational_types(&watch).contains(&"subscription.recovered".to_string())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let recovered = operational_types(&watch)
        .iter()
        .filter(|t| *t == "subscription.recovered")
        .count();
    assert_eq!(recovered, 1, "recovered once");
    assert_eq!(
        app.get(&format!("/api/v1/subscriptions/{sub}/health"), &token)
            .await
            .body["breaker"],
        "closed"
    );
}

/// A subscription failing continuously longer than `autoDisableAfterSeconds` (injected time) is
/// set INACTIVE; a delivery that fails for good is announced as `delivery.exhausted`, once.
#[tokio::test]
async fn continuous_failure_disables_and_exhausted_deliveries_are_announced() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let down = Sink::start().await;
    down.answer_with(&[503; 100]);
    let (sub, watch) = with_operational_watch(
        &app,
        &token,
        &down.hook_url(),
        json!({
            "autoDisableAfterSeconds": 3600,
            "circuitBreaker": {"failureThreshold": 1000, "probeIntervalSeconds": 60},
            "retryPolicy": {"type": "delays", "delaysSeconds": [1800, 1800, 1800]},
        }),
    )
    .await;
    app.publish(&token, "p1", json!({"n": 1})).await;
    eventually("first attempt", || async { down.hook_count() == 1 }).await;
    app.advance(jiff::SignedDuration::from_secs(1800));
    eventually("second attempt", || async { down.hook_count() == 2 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let token = app.admin_token().await;
    assert_eq!(
        app.get(&format!("/v3/webhooks/subscriptions/{sub}"), &token)
            .await
            .body["status"],
        "ACTIVE",
        "30 minutes: not yet"
    );
    app.advance(jiff::SignedDuration::from_secs(1800));
    eventually("third attempt", || async { down.hook_count() == 3 }).await;
    let token = app.admin_token().await;
    eventually("disabled after an hour of failing", || async {
        app.get(&format!("/v3/webhooks/subscriptions/{sub}"), &token)
            .await
            .body["status"]
            == "INACTIVE"
    })
    .await;
    let reason = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &token)
        .await
        .body["disabledReason"]
        .clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("failing continuously since"),
        "{reason}"
    );
    eventually("announced", || async {
        operational_types(&watch).contains(&"subscription.disabled".to_string())
    })
    .await;

    // Resumed: the streak starts afresh; the last retry fails and the delivery is exhausted.
    let resumed = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{sub}"),
            &token,
            json!({"status": "ACTIVE"}),
        )
        .await;
    assert_eq!(resumed.body["disabledReason"], Value::Null);
    app.advance(jiff::SignedDuration::from_secs(1800));
    eventually("exhausted is announced", || async {
        operational_types(&watch).contains(&"delivery.exhausted".to_string())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let types = operational_types(&watch);
    assert_eq!(
        types.iter().filter(|t| *t == "delivery.exhausted").count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "subscription.disabled")
            .count(),
        1
    );
    let exhausted = watch
        .hooks()
        .into_iter()
        .find(|h| h.json()["source"]["eventType"] == "delivery.exhausted")
        .unwrap()
        .json();
    assert_eq!(exhausted["payload"]["subscriptionId"], sub.as_str());
    assert_eq!(exhausted["payload"]["lastAttempt"]["statusCode"], 503);
}
