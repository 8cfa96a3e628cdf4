//! Every marketplace normalizer on arbitrary JSON payloads and event types. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use switchyard_marketplaces::{Kind, NativeEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // The event type first (up to a newline), then the payload.
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let event_type = String::from_utf8_lossy(&rest[..split]).into_owned();
    let Ok(payload) = serde_json::from_slice(rest.get(split + 1..).unwrap_or_default()) else {
        return;
    };
    let kind = Kind::ALL[selector as usize % Kind::ALL.len()];
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
    let _ = kind.normalize_with_threshold(&event, Some(i64::from(selector)));
});
