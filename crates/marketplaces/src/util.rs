//! Helpers every marketplace module uses: MACs compared in constant time, the replay window,
//! JSON parsing with a clear refusal, and dedup keys for marketplaces that send no event id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Refusal, SourceSettings};

/// Refuses anything but a POST (`what` names the sender, e.g. "Shopify webhooks").
pub fn require_post(req: &crate::Inbound, what: &str) -> Result<(), Refusal> {
    if req.method.eq_ignore_ascii_case("POST") {
        Ok(())
    } else {
        Err(Refusal::Unsupported(format!(
            "{what} are POSTed, not sent with {}",
            req.method
        )))
    }
}

/// HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of the concatenated parts.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two byte strings (lengths may differ; that alone is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `presented` (hex, either case, or base64) encodes `expected`, compared in constant
/// time. Marketplaces that do not document the encoding are accepted in both.
pub fn mac_matches(expected: &[u8], presented: &str) -> bool {
    let presented = presented.trim();
    let as_hex = hex::decode(presented).ok();
    let as_b64 = STANDARD.decode(presented).ok();
    as_hex.is_some_and(|p| ct_eq(&p, expected)) | as_b64.is_some_and(|p| ct_eq(&p, expected))
}

/// Checks a signed Unix-seconds timestamp against the source's replay window.
pub fn check_window(signed_at: i64, now: Timestamp, window: SignedDuration) -> Result<(), Refusal> {
    let at = Timestamp::from_second(signed_at).map_err(|_| Refusal::StaleTimestamp)?;
    let distance = now.duration_since(at).abs();
    if distance > window {
        return Err(Refusal::StaleTimestamp);
    }
    Ok(())
}

/// Parses a JSON body, refusing anything that is not a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Value, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::MalformedBody(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Refusal::MalformedBody("body is not a JSON object".into()));
    }
    Ok(value)
}

/// A dedup key for marketplaces with no event id: hex SHA-256 of the parts, `\0`-separated.
pub fn hash_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The secrets of a source, or a refusal saying none is configured.
pub fn secrets(source: &SourceSettings) -> Result<Vec<&str>, Refusal> {
    let s: Vec<&str> = source
        .secrets
        .iter()
        .map(|s| s.value.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    if s.is_empty() {
        return Err(Refusal::Misconfigured("the source has no secret".into()));
    }
    Ok(s)
}

/// A JSON value as a string: strings as they are, numbers in decimal (ids arrive as both).
pub fn as_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses an RFC 3339 time, or Unix seconds (number or numeric string).
pub fn parse_time(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => s.parse::<Timestamp>().ok().or_else(|| {
            s.parse::<i64>()
                .ok()
                .and_then(|n| Timestamp::from_second(n).ok())
        }),
        Value::Number(n) => n.as_i64().and_then(|n| Timestamp::from_second(n).ok()),
        _ => None,
    }
}

/// Field names that carry a stock quantity in the marketplaces' stock-level events.
const QUANTITY_FIELDS: [&str; 7] = [
    "available",
    "quantity",
    "availablequantity",
    "quantityavailable",
    "totalavailablequantity",
    "fulfillable",
    "fulfillablequantity",
];

/// The lowest stock quantity anywhere in a payload (field names matched case-insensitively,
/// numbers or numeric strings), looking at most eight levels deep.
pub fn lowest_quantity(payload: &Value) -> Option<i64> {
    fn walk(value: &Value, depth: u8, lowest: &mut Option<i64>) {
        if depth > 8 {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if QUANTITY_FIELDS.contains(&key.to_ascii_lowercase().as_str()) {
                        let n = match v {
                            Value::Number(n) => n.as_i64(),
                            Value::String(s) => s.trim().parse().ok(),
                            _ => None,
                        };
                        if let Some(n) = n {
                            *lowest = Some(lowest.map_or(n, |l: i64| l.min(n)));
                        }
                    }
                    walk(v, depth + 1, lowest);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, depth + 1, lowest)),
            _ => {}
        }
    }
    let mut lowest = None;
    walk(payload, 0, &mut lowest);
    lowest
}

/// Splits a query string into percent-decoded pairs (`+` is a space).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes for a query value (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            query_pairs("challenge_code=a%20b+c&x=%zz&y"),
            vec![
                ("challenge_code".into(), "a b c".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), "".into())
            ]
        );
        assert_eq!(query_pairs("t=%4"), vec![("t".into(), "%4".into())]);
    }

    #[test]
    fn macs_match_in_hex_or_base64_only_when_equal() {
        let mac = hmac_sha256(b"k", &[b"body"]);
        assert!(mac_matches(&mac, &hex::encode(mac)));
        assert!(mac_matches(&mac, &hex::encode(mac).to_uppercase()));
        assert!(mac_matches(&mac, &STANDARD.encode(mac)));
        assert!(!mac_matches(
            &mac,
            &hex::encode(hmac_sha256(b"k", &[b"bodx"]))
        ));
        assert!(!mac_matches(&mac, ""));
    }

    #[test]
    fn lowest_quantity_finds_numbers_and_numeric_strings_at_any_depth() {
        let payload = serde_json::json!({"a": {"Quantity": "7"}, "b": [{"available": 3}, {"FulfillableQuantity": 9}]});
        assert_eq!(lowest_quantity(&payload), Some(3));
        assert_eq!(lowest_quantity(&serde_json::json!({"price": 1})), None);
    }

    #[test]
    fn window_is_symmetric() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let w = SignedDuration::from_mins(5);
        assert!(check_window(1_000_000 - 300, now, w).is_ok());
        assert!(check_window(1_000_000 + 300, now, w).is_ok());
        assert_eq!(
            check_window(1_000_000 - 301, now, w),
            Err(Refusal::StaleTimestamp)
        );
        assert_eq!(check_window(i64::MAX, now, w), Err(Refusal::StaleTimestamp));
    }
}
