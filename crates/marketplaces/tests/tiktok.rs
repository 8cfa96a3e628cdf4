//! TikTok Shop: both signature forms, the replay window on the body's timestamp, dedup keys and
//! topics.

mod support;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::python;
use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Outcome, Refusal, Resource, SignRequest, SignedRequest,
    SourceSecret, SourceSettings, tiktok, util,
};

const EXAMPLE_BODY: &str = r#"{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":"576684019603311365","order_status":"AWAITING_SHIPMENT","update_time":1664095610}}"#;
const EXAMPLE_SIGNATURE: &str = "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27";

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn settings(secrets: &[&str], options: Value) -> SourceSettings {
    SourceSettings {
        kind: Kind::Tiktok,
        secrets: secrets
            .iter()
            .enumerate()
            .map(|(i, s)| SourceSecret {
                id: i.to_string(),
                value: (*s).into(),
            })
            .collect(),
        replay_window: SignedDuration::from_mins(5),
        options,
    }
}

fn auth_source(secret: &str) -> SourceSettings {
    settings(&[secret], json!({"appKey": "app-key"}))
}

fn seed_source(secret: &str) -> SourceSettings {
    settings(&[secret], json!({"form": "seed"}))
}

fn sign_request(secret: &str, options: Value, event_type: &str, at: Timestamp) -> SignRequest {
    SignRequest {
        event_type: event_type.into(),
        secret: secret.into(),
        options,
        endpoint_url: "https://hub.example/ingest/src_1".into(),
        partner_id: "shop-1".into(),
        resource_id: "576684019603311365".into(),
        event_id: "notif-1".into(),
        now: at,
    }
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
    tiktok::verify(&req, source, &NoKeys)
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

fn header(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.into(), value.into())]
}

const PY_HMAC: &str = "import hmac, hashlib, sys\n\
    print(hmac.new(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), hashlib.sha256).hexdigest())";

#[test]
fn reference_example_signature_is_reproduced_and_accepted() {
    let mac = util::hmac_sha256(
        b"fake_app_secret",
        &[b"fake_app_key", EXAMPLE_BODY.as_bytes()],
    );
    assert_eq!(hex::encode(mac), EXAMPLE_SIGNATURE);

    let source = settings(&["fake_app_secret"], json!({"appKey": "fake_app_key"}));
    let at = Timestamp::from_second(1_664_095_733 + 60).unwrap();
    let e = event(verify_at(
        &header("Authorization", EXAMPLE_SIGNATURE),
        EXAMPLE_BODY.as_bytes(),
        &source,
        at,
    ));
    assert_eq!(e.kind, Kind::Tiktok);
    assert_eq!(e.event_type, "1");
    assert_eq!(e.partner_id.as_deref(), Some("7494726673780148744"));
    assert_eq!(e.native_event_id, None);
    assert_eq!(e.dedup_key.len(), 64, "no notification id: a hash");
    assert_eq!(
        e.occurred_at,
        Some(Timestamp::from_second(1_664_095_610).unwrap())
    );

    let n = tiktok::normalize(&e);
    assert_eq!(n.topic, Some("order.updated"));
    assert_eq!(n.first_sighting_topic, Some("order.created"));
    assert_eq!(
        n.resource,
        Some(Resource {
            kind: "order".into(),
            id: "576684019603311365".into()
        })
    );
    assert_eq!(n.status.as_deref(), Some("AWAITING_SHIPMENT"));
}

#[test]
#[ignore = "needs python3; bash .ci/run runs it"]
fn reference_example_matches_python_hmac() {
    let message = [b"fake_app_key".as_slice(), EXAMPLE_BODY.as_bytes()].concat();
    let py = python(
        PY_HMAC,
        &[&hex::encode("fake_app_secret"), &hex::encode(message)],
        b"",
    );
    assert_eq!(py, EXAMPLE_SIGNATURE);
}

