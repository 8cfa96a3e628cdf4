//! The event catalog: every event type a subscription may name, with its resource, description and
//! the JSON schema its payload must match. It lists Walmart's native types, SellerCenter's events
//! and the cross-marketplace normalized topics; `GET /v3/webhooks/eventTypes` serves it.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use crate::CoreError;

/// Where an event type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Walmart,
    Sellercenter,
    Normalized,
    /// About Switchyard's own deliveries: subscriptions disabled or recovered, deliveries
    /// exhausted, sources refusing a burst of requests.
    Operational,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    pub event_type: &'static str,
    pub event_version: &'static str,
    pub resource_name: &'static str,
    pub description: &'static str,
    pub family: Family,
    /// SellerCenter's entity (`Order`, `Product`, ...), for SellerCenter events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<&'static str>,
    pub schema: Value,
}

/// The version every type in the catalog has today.
pub const V1: &str = "V1";

fn loose_object() -> Value {
    json!({"type": "object"})
}

fn walmart_schema(extra: Value) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {"partnerId": {"type": "string"}},
    });
    if let (Some(props), Some(more)) = (schema["properties"].as_object_mut(), extra.as_object()) {
        props.extend(more.clone());
    }
    schema
}

/// `SELLER_PERFORMANCE_NOTIFICATIONS`, exactly the two payloads of `seeds/000_*`.
fn seller_performance_schema() -> Value {
    let common = json!({
        "partnerId": {"type": "string"},
        "lastRefreshTs": {"type": "string"},
        "moreInfoLink": {"type": "string"},
        "supportedLanguages": {"type": "array", "items": {"type": "string"}},
        // Not in the seed: which marketplace's orders a notification Switchyard computed covers
        // (absent for Walmart's own notifications and for all of a partner's marketplaces).
        "marketplace": {"type": "string"},
    });
    let alarm = json!({
        "type": "object",
        "required": ["alarmType", "orderCount", "description", "action", "poNumbers"],
        "additionalProperties": false,
        "properties": {
            "alarmType": {"enum": ["LateOriginScan", "AutoCancelledYday", "AutoCancelledWarning",
                                   "ShippingDueToday", "UnshippedOrders"]},
            "orderCount": {"type": "integer", "minimum": 1},
            "description": {"type": "string"},
            "action": {"type": "string"},
            "poNumbers": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
        }
    });
    let metric = json!({
        "type": "object",
        "required": ["kpi", "score", "overallTrend", "performanceStandard",
                     "performanceRiskLevel", "duration"],
        "additionalProperties": false,
        "properties": {
            "kpi": {"enum": ["On-time delivery", "Valid tracking", "Seller response",
                             "Refunds", "Cancellations"]},
            "score": {"type": "number", "minimum": 0, "maximum": 100},
            "overallTrend": {"enum": ["GREEN_UP", "GREEN_DOWN", "NEUTRAL", "RED_UP", "RED_DOWN"]},
            "performanceStandard": {"type": "string"},
            "performanceRiskLevel": {"enum": ["Good", "Monitor", "Urgent"]},
            "duration": {"type": "string"},
            "developerPortalApiLink": {"type": "string"},
        }
    });
    let mut alarms_props = common.as_object().cloned().unwrap_or_default();
    alarms_props.insert("ordersApiUrl".into(), json!({"type": "string"}));
    alarms_props.insert("notificationType".into(), json!({"const": "ALARMS"}));
    alarms_props.insert(
        "enNotification".into(),
        json!({
            "type": "object",
            "required": ["summary", "message", "poNumberMaxCount", "alarms"],
            "additionalProperties": false,
            "properties": {
                "summary": {"type": "string"},
                "message": {"type": "string"},
                "poNumberMaxCount": {"type": "integer", "minimum": 1},
                "alarms": {"type": "array", "items": alarm},
            }
        }),
    );
    let mut report_props = common.as_object().cloned().unwrap_or_default();
    report_props.insert("notificationType".into(), json!({"const": "REPORT"}));
    report_props.insert(
        "enNotification".into(),
        json!({
            "type": "object",
            "required": ["summary", "message", "metrics"],
            "additionalProperties": false,
            "properties": {
                "summary": {"type": "string"},
                "message": {"type": "string"},
                "metrics": {"type": "array", "items": metric},
            }
        }),
    );
    json!({
        "type": "object",
        "required": ["partnerId", "notificationType", "enNotification"],
        "properties": {"notificationType": {"enum": ["ALARMS", "REPORT"]}},
        "oneOf": [
            {"properties": alarms_props, "required": ["lastRefreshTs", "supportedLanguages"],
             "additionalProperties": false},
            {"properties": report_props, "required": ["lastRefreshTs", "supportedLanguages"],
             "additionalProperties": false},
        ]
    })
}

