//! Markup from outside is inert on every console page. Strings full of `<script>`, quotes and
//! event handlers go in through every door a user or a stranger has (a custom header, a
//! published payload and event id, a receiver's answer, an ingest URL naming no source, the
//! query string), and every page that shows them must show them escaped, never raw.

use reqwest::StatusCode;
use serde_json::json;

use crate::console::Browser;
use crate::helpers::*;

/// What an attacker would like a page to run; each copy numbered, so a failure names its door.
fn hostile(door: u32) -> String {
    format!("\"'><script>alert({door})</script><img src=x onerror=alert({door})>")
}

/// The raw forms that must never appear in a page.
fn raw_markers(page: &str) -> Vec<String> {
    (1..=7)
        .flat_map(|door| {
            [
                format!("<script>alert({door})"),
                format!("<img src=x onerror=alert({door})"),
            ]
        })
        .filter(|raw| page.contains(raw.as_str()))
        .collect()
}

/// A receiver that answers every delivery 500 with markup in its body.
async fn hostile_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "text/html")],
                hostile(3),
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_from_every_door_is_inert_on_every_console_page() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let receiver = hostile_receiver().await;

    // Door 1: a custom header a user typed. Door 3: the receiver's answer, in the attempt log.
    let (subscription, _) = app
        .subscribe(
            &token,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
                   "eventUrl": receiver, "headers": {"x-note": hostile(1)}}),
        )
        .await;
    // Door 2: a published payload; door 4: an event id the publisher chose.
    let published = app
        .post(
            "/api/v1/events",
            &token,
            json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "seller-1",
                   "eventId": hostile(4), "payload": {"note": hostile(2)}}),
        )
        .await;
    assert_eq!(published.status, 202, "{}", published.body);
    let event = published.body["eventId"].as_str().unwrap().to_string();
    eventually("an attempt fails at the hostile receiver", || async {
        app.deliveries_of(&token, &subscription)
            .await
            .iter()
            .any(|d| d["lastStatusCode"] == 500)
    })
    .await;
    // Door 5: an ingest URL naming no source, from a stranger (recorded as a rejection).
    let stranger = app
        .http
        .post(format!(
            "{}/ingest/{}",
            app.base,
            percent_encode(&hostile(5))
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);

    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in(ADMIN_ID, ADMIN_SECRET).await,
        StatusCode::SEE_OTHER
    );
    // Door 6: the query string of the list pages.
    let query = format!(
        "?partner={}&type={}",
        percent_encode(&hostile(6)),
        percent_encode(&hostile(7))
    );
    let pages = [
        "/".to_string(),
        "/console/webhooks".to_string(),
        "/console/webhooks/new".to_string(),
        format!("/console/webhooks/{subscription}"),
        format!("/console/webhooks/{subscription}/logs"),
        "/console/events".to_string(),
        format!("/console/events{query}"),
        format!("/console/events/{event}"),
        "/console/failures".to_string(),
        format!("/console/failures{query}"),
        "/console/rejections".to_string(),
        format!("/console/rejections{query}"),
        "/console/outcomes".to_string(),
        "/console/sources".to_string(),
        "/console/sources/new".to_string(),
        "/console/partners".to_string(),
    ];
    let mut shown_escaped = std::collections::BTreeSet::new();
    for path in &pages {
        let (status, page, location) = browser.get(path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::SEE_OTHER,
            "{path}: {status} {location:?}"
        );
        let raw = raw_markers(&page);
        assert!(raw.is_empty(), "{path} shows markup raw: {raw:?}");
        for door in 1..=7 {
            if page.contains(&format!("&lt;script&gt;alert({door})")) {
                shown_escaped.insert(door);
            }
        }
    }
    // The doors that lead to a page were really shown there, escaped: the check above is not
    // passing because nothing was rendered.
    for door in [1, 2, 3, 4, 5] {
        assert!(
            shown_escaped.contains(&door),
            "markup from door {door} was shown escaped somewhere (shown: {shown_escaped:?})"
        );
    }
}
