//! Bad input gets a clear JSON error with a code, and the server stays up.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn malformed_oversized_and_misdirected_requests_get_json_errors() {
    let app = spawn_app_with(|s| s.max_body_bytes = 64 * 1024).await;
    let token = app.admin_token().await;
    let send = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        app.http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Method, &str, Vec<u8>, u16)> = vec![
        (
            reqwest::Method::POST,
            "/api/v1/events",
            b"{not json".to_vec(),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/events",
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        (reqwest::Method::POST, "/api/v1/events", b"[]".to_vec(), 400),
        (
            reqwest::Method::POST,
            "/api/v1/events",
            br#"{"eventType": 5, "payload": {}}"#.to_vec(),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/events",
            vec![b' '; 70 * 1024],
            413,
        ),
        (
            reqwest::Method::POST,
            "/v3/webhooks/subscriptions",
            b"{\"events\": {}}".to_vec(),
            400,
        ),
        (
            reqwest::Method::POST,
            "/v3/webhooks/subscriptions",
            b"".to_vec(),
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/v3/webhooks/subscriptions/not-a-uuid",
            b"{}".to_vec(),
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/v1/deliveries/%00%ff",
            vec![],
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/v1/deliveries?status=lost",
            vec![],
            400,
        ),
        (
            reqwest::Method::GET,
            "/api/v1/deliveries?limit=-1",
            vec![],
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/subscriptions/00000000-0000-0000-0000-000000000000/replay",
            b"{\"since\": \"yesterday\"}".to_vec(),
            400,
        ),
        (reqwest::Method::PUT, "/v3/webhooks/eventTypes", vec![], 405),
        (reqwest::Method::GET, "/no/such/route", vec![], 404),
        (
            reqwest::Method::POST,
            "/v3/token",
            b"grant_type=client_credentials".to_vec(),
            401,
        ),
    ];
    for (method, path, body, status) in cases {
        let answer = send(method.clone(), path, body).await.expect("answered");
        assert_eq!(answer.status().as_u16(), status, "{method} {path}");
        let body: serde_json::Value = answer
            .json()
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: JSON error"));
        assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        assert!(
            body["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
    }
    // Nothing was stored by any of it, and the server still answers.
    assert_eq!(
        app.get("/api/v1/deliveries", &token).await.body["deliveries"],
        json!([])
    );
    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &token).await.body["events"],
        json!([])
    );
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_client_sending_its_headers_byte_by_byte_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        spawn_app_with(|s| s.header_read_timeout = std::time::Duration::from_millis(500)).await;
    let address = app.base.trim_start_matches("http://").to_string();
    // A few slow clients at once: each dribbles a request head, a byte every 100 ms, that would
    // take 6 s to finish.
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let address = address.clone();
        slow.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&address)
                .await
                .expect("connect");
            let started = std::time::Instant::now();
            let head = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
            for byte in head {
                if stream.write_all(&[*byte]).await.is_err() {
                    return started.elapsed();
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                // The server closing its side shows as a read of 0 bytes (or an error).
                let mut buf = [0u8; 1024];
                if let Ok(Ok(n)) = tokio::time::timeout(
                    std::time::Duration::from_millis(1),
                    stream.read(&mut buf),
                )
                .await
                    && n == 0
                {
                    return started.elapsed();
                }
            }
            panic!("the server waited for the whole slow head");
        });
    }
    while let Some(cut) = slow.join_next().await {
        let cut = cut.expect("slow client");
        assert!(
            cut < std::time::Duration::from_secs(3),
            "cut off after {cut:?}"
        );
    }
    // Everyone else is served as usual.
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_endpoint_refuses_bad_input_with_json_stores_nothing_and_stays_bounded() {
    let app = spawn_app_with(|s| s.max_body_bytes = 64 * 1024).await;
    let token = app.admin_token().await;
    let source = app
        .post(
            "/api/v1/sources",
            &token,
            json!({"kind": "walmart", "partners": ["p1"], "secrets": [{"id": "1", "value": "s3cret"}]}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.body);
    let ingest = source.body["ingestUrl"]
        .as_str()
        .expect("ingestUrl")
        .to_string();
    let ingest_path = ingest.trim_start_matches(&app.base).to_string();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", b"{\"a\": ".to_vec()),
        (
            "wrong types",
            br#"{"events": 5, "eventType": [], "kind": {}, "payload": "x"}"#.to_vec(),
        ),
        ("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}']),
        ("huge body", vec![b'{'; 200 * 1024]),
        ("empty", Vec::new()),
    ];
    let endpoints = [
        (
            reqwest::Method::POST,
            "/v3/webhooks/subscriptions".to_string(),
            true,
        ),
        (reqwest::Method::POST, "/api/v1/events".to_string(), true),
        (reqwest::Method::POST, "/api/v1/sources".to_string(), true),
        (reqwest::Method::POST, "/v3/token".to_string(), false),
        (reqwest::Method::POST, ingest_path.clone(), false),
    ];
    // `SWITCHYARD_BAD_INPUT_ROUNDS` and `SWITCHYARD_BAD_INPUT_FORGED` make it a long run.
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = setting("SWITCHYARD_BAD_INPUT_ROUNDS", 20);
    let forged_count = setting("SWITCHYARD_BAD_INPUT_FORGED", 2000);
    let before = rss_kib();
    let mut tried = 0;
    for _ in 0..rounds {
        for (method, path, authed) in &endpoints {
            for (what, body) in &bodies {
                let mut request = app
                    .http
                    .request(method.clone(), format!("{}{path}", app.base))
                    .header("content-type", "application/json")
                    .body(body.clone());
                if *authed {
                    request = request.bearer_auth(&token);
                }
                let answer = request.send().await.expect("an answer");
                let status = answer.status().as_u16();
                let text = answer.text().await.unwrap_or_default();
                tried += 1;
                assert!(
                    (400..500).contains(&status),
                    "{what} to {path}: {status} {text}"
                );
                let error: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{what} to {path}: not JSON: {text:?}"));
                assert!(
                    error["error"]["code"].is_string(),
                    "{what} to {path}: {text}"
                );
            }
        }
    }
    // Forged signatures by the thousand, and a replayed (old) timestamp, at the ingest URL.
    let mut forged: tokio::task::JoinSet<reqwest::Result<u16>> = tokio::task::JoinSet::new();
    for n in 0..forged_count {
        // 50 in flight at a time.
        if forged.len() >= 50
            && let Some(status) = forged.join_next().await
        {
            let status = status.expect("joined").expect("an answer");
            assert!((400..500).contains(&status), "forged: {status}");
            tried += 1;
        }
        let (http, url) = (app.http.clone(), ingest.clone());
        forged.spawn(async move {
            http.post(url)
                .header("WM_SEC.AUTH_SIGNATURE", format!("forged-{n}"))
                .header("WM_SEC.TIMESTAMP", "1700000000000")
                .header("WM_SEC.KEY_VERSION", "1")
                .header("content-type", "application/json")
                .body(format!("{{\"eventType\":\"PO_CREATED\",\"n\":{n}}}"))
                .send()
                .await
                .map(|a| a.status().as_u16())
        });
    }
    while let Some(status) = forged.join_next().await {
        let status = status.expect("joined").expect("an answer");
        assert!((400..500).contains(&status), "forged: {status}");
        tried += 1;
    }
    // Huge headers: over the hub's limit, a JSON 431; past the HTTP layer's buffer, its own 4xx.
    for (size, json_expected) in [(100 * 1024, true), (512 * 1024, false)] {
        let answer = app
            .http
            .get(format!("{}/v3/webhooks/subscriptions", app.base))
            .bearer_auth(&token)
            .header("x-huge", "a".repeat(size))
            .send()
            .await;
        let Ok(answer) = answer else {
            // The HTTP layer may close the connection instead of answering.
            assert!(!json_expected, "no answer to {size} bytes of headers");
            continue;
        };
        let status = answer.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{size} bytes of headers: {status}"
        );
        if json_expected {
            assert_eq!(status, 431);
            let body: serde_json::Value = answer.json().await.expect("a JSON error");
            assert_eq!(body["error"]["code"], "headers_too_large");
        }
        tried += 1;
    }

    // The one event is the hub's own alarm about the refusals, raised once.
    let events = app.get("/api/v1/events", &token).await;
    assert_eq!(events.status, 200);
    let events = events.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["eventType"], "source.rejections_spiking");
    assert_eq!(
        events[0]["origin"], "publish",
        "published by the hub itself"
    );
    let subs = app.get("/v3/webhooks/subscriptions", &token).await;
    assert_eq!(
        subs.body["events"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{}",
        subs.body
    );
    let sources = app.get("/api/v1/sources", &token).await;
    assert_eq!(
        sources.body["sources"].as_array().map(Vec::len),
        Some(1),
        "{}",
        sources.body
    );
    let rejections = app.get("/api/v1/rejections?limit=1", &token).await;
    assert_eq!(rejections.status, 200);
    assert!(
        rejections.body["rejections"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    let grew = rss_kib().saturating_sub(before) / 1024;
    eprintln!("bad input: {tried} requests refused; memory grew {grew} MiB");
    assert!(grew < 64, "memory grew by {grew} MiB");
}

#[tokio::test]
async fn a_body_with_anything_after_its_json_value_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let event =
        r#"{"eventType": "OFFER_UNPUBLISHED", "partnerId": "seller-1", "payload": {"n": 1}}"#;
    let source =
        r#"{"kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "s"}]}"#;
    let subscription = r#"{"events": [{"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM", "eventUrl": "https://example.com/hook", "status": "ACTIVE"}]}"#;
    let post = |path: &'static str, body: String| {
        app.http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/api/v1/events", event),
        ("/api/v1/sources", source),
        ("/v3/webhooks/subscriptions", subscription),
    ] {
        for trailer in [" garbage", "}{", "{}", "\n1"] {
            let answer = post(path, format!("{body}{trailer}")).await.unwrap();
            assert_eq!(
                answer.status(),
                400,
                "{path} with {trailer:?} after the value"
            );
            let error: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(error["error"]["code"], "malformed_body", "{path}: {error}");
        }
    }
    // Nothing was stored.
    assert_eq!(
        app.get("/api/v1/events", &token).await.body["events"],
        json!([])
    );
    assert_eq!(
        app.get("/api/v1/sources", &token).await.body["sources"],
        json!([])
    );
    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &token).await.body["events"],
        json!([]),
        "no subscription"
    );
    // The same bodies, with only whitespace after them, are accepted.
    for (path, body, status) in [
        ("/api/v1/events", event, 202),
        ("/api/v1/sources", source, 201),
    ] {
        let answer = post(path, format!("{body} \r\n\t")).await.unwrap();
        assert_eq!(answer.status(), status, "{path} with trailing whitespace");
    }
}
