//! Polling subscriptions (issue 21): `eventUrl` `poll:` pushes nothing; the subscriber pages
//! through `GET /api/v1/subscriptions/{id}/poll` with an opaque iterator that survives a
//! restart, long-polls for the next event, verifies each item with a Standard Webhooks
//! implementation written independently of the hub, and sees only its own partner's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_core::model::Access;

use crate::helpers::*;

async fn page(app: &TestApp, token: &str, sub: &str, query: &str) -> Value {
    let answer = app
        .get(&format!("/api/v1/subscriptions/{sub}/poll?{query}"), token)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn skus(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let body: Value =
                serde_json::from_str(item["body"].as_str().expect("body")).expect("JSON");
            body["payload"]["sku"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_subscription_pages_waits_survives_a_restart_and_sees_only_its_own() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/v3/webhooks/subscriptions",
            &admin,
            json!({"events": [{"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                               "partnerId": "seller-1", "eventUrl": "poll:"}]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let sub = created.body["events"][0]["subscriptionId"]
        .as_str()
        .expect("id")
        .to_string();
    let secret = created.body["events"][0]["signingSecret"]
        .as_str()
        .expect("secret")
        .to_string();
    let poll_url = format!("/api/v1/subscriptions/{sub}/poll");
    assert_eq!(created.body["events"][0]["pollUrl"], poll_url.as_str());
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(read.body["pollUrl"], poll_url.as_str(), "{}", read.body);

    for n in 0..5 {
        app.publish(&admin, "seller-1", json!({"sku": format!("SKU-{n}")}))
            .await;
    }
    // Paging: two, two, one; each item verifies.
    let first = page(&app, &admin, &sub, "limit=2").await;
    assert_eq!(skus(&first), ["SKU-0", "SKU-1"]);
    assert_eq!(first["done"], false);
    for item in first["data"].as_array().expect("data") {
        assert_eq!(
            item["signature"],
            standard_signature(
                &secret,
                item["webhookId"].as_str().expect("id"),
                &item["timestamp"].as_i64().expect("timestamp").to_string(),
                item["body"].as_str().expect("body").as_bytes(),
            ),
            "{item}"
        );
        assert_eq!(item["eventType"], "OFFER_UNPUBLISHED");
    }
    let iterator = first["iterator"].as_str().expect("iterator").to_string();
    let second = page(&app, &admin, &sub, &format!("limit=2&iterator={iterator}")).await;
    assert_eq!(skus(&second), ["SKU-2", "SKU-3"]);
    let again = page(&app, &admin, &sub, &format!("limit=2&iterator={iterator}")).await;
    assert_eq!(skus(&again), skus(&second), "an iterator is stable");
    assert_eq!(
        again["data"][0]["webhookId"], second["data"][0]["webhookId"],
        "the same webhook-id on every read"
    );
    let iterator = second["iterator"].as_str().expect("iterator").to_string();

    // A restart in between: the iterator still points where it did.
    let app = restart(app).await;
    let admin = app.admin_token().await;
    let third = page(&app, &admin, &sub, &format!("limit=2&iterator={iterator}")).await;
    assert_eq!(skus(&third), ["SKU-4"]);
    assert_eq!(third["done"], true);
    let iterator = third["iterator"].as_str().expect("iterator").to_string();

    // Long poll: an empty wait answers as soon as an event arrives.
    let waiting = {
        let (base, http, token, sub, iterator) = (
            app.base.clone(),
            app.http.clone(),
            admin.clone(),
            sub.clone(),
            iterator.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let answer: Value = http
                .get(format!(
                    "{base}/api/v1/subscriptions/{sub}/poll?iterator={iterator}&waitSeconds=20"
                ))
                .bearer_auth(token)
                .send()
                .await
                .expect("poll")
                .json()
                .await
                .expect("JSON");
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.publish(&admin, "seller-1", json!({"sku": "SKU-5"}))
        .await;
    let (woken, took) = waiting.await.expect("joined");
    assert_eq!(skus(&woken), ["SKU-5"], "{woken}");
    assert!(
        took < Duration::from_secs(15),
        "answered when the event arrived, not at the end of the wait"
    );
    let empty_started = Instant::now();
    let empty = page(
        &app,
        &admin,
        &sub,
        &format!(
            "iterator={}&waitSeconds=1",
            woken["iterator"].as_str().expect("iterator")
        ),
    )
    .await;
    assert_eq!(skus(&empty), Vec::<String>::new());
    assert_eq!(empty["done"], true);
    assert_eq!(
        empty["iterator"], woken["iterator"],
        "an empty page stays put"
    );
    assert!(
        empty_started.elapsed() >= Duration::from_millis(900),
        "it waited"
    );

    // Nothing was pushed or counted as pending; the deliveries wait as `polling`.
    let deliveries = app.deliveries_of(&admin, &sub).await;
    assert_eq!(deliveries.len(), 6);
    assert!(
        deliveries.iter().all(|d| d["status"] == "polling"),
        "{deliveries:?}"
    );

    // Tenants: another partner's client gets 404; one with no access to the resource, 403; a bad
    // iterator is a 400.
    let other = app
        .partner_client("other", &["seller-2"], &[("ITEM", Access::FullAccess)])
        .await;
    assert_eq!(app.get(&poll_url, &other).await.status, 404);
    let blind = app
        .partner_client("blind", &["seller-1"], &[("ITEM", Access::NoAccess)])
        .await;
    assert_eq!(app.get(&poll_url, &blind).await.status, 403);
    let viewer = app
        .partner_client("viewer", &["seller-1"], &[("ITEM", Access::ViewOnly)])
        .await;
    assert_eq!(skus(&page(&app, &viewer, &sub, "limit=1").await), ["SKU-0"]);
    let bad = app
        .get(&format!("{poll_url}?iterator=not-ours"), &admin)
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "iterator");

    // A polling subscription stays one: its eventUrl cannot become a pushed destination.
    let changed = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{sub}"),
            &admin,
            json!({"eventUrl": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(changed.status, 400, "{}", changed.body);
}
