//! eBay's Notification API (`docs/marketplaces.md`, eBay).
//!
//! **Handshake.** `GET ?challenge_code=C` is answered `200 {"challengeResponse": hex(SHA-256(C +
//! verificationToken + endpointUrl))}`, where `endpointUrl` is [`Inbound::endpoint_url`] exactly as
//! registered. A `GET` without `challenge_code` is refused as malformed.
//!
//! **Events.** `POST` JSON `{"metadata":{"topic",…},"notification":{"notificationId","eventDate",…,
//! "data":{…}}}` with `X-EBAY-SIGNATURE`, in one of two forms:
//!
//! - `ecdsa` (eBay's real scheme): the header is base64 of JSON `{"alg":"ecdsa","kid","signature",
//!   "digest":"SHA1"}`; `signature` is a base64 DER ECDSA P-256 signature with SHA-1. It is checked
//!   over the raw body first, then over a compact re-serialization of the JSON (what eBay's SDKs
//!   verify). The public key of `kid` comes from the `publicKeys` option, else from the
//!   [`KeyStore`] as [`KeyRef::EbayPublicKey`]; when neither has it, `verify` answers
//!   [`Refusal::KeyNeeded`] so the caller fetches it from eBay's `public_key` API and calls again.
//!   A key (pinned or stored) may be PEM with or without line breaks, base64 DER, DER bytes, or
//!   eBay's whole `getPublicKey` answer `{"key": "<PEM>", …}`; one that does not parse as a P-256
//!   key is [`Refusal::KeyUnavailable`].
//! - `hmac` (the seed's form): the header is the hex (or base64) HMAC of the raw body keyed by a
//!   source secret (the dev id), with SHA-256 or SHA-1.
//!
//! Event type: `metadata.topic`; dedup key and native id: `notification.notificationId`; time:
//! `notification.eventDate`; partner: `notification.data.username`, else `…data.userId`.
//!
//! # Options (`source.options`)
//!
//! | option | values | default |
//! |---|---|---|
//! | `signatureForm` | `"ecdsa"` or `"hmac"` | `"ecdsa"` |
//! | `publicKeys` | object: key id → public key, PEM (line breaks optional) or base64 DER | none |
//! | `hmacAlgorithm` | `"sha256"` or `"sha1"` (form `hmac`) | `"sha256"` |
//! | `verificationToken` | the token registered with eBay, for the challenge | the first secret |
//!
//! # Signing (`sign`)
//!
//! `event_type` is the topic (default `ORDER_CONFIRMATION`; any string is sent as is), or
//! `challenge` for a `GET ?challenge_code=<event_id>`. The body is
//! `{"metadata":{"topic","schemaVersion":"1.0","deprecated":false},"notification":{"notificationId":
//! event_id,"eventDate":now,"publishDate":now,"publishAttemptCount":1,"data":{"orderId":
//! resource_id,"username":partner_id,…}}}`; `data` also carries `itemId` (= resource id) for
//! `ITEM_*` topics, `quantity` (option `quantity`, default 0) for `ITEM_AVAILABILITY`, and `userId`
//! (= partner id) for `MARKETPLACE_ACCOUNT_DELETION`.
//!
//! Sign options: `signatureForm` (`"ecdsa"` default, `"hmac"`), `hmacAlgorithm` (`"sha256"`
//! default, `"sha1"`), `kid` (default `"switchyard-sim"`), `quantity`. In the ECDSA form
//! `secret` is a PKCS#8 P-256 private key (PEM or base64 DER); when empty a key is generated.
//! Either way [`SignedRequest::key_pem`] holds the PRIVATE key (PKCS#8 PEM) and
//! [`SignedRequest::certificate_pem`] the PUBLIC key (SubjectPublicKeyInfo PEM) to pin in
//! `publicKeys` under `kid`. In the HMAC form `secret` is the HMAC key.

pub mod orders;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA1_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::util;
use crate::*;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-ebay-signature";

/// The key id `sign` uses when the options name none.
pub const DEFAULT_KID: &str = "switchyard-sim";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Ecdsa,
    Hmac,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HmacAlg {
    Sha256,
    Sha1,
}

fn form_of(options: &Value) -> Result<Form, Refusal> {
    match options.get("signatureForm") {
        None | Some(Value::Null) => Ok(Form::Ecdsa),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ecdsa") => Ok(Form::Ecdsa),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("hmac") => Ok(Form::Hmac),
        Some(other) => Err(Refusal::Misconfigured(format!(
            "signatureForm must be \"ecdsa\" or \"hmac\", not {other}"
        ))),
    }
}

