//! Property tests: random and mutated bodies, headers and queries for every verifier, and random
//! JSON for every normalizer. Nothing may panic; every refusal is a `Refusal` value.
//! (Coverage-guided fuzzing of the same functions is the reliability issue's; these run in the
//! normal suite.)

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

use switchyard_marketplaces::{
    Inbound, Kind, NativeEvent, NoKeys, Outcome, Refusal, SignRequest, SourceSecret, SourceSettings,
};

fn settings(kind: Kind) -> SourceSettings {
    SourceSettings {
        kind,
        secrets: vec![
            SourceSecret {
                id: "1".into(),
                value: "secret-one".into(),
            },
            SourceSecret {
                id: "2".into(),
                value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            },
        ],
        replay_window: SignedDuration::from_mins(5),
        options: json!({"appKey": "k", "appId": "a", "verificationToken": "t"}),
    }
}

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

/// A correctly signed request of the kind (where the kind can sign with a plain secret).
fn signed(kind: Kind) -> Option<switchyard_marketplaces::SignedRequest> {
    kind.sign(&SignRequest {
        event_type: String::new(),
        secret: if kind == Kind::Etsy || kind == Kind::Standard {
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()
        } else {
            "secret-one".into()
        },
        options: json!({"appKey": "k", "appId": "a"}),
        endpoint_url: "https://hub.example.com/ingest/x".into(),
        partner_id: "p1".into(),
        resource_id: "O-1".into(),
        event_id: "e-1".into(),
        now: now(),
    })
    .ok()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ .:-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("event".to_string()),
                    Just("payload".to_string()),
                    Just("data".to_string()),
                    Just("source".to_string()),
                    Just("order_status".to_string()),
                    Just("notificationType".to_string()),
                    Just("Message".to_string()),
                    "[a-zA-Z_]{1,10}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn verifiers_never_panic_on_random_requests(
        kind_index in 0usize..Kind::ALL.len(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        header_values in prop::collection::vec("[ -~]{0,40}", 8),
        query in "[a-z_=&%0-9]{0,40}",
        get in any::<bool>(),
    ) {
        let kind = Kind::ALL[kind_index];
        let names = ["authorization", "x-tts-signature", "wm_sec.auth_signature", "wm_sec.timestamp",
                     "webhook-signature", "x-ebay-signature", "x-shopify-hmac-sha256", "x_authorization"];
        let headers: Vec<(String, String)> = names.iter().zip(header_values).map(|(n, v)| (n.to_string(), v)).collect();
        let request = Inbound {
            method: if get { "GET" } else { "POST" },
            endpoint_url: "https://hub.example.com/ingest/x",
            query: &query,
            headers: &headers,
            body: &body,
            now: now(),
        };
        let _ = kind.verify(&request, &settings(kind), &NoKeys);
    }

    #[test]
    fn verifiers_refuse_mutated_signed_requests_without_panicking(
        kind_index in 0usize..Kind::ALL.len(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let kind = Kind::ALL[kind_index];
        if let Some(good) = signed(kind) {
            let mut body = good.body.clone();
            if body.is_empty() {
                return Ok(());
            }
            let at = flip.index(body.len());
            body[at] ^= 1 << bit;
            let headers: Vec<(String, String)> = good.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
            let request = Inbound {
                method: good.method,
                endpoint_url: "https://hub.example.com/ingest/x",
                query: good.url_suffix.trim_start_matches('?'),
                headers: &headers,
                body: &body,
                now: now(),
            };
            // A changed byte is refused, or (for schemes that sign nothing, like SellerCenter's
            // URL token) still parses as some event; it never panics.
            let _ = kind.verify(&request, &settings(kind), &NoKeys);
        }
    }

    #[test]
    fn normalizers_never_panic_on_random_payloads(
        kind_index in 0usize..Kind::ALL.len(),
        payload in json_value(),
        event_type in prop_oneof![
            Just("1".to_string()), Just("12".to_string()), Just("PO_CREATED".to_string()),
            Just("ORDER_UPDATES".to_string()), Just("ORDER_CHANGE".to_string()), Just("orders/create".to_string()),
            Just("onOrderItemsStatusChanged".to_string()), Just("shipment_created".to_string()),
            Just("ORDER_CONFIRMATION".to_string()), Just("order.paid".to_string()),
            Just("SELLER_PERFORMANCE_NOTIFICATIONS".to_string()), "[a-zA-Z_./0-9]{0,20}",
        ],
    ) {
        let kind = Kind::ALL[kind_index];
        let event = NativeEvent {
            kind,
            event_type,
            dedup_key: "k".into(),
            native_event_id: None,
            partner_id: None,
            occurred_at: None,
            payload,
        };
        let _ = kind.normalize(&event);
    }
}

/// Source options made of the names the verifiers read, each set to a value some verifier
/// accepts, to an empty string, or to anything at all.
fn options() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(vec![
        "form",
        "appKey",
        "appId",
        "signatureForm",
        "hmacAlgorithm",
        "publicKeys",
        "verificationToken",
        "topicArns",
        "checkTriggeredAt",
        "authHeaderName",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "authorization",
            "seed",
            "fklogin",
            "standard",
            "bearer",
            "hmac",
            "hmac-body",
            "basic",
            "ecdsa",
            "sha1",
            "sha256",
            "k",
            "",
        ])
        .prop_map(|s| json!(s)),
        json_value(),
    ];
    prop::collection::btree_map(name, value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// `check_options` and `verify` agree: a correctly signed request to a source with random
    /// options is refused as misconfigured exactly when `check_options` refuses those options,
    /// and for the same reason (the sources here have usable secrets, so options are the only
    /// thing that can be misconfigured).
    #[test]
    fn check_options_agrees_with_verify(
        kind_index in 0usize..Kind::ALL.len(),
        options in options(),
    ) {
        let kind = Kind::ALL[kind_index];
        let Some(good) = signed(kind) else { return Ok(()) };
        let headers: Vec<(String, String)> = good.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
        let request = Inbound {
            method: good.method,
            endpoint_url: "https://hub.example.com/ingest/x",
            query: good.url_suffix.trim_start_matches('?'),
            headers: &headers,
            body: &good.body,
            now: now(),
        };
        let source = SourceSettings { options: options.clone(), ..settings(kind) };
        let misconfigured = match kind.verify(&request, &source, &NoKeys) {
            Err(refusal @ Refusal::Misconfigured(_)) => Err(refusal),
            _ => Ok(()),
        };
        prop_assert_eq!(kind.check_options(&options), misconfigured, "{:?} {}", kind, options);
    }
}

/// Each kind that can sign with a plain secret verifies its own signature (a sanity check that
/// the mutation test above starts from accepted requests).
#[test]
fn every_kind_accepts_its_own_signed_request() {
    for kind in Kind::ALL {
        let Some(good) = signed(kind) else { continue };
        let headers: Vec<(String, String)> = good
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let query = good.url_suffix.trim_start_matches('?').to_string();
        let request = Inbound {
            method: good.method,
            endpoint_url: "https://hub.example.com/ingest/x",
            query: &query,
            headers: &headers,
            body: &good.body,
            now: now(),
        };
        match kind.verify(&request, &settings(kind), &NoKeys) {
            Ok(Outcome::Event(_)) | Ok(Outcome::Handshake(_)) => {}
            Err(switchyard_marketplaces::Refusal::KeyNeeded(_)) => {} // Amazon, eBay: keys from elsewhere
            Err(e) => panic!("{kind:?} refused its own request: {e}"),
        }
    }
}
