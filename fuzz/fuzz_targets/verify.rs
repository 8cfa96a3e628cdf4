//! Every marketplace verifier on arbitrary requests: headers (with the names the schemes read,
//! so the fuzzer reaches past "header missing"), query, method and body. Nothing may panic; a
//! request that verifies is normalized too.
#![no_main]

use arbitrary::Arbitrary;
use jiff::SignedDuration;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

use switchyard_marketplaces::{Inbound, Kind, NoKeys, Outcome, SourceSecret, SourceSettings};

/// Header names the verifiers look at; the fuzzer picks among them or invents its own.
const NAMES: [&str; 16] = [
    "wm_sec.auth_signature",
    "wm_sec.timestamp",
    "wm_sec.key_version",
    "authorization",
    "x-amz-sns-message-type",
    "x-ebay-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-shopify-hmac-sha256",
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-flipkart-signature",
    "x-switchyard-url-token",
    "content-type",
    "x-tts-signature",
];

#[derive(Arbitrary, Debug)]
struct Request {
    kind: u8,
    get: bool,
    headers: Vec<(u8, Option<String>, String)>,
    query: String,
    body: Vec<u8>,
}

fuzz_target!(|r: Request| {
    let kind = Kind::ALL[r.kind as usize % Kind::ALL.len()];
    let headers: Vec<(String, String)> = r
        .headers
        .into_iter()
        .take(32)
        .map(|(i, name, value)| {
            let name = name.unwrap_or_else(|| NAMES[i as usize % NAMES.len()].to_string());
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let now = jiff::Timestamp::from_second(1_795_000_000).expect("time");
    let settings = SourceSettings {
        kind,
        secrets: vec![
            SourceSecret { id: "1".into(), value: "secret-one".into() },
            SourceSecret { id: "2".into(), value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into() },
        ],
        replay_window: SignedDuration::from_mins(5),
        options: json!({"appKey": "k", "appId": "a", "verificationToken": "t", "urlToken": "u"}),
    };
    let inbound = Inbound {
        method: if r.get { "GET" } else { "POST" },
        endpoint_url: "https://hub.example.com/ingest/0192",
        query: &r.query,
        headers: &headers,
        body: &r.body,
        now,
    };
    if let Ok(Outcome::Event(event)) = kind.verify(&inbound, &settings, &NoKeys) {
        let _ = kind.normalize_with_threshold(&event, Some(5));
    }
});
