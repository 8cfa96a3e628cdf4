//! Flipkart: the seed's Bearer + HMAC form, the FKLOGIN form, dedup keys and topics.

mod support;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::python;
use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Normalized, Outcome, Refusal, Resource, SignRequest,
    SignedRequest, SourceSecret, SourceSettings, flipkart, util,
};

const URL: &str = "https://hub.example/ingest/src_fk";

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn source_with(secrets: &[(&str, &str)], options: Value) -> SourceSettings {
    SourceSettings {
        kind: Kind::Flipkart,
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

fn seed_source(secret: &str) -> SourceSettings {
    source_with(&[("main", secret)], json!({}))
}

fn fklogin_source(secret: &str) -> SourceSettings {
    source_with(
        &[("main", secret)],
        json!({"form": "fklogin", "appId": "app-77"}),
    )
}

fn sign_request(secret: &str, event_type: &str, options: Value, at: Timestamp) -> SignRequest {
    SignRequest {
        event_type: event_type.into(),
        secret: secret.into(),
        options,
        endpoint_url: URL.into(),
        partner_id: "seller-1".into(),
        resource_id: "OD1234".into(),
        event_id: String::new(),
        now: at,
    }
}

fn seed_signed(secret: &str) -> SignedRequest {
    flipkart::sign(&sign_request(secret, "shipment_created", json!({}), now())).unwrap()
}

fn fklogin_signed(secret: &str, at: Timestamp) -> SignedRequest {
    flipkart::sign(&sign_request(
        secret,
        "shipment_created",
        json!({"form": "fklogin", "appId": "app-77"}),
        at,
    ))
    .unwrap()
}

fn verify_full(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    source: &SourceSettings,
) -> Result<Outcome, Refusal> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let req = Inbound {
        method,
        endpoint_url: url,
        query: "",
        headers: &headers,
        body,
        now: now(),
    };
    flipkart::verify(&req, source, &NoKeys)
}

fn verify_at(
    headers: &[(String, String)],
    body: &[u8],
    source: &SourceSettings,
) -> Result<Outcome, Refusal> {
    verify_full("POST", URL, headers, body, source)
}

fn verify_signed(signed: &SignedRequest, source: &SourceSettings) -> Result<Outcome, Refusal> {
    verify_at(&signed.headers, &signed.body, source)
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

fn with(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out = without(headers, name);
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

/// The FKLOGIN header for a given signature string.
fn fklogin(app_id: &str, sig: &str) -> String {
    format!("FKLOGIN {}", STANDARD.encode(format!("{app_id}:{sig}")))
}

#[test]
fn seed_form_is_accepted() {
    let s = seed_signed("s3cret");
    assert_eq!(get(&s.headers, "Authorization"), "Bearer s3cret");
    let e = event(verify_signed(&s, &seed_source("s3cret")));
    assert_eq!(e.kind, Kind::Flipkart);
    assert_eq!(e.event_type, "shipment_created");
    assert_eq!(e.native_event_id, None);
    assert_eq!(e.partner_id, None);
    assert_eq!(e.occurred_at, Some(now()));
    assert_eq!(
        e.dedup_key,
        util::hash_key(&["shipment_created", "SHP-OD1234", "2023-11-14T22:13:20Z"])
    );
    let n = flipkart::normalize(&e);
    assert_eq!(n.topic, Some("order.created"));
    assert_eq!(
        n.resource,
        Some(Resource {
            kind: "order".into(),
            id: "OD1234".into()
        })
    );
    assert_eq!(n.status.as_deref(), Some("APPROVED"));
}

#[test]
fn seed_form_uses_labelled_secrets() {
    let source = source_with(
        &[("token", "static-token"), ("hmac", "hmac-key")],
        json!({}),
    );
    let s = flipkart::sign(&sign_request(
        "hmac-key",
        "shipment_created",
        json!({"token": "static-token"}),
        now(),
    ))
    .unwrap();
    event(verify_signed(&s, &source));
    // The HMAC key is not a valid bearer token, nor the token an HMAC key, once labelled.
    let swapped = with(&s.headers, "Authorization", "Bearer hmac-key");
    assert_eq!(
        verify_at(&swapped, &s.body, &source),
        Err(Refusal::SignatureMismatch)
    );
    let by_token = flipkart::sign(&sign_request(
        "static-token",
        "shipment_created",
        json!({"token": "static-token"}),
        now(),
    ))
    .unwrap();
    assert_eq!(
        verify_signed(&by_token, &source),
        Err(Refusal::SignatureMismatch)
    );
}

#[test]
#[ignore = "needs python3; bash .ci/run runs it"]
fn seed_hmac_matches_python() {
    let s = seed_signed("s3cret");
    let code = "import hmac, hashlib, sys\n\
        print(hmac.new(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), hashlib.sha256).hexdigest())";
    let py = python(code, &[&hex::encode("s3cret"), &hex::encode(&s.body)], b"");
    assert_eq!(get(&s.headers, "X-Flipkart-Signature"), py);
}

#[test]
fn fklogin_form_is_accepted() {
    let s = fklogin_signed("fk-secret", now());
    assert_eq!(get(&s.headers, "X_Date"), "Tue, 14 Nov 2023 22:13:20 GMT");
    let e = event(verify_signed(&s, &fklogin_source("fk-secret")));
    assert_eq!(e.event_type, "shipment_created");
    // A second secret (rotation) and hyphenated header names work too.
    let rotated = source_with(
        &[("new", "other"), ("old", "fk-secret")],
        json!({"form": "fklogin", "appId": "app-77"}),
    );
    event(verify_signed(&s, &rotated));
    let hyphens: Vec<(String, String)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.replace('_', "-"), v.clone()))
        .collect();
    event(verify_at(&hyphens, &s.body, &fklogin_source("fk-secret")));
}

#[test]
#[ignore = "needs python3; bash .ci/run runs it"]
fn fklogin_digest_matches_python() {
    let s = fklogin_signed("fk-secret", now());
    let date = get(&s.headers, "X_Date");
    let message = format!("{date}{URL}POSTfk-secret");
    let code = "import hashlib, sys\nprint(hashlib.sha1(bytes.fromhex(sys.argv[1])).hexdigest())";
    let py = python(code, &[&hex::encode(&message)], b"");
    assert_eq!(get(&s.headers, "X_Authorization"), fklogin("app-77", &py));
}

#[test]
fn fklogin_digest_in_base64_is_accepted() {
    let s = fklogin_signed("fk-secret", now());
    let date = get(&s.headers, "X_Date");
    let message = format!("{date}{URL}POSTfk-secret");
    // The same digest in base64.
    use sha1::Digest;
    let digest = sha1::Sha1::digest(message.as_bytes());
    let headers = with(
        &s.headers,
        "X_Authorization",
        &fklogin("app-77", &STANDARD.encode(digest)),
    );
    event(verify_at(&headers, &s.body, &fklogin_source("fk-secret")));
}

#[test]
fn fklogin_signs_url_method_and_app_id() {
    let s = fklogin_signed("fk-secret", now());
    let source = fklogin_source("fk-secret");
    assert_eq!(
        verify_full(
            "POST",
            "https://hub.example/ingest/other",
            &s.headers,
            &s.body,
            &source
        ),
        Err(Refusal::SignatureMismatch)
    );
    assert_eq!(
        verify_full("PUT", URL, &s.headers, &s.body, &source),
        Err(Refusal::SignatureMismatch)
    );
    let sig = String::from_utf8(
        STANDARD
            .decode(get(&s.headers, "X_Authorization").trim_start_matches("FKLOGIN "))
            .unwrap(),
    )
    .unwrap();
    let sig = sig.rsplit_once(':').unwrap().1;
    let other_app = with(&s.headers, "X_Authorization", &fklogin("app-78", sig));
    assert_eq!(
        verify_at(&other_app, &s.body, &source),
        Err(Refusal::SignatureMismatch)
    );
    for garbage in ["FKLOGIN ***", "FKLOGIN bm9jb2xvbg==", "Bearer x", "FKLOGIN"] {
        let headers = with(&s.headers, "X_Authorization", garbage);
        assert_eq!(
            verify_at(&headers, &s.body, &source),
            Err(Refusal::SignatureMismatch)
        );
    }
    // The date is signed: changing it breaks the signature.
    let moved = with(&s.headers, "X_Date", "Tue, 14 Nov 2023 22:13:21 GMT");
    assert_eq!(
        verify_at(&moved, &s.body, &source),
        Err(Refusal::SignatureMismatch)
    );
    // No appId configured.
    let no_app = source_with(&[("main", "fk-secret")], json!({"form": "fklogin"}));
    assert!(matches!(
        verify_signed(&s, &no_app),
        Err(Refusal::Misconfigured(_))
    ));
}

#[test]
fn tampered_body_is_refused() {
    let s = seed_signed("s3cret");
    let body = String::from_utf8(s.body.clone())
        .unwrap()
        .replace("OD1234", "OD9999");
    assert_eq!(
        verify_at(&s.headers, body.as_bytes(), &seed_source("s3cret")),
        Err(Refusal::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_refused() {
    assert_eq!(
        verify_signed(&seed_signed("s3cret"), &seed_source("other")),
        Err(Refusal::SignatureMismatch)
    );
    // A right HMAC with a wrong token, and a right token with a wrong HMAC.
    let s = seed_signed("s3cret");
    let bad_token = with(&s.headers, "Authorization", "Bearer nope");
    assert_eq!(
        verify_at(&bad_token, &s.body, &seed_source("s3cret")),
        Err(Refusal::SignatureMismatch)
    );
    let basic = with(&s.headers, "Authorization", "Basic s3cret");
    assert_eq!(
        verify_at(&basic, &s.body, &seed_source("s3cret")),
        Err(Refusal::SignatureMismatch)
    );
    let bad_mac = with(&s.headers, "X-Flipkart-Signature", &"0".repeat(64));
    assert_eq!(
        verify_at(&bad_mac, &s.body, &seed_source("s3cret")),
        Err(Refusal::SignatureMismatch)
    );
    assert_eq!(
        verify_signed(
            &fklogin_signed("fk-secret", now()),
            &fklogin_source("other")
        ),
        Err(Refusal::SignatureMismatch)
    );
}

#[test]
fn stale_x_date_is_refused() {
    let source = fklogin_source("fk-secret");
    let old = fklogin_signed("fk-secret", now() - SignedDuration::from_mins(6));
    assert_eq!(verify_signed(&old, &source), Err(Refusal::StaleTimestamp));
    let future = fklogin_signed("fk-secret", now() + SignedDuration::from_mins(6));
    assert_eq!(
        verify_signed(&future, &source),
        Err(Refusal::StaleTimestamp)
    );
    let recent = fklogin_signed("fk-secret", now() - SignedDuration::from_mins(4));
    event(verify_signed(&recent, &source));
    // A signed date that is not an HTTP date.
    let date = "yesterday";
    let digest = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(
            format!("{date}{URL}POSTfk-secret").as_bytes(),
        ))
    };
    let headers = vec![
        ("X_Date".to_string(), date.to_string()),
        ("X_Authorization".to_string(), fklogin("app-77", &digest)),
    ];
    assert!(matches!(
        verify_at(&headers, &old.body, &source),
        Err(Refusal::MalformedBody(_))
    ));
}

#[test]
fn duplicates_share_the_dedup_key() {
    let a = event(verify_signed(&seed_signed("k"), &seed_source("k")));
    let b = event(verify_signed(&seed_signed("k"), &seed_source("k")));
    assert_eq!(a.dedup_key, b.dedup_key);
    let fk = event(verify_signed(
        &fklogin_signed("k", now()),
        &fklogin_source("k"),
    ));
    assert_eq!(
        a.dedup_key, fk.dedup_key,
        "same body fields, same key, whatever the form"
    );
    let later = flipkart::sign(&sign_request(
        "k",
        "shipment_created",
        json!({}),
        now() + SignedDuration::from_secs(1),
    ))
    .unwrap();
    let c = event(verify_signed(&later, &seed_source("k")));
    assert_ne!(a.dedup_key, c.dedup_key);
    let shipped = flipkart::sign(&sign_request("k", "shipment_shipped", json!({}), now())).unwrap();
    let d = event(verify_signed(&shipped, &seed_source("k")));
    assert_ne!(a.dedup_key, d.dedup_key);
}

#[test]
fn return_events_dedup_on_return_id_and_bodies_without_ids_hash_whole() {
    let mac = |body: &[u8]| hex::encode(util::hmac_sha256(b"k", &[body]));
    let headers = |body: &[u8]| {
        vec![
            ("Authorization".to_string(), "Bearer k".to_string()),
            ("X-Flipkart-Signature".to_string(), mac(body)),
        ]
    };
    let body = br#"{"eventType":"return_created","returnId":"R1","timestamp":1700000000}"#;
    let e = event(verify_at(&headers(body), body, &seed_source("k")));
    assert_eq!(
        e.dedup_key,
        util::hash_key(&["return_created", "R1", "1700000000"])
    );
    assert_eq!(e.occurred_at, Some(now()));
    let ms = br#"{"eventType":"return_created","returnId":"R1","timestamp":1700000000000}"#;
    let e = event(verify_at(&headers(ms), ms, &seed_source("k")));
    assert_eq!(e.occurred_at, Some(now()));

    let a = br#"{"eventType":"x","attributes":{"a":1}}"#;
    let b = br#"{"eventType":"x","attributes":{"a":2}}"#;
    let ka = event(verify_at(&headers(a), a, &seed_source("k"))).dedup_key;
    let kb = event(verify_at(&headers(b), b, &seed_source("k"))).dedup_key;
    assert_ne!(ka, kb);
}

#[test]
fn malformed_json_is_refused() {
    let mac = |body: &[u8]| hex::encode(util::hmac_sha256(b"k", &[body]));
    for body in [
        b"{nope".as_slice(),
        b"[]",
        br#"{"shipmentId":"S1"}"#,
        br#"{"eventType":""}"#,
    ] {
        let headers = vec![
            ("Authorization".to_string(), "Bearer k".to_string()),
            ("X-Flipkart-Signature".to_string(), mac(body)),
        ];
        assert!(matches!(
            verify_at(&headers, body, &seed_source("k")),
            Err(Refusal::MalformedBody(_))
        ));
    }
}

#[test]
fn missing_signature_is_refused() {
    let s = seed_signed("k");
    for name in ["Authorization", "X-Flipkart-Signature"] {
        assert_eq!(
            verify_at(&without(&s.headers, name), &s.body, &seed_source("k")),
            Err(Refusal::MissingSignature)
        );
    }
    let f = fklogin_signed("k", now());
    for name in ["X_Date", "X_Authorization"] {
        assert_eq!(
            verify_at(&without(&f.headers, name), &f.body, &fklogin_source("k")),
            Err(Refusal::MissingSignature)
        );
    }
    // The form the source is not configured for does not count.
    assert_eq!(
        verify_signed(&f, &seed_source("k")),
        Err(Refusal::MissingSignature)
    );
    assert_eq!(
        verify_signed(&s, &fklogin_source("k")),
        Err(Refusal::MissingSignature)
    );
    assert!(matches!(
        verify_signed(&s, &source_with(&[("main", "k")], json!({"form": "x"}))),
        Err(Refusal::Misconfigured(_))
    ));
    assert!(matches!(
        flipkart::sign(&sign_request("k", "", json!({"form": "fklogin"}), now())),
        Err(Refusal::Misconfigured(_))
    ));
}

/// `check_options` refuses what `verify` refuses as misconfigured, with the same reason, and
/// passes the documented options.
#[test]
fn check_options_refuses_what_verify_would() {
    let signed = fklogin_signed("s3cret", now());
    for bad in [
        json!({"form": "fklogin"}),
        json!({"form": "fklogin", "appId": ""}),
        json!({"form": "fklogin", "appId": 77}),
        json!({"form": "hmac"}),
        json!({"form": "FKLOGIN", "appId": "app-77"}),
    ] {
        let refused = flipkart::check_options(&bad);
        assert!(
            matches!(refused, Err(Refusal::Misconfigured(_))),
            "{bad}: {refused:?}"
        );
        let verified = verify_signed(&signed, &source_with(&[("main", "s3cret")], bad.clone()));
        assert_eq!(verified.err(), refused.err(), "{bad}");
    }
    for good in [
        json!({}),
        json!({"form": "seed"}),
        json!({"form": "fklogin", "appId": "app-77"}),
    ] {
        assert_eq!(flipkart::check_options(&good), Ok(()), "{good}");
        let verified = verify_signed(&signed, &source_with(&[("main", "s3cret")], good.clone()));
        assert!(
            !matches!(verified, Err(Refusal::Misconfigured(_))),
            "{good}: {verified:?}"
        );
    }
}

fn normalized(event_type: &str, body: Value) -> Normalized {
    flipkart::normalize(&NativeEvent {
        kind: Kind::Flipkart,
        event_type: event_type.into(),
        dedup_key: "k".into(),
        native_event_id: None,
        partner_id: None,
        occurred_at: None,
        payload: body,
    })
}

fn res(kind: &str, id: &str) -> Option<Resource> {
    Some(Resource {
        kind: kind.into(),
        id: id.into(),
    })
}

#[test]
fn normalize_mappings() {
    let items = |status: &str| json!({"shipmentId": "S1", "attributes": {"orderItems": [{"orderItemId": "I1", "orderId": "OD1", "status": status}]}});
    let n = normalized("shipment_created", items("APPROVED"));
    assert_eq!(
        (n.topic, n.resource.clone()),
        (Some("order.created"), res("order", "OD1"))
    );
    for t in [
        "shipment_shipped",
        "shipment_delivered",
        "shipment_packed",
        "order_item_dispatched",
    ] {
        let n = normalized(t, items("SHIPPED"));
        assert_eq!(n.topic, Some("order.updated"), "{t}");
        assert_eq!(n.status.as_deref(), Some("SHIPPED"));
    }
    for t in [
        "shipment_cancelled",
        "order_item_cancellation",
        "item_cancel",
    ] {
        assert_eq!(
            normalized(t, items("APPROVED")).topic,
            Some("order.cancelled"),
            "{t}"
        );
    }
    assert_eq!(
        normalized("shipment_hold", items("CANCELLED")).topic,
        Some("order.cancelled")
    );

    let n = normalized(
        "return_created",
        json!({"returnId": "R1", "shipmentId": "S1"}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("return.updated"), res("return", "R1"))
    );
    let n = normalized("return_cancelled", json!({"attributes": {"returnId": 9}}));
    assert_eq!(
        (n.topic, n.resource),
        (Some("return.updated"), res("return", "9"))
    );
    let n = normalized("return_completed", items("RETURNED"));
    assert_eq!(n.resource, res("order", "OD1"));

    let n = normalized(
        "shipment_shipped",
        json!({"shipmentId": "S1", "attributes": {"orderItems": []}}),
    );
    assert_eq!(n.resource, res("shipment", "S1"));
    assert_eq!(
        normalized("something_else", json!({})),
        Normalized::default()
    );
    assert_eq!(
        normalized("shipment_created", json!(null)).topic,
        Some("order.created")
    );
}

#[test]
fn signed_events_round_trip_to_topics() {
    for (t, topic, kind) in [
        ("shipment_created", Some("order.created"), "order"),
        ("shipment_shipped", Some("order.updated"), "order"),
        ("shipment_delivered", Some("order.updated"), "order"),
        ("shipment_cancelled", Some("order.cancelled"), "order"),
        ("return_created", Some("return.updated"), "return"),
    ] {
        for options in [json!({}), json!({"form": "fklogin", "appId": "app-77"})] {
            let s = flipkart::sign(&sign_request("k", t, options, now())).unwrap();
            let source = if s.headers.iter().any(|(n, _)| n == "X_Date") {
                fklogin_source("k")
            } else {
                seed_source("k")
            };
            let e = event(verify_signed(&s, &source));
            let n = flipkart::normalize(&e);
            assert_eq!(n.topic, topic, "{t}");
            assert_eq!(n.resource.map(|r| r.kind).as_deref(), Some(kind), "{t}");
        }
    }
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..256),
                    auth in ".{0,60}", date in ".{0,40}", sig in ".{0,80}") {
        let headers = vec![
            ("Authorization".to_string(), auth.clone()),
            ("X-Flipkart-Signature".to_string(), sig.clone()),
            ("X_Date".to_string(), date.clone()),
            ("X_Authorization".to_string(), auth.clone()),
        ];
        let _ = verify_at(&headers, &body, &seed_source("k"));
        let _ = verify_at(&headers, &body, &fklogin_source("k"));
        let signed = vec![
            ("Authorization".to_string(), "Bearer k".to_string()),
            ("X-Flipkart-Signature".to_string(), hex::encode(util::hmac_sha256(b"k", &[&body]))),
        ];
        if let Ok(Outcome::Event(e)) = verify_at(&signed, &body, &seed_source("k")) {
            let _ = flipkart::normalize(&e);
        }
    }
}
