//! Seller performance ALARMS and REPORT computed from fixed order histories: every alarm type and
//! KPI, the 1000 PO-number cap, zero-count omission, risk and trend edges, and the payloads
//! validated against the catalog's schema of `SELLER_PERFORMANCE_NOTIFICATIONS`.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use serde_json::{Value, json};
use switchyard_core::CoreError;
use switchyard_core::catalog::{
    seller_performance_alarms_sample, seller_performance_report_sample, validate_payload,
};
use switchyard_core::performance::{
    CancelledBy, Kpi, OrderFact, OrderFacts, PO_NUMBER_MAX_COUNT, Ratio, RiskLevel, Trend, alarms,
    kpi_ratios, report,
};

const EVENT: &str = "SELLER_PERFORMANCE_NOTIFICATIONS";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn order(po: &str) -> OrderFacts {
    OrderFacts::new("p1", "walmart", po)
}

fn fact(v: Value) -> OrderFact {
    OrderFact::from_json(&v).unwrap()
}

fn ship(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    let mp = o.marketplace.clone();
    o.apply(&fact(
        json!({"fact": "shipped", "poNumber": po, "marketplace": mp,
                         "carrier": "UPS", "trackingNumber": "1Z999AA10123456784",
                         "shippedAt": at}),
    ))
    .unwrap();
}

fn scan(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    let mp = o.marketplace.clone();
    o.apply(&fact(
        json!({"fact": "originScan", "poNumber": po, "marketplace": mp, "scannedAt": at}),
    ))
    .unwrap();
}

fn deliver(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    let mp = o.marketplace.clone();
    o.apply(&fact(
        json!({"fact": "delivered", "poNumber": po, "marketplace": mp, "deliveredAt": at}),
    ))
    .unwrap();
}

fn cancel(o: &mut OrderFacts, at: &str, by: CancelledBy) {
    o.cancelled_at = Some(ts(at));
    o.cancelled_by = Some(by);
}

fn alarm<'a>(payload: &'a Value, alarm_type: &str) -> Option<&'a Value> {
    payload["enNotification"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarmType"] == alarm_type)
}

