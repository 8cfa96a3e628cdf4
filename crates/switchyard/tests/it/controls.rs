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
    let busy = Sink::start().await;
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
    let _ = busy;
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