fn hmac_alg_of(options: &Value) -> Result<HmacAlg, Refusal> {
    match options.get("hmacAlgorithm") {
        None | Some(Value::Null) => Ok(HmacAlg::Sha256),
        Some(Value::String(s)) => match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Ok(HmacAlg::Sha256),
            "sha1" => Ok(HmacAlg::Sha1),
            _ => Err(Refusal::Misconfigured(format!(
                "hmacAlgorithm must be \"sha256\" or \"sha1\", not {s:?}"
            ))),
        },
        Some(other) => Err(Refusal::Misconfigured(format!(
            "hmacAlgorithm must be \"sha256\" or \"sha1\", not {other}"
        ))),
    }
}

/// Refuses the options [`verify`] would refuse as misconfigured: a `signatureForm` other than the
/// two, then what that form reads: `publicKeys` that is not an object (`ecdsa`), or an
/// `hmacAlgorithm` other than the two (`hmac`). A form's options are not checked for the other
/// form, which never reads them. Nor are the pinned keys themselves: `verify` skips one that is
/// not a string (and asks the key store) and finds one that does not parse unavailable, not
/// misconfigured.
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    match form_of(options)? {
        Form::Ecdsa => pinned_keys(options).map(|_| ()),
        Form::Hmac => hmac_alg_of(options).map(|_| ()),
    }
}

/// The HMAC form signs with a shared secret: it needs one (the ECDSA form uses eBay's keys).
pub fn check_secrets(options: &Value, secrets: &[&str]) -> Result<(), Refusal> {
    let has_secret = secrets.iter().any(|s| !s.is_empty());
    let has_token = options
        .get("verificationToken")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    match form_of(options)? {
        Form::Hmac if !has_secret => Err(Refusal::Misconfigured(
            "the hmac form needs a secret to verify with".into(),
        )),
        // eBay registers an endpoint only after it answers the challenge, which needs one.
        _ if !has_secret && !has_token => Err(Refusal::Misconfigured(
            "eBay's challenge is answered with the verificationToken option, or else the first secret: give one".into(),
        )),
        _ => Ok(()),
    }
}

fn hmac(alg: HmacAlg, key: &[u8], body: &[u8]) -> Vec<u8> {
    match alg {
        HmacAlg::Sha256 => util::hmac_sha256(key, &[body]).to_vec(),
        HmacAlg::Sha1 => util::hmac_sha1(key, &[body]).to_vec(),
    }
}

pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    if req.method.eq_ignore_ascii_case("GET") {
        return challenge(req, source);
    }
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(Refusal::Unsupported(format!(
            "eBay sends POST (and GET for the challenge), not {}",
            req.method
        )));
    }
    let form = form_of(&source.options)?;
    let presented = req
        .header(SIGNATURE_HEADER)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::MissingSignature)?;
    match form {
        Form::Ecdsa => verify_ecdsa(req.body, presented, source, keys)?,
        Form::Hmac => verify_hmac(req.body, presented, source)?,
    }
    event(req.body).map(Outcome::Event)
}

/// Answers `GET ?challenge_code=C`.
fn challenge(req: &Inbound, source: &SourceSettings) -> Result<Outcome, Refusal> {
    let code = req
        .query_param("challenge_code")
        .ok_or_else(|| Refusal::MalformedBody("a GET must carry challenge_code".into()))?;
    let token = match source.option_str("verificationToken") {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => util::secrets(source)?
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| Refusal::Misconfigured("no verification token".into()))?,
    };
    let mut h = Sha256::new();
    h.update(code.as_bytes());
    h.update(token.as_bytes());
    h.update(req.endpoint_url.as_bytes());
    let body = json!({"challengeResponse": hex::encode(h.finalize())});
    Ok(Outcome::Handshake(Handshake {
        status: 200,
        content_type: "application/json",
        body: serde_json::to_vec(&body).unwrap_or_default(),
        confirm_url: None,
    }))
}

fn verify_hmac(body: &[u8], presented: &str, source: &SourceSettings) -> Result<(), Refusal> {
    let alg = hmac_alg_of(&source.options)?;
    let secrets = util::secrets(source)?;
    let mut ok = false;
    for secret in secrets {
        ok |= util::mac_matches(&hmac(alg, secret.as_bytes(), body), presented);
    }
    if ok {
        Ok(())
    } else {
        Err(Refusal::SignatureMismatch)
    }
}