/// A normalized event's payload (`docs/marketplaces.md`, Normalized topics).
fn normalized_schema() -> Value {
    json!({
        "type": "object",
        "required": ["marketplace", "resource", "nativeEventType"],
        "properties": {
            "marketplace": {"type": "string"},
            "partnerId": {"type": "string"},
            "resource": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {"type": {"type": "string"}, "id": {"type": "string"}}
            },
            "status": {"type": ["string", "null"]},
            "occurredAt": {"type": "string"},
            "nativeEventType": {"type": "string"},
            "nativeEventId": {"type": ["string", "null"]},
            "native": {}
        }
    })
}

fn order_id_schema(extra: Value) -> Value {
    let mut schema = json!({
        "type": "object",
        "required": ["OrderId"],
        "properties": {"OrderId": {"type": ["integer", "string"]}, "OrderNr": {"type": "string"}},
    });
    if let (Some(props), Some(more)) = (schema["properties"].as_object_mut(), extra.as_object()) {
        props.extend(more.clone());
    }
    schema
}

fn build() -> Vec<EventType> {
    let walmart = |event_type, resource_name, description, schema| EventType {
        event_type,
        event_version: V1,
        resource_name,
        description,
        family: Family::Walmart,
        entity: None,
        schema,
    };
    let sellercenter = |event_type, entity, resource_name, description, schema| EventType {
        event_type,
        event_version: V1,
        resource_name,
        description,
        family: Family::Sellercenter,
        entity: Some(entity),
        schema,
    };
    let topic = |event_type, resource_name, description| EventType {
        event_type,
        event_version: V1,
        resource_name,
        description,
        family: Family::Normalized,
        entity: None,
        schema: normalized_schema(),
    };
    let operational = |event_type, description, schema| EventType {
        event_type,
        event_version: V1,
        resource_name: "WEBHOOKS",
        description,
        family: Family::Operational,
        entity: None,
        schema,
    };
    let skus = json!({"type": "object", "required": ["SellerSkus"],
                      "properties": {"SellerSkus": {"type": "array", "items": {"type": "string"}}}});
    let feed =
        json!({"type": "object", "required": ["Feed"], "properties": {"Feed": {"type": "string"}}});
    vec![
        // Walmart Marketplace native types (docs/marketplaces.md, Walmart).
        walmart(
            "OFFER_PUBLISHED",
            "ITEM",
            "An offer was published on Walmart.com",
            walmart_schema(json!({})),
        ),
        walmart(
            "OFFER_UNPUBLISHED",
            "ITEM",
            "An offer was unpublished from Walmart.com",
            walmart_schema(json!({})),
        ),
        walmart(
            "BUY_BOX_CHANGED",
            "PRICE",
            "The buy box price or winner of an item changed",
            walmart_schema(json!({})),
        ),
        walmart(
            "INVENTORY_OOS",
            "INVENTORY",
            "An item went out of stock",
            walmart_schema(json!({})),
        ),
        walmart(
            "PO_CREATED",
            "ORDER",
            "A purchase order was created (deprecated on 2026-12-15: use ORDER_UPDATES)",
            walmart_schema(json!({})),
        ),
        walmart(
            "PO_LINE_AUTOCANCELLED",
            "ORDER",
            "A purchase order line was cancelled automatically (deprecated on 2026-12-15: use ORDER_UPDATES)",
            walmart_schema(json!({})),
        ),
        walmart(
            "INTENT_TO_CANCEL",
            "ORDER",
            "A customer asked to cancel an order (deprecated on 2026-12-15: use ORDER_UPDATES)",
            walmart_schema(json!({})),
        ),
        walmart(
            "ORDER_UPDATES",
            "ORDER",
            "An order changed; payload.subEventType says how",
            walmart_schema(json!({
                "subEventType": {"enum": ["PO_CREATED", "PO_LINE_AUTOCANCELLED", "INTENT_TO_CANCEL", "FRAUD_CANCEL"]}
            })),
        ),
        walmart(
            "REPORT_STATUS",
            "REPORTS",
            "A requested report is ready or failed",
            walmart_schema(json!({})),
        ),
        walmart(
            "SELLER_PERFORMANCE_NOTIFICATIONS",
            "FEEDS",
            "Daily shipping alarms (ALARMS, 6:00 AM PT) and the weekly KPI report (REPORT, Mondays 5:00 AM PT)",
            seller_performance_schema(),
        ),
        // SellerCenter (seeds/003_*): entity -> events.
        sellercenter(
            "onFeedCreated",
            "Feed",
            "FEEDS",
            "A feed was created",
            feed.clone(),
        ),
        sellercenter(
            "onFeedCompleted",
            "Feed",
            "FEEDS",
            "A feed finished processing",
            feed,
        ),
        sellercenter(
            "onOrderCreated",
            "Order",
            "ORDER",
            "An order was created",
            order_id_schema(json!({})),
        ),
        sellercenter(
            "onOrderItemsStatusChanged",
            "Order",
            "ORDER",
            "The status of order items changed",
            order_id_schema(json!({
                "OrderItemIds": {"type": "array"}, "OrderItemsId": {"type": "array"}, "NewStatus": {"type": "string"}
            })),
        ),
        sellercenter(
            "onReturnStatusChanged",
            "Order",
            "ORDER",
            "The status of a return changed",
            loose_object(),
        ),
        sellercenter(
            "onMetricsUpdated",
            "Metrics",
            "METRICS",
            "Seller metrics were updated",
            loose_object(),
        ),
        sellercenter(
            "onStatisticsUpdated",
            "Statistics",
            "STATISTICS",
            "Seller statistics were updated",
            loose_object(),
        ),
        sellercenter(
            "onProductCreated",
            "Product",
            "ITEM",
            "Products were created",
            skus.clone(),
        ),
        sellercenter(
            "onProductUpdated",
            "Product",
            "ITEM",
            "Products were updated",
            skus.clone(),
        ),
        sellercenter(
            "onProductQcStatusChanged",
            "Product",
            "ITEM",
            "The quality-control status of products changed",
            skus,
        ),
        // Normalized cross-marketplace topics (docs/marketplaces.md, Normalized topics).
        topic(
            "order.created",
            "ORDER",
            "An order was placed, on any marketplace",
        ),
        topic(
            "order.updated",
            "ORDER",
            "An order's status changed, on any marketplace",
        ),
        topic(
            "order.cancelled",
            "ORDER",
            "An order or order line was cancelled, on any marketplace",
        ),
        topic(
            "return.updated",
            "ORDER",
            "A return was opened or changed, on any marketplace",
        ),
        topic(
            "inventory.low",
            "INVENTORY",
            "An item is out of stock or at or below its threshold",
        ),
        topic(
            "listing.approved",
            "ITEM",
            "A listing was published or approved",
        ),
        topic(
            "listing.rejected",
            "ITEM",
            "A listing was unpublished, rejected or has issues",
        ),
        topic("pricing.changed", "PRICE", "A price or the buy box changed"),
        topic("feed.created", "FEEDS", "A feed was created"),
        topic("feed.completed", "FEEDS", "A feed finished processing"),
        topic("metrics.updated", "METRICS", "Seller metrics were updated"),
        topic(
            "statistics.updated",
            "STATISTICS",
            "Seller statistics were updated",
        ),
        topic(
            "performance.alarms",
            "FEEDS",
            "Daily seller performance alarms",
        ),
        topic(
            "performance.report",
            "FEEDS",
            "Weekly seller performance report",
        ),
        topic(
            "account.deauthorized",
            "ACCOUNT",
            "A seller account was deleted or deauthorized the app",
        ),
        operational(
            "subscription.disabled",
            "A subscription was set INACTIVE by the hub (410 Gone, or failing too long)",
            json!({"type": "object", "required": ["subscriptionId", "reason"]}),
        ),
        operational(
            "subscription.recovered",
            "An endpoint answered again after its circuit breaker had opened",
            json!({"type": "object", "required": ["subscriptionId"]}),
        ),
        operational(
            "delivery.exhausted",
            "A delivery failed for good: its retry policy gave up",
            json!({"type": "object", "required": ["subscriptionId", "deliveryId", "eventId", "lastAttempt"]}),
        ),
        operational(
            "source.rejections_spiking",
            "A source refused more requests than its threshold in five minutes",
            json!({"type": "object", "required": ["sourceId", "rejections"]}),
        ),
    ]
}

