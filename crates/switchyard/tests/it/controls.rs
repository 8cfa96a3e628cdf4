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
