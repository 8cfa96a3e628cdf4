//! Faults at the receiver: a chaos receiver answers each request, at random, 200, 500, 429 with
//! `Retry-After`, a 302, slowly, not at all (past the hub's timeout), or by closing the
//! connection. Every delivery must end succeeded or, when its policy gives up, failed; every
//! request the receiver saw must be a logged attempt; and the attempt times must follow the
//! policy, checked on the hub's manual clock rather than by waiting.
//!
//! `SWITCHYARD_CHAOS_EVENTS=N` (default 40) for a longer run; the receiver's seed is printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use switchyard_core::model::{DeliveryFilter, DeliveryStatus};

use crate::helpers::*;

/// The delays of the subscription's policy, in seconds: 6 attempts at most.
const DELAYS: [i64; 5] = [1, 2, 4, 8, 16];
/// What a 429 asks for.
const RETRY_AFTER_SECS: i64 = 3;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Ok,
    ServerError,
    TooMany,
    Redirect,
    Slow,
    Hang,
    Close,
}

/// The faults each request met, by `webhook-id`.
type Seen = Arc<Mutex<HashMap<String, Vec<Fault>>>>;

/// A receiver on 127.0.0.1 speaking just enough HTTP/1.1 to misbehave on purpose.
async fn chaos_receiver(seed: u64) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let state = Arc::new(Mutex::new(seed | 1));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (seen, state) = (record.clone(), state.clone());
            tokio::spawn(async move {
                let Some(webhook_id) = read_request(&mut stream).await else {
                    return;
                };
                let fault = {
                    let mut x = state.lock().expect("rng");
                    *x ^= *x << 13;
                    *x ^= *x >> 7;
                    *x ^= *x << 17;
                    match *x % 10 {
                        0..=2 => Fault::Ok,
                        3 => Fault::ServerError,
                        4 => Fault::TooMany,
                        5 => Fault::Redirect,
                        6 => Fault::Slow,
                        7 | 8 => Fault::Hang,
                        _ => Fault::Close,
                    }
                };
                seen.lock()
                    .expect("seen")
                    .entry(webhook_id)
                    .or_default()
                    .push(fault);
                let answer = |status: &str, extra: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                };
                let reply = match fault {
                    Fault::Ok => answer("200 OK", ""),
                    Fault::ServerError => answer("500 Internal Server Error", ""),
                    Fault::TooMany => answer(
                        "429 Too Many Requests",
                        &format!("Retry-After: {RETRY_AFTER_SECS}\r\n"),
                    ),
                    Fault::Redirect => answer("302 Found", "Location: http://127.0.0.1:9/\r\n"),
                    Fault::Slow => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        answer("200 OK", "")
                    }
                    // Past the hub's request timeout, then gone.
                    Fault::Hang => {
                        tokio::time::sleep(Duration::from_millis(800)).await;
                        return;
                    }
                    Fault::Close => return,
                };
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

/// Reads one request (head and `Content-Length` body); its `webhook-id`.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let length: usize = header("content-length:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    header("webhook-id:")
}

#[tokio::test]
async fn every_delivery_ends_with_its_attempts_logged_on_the_policys_schedule() {
    let seed = Timestamp::now().as_nanosecond() as u64;
    eprintln!("chaos receiver seed {seed}");
    let app = spawn_app_with(|s| {
        s.request_timeout = Duration::from_millis(300);
        s.connect_timeout = Duration::from_millis(300);
    })
    .await;
    let (url, seen) = chaos_receiver(seed).await;
    let token = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &token,
            json!({"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
                   "eventUrl": url, "partnerId": "p1",
                   "retryPolicy": {"type": "delays", "delaysSeconds": DELAYS}}),
        )
        .await;
    let sub_id: switchyard_core::model::SubscriptionId = sub.parse().expect("uuid");
    let events: usize = std::env::var("SWITCHYARD_CHAOS_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    for n in 0..events {
        app.publish(&token, "p1", json!({"sku": format!("S-{n}")}))
            .await;
    }
    // Time moves a second at a time on the hub's clock; requests take real time.
    let store = app.state.store.unscoped().clone();
    let mut done = Vec::new();
    for _ in 0..(1500 + events * 5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        app.advance(SignedDuration::from_secs(1));
        done = store
            .list_deliveries(&DeliveryFilter {
                partners: None,
                subscription_id: Some(sub_id),
                event_id: None,
                status: None,
                before: None,
                limit: 100_000,
            })
            .await
            .expect("deliveries");
        if done.len() == events && done.iter().all(|d| d.status != DeliveryStatus::Pending) {
            break;
        }
    }
    assert_eq!(done.len(), events);
    let attempts = store
        .attempts_since(sub_id, Timestamp::MIN, 1_000_000)
        .await
        .expect("attempts");
    let seen = seen.lock().expect("seen").clone();
    let (mut succeeded, mut failed, mut faults) = (0, 0, 0);
    for d in &done {
        let mine: Vec<_> = attempts.iter().filter(|a| a.delivery_id == d.id).collect();
        let webhook_id = format!("msg_{}", d.id.0.simple());
        let met = seen.get(&webhook_id).cloned().unwrap_or_default();
        assert_eq!(
            mine.len(),
            met.len(),
            "delivery {}: {} attempts logged, {} requests seen ({met:?})",
            d.id,
            mine.len(),
            met.len()
        );
        assert_eq!(mine.len() as u32, d.attempts);
        match d.status {
            DeliveryStatus::Succeeded => {
                succeeded += 1;
                assert!(mine.last().is_some_and(|a| a.succeeded));
                assert!(mine.iter().rev().skip(1).all(|a| !a.succeeded));
            }
            DeliveryStatus::Failed => {
                failed += 1;
                assert_eq!(
                    mine.len(),
                    DELAYS.len() + 1,
                    "failed only when the policy gave up"
                );
                assert!(mine.iter().all(|a| !a.succeeded));
            }
            other => panic!("delivery {} ended {other:?}", d.id),
        }
        faults += met
            .iter()
            .filter(|f| !matches!(f, Fault::Ok | Fault::Slow))
            .count();
        // The schedule: each retry no sooner than its delay, or the 429's Retry-After.
        for (k, pair) in mine.windows(2).enumerate() {
            let gap = pair[1].attempted_at.duration_since(pair[0].attempted_at);
            let mut wait = DELAYS[k];
            if matches!(met.get(k), Some(Fault::TooMany)) {
                wait = wait.max(RETRY_AFTER_SECS);
            }
            assert!(
                gap >= SignedDuration::from_secs(wait),
                "delivery {}: attempt {} came {gap:?} after the one before, policy says {wait} s",
                d.id,
                k + 2
            );
        }
    }
    eprintln!(
        "chaos: {events} deliveries, {} attempts, {faults} faults injected; {succeeded} succeeded, {failed} failed",
        attempts.len()
    );
    assert!(succeeded > 0 && faults > 0);
}