fn pos(entry: &Value) -> Vec<&str> {
    entry["poNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------------------------
// Alarms. As of Tuesday 2026-03-10 06:00 PDT (13:00Z): "today" is 2026-03-10 PT.
// ---------------------------------------------------------------------------------------------

const ALARMS_AT: &str = "2026-03-10T13:00:00Z";

fn open_order(po: &str, ship_by: Date) -> OrderFacts {
    let mut o = order(po);
    o.ordered_at = Some(ts("2026-03-01T18:00:00Z"));
    o.ship_by = Some(ship_by);
    o
}

fn alarm_history() -> Vec<OrderFacts> {
    let mut orders = Vec::new();

    // LateOriginScan.
    let mut late = order("LATE-1");
    ship(&mut late, "2026-03-07T12:00:00Z"); // 73 h before, never scanned
    orders.push(late);
    let mut edge = order("LATE-EDGE");
    ship(&mut edge, "2026-03-08T13:00:00Z"); // exactly 48 h before: late
    orders.push(edge);
    let mut young = order("SHIP-47H");
    ship(&mut young, "2026-03-08T14:00:00Z"); // 47 h: not yet
    orders.push(young);
    let mut scanned = order("SHIP-SCANNED");
    ship(&mut scanned, "2026-03-07T12:00:00Z");
    scan(&mut scanned, "2026-03-09T20:00:00Z"); // late scan, but scanned now
    orders.push(scanned);
    let mut delivered = order("SHIP-DELIVERED");
    ship(&mut delivered, "2026-03-07T12:00:00Z");
    deliver(&mut delivered, "2026-03-09T20:00:00Z");
    orders.push(delivered);
    let mut ancient = order("SHIP-OLD");
    ship(&mut ancient, "2026-02-01T12:00:00Z"); // beyond the 30-day lookback
    orders.push(ancient);
    let mut scan_later = order("LATE-SCAN-AFTER-ASOF");
    ship(&mut scan_later, "2026-03-07T12:00:00Z");
    scan(&mut scan_later, "2026-03-10T14:00:00Z"); // after as_of: not known yet
    orders.push(scan_later);

    // AutoCancelledYday: auto-cancelled on 2026-03-09 PT.
    let mut yday = open_order("AUTO-YDAY", date(2026, 3, 4));
    cancel(&mut yday, "2026-03-09T20:00:00Z", CancelledBy::Auto);
    orders.push(yday);
    let mut late_evening = open_order("AUTO-YDAY-2330PT", date(2026, 3, 4));
    cancel(
        &mut late_evening,
        "2026-03-10T06:30:00Z", // 2026-03-09 23:30 PDT
        CancelledBy::Auto,
    );
    orders.push(late_evening);
    let mut today = open_order("AUTO-TODAY", date(2026, 3, 5));
    cancel(&mut today, "2026-03-10T08:00:00Z", CancelledBy::Auto); // 01:00 PDT today
    orders.push(today);
    let mut by_seller = open_order("SELLER-YDAY", date(2026, 3, 4));
    cancel(&mut by_seller, "2026-03-09T20:00:00Z", CancelledBy::Seller);
    orders.push(by_seller);

    // AutoCancelledWarning: ESD + 4 days = today.
    orders.push(open_order("WARN-1", date(2026, 3, 6)));
    // The marketplace's own deadline wins over the default rule, and over ShippingDueToday.
    let mut own = open_order("WARN-OWN-DEADLINE", date(2026, 3, 10));
    own.auto_cancel_on = Some(date(2026, 3, 10));
    orders.push(own);

    // ShippingDueToday.
    orders.push(open_order("DUE-1", date(2026, 3, 10)));
    let mut shipped_after = open_order("DUE-SHIPPED-AFTER-ASOF", date(2026, 3, 10));
    ship(&mut shipped_after, "2026-03-10T20:00:00Z");
    orders.push(shipped_after);
    let mut shipped_today = open_order("SHIPPED-BEFORE-ASOF", date(2026, 3, 10));
    ship(&mut shipped_today, "2026-03-10T12:00:00Z");
    orders.push(shipped_today);

    // UnshippedOrders: past ESD, not at the warning day.
    orders.push(open_order("UNSHIPPED-1", date(2026, 3, 9)));
    orders.push(open_order("UNSHIPPED-PAST-DEADLINE", date(2026, 3, 1)));
    let mut cancelled = open_order("CANCELLED-UNSHIPPED", date(2026, 3, 9));
    cancel(
        &mut cancelled,
        "2026-03-09T10:00:00Z",
        CancelledBy::Customer,
    );
    orders.push(cancelled);

    // In no alarm.
    orders.push(open_order("FUTURE-ESD", date(2026, 3, 11)));
    let mut no_esd = order("NO-ESD");
    no_esd.ordered_at = Some(ts("2026-03-01T18:00:00Z"));
    orders.push(no_esd);
    let mut other_partner = open_order("OTHER-PARTNER", date(2026, 3, 10));
    other_partner.partner_id = "p2".into();
    orders.push(other_partner);
    orders
}

#[test]
fn every_alarm_type_from_a_fixed_history() {
    let payload = alarms("p1", None, &alarm_history(), ts(ALARMS_AT)).unwrap();
    validate_payload(EVENT, &payload).unwrap();

    let late = alarm(&payload, "LateOriginScan").unwrap();
    assert_eq!(late["orderCount"], 3);
    assert_eq!(
        pos(late),
        ["LATE-1", "LATE-SCAN-AFTER-ASOF", "LATE-EDGE"],
        "oldest shipment first, then PO number"
    );

    let yday = alarm(&payload, "AutoCancelledYday").unwrap();
    assert_eq!(pos(yday), ["AUTO-YDAY", "AUTO-YDAY-2330PT"]);
    assert_eq!(yday["orderCount"], 2);

    let warn = alarm(&payload, "AutoCancelledWarning").unwrap();
    assert_eq!(pos(warn), ["WARN-1", "WARN-OWN-DEADLINE"]);

    let due = alarm(&payload, "ShippingDueToday").unwrap();
    assert_eq!(pos(due), ["DUE-1", "DUE-SHIPPED-AFTER-ASOF"]);

    let unshipped = alarm(&payload, "UnshippedOrders").unwrap();
    assert_eq!(pos(unshipped), ["UNSHIPPED-PAST-DEADLINE", "UNSHIPPED-1"]);

    assert_eq!(
        payload["enNotification"]["summary"],
        "We have identified 11 orders that need your immediate attention."
    );
    assert_eq!(payload["lastRefreshTs"], "2026-03-10 13:00:00 UTC");
    assert_eq!(payload["partnerId"], "p1");
}

#[test]
fn alarm_payload_has_the_seed_shape_descriptions_and_actions() {
    let payload = alarms("p1", None, &alarm_history(), ts(ALARMS_AT)).unwrap();
    let sample = seller_performance_alarms_sample();
    assert_eq!(keys(&payload), keys(&sample));
    assert_eq!(
        keys(&payload["enNotification"]),
        keys(&sample["enNotification"])
    );
    for field in [
        "ordersApiUrl",
        "moreInfoLink",
        "supportedLanguages",
        "notificationType",
    ] {
        assert_eq!(payload[field], sample[field], "{field}");
    }
    assert_eq!(
        payload["enNotification"]["message"],
        sample["enNotification"]["message"]
    );
    assert_eq!(payload["enNotification"]["poNumberMaxCount"], 1000);
    let ours = payload["enNotification"]["alarms"].as_array().unwrap();
    let seed = sample["enNotification"]["alarms"].as_array().unwrap();
    assert_eq!(ours.len(), 5);
    for (o, s) in ours.iter().zip(seed) {
        assert_eq!(o["alarmType"], s["alarmType"], "the seed's order");
        assert_eq!(o["description"], s["description"]);
        assert_eq!(o["action"], s["action"]);
        assert_eq!(keys(o), keys(s));
    }
}

#[test]
fn alarms_with_no_orders_are_left_out_and_nothing_is_sent_when_all_are_empty() {
    let orders = vec![open_order("DUE-1", date(2026, 3, 10))];
    let payload = alarms("p1", None, &orders, ts(ALARMS_AT)).unwrap();
    validate_payload(EVENT, &payload).unwrap();
    let list = payload["enNotification"]["alarms"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["alarmType"], "ShippingDueToday");
    assert_eq!(
        payload["enNotification"]["summary"],
        "We have identified 1 order that needs your immediate attention."
    );

    assert_eq!(alarms("p1", None, &[], ts(ALARMS_AT)), None);
    let calm = vec![open_order("LATER", date(2026, 3, 12))];
    assert_eq!(alarms("p1", None, &calm, ts(ALARMS_AT)), None);
    assert_eq!(
        alarms("p2", None, &orders, ts(ALARMS_AT)),
        None,
        "other partner"
    );
}

#[test]
fn po_numbers_are_capped_at_1000_and_order_count_is_complete() {
    let orders: Vec<OrderFacts> = (0..1500)
        .map(|i| open_order(&format!("PO{i:05}"), date(2026, 3, 10)))
        .collect();
    let payload = alarms("p1", None, &orders, ts(ALARMS_AT)).unwrap();
    validate_payload(EVENT, &payload).unwrap();
    let due = alarm(&payload, "ShippingDueToday").unwrap();
    assert_eq!(due["orderCount"], 1500);
    let listed = pos(due);
    assert_eq!(listed.len(), PO_NUMBER_MAX_COUNT);
    assert_eq!(listed.first(), Some(&"PO00000"));
    assert_eq!(listed.last(), Some(&"PO00999"));
    assert_eq!(
        payload["enNotification"]["summary"],
        "We have identified 1500 orders that need your immediate attention."
    );
}

#[test]
fn other_marketplaces_get_the_same_alarms_with_their_name() {
    let mut amazon = OrderFacts::new("p1", "amazon", "113-1234567-1234567");
    amazon.ship_by = Some(date(2026, 3, 10));
    let mut ebay = OrderFacts::new("p1", "ebay", "12-34567-89012");
    ebay.ship_by = Some(date(2026, 3, 9));
    let walmart = open_order("WM-1", date(2026, 3, 10));
    let orders = vec![amazon, ebay, walmart];

    let payload = alarms("p1", Some("amazon"), &orders, ts(ALARMS_AT)).unwrap();
    validate_payload(EVENT, &payload).unwrap();
    assert_eq!(payload["marketplace"], "amazon");
    assert!(
        payload.get("ordersApiUrl").is_none(),
        "Walmart's API does not hold it"
    );
    assert_eq!(
        pos(alarm(&payload, "ShippingDueToday").unwrap()),
        ["113-1234567-1234567"]
    );
    assert!(alarm(&payload, "UnshippedOrders").is_none());

    let all = alarms("p1", None, &orders, ts(ALARMS_AT)).unwrap();
    validate_payload(EVENT, &all).unwrap();
    assert!(all.get("marketplace").is_none());
    assert_eq!(alarm(&all, "ShippingDueToday").unwrap()["orderCount"], 2);
    assert_eq!(alarm(&all, "UnshippedOrders").unwrap()["orderCount"], 1);
}

// ---------------------------------------------------------------------------------------------
// Report. As of Monday 2026-03-09 05:00 PDT (12:00Z). Window: PT days 2026-02-07 .. 2026-03-08;
// the previous report (as of 2026-02-07 05:00 PST) covered 2026-01-08 .. 2026-02-06.
// ---------------------------------------------------------------------------------------------

const REPORT_AT: &str = "2026-03-09T12:00:00Z";
const IN_WINDOW: &str = "2026-02-20T18:00:00Z";
const IN_PREVIOUS: &str = "2026-01-20T18:00:00Z";

fn delivered_order(po: &str, at: &str, edd: Date) -> OrderFacts {
    let mut o = order(po);
    ship(&mut o, "2026-01-02T18:00:00Z");
    scan(&mut o, "2026-01-03T18:00:00Z");
    deliver(&mut o, at);
    o.estimated_delivery = Some(edd);
    o
}

fn metric<'a>(payload: &'a Value, kpi: &str) -> Option<&'a Value> {
    payload["enNotification"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kpi"] == kpi)
}

#[test]
fn on_time_delivery() {
    let mut orders = Vec::new();
    // Current: 9 on time (one of them delivered on its EDD, late in the PT evening), 1 late.
    for i in 0..8 {
        orders.push(delivered_order(
            &format!("C{i}"),
            IN_WINDOW,
            date(2026, 2, 21),
        ));
    }
    orders.push(delivered_order(
        "C-ON-EDD",
        "2026-02-21T07:30:00Z", // 2026-02-20 23:30 PST
        date(2026, 2, 20),
    ));
    orders.push(delivered_order("C-LATE", IN_WINDOW, date(2026, 2, 19)));
    // Not counted: no EDD; delivered after the window (today).
    let mut no_edd = delivered_order("C-NO-EDD", IN_WINDOW, date(2026, 2, 1));
    no_edd.estimated_delivery = None;
    orders.push(no_edd);
    orders.push(delivered_order(
        "C-TODAY",
        "2026-03-09T09:00:00Z",
        date(2026, 3, 1),
    ));
    // Previous: 17 of 20 on time (85.0).
    for i in 0..20 {
        let edd = if i < 17 {
            date(2026, 1, 25)
        } else {
            date(2026, 1, 19)
        };
        orders.push(delivered_order(&format!("P{i}"), IN_PREVIOUS, edd));
    }

    let ratios = kpi_ratios("p1", None, &orders, ts(REPORT_AT));
    assert_eq!(
        ratios[0],
        Ratio {
            numerator: 9,
            denominator: 10
        }
    );

    let payload = report("p1", None, &orders, ts(REPORT_AT));
    validate_payload(EVENT, &payload).unwrap();
    let otd = metric(&payload, "On-time delivery").unwrap();
    assert_eq!(otd["score"], 90.0);
    assert_eq!(otd["performanceStandard"], "90% or above");
    assert_eq!(
        otd["performanceRiskLevel"], "Good",
        "exactly at the standard"
    );
    assert_eq!(otd["overallTrend"], "GREEN_UP", "85.0 -> 90.0");
    assert_eq!(otd["duration"], "30 days");
    assert_eq!(
        otd["developerPortalApiLink"],
        "https://developer.walmart.com/us-marketplace/reference/getotdordersreport"
    );
}

#[test]
fn valid_tracking() {
    let mut orders = Vec::new();
    // Current: 197 scanned (or delivered), 2 never scanned after 48 h: 197/199 = 98.99 -> 99.0.
    for i in 0..196 {
        let mut o = order(&format!("S{i}"));
        ship(&mut o, IN_WINDOW);
        scan(&mut o, "2026-02-21T10:00:00Z");
        orders.push(o);
    }
    let mut delivered_unscanned = order("S-DELIVERED");
    ship(&mut delivered_unscanned, IN_WINDOW);
    deliver(&mut delivered_unscanned, "2026-02-23T10:00:00Z");
    orders.push(delivered_unscanned);
    for i in 0..2 {
        let mut o = order(&format!("U{i}"));
        ship(&mut o, IN_WINDOW);
        orders.push(o);
    }
    // Not counted: shipped 16 h before as_of without a scan yet (undecided), cancelled.
    let mut pending = order("PENDING");
    ship(&mut pending, "2026-03-08T20:00:00Z");
    orders.push(pending);
    let mut cancelled = order("CANCELLED");
    ship(&mut cancelled, IN_WINDOW);
    cancel(&mut cancelled, "2026-02-22T10:00:00Z", CancelledBy::Seller);
    orders.push(cancelled);

    let ratios = kpi_ratios("p1", None, &orders, ts(REPORT_AT));
    assert_eq!(
        ratios[1],
        Ratio {
            numerator: 197,
            denominator: 199
        }
    );
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    validate_payload(EVENT, &payload).unwrap();
    let vtr = metric(&payload, "Valid tracking").unwrap();
    assert_eq!(vtr["score"], 99.0, "98.99 rounds half up to 99.0");
    assert_eq!(vtr["performanceStandard"], "99% or above");
    assert_eq!(vtr["performanceRiskLevel"], "Good");
    assert_eq!(
        vtr["overallTrend"], "NEUTRAL",
        "no shipments in the previous period"
    );

    // A shipment a marketplace reported without a tracking number is invalid at once.
    let mut no_tracking = order("NO-TRACKING");
    no_tracking
        .apply_normalized(&json!({
            "marketplace": "walmart", "partnerId": "p1",
            "resource": {"type": "order", "id": "NO-TRACKING"},
            "status": "SHIPPED", "occurredAt": "2026-03-08T20:00:00Z",
            "nativeEventType": "ORDER_UPDATES", "native": {}
        }))
        .unwrap();
    let ratios = kpi_ratios("p1", None, &[no_tracking], ts(REPORT_AT));
    assert_eq!(
        ratios[1],
        Ratio {
            numerator: 0,
            denominator: 1
        }
    );
}

fn contact(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    o.apply(&fact(json!({"fact": "customerContact", "poNumber": po,
                         "marketplace": "walmart", "contactedAt": at})))
        .unwrap();
}

fn respond(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    o.apply(&fact(json!({"fact": "sellerResponse", "poNumber": po,
                         "marketplace": "walmart", "respondedAt": at})))
        .unwrap();
}

#[test]
fn seller_response() {
    let mut orders = Vec::new();
    // Current: 19 answered within 48 h (one at exactly 48 h), 1 after 49 h: 95.0.
    for i in 0..18 {
        let mut o = order(&format!("R{i}"));
        contact(&mut o, IN_WINDOW);
        respond(&mut o, "2026-02-21T10:00:00Z");
        orders.push(o);
    }
    let mut exactly = order("R-48H");
    contact(&mut exactly, IN_WINDOW);
    respond(&mut exactly, "2026-02-22T18:00:00Z");
    orders.push(exactly);
    let mut slow = order("R-SLOW");
    contact(&mut slow, IN_WINDOW);
    respond(&mut slow, "2026-02-22T19:00:00Z");
    orders.push(slow);
    // Undecided: contacted 16 h ago, not answered yet.
    let mut pending = order("R-PENDING");
    contact(&mut pending, "2026-03-08T20:00:00Z");
    orders.push(pending);
    // Previous: 20 of 20 answered.
    for i in 0..20 {
        let mut o = order(&format!("RP{i}"));
        contact(&mut o, IN_PREVIOUS);
        respond(&mut o, "2026-01-20T20:00:00Z");
        orders.push(o);
    }
    let ratios = kpi_ratios("p1", None, &orders, ts(REPORT_AT));
    assert_eq!(
        ratios[2],
        Ratio {
            numerator: 19,
            denominator: 20
        }
    );
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    validate_payload(EVENT, &payload).unwrap();
    let srr = metric(&payload, "Seller response").unwrap();
    assert_eq!(srr["score"], 95.0);
    assert_eq!(srr["performanceStandard"], "95% or above");
    assert_eq!(srr["performanceRiskLevel"], "Good");
    assert_eq!(srr["overallTrend"], "RED_DOWN", "100.0 -> 95.0");

    // An unanswered contact older than 48 h counts against the seller; one response answers
    // every contact before it.
    let mut two = order("TWO");
    contact(&mut two, IN_WINDOW);
    contact(&mut two, "2026-02-21T18:00:00Z");
    respond(&mut two, "2026-02-22T10:00:00Z");
    let mut silent = order("SILENT");
    contact(&mut silent, IN_WINDOW);
    let ratios = kpi_ratios("p1", None, &[two, silent], ts(REPORT_AT));
    assert_eq!(
        ratios[2],
        Ratio {
            numerator: 2,
            denominator: 3
        }
    );
}

fn placed(po: &str, at: &str) -> OrderFacts {
    let mut o = order(po);
    o.ordered_at = Some(ts(at));
    o
}

fn refund(o: &mut OrderFacts, at: &str) {
    let po = o.po_number.clone();
    o.apply(&fact(
        json!({"fact": "refunded", "poNumber": po, "marketplace": "walmart",
                         "refundedAt": at, "amount": 12.5}),
    ))
    .unwrap();
}

/// 100 orders placed in the window: 6 refunded, 3 cancelled by the seller or automatically or by
/// an unknown party (one of them also refunded), 2 cancelled by the customer or the marketplace;
/// 100 in the previous period: 7 refunded, 2 cancelled by the seller.
fn refund_and_cancel_history() -> Vec<OrderFacts> {
    let mut orders = Vec::new();
    for i in 0..100 {
        let mut o = placed(&format!("O{i:03}"), IN_WINDOW);
        match i {
            0..=5 => refund(&mut o, "2026-02-25T18:00:00Z"),
            6 => {
                cancel(&mut o, "2026-02-21T18:00:00Z", CancelledBy::Seller);
                refund(&mut o, "2026-02-21T18:00:00Z");
            }
            7 => cancel(&mut o, "2026-02-26T18:00:00Z", CancelledBy::Auto),
            8 => cancel(&mut o, "2026-02-21T18:00:00Z", CancelledBy::Unknown),
            9 => cancel(&mut o, "2026-02-21T18:00:00Z", CancelledBy::Customer),
            10 => cancel(&mut o, "2026-02-21T18:00:00Z", CancelledBy::Marketplace),
            _ => {}
        }
        orders.push(o);
    }
    for i in 0..100 {
        let mut o = placed(&format!("Q{i:03}"), IN_PREVIOUS);
        match i {
            0..=6 => refund(&mut o, "2026-01-25T18:00:00Z"),
            7 | 8 => cancel(&mut o, "2026-01-21T18:00:00Z", CancelledBy::Seller),
            _ => {}
        }
        orders.push(o);
    }
    orders
}

#[test]
fn refunds_and_cancellations() {
    let orders = refund_and_cancel_history();
    let ratios = kpi_ratios("p1", None, &orders, ts(REPORT_AT));
    assert_eq!(
        ratios[3],
        Ratio {
            numerator: 6,
            denominator: 100
        }
    );
    assert_eq!(
        ratios[4],
        Ratio {
            numerator: 3,
            denominator: 100
        }
    );

    let payload = report("p1", None, &orders, ts(REPORT_AT));
    validate_payload(EVENT, &payload).unwrap();
    let refunds = metric(&payload, "Refunds").unwrap();
    assert_eq!(refunds["score"], 6.0);
    assert_eq!(refunds["performanceStandard"], "6% or below");
    assert_eq!(
        refunds["performanceRiskLevel"], "Good",
        "exactly at the standard"
    );
    assert_eq!(refunds["overallTrend"], "GREEN_DOWN", "7.0 -> 6.0");
    let cancels = metric(&payload, "Cancellations").unwrap();
    assert_eq!(cancels["score"], 3.0);
    assert_eq!(cancels["performanceStandard"], "2% or below");
    assert_eq!(
        cancels["performanceRiskLevel"], "Monitor",
        "the top of Monitor"
    );
    assert_eq!(cancels["overallTrend"], "RED_UP", "2.0 -> 3.0");
    assert_eq!(
        cancels["developerPortalApiLink"],
        "https://developer.walmart.com/us-marketplace/reference/getcancellationsordersreport"
    );
}

#[test]
fn a_kpi_without_data_is_left_out() {
    let orders = refund_and_cancel_history();
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    let names: Vec<&str> = payload["enNotification"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kpi"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Refunds", "Cancellations"]);

    let empty = report("p1", None, &[], ts(REPORT_AT));
    validate_payload(EVENT, &empty).unwrap();
    assert_eq!(empty["enNotification"]["metrics"], json!([]));
}

