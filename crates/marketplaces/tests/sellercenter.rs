//! SellerCenter: the URL token (handed over as `x-switchyard-url-token`), dedup keys and topics.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSecret, SourceSettings, sellercenter, util,
};

const URL: &str = "https://hub.example/ingest/src_sc";

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn source_with(tokens: &[&str]) -> SourceSettings {
    SourceSettings {
        kind: Kind::Sellercenter,
        secrets: tokens
            .iter()
            .enumerate()
            .map(|(i, t)| SourceSecret {
                id: i.to_string(),
                value: (*t).into(),
            })
            .collect(),
        replay_window: SignedDuration::from_mins(5),
        options: json!({}),
    }
}

fn sign_request(token: &str, event: &str, options: Value) -> SignRequest {
    SignRequest {
        event_type: event.into(),
        secret: token.into(),
        options,
        endpoint_url: URL.into(),
        partner_id: "seller-1".into(),
        resource_id: "190".into(),
        event_id: String::new(),
        now: now(),
    }
}

fn signed(token: &str, event: &str) -> SignedRequest {
    sellercenter::sign(&sign_request(token, event, json!({}))).unwrap()
}

fn verify_at(
    headers: &[(String, String)],
    body: &[u8],
    source: &SourceSettings,
) -> Result<Outcome, Refusal> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let req = Inbound {
        method: "POST",
        endpoint_url: URL,
        query: "",
        headers: &headers,
        body,
        now: now(),
    };
    sellercenter::verify(&req, source, &NoKeys)
}

fn verify_signed(s: &SignedRequest, source: &SourceSettings) -> Result<Outcome, Refusal> {
    verify_at(&s.headers, &s.body, source)
}

