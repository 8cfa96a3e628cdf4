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
