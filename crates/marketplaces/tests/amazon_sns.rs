//! Amazon SNS: AWS-signed public vectors, round trips through `sign`, every refusal, the
//! normalized topics, and (when Node.js is installed) verification of `sign`'s output by
//! implementations not written in this project.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchyard_marketplaces::{
    Handshake, Inbound, KeyRef, KeyStore, Kind, NativeEvent, Normalized, Outcome, Refusal,
    Resource, SignRequest, SignedRequest, SourceSettings, amazon_sns,
};

const VECTOR_CERT_URL: &str =
    "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-vectors.pem";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";

// ---------------------------------------------------------------------------------------------
// Helpers

/// A key store that counts how often it is asked.
#[derive(Default)]
struct Keys {
    certificates: HashMap<KeyRef, Vec<u8>>,
    asked: Cell<usize>,
}

impl Keys {
    fn with(url: &str, pem: &str) -> Keys {
        let mut keys = Keys::default();
        keys.certificates
            .insert(KeyRef::CertificateUrl(url.into()), pem.as_bytes().to_vec());
        keys
    }
}

impl KeyStore for Keys {
    fn get(&self, key: &KeyRef) -> Option<Vec<u8>> {
        self.asked.set(self.asked.get() + 1);
        self.certificates.get(key).cloned()
    }
}

fn settings(options: Value) -> SourceSettings {
    SourceSettings {
        kind: Kind::AmazonSns,
        secrets: Vec::new(),
        replay_window: SignedDuration::from_mins(5),
        options,
    }
}

fn verify_with(
    body: &[u8],
    headers: &[(String, String)],
    now: Timestamp,
    source: &SourceSettings,
    keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    let request = Inbound {
        method: "POST",
        endpoint_url: "https://hooks.example.com/in/amazon",
        query: "",
        headers,
        body,
        now,
    };
    amazon_sns::verify(&request, source, keys)
}

fn now() -> Timestamp {
    "2025-03-01T12:00:00.250Z".parse().unwrap()
}

/// One RSA key for most tests (generating keys is slow), and a second one for the wrong-key test.
fn key_pem(which: usize) -> &'static str {
    static KEYS: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    KEYS[which].get_or_init(|| {
        let signed = amazon_sns::sign(&sign_request("", json!({}), "gen", now())).unwrap();
        signed.key_pem.unwrap()
    })
}

fn sign_request(event_type: &str, options: Value, event_id: &str, at: Timestamp) -> SignRequest {
    SignRequest {
        event_type: event_type.into(),
        secret: String::new(),
        options,
        endpoint_url: "https://hooks.example.com/in/amazon".into(),
        partner_id: "A2SELLER".into(),
        resource_id: "114-1234567-7654321".into(),
        event_id: event_id.into(),
        now: at,
    }
}

/// Signs with the shared key.
fn sign(event_type: &str, options: Value, event_id: &str, at: Timestamp) -> SignedRequest {
    let mut request = sign_request(event_type, options, event_id, at);
    request.secret = key_pem(0).to_owned();
    amazon_sns::sign(&request).unwrap()
}

/// Verifies a signed request as received at `at`, its certificate served at `url`.
fn deliver(
    signed: &SignedRequest,
    url: &str,
    at: Timestamp,
    source: &SourceSettings,
) -> Result<Outcome, Refusal> {
    let keys = Keys::with(url, signed.certificate_pem.as_deref().unwrap());
    verify_with(&signed.body, &signed.headers, at, source, &keys)
}

