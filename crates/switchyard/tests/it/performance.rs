//! Seller performance notifications: order facts in (posted, or from received order events),
//! `SELLER_PERFORMANCE_NOTIFICATIONS` out, on the schedule, once per run.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use switchyard_core::Clock;
use switchyard_core::model::Access;
use switchyard_core::schedule::{PerformanceKind, PerformanceSchedule, pacific};
use switchyard_marketplaces::Kind;
use switchyard_server::performance::{RunsDone, run_due};

use crate::helpers::*;

fn pt_date(t: Timestamp, days: i64) -> String {
    let date = t.to_zoned(pacific().clone()).date();
    date.checked_add(jiff::Span::new().days(days))
        .expect("date")
        .to_string()
}

fn alarm<'a>(payload: &'a Value, name: &str) -> Option<&'a Value> {
    payload["enNotification"]["alarms"]
        .as_array()?
        .iter()
        .find(|a| a["alarmType"] == name)
}

/// The notification types of what the sink got, in order.
fn types_received(sink: &Sink) -> Vec<String> {
    sink.hooks()
        .iter()
        .map(|h| h.json()["payload"]["notificationType"].to_string())
        .collect()
}

#[tokio::test]
async fn alarms_are_sent_at_6am_pacific_once_per_run_and_once_after_an_outage() {
    let app = spawn_app_with(|s| s.performance_interval = Duration::from_millis(50)).await;
    // Tuesday 2026-11-24, 04:00 Pacific: the first run is that day's, and the three-day outage
    // below ends on Friday, before Monday's REPORT (the week's outage after it crosses one).
    app.clock
        .set("2026-11-24T12:00:00Z".parse().expect("instant"));
    let sink = Sink::start().await;
    let token = app
        .partner_client(
            "seller-app",
            &["seller-1"],
            &[("ORDER", Access::FullAccess), ("FEEDS", Access::FullAccess)],
        )
        .await;
    let (sub, _) = app
        .subscribe(
            &token,
            json!({"eventType": "SELLER_PERFORMANCE_NOTIFICATIONS", "resourceName": "FEEDS",
                   "eventUrl": sink.hook_url()}),
        )
        .await;
    let schedule = PerformanceSchedule::new();
    let run = schedule.next_run_after(app.clock.now(), PerformanceKind::Alarms);
    // PO-1 is due to ship on the run's day, PO-2 two days before it (unshipped, late), PO-3 is
    // shipped with tracking: no alarm.
    let ordered = |po: &str, ship_by: String| {
        json!({"fact": "ordered", "poNumber": po, "marketplace": "amazon",
               "orderedAt": run - SignedDuration::from_hours(72), "shipBy": ship_by})
    };
    let facts = app
        .post(
            "/api/v1/orders/facts",
            &token,
            json!({"facts": [
                ordered("PO-1", pt_date(run, 0)),
                ordered("PO-2", pt_date(run, -2)),
                ordered("PO-3", pt_date(run, 0)),
                {"fact": "shipped", "poNumber": "PO-3", "marketplace": "amazon", "carrier": "UPS",
                 "trackingNumber": "1Z999AA10123456784", "shippedAt": run - SignedDuration::from_hours(10)},
                {"fact": "originScan", "poNumber": "PO-3", "marketplace": "amazon",
                 "scannedAt": run - SignedDuration::from_hours(8)},
            ]}),
        )
        .await;
    assert_eq!(facts.status, 202, "{}", facts.body);
    assert_eq!(facts.body["applied"], 5);

    // Before 6:00 AM PT nothing is sent.
    app.clock.set(run - SignedDuration::from_mins(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 0, "nothing before the run");

    // At 6:00 PT the ALARMS notification is delivered, in the seed's shape.
    app.clock.set(run + SignedDuration::from_secs(30));
    app.advance(SignedDuration::ZERO);
    wait_for("the ALARMS notification", || async {
        (sink.hook_count() == 1).then_some(())
    })
    .await;
    let delivered = sink.hooks()[0].json();
    let payload = &delivered["payload"];
    assert_eq!(
        delivered["source"]["eventType"],
        "SELLER_PERFORMANCE_NOTIFICATIONS"
    );
    assert_eq!(payload["notificationType"], "ALARMS");
    assert_eq!(payload["marketplace"], "amazon");
    assert_eq!(payload["partnerId"], "seller-1");
    let due = alarm(payload, "ShippingDueToday").expect("ShippingDueToday");
    assert_eq!(due["orderCount"], 1);
    assert_eq!(due["poNumbers"], json!(["PO-1"]));
    let late = alarm(payload, "UnshippedOrders").expect("UnshippedOrders");
    assert_eq!(late["poNumbers"], json!(["PO-2"]));
    assert!(
        alarm(payload, "LateOriginScan").is_none(),
        "no alarm with zero orders"
    );
    let valid =
        switchyard_core::catalog::validate_payload("SELLER_PERFORMANCE_NOTIFICATIONS", payload);
    assert!(valid.is_ok(), "{valid:?}");

    // The same run computed again, here or on another node, stores nothing new.
    let again = run_due(&app.state, &RunsDone::default())
        .await
        .expect("run");
    let other_node = run_due(&app.state, &RunsDone::default())
        .await
        .expect("run");
    assert_eq!((again, other_node), (0, 0));
    app.clock.set(run + SignedDuration::from_hours(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 1, "one run, one notification");

    // Down for three days: the missed runs come as one, the latest.
    let friday = run + SignedDuration::from_hours(24 * 3 + 1);
    assert_eq!(
        friday.to_zoned(pacific().clone()).weekday(),
        jiff::civil::Weekday::Friday
    );
    app.clock.set(friday);
    app.advance(SignedDuration::ZERO);
    wait_for("the catch-up run", || async {
        (sink.hook_count() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 2, "not one per missed day");
    let caught_up = sink.hooks()[1].json();
    let late = alarm(&caught_up["payload"], "UnshippedOrders").expect("UnshippedOrders");
    assert_eq!(
        late["orderCount"], 2,
        "both unshipped orders are late by then"
    );
    assert_eq!(types_received(&sink), [r#""ALARMS""#, r#""ALARMS""#]);

    // Down for a week, across Monday 5:00 AM PT: one ALARMS for the missed days and the one
    // REPORT of that Monday, each once.
    app.clock.set(friday + SignedDuration::from_hours(24 * 7));
    app.advance(SignedDuration::ZERO);
    wait_for("the catch-up runs of the week", || async {
        (sink.hook_count() == 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut caught_up = types_received(&sink)[2..].to_vec();
    caught_up.sort();
    assert_eq!(caught_up, [r#""ALARMS""#, r#""REPORT""#]);

    // The preview computes what the scheduler sent, without sending.
    let token = app.token("seller-app", "seller-app-secret").await;
    let preview = app
        .post(
            "/api/v1/performance/run",
            &token,
            json!({"notificationType": "ALARMS", "asOf": run, "marketplace": "amazon"}),
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(preview.body["payload"], *payload);
    assert_eq!(sink.hook_count(), 4, "a preview sends nothing");
    let health = app
        .get(&format!("/api/v1/subscriptions/{sub}/health"), &token)
        .await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn order_facts_are_validated_all_or_nothing_and_received_orders_count_too() {
    let app = spawn_app().await;
    let token = app
        .partner_client(
            "seller-app",
            &["seller-1"],
            &[("ORDER", Access::FullAccess)],
        )
        .await;
    let viewer = app
        .partner_client("viewer", &["seller-1"], &[("ORDER", Access::ViewOnly)])
        .await;
    let now = app.clock.now();
    let shipped = |po: &str, tracking: &str| {
        json!({"fact": "shipped", "poNumber": po, "marketplace": "walmart", "carrier": "UPS",
               "trackingNumber": tracking, "shippedAt": now})
    };
    let refused = app
        .post(
            "/api/v1/orders/facts",
            &token,
            json!({"facts": [shipped("PO-1", "1Z999AA10123456784"), shipped("PO-2", "")]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["field"], "facts[1].trackingNumber");
    let kept = app
        .state
        .store
        .unscoped()
        .partner_orders("seller-1", Timestamp::UNIX_EPOCH)
        .await
        .expect("orders");
    assert!(kept.is_empty(), "the valid first fact was not kept either");
    for bad in [
        json!({"facts": []}),
        json!({"facts": [{"fact": "teleported", "poNumber": "PO-1", "marketplace": "walmart"}]}),
        json!({"facts": [shipped("PO-1", "1Z999AA10123456784")], "extra": true}),
        json!({"partnerId": "someone-else", "facts": [shipped("PO-1", "1Z999AA10123456784")]}),
    ] {
        let answer = app.post("/api/v1/orders/facts", &token, bad.clone()).await;
        assert!(
            matches!(answer.status, 400 | 403),
            "{bad}: {} {}",
            answer.status,
            answer.body
        );
        assert!(answer.body["error"]["code"].is_string());
    }
    let read_only = app
        .post(
            "/api/v1/orders/facts",
            &viewer,
            json!({"facts": [shipped("PO-1", "1Z999AA10123456784")]}),
        )
        .await;
    assert_eq!(read_only.status, 403, "view_only cannot post facts");
    // The report covers the 30 days before the as-of date: two days on, today's orders count.
    let report = |marketplace: &str| {
        json!({"notificationType": "REPORT", "marketplace": marketplace,
               "asOf": now + SignedDuration::from_hours(48)})
    };
    let nothing = app
        .post("/api/v1/performance/run", &token, report("walmart"))
        .await;
    assert_eq!(nothing.status, 200);
    assert_eq!(
        nothing.body["payload"],
        Value::Null,
        "the refused batch left nothing"
    );

    // A Walmart order received through a source becomes an order the report counts.
    let admin = app.admin_token().await;
    let (_, url) = source(
        &app,
        &admin,
        json!({"kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "walmart-secret"}]}),
    )
    .await;
    let po = sign(
        Kind::Walmart,
        "walmart-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-77",
        "wm-evt-77",
        now,
    );
    assert_eq!(send(&app, &url, &po).await.status, 200);
    let report = eventually_report(&app, &token, report("walmart")).await;
    let metrics = report["enNotification"]["metrics"]
        .as_array()
        .expect("metrics");
    let cancellations = metrics
        .iter()
        .find(|m| m["kpi"] == "Cancellations")
        .expect("the received order counts in Cancellations");
    assert_eq!(cancellations["score"], 0.0);
    assert_eq!(report["marketplace"], "walmart");
}

/// The order facts of a received event are kept off the acknowledgment path: wait for them.
async fn eventually_report(app: &TestApp, token: &str, request: Value) -> Value {
    wait_for("the received order in the report", || async {
        let answer = app
            .post("/api/v1/performance/run", token, request.clone())
            .await;
        (answer.status == 200 && !answer.body["payload"].is_null())
            .then(|| answer.body["payload"].clone())
    })
    .await
}