#[test]
fn report_payload_has_the_seed_shape() {
    let mut orders = refund_and_cancel_history();
    orders.push(delivered_order("D", IN_WINDOW, date(2026, 2, 21)));
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    validate_payload(EVENT, &payload).unwrap();
    let sample = seller_performance_report_sample();
    assert_eq!(keys(&payload), keys(&sample));
    assert_eq!(
        keys(&payload["enNotification"]),
        keys(&sample["enNotification"])
    );
    for field in ["moreInfoLink", "supportedLanguages", "notificationType"] {
        assert_eq!(payload[field], sample[field], "{field}");
    }
    assert_eq!(
        payload["enNotification"]["message"],
        sample["enNotification"]["message"]
    );
    assert_eq!(
        payload["enNotification"]["summary"],
        "Here is the summary of your performance, the scores are current as of Sun Mar 8"
    );
    let seed_metric = &sample["enNotification"]["metrics"][0];
    for m in payload["enNotification"]["metrics"].as_array().unwrap() {
        assert_eq!(keys(m), keys(seed_metric));
    }
    // The seed's KPI order and standards.
    let ours: Vec<(String, String)> = Kpi::ALL
        .iter()
        .map(|k| (k.name().to_string(), k.standard().to_string()))
        .collect();
    let seed: Vec<(String, String)> = sample["enNotification"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kpi"].as_str().unwrap().to_string(),
                m["performanceStandard"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ours, seed);

    let walmart = report("p1", Some("walmart"), &orders, ts(REPORT_AT));
    validate_payload(EVENT, &walmart).unwrap();
    assert_eq!(
        walmart["enNotification"]["summary"],
        "Here is the summary of your Walmart performance, the scores are current as of Sun Mar 8"
    );
    let mut tiktok: Vec<OrderFacts> = refund_and_cancel_history();
    for o in &mut tiktok {
        o.marketplace = "tiktok".into();
    }
    let t = report("p1", Some("tiktok"), &tiktok, ts(REPORT_AT));
    validate_payload(EVENT, &t).unwrap();
    assert_eq!(t["marketplace"], "tiktok");
    assert!(
        metric(&t, "Refunds")
            .unwrap()
            .get("developerPortalApiLink")
            .is_none()
    );
    assert_eq!(
        report("p1", Some("ebay"), &tiktok, ts(REPORT_AT))["enNotification"]["metrics"],
        json!([])
    );
}

#[test]
fn risk_levels_at_every_edge() {
    use RiskLevel::{Good, Monitor, Urgent};
    let cases = [
        (
            Kpi::OnTimeDelivery,
            [
                (90.0, Good),
                (89.9, Monitor),
                (85.0, Monitor),
                (84.9, Urgent),
            ],
        ),
        (
            Kpi::ValidTracking,
            [
                (99.0, Good),
                (98.9, Monitor),
                (95.0, Monitor),
                (94.9, Urgent),
            ],
        ),
        (
            Kpi::SellerResponse,
            [
                (95.0, Good),
                (94.9, Monitor),
                (90.0, Monitor),
                (89.9, Urgent),
            ],
        ),
        (
            Kpi::Refunds,
            [(6.0, Good), (6.1, Monitor), (9.0, Monitor), (9.1, Urgent)],
        ),
        (
            Kpi::Cancellations,
            [(2.0, Good), (2.1, Monitor), (3.0, Monitor), (3.1, Urgent)],
        ),
    ];
    for (kpi, edges) in cases {
        for (score, level) in edges {
            assert_eq!(kpi.risk_level(score), level, "{} at {score}", kpi.name());
        }
    }
    assert_eq!(Kpi::OnTimeDelivery.risk_level(100.0), Good);
    assert_eq!(Kpi::Cancellations.risk_level(0.0), Good);
}

#[test]
fn trends_at_every_edge() {
    let otd = Kpi::OnTimeDelivery;
    assert_eq!(otd.trend(90.0, Some(89.5)), Trend::GreenUp, "+0.5 moves");
    assert_eq!(otd.trend(90.0, Some(89.6)), Trend::Neutral, "+0.4 does not");
    assert_eq!(otd.trend(89.5, Some(90.0)), Trend::RedDown);
    assert_eq!(otd.trend(89.6, Some(90.0)), Trend::Neutral);
    assert_eq!(otd.trend(90.0, None), Trend::Neutral, "no previous data");
    let refunds = Kpi::Refunds;
    assert_eq!(refunds.trend(6.5, Some(6.0)), Trend::RedUp);
    assert_eq!(refunds.trend(6.0, Some(6.5)), Trend::GreenDown);
    assert_eq!(refunds.trend(6.4, Some(6.0)), Trend::Neutral);
    assert_eq!(
        Kpi::Cancellations.trend(2.3, Some(1.8)),
        Trend::RedUp,
        "0.5 in tenths, no float drift"
    );
    for (t, name) in [
        (Trend::GreenUp, "GREEN_UP"),
        (Trend::GreenDown, "GREEN_DOWN"),
        (Trend::Neutral, "NEUTRAL"),
        (Trend::RedUp, "RED_UP"),
        (Trend::RedDown, "RED_DOWN"),
    ] {
        assert_eq!(t.name(), name);
    }
}

#[test]
fn scores_round_half_up_to_one_decimal() {
    let r = |n, d| Ratio {
        numerator: n,
        denominator: d,
    };
    assert_eq!(
        r(1699, 2000).score(),
        Some(85.0),
        "84.95 -> 85.0 (Monitor, not Urgent)"
    );
    assert_eq!(r(1698, 2000).score(), Some(84.9));
    assert_eq!(r(2, 3).score(), Some(66.7));
    assert_eq!(r(0, 5).score(), Some(0.0));
    assert_eq!(r(0, 0).score(), None);
}

#[test]
fn a_trend_and_a_risk_from_histories_at_the_threshold_edges() {
    // OTD 85.0 now (Monitor at its floor) after 85.4 (NEUTRAL: -0.4).
    let mut orders = Vec::new();
    for i in 0..20 {
        let edd = if i < 17 {
            date(2026, 2, 21)
        } else {
            date(2026, 2, 19)
        };
        orders.push(delivered_order(&format!("C{i}"), IN_WINDOW, edd));
    }
    for i in 0..500 {
        let edd = if i < 427 {
            date(2026, 1, 25)
        } else {
            date(2026, 1, 19)
        };
        orders.push(delivered_order(&format!("P{i}"), IN_PREVIOUS, edd));
    }
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    let otd = metric(&payload, "On-time delivery").unwrap();
    assert_eq!(otd["score"], 85.0);
    assert_eq!(otd["performanceRiskLevel"], "Monitor");
    assert_eq!(otd["overallTrend"], "NEUTRAL");
    // One more late order in the current period: 17/21 = 81.0, Urgent and RED_DOWN.
    orders.push(delivered_order("C-LATE", IN_WINDOW, date(2026, 2, 1)));
    let payload = report("p1", None, &orders, ts(REPORT_AT));
    let otd = metric(&payload, "On-time delivery").unwrap();
    assert_eq!(otd["score"], 81.0);
    assert_eq!(otd["performanceRiskLevel"], "Urgent");
    assert_eq!(otd["overallTrend"], "RED_DOWN");
}

// ---------------------------------------------------------------------------------------------
// Facts in
// ---------------------------------------------------------------------------------------------

#[test]
fn posted_facts_parse_and_apply() {
    let mut o = OrderFacts::new("p1", "ebay", "12-34567-89012");
    let facts = [
        json!({"fact": "shipped", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "carrier": "USPS", "trackingNumber": " 9400111899223197428490 ",
               "shippedAt": "2026-03-01T17:00:00Z"}),
        json!({"fact": "originScan", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "scannedAt": "2026-03-01T23:00:00-08:00"}),
        json!({"fact": "delivered", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "deliveredAt": "2026-03-04T20:00:00Z"}),
        json!({"fact": "refunded", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "refundedAt": "2026-03-06T20:00:00Z"}),
        json!({"fact": "customerContact", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "contactedAt": "2026-03-05T20:00:00Z"}),
        json!({"fact": "sellerResponse", "poNumber": "12-34567-89012", "marketplace": "ebay",
               "respondedAt": "2026-03-06T08:00:00Z"}),
    ];
    for f in &facts {
        let parsed = OrderFact::from_json(f).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap()["fact"], f["fact"]);
        o.apply(&parsed).unwrap();
    }
    let once = o.clone();
    for f in &facts {
        o.apply(&OrderFact::from_json(f).unwrap()).unwrap();
    }
    assert_eq!(o, once, "posting the same facts again changes nothing");

    let ship = o.shipment.as_ref().unwrap();
    assert_eq!(ship.carrier.as_deref(), Some("USPS"));
    assert_eq!(
        ship.tracking_number.as_deref(),
        Some("9400111899223197428490")
    );
    assert_eq!(o.origin_scan_at, Some(ts("2026-03-02T07:00:00Z")));
    assert_eq!(o.delivered_at, Some(ts("2026-03-04T20:00:00Z")));
    assert_eq!(o.refunded_at(), Some(ts("2026-03-06T20:00:00Z")));
    let contacts = o.customer_contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].responded_at, Some(ts("2026-03-06T08:00:00Z")));
}