fn event(outcome: Result<Outcome, Refusal>) -> NativeEvent {
    match outcome {
        Ok(Outcome::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn handshake(outcome: Result<Outcome, Refusal>) -> Handshake {
    match outcome {
        Ok(Outcome::Handshake(handshake)) => handshake,
        other => panic!("expected a handshake, got {other:?}"),
    }
}

fn body_json(signed: &SignedRequest) -> Value {
    serde_json::from_slice(&signed.body).unwrap()
}

/// The AWS-signed vectors (`tests/vectors/amazon_sns.json`), compiled in.
fn vectors() -> Value {
    serde_json::from_str(include_str!("../../../tests/vectors/amazon_sns.json")).unwrap()
}

/// A vector message as it arrives (the vectors leave out the unsigned `SigningCertURL`), and the
/// time it was signed.
fn vector_body(message: &Value) -> (Vec<u8>, Timestamp) {
    let mut message = message.clone();
    message["SigningCertURL"] = json!(VECTOR_CERT_URL);
    let at = message["Timestamp"].as_str().unwrap().parse().unwrap();
    (serde_json::to_vec(&message).unwrap(), at)
}

fn notification_event(message: Value) -> NativeEvent {
    NativeEvent {
        kind: Kind::AmazonSns,
        event_type: message["NotificationType"]
            .as_str()
            .or_else(|| message["notificationType"].as_str())
            .unwrap_or("Notification")
            .into(),
        dedup_key: "n".into(),
        native_event_id: Some("n".into()),
        partner_id: None,
        occurred_at: None,
        payload: json!({ "Type": "Notification", "Message": message }),
    }
}

fn item(id: &str) -> Option<Resource> {
    Some(Resource {
        kind: "item".into(),
        id: id.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// AWS-signed vectors

#[test]
fn aws_vectors_verify() {
    let vectors = vectors();
    let pem = vectors["signing_cert_pem"].as_str().unwrap();
    let mut versions = Vec::new();
    for message in vectors["messages"].as_array().unwrap() {
        let (body, at) = vector_body(message);
        let keys = Keys::with(VECTOR_CERT_URL, pem);
        let headers = [(
            "x-amz-sns-message-type".to_owned(),
            "Notification".to_owned(),
        )];
        let event = event(verify_with(
            &body,
            &headers,
            at,
            &settings(json!({})),
            &keys,
        ));
        assert_eq!(event.kind, Kind::AmazonSns);
        assert_eq!(event.event_type, "Notification");
        assert_eq!(event.dedup_key, message["MessageId"].as_str().unwrap());
        assert_eq!(
            event.native_event_id.as_deref(),
            message["MessageId"].as_str()
        );
        assert_eq!(event.partner_id, None);
        assert_eq!(event.occurred_at, Some(at));
        assert_eq!(
            event.payload["Message"], "Hello world",
            "not JSON: kept as text"
        );
        assert_eq!(amazon_sns::normalize(&event), Normalized::default());
        versions.push(message["SignatureVersion"].as_str().unwrap().to_owned());
    }
    assert!(versions.contains(&"1".into()) && versions.contains(&"2".into()));
}

#[test]
fn aws_vectors_fail_when_a_signed_field_or_the_signature_changes() {
    let vectors = vectors();
    let pem = vectors["signing_cert_pem"].as_str().unwrap();
    let keys = Keys::with(VECTOR_CERT_URL, pem);
    let source = settings(json!({}));
    for original in vectors["messages"].as_array().unwrap() {
        let (_, at) = vector_body(original);
        let check = |change: &dyn Fn(&mut Value), expected: Option<Refusal>| {
            let mut message = original.clone();
            change(&mut message);
            let (body, _) = vector_body(&message);
            let outcome = verify_with(&body, &[], at, &source, &keys);
            match expected {
                Some(refusal) => assert_eq!(outcome, Err(refusal), "{message}"),
                None => assert!(outcome.is_err(), "{message}"),
            }
        };
        let mismatch = Some(Refusal::SignatureMismatch);
        for field in ["Message", "MessageId", "Subject", "TopicArn"] {
            if original.get(field).is_some() {
                check(
                    &|m| m[field] = json!(format!("{}x", m[field].as_str().unwrap())),
                    mismatch.clone(),
                );
                check(
                    &|m| m[field] = json!(m[field].as_str().unwrap().to_uppercase()),
                    mismatch.clone(),
                );
            }
        }
        // A Subject added or removed changes the string to sign.
        if original.get("Subject").is_some() {
            check(
                &|m| {
                    m.as_object_mut().unwrap().remove("Subject");
                },
                mismatch.clone(),
            );
        } else {
            check(&|m| m["Subject"] = json!("Hello world"), mismatch.clone());
        }
        check(
            &|m| {
                let t: Timestamp = m["Timestamp"].as_str().unwrap().parse().unwrap();
                let later = t + SignedDuration::from_millis(1);
                m["Timestamp"] = json!(later.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            },
            mismatch.clone(),
        );
        check(&|m| m["Type"] = json!("SubscriptionConfirmation"), None);
        check(&|m| m["Type"] = json!("Notificatio"), None);
        check(
            &|m| {
                let mut signature = STANDARD.decode(m["Signature"].as_str().unwrap()).unwrap();
                signature[17] ^= 0x01;
                m["Signature"] = json!(STANDARD.encode(signature));
            },
            mismatch.clone(),
        );
        check(&|m| m["Signature"] = json!("not base64!"), mismatch.clone());
        check(
            &|m| {
                let other = if m["SignatureVersion"] == "1" {
                    "2"
                } else {
                    "1"
                };
                m["SignatureVersion"] = json!(other);
            },
            mismatch.clone(),
        );
        check(
            &|m| m["SignatureVersion"] = json!("3"),
            Some(Refusal::Unsupported(
                "SignatureVersion \"3\" is not supported (1 and 2 are)".into(),
            )),
        );
        check(
            &|m| {
                m.as_object_mut().unwrap().remove("Signature");
            },
            Some(Refusal::MissingSignature),
        );
        check(
            &|m| m["Signature"] = json!(""),
            Some(Refusal::MissingSignature),
        );
    }
}

/// The certificate's validity is checked against `now`: the vectors verify at their own time,
/// but not after the certificate expired (2022-08-17), whatever the replay window.
#[test]
fn aws_vector_certificate_is_checked_for_expiry_at_now() {
    let vectors = vectors();
    let pem = vectors["signing_cert_pem"].as_str().unwrap();
    let message = &vectors["messages"][0];
    let (body, _) = vector_body(message);
    let keys = Keys::with(VECTOR_CERT_URL, pem);
    let mut source = settings(json!({}));
    source.replay_window = SignedDuration::from_hours(24 * 365 * 10);
    let outcome = verify_with(
        &body,
        &[],
        "2023-01-01T00:00:00Z".parse().unwrap(),
        &source,
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::KeyUnavailable(ref why)) if why.contains("valid only")),
        "{outcome:?}"
    );
    // Within the replay window but far from the signing time: stale.
    source.replay_window = SignedDuration::from_mins(5);
    let outcome = verify_with(
        &body,
        &[],
        "2022-08-01T00:00:00Z".parse().unwrap(),
        &source,
        &keys,
    );
    assert_eq!(outcome, Err(Refusal::StaleTimestamp));
}

// ---------------------------------------------------------------------------------------------
// Round trips through `sign`

#[test]
fn signed_order_change_is_accepted() {
    let signed = sign("ORDER_CHANGE", json!({"certUrl": CERT_URL}), "ntf-1", now());
    assert_eq!(signed.method, "POST");
    assert!(
        signed
            .key_pem
            .as_deref()
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert!(
        signed
            .certificate_pem
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let header = |name: &str| {
        signed
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(header("x-amz-sns-message-type"), Some("Notification"));
    assert_eq!(
        header("x-amz-sns-topic-arn"),
        Some("arn:aws:sns:us-east-1:123456789012:switchyard-orders")
    );
    let body = body_json(&signed);
    assert_eq!(header("x-amz-sns-message-id"), body["MessageId"].as_str());
    assert_eq!(body["SignatureVersion"], "2");
    assert_eq!(body["SigningCertURL"], CERT_URL);
    assert_eq!(body["Timestamp"], "2025-03-01T12:00:00.250Z");

    let event = event(deliver(&signed, CERT_URL, now(), &settings(json!({}))));
    assert_eq!(event.event_type, "ORDER_CHANGE");
    assert_eq!(event.dedup_key, "ntf-1");
    assert_eq!(event.native_event_id.as_deref(), Some("ntf-1"));
    assert_eq!(event.partner_id.as_deref(), Some("A2SELLER"));
    assert_eq!(event.occurred_at, Some(now()));
    let change = &event.payload["Message"]["Payload"]["OrderChangeNotification"];
    assert_eq!(change["AmazonOrderId"], "114-1234567-7654321");
    assert_eq!(change["Summary"]["OrderStatus"], "Unshipped");
    assert_eq!(event.payload["MessageId"], body["MessageId"]);

    let normalized = amazon_sns::normalize(&event);
    assert_eq!(normalized.topic, Some("order.updated"));
    assert_eq!(normalized.first_sighting_topic, Some("order.created"));
    assert_eq!(normalized.status.as_deref(), Some("Unshipped"));
    assert_eq!(
        normalized.resource,
        Some(Resource {
            kind: "order".into(),
            id: "114-1234567-7654321".into()
        })
    );
}

#[test]
fn defaults_and_options_of_sign() {
    // Default certificate URL; a subject; a cancelled order; another topic.
    let topic = "arn:aws:sns:eu-west-1:210987654321:orders";
    let signed = sign(
        "",
        json!({"orderStatus": "Canceled", "subject": "Order update", "topicArn": topic}),
        "ntf-2",
        now(),
    );
    let body = body_json(&signed);
    assert_eq!(body["Subject"], "Order update");
    assert_eq!(body["TopicArn"], topic);
    let url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-switchyard.pem";
    assert_eq!(body["SigningCertURL"], url);
    assert!(
        body["UnsubscribeURL"]
            .as_str()
            .unwrap()
            .starts_with("https://sns.eu-west-1.amazonaws.com/")
    );
    let event = event(deliver(
        &signed,
        url,
        now(),
        &settings(json!({"topicArns": [topic]})),
    ));
    let normalized = amazon_sns::normalize(&event);
    assert_eq!(normalized.topic, Some("order.cancelled"));
    assert_eq!(normalized.first_sighting_topic, None);
    assert_eq!(normalized.status.as_deref(), Some("Canceled"));

    let bad = amazon_sns::sign(&sign_request(
        "",
        json!({"signatureVersion": "3"}),
        "x",
        now(),
    ));
    assert!(matches!(bad, Err(Refusal::Misconfigured(_))), "{bad:?}");
    let bad = amazon_sns::sign(&sign_request("ANY_OFFER_CHANGED", json!({}), "x", now()));
    assert!(matches!(bad, Err(Refusal::Unsupported(_))), "{bad:?}");
    let mut request = sign_request("", json!({}), "x", now());
    request.secret = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    assert!(matches!(
        amazon_sns::sign(&request),
        Err(Refusal::Misconfigured(_))
    ));
}

#[test]
fn signature_version_1_round_trips() {
    let signed = sign(
        "",
        json!({"certUrl": CERT_URL, "signatureVersion": "1"}),
        "ntf-v1",
        now(),
    );
    assert_eq!(body_json(&signed)["SignatureVersion"], "1");
    let event = event(deliver(&signed, CERT_URL, now(), &settings(json!({}))));
    assert_eq!(event.dedup_key, "ntf-v1");

    let mut body = body_json(&signed);
    body["SignatureVersion"] = json!("2");
    let keys = Keys::with(CERT_URL, signed.certificate_pem.as_deref().unwrap());
    let outcome = verify_with(
        &serde_json::to_vec(&body).unwrap(),
        &[],
        now(),
        &settings(json!({})),
        &keys,
    );
    assert_eq!(outcome, Err(Refusal::SignatureMismatch));
}

#[test]
fn tampered_body_is_refused() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "ntf-3", now());
    let mut tampered = signed.clone();
    let text = String::from_utf8(signed.body.clone()).unwrap();
    assert!(text.contains("114-1234567-7654321"));
    tampered.body = text
        .replace("114-1234567-7654321", "114-1234567-7654322")
        .into_bytes();
    assert_eq!(
        deliver(&tampered, CERT_URL, now(), &settings(json!({}))),
        Err(Refusal::SignatureMismatch)
    );

    // Unsigned fields may change (SNS does not sign them).
    let mut body = body_json(&signed);
    body["UnsubscribeURL"] = json!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1");
    let mut moved = signed.clone();
    moved.body = serde_json::to_vec(&body).unwrap();
    assert!(deliver(&moved, CERT_URL, now(), &settings(json!({}))).is_ok());
}

#[test]
fn signature_by_another_key_is_refused() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "ntf-4", now());
    let mut other = sign_request("", json!({"certUrl": CERT_URL}), "ntf-4", now());
    other.secret = key_pem(1).to_owned();
    let other = amazon_sns::sign(&other).unwrap();
    assert_ne!(other.certificate_pem, signed.certificate_pem);
    let keys = Keys::with(CERT_URL, other.certificate_pem.as_deref().unwrap());
    let outcome = verify_with(
        &signed.body,
        &signed.headers,
        now(),
        &settings(json!({})),
        &keys,
    );
    assert_eq!(outcome, Err(Refusal::SignatureMismatch));
}

#[test]
fn stale_or_future_timestamp_is_refused() {
    let source = settings(json!({}));
    let old = sign(
        "",
        json!({"certUrl": CERT_URL}),
        "ntf-5",
        now() - SignedDuration::from_secs(301),
    );
    assert_eq!(
        deliver(&old, CERT_URL, now(), &source),
        Err(Refusal::StaleTimestamp)
    );
    let future = sign(
        "",
        json!({"certUrl": CERT_URL}),
        "ntf-5",
        now() + SignedDuration::from_secs(301),
    );
    assert_eq!(
        deliver(&future, CERT_URL, now(), &source),
        Err(Refusal::StaleTimestamp)
    );
    let edge = sign(
        "",
        json!({"certUrl": CERT_URL}),
        "ntf-5",
        now() - SignedDuration::from_secs(299),
    );
    assert!(deliver(&edge, CERT_URL, now(), &source).is_ok());
}

#[test]
fn a_retry_has_the_same_dedup_key() {
    let source = settings(json!({}));
    let first = sign("", json!({"certUrl": CERT_URL}), "ntf-6", now());
    let retry_at = now() + SignedDuration::from_secs(20);
    let retry = sign("", json!({"certUrl": CERT_URL}), "ntf-6", retry_at);
    let other = sign("", json!({"certUrl": CERT_URL}), "ntf-7", now());
    let first = event(deliver(&first, CERT_URL, now(), &source));
    let retry = event(deliver(&retry, CERT_URL, retry_at, &source));
    let other = event(deliver(&other, CERT_URL, now(), &source));
    assert_eq!(first.dedup_key, retry.dedup_key);
    assert_eq!(first.payload["MessageId"], retry.payload["MessageId"]);
    assert_ne!(first.dedup_key, other.dedup_key);
}

#[test]
fn malformed_bodies_are_refused() {
    let keys = Keys::default();
    let source = settings(json!({}));
    for body in [
        &b"{\"Type\": \"Notification\""[..],
        b"",
        b"not json",
        b"[1,2]",
        b"\"x\"",
    ] {
        let outcome = verify_with(body, &[], now(), &source, &keys);
        assert!(
            matches!(outcome, Err(Refusal::MalformedBody(_))),
            "{outcome:?}"
        );
    }
    // Signed fields of the wrong type, or missing.
    let signed = sign("", json!({"certUrl": CERT_URL}), "ntf-8", now());
    for (field, value) in [
        ("MessageId", Value::Null),
        ("Message", json!(1)),
        ("Type", json!(7)),
    ] {
        let mut body = body_json(&signed);
        body[field] = value;
        let outcome = verify_with(
            &serde_json::to_vec(&body).unwrap(),
            &[],
            now(),
            &source,
            &keys,
        );
        assert!(
            matches!(outcome, Err(Refusal::MalformedBody(_))),
            "{field}: {outcome:?}"
        );
    }
    assert_eq!(keys.asked.get(), 0);
}

#[test]
fn certificate_url_off_sns_is_refused_without_asking_the_key_store() {
    for url in [
        "https://evil.example.com/x.pem",
        "http://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.txt",
        "https://sns.us-east-1.amazonaws.com.evil.example.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example.com/x.pem",
    ] {
        let signed = sign("", json!({"certUrl": url}), "ntf-9", now());
        let keys = Keys::with(url, signed.certificate_pem.as_deref().unwrap());
        let outcome = verify_with(
            &signed.body,
            &signed.headers,
            now(),
            &settings(json!({})),
            &keys,
        );
        assert!(
            matches!(outcome, Err(Refusal::KeyUnavailable(_))),
            "{url}: {outcome:?}"
        );
        assert_eq!(keys.asked.get(), 0, "{url}");
    }
    let signed = sign("", json!({"certUrl": CERT_URL}), "ntf-9", now());
    let mut body = body_json(&signed);
    body.as_object_mut().unwrap().remove("SigningCertURL");
    let keys = Keys::default();
    let outcome = verify_with(
        &serde_json::to_vec(&body).unwrap(),
        &[],
        now(),
        &settings(json!({})),
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::KeyUnavailable(_))),
        "{outcome:?}"
    );
    assert_eq!(keys.asked.get(), 0);
}

#[test]
fn missing_certificate_is_asked_for() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "ntf-10", now());
    let keys = Keys::default();
    let outcome = verify_with(
        &signed.body,
        &signed.headers,
        now(),
        &settings(json!({})),
        &keys,
    );
    assert_eq!(
        outcome,
        Err(Refusal::KeyNeeded(KeyRef::CertificateUrl(CERT_URL.into())))
    );
    assert_eq!(keys.asked.get(), 1);

    // A certificate that is not one.
    let keys = Keys::with(
        CERT_URL,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let outcome = verify_with(
        &signed.body,
        &signed.headers,
        now(),
        &settings(json!({})),
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::KeyUnavailable(_))),
        "{outcome:?}"
    );
    let keys = Keys::with(CERT_URL, key_pem(0));
    let outcome = verify_with(
        &signed.body,
        &signed.headers,
        now(),
        &settings(json!({})),
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::KeyUnavailable(_))),
        "{outcome:?}"
    );
}

