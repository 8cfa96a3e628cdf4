//! Latest state only (issue 22): a `coalesce` subscription's pending delivery of a state event is
//! superseded by a newer one for the same resource (visible, never silently dropped), and every
//! envelope carries a `resourceVersion` that grows with each event of a resource.

use jiff::SignedDuration;
use serde_json::{Value, json};

use crate::helpers::*;

fn inventory(sku: &str, quantity: u32) -> Value {
    json!({"eventType": "INVENTORY_OOS", "partnerId": "seller-1",
           "resource": {"type": "sku", "id": sku},
           "payload": {"sku": sku, "quantity": quantity}})
}

fn version(hook: &Received) -> i64 {
    hook.json()["source"]["resourceVersion"]
        .as_i64()
        .expect("resourceVersion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_inventory_events_while_the_subscriber_is_down_deliver_the_last() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "INVENTORY_OOS", "resourceName": "INVENTORY",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url(), "coalesce": true}),
        )
        .await;
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(read.body["coalesce"], true, "{}", read.body);
    // A subscriber of the same events without coalescing, to compare with.
    let every = Sink::start().await;
    let (_all, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "INVENTORY_OOS", "resourceName": "INVENTORY",
                   "partnerId": "seller-1", "eventUrl": every.hook_url()}),
        )
        .await;

    // The subscriber is down: it answers 503 to everything until told otherwise.
    sink.answer_with(&[503; 200]);
    let mut event_ids = Vec::new();
    for n in 0..100 {
        let published = app
            .post("/api/v1/events", &admin, inventory("SKU-1", 100 - n))
            .await;
        assert_eq!(published.status, 202, "{}", published.body);
        event_ids.push(published.body["eventId"].as_str().expect("id").to_string());
    }
    let deliveries = wait_for("all but one superseded", || async {
        let all = app.deliveries_of(&admin, &sub).await;
        let superseded = all.iter().filter(|d| d["status"] == "superseded").count();
        let busy = all.iter().any(|d| {
            d["status"] == "pending" && d["attempts"] == 0 && d["eventId"] != event_ids[99]
        });
        (all.len() == 100 && superseded == 99 && !busy).then_some(all)
    })
    .await;
    let pending: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{deliveries:?}");
    assert_eq!(
        pending[0]["eventId"], event_ids[99],
        "the newest is the one kept"
    );
    let superseded = deliveries
        .iter()
        .find(|d| d["status"] == "superseded")
        .expect("a superseded delivery");
    let detail = app
        .delivery(&admin, superseded["id"].as_str().expect("id"))
        .await;
    assert!(
        detail["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("superseded")),
        "{detail}"
    );

    // The subscriber is back: only the newest state is delivered, once.
    sink.state.script.lock().unwrap().clear();
    app.advance(SignedDuration::from_mins(6));
    wait_for("the newest state is delivered", || async {
        let all = app.deliveries_of(&admin, &sub).await;
        all.iter().any(|d| d["status"] == "succeeded").then_some(())
    })
    .await;
    let hooks = sink.hooks();
    let delivered = hooks.last().expect("a delivery");
    assert_eq!(delivered.json()["payload"]["quantity"], 1, "the last state");
    let versions: Vec<i64> = hooks.iter().map(version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "what reached the subscriber came in order: {versions:?}"
    );
    let succeeded = app
        .deliveries_of(&admin, &sub)
        .await
        .into_iter()
        .filter(|d| d["status"] == "succeeded")
        .count();
    assert_eq!(succeeded, 1);

    // Without coalescing every state is delivered, each resourceVersion larger than the last.
    wait_for("the other subscriber gets all hundred", || async {
        (every.hook_count() == 100).then_some(())
    })
    .await;
    let mut all_versions: Vec<(i64, u64)> = every
        .hooks()
        .iter()
        .map(|h| {
            (
                version(h),
                h.json()["payload"]["quantity"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    all_versions.sort();
    assert!(
        all_versions
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 > w[1].1),
        "a later event of the resource has a larger resourceVersion: {all_versions:?}"
    );
    assert_eq!(
        all_versions.last().map(|v| v.0),
        Some(version(delivered)),
        "the coalesced subscriber got the latest version"
    );
}

/// An order's creation is news, not state: a coalescing subscriber of order events keeps it,
/// while its status changes supersede each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_state_events_are_superseded() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let mut subs = Vec::new();
    for event_type in ["order.created", "order.updated"] {
        let (sub, _) = app
            .subscribe(
                &admin,
                json!({"eventType": event_type, "resourceName": "ORDER", "partnerId": "seller-1",
                       "eventUrl": sink.hook_url(), "coalesce": true}),
            )
            .await;
        subs.push(sub);
    }
    sink.answer_with(&[503; 50]);
    let order = |event_type: &str, status: &str| {
        json!({"eventType": event_type, "partnerId": "seller-1",
               "resource": {"type": "order", "id": "PO-7"},
               "payload": {"marketplace": "walmart", "resource": {"type": "order", "id": "PO-7"},
                           "status": status, "nativeEventType": "PO_CREATED"}})
    };
    for (event_type, status) in [
        ("order.created", "Created"),
        ("order.created", "Created"),
        ("order.updated", "Acknowledged"),
        ("order.updated", "Shipped"),
    ] {
        let published = app
            .post("/api/v1/events", &admin, order(event_type, status))
            .await;
        assert_eq!(published.status, 202, "{}", published.body);
    }
    let created = wait_for("the creations are attempted", || async {
        let all = app.deliveries_of(&admin, &subs[0]).await;
        (all.len() == 2 && all.iter().all(|d| d["attempts"] != 0)).then_some(all)
    })
    .await;
    assert!(
        created.iter().all(|d| d["status"] == "pending"),
        "creations are never superseded: {created:?}"
    );
    let updated = wait_for("one status change supersedes the other", || async {
        let all = app.deliveries_of(&admin, &subs[1]).await;
        (all.len() == 2 && all.iter().any(|d| d["status"] == "superseded")).then_some(all)
    })
    .await;
    assert_eq!(
        updated
            .iter()
            .filter(|d| d["status"] == "superseded")
            .count(),
        1,
        "{updated:?}"
    );
}

/// Coalescing under per-resource ordering: the resource's deliveries still go one at a time,
/// and the one that waits behind a failing attempt is the newest state, not a queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_keeps_per_resource_ordering() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "INVENTORY_OOS", "resourceName": "INVENTORY",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url(),
                   "coalesce": true, "ordering": "resource"}),
        )
        .await;
    sink.answer_with(&[503; 20]);
    for n in 0..5 {
        let published = app
            .post("/api/v1/events", &admin, inventory("SKU-9", 10 - n))
            .await;
        assert_eq!(published.status, 202, "{}", published.body);
    }
    let all = wait_for(
        "the first attempt failed and the rest collapsed",
        || async {
            let all = app.deliveries_of(&admin, &sub).await;
            let superseded = all.iter().filter(|d| d["status"] == "superseded").count();
            (all.len() == 5 && superseded == 4).then_some(all)
        },
    )
    .await;
    let pending: Vec<&Value> = all.iter().filter(|d| d["status"] == "pending").collect();
    assert_eq!(pending.len(), 1, "{all:?}");
    sink.state.script.lock().unwrap().clear();
    app.advance(SignedDuration::from_mins(6));
    wait_for("the newest state is delivered", || async {
        let all = app.deliveries_of(&admin, &sub).await;
        all.iter().any(|d| d["status"] == "succeeded").then_some(())
    })
    .await;
    let hooks = sink.hooks();
    assert_eq!(
        hooks
            .last()
            .map(|h| h.json()["payload"]["quantity"].clone()),
        Some(json!(6)),
        "the last state arrived last"
    );
    let versions: Vec<i64> = hooks.iter().map(version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "one at a time, in the resource's order: {versions:?}"
    );
}
