//! Transformations (issue 22): a subscription's `function handler(webhook)` rewrites what is
//! sent (the signature covers the new body), cancels a delivery, and when it loops, throws or
//! reaches for the network, fails that attempt with the reason in its log while the hub carries
//! on. Code is compiled when set, and "try it" shows what a sample would become.

use serde_json::{Value, json};

use crate::helpers::*;

fn offer(url: &str, transform: &str) -> Value {
    json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
           "eventUrl": url, "transform": transform})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transformation_rewrites_what_is_sent_and_the_signature_covers_it() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let code = r#"function handler(webhook) {
        webhook.payload = {sku: webhook.payload.payload.sku, kind: webhook.eventType};
        webhook.headers["x-shape"] = "slim";
        return webhook;
    }"#;
    let (sub, secret) = app.subscribe(&admin, offer(&sink.hook_url(), code)).await;
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(read.body["transform"], code, "{}", read.body);

    app.publish(&admin, "seller-1", json!({"sku": "SKU-9"}))
        .await;
    wait_for("the transformed delivery", || async {
        (sink.hook_count() == 1).then_some(())
    })
    .await;
    let got = &sink.hooks()[0];
    assert_eq!(
        got.json(),
        json!({"sku": "SKU-9", "kind": "OFFER_UNPUBLISHED"})
    );
    assert_eq!(got.header("x-shape").as_deref(), Some("slim"));
    let signature = got.header("webhook-signature").expect("signed");
    assert_eq!(
        signature,
        standard_signature(
            &secret,
            &got.header("webhook-id").expect("id"),
            &got.header("webhook-timestamp").expect("timestamp"),
            &got.body,
        ),
        "the signature is over the transformed body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transformation_that_cancels_drops_the_delivery_and_says_so() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let code = "function handler(w) {
        return w.payload.payload.sku.startsWith('DROP') ? {cancel: true} : w;
    }";
    let (sub, _) = app.subscribe(&admin, offer(&sink.hook_url(), code)).await;
    app.publish(&admin, "seller-1", json!({"sku": "DROP-1"}))
        .await;
    app.publish(&admin, "seller-1", json!({"sku": "KEEP-1"}))
        .await;
    let deliveries = wait_for("both deliveries settle", || async {
        let all = app.deliveries_of(&admin, &sub).await;
        (all.len() == 2 && all.iter().all(|d| d["status"] != "pending")).then_some(all)
    })
    .await;
    assert_eq!(sink.hook_count(), 1, "only the kept one is sent");
    assert_eq!(sink.hooks()[0].json()["payload"]["sku"], "KEEP-1");
    let cancelled: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["status"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{deliveries:?}");
    let detail = app
        .delivery(&admin, cancelled[0]["id"].as_str().expect("id"))
        .await;
    assert_eq!(
        detail["lastError"], "cancelled by the subscription's transformation",
        "{detail}"
    );
    assert_eq!(
        detail["attempts"].as_array().map(Vec::len),
        Some(0),
        "{detail}"
    );
}

/// A transformation that loops forever, and one that reaches for the network: each attempt
/// fails with the reason in its log (nothing reaches the sink), and another subscription of
/// the same hub is delivered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_or_reaching_transformation_fails_its_attempt_and_the_hub_carries_on() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let bystander = Sink::start().await;
    let admin = app.admin_token().await;
    let loops = "function handler(w) { while (true) {} }";
    let reaches = format!(
        "function handler(w) {{ fetch('{}'); return w; }}",
        sink.hook_url()
    );
    let (looping, _) = app.subscribe(&admin, offer(&sink.hook_url(), loops)).await;
    let (reaching, _) = app
        .subscribe(&admin, offer(&sink.hook_url(), &reaches))
        .await;
    let (_plain, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": bystander.hook_url()}),
        )
        .await;
    for n in 0..3 {
        app.publish(&admin, "seller-1", json!({"sku": format!("SKU-{n}")}))
            .await;
    }
    wait_for("the bystander gets every event", || async {
        (bystander.hook_count() == 3).then_some(())
    })
    .await;
    for (sub, says) in [
        (&looping, "ran longer than its limit of 100 ms"),
        (&reaching, "fetch is not defined"),
    ] {
        let attempt = wait_for("each delivery's first attempt is logged", || async {
            let all = app.deliveries_of(&admin, sub).await;
            let first = all.first()?;
            let detail = app.delivery(&admin, first["id"].as_str()?).await;
            detail["attempts"].as_array()?.first().cloned()
        })
        .await;
        assert_eq!(attempt["errorClass"], "transform", "{attempt}");
        assert_eq!(attempt["succeeded"], false);
        let message = attempt["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(sink.hook_count(), 0, "neither transformation sent anything");
    let health = app.get("/healthz", "").await;
    assert_eq!(health.status, 200, "the hub is unharmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_is_compiled_when_set_and_try_it_shows_what_a_sample_becomes() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let refused = app
        .post(
            "/v3/webhooks/subscriptions",
            &admin,
            json!({"events": [offer(&sink.hook_url(), "function handler(w) { return w")]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "invalid_transform");
    assert_eq!(refused.body["error"]["field"], "events[0].transform");
    let listed = app.get("/v3/webhooks/subscriptions", &admin).await;
    assert_eq!(
        listed.body["events"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "nothing was created: {}",
        listed.body
    );

    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url()}),
        )
        .await;
    let path = format!("/v3/webhooks/subscriptions/{sub}");
    let no_handler = app
        .patch(
            &path,
            &admin,
            json!({"transform": "function other(w) { return w; }"}),
        )
        .await;
    assert_eq!(no_handler.status, 400, "{}", no_handler.body);
    assert_eq!(
        no_handler.body["error"]["message"],
        "the transformation defines no function handler(webhook)"
    );

    let tried = app
        .post(
            &format!("/api/v1/subscriptions/{sub}/transform/try"),
            &admin,
            json!({"transform": "function handler(w) { w.url += '?shape=slim'; w.payload = {type: w.payload.source.eventType}; return w; }"}),
        )
        .await;
    assert_eq!(tried.status, 200, "{}", tried.body);
    assert_eq!(tried.body["cancel"], false);
    assert_eq!(
        tried.body["webhook"]["payload"],
        json!({"type": "OFFER_UNPUBLISHED"})
    );
    assert_eq!(
        tried.body["webhook"]["url"],
        format!("{}?shape=slim", sink.hook_url())
    );
    assert_eq!(
        tried.body["given"]["payload"]["source"]["eventType"],
        "OFFER_UNPUBLISHED"
    );
    let failed = app
        .post(
            &format!("/api/v1/subscriptions/{sub}/transform/try"),
            &admin,
            json!({"transform": "function handler(w) { throw new Error('no sku here'); }"}),
        )
        .await;
    assert_eq!(failed.status, 400, "{}", failed.body);
    assert_eq!(failed.body["error"]["code"], "transform_failed");
    assert!(
        failed.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no sku here")),
        "{}",
        failed.body
    );
    assert_eq!(sink.hook_count(), 0, "trying sends nothing");

    // Set, then removed with null.
    let set = app
        .patch(
            &path,
            &admin,
            json!({"transform": "function handler(w) { return w; }"}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["transform"], "function handler(w) { return w; }");
    let removed = app.patch(&path, &admin, json!({"transform": null})).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.body.get("transform").is_none(), "{}", removed.body);
}