#[test]
fn subscription_confirmation_is_a_handshake() {
    let source = settings(json!({}));
    let signed = sign(
        "SubscriptionConfirmation",
        json!({"certUrl": CERT_URL}),
        "sub-1",
        now(),
    );
    let body = body_json(&signed);
    assert_eq!(body["Type"], "SubscriptionConfirmation");
    assert!(body["Token"].as_str().is_some_and(|t| !t.is_empty()));
    let answer = handshake(deliver(&signed, CERT_URL, now(), &source));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.confirm_url.as_deref(), body["SubscribeURL"].as_str());
    assert!(answer.confirm_url.as_deref().unwrap().starts_with(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns"
    ));

    let chosen = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=abc";
    let signed = sign(
        "SubscriptionConfirmation",
        json!({"certUrl": CERT_URL, "subscribeUrl": chosen}),
        "sub-2",
        now(),
    );
    let answer = handshake(deliver(&signed, CERT_URL, now(), &source));
    assert_eq!(answer.confirm_url.as_deref(), Some(chosen));

    for bad in [
        "https://evil.example.com/?Action=ConfirmSubscription",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    ] {
        let signed = sign(
            "SubscriptionConfirmation",
            json!({"certUrl": CERT_URL, "subscribeUrl": bad}),
            "sub-3",
            now(),
        );
        let outcome = deliver(&signed, CERT_URL, now(), &source);
        assert!(
            matches!(outcome, Err(Refusal::Unsupported(ref why)) if why.contains("SubscribeURL")),
            "{outcome:?}"
        );
    }

    // The Token is signed.
    let signed = sign(
        "SubscriptionConfirmation",
        json!({"certUrl": CERT_URL}),
        "sub-4",
        now(),
    );
    let mut body = body_json(&signed);
    body["Token"] = json!("forged");
    let keys = Keys::with(CERT_URL, signed.certificate_pem.as_deref().unwrap());
    let outcome = verify_with(
        &serde_json::to_vec(&body).unwrap(),
        &[],
        now(),
        &source,
        &keys,
    );
    assert_eq!(outcome, Err(Refusal::SignatureMismatch));
}