#[test]
#[ignore = "needs python3; bash .ci/run runs it"]
fn signed_requests_match_python_hmac_in_both_forms() {
    let auth = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    let seed = tiktok::sign(&sign_request("s3cret", json!({"form": "seed"}), "1", now())).unwrap();
    let auth_msg = [b"app-key".as_slice(), &auth.body].concat();
    let py_auth = python(
        PY_HMAC,
        &[&hex::encode("s3cret"), &hex::encode(auth_msg)],
        b"",
    );
    let py_seed = python(
        PY_HMAC,
        &[&hex::encode("s3cret"), &hex::encode(&seed.body)],
        b"",
    );
    let get = |s: &SignedRequest, name: &str| {
        s.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get(&auth, "authorization"), py_auth);
    assert_eq!(get(&seed, "x-tts-signature"), py_seed);
}

#[test]
fn authorization_form_is_accepted() {
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    let e = event(verify_signed(&signed, &auth_source("s3cret")));
    assert_eq!(e.event_type, "1");
    assert_eq!(e.dedup_key, "notif-1");
    assert_eq!(e.native_event_id.as_deref(), Some("notif-1"));
    assert_eq!(e.partner_id.as_deref(), Some("shop-1"));
    assert_eq!(e.occurred_at, Some(now()));
    assert_eq!(e.payload["data"]["order_status"], "AWAITING_SHIPMENT");
}

#[test]
fn seed_form_is_accepted() {
    let signed = tiktok::sign(&sign_request(
        "shop-secret",
        json!({"form": "seed"}),
        "1",
        now(),
    ))
    .unwrap();
    let e = event(verify_signed(&signed, &seed_source("shop-secret")));
    assert_eq!(e.dedup_key, "notif-1");
}

#[test]
fn any_secret_of_a_rotating_source_verifies() {
    let signed = tiktok::sign(&sign_request(
        "old",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    let source = settings(&["new", "old"], json!({"appKey": "app-key"}));
    event(verify_signed(&signed, &source));
}

#[test]
fn uppercase_hex_and_base64_signatures_are_accepted() {
    let signed =
        tiktok::sign(&sign_request("s3cret", json!({"form": "seed"}), "1", now())).unwrap();
    let mac = util::hmac_sha256(b"s3cret", &[&signed.body]);
    use base64::Engine;
    for sig in [
        hex::encode(mac).to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(mac),
    ] {
        event(verify_at(
            &header("x-tts-signature", &sig),
            &signed.body,
            &seed_source("s3cret"),
            now(),
        ));
    }
}

#[test]
fn tampered_body_is_refused() {
    for (options, source) in [
        (json!({"appKey": "app-key"}), auth_source("s3cret")),
        (json!({"form": "seed"}), seed_source("s3cret")),
    ] {
        let signed = tiktok::sign(&sign_request("s3cret", options, "1", now())).unwrap();
        let mut body = signed.body.clone();
        let text = String::from_utf8(body.clone()).unwrap();
        body = text.replace("AWAITING_SHIPMENT", "CANCEL").into_bytes();
        assert_ne!(body, signed.body);
        assert_eq!(
            verify_at(&signed.headers, &body, &source, now()),
            Err(Refusal::SignatureMismatch)
        );
    }
}

#[test]
fn wrong_secret_or_app_key_is_refused() {
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    assert_eq!(
        verify_signed(&signed, &auth_source("other")),
        Err(Refusal::SignatureMismatch)
    );
    let other_app = settings(&["s3cret"], json!({"appKey": "other-app"}));
    assert_eq!(
        verify_signed(&signed, &other_app),
        Err(Refusal::SignatureMismatch)
    );
    // A signature of the other form does not pass either.
    assert_eq!(
        verify_signed(&signed, &seed_source("s3cret")),
        Err(Refusal::MissingSignature)
    );
}

#[test]
fn stale_body_timestamp_is_refused() {
    let old = now() - SignedDuration::from_mins(6);
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        old,
    ))
    .unwrap();
    assert_eq!(
        verify_signed(&signed, &auth_source("s3cret")),
        Err(Refusal::StaleTimestamp)
    );
    let future = now() + SignedDuration::from_mins(6);
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        future,
    ))
    .unwrap();
    assert_eq!(
        verify_signed(&signed, &auth_source("s3cret")),
        Err(Refusal::StaleTimestamp)
    );
    let edge = now() - SignedDuration::from_mins(5);
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        edge,
    ))
    .unwrap();
    event(verify_signed(&signed, &auth_source("s3cret")));
}

