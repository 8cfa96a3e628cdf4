//! Walmart: `WM_SEC.*` HMAC (as Walmart and Switchyard's own deliveries send it), Basic and
//! Bearer forms, the envelope, dedup keys and topics.

mod support;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::python;
use switchyard_core::signatures::walmart as core_walmart;
use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSecret, SourceSettings, util, walmart,
};

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn source_with(secrets: &[(&str, &str)], options: Value) -> SourceSettings {
    SourceSettings {
        kind: Kind::Walmart,
        secrets: secrets
            .iter()
            .map(|(id, v)| SourceSecret {
                id: (*id).into(),
                value: (*v).into(),
            })
            .collect(),
        replay_window: SignedDuration::from_mins(5),
        options,
    }
}

fn hmac_source(secret: &str) -> SourceSettings {
    source_with(&[("1", secret)], json!({}))
}

fn sign_request(secret: &str, event_type: &str, options: Value, at: Timestamp) -> SignRequest {
    SignRequest {
        event_type: event_type.into(),
        secret: secret.into(),
        options,
        endpoint_url: "https://hub.example/ingest/src_1".into(),
        partner_id: "10001".into(),
        resource_id: "PO-1234".into(),
        event_id: "evt-1".into(),
        now: at,
    }
}

fn signed(secret: &str) -> SignedRequest {
    walmart::sign(&sign_request(secret, "PO_CREATED", json!({}), now())).unwrap()
}