#[test]
fn unsubscribe_confirmation_is_acknowledged() {
    let signed = sign(
        "UnsubscribeConfirmation",
        json!({"certUrl": CERT_URL}),
        "unsub-1",
        now(),
    );
    let answer = handshake(deliver(&signed, CERT_URL, now(), &settings(json!({}))));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.confirm_url, None);
}

#[test]
fn raw_message_delivery_is_refused() {
    let keys = Keys::default();
    let source = settings(json!({}));
    let raw = json!({
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "Payload": {"OrderChangeNotification": {"AmazonOrderId": "1"}}
    });
    let raw = serde_json::to_vec(&raw).unwrap();
    let outcome = verify_with(&raw, &[], now(), &source, &keys);
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );
    let header = [("x-amz-sns-rawdelivery".to_owned(), "true".to_owned())];
    let outcome = verify_with(&raw, &header, now(), &source, &keys);
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );

    // An envelope stripped of both signature fields is refused the same way.
    let signed = sign("", json!({"certUrl": CERT_URL}), "raw-1", now());
    let mut body = body_json(&signed);
    body.as_object_mut().unwrap().remove("Signature");
    body.as_object_mut().unwrap().remove("SigningCertURL");
    let outcome = verify_with(
        &serde_json::to_vec(&body).unwrap(),
        &[],
        now(),
        &source,
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );
    assert_eq!(keys.asked.get(), 0);
}