#[test]
fn timestamp_as_numeric_string_is_accepted_and_missing_is_malformed() {
    let source = seed_source("k");
    let body = br#"{"type":1,"shop_id":"s","timestamp":"1700000000","data":{}}"#;
    let sig = hex::encode(util::hmac_sha256(b"k", &[body]));
    event(verify_at(
        &header("x-tts-signature", &sig),
        body,
        &source,
        now(),
    ));

    let body = br#"{"type":1,"shop_id":"s","data":{}}"#;
    let sig = hex::encode(util::hmac_sha256(b"k", &[body]));
    assert!(matches!(
        verify_at(&header("x-tts-signature", &sig), body, &source, now()),
        Err(Refusal::MalformedBody(_))
    ));
}

#[test]
fn duplicates_share_the_dedup_key() {
    let req = sign_request("s3cret", json!({"appKey": "app-key"}), "1", now());
    let a = event(verify_signed(
        &tiktok::sign(&req).unwrap(),
        &auth_source("s3cret"),
    ));
    let later = SignRequest {
        now: now() + SignedDuration::from_secs(30),
        ..req.clone()
    };
    let b = event(verify_at(
        &tiktok::sign(&later).unwrap().headers,
        &tiktok::sign(&later).unwrap().body,
        &auth_source("s3cret"),
        now(),
    ));
    assert_eq!(
        a.dedup_key, b.dedup_key,
        "a retry carries the same notification id"
    );

    // Without a notification id, identical bodies hash alike and different ones do not.
    let no_id = SignRequest {
        event_id: String::new(),
        ..req.clone()
    };
    let c = event(verify_signed(
        &tiktok::sign(&no_id).unwrap(),
        &auth_source("s3cret"),
    ));
    let d = event(verify_signed(
        &tiktok::sign(&no_id).unwrap(),
        &auth_source("s3cret"),
    ));
    assert_eq!(c.dedup_key, d.dedup_key);
    assert_eq!(c.native_event_id, None);
    let other = SignRequest {
        resource_id: "other-order".into(),
        ..no_id
    };
    let e = event(verify_signed(
        &tiktok::sign(&other).unwrap(),
        &auth_source("s3cret"),
    ));
    assert_ne!(c.dedup_key, e.dedup_key);
}

#[test]
fn malformed_json_is_refused_after_the_signature() {
    let source = auth_source("s3cret");
    for body in [b"{not json".as_slice(), b"[1,2]", b""] {
        let sig = hex::encode(util::hmac_sha256(b"s3cret", &[b"app-key", body]));
        assert!(matches!(
            verify_at(&header("authorization", &sig), body, &source, now()),
            Err(Refusal::MalformedBody(_))
        ));
        // Unsigned, the same body is a missing signature, not a parse error.
        assert_eq!(
            verify_at(&[], body, &source, now()),
            Err(Refusal::MissingSignature)
        );
    }
}

#[test]
fn missing_signature_is_refused() {
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    assert_eq!(
        verify_at(&[], &signed.body, &auth_source("s3cret"), now()),
        Err(Refusal::MissingSignature)
    );
    assert_eq!(
        verify_at(
            &header("authorization", " "),
            &signed.body,
            &auth_source("s3cret"),
            now()
        ),
        Err(Refusal::MissingSignature)
    );
    assert_eq!(
        verify_at(&[], &signed.body, &seed_source("s3cret"), now()),
        Err(Refusal::MissingSignature)
    );
}