static CATALOG: LazyLock<Vec<EventType>> = LazyLock::new(build);

static VALIDATORS: LazyLock<HashMap<&'static str, jsonschema::Validator>> = LazyLock::new(|| {
    CATALOG
        .iter()
        .filter_map(|t| {
            // The schemas are ours and fixed; a broken one is caught by the catalog's own test.
            jsonschema::validator_for(&t.schema)
                .ok()
                .map(|v| (t.event_type, v))
        })
        .collect()
});

/// The normalized topics a SellerCenter event corresponds to, so a SellerCenter-style webhook
/// also receives those events from every other marketplace.
pub fn topics_of_sellercenter_event(event: &str) -> &'static [&'static str] {
    match event {
        "onOrderCreated" => &["order.created"],
        "onOrderItemsStatusChanged" => &["order.updated", "order.cancelled"],
        "onReturnStatusChanged" => &["return.updated"],
        "onProductQcStatusChanged" => &["listing.approved", "listing.rejected"],
        "onFeedCreated" => &["feed.created"],
        "onFeedCompleted" => &["feed.completed"],
        "onMetricsUpdated" => &["metrics.updated"],
        "onStatisticsUpdated" => &["statistics.updated"],
        _ => &[],
    }
}

/// The SellerCenter event name a normalized topic is delivered under.
pub fn sellercenter_name_of_topic(topic: &str) -> Option<&'static str> {
    [
        "onOrderCreated",
        "onOrderItemsStatusChanged",
        "onReturnStatusChanged",
        "onProductQcStatusChanged",
        "onFeedCreated",
        "onFeedCompleted",
        "onMetricsUpdated",
        "onStatisticsUpdated",
    ]
    .into_iter()
    .find(|name| topics_of_sellercenter_event(name).contains(&topic))
}