fn lower(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn verify_at(
    headers: &[(String, String)],
    body: &[u8],
    source: &SourceSettings,
    at: Timestamp,
) -> Result<Outcome, Refusal> {
    let headers = lower(headers);
    let req = Inbound {
        method: "POST",
        endpoint_url: "https://hub.example/ingest/src_1",
        query: "",
        headers: &headers,
        body,
        now: at,
    };
    walmart::verify(&req, source, &NoKeys)
}

fn verify_signed(signed: &SignedRequest, source: &SourceSettings) -> Result<Outcome, Refusal> {
    verify_at(&signed.headers, &signed.body, source, now())
}

fn event(outcome: Result<Outcome, Refusal>) -> NativeEvent {
    match outcome {
        Ok(Outcome::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn get(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap()
}

/// Replaces (or adds) a header.
fn with(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    out.push((name.into(), value.into()));
    out
}

fn without(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect()
}

/// HMAC headers over `body` as Walmart sends them.
fn hmac_headers(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    version: &str,
) -> Vec<(String, String)> {
    vec![
        (
            "WM_SEC.AUTH_SIGNATURE".into(),
            core_walmart::sign(secret, timestamp, body),
        ),
        ("WM_SEC.TIMESTAMP".into(), timestamp.into()),
        ("WM_SEC.KEY_VERSION".into(), version.into()),
    ]
}

#[test]
fn signed_po_created_is_accepted() {
    let s = signed("client-secret");
    assert_eq!(get(&s.headers, "WM_SEC.KEY_VERSION"), "1");
    assert_eq!(get(&s.headers, "WM_SEC.TIMESTAMP"), "1700000000");
    let e = event(verify_signed(&s, &hmac_source("client-secret")));
    assert_eq!(e.kind, Kind::Walmart);
    assert_eq!(e.event_type, "PO_CREATED");
    assert_eq!(e.dedup_key, "evt-1");
    assert_eq!(e.native_event_id.as_deref(), Some("evt-1"));
    assert_eq!(e.partner_id.as_deref(), Some("10001"));
    assert_eq!(e.occurred_at, Some(now()));
    assert_eq!(e.payload["payload"]["purchaseOrderId"], "PO-1234");
    let n = walmart::normalize(&e);
    assert_eq!(n.topic, Some("order.created"));
    assert_eq!(
        n.resource,
        Some(Resource {
            kind: "order".into(),
            id: "PO-1234".into()
        })
    );
}

#[test]
#[ignore = "needs python3; bash .ci/run runs it"]
fn signature_matches_python_hmac() {
    let s = signed("client-secret");
    let message = [get(&s.headers, "WM_SEC.TIMESTAMP").as_bytes(), &s.body].concat();
    let code = "import hmac, hashlib, sys\n\
        print(hmac.new(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), hashlib.sha256).hexdigest())";
    let py = python(
        code,
        &[&hex::encode("client-secret"), &hex::encode(message)],
        b"",
    );
    assert_eq!(get(&s.headers, "WM_SEC.AUTH_SIGNATURE"), py);
}

/// Exactly what Switchyard's delivery worker sends for an `HMAC` subscription: the delivery
/// envelope (with `eventVersion`), Standard Webhooks headers beside the `WM_SEC.*` ones, and the
/// signature from `switchyard_core::signatures::walmart::sign`.
#[test]
fn switchyard_hmac_delivery_verifies() {
    let body = json!({
        "source": {
            "eventType": "OFFER_PUBLISHED",
            "eventVersion": "V1",
            "eventTime": "2023-11-14T22:13:20.123Z",
            "eventId": "0190f0c4-7a7e-7b0e-9d55-3a1f7c2b9e01",
        },
        "payload": {"partnerId": "10001", "sku": "SKU-9", "publishStatus": "PUBLISHED"},
    })
    .to_string();
    let ts = now().as_second().to_string();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "webhook-id".into(),
            "0190f0c4-7a7e-7b0e-9d55-3a1f7c2b9e01".into(),
        ),
        ("webhook-timestamp".into(), ts.clone()),
        ("webhook-signature".into(), "v1,c2lnbmF0dXJl".into()),
        (
            core_walmart::SIGNATURE_HEADER.into(),
            core_walmart::sign("delivery-secret", &ts, body.as_bytes()),
        ),
        (core_walmart::TIMESTAMP_HEADER.into(), ts.clone()),
        (core_walmart::KEY_VERSION_HEADER.into(), "1".into()),
    ];
    let e = event(verify_at(
        &headers,
        body.as_bytes(),
        &hmac_source("delivery-secret"),
        now(),
    ));
    assert_eq!(e.event_type, "OFFER_PUBLISHED");
    assert_eq!(e.dedup_key, "0190f0c4-7a7e-7b0e-9d55-3a1f7c2b9e01");
    assert_eq!(
        e.occurred_at,
        Some("2023-11-14T22:13:20.123Z".parse().unwrap())
    );
    let n = walmart::normalize(&e);
    assert_eq!(n.topic, Some("listing.approved"));
    assert_eq!(
        n.resource,
        Some(Resource {
            kind: "item".into(),
            id: "SKU-9".into()
        })
    );
    assert_eq!(n.status.as_deref(), Some("PUBLISHED"));
}

#[test]
fn our_signature_verifies_with_core() {
    let s = signed("client-secret");
    assert!(core_walmart::verify(
        "client-secret",
        &get(&s.headers, "WM_SEC.TIMESTAMP"),
        &s.body,
        &get(&s.headers, "WM_SEC.AUTH_SIGNATURE"),
    ));
}

#[test]
fn base64_signature_and_millisecond_timestamp_are_accepted() {
    let s = signed("k");
    let ts = get(&s.headers, "WM_SEC.TIMESTAMP");
    let mac = util::hmac_sha256(b"k", &[ts.as_bytes(), &s.body]);
    let headers = with(&s.headers, "WM_SEC.AUTH_SIGNATURE", &STANDARD.encode(mac));
    event(verify_at(&headers, &s.body, &hmac_source("k"), now()));

    let ms = (now().as_millisecond() + 1234).to_string();
    let headers = hmac_headers("k", &ms, &s.body, "1");
    event(verify_at(&headers, &s.body, &hmac_source("k"), now()));
    let old_ms = (now().as_millisecond() - 6 * 60 * 1000).to_string();
    let headers = hmac_headers("k", &old_ms, &s.body, "1");
    assert_eq!(
        verify_at(&headers, &s.body, &hmac_source("k"), now()),
        Err(Refusal::StaleTimestamp)
    );
}

#[test]
fn key_version_selects_the_secret() {
    let source = source_with(&[("2", "new-secret"), ("1", "old-secret")], json!({}));
    for (secret, version) in [("new-secret", "2"), ("old-secret", "1")] {
        let s = walmart::sign(&sign_request(
            secret,
            "PO_CREATED",
            json!({"keyVersion": version}),
            now(),
        ))
        .unwrap();
        assert_eq!(get(&s.headers, "WM_SEC.KEY_VERSION"), version);
        event(verify_signed(&s, &source));
        // The version names the other secret: refused.
        let other = if version == "1" { "2" } else { "1" };
        let headers = with(&s.headers, "WM_SEC.KEY_VERSION", other);
        assert_eq!(
            verify_at(&headers, &s.body, &source, now()),
            Err(Refusal::SignatureMismatch)
        );
        // Absent or unknown version: every secret is tried.
        event(verify_at(
            &without(&s.headers, "WM_SEC.KEY_VERSION"),
            &s.body,
            &source,
            now(),
        ));
        let unknown = with(&s.headers, "WM_SEC.KEY_VERSION", "9");
        event(verify_at(&unknown, &s.body, &source, now()));
    }
}

#[test]
fn header_names_are_case_insensitive() {
    let s = signed("k");
    let mixed: Vec<(String, String)> = s
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.replace("WM_SEC", "wm_sec")
                    .replace("SIGNATURE", "Signature"),
                v.clone(),
            )
        })
        .collect();
    let req = Inbound {
        method: "POST",
        endpoint_url: "https://hub.example/ingest/src_1",
        query: "",
        headers: &mixed,
        body: &s.body,
        now: now(),
    };
    event(walmart::verify(&req, &hmac_source("k"), &NoKeys));
}