#[test]
fn misconfigured_sources_say_so() {
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    for source in [
        settings(&["s3cret"], json!({})),
        settings(&["s3cret"], json!({"form": "nope", "appKey": "app-key"})),
        settings(&[], json!({"appKey": "app-key"})),
    ] {
        assert!(matches!(
            verify_signed(&signed, &source),
            Err(Refusal::Misconfigured(_))
        ));
    }
    assert!(matches!(
        tiktok::sign(&sign_request("s3cret", json!({}), "1", now())),
        Err(Refusal::Misconfigured(_))
    ));
    assert!(matches!(
        tiktok::sign(&sign_request(
            "s3cret",
            json!({"form": "seed"}),
            "ORDER",
            now()
        )),
        Err(Refusal::Unsupported(_))
    ));
}

/// `check_options` refuses what `verify` refuses as misconfigured, with the same reason, and
/// passes the documented options.
#[test]
fn check_options_refuses_what_verify_would() {
    let signed = tiktok::sign(&sign_request(
        "s3cret",
        json!({"appKey": "app-key"}),
        "1",
        now(),
    ))
    .unwrap();
    for bad in [
        json!({}),
        json!({"form": "authorization"}),
        json!({"appKey": ""}),
        json!({"appKey": 7}),
        json!({"form": "nope", "appKey": "app-key"}),
        json!({"form": "Seed"}),
    ] {
        let refused = tiktok::check_options(&bad);
        assert!(
            matches!(refused, Err(Refusal::Misconfigured(_))),
            "{bad}: {refused:?}"
        );
        let verified = verify_signed(&signed, &settings(&["s3cret"], bad.clone()));
        assert_eq!(verified.err(), refused.err(), "{bad}");
    }
    for good in [
        json!({"appKey": "app-key"}),
        json!({"form": "authorization", "appKey": "app-key"}),
        json!({"form": null, "appKey": "app-key"}),
        json!({"form": "seed"}),
    ] {
        assert_eq!(tiktok::check_options(&good), Ok(()), "{good}");
        let verified = verify_signed(&signed, &settings(&["s3cret"], good.clone()));
        assert!(
            !matches!(verified, Err(Refusal::Misconfigured(_))),
            "{good}: {verified:?}"
        );
    }
}