/// Every event type, in catalog order.
pub fn all() -> &'static [EventType] {
    &CATALOG
}

/// The entry for an event type name (case-sensitive, as Walmart's API is).
pub fn find(event_type: &str) -> Option<&'static EventType> {
    CATALOG.iter().find(|t| t.event_type == event_type)
}

/// Checks a payload against its event type's schema.
/// Whether an event announces a resource's state, so that a newer one for the same resource
/// makes an older one moot (a subscription's `coalesce`): inventory, prices, a listing's status,
/// and an order's status. An order's creation is news, not state, and is never superseded.
/// Decided by the event's topic when it has one, else by its native type.
pub fn is_state(event_type: &str, topic: Option<&str>) -> bool {
    const ORDER_STATUS: &[&str] = &[
        "order.updated",
        "order.cancelled",
        "onOrderItemsStatusChanged",
    ];
    let name = topic.unwrap_or(event_type);
    ORDER_STATUS.contains(&name)
        || find(name).is_some_and(|t| matches!(t.resource_name, "INVENTORY" | "PRICE" | "ITEM"))
}

pub fn validate_payload(event_type: &str, payload: &Value) -> Result<(), CoreError> {
    let validator = VALIDATORS.get(event_type).ok_or_else(|| {
        CoreError::invalid("eventType", format!("unknown event type {event_type:?}"))
    })?;
    let errors: Vec<String> = validator
        .iter_errors(payload)
        .take(3)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Schema {
            event_type: event_type.to_string(),
            message: errors.join("; "),
        })
    }
}