fn event(outcome: Result<Outcome, Refusal>) -> NativeEvent {
    match outcome {
        Ok(Outcome::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn token_header(token: &str) -> Vec<(String, String)> {
    vec![(sellercenter::TOKEN_HEADER.to_string(), token.to_string())]
}

#[test]
fn callback_with_the_url_token_is_accepted() {
    let s = signed("tok-123", "onOrderCreated");
    assert_eq!(s.url_suffix, "/tok-123");
    let body: Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(
        body,
        json!({"event": "onOrderCreated", "payload": {"OrderId": 190, "OrderNr": "190"}})
    );
    let e = event(verify_signed(&s, &source_with(&["tok-123"])));
    assert_eq!(e.kind, Kind::Sellercenter);
    assert_eq!(e.event_type, "onOrderCreated");
    assert_eq!(e.native_event_id, None);
    assert_eq!(e.partner_id, None);
    assert_eq!(e.occurred_at, None);
    assert_eq!(
        e.dedup_key,
        util::hash_key(&["onOrderCreated", r#"{"OrderId":190,"OrderNr":"190"}"#])
    );
    let n = sellercenter::normalize(&e);
    assert_eq!(n.topic, Some("order.created"));
    assert_eq!(
        n.resource,
        Some(Resource {
            kind: "order".into(),
            id: "190".into()
        })
    );
}

#[test]
fn the_documented_example_body_is_accepted() {
    let body = br#"{"event":"onOrderCreated","payload":{"OrderId":190,"OrderNr":"123221"}}"#;
    let e = event(verify_at(&token_header("t"), body, &source_with(&["t"])));
    assert_eq!(
        sellercenter::normalize(&e)
            .resource
            .map(|r| r.id)
            .as_deref(),
        Some("190")
    );
}

#[test]
fn rotating_tokens_all_verify() {
    let source = source_with(&["new-token", "old-token"]);
    event(verify_signed(
        &signed("old-token", "onOrderCreated"),
        &source,
    ));
    event(verify_signed(
        &signed("new-token", "onOrderCreated"),
        &source,
    ));
}

#[test]
fn url_suffix_is_not_doubled() {
    let mut req = sign_request("tok", "onOrderCreated", json!({}));
    req.endpoint_url = format!("{URL}/tok");
    assert_eq!(sellercenter::sign(&req).unwrap().url_suffix, "");
    let odd = sellercenter::sign(&sign_request("a/b c", "onOrderCreated", json!({}))).unwrap();
    assert_eq!(odd.url_suffix, "/a%2Fb%20c");
    assert!(matches!(
        sellercenter::sign(&sign_request("", "onOrderCreated", json!({}))),
        Err(Refusal::Misconfigured(_))
    ));
}

/// Nothing signs the body: the token authenticates the sender only. A changed body is accepted
/// and is a different event (its dedup key differs).
#[test]
fn tampered_body_is_accepted_but_is_another_event() {
    let s = signed("t", "onOrderCreated");
    let original = event(verify_signed(&s, &source_with(&["t"])));
    let body = String::from_utf8(s.body.clone())
        .unwrap()
        .replace("190", "191");
    let tampered = event(verify_at(&s.headers, body.as_bytes(), &source_with(&["t"])));
    assert_ne!(original.dedup_key, tampered.dedup_key);
}

#[test]
fn wrong_token_is_refused() {
    let s = signed("t0ken", "onOrderCreated");
    for source in [
        source_with(&["other"]),
        source_with(&["t0ke"]),
        source_with(&["t0ken "]),
    ] {
        assert_eq!(verify_signed(&s, &source), Err(Refusal::SignatureMismatch));
    }
}

#[test]
fn missing_token_is_refused() {
    let s = signed("t", "onOrderCreated");
    assert_eq!(
        verify_at(&[], &s.body, &source_with(&["t"])),
        Err(Refusal::MissingSignature)
    );
    assert_eq!(
        verify_at(&token_header(""), &s.body, &source_with(&["t"])),
        Err(Refusal::MissingSignature)
    );
    assert_eq!(
        verify_at(&[], b"{oops", &source_with(&["t"])),
        Err(Refusal::MissingSignature)
    );
    assert!(matches!(
        verify_signed(&s, &source_with(&[])),
        Err(Refusal::Misconfigured(_))
    ));
}

/// No timestamp exists to be stale: a replay of an old callback is caught by its dedup key.
#[test]
fn a_late_replay_is_a_duplicate() {
    let a = event(verify_signed(
        &signed("t", "onOrderItemsStatusChanged"),
        &source_with(&["t"]),
    ));
    let b = event(verify_signed(
        &signed("t", "onOrderItemsStatusChanged"),
        &source_with(&["t"]),
    ));
    assert_eq!(a.dedup_key, b.dedup_key);
    let shipped = sellercenter::sign(&sign_request(
        "t",
        "onOrderItemsStatusChanged",
        json!({"status": "delivered"}),
    ))
    .unwrap();
    let c = event(verify_signed(&shipped, &source_with(&["t"])));
    assert_ne!(a.dedup_key, c.dedup_key);
    // Key order and whitespace in the payload do not make a retry a new event.
    let x = br#"{"event":"onFeedCompleted","payload":{"Feed":"f-1","Status":"done"}}"#;
    let y = br#"{ "payload" : { "Status":"done", "Feed":"f-1" }, "event":"onFeedCompleted" }"#;
    let kx = event(verify_at(&token_header("t"), x, &source_with(&["t"]))).dedup_key;
    let ky = event(verify_at(&token_header("t"), y, &source_with(&["t"]))).dedup_key;
    assert_eq!(kx, ky);
}

#[test]
fn malformed_json_is_refused() {
    for body in [
        b"{oops".as_slice(),
        b"[]",
        br#"{"payload":{}}"#,
        br#"{"event":""}"#,
        br#"{"event":5}"#,
    ] {
        assert!(matches!(
            verify_at(&token_header("t"), body, &source_with(&["t"])),
            Err(Refusal::MalformedBody(_))
        ));
    }
    // Unknown events are events; a missing payload hashes as null.
    let e = event(verify_at(
        &token_header("t"),
        br#"{"event":"onSomethingNew"}"#,
        &source_with(&["t"]),
    ));
    assert_eq!(e.dedup_key, util::hash_key(&["onSomethingNew", "null"]));
    assert_eq!(sellercenter::normalize(&e), Normalized::default());
}

fn normalized(event_type: &str, payload: Value) -> Normalized {
    sellercenter::normalize(&NativeEvent {
        kind: Kind::Sellercenter,
        event_type: event_type.into(),
        dedup_key: "k".into(),
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: json!({"event": event_type, "payload": payload}),
    })
}

fn res(kind: &str, id: &str) -> Option<Resource> {
    Some(Resource {
        kind: kind.into(),
        id: id.into(),
    })
}

#[test]
fn normalize_order_events() {
    let n = normalized(
        "onOrderCreated",
        json!({"OrderId": 190, "OrderNr": "123221"}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("order.created"), res("order", "190"))
    );

    let n = normalized(
        "onOrderItemsStatusChanged",
        json!({"OrderId": 190, "OrderItemIds": [11, 12], "NewStatus": "shipped"}),
    );
    assert_eq!(n.topic, Some("order.updated"));
    assert_eq!(n.resource, res("order", "190"));
    assert_eq!(n.status.as_deref(), Some("shipped"));
    for status in ["canceled", "cancelled", "Canceled"] {
        let n = normalized(
            "onOrderItemsStatusChanged",
            json!({"OrderId": "190", "OrderItemsId": ["11"], "NewStatus": status}),
        );
        assert_eq!(n.topic, Some("order.cancelled"), "{status}");
    }
    let n = normalized(
        "onOrderItemsStatusChanged",
        json!({"OrderItemIds": [11], "NewStatus": "ready_to_ship"}),
    );
    assert_eq!(n.resource, res("item", "11"));
    let n = normalized("onOrderItemsStatusChanged", json!({"OrderItemsId": 12}));
    assert_eq!(n.resource, res("item", "12"));

    let n = normalized(
        "onReturnStatusChanged",
        json!({"OrderId": 5, "NewStatus": "return_shipped_by_customer"}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("return.updated"), res("order", "5"))
    );
    assert_eq!(n.status.as_deref(), Some("return_shipped_by_customer"));
}

#[test]
fn normalize_feed_metrics_and_product_events() {
    let feed = json!({"Feed": "9f2e1a3c-0000-4000-8000-000000000001"});
    let n = normalized("onFeedCreated", feed.clone());
    assert_eq!(
        (n.topic, n.resource),
        (
            Some("feed.created"),
            res("feed", "9f2e1a3c-0000-4000-8000-000000000001")
        )
    );
    assert_eq!(
        normalized("onFeedCompleted", feed).topic,
        Some("feed.completed")
    );
    assert_eq!(
        normalized("onMetricsUpdated", json!({})).topic,
        Some("metrics.updated")
    );
    assert_eq!(
        normalized("onStatisticsUpdated", json!({})).topic,
        Some("statistics.updated")
    );

    let skus = json!({"SellerSkus": ["SKU-1", "SKU-2"]});
    for t in ["onProductCreated", "onProductUpdated"] {
        let n = normalized(t, skus.clone());
        assert_eq!((n.topic, n.resource), (None, res("product", "SKU-1")));
    }
    let n = normalized("onProductQcStatusChanged", skus.clone());
    assert_eq!((n.topic, n.resource), (None, res("product", "SKU-1")));
    let n = normalized(
        "onProductQcStatusChanged",
        json!({"SellerSkus": ["S"], "NewStatus": "approved"}),
    );
    assert_eq!(n.topic, Some("listing.approved"));
    let n = normalized(
        "onProductQcStatusChanged",
        json!({"SellerSkus": ["S"], "Status": "Rejected"}),
    );
    assert_eq!(
        (n.topic, n.status.as_deref()),
        (Some("listing.rejected"), Some("Rejected"))
    );
    let n = normalized(
        "onProductQcStatusChanged",
        json!({"SellerSkus": ["S"], "QcStatus": "pending"}),
    );
    assert_eq!(n.topic, None);

    assert_eq!(
        normalized("onUnknown", json!({"OrderId": 1})),
        Normalized::default()
    );
    let weird = sellercenter::normalize(&NativeEvent {
        kind: Kind::Sellercenter,
        event_type: "onOrderCreated".into(),
        dedup_key: "k".into(),
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: json!("x"),
    });
    assert_eq!((weird.topic, weird.resource), (Some("order.created"), None));
}

#[test]
fn signed_events_round_trip_to_topics() {
    for (t, topic, kind) in [
        ("onOrderCreated", Some("order.created"), Some("order")),
        (
            "onOrderItemsStatusChanged",
            Some("order.updated"),
            Some("order"),
        ),
        (
            "onReturnStatusChanged",
            Some("return.updated"),
            Some("order"),
        ),
        ("onFeedCreated", Some("feed.created"), Some("feed")),
        ("onFeedCompleted", Some("feed.completed"), Some("feed")),
        ("onMetricsUpdated", Some("metrics.updated"), None),
        ("onStatisticsUpdated", Some("statistics.updated"), None),
        ("onProductCreated", None, Some("product")),
        (
            "onProductQcStatusChanged",
            Some("listing.approved"),
            Some("product"),
        ),
        ("", Some("order.created"), Some("order")),
    ] {
        let e = event(verify_signed(&signed("t", t), &source_with(&["t"])));
        let n = sellercenter::normalize(&e);
        assert_eq!(n.topic, topic, "{t}");
        assert_eq!(n.resource.map(|r| r.kind).as_deref(), kind, "{t}");
    }
    let cancelled = sellercenter::sign(&sign_request(
        "t",
        "onOrderItemsStatusChanged",
        json!({"status": "canceled"}),
    ))
    .unwrap();
    let e = event(verify_signed(&cancelled, &source_with(&["t"])));
    assert_eq!(sellercenter::normalize(&e).topic, Some("order.cancelled"));
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), token in ".{0,20}") {
        let _ = verify_at(&token_header(&token), &body, &source_with(&["t"]));
        if let Ok(Outcome::Event(e)) = verify_at(&token_header("t"), &body, &source_with(&["t"])) {
            let _ = sellercenter::normalize(&e);
        }
    }

    #[test]
    fn never_panics_on_json(event in prop_oneof![Just("onOrderCreated"), Just("onOrderItemsStatusChanged"), Just("onProductQcStatusChanged"), Just("onFeedCreated"), Just("x")],
                            payload in prop_oneof![Just(json!(null)), Just(json!([])), Just(json!({"OrderId": [1], "OrderItemIds": {}, "SellerSkus": "S", "Feed": 1.5, "NewStatus": 3}))]) {
        let body = json!({"event": event, "payload": payload}).to_string();
        let e = match verify_at(&token_header("t"), body.as_bytes(), &source_with(&["t"])) {
            Ok(Outcome::Event(e)) => e,
            other => panic!("{other:?}"),
        };
        let _ = sellercenter::normalize(&e);
    }
}
