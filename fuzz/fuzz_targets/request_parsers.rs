//! The parsers of what API requests carry beyond plain fields: retry policies and delivery
//! credentials (parsed, then validated), and URLs and header names and values as subscriptions
//! give them. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use switchyard_core::model::{
    AuthDetails, validate_header_name, validate_header_value, validate_http_url,
};
use switchyard_core::retry::RetryPolicy;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = serde_json::from_slice::<RetryPolicy>(data)
        && policy.validate().is_ok()
    {
        let start = jiff::Timestamp::from_second(1_795_000_000).expect("time");
        let _ = policy.ladder(start);
    }
    if let Ok(auth) = serde_json::from_slice::<AuthDetails>(data) {
        let _ = auth.validate();
    }
    let text = String::from_utf8_lossy(data);
    let _ = validate_http_url("eventUrl", &text);
    let _ = validate_header_name("headers", &text);
    let _ = validate_header_value("headers", &text);
});