/// The ALARMS example of `seeds/000_*`, verbatim: the sample `POST /v3/webhooks/test` sends.
pub fn seller_performance_alarms_sample() -> Value {
    let alarm = |alarm_type: &str, description: &str, action: &str| {
        json!({"alarmType": alarm_type, "orderCount": 5, "description": description,
               "action": action, "poNumbers": ["123", "456"]})
    };
    let no_tracking = "We have not yet received tracking information for the above orders.";
    let upload = "Please upload valid tracking information today or proactively cancel the orders.";
    json!({
        "partnerId": "123456789",
        "lastRefreshTs": "2025-09-10 12:52:36 UTC",
        "ordersApiUrl": "https://developer.walmart.com/",
        "moreInfoLink": "https://marketplacelearn.walmart.com/guides/Policies%20&%20standards/Performance/Performance-alarms",
        "supportedLanguages": ["en-US"],
        "notificationType": "ALARMS",
        "enNotification": {
            "summary": "We have identified 100 orders that need your immediate attention.",
            "message": "For information on all the orders, please use the following orders api",
            "poNumberMaxCount": 1000,
            "alarms": [
                alarm("LateOriginScan",
                      "We have noticed that the above shipped orders have not been scanned by the carrier within 48 hours of the shipping confirmation being sent.",
                      "We suggest you contact the carrier as needed to address the delays and verify your tracking information is valid for all your shipments."),
                alarm("AutoCancelledYday",
                      "We did not receive valid tracking information within 4 calendar days after the Expected Ship Date (ESD), resulting in the automatic cancellation of the above orders.",
                      "Do not ship the above order, as the customer has already been refunded."),
                alarm("AutoCancelledWarning", no_tracking, upload),
                alarm("ShippingDueToday", no_tracking, upload),
                alarm("UnshippedOrders", no_tracking, upload),
            ]
        }
    })
}

/// The REPORT example of `seeds/000_*`, verbatim.
pub fn seller_performance_report_sample() -> Value {
    let metric = |kpi: &str, score: f64, trend: &str, standard: &str, risk: &str, link: &str| {
        json!({"kpi": kpi, "score": score, "overallTrend": trend, "performanceStandard": standard,
               "performanceRiskLevel": risk, "duration": "30 days",
               "developerPortalApiLink": format!("https://developer.walmart.com/us-marketplace/reference/{link}")})
    };
    json!({
        "partnerId": "123456789",
        "lastRefreshTs": "2025-09-10 12:52:36 UTC",
        "moreInfoLink": "https://marketplacelearn.walmart.com/guides/Policies%20&%20standards/Performance/Seller-performance-standards?locale=en-US",
        "supportedLanguages": ["en-US"],
        "notificationType": "REPORT",
        "enNotification": {
            "summary": "Here is the summary of your Walmart performance, the scores are current as of Sun Jul 27",
            "message": "To download order details use the following api links:",
            "metrics": [
                metric("On-time delivery", 75.8, "GREEN_UP", "90% or above", "Monitor", "getotdordersreport"),
                metric("Valid tracking", 75.8, "GREEN_UP", "99% or above", "Monitor", "getvtrordersreport"),
                metric("Seller response", 75.8, "GREEN_UP", "95% or above", "Monitor", "getsrrordersreport"),
                metric("Refunds", 2.8, "GREEN_DOWN", "6% or below", "Monitor", "getcancellationsordersreport"),
                metric("Cancellations", 5.8, "GREEN_DOWN", "2% or below", "Urgent", "getrefundsordersreport"),
            ]
        }
    })
}