fn invalid_field(body: Value) -> String {
    match OrderFact::from_json(&body) {
        Err(CoreError::Invalid { field, .. }) => field,
        other => panic!("expected an Invalid error for {body}, got {other:?}"),
    }
}

#[test]
fn bad_facts_are_refused_with_the_field_named() {
    let shipped = |tracking: &str, carrier: &str| {
        json!({"fact": "shipped", "poNumber": "PO1", "marketplace": "walmart",
               "carrier": carrier, "trackingNumber": tracking,
               "shippedAt": "2026-03-01T17:00:00Z"})
    };
    assert_eq!(invalid_field(shipped("", "UPS")), "trackingNumber");
    assert_eq!(invalid_field(shipped("   ", "UPS")), "trackingNumber");
    assert_eq!(invalid_field(shipped("1Z 999", "UPS")), "trackingNumber");
    assert_eq!(invalid_field(shipped("1Z999AA1", "")), "carrier");
    let mut no_po = shipped("1Z999AA1", "UPS");
    no_po["poNumber"] = json!("");
    assert_eq!(invalid_field(no_po), "poNumber");
    let mut upper = shipped("1Z999AA1", "UPS");
    upper["marketplace"] = json!("Walmart");
    assert_eq!(invalid_field(upper), "marketplace");
    assert_eq!(
        invalid_field(
            json!({"fact": "refunded", "poNumber": "PO1", "marketplace": "walmart",
                             "refundedAt": "2026-03-01T17:00:00Z", "amount": -1})
        ),
        "amount"
    );
    // Malformed JSON: unknown fact, unknown field, missing field, a time without an offset.
    for body in [
        json!({"fact": "lost", "poNumber": "PO1", "marketplace": "walmart"}),
        json!({"fact": "delivered", "poNumber": "PO1", "marketplace": "walmart",
               "deliveredAt": "2026-03-01T17:00:00Z", "signedBy": "me"}),
        json!({"fact": "delivered", "poNumber": "PO1", "marketplace": "walmart"}),
        json!({"fact": "delivered", "poNumber": "PO1", "marketplace": "walmart",
               "deliveredAt": "2026-03-01 17:00"}),
    ] {
        assert_eq!(invalid_field(body), "fact");
    }

    // A fact for another order, or delivered before it was shipped.
    let mut o = order("PO1");
    let other = fact(
        json!({"fact": "delivered", "poNumber": "PO2", "marketplace": "walmart",
                            "deliveredAt": "2026-03-01T17:00:00Z"}),
    );
    assert!(
        matches!(o.apply(&other), Err(CoreError::Invalid { field, .. }) if field == "poNumber")
    );
    let elsewhere = fact(
        json!({"fact": "delivered", "poNumber": "PO1", "marketplace": "amazon",
                                "deliveredAt": "2026-03-01T17:00:00Z"}),
    );
    assert!(
        matches!(o.apply(&elsewhere), Err(CoreError::Invalid { field, .. }) if field == "marketplace")
    );
    ship(&mut o, "2026-03-02T17:00:00Z");
    let early = fact(
        json!({"fact": "delivered", "poNumber": "PO1", "marketplace": "walmart",
                            "deliveredAt": "2026-03-01T17:00:00Z"}),
    );
    assert!(
        matches!(o.apply(&early), Err(CoreError::Invalid { field, .. }) if field == "deliveredAt")
    );
}