fn normalized(event_type: &str, body: Value) -> switchyard_marketplaces::Normalized {
    tiktok::normalize(&NativeEvent {
        kind: Kind::Tiktok,
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
fn normalize_order_types() {
    let n = normalized(
        "1",
        json!({"data": {"order_id": "O1", "order_status": "CANCEL"}}),
    );
    assert_eq!(n.topic, Some("order.cancelled"));
    assert_eq!(n.first_sighting_topic, None);
    assert_eq!(n.resource, res("order", "O1"));
    assert_eq!(n.status.as_deref(), Some("CANCEL"));

    let n = normalized(
        "1",
        json!({"data": {"order_id": 42, "order_status": "DELIVERED"}}),
    );
    assert_eq!(n.topic, Some("order.updated"));
    assert_eq!(n.first_sighting_topic, Some("order.created"));
    assert_eq!(n.resource, res("order", "42"));

    let n = normalized(
        "2",
        json!({"data": {"order_id": "O1", "reverse_order_status": 3}}),
    );
    assert_eq!(
        (n.topic, n.status.as_deref()),
        (Some("order.updated"), Some("3"))
    );
    assert_eq!(n.first_sighting_topic, None);

    let n = normalized("3", json!({"data": {"order_id": "O1"}}));
    assert_eq!(
        (n.topic, n.resource),
        (Some("order.updated"), res("order", "O1"))
    );

    let n = normalized("4", json!({"data": {"order_id": "O1", "package_id": "P1"}}));
    assert_eq!(
        (n.topic, n.resource),
        (Some("order.updated"), res("order", "O1"))
    );
    let n = normalized("4", json!({"data": {"package_id": "P1"}}));
    assert_eq!(n.resource, res("package", "P1"));

    let n = normalized(
        "11",
        json!({"data": {"order_id": "O1", "cancel_status": "X"}}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("order.cancelled"), res("order", "O1"))
    );

    let n = normalized(
        "12",
        json!({"data": {"order_id": "O1", "return_id": "R1", "return_status": "RETURN_OR_REFUND_REQUEST_PENDING"}}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("return.updated"), res("return", "R1"))
    );
    let n = normalized("12", json!({"data": {"order_id": "O1"}}));
    assert_eq!(n.resource, res("order", "O1"));
}

#[test]
fn normalize_product_account_and_unknown_types() {
    let n = normalized(
        "5",
        json!({"data": {"product_id": "P9", "status": "PRODUCT_AUDIT_SUCCESS"}}),
    );
    assert_eq!(
        (n.topic, n.resource),
        (Some("listing.approved"), res("product", "P9"))
    );
    let n = normalized(
        "5",
        json!({"data": {"product_id": "P9", "product_status": "Failed"}}),
    );
    assert_eq!(n.topic, Some("listing.rejected"));
    let n = normalized(
        "5",
        json!({"data": {"product_id": "P9", "status": "FREEZE"}}),
    );
    assert_eq!((n.topic, n.status.as_deref()), (None, Some("FREEZE")));
    let n = normalized("5", json!({"data": {"product_id": "P9"}}));
    assert_eq!(n.topic, None);

    let n = normalized("6", json!({"shop_id": "7494726673780148744", "data": {}}));
    assert_eq!(
        (n.topic, n.resource),
        (
            Some("account.deauthorized"),
            res("account", "7494726673780148744")
        )
    );

    assert_eq!(normalized("99", json!({"data": {}})).topic, None);
    assert_eq!(
        normalized("1", json!("not an object")).topic,
        Some("order.updated")
    );
}

#[test]
fn signed_events_normalize() {
    let source = seed_source("k");
    for (t, topic) in [
        ("1", Some("order.updated")),
        ("2", Some("order.updated")),
        ("4", Some("order.updated")),
        ("5", Some("listing.approved")),
        ("6", Some("account.deauthorized")),
        ("11", Some("order.cancelled")),
        ("12", Some("return.updated")),
    ] {
        let signed = tiktok::sign(&sign_request("k", json!({"form": "seed"}), t, now())).unwrap();
        let e = event(verify_signed(&signed, &source));
        assert_eq!(e.event_type, t);
        assert_eq!(tiktok::normalize(&e).topic, topic, "type {t}");
    }
    let cancelled = tiktok::sign(&sign_request(
        "k",
        json!({"form": "seed", "orderStatus": "CANCEL"}),
        "1",
        now(),
    ))
    .unwrap();
    let e = event(verify_signed(&cancelled, &source));
    assert_eq!(tiktok::normalize(&e).topic, Some("order.cancelled"));
}

proptest! {
    #[test]
    fn never_panics_on_signed_garbage(body in proptest::collection::vec(any::<u8>(), 0..256),
                                      sig in ".{0,80}") {
        let source = seed_source("k");
        let _ = verify_at(&header("x-tts-signature", &sig), &body, &source, now());
        let good = hex::encode(util::hmac_sha256(b"k", &[&body]));
        let _ = verify_at(&header("x-tts-signature", &good), &body, &source, now());
    }

    #[test]
    fn never_panics_on_signed_json(ty in prop_oneof![Just(json!(1)), Just(json!("5")), Just(json!(null)), Just(json!([1]))],
                                   ts in prop_oneof![Just(json!(1_700_000_000)), Just(json!(-1)), Just(json!(i64::MAX)), Just(json!(1.5)), Just(json!("x"))],
                                   data in prop_oneof![Just(json!({})), Just(json!(null)), Just(json!({"order_id": [1], "update_time": "x"}))]) {
        let source = seed_source("k");
        let body = json!({"type": ty, "timestamp": ts, "data": data}).to_string().into_bytes();
        let good = hex::encode(util::hmac_sha256(b"k", &[&body]));
        if let Ok(Outcome::Event(e)) = verify_at(&header("x-tts-signature", &good), &body, &source, now()) {
            let _ = tiktok::normalize(&e);
        }
    }
}