/// A payload that matches the type's schema, for test notifications.
pub fn sample_payload(event_type: &EventType, partner_id: &str) -> Value {
    let mut sample = match event_type.family {
        Family::Walmart if event_type.event_type == "SELLER_PERFORMANCE_NOTIFICATIONS" => {
            seller_performance_alarms_sample()
        }
        Family::Walmart if event_type.event_type == "ORDER_UPDATES" => {
            json!({"subEventType": "PO_CREATED", "purchaseOrderId": "1234567890123"})
        }
        Family::Walmart => json!({"sample": true}),
        Family::Sellercenter => match event_type.entity {
            Some("Feed") => json!({"Feed": "00000000-0000-0000-0000-000000000000"}),
            Some("Product") => json!({"SellerSkus": ["SAMPLE-SKU-1"]}),
            Some("Order") => json!({"OrderId": 190, "OrderNr": "123221"}),
            _ => json!({}),
        },
        Family::Operational => json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000000", "reason": "sample",
            "deliveryId": "00000000-0000-0000-0000-000000000000",
            "eventId": "00000000-0000-0000-0000-000000000000", "lastAttempt": {},
            "sourceId": "00000000-0000-0000-0000-000000000000", "rejections": 0
        }),
        Family::Normalized => json!({
            "marketplace": "switchyard", "resource": {"type": "order", "id": "SAMPLE-1"},
            "status": null, "nativeEventType": "TEST", "nativeEventId": null, "native": {}
        }),
    };
    if event_type.family != Family::Sellercenter {
        sample["partnerId"] = json!(partner_id);
    }
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_events_are_inventory_prices_listings_and_order_statuses() {
        for (event_type, topic) in [
            ("INVENTORY_OOS", None),
            ("BUY_BOX_CHANGED", None),
            ("OFFER_UNPUBLISHED", None),
            ("ORDER_STATUS_CHANGE", Some("order.updated")),
            ("x", Some("order.cancelled")),
            ("x", Some("inventory.low")),
            ("x", Some("listing.rejected")),
            ("onOrderItemsStatusChanged", None),
        ] {
            assert!(is_state(event_type, topic), "{event_type} {topic:?}");
        }
        for (event_type, topic) in [
            ("PO_CREATED", None),
            ("x", Some("order.created")),
            ("REPORT_STATUS", None),
            ("x", Some("feed.completed")),
            ("NOT_A_TYPE", None),
        ] {
            assert!(!is_state(event_type, topic), "{event_type} {topic:?}");
        }
    }

    #[test]
    fn every_schema_compiles_and_every_sample_matches_it() {
        assert_eq!(VALIDATORS.len(), all().len());
        for t in all() {
            validate_payload(t.event_type, &sample_payload(t, "p1"))
                .unwrap_or_else(|e| panic!("{}: {e}", t.event_type));
        }
    }

    #[test]
    fn both_seed_payloads_of_seller_performance_validate() {
        validate_payload(
            "SELLER_PERFORMANCE_NOTIFICATIONS",
            &seller_performance_alarms_sample(),
        )
        .unwrap();
        validate_payload(
            "SELLER_PERFORMANCE_NOTIFICATIONS",
            &seller_performance_report_sample(),
        )
        .unwrap();
    }

    #[test]
    fn seller_performance_rejects_values_outside_the_seed() {
        let t = "SELLER_PERFORMANCE_NOTIFICATIONS";
        let mut bad = seller_performance_report_sample();
        bad["enNotification"]["metrics"][0]["overallTrend"] = json!("UP");
        assert!(validate_payload(t, &bad).is_err(), "unknown trend");
        let mut bad = seller_performance_report_sample();
        bad["enNotification"]["metrics"][1]["performanceRiskLevel"] = json!("Critical");
        assert!(validate_payload(t, &bad).is_err(), "unknown risk level");
        let mut bad = seller_performance_report_sample();
        bad["enNotification"]["metrics"][2]["kpi"] = json!("Happiness");
        assert!(validate_payload(t, &bad).is_err(), "unknown KPI");
        let mut bad = seller_performance_alarms_sample();
        bad["enNotification"]["alarms"][0]["alarmType"] = json!("LateDelivery");
        assert!(validate_payload(t, &bad).is_err(), "unknown alarm type");
        let mut bad = seller_performance_alarms_sample();
        bad["notificationType"] = json!("REPORT");
        assert!(
            validate_payload(t, &bad).is_err(),
            "alarms body under REPORT"
        );
        let mut bad = seller_performance_alarms_sample();
        bad["enNotification"]["alarms"][0]["poNumbers"] =
            json!((0..1001).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(validate_payload(t, &bad).is_err(), "over the 1000 cap");
    }

    #[test]
    fn unknown_types_are_refused() {
        assert!(find("NOT_A_TYPE").is_none());
        assert!(validate_payload("NOT_A_TYPE", &json!({})).is_err());
    }
}