fn normalized(
    mp: &str,
    id: &str,
    status: Value,
    at: &str,
    native_type: &str,
    native: Value,
) -> Value {
    json!({
        "marketplace": mp, "partnerId": "p1", "resource": {"type": "order", "id": id},
        "status": status, "occurredAt": at, "nativeEventType": native_type,
        "nativeEventId": "e1", "native": native,
    })
}

#[test]
fn normalized_walmart_events_feed_the_record() {
    let mut o = OrderFacts::new("p1", "walmart", "1796277083022");
    // Walmart PO_CREATED with epoch-millisecond dates deep in the order lines.
    let native = json!({"payload": {"partnerId": "p1", "purchaseOrderId": "1796277083022",
        "orderDate": 1772388000000_i64, // 2026-03-01T18:00:00Z
        "orderLines": {"orderLine": [{"fulfillment": {
            "estimatedShipDate": 1772607600000_i64,  // 2026-03-04T07:00:00Z = 03-03 23:00 PST
            "estimatedDeliveryDate": "2026-03-07"}}]}}});
    o.apply_normalized(&normalized(
        "walmart",
        "1796277083022",
        json!("PO_CREATED"),
        "2026-03-01T18:00:05Z",
        "ORDER_UPDATES",
        native,
    ))
    .unwrap();
    assert_eq!(o.ordered_at, Some(ts("2026-03-01T18:00:00Z")));
    assert!(!o.ordered_at_is_estimate);
    assert_eq!(
        o.ship_by,
        Some(date(2026, 3, 3)),
        "the PT date of the instant"
    );
    assert_eq!(o.estimated_delivery, Some(date(2026, 3, 7)));
    assert_eq!(o.auto_cancel_date(), Some(date(2026, 3, 7)));
    assert_eq!(o.cancelled_at, None);

    // A customer's intent to cancel cancels nothing.
    o.apply_normalized(&normalized(
        "walmart",
        "1796277083022",
        json!("INTENT_TO_CANCEL"),
        "2026-03-02T18:00:00Z",
        "ORDER_UPDATES",
        json!({}),
    ))
    .unwrap();
    assert_eq!(o.cancelled_at, None);
    assert_eq!(o.status.as_deref(), Some("INTENT_TO_CANCEL"));

    // The auto-cancellation.
    o.apply_normalized(&normalized(
        "walmart",
        "1796277083022",
        json!("PO_LINE_AUTOCANCELLED"),
        "2026-03-08T09:00:00Z",
        "ORDER_UPDATES",
        json!({}),
    ))
    .unwrap();
    assert_eq!(o.cancelled_at, Some(ts("2026-03-08T09:00:00Z")));
    assert_eq!(o.cancelled_by, Some(CancelledBy::Auto));
    // An older event arriving late does not roll the status back.
    o.apply_normalized(&normalized(
        "walmart",
        "1796277083022",
        json!("PO_CREATED"),
        "2026-03-01T18:00:05Z",
        "ORDER_UPDATES",
        json!({}),
    ))
    .unwrap();
    assert_eq!(o.status.as_deref(), Some("PO_LINE_AUTOCANCELLED"));

    // It is in AutoCancelledYday on the morning of 2026-03-09 PT.
    let payload = alarms("p1", None, &[o], ts("2026-03-09T13:00:00Z")).unwrap();
    assert_eq!(
        pos(alarm(&payload, "AutoCancelledYday").unwrap()),
        ["1796277083022"]
    );
}