#[test]
fn tampered_body_or_timestamp_is_refused() {
    let s = signed("k");
    let body = String::from_utf8(s.body.clone())
        .unwrap()
        .replace("PO-1234", "PO-9999");
    assert_eq!(
        verify_at(&s.headers, body.as_bytes(), &hmac_source("k"), now()),
        Err(Refusal::SignatureMismatch)
    );
    let headers = with(&s.headers, "WM_SEC.TIMESTAMP", "1700000001");
    assert_eq!(
        verify_at(&headers, &s.body, &hmac_source("k"), now()),
        Err(Refusal::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_refused() {
    assert_eq!(
        verify_signed(&signed("k"), &hmac_source("other")),
        Err(Refusal::SignatureMismatch)
    );
}

#[test]
fn stale_timestamp_is_refused() {
    let old = now() - SignedDuration::from_mins(6);
    let s = walmart::sign(&sign_request("k", "PO_CREATED", json!({}), old)).unwrap();
    assert_eq!(
        verify_signed(&s, &hmac_source("k")),
        Err(Refusal::StaleTimestamp)
    );
    let future = now() + SignedDuration::from_mins(6);
    let s = walmart::sign(&sign_request("k", "PO_CREATED", json!({}), future)).unwrap();
    assert_eq!(
        verify_signed(&s, &hmac_source("k")),
        Err(Refusal::StaleTimestamp)
    );
    // A signed but non-numeric timestamp is malformed.
    let body = signed("k").body;
    let headers = hmac_headers("k", "yesterday", &body, "1");
    assert!(matches!(
        verify_at(&headers, &body, &hmac_source("k"), now()),
        Err(Refusal::MalformedBody(_))
    ));
}

#[test]
fn duplicates_share_the_dedup_key() {
    let a = event(verify_signed(&signed("k"), &hmac_source("k")));
    let retry = walmart::sign(&sign_request(
        "k",
        "PO_CREATED",
        json!({}),
        now() + SignedDuration::from_secs(40),
    ))
    .unwrap();
    let b = event(verify_signed(&retry, &hmac_source("k")));
    assert_eq!(a.dedup_key, b.dedup_key);
    let mut other = sign_request("k", "PO_CREATED", json!({}), now());
    other.event_id = "evt-2".into();
    let c = event(verify_signed(
        &walmart::sign(&other).unwrap(),
        &hmac_source("k"),
    ));
    assert_ne!(a.dedup_key, c.dedup_key);
}

#[test]
fn malformed_json_and_missing_fields_are_refused() {
    let ts = now().as_second().to_string();
    let bodies: [&[u8]; 9] = [
        b"{oops",
        b"\"string\"",
        br#"{"payload":{}}"#,
        br#"{"source":{"eventId":"e","eventTime":"2023-11-14T22:13:20Z"},"payload":{}}"#,
        br#"{"source":{"eventType":"PO_CREATED","eventTime":"2023-11-14T22:13:20Z"},"payload":{}}"#,
        br#"{"source":{"eventType":"PO_CREATED","eventId":"e"},"payload":{}}"#,
        br#"{"source":{"eventType":"PO_CREATED","eventId":"e","eventTime":"soon"},"payload":{}}"#,
        br#"{"source":{"eventType":"PO_CREATED","eventId":"e","eventTime":"2023-11-14T22:13:20Z"}}"#,
        br#"{"source":{"eventType":"PO_CREATED","eventId":"e","eventTime":"2023-11-14T22:13:20Z"},"payload":[]}"#,
    ];
    for body in bodies {
        let headers = hmac_headers("k", &ts, body, "1");
        let result = verify_at(&headers, body, &hmac_source("k"), now());
        assert!(
            matches!(result, Err(Refusal::MalformedBody(_))),
            "{result:?}"
        );
    }
    // partnerId is optional.
    let body = br#"{"source":{"eventType":"X","eventId":7,"eventTime":"2023-11-14T22:13:20Z"},"payload":{}}"#;
    let e = event(verify_at(
        &hmac_headers("k", &ts, body, "1"),
        body,
        &hmac_source("k"),
        now(),
    ));
    assert_eq!((e.dedup_key.as_str(), e.partner_id), ("7", None));
}

#[test]
fn missing_signature_or_timestamp_is_refused() {
    let s = signed("k");
    for name in ["WM_SEC.AUTH_SIGNATURE", "WM_SEC.TIMESTAMP"] {
        assert_eq!(
            verify_at(
                &without(&s.headers, name),
                &s.body,
                &hmac_source("k"),
                now()
            ),
            Err(Refusal::MissingSignature)
        );
    }
    assert_eq!(
        verify_at(&[], b"{oops", &hmac_source("k"), now()),
        Err(Refusal::MissingSignature)
    );
    assert!(matches!(
        verify_signed(&s, &source_with(&[], json!({}))),
        Err(Refusal::Misconfigured(_))
    ));
    assert!(matches!(
        verify_signed(&s, &source_with(&[("1", "k")], json!({"form": "oauth"}))),
        Err(Refusal::Misconfigured(_))
    ));
}

#[test]
fn basic_form() {
    let source = source_with(&[("a", "walmart:p4ss")], json!({"form": "basic"}));
    let s = walmart::sign(&sign_request(
        "walmart:p4ss",
        "PO_CREATED",
        json!({"form": "basic"}),
        now(),
    ))
    .unwrap();
    assert_eq!(
        get(&s.headers, "Authorization"),
        format!("Basic {}", STANDARD.encode("walmart:p4ss"))
    );
    let e = event(verify_signed(&s, &source));
    assert_eq!(e.dedup_key, "evt-1");
    // No replay window in this form.
    let old = walmart::sign(&sign_request(
        "walmart:p4ss",
        "PO_CREATED",
        json!({"form": "basic"}),
        now() - SignedDuration::from_hours(3),
    ))
    .unwrap();
    event(verify_signed(&old, &source));

    let wrong = with(
        &s.headers,
        "Authorization",
        &format!("Basic {}", STANDARD.encode("walmart:nope")),
    );
    assert_eq!(
        verify_at(&wrong, &s.body, &source, now()),
        Err(Refusal::SignatureMismatch)
    );
    let bearer = with(&s.headers, "Authorization", "Bearer walmart:p4ss");
    assert_eq!(
        verify_at(&bearer, &s.body, &source, now()),
        Err(Refusal::SignatureMismatch)
    );
    let garbage = with(&s.headers, "Authorization", "Basic ***");
    assert_eq!(
        verify_at(&garbage, &s.body, &source, now()),
        Err(Refusal::SignatureMismatch)
    );
    assert_eq!(
        verify_at(
            &without(&s.headers, "Authorization"),
            &s.body,
            &source,
            now()
        ),
        Err(Refusal::MissingSignature)
    );
    let lower_scheme = with(
        &s.headers,
        "Authorization",
        &format!("basic {}", STANDARD.encode("walmart:p4ss")),
    );
    event(verify_at(&lower_scheme, &s.body, &source, now()));
}

#[test]
fn bearer_form_checks_issued_tokens() {
    let source = source_with(
        &[("t1", "issued-token-1"), ("t2", "issued-token-2")],
        json!({"form": "bearer"}),
    );
    let s = walmart::sign(&sign_request(
        "issued-token-2",
        "ORDER_UPDATES",
        json!({"form": "bearer"}),
        now(),
    ))
    .unwrap();
    assert_eq!(get(&s.headers, "Authorization"), "Bearer issued-token-2");
    let e = event(verify_signed(&s, &source));
    assert_eq!(e.event_type, "ORDER_UPDATES");
    let wrong = with(&s.headers, "Authorization", "Bearer expired-token");
    assert_eq!(
        verify_at(&wrong, &s.body, &source, now()),
        Err(Refusal::SignatureMismatch)
    );
    assert_eq!(
        verify_at(
            &without(&s.headers, "Authorization"),
            &s.body,
            &source,
            now()
        ),
        Err(Refusal::MissingSignature)
    );
}

#[test]
fn custom_auth_header_name() {
    let options = json!({"authHeaderName": "X-Hub-Signature"});
    let s = walmart::sign(&sign_request("k", "PO_CREATED", options.clone(), now())).unwrap();
    assert!(s.headers.iter().any(|(n, _)| n == "X-Hub-Signature"));
    let source = source_with(&[("1", "k")], options);
    event(verify_signed(&s, &source));
    assert_eq!(
        verify_signed(&s, &hmac_source("k")),
        Err(Refusal::MissingSignature)
    );
}

/// `check_options` refuses what `verify` refuses as misconfigured, with the same reason, and
/// passes the documented options.
#[test]
fn check_options_refuses_what_verify_would() {
    let signed = signed("client-secret");
    for bad in [
        json!({"form": "oauth"}),
        json!({"form": "HMAC"}),
        json!({"form": ""}),
    ] {
        let refused = walmart::check_options(&bad);
        assert!(
            matches!(refused, Err(Refusal::Misconfigured(_))),
            "{bad}: {refused:?}"
        );
        let verified = verify_signed(
            &signed,
            &source_with(&[("1", "client-secret")], bad.clone()),
        );
        assert_eq!(verified.err(), refused.err(), "{bad}");
    }
    for good in [
        json!({}),
        json!({"form": "hmac"}),
        json!({"form": "hmac-body", "authHeaderName": "X-Auth"}),
        json!({"form": "basic"}),
        json!({"form": "bearer"}),
        json!({"authHeaderName": ""}),
    ] {
        assert_eq!(walmart::check_options(&good), Ok(()), "{good}");
        let verified = verify_signed(
            &signed,
            &source_with(&[("1", "client-secret")], good.clone()),
        );
        assert!(
            !matches!(verified, Err(Refusal::Misconfigured(_))),
            "{good}: {verified:?}"
        );
    }
}

fn normalized(event_type: &str, payload: Value) -> Normalized {
    walmart::normalize(&NativeEvent {
        kind: Kind::Walmart,
        event_type: event_type.into(),
        dedup_key: "k".into(),
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: json!({"source": {"eventType": event_type}, "payload": payload}),
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
    let po = json!({"purchaseOrderId": "PO1"});
    for (t, topic) in [
        ("PO_CREATED", "order.created"),
        ("INTENT_TO_CANCEL", "order.updated"),
        ("PO_LINE_AUTOCANCELLED", "order.cancelled"),
    ] {
        let n = normalized(t, po.clone());
        assert_eq!(
            (n.topic, n.resource),
            (Some(topic), res("order", "PO1")),
            "{t}"
        );
    }
    for (sub, topic) in [
        ("PO_CREATED", "order.created"),
        ("INTENT_TO_CANCEL", "order.updated"),
        ("PO_LINE_AUTOCANCELLED", "order.cancelled"),
        ("FRAUD_CANCEL", "order.cancelled"),
        ("SOMETHING_NEW", "order.updated"),
    ] {
        let n = normalized("ORDER_UPDATES", json!({"subEventType": sub, "orderId": 77}));
        assert_eq!(n.topic, Some(topic), "{sub}");
        assert_eq!(n.resource, res("order", "77"));
        assert_eq!(n.status.as_deref(), Some(sub));
    }
    assert_eq!(
        normalized("ORDER_UPDATES", json!({})).topic,
        Some("order.updated")
    );
}

#[test]
fn normalize_item_performance_and_other_events() {
    let sku = json!({"sku": "SKU1", "itemId": "I1"});
    for (t, topic) in [
        ("INVENTORY_OOS", "inventory.low"),
        ("OFFER_PUBLISHED", "listing.approved"),
        ("OFFER_UNPUBLISHED", "listing.rejected"),
        ("BUY_BOX_CHANGED", "pricing.changed"),
    ] {
        let n = normalized(t, sku.clone());
        assert_eq!(
            (n.topic, n.resource),
            (Some(topic), res("item", "SKU1")),
            "{t}"
        );
    }
    assert_eq!(
        normalized("INVENTORY_OOS", json!({"itemId": 5})).resource,
        res("item", "5")
    );

    let n = normalized(
        "SELLER_PERFORMANCE_NOTIFICATIONS",
        json!({"notificationType": "ALARMS"}),
    );
    assert_eq!(
        (n.topic, n.status.as_deref()),
        (Some("performance.alarms"), Some("ALARMS"))
    );
    let n = normalized(
        "SELLER_PERFORMANCE_NOTIFICATIONS",
        json!({"notificationType": "REPORT"}),
    );
    assert_eq!(n.topic, Some("performance.report"));
    assert_eq!(
        normalized("SELLER_PERFORMANCE_NOTIFICATIONS", json!({})).topic,
        None
    );

    assert_eq!(
        normalized("REPORT_STATUS", json!({"reportId": "R"})),
        Normalized::default()
    );
    assert_eq!(normalized("WHATEVER", json!({})).topic, None);
    let weird = walmart::normalize(&NativeEvent {
        kind: Kind::Walmart,
        event_type: "PO_CREATED".into(),
        dedup_key: "k".into(),
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: json!([1, 2]),
    });
    assert_eq!((weird.topic, weird.resource), (Some("order.created"), None));
}

#[test]
fn signed_events_round_trip_to_topics() {
    for (t, options, topic, kind) in [
        (
            "PO_CREATED",
            json!({}),
            Some("order.created"),
            Some("order"),
        ),
        (
            "ORDER_UPDATES",
            json!({}),
            Some("order.created"),
            Some("order"),
        ),
        (
            "ORDER_UPDATES",
            json!({"subEventType": "FRAUD_CANCEL"}),
            Some("order.cancelled"),
            Some("order"),
        ),
        (
            "INTENT_TO_CANCEL",
            json!({}),
            Some("order.updated"),
            Some("order"),
        ),
        (
            "INVENTORY_OOS",
            json!({}),
            Some("inventory.low"),
            Some("item"),
        ),
        (
            "BUY_BOX_CHANGED",
            json!({}),
            Some("pricing.changed"),
            Some("item"),
        ),
        (
            "SELLER_PERFORMANCE_NOTIFICATIONS",
            json!({}),
            Some("performance.alarms"),
            None,
        ),
        (
            "SELLER_PERFORMANCE_NOTIFICATIONS",
            json!({"notificationType": "REPORT"}),
            Some("performance.report"),
            None,
        ),
        ("REPORT_STATUS", json!({}), None, None),
    ] {
        let s = walmart::sign(&sign_request("k", t, options, now())).unwrap();
        let e = event(verify_signed(&s, &hmac_source("k")));
        assert_eq!(e.event_type, t);
        let n = walmart::normalize(&e);
        assert_eq!(n.topic, topic, "{t}");
        assert_eq!(n.resource.map(|r| r.kind), kind.map(String::from), "{t}");
    }
    // Default event type, and a generated event id when none is given.
    let mut req = sign_request("k", "", json!({}), now());
    req.event_id.clear();
    let e = event(verify_signed(
        &walmart::sign(&req).unwrap(),
        &hmac_source("k"),
    ));
    assert_eq!(e.event_type, "PO_CREATED");
    assert_eq!(e.dedup_key.len(), 32);
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..256),
                    ts in prop_oneof![Just("1700000000".to_string()), Just("99999999999999999999".to_string()), Just("-5".to_string()), ".{0,20}"],
                    version in ".{0,8}",
                    sig in ".{0,80}") {
        let source = source_with(&[("1", "k"), ("2", "")], json!({}));
        let _ = verify_at(&[("WM_SEC.AUTH_SIGNATURE".into(), sig), ("WM_SEC.TIMESTAMP".into(), ts.clone())], &body, &source, now());
        let headers = hmac_headers("k", &ts, &body, &version);
        if let Ok(Outcome::Event(e)) = verify_at(&headers, &body, &source, now()) {
            let _ = walmart::normalize(&e);
        }
        for form in ["basic", "bearer"] {
            let source = source_with(&[("1", "k")], json!({"form": form}));
            let _ = verify_at(&[("Authorization".into(), String::from_utf8_lossy(&body).into_owned())], &body, &source, now());
        }
    }
}

/// Walmart's documented HMAC delivery: the body alone, hex or base64, in `authHeaderName`; and
/// a request in the timestamp form cannot pass by dropping its timestamp.
#[test]
fn hmac_body_form_accepts_body_only_macs_in_hex_or_base64() {
    use base64::Engine;
    use switchyard_marketplaces::{
        Inbound, Kind, NoKeys, Outcome, Refusal, SourceSecret, SourceSettings,
    };
    let body = br#"{"source":{"eventType":"PO_CREATED","eventTime":"2026-11-23T10:00:00Z","eventId":"e1"},"payload":{"partnerId":"p1","purchaseOrderId":"PO-1"}}"#;
    let mac = switchyard_marketplaces::util::hmac_sha256(b"client-secret", &[body]);
    let settings = |form: &str| SourceSettings {
        kind: Kind::Walmart,
        secrets: vec![SourceSecret {
            id: "1".into(),
            value: "client-secret".into(),
        }],
        replay_window: jiff::SignedDuration::from_mins(5),
        options: serde_json::json!({"form": form, "authHeaderName": "X-Walmart-Signature"}),
    };
    let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
    for presented in [
        hex::encode(mac),
        base64::engine::general_purpose::STANDARD.encode(mac),
    ] {
        let headers = vec![("x-walmart-signature".to_string(), presented)];
        let request = Inbound {
            method: "POST",
            endpoint_url: "https://hub/ingest/x",
            query: "",
            headers: &headers,
            body,
            now,
        };
        assert!(matches!(
            Kind::Walmart.verify(&request, &settings("hmac-body"), &NoKeys),
            Ok(Outcome::Event(_))
        ));
        assert_eq!(
            Kind::Walmart
                .verify(&request, &settings("hmac"), &NoKeys)
                .unwrap_err(),
            Refusal::MissingSignature
        );
    }
    let headers = vec![("x-walmart-signature".to_string(), hex::encode(mac))];
    let tampered = br#"{"source":{"eventType":"PO_CREATED","eventTime":"2026-11-23T10:00:00Z","eventId":"e2"},"payload":{"partnerId":"p1","purchaseOrderId":"PO-1"}}"#;
    let request = Inbound {
        method: "POST",
        endpoint_url: "https://hub/ingest/x",
        query: "",
        headers: &headers,
        body: tampered,
        now,
    };
    assert_eq!(
        Kind::Walmart
            .verify(&request, &settings("hmac-body"), &NoKeys)
            .unwrap_err(),
        Refusal::SignatureMismatch
    );
}