fn verify_ecdsa(
    body: &[u8],
    presented: &str,
    source: &SourceSettings,
    keys: &dyn KeyStore,
) -> Result<(), Refusal> {
    // The header is base64 of a small JSON object; anything else cannot match.
    let header: Value = STANDARD
        .decode(presented)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or(Refusal::SignatureMismatch)?;
    let field = |name: &str| header.get(name).and_then(Value::as_str);
    if let Some(alg) = field("alg")
        && !alg.eq_ignore_ascii_case("ecdsa")
    {
        return Err(Refusal::Unsupported(format!(
            "eBay signature algorithm {alg:?}"
        )));
    }
    if let Some(d) = field("digest")
        && !d.eq_ignore_ascii_case("sha1")
        && !d.eq_ignore_ascii_case("sha-1")
    {
        return Err(Refusal::Unsupported(format!("eBay signature digest {d:?}")));
    }
    let kid = field("kid")
        .filter(|k| !k.is_empty())
        .ok_or(Refusal::SignatureMismatch)?;
    let signature = field("signature")
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .ok_or(Refusal::SignatureMismatch)?;

    let key_bytes = pinned_key(source, kid)?
        .or_else(|| keys.get(&KeyRef::EbayPublicKey(kid.to_string())))
        .ok_or_else(|| Refusal::KeyNeeded(KeyRef::EbayPublicKey(kid.to_string())))?;
    let der = key_der(&key_bytes)
        .ok_or_else(|| Refusal::KeyUnavailable(format!("eBay key {kid} is not PEM or DER")))?;
    let key = ParsedPublicKey::new(&ECDSA_P256_SHA1_ASN1, der)
        .map_err(|e| Refusal::KeyUnavailable(format!("eBay key {kid} is not a P-256 key: {e}")))?;

    if key.verify_sig(body, &signature).is_ok() {
        return Ok(());
    }
    match compact_json(body) {
        Some(compact) if compact != body && key.verify_sig(&compact, &signature).is_ok() => Ok(()),
        _ => Err(Refusal::SignatureMismatch),
    }
}

/// The `publicKeys` option, if set.
fn pinned_keys(options: &Value) -> Result<Option<&Map<String, Value>>, Refusal> {
    match options.get("publicKeys") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Refusal::Misconfigured(
            "publicKeys must be an object of key id → PEM".into(),
        )),
    }
}

/// The key pinned for `kid` in the `publicKeys` option, if any.
fn pinned_key(source: &SourceSettings, kid: &str) -> Result<Option<Vec<u8>>, Refusal> {
    Ok(pinned_keys(&source.options)?
        .and_then(|map| map.get(kid))
        .and_then(Value::as_str)
        .map(|s| s.as_bytes().to_vec()))
}

/// A key as DER: from PEM (line breaks optional), base64 DER, eBay's `getPublicKey` JSON answer
/// (`{"key": "<PEM>", …}`), or DER bytes.
fn key_der(raw: &[u8]) -> Option<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Some(raw.to_vec());
    };
    let text = text.trim();
    if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).ok()?;
        return key_der(v.get("key")?.as_str()?.as_bytes());
    }
    pem_body(text).or_else(|| {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(compact).ok()
    })
}