#[test]
fn normalized_events_of_other_marketplaces_feed_the_record() {
    // Amazon: the order date and ship-by from the ORDER_CHANGE summary, then shipped.
    let mut amazon = OrderFacts::default();
    amazon
        .apply_normalized(&normalized(
            "amazon",
            "113-1234567-1234567",
            json!("Unshipped"),
            "2026-03-02T10:00:00Z",
            "ORDER_CHANGE",
            json!({"Payload": {"OrderChangeNotification": {"Summary": {
                "OrderStatus": "Unshipped", "PurchaseDate": "2026-03-02T09:58:00Z",
                "LatestShipDate": "2026-03-05T07:59:59Z"}}}}),
        ))
        .unwrap();
    assert_eq!(amazon.partner_id, "p1");
    assert_eq!(amazon.marketplace, "amazon");
    assert_eq!(amazon.po_number, "113-1234567-1234567");
    assert_eq!(amazon.ordered_at, Some(ts("2026-03-02T09:58:00Z")));
    assert_eq!(amazon.ship_by, Some(date(2026, 3, 4)));
    assert!(amazon.shipment.is_none());
    amazon
        .apply_normalized(&normalized(
            "amazon",
            "113-1234567-1234567",
            json!("Shipped"),
            "2026-03-03T10:00:00Z",
            "ORDER_CHANGE",
            json!({}),
        ))
        .unwrap();
    let ship = amazon.shipment.as_ref().unwrap();
    assert_eq!(ship.shipped_at, ts("2026-03-03T10:00:00Z"));
    assert_eq!(ship.tracking_number, None);

    // TikTok: no order date in the payload, so the first event's time stands in until one comes.
    let mut tiktok = OrderFacts::default();
    tiktok
        .apply_normalized(&normalized(
            "tiktok",
            "576461413038785752",
            json!("AWAITING_SHIPMENT"),
            "2026-03-02T10:00:00Z",
            "1",
            json!({"data": {"order_id": "576461413038785752", "order_status": "AWAITING_SHIPMENT"}}),
        ))
        .unwrap();
    assert_eq!(tiktok.ordered_at, Some(ts("2026-03-02T10:00:00Z")));
    assert!(tiktok.ordered_at_is_estimate);
    tiktok
        .apply_normalized(&normalized(
            "tiktok",
            "576461413038785752",
            json!("CANCEL"),
            "2026-03-03T10:00:00Z",
            "1",
            json!({}),
        ))
        .unwrap();
    assert_eq!(tiktok.cancelled_by, Some(CancelledBy::Unknown));
    // A completed buyer cancellation request is the customer's; a pending one cancels nothing.
    let mut pending = OrderFacts::default();
    pending
        .apply_normalized(&normalized(
            "tiktok",
            "1",
            json!("CANCELLATION_REQUEST_PENDING"),
            "2026-03-03T10:00:00Z",
            "11",
            json!({}),
        ))
        .unwrap();
    assert_eq!(pending.cancelled_at, None);
    pending
        .apply_normalized(&normalized(
            "tiktok",
            "1",
            json!("CANCELLATION_REQUEST_COMPLETE"),
            "2026-03-04T10:00:00Z",
            "11",
            json!({}),
        ))
        .unwrap();
    assert_eq!(pending.cancelled_by, Some(CancelledBy::Customer));

    // eBay: a normalizer-provided ship-by and delivered status.
    let mut ebay = OrderFacts::default();
    let mut event = normalized(
        "ebay",
        "12-34567-89012",
        json!("DELIVERED"),
        "2026-03-06T10:00:00Z",
        "ITEM_DELIVERED",
        json!({}),
    );
    event["shipBy"] = json!("2026-03-03");
    ebay.apply_normalized(&event).unwrap();
    assert_eq!(ebay.ship_by, Some(date(2026, 3, 3)));
    assert_eq!(ebay.delivered_at, Some(ts("2026-03-06T10:00:00Z")));
}