#[test]
fn other_message_types_and_methods_are_refused() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "t-1", now());
    let keys = Keys::with(CERT_URL, signed.certificate_pem.as_deref().unwrap());
    let source = settings(json!({}));

    let mut body = body_json(&signed);
    body["Type"] = json!("Heartbeat");
    let outcome = verify_with(
        &serde_json::to_vec(&body).unwrap(),
        &[],
        now(),
        &source,
        &keys,
    );
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );

    let headers = [(
        "x-amz-sns-message-type".to_owned(),
        "SubscriptionConfirmation".to_owned(),
    )];
    let outcome = verify_with(&signed.body, &headers, now(), &source, &keys);
    assert!(
        matches!(outcome, Err(Refusal::MalformedBody(_))),
        "{outcome:?}"
    );

    let request = Inbound {
        method: "GET",
        endpoint_url: "https://hooks.example.com/in/amazon",
        query: "",
        headers: &signed.headers,
        body: &signed.body,
        now: now(),
    };
    let outcome = amazon_sns::verify(&request, &source, &keys);
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );
}

#[test]
fn topics_outside_topic_arns_are_refused() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "topic-1", now());
    let topic = "arn:aws:sns:us-east-1:123456789012:switchyard-orders";
    let keys = Keys::with(CERT_URL, signed.certificate_pem.as_deref().unwrap());
    let other = settings(json!({"topicArns": ["arn:aws:sns:us-east-1:123456789012:other"]}));
    let outcome = verify_with(&signed.body, &signed.headers, now(), &other, &keys);
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(ref why)) if why.contains(topic)),
        "{outcome:?}"
    );
    assert_eq!(
        keys.asked.get(),
        0,
        "refused before the certificate is fetched"
    );

    let subscription = sign(
        "SubscriptionConfirmation",
        json!({"certUrl": CERT_URL}),
        "topic-2",
        now(),
    );
    let outcome = deliver(&subscription, CERT_URL, now(), &other);
    assert!(
        matches!(outcome, Err(Refusal::Unsupported(_))),
        "{outcome:?}"
    );

    for allowed in [
        json!([topic, "arn:aws:sns:us-east-1:123456789012:other"]),
        json!(topic),
        json!([]),
        Value::Null,
    ] {
        assert!(
            deliver(
                &signed,
                CERT_URL,
                now(),
                &settings(json!({"topicArns": allowed}))
            )
            .is_ok()
        );
    }
    let outcome = deliver(
        &signed,
        CERT_URL,
        now(),
        &settings(json!({"topicArns": [1]})),
    );
    assert!(
        matches!(outcome, Err(Refusal::Misconfigured(_))),
        "{outcome:?}"
    );
}

