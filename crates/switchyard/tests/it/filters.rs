//! Content filters (issue 22's first part): a subscription's `filter` is checked when set (a 400
//! naming the path inside it), shown in reads, applied at fan-out against the envelope the
//! subscriber would get (a rejected event makes no delivery), and removed with `null`.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_subscription_gets_only_the_events_its_filter_matches() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;

    let refused = app
        .post(
            "/v3/webhooks/subscriptions",
            &admin,
            json!({"events": [{"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                               "partnerId": "seller-1", "eventUrl": sink.hook_url(),
                               "filter": {"payload.sku": {"$startsWith": 7}}}]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "invalid_field");
    assert_eq!(
        refused.body["error"]["field"],
        "events[0].filter.payload.sku.$startsWith"
    );

    let filter = json!({"$and": [{"payload.sku": {"$startsWith": "KEEP"}},
                                 {"source.eventType": "OFFER_UNPUBLISHED"}]});
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url(), "filter": filter}),
        )
        .await;
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(read.body["filter"], filter, "{}", read.body);

    let publish = |sku: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.post(
                "/api/v1/events",
                &admin,
                json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "seller-1",
                       "payload": {"sku": sku}}),
            )
            .await
        }
    };
    let kept = publish("KEEP-1").await;
    assert_eq!(kept.status, 202, "{}", kept.body);
    assert_eq!(kept.body["deliveries"], 1);
    let dropped = publish("DROP-1").await;
    assert_eq!(dropped.status, 202, "{}", dropped.body);
    assert_eq!(
        dropped.body["deliveries"], 0,
        "a rejected event makes no delivery"
    );
    wait_for("the kept event is delivered", || async {
        (sink.hook_count() == 1).then_some(())
    })
    .await;
    assert!(sink.hooks()[0].json()["payload"]["sku"] == "KEEP-1");

    // A bad change is refused and changes nothing; `null` removes the filter.
    let bad = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{sub}"),
            &admin,
            json!({"filter": {"$gt": 1}}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "filter.$gt");
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(read.body["filter"], filter);
    let removed = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{sub}"),
            &admin,
            json!({"filter": null}),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.body.get("filter").is_none(), "{}", removed.body);
    let now_kept = publish("DROP-2").await;
    assert_eq!(now_kept.body["deliveries"], 1);
    wait_for("without a filter every event is delivered", || async {
        (sink.hook_count() == 2).then_some(())
    })
    .await;
}

/// The console shows a webhook's filter, edits it (empty removes it), and its test says whether
/// the sample passes; so does the API's test notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_test_notification_show_a_filter() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url(),
                   "filter": {"source.eventType": "OFFER_UNPUBLISHED"}}),
        )
        .await;
    let tested = app
        .post(
            "/v3/webhooks/test",
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url(),
                   "filter": {"payload.nothing": {"$exists": true}}}),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert_eq!(tested.body["filterMatches"], false);
    assert_eq!(tested.body["message"], "Eventurl successfully validated");

    let mut browser = crate::console::Browser::new(&app);
    assert_eq!(browser.sign_in(ADMIN_ID, ADMIN_SECRET).await, 303);
    let (_, page, _) = browser.get(&format!("/console/webhooks/{sub}")).await;
    assert!(
        page.contains("OFFER_UNPUBLISHED&quot;}") || page.contains("OFFER_UNPUBLISHED\"}"),
        "{page}"
    );
    let csrf = crate::console::Browser::csrf(&page);
    let (_, page, _) = browser
        .post(&format!("/console/webhooks/{sub}/test"), &[("csrf", &csrf)])
        .await;
    assert!(page.contains("The sample passes this webhook"), "{page}");

    // An edit that is not JSON is refused; an empty field removes the filter.
    let (status, page, _) = browser
        .post(
            &format!("/console/webhooks/{sub}"),
            &[
                ("csrf", &csrf),
                ("event_url", &sink.hook_url()),
                ("filter", "{nope"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    let (status, _, _) = browser
        .post(
            &format!("/console/webhooks/{sub}"),
            &[
                ("csrf", &csrf),
                ("event_url", &sink.hook_url()),
                ("filter", ""),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert!(read.body.get("filter").is_none(), "{}", read.body);
}

/// A topic's subscriber filters on the marketplace's own payload (`payload.native`), which a
/// received event carries once: the filter at fan-out sees it whole, and so does the delivery.
#[tokio::test]
async fn a_topic_filter_on_the_native_payload_sees_the_webhook_whole() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let (_, url) = source(
        &app,
        &admin,
        json!({"kind": "walmart", "partners": ["seller-1"],
               "secrets": [{"id": "1", "value": "walmart-secret"}]}),
    )
    .await;
    app.subscribe(
        &admin,
        json!({"eventType": "order.created", "resourceName": "ORDER", "partnerId": "seller-1",
               "eventUrl": sink.hook_url(),
               "filter": {"payload.native.payload.purchaseOrderId": {"$startsWith": "KEEP"}}}),
    )
    .await;
    let now = {
        use switchyard_core::Clock;
        app.clock.now()
    };
    let webhook = |order: &str, id: &str| {
        sign(
            switchyard_marketplaces::Kind::Walmart,
            "walmart-secret",
            json!({"keyVersion": "1"}),
            "PO_CREATED",
            order,
            id,
            now,
        )
    };
    let (dropped, kept) = (webhook("DROP-1", "wm-1"), webhook("KEEP-1", "wm-2"));
    for signed in [&dropped, &kept] {
        let answer = send(&app, &url, signed).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    eventually("the kept order's delivery", || async {
        sink.hook_count() >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let hooks = sink.hooks();
    assert_eq!(hooks.len(), 1, "the other order was filtered out");
    let body = hooks[0].json();
    assert_eq!(body["source"]["eventType"], "order.created");
    let sent: serde_json::Value = serde_json::from_slice(&kept.body).expect("JSON");
    assert_eq!(body["payload"]["native"], sent, "the native payload, whole");
}