#[test]
fn normalized_events_that_are_not_this_order_are_refused() {
    let mut o = order("PO1");
    let not_order = json!({"marketplace": "walmart", "resource": {"type": "item", "id": "SKU"},
                           "occurredAt": "2026-03-01T00:00:00Z", "nativeEventType": "X"});
    assert!(matches!(o.apply_normalized(&not_order),
                     Err(CoreError::Invalid { field, .. }) if field == "resource.type"));
    let other = normalized(
        "walmart",
        "PO2",
        json!(null),
        "2026-03-01T00:00:00Z",
        "X",
        json!({}),
    );
    assert!(matches!(o.apply_normalized(&other),
                     Err(CoreError::Invalid { field, .. }) if field == "poNumber"));
    let mut other_partner = normalized(
        "walmart",
        "PO1",
        json!(null),
        "2026-03-01T00:00:00Z",
        "X",
        json!({}),
    );
    other_partner["partnerId"] = json!("p2");
    assert!(matches!(o.apply_normalized(&other_partner),
                     Err(CoreError::Invalid { field, .. }) if field == "partnerId"));
    let no_time = json!({"marketplace": "walmart", "resource": {"type": "order", "id": "PO1"},
                         "nativeEventType": "X"});
    assert!(matches!(o.apply_normalized(&no_time),
                     Err(CoreError::Invalid { field, .. }) if field == "occurredAt"));
    assert!(o.apply_normalized(&json!("nope")).is_err());
}