/// `check_options` refuses what `verify` refuses as misconfigured, with the same reason, and
/// passes the documented options (a topic not listed is the request's fault, not the source's).
#[test]
fn check_options_refuses_what_verify_would() {
    let signed = sign("", json!({"certUrl": CERT_URL}), "options-1", now());
    for bad in [
        json!({"topicArns": [1]}),
        json!({"topicArns": ["arn:aws:sns:us-east-1:123456789012:switchyard-orders", null]}),
        json!({"topicArns": {"arn": "x"}}),
        json!({"topicArns": true}),
    ] {
        let refused = amazon_sns::check_options(&bad);
        assert!(
            matches!(refused, Err(Refusal::Misconfigured(_))),
            "{bad}: {refused:?}"
        );
        let verified = deliver(&signed, CERT_URL, now(), &settings(bad.clone()));
        assert_eq!(verified.err(), refused.err(), "{bad}");
    }
    for good in [
        json!({}),
        json!({"topicArns": null}),
        json!({"topicArns": []}),
        json!({"topicArns": "arn:aws:sns:us-east-1:123456789012:other"}),
        json!({"topicArns": ["arn:aws:sns:us-east-1:123456789012:switchyard-orders"]}),
    ] {
        assert_eq!(amazon_sns::check_options(&good), Ok(()), "{good}");
        let verified = deliver(&signed, CERT_URL, now(), &settings(good.clone()));
        assert!(
            !matches!(verified, Err(Refusal::Misconfigured(_))),
            "{good}: {verified:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications that are not ORDER_CHANGE

/// Signs an envelope here, independently of `sign`: the string to sign rebuilt from AWS's field
/// order, RSA-SHA256 with the shared key. Returns the body and the certificate to serve.
fn envelope_signed_here(message: &str, subject: Option<&str>) -> (Vec<u8>, String) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

    let der: String = key_pem(0)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let key = RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    let timestamp = "2025-03-01T12:00:00.250Z";
    let mut text = format!("Message\n{message}\nMessageId\nmsg-7\n");
    if let Some(subject) = subject {
        text += &format!("Subject\n{subject}\n");
    }
    text += &format!(
        "Timestamp\n{timestamp}\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        text.as_bytes(),
        &mut signature,
    )
    .unwrap();
    let mut body = json!({
        "Type": "Notification", "MessageId": "msg-7", "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": message, "Timestamp": timestamp, "SignatureVersion": "2",
        "Signature": STANDARD.encode(signature), "SigningCertURL": CERT_URL,
    });
    if let Some(subject) = subject {
        body["Subject"] = json!(subject);
    }
    let certificate = sign("", json!({}), "cert", now()).certificate_pem.unwrap();
    (serde_json::to_vec(&body).unwrap(), certificate)
}

#[test]
fn notifications_of_other_shapes_are_parsed() {
    let deliver_here = |message: &str, subject: Option<&str>| {
        let (body, certificate) = envelope_signed_here(message, subject);
        let keys = Keys::with(CERT_URL, &certificate);
        event(verify_with(&body, &[], now(), &settings(json!({})), &keys))
    };

    // A feed notification, camelCase throughout.
    let feed = json!({
        "notificationVersion": "2020-09-04",
        "notificationType": "FEED_PROCESSING_FINISHED",
        "payloadVersion": "2020-09-04",
        "eventTime": "2025-03-01T11:59:00Z",
        "payload": {"feedProcessingFinishedNotification": {"sellerId": "A3FEED", "feedId": "123"}},
        "notificationMetadata": {
            "applicationId": "app", "subscriptionId": "sub",
            "publishTime": "2025-03-01T11:59:30Z", "notificationId": "feed-ntf"
        }
    });
    let event = deliver_here(&feed.to_string(), Some("Feed done"));
    assert_eq!(event.event_type, "FEED_PROCESSING_FINISHED");
    assert_eq!(event.dedup_key, "feed-ntf");
    assert_eq!(event.native_event_id.as_deref(), Some("feed-ntf"));
    assert_eq!(event.partner_id.as_deref(), Some("A3FEED"));
    assert_eq!(
        event.occurred_at,
        Some("2025-03-01T11:59:30Z".parse().unwrap())
    );
    assert_eq!(event.payload["Message"], feed);
    assert_eq!(event.payload["Subject"], "Feed done");
    assert_eq!(amazon_sns::normalize(&event), Normalized::default());

    // A listing notification: SellerId directly in Payload.
    let listing = json!({
        "NotificationVersion": "1.0", "NotificationType": "LISTINGS_ITEM_STATUS_CHANGED",
        "Payload": {"SellerId": "A4LIST", "Asin": "B7", "Sku": "SKU-7", "Status": ["BUYABLE"]},
        "NotificationMetadata": {"NotificationId": "list-ntf", "PublishTime": "bad time"}
    });
    let event = deliver_here(&listing.to_string(), None);
    assert_eq!(
        (event.dedup_key.as_str(), event.partner_id.as_deref()),
        ("list-ntf", Some("A4LIST"))
    );
    assert_eq!(
        event.occurred_at,
        Some(now()),
        "an unparsable PublishTime falls back to Timestamp"
    );
    assert_eq!(
        amazon_sns::normalize(&event).topic,
        Some("listing.approved")
    );

    // JSON that is not SP-API, and a message that is a bare JSON number: MessageId dedups.
    let event = deliver_here(r#"{"hello":"world"}"#, None);
    assert_eq!(
        (event.event_type.as_str(), event.dedup_key.as_str()),
        ("Notification", "msg-7")
    );
    assert_eq!(event.payload["Message"], json!({"hello": "world"}));
    let event = deliver_here("42", None);
    assert_eq!(
        event.payload["Message"], "42",
        "only objects and arrays replace the text"
    );
    assert_eq!(event.partner_id, None);
}

#[test]
fn normalize_maps_sp_api_notifications() {
    let order = |status: &str| {
        json!({
            "NotificationType": "ORDER_CHANGE",
            "Payload": {"OrderChangeNotification": {
                "SellerId": "S", "AmazonOrderId": "111-1",
                "Summary": {"OrderStatus": status}
            }}
        })
    };
    for (status, topic, first) in [
        ("Unshipped", "order.updated", Some("order.created")),
        ("Shipped", "order.updated", Some("order.created")),
        ("Canceled", "order.cancelled", None),
        ("CANCELLED", "order.cancelled", None),
        ("canceled", "order.cancelled", None),
    ] {
        let normalized = amazon_sns::normalize(&notification_event(order(status)));
        assert_eq!(normalized.topic, Some(topic), "{status}");
        assert_eq!(normalized.first_sighting_topic, first, "{status}");
        assert_eq!(normalized.status.as_deref(), Some(status));
        assert_eq!(
            normalized.resource,
            Some(Resource {
                kind: "order".into(),
                id: "111-1".into()
            })
        );
    }

    let offers = json!({
        "NotificationType": "ANY_OFFER_CHANGED",
        "Payload": {"AnyOfferChangedNotification": {
            "SellerId": "S",
            "OfferChangeTrigger": {"MarketplaceId": "ATVPDKIKX0DER", "ASIN": "B00ASIN001"}
        }}
    });
    let normalized = amazon_sns::normalize(&notification_event(offers));
    assert_eq!(normalized.topic, Some("pricing.changed"));
    assert_eq!(normalized.resource, item("B00ASIN001"));

    let health = json!({
        "NotificationType": "PRICING_HEALTH",
        "Payload": {"issueType": "BuyBoxEligibility", "sellerId": "S",
                    "offerChangeTrigger": {"asin": "B00ASIN002"}, "merchantOffer": {"sku": "SKU-2"}}
    });
    let normalized = amazon_sns::normalize(&notification_event(health));
    assert_eq!(normalized.topic, Some("pricing.changed"));
    assert_eq!(normalized.resource, item("B00ASIN002"));

    let status = |statuses: Value| {
        json!({
            "NotificationType": "LISTINGS_ITEM_STATUS_CHANGED",
            "Payload": {"SellerId": "S", "Asin": "B1", "Sku": "SKU-1", "Status": statuses}
        })
    };
    let normalized = amazon_sns::normalize(&notification_event(status(json!([
        "BUYABLE",
        "DISCOVERABLE"
    ]))));
    assert_eq!(normalized.topic, Some("listing.approved"));
    assert_eq!(normalized.resource, item("SKU-1"));
    assert_eq!(normalized.status.as_deref(), Some("BUYABLE,DISCOVERABLE"));
    let normalized = amazon_sns::normalize(&notification_event(status(json!(["DISCOVERABLE"]))));
    assert_eq!(normalized.topic, Some("listing.approved"));
    let normalized = amazon_sns::normalize(&notification_event(status(json!([]))));
    assert_eq!(normalized.topic, Some("listing.rejected"));
    let normalized = amazon_sns::normalize(&notification_event(status(json!(["SUPPRESSED"]))));
    assert_eq!(normalized.topic, Some("listing.rejected"));

    let issues = json!({
        "NotificationType": "LISTINGS_ITEM_ISSUES_CHANGE",
        "Payload": {"SellerId": "S", "Sku": "SKU-3", "Severities": ["ERROR"]}
    });
    let normalized = amazon_sns::normalize(&notification_event(issues));
    assert_eq!(normalized.topic, Some("listing.rejected"));
    assert_eq!(normalized.resource, item("SKU-3"));
    assert_eq!(normalized.status.as_deref(), Some("ERROR"));

    let mfn = |quantity: Value| {
        json!({
            "NotificationType": "LISTINGS_ITEM_MFN_QUANTITY_CHANGE",
            "Payload": {"SellerId": "S", "FulfillmentChannelCode": "DEFAULT", "Sku": "SKU-4", "Quantity": quantity}
        })
    };
    let normalized = amazon_sns::normalize(&notification_event(mfn(json!(0))));
    assert_eq!(normalized.topic, Some("inventory.low"));
    assert_eq!(normalized.resource, item("SKU-4"));
    assert_eq!(
        amazon_sns::normalize(&notification_event(mfn(json!(3)))).topic,
        None
    );
    assert_eq!(
        amazon_sns::normalize(&notification_event(mfn(json!("0")))).topic,
        Some("inventory.low")
    );

    let fba = |counts: &[i64]| {
        let markets: Vec<Value> = counts
            .iter()
            .map(|n| json!({"MarketplaceId": "M", "FulfillmentInventory": {"Fulfillable": n, "Inbound": 5}}))
            .collect();
        json!({
            "NotificationType": "FBA_INVENTORY_AVAILABILITY_CHANGES",
            "Payload": {"SellerId": "S", "ASIN": "B5", "SKU": "SKU-5", "FulfillmentInventoryByMarketplace": markets}
        })
    };
    let normalized = amazon_sns::normalize(&notification_event(fba(&[0, 0])));
    assert_eq!(normalized.topic, Some("inventory.low"));
    assert_eq!(normalized.resource, item("SKU-5"));
    assert_eq!(
        amazon_sns::normalize(&notification_event(fba(&[0, 4]))).topic,
        None
    );
    assert_eq!(
        amazon_sns::normalize(&notification_event(fba(&[]))).topic,
        None
    );

    let report = json!({"notificationType": "REPORT_PROCESSING_FINISHED", "payload": {}});
    assert_eq!(
        amazon_sns::normalize(&notification_event(report)),
        Normalized::default()
    );
}

#[test]
fn normalize_never_panics_on_odd_payloads() {
    let odd = [
        json!(null),
        json!("text"),
        json!([]),
        json!({"NotificationType": "ORDER_CHANGE"}),
        json!({"NotificationType": "ORDER_CHANGE", "Payload": []}),
        json!({"NotificationType": "ORDER_CHANGE", "Payload": {"OrderChangeNotification": 5}}),
        json!({"NotificationType": "ORDER_CHANGE", "Payload": {"OrderChangeNotification": {"Summary": []}}}),
        json!({"NotificationType": "LISTINGS_ITEM_STATUS_CHANGED", "Payload": {"Status": 7}}),
        json!({"NotificationType": "LISTINGS_ITEM_MFN_QUANTITY_CHANGE", "Payload": {"Quantity": -1.5}}),
        json!({"NotificationType": "FBA_INVENTORY_AVAILABILITY_CHANGES", "Payload": {"Fulfillable": "x"}}),
        json!({"NotificationType": "ANY_OFFER_CHANGED", "Payload": {"a": {"b": {"c": {"d": {"e": {"ASIN": 1}}}}}}}),
        json!({"NotificationType": 3, "Payload": {}}),
    ];
    for message in odd {
        let mut event = notification_event(json!({}));
        event.event_type = "ORDER_CHANGE".into();
        event.payload = json!({"Message": message});
        let _ = amazon_sns::normalize(&event);
    }
    let mut event = notification_event(json!({}));
    event.payload = json!(null);
    assert_eq!(amazon_sns::normalize(&event), Normalized::default());

    // Without a resource the order is still an update.
    let normalized = amazon_sns::normalize(&notification_event(json!({
        "NotificationType": "ORDER_CHANGE", "Payload": {"OrderChangeNotification": {}}
    })));
    assert_eq!(normalized.topic, Some("order.updated"));
    assert_eq!(normalized.resource, None);
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any body, any header, any envelope field values: a refusal, never a panic.
        #[test]
        fn verify_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            fields in proptest::collection::vec(("[A-Za-z]{1,14}", any::<String>()), 0..12),
            version in prop_oneof![Just(json!("1")), Just(json!("2")), Just(json!(2)), Just(json!(null))],
            cert_url in prop_oneof![
                Just(CERT_URL.to_owned()),
                "https://sns\\.[a-z0-9-]{0,6}\\.amazonaws\\.com[/:@.a-z]{0,8}",
                any::<String>(),
            ],
        ) {
            let keys = Keys::default();
            let source = settings(json!({"topicArns": ["t"]}));
            let _ = verify_with(&body, &[], now(), &source, &keys);
            let mut envelope = serde_json::Map::new();
            for (name, value) in fields {
                envelope.insert(name, json!(value));
            }
            envelope.insert("Type".into(), json!("Notification"));
            envelope.insert("SignatureVersion".into(), version);
            envelope.insert("Signature".into(), json!("AAAA"));
            envelope.insert("SigningCertURL".into(), json!(cert_url));
            let body = serde_json::to_vec(&envelope).unwrap();
            let outcome = verify_with(&body, &[], now(), &source, &keys);
            prop_assert!(outcome.is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checked by implementations not written in this project (Node.js)

/// Runs a command with a deadline; `None` when it cannot run, fails or takes too long.
fn run(command: &mut Command, stdin: Option<&[u8]>, deadline: Duration) -> Option<String> {
    use std::io::{Read, Write};

    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).ok()?;
    }
    drop(child.stdin.take());
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let mut err = String::new();
    child.stderr.take()?.read_to_string(&mut err).ok()?;
    Some(format!("{out}{err}"))
}

/// Fails the calling test when Node.js is missing: a test that asks for it must not pass
/// without it (such tests are `#[ignore]`d, and `bash .ci/run` includes them).
fn require_node() {
    assert!(
        run(
            Command::new("node").arg("--version"),
            None,
            Duration::from_secs(20),
        )
        .is_some(),
        "this test needs Node.js (`node`) on PATH"
    );
}

/// Messages `sign` makes for the Node.js checks: v1 and v2, a notification with a subject, a
/// subscription confirmation, and one tampered message that must fail.
fn messages_for_node() -> Value {
    let mut cases = Vec::new();
    for (event_type, options) in [
        ("ORDER_CHANGE", json!({"certUrl": CERT_URL})),
        (
            "ORDER_CHANGE",
            json!({"certUrl": CERT_URL, "signatureVersion": "1", "subject": "Order ✓ \"quoted\""}),
        ),
        ("SubscriptionConfirmation", json!({"certUrl": CERT_URL})),
        (
            "SubscriptionConfirmation",
            json!({"certUrl": CERT_URL, "signatureVersion": "1"}),
        ),
    ] {
        let signed = sign(event_type, options, "node-1", now());
        cases.push(json!({
            "body": String::from_utf8(signed.body.clone()).unwrap(),
            "cert": signed.certificate_pem.clone().unwrap(),
            "valid": true,
        }));
    }
    let signed = sign("", json!({"certUrl": CERT_URL}), "node-2", now());
    let tampered = String::from_utf8(signed.body)
        .unwrap()
        .replace("A2SELLER", "A2SELLES");
    cases.push(json!({"body": tampered, "cert": signed.certificate_pem.unwrap(), "valid": false}));
    Value::Array(cases)
}

/// Node's own `crypto` module checks `sign`'s signatures over the string to sign rebuilt in
/// JavaScript from AWS's documented field order.
#[test]
#[ignore = "needs Node.js; bash .ci/run runs it"]
fn node_crypto_verifies_signed_messages() {
    require_node();
    const SCRIPT: &str = r#"
const crypto = require('crypto');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const order = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
};
const results = cases.map((c) => {
  const m = JSON.parse(c.body);
  let text = '';
  for (const k of order[m.Type]) if (k in m) text += k + '\n' + m[k] + '\n';
  const v = crypto.createVerify(m.SignatureVersion === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  v.update(text, 'utf8');
  return v.verify(c.cert, m.Signature, 'base64') === c.valid;
});
console.log(JSON.stringify(results));
"#;
    let input = serde_json::to_vec(&messages_for_node()).unwrap();
    let output = run(
        Command::new("node").args(["-e", SCRIPT]),
        Some(&input),
        Duration::from_secs(60),
    )
    .expect("node ran");
    assert_eq!(output.trim(), "[true,true,true,true,true]", "{output}");
}

/// The `sns-validator` npm package (the validator AWS's JS SDK docs point to) accepts what
/// `sign` makes. It fetches `SigningCertURL` over HTTPS, which cannot be served on an SNS host
/// here, so the script answers its `https.get` with the certificate instead; everything else is
/// the package's own code.
#[test]
#[ignore = "needs Node.js and npm's registry (sns-validator); bash .ci/run runs it"]
fn sns_validator_accepts_signed_messages() {
    require_node();
    let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("amazon-sns-node");
    let package = prefix.join("node_modules/sns-validator/index.js");
    if !package.exists() {
        let installed = run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg("sns-validator"),
            None,
            Duration::from_secs(180),
        );
        assert!(
            package.exists(),
            "npm could not install sns-validator: {installed:?}"
        );
    }
    const SCRIPT: &str = r#"
const https = require('https');
const { EventEmitter } = require('events');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
let served = '';
https.get = (url, callback) => {
  const response = new EventEmitter();
  response.statusCode = 200;
  setImmediate(() => {
    callback(response);
    response.emit('data', Buffer.from(served));
    response.emit('end');
  });
  return new EventEmitter();
};
(async () => {
  const results = [];
  for (const c of cases) {
    served = c.cert;
    // A fresh module instance per case: the package caches certificates by URL.
    delete require.cache[require.resolve(process.argv[1])];
    const Validator = require(process.argv[1]);
    const ok = await new Promise((resolve) =>
      new Validator().validate(c.body, (err) => resolve(!err)));
    results.push(ok === c.valid);
  }
  console.log(JSON.stringify(results));
})();
"#;
    let input = serde_json::to_vec(&messages_for_node()).unwrap();
    let output = run(
        Command::new("node").args(["-e", SCRIPT]).arg(&package),
        Some(&input),
        Duration::from_secs(60),
    )
    .expect("node ran");
    assert_eq!(output.trim(), "[true,true,true,true,true]", "{output}");
}