/// The base64 between `-----BEGIN …-----` and `-----END`, decoded.
fn pem_body(text: &str) -> Option<Vec<u8>> {
    let begin = text.find("-----BEGIN")?;
    let after_begin = text.get(begin + "-----BEGIN".len()..)?;
    let label_end = after_begin.find("-----")?;
    let rest = after_begin.get(label_end + "-----".len()..)?;
    let end = rest.find("-----END")?;
    let b64: String = rest
        .get(..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The body with whitespace outside strings removed and strings re-escaped canonically: the
/// compact form `JSON.stringify`/Jackson produce from a parsed body (key order kept). `None` when
/// the body is not text or a string token does not parse.
fn compact_json(body: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(body).ok()?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                let mut j = i + 1;
                loop {
                    match body.get(j) {
                        None => return None,
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let token: String = serde_json::from_slice(body.get(i..=j)?).ok()?;
                out.extend_from_slice(serde_json::to_string(&token).ok()?.as_bytes());
                i = j + 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Reads the verified body.
fn event(body: &[u8]) -> Result<NativeEvent, Refusal> {
    let payload = util::parse_object(body)?;
    let topic = payload
        .pointer("/metadata/topic")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::MalformedBody("metadata.topic is missing".into()))?
        .to_string();
    let notification_id = payload
        .pointer("/notification/notificationId")
        .and_then(util::as_id)
        .ok_or_else(|| Refusal::MalformedBody("notification.notificationId is missing".into()))?;
    let partner_id = ["/notification/data/username", "/notification/data/userId"]
        .iter()
        .find_map(|p| payload.pointer(p).and_then(util::as_id));
    let occurred_at = payload
        .pointer("/notification/eventDate")
        .and_then(util::parse_time);
    Ok(NativeEvent {
        kind: Kind::Ebay,
        event_type: topic,
        dedup_key: notification_id.clone(),
        native_event_id: Some(notification_id),
        partner_id,
        occurred_at,
        payload,
    })
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let topic = if req.event_type.is_empty() {
        "ORDER_CONFIRMATION"
    } else {
        req.event_type.as_str()
    };
    if topic == "challenge" {
        let code = if req.event_id.is_empty() {
            util::hash_key(&["challenge", &req.now.to_string()])
        } else {
            req.event_id.clone()
        };
        return Ok(SignedRequest {
            method: "GET",
            url_suffix: format!("?challenge_code={}", util::percent_encode(&code)),
            headers: Vec::new(),
            body: Vec::new(),
            key_pem: None,
            certificate_pem: None,
        });
    }

    let mut data = json!({"orderId": req.resource_id, "username": req.partner_id});
    if topic.starts_with("ITEM_") {
        data["itemId"] = json!(req.resource_id);
    }
    if topic == "ITEM_AVAILABILITY" {
        data["quantity"] = req.options.get("quantity").cloned().unwrap_or(json!(0));
    }
    if topic == "MARKETPLACE_ACCOUNT_DELETION" {
        data["userId"] = json!(req.partner_id);
    }
    let now = js(&time(req.now));
    // Written by hand so the keys keep eBay's order.
    let body = format!(
        r#"{{"metadata":{{"topic":{},"schemaVersion":"1.0","deprecated":false}},"notification":{{"notificationId":{},"eventDate":{now},"publishDate":{now},"publishAttemptCount":1,"data":{}}}}}"#,
        js(topic),
        js(&req.event_id),
        serde_json::to_string(&data).unwrap_or_else(|_| "{}".into()),
    )
    .into_bytes();

    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    let (key_pem, certificate_pem) = match form_of(&req.options)? {
        Form::Hmac => {
            if req.secret.is_empty() {
                return Err(Refusal::Misconfigured(
                    "the HMAC form needs a secret (the dev id)".into(),
                ));
            }
            let alg = hmac_alg_of(&req.options)?;
            let mac = hmac(alg, req.secret.as_bytes(), &body);
            headers.push((SIGNATURE_HEADER.to_string(), hex::encode(mac)));
            (None, None)
        }
        Form::Ecdsa => {
            let kid = req
                .options
                .get("kid")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .unwrap_or(DEFAULT_KID);
            let key = if req.secret.trim().is_empty() {
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| Refusal::Misconfigured("could not generate a P-256 key".into()))?
            } else {
                let der = key_der(req.secret.as_bytes()).ok_or_else(|| {
                    Refusal::Misconfigured("the secret is not a PEM or base64 key".into())
                })?;
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der).map_err(|e| {
                    Refusal::Misconfigured(format!("the secret is not a PKCS#8 P-256 key: {e}"))
                })?
            };
            let signature = sign_sha1(&key, &body)?;
            let header = format!(
                r#"{{"alg":"ecdsa","kid":{},"signature":{},"digest":"SHA1"}}"#,
                js(kid),
                js(&STANDARD.encode(signature)),
            );
            headers.push((SIGNATURE_HEADER.to_string(), STANDARD.encode(header)));
            let private = key
                .to_pkcs8v1()
                .map_err(|_| Refusal::Misconfigured("could not export the key".into()))?;
            let public = key
                .public_key()
                .as_der()
                .map_err(|_| Refusal::Misconfigured("could not export the public key".into()))?;
            (
                Some(to_pem("PRIVATE KEY", private.as_ref())),
                Some(to_pem("PUBLIC KEY", public.as_ref())),
            )
        }
    };
    Ok(SignedRequest {
        method: "POST",
        url_suffix: String::new(),
        headers,
        body,
        key_pem,
        certificate_pem,
    })
}

/// ECDSA P-256 with SHA-1, DER. aws-lc-rs signs P-256 only with SHA-256, but it signs a given
/// digest: ECDSA reads a digest as a big-endian integer (truncated to 256 bits), so the 20-byte
/// SHA-1 digest left-padded with zeros to 32 bytes is the same integer, and the signature is a
/// valid ECDSA-with-SHA-1 signature.
fn sign_sha1(key: &EcdsaKeyPair, message: &[u8]) -> Result<Vec<u8>, Refusal> {
    let sha1 = Sha1::digest(message);
    let mut padded = [0u8; 32];
    padded
        .get_mut(12..)
        .ok_or_else(|| Refusal::Misconfigured("digest length".into()))?
        .copy_from_slice(&sha1);
    let prehash = digest::Digest::import_less_safe(&padded, &digest::SHA256)
        .map_err(|_| Refusal::Misconfigured("could not import the digest".into()))?;
    let signature = key
        .sign_digest(&prehash)
        .map_err(|_| Refusal::Misconfigured("could not sign".into()))?;
    Ok(signature.as_ref().to_vec())
}

/// A quantity given as a number or a numeric string.
fn quantity(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn normalize(event: &NativeEvent) -> Normalized {
    let data = event.payload.pointer("/notification/data");
    let id_of = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| data.and_then(|d| d.get(*n)).and_then(util::as_id))
    };
    let resource = |kind: &str, id: Option<String>| {
        id.map(|id| Resource {
            kind: kind.to_string(),
            id,
        })
    };
    match event.event_type.as_str() {
        "ORDER_CONFIRMATION" => Normalized {
            topic: Some("order.created"),
            resource: resource("order", id_of(&["orderId"])),
            ..Normalized::default()
        },
        "ITEM_MARKED_SHIPPED" => Normalized {
            topic: Some("order.updated"),
            resource: resource("order", id_of(&["orderId"])),
            status: Some("SHIPPED".to_string()),
            ..Normalized::default()
        },
        "ITEM_PRICE_REVISION" => Normalized {
            topic: Some("pricing.changed"),
            resource: resource("item", id_of(&["itemId"])),
            ..Normalized::default()
        },
        "MARKETPLACE_ACCOUNT_DELETION" => Normalized {
            topic: Some("account.deauthorized"),
            resource: resource("account", id_of(&["userId", "username"])),
            ..Normalized::default()
        },
        "ITEM_AVAILABILITY" => {
            let given = [
                "quantity",
                "availableQuantity",
                "quantityAvailable",
                "totalAvailableQuantity",
            ]
            .iter()
            .find_map(|n| data.and_then(|d| d.get(*n)).and_then(quantity));
            if given == Some(0.0) {
                Normalized {
                    topic: Some("inventory.low"),
                    resource: resource("item", id_of(&["itemId"])),
                    ..Normalized::default()
                }
            } else {
                Normalized::default()
            }
        }
        _ => Normalized::default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_source_that_could_not_answer_the_challenge_is_refused() {
        use serde_json::json;
        assert!(matches!(
            check_secrets(&json!({}), &[]),
            Err(Refusal::Misconfigured(m)) if m.contains("verificationToken")
        ));
        assert!(check_secrets(&json!({"verificationToken": "t".repeat(32)}), &[]).is_ok());
        assert!(check_secrets(&json!({}), &["a-secret"]).is_ok());
        assert!(matches!(
            check_secrets(&json!({"signatureForm": "hmac", "verificationToken": "t"}), &[]),
            Err(Refusal::Misconfigured(m)) if m.contains("needs a secret")
        ));
    }

    use super::*;

    #[test]
    fn compact_form_strips_whitespace_and_reescapes_strings() {
        let body = b"{ \"a\" : [1, 2.0],\n \"b\": \"x y\\u0041\\/\" }";
        assert_eq!(
            compact_json(body).as_deref(),
            Some(&b"{\"a\":[1,2.0],\"b\":\"x yA/\"}"[..])
        );
        assert_eq!(compact_json(b"{\"a"), None);
        assert_eq!(compact_json(b"\"\\"), None);
        assert_eq!(compact_json(&[0xff, 0xfe]), None);
    }

    #[test]
    fn keys_are_read_from_pem_base64_json_and_der() {
        let der = vec![0x30, 0x59, 0x30, 0x13];
        let b64 = STANDARD.encode(&der);
        assert_eq!(key_der(b64.as_bytes()), Some(der.clone()));
        let pem = format!("-----BEGIN PUBLIC KEY-----{b64}-----END PUBLIC KEY-----");
        assert_eq!(key_der(pem.as_bytes()), Some(der.clone()));
        assert_eq!(
            key_der(to_pem("PUBLIC KEY", &der).as_bytes()),
            Some(der.clone())
        );
        let answer = json!({"key": pem, "algorithm": "ECDSA", "digest": "SHA1"}).to_string();
        assert_eq!(key_der(answer.as_bytes()), Some(der.clone()));
        assert_eq!(key_der(&[0x30, 0x81, 0xff]), Some(vec![0x30, 0x81, 0xff]));
        assert_eq!(key_der(b"-----BEGIN X-----"), None);
        assert_eq!(key_der(b"not base64!"), None);
    }
}
