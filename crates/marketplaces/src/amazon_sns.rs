//! Amazon SNS over HTTP/HTTPS: how Amazon's Selling Partner API notifications reach Switchyard.
//!
//! SP-API itself only delivers to SQS or EventBridge, so a seller who wants webhooks points an SNS
//! topic at Switchyard. Every request is then an SNS envelope (a JSON body sent as `text/plain`):
//!
//! ```text
//! { "Type": "Notification", "MessageId": "…", "TopicArn": "…", "Message": "<SP-API JSON>",
//!   "Timestamp": "2022-07-28T21:23:58.317Z", "SignatureVersion": "2", "Signature": "<base64>",
//!   "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-….pem", … }
//! ```
//!
//! SNS signs a few of the envelope's fields with RSA (PKCS#1 v1.5; SHA-1 for `SignatureVersion`
//! 1, SHA-256 for 2), using the key of the X.509 certificate at `SigningCertURL`. That URL must be
//! `https`, on an SNS host, and end in `.pem` — the same rule AWS's own validators apply — and only
//! then is the certificate asked of the [`KeyStore`]. This module fetches nothing itself: when the
//! certificate is not cached yet, `verify` answers [`Refusal::KeyNeeded`] and the caller fetches
//! it and verifies again.
//!
//! Three message types exist: `Notification` (an event), `SubscriptionConfirmation` (answered as a
//! [`Handshake`] whose `confirm_url` the caller must GET before anything is delivered) and
//! `UnsubscribeConfirmation` (acknowledged, nothing else). Raw message delivery carries no
//! signature at all, so it is refused.
//!
//! # Time
//!
//! The signed `Timestamp` must be within the source's replay window of `now`, and the signing
//! certificate must be valid (`notBefore ≤ now ≤ notAfter`) at `now`. There is no switch to turn
//! either check off: archived messages (such as the public AWS-signed test vectors, whose
//! certificate expired in 2022) are verified by passing the message's own time as `now`, which is
//! what the tests do. The certificate is trusted because it came over HTTPS from an SNS host; its
//! chain is not checked here.
//!
//! # Options (`SourceSettings::options`, all optional)
//!
//! - `topicArns`: the topic ARNs this source accepts, as an array of strings (or one string).
//!   Any other topic, including in a subscription confirmation, is refused before the
//!   certificate is even asked for. Absent, `null` or an empty array: any topic.
//!
//! # Simulating (`sign`)
//!
//! `event_type` is `ORDER_CHANGE` (also `Notification` or empty: the same), or
//! `SubscriptionConfirmation` / `UnsubscribeConfirmation`. Options: `orderStatus` (default
//! `Unshipped`), `orderChangeType` (default `OrderStatusChange`), `topicArn`, `certUrl`,
//! `subscribeUrl`, `subject`, `signatureVersion` (`"1"` or `"2"`, default `"2"`). The secret is a
//! PKCS#8 PEM RSA private key, generated when empty; the key and a self-signed certificate for it
//! come back in the [`SignedRequest`], and the simulator serves that certificate at `certUrl`.

pub mod orders;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha1::Digest as _;

use crate::util;
use crate::*;

/// Where `sign` says the certificate is, unless `certUrl` says otherwise.
const DEFAULT_CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-switchyard.pem";

/// The topic `sign` publishes to, unless `topicArn` says otherwise.
const DEFAULT_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:switchyard-orders";

/// The three kinds of SNS envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    fn parse(name: &str) -> Option<MessageType> {
        match name {
            "Notification" => Some(MessageType::Notification),
            "SubscriptionConfirmation" => Some(MessageType::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(MessageType::UnsubscribeConfirmation),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    /// The signed fields, in signing order, each with whether it may be absent.
    fn signed_fields(self) -> &'static [(&'static str, bool)] {
        match self {
            MessageType::Notification => &[
                ("Message", false),
                ("MessageId", false),
                ("Subject", true),
                ("Timestamp", false),
                ("TopicArn", false),
                ("Type", false),
            ],
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => &[
                ("Message", false),
                ("MessageId", false),
                ("SubscribeURL", false),
                ("Timestamp", false),
                ("Token", false),
                ("TopicArn", false),
                ("Type", false),
            ],
        }
    }
}

/// SNS's two signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureVersion {
    /// RSA PKCS#1 v1.5 with SHA-1.
    V1,
    /// RSA PKCS#1 v1.5 with SHA-256.
    V2,
}

impl SignatureVersion {
    fn parse(value: &Value) -> Option<SignatureVersion> {
        match value {
            Value::String(s) if s == "1" => Some(SignatureVersion::V1),
            Value::String(s) if s == "2" => Some(SignatureVersion::V2),
            Value::Number(n) if n.as_u64() == Some(1) => Some(SignatureVersion::V1),
            Value::Number(n) if n.as_u64() == Some(2) => Some(SignatureVersion::V2),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

/// What a URL in an envelope is used for: the rules differ only in the `.pem` ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnsUrl {
    SigningCert,
    Subscribe,
}

/// Verifies an SNS delivery, checking in this order: POST; a signed envelope of a known `Type`
/// (raw delivery refused); `SignatureVersion`; the `SigningCertURL` rule; the signed fields and
/// `topicArns`; only then the certificate (from `keys`, valid at `now`) and the signature; then
/// the replay window. A `SubscriptionConfirmation` must also carry an SNS `SubscribeURL`.
pub fn verify(
    req: &Inbound,
    source: &SourceSettings,
    keys: &dyn KeyStore,
) -> Result<Outcome, Refusal> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(Refusal::Unsupported(format!(
            "SNS delivers with POST, not {}",
            req.method
        )));
    }
    if req
        .header("x-amz-sns-rawdelivery")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(raw_delivery());
    }

    let body = util::parse_object(req.body)?;
    let Some(envelope) = body.as_object() else {
        return Err(Refusal::MalformedBody("body is not a JSON object".into()));
    };

    let message_type = match envelope.get("Type") {
        None => return Err(raw_delivery()),
        Some(Value::String(name)) => MessageType::parse(name).ok_or_else(|| {
            Refusal::Unsupported(format!("SNS message type {name:?} is not accepted"))
        })?,
        Some(_) => return Err(Refusal::MalformedBody("Type is not a string".into())),
    };
    if let Some(header_type) = req.header("x-amz-sns-message-type")
        && header_type.trim() != message_type.as_str()
    {
        return Err(Refusal::MalformedBody(format!(
            "x-amz-sns-message-type says {header_type:?} but the body's Type is {:?}",
            message_type.as_str()
        )));
    }

    let signature = envelope.get("Signature");
    let cert_url = envelope.get("SigningCertURL");
    if signature.is_none() && cert_url.is_none() {
        return Err(raw_delivery());
    }
    let signature = match signature {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(Refusal::MissingSignature),
    };
    let Some(Value::String(cert_url)) = cert_url else {
        return Err(Refusal::KeyUnavailable(
            "the message names no SigningCertURL".into(),
        ));
    };
    let version = envelope
        .get("SignatureVersion")
        .and_then(SignatureVersion::parse)
        .ok_or_else(|| {
            Refusal::Unsupported(format!(
                "SignatureVersion {} is not supported (1 and 2 are)",
                envelope.get("SignatureVersion").unwrap_or(&Value::Null)
            ))
        })?;
    check_sns_url(cert_url, SnsUrl::SigningCert)
        .map_err(|why| Refusal::KeyUnavailable(format!("SigningCertURL {cert_url:?} {why}")))?;

    let string_to_sign = string_to_sign(envelope, message_type)?;
    let topic_arn = text_field(envelope, "TopicArn")?;
    check_topic(source, topic_arn)?;

    let certificate_ref = KeyRef::CertificateUrl(cert_url.clone());
    let Some(certificate) = keys.get(&certificate_ref) else {
        return Err(Refusal::KeyNeeded(certificate_ref));
    };
    let public_key = certificate_public_key(&certificate, req.now)?;
    check_signature(version, &public_key, string_to_sign.as_bytes(), signature)?;

    let timestamp = text_field(envelope, "Timestamp")?;
    let signed_at = timestamp
        .parse::<Timestamp>()
        .map_err(|e| Refusal::MalformedBody(format!("Timestamp {timestamp:?}: {e}")))?;
    if req.now.duration_since(signed_at).abs() > source.replay_window {
        return Err(Refusal::StaleTimestamp);
    }

    match message_type {
        MessageType::Notification => Ok(Outcome::Event(notification_event(envelope, signed_at)?)),
        MessageType::SubscriptionConfirmation => {
            let subscribe_url = text_field(envelope, "SubscribeURL")?;
            check_sns_url(subscribe_url, SnsUrl::Subscribe).map_err(|why| {
                Refusal::Unsupported(format!("SubscribeURL {subscribe_url:?} {why}"))
            })?;
            Ok(Outcome::Handshake(Handshake {
                status: 200,
                content_type: "application/json",
                body: br#"{"status":"confirming"}"#.to_vec(),
                confirm_url: Some(subscribe_url.to_owned()),
            }))
        }
        MessageType::UnsubscribeConfirmation => Ok(Outcome::Handshake(Handshake {
            status: 200,
            content_type: "application/json",
            body: br#"{"status":"unsubscribed"}"#.to_vec(),
            confirm_url: None,
        })),
    }
}

fn raw_delivery() -> Refusal {
    Refusal::Unsupported(
        "not a signed SNS envelope (raw message delivery?): turn raw message delivery off on the \
         subscription"
            .into(),
    )
}

/// A string field of the envelope that must be there.
fn text_field<'a>(envelope: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    match envelope.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Refusal::MalformedBody(format!("{name} is not a string"))),
        None => Err(Refusal::MalformedBody(format!("{name} is missing"))),
    }
}

/// The string SNS signs: `Name\nValue\n` for each signed field present, in order. An optional
/// field that is absent or `null` is left out.
fn string_to_sign(
    envelope: &Map<String, Value>,
    message_type: MessageType,
) -> Result<String, Refusal> {
    let mut out = String::new();
    for &(name, optional) in message_type.signed_fields() {
        match envelope.get(name) {
            None | Some(Value::Null) if optional => continue,
            _ => {}
        }
        let value = text_field(envelope, name)?;
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// Checks a URL the way AWS's validators do: `https`, a host matching
/// `^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$`, and for certificates a path ending `.pem`.
/// Stricter where it costs nothing: no user info, no port, no backslashes, spaces or control
/// characters anywhere. The error says what is wrong, to follow the URL in a refusal.
fn check_sns_url(url: &str, purpose: SnsUrl) -> Result<(), &'static str> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("contains characters a URL may not");
    }
    let Some(rest) = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
    else {
        return Err("is not https");
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_more) = rest.split_at(authority_end);
    if authority.contains(['@', ':']) {
        return Err("has user info or a port");
    }
    if !is_sns_host(&authority.to_ascii_lowercase()) {
        return Err("is not on an SNS host");
    }
    let path = path_and_more.split(['?', '#']).next().unwrap_or_default();
    if purpose == SnsUrl::SigningCert && !path.ends_with(".pem") {
        return Err("does not end in .pem");
    }
    Ok(())
}

/// `^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$`, without a regex engine.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let Some(region) = rest
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| rest.strip_suffix(".amazonaws.com"))
    else {
        return false;
    };
    region.len() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The topics the `topicArns` option lists; empty for any topic.
fn topic_arns(options: &Value) -> Result<Vec<&str>, Refusal> {
    match options.get("topicArns") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.as_str()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<_>>()
            .ok_or_else(|| Refusal::Misconfigured("topicArns must be an array of strings".into())),
        Some(_) => Err(Refusal::Misconfigured(
            "topicArns must be an array of strings".into(),
        )),
    }
}

/// Refuses the options [`verify`] would refuse as misconfigured: only a `topicArns` that is not a
/// string or an array of strings, so that a source is refused when it is set up rather than on
/// every request. (The options `sign` reads are the simulator's, not the source's.)
pub fn check_options(options: &Value) -> Result<(), Refusal> {
    topic_arns(options).map(|_| ())
}

/// Refuses a topic the source's `topicArns` option does not list.
fn check_topic(source: &SourceSettings, topic_arn: &str) -> Result<(), Refusal> {
    let allowed = topic_arns(&source.options)?;
    if allowed.is_empty() || allowed.contains(&topic_arn) {
        return Ok(());
    }
    Err(Refusal::Unsupported(format!(
        "topic {topic_arn} is not one of this source's topicArns"
    )))
}

/// The RSA public key (PKCS#1 `RSAPublicKey` DER) of a PEM (or DER) certificate that is valid at
/// `now`.
fn certificate_public_key(certificate: &[u8], now: Timestamp) -> Result<Vec<u8>, Refusal> {
    use x509_parser::prelude::{FromDer, X509Certificate};

    let unusable = |why: String| Refusal::KeyUnavailable(format!("signing certificate: {why}"));
    let der = if certificate.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(certificate)
            .map_err(|e| unusable(format!("bad PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(unusable(format!("PEM holds a {}", pem.label)));
        }
        pem.contents
    } else {
        certificate.to_vec()
    };
    let (_, parsed) =
        X509Certificate::from_der(&der).map_err(|e| unusable(format!("not X.509: {e}")))?;

    let validity = parsed.validity();
    let now_second = now.as_second();
    if now_second < validity.not_before.timestamp() || now_second > validity.not_after.timestamp() {
        return Err(unusable(format!(
            "valid only from {} to {}, not at {now}",
            validity.not_before, validity.not_after
        )));
    }

    let key_info = parsed.public_key();
    if key_info.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Err(unusable("the key is not RSA".into()));
    }
    Ok(key_info.subject_public_key.data.to_vec())
}

/// Checks a base64 signature over `signed` with an RSA public key (PKCS#1 DER).
fn check_signature(
    version: SignatureVersion,
    public_key: &[u8],
    signed: &[u8],
    signature_base64: &str,
) -> Result<(), Refusal> {
    let signature = STANDARD
        .decode(signature_base64.trim())
        .map_err(|_| Refusal::SignatureMismatch)?;
    let algorithm = match version {
        SignatureVersion::V1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        SignatureVersion::V2 => &RSA_PKCS1_2048_8192_SHA256,
    };
    UnparsedPublicKey::new(algorithm, public_key)
        .verify(signed, &signature)
        .map_err(|_| Refusal::SignatureMismatch)
}

/// The native event of a verified `Notification`.
fn notification_event(
    envelope: &Map<String, Value>,
    signed_at: Timestamp,
) -> Result<NativeEvent, Refusal> {
    let message_id = text_field(envelope, "MessageId")?;
    let message = text_field(envelope, "Message")?;

    // Only objects and arrays replace the text: a message of `42` or `"x"` stays as sent.
    let parsed_message = serde_json::from_str::<Value>(message)
        .ok()
        .filter(|v| v.is_object() || v.is_array());
    let sp_api = parsed_message.as_ref().and_then(|m| {
        field_ci(m, "NotificationType")
            .and_then(Value::as_str)
            .map(|kind| (m, kind))
    });

    let (event_type, notification_id, partner_id, published_at) = match sp_api {
        Some((notification, kind)) => {
            let metadata = field_ci(notification, "NotificationMetadata");
            (
                kind.to_owned(),
                metadata
                    .and_then(|m| field_ci(m, "NotificationId"))
                    .and_then(util::as_id),
                seller_id(notification),
                metadata
                    .and_then(|m| field_ci(m, "PublishTime"))
                    .and_then(util::parse_time),
            )
        }
        None => ("Notification".to_owned(), None, None, None),
    };
    let event_id = notification_id.unwrap_or_else(|| message_id.to_owned());

    let mut payload = envelope.clone();
    if let Some(parsed) = parsed_message {
        payload.insert("Message".into(), parsed);
    }
    Ok(NativeEvent {
        kind: Kind::AmazonSns,
        event_type,
        dedup_key: event_id.clone(),
        native_event_id: Some(event_id),
        partner_id,
        occurred_at: Some(published_at.unwrap_or(signed_at)),
        payload: Value::Object(payload),
    })
}

/// The seller an SP-API notification is for: `Payload.SellerId`, or the `SellerId` of an object
/// directly inside `Payload` (`OrderChangeNotification`, `AnyOfferChangedNotification`, …).
fn seller_id(notification: &Value) -> Option<String> {
    let payload = field_ci(notification, "Payload")?;
    if let Some(id) = field_ci(payload, "SellerId").and_then(util::as_id) {
        return Some(id);
    }
    payload
        .as_object()?
        .values()
        .filter_map(|child| field_ci(child, "SellerId"))
        .find_map(util::as_id)
}

/// A field of a JSON object, by exact name or else ignoring ASCII case: SP-API spells the same
/// field `SellerId`, `sellerId` and `SellerID` depending on the notification type.
fn field_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Follows a path of fields (case-insensitively).
fn path_ci<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, name| field_ci(v, name))
}

/// The first value, depth first, of a field named any of `names` (ignoring case), looking no
/// deeper than `depth` levels.
fn find_ci<'a>(value: &'a Value, names: &[&str], depth: usize) -> Option<&'a Value> {
    if let Some(found) = names.iter().find_map(|name| field_ci(value, name)) {
        return Some(found);
    }
    if depth == 0 {
        return None;
    }
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Object(map) => Box::new(map.values()),
        Value::Array(items) => Box::new(items.iter()),
        _ => return None,
    };
    children
        .filter(|child| child.is_object() || child.is_array())
        .find_map(|child| find_ci(child, names, depth - 1))
}

/// Every value of fields named any of `names` (ignoring case), no deeper than `depth` levels.
fn collect_ci<'a>(value: &'a Value, names: &[&str], depth: usize, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if names.iter().any(|name| key.eq_ignore_ascii_case(name)) {
                    out.push(child);
                } else if depth > 0 {
                    collect_ci(child, names, depth - 1, out);
                }
            }
        }
        Value::Array(items) if depth > 0 => {
            for child in items {
                collect_ci(child, names, depth - 1, out);
            }
        }
        _ => {}
    }
}

/// Builds a signed SNS delivery carrying an SP-API `ORDER_CHANGE` (or a subscription message);
/// see the module docs for the options.
pub fn sign(req: &SignRequest) -> Result<SignedRequest, Refusal> {
    let message_type = match req.event_type.as_str() {
        "" | "Notification" | "ORDER_CHANGE" => MessageType::Notification,
        "SubscriptionConfirmation" => MessageType::SubscriptionConfirmation,
        "UnsubscribeConfirmation" => MessageType::UnsubscribeConfirmation,
        other => {
            return Err(Refusal::Unsupported(format!(
                "cannot simulate {other:?}: ORDER_CHANGE, SubscriptionConfirmation and \
                 UnsubscribeConfirmation can be"
            )));
        }
    };
    let option = |name: &str| req.options.get(name).and_then(Value::as_str);
    let topic_arn = option("topicArn").unwrap_or(DEFAULT_TOPIC_ARN);
    let cert_url = option("certUrl").unwrap_or(DEFAULT_CERT_URL);
    let version = match req.options.get("signatureVersion") {
        None | Some(Value::Null) => SignatureVersion::V2,
        Some(v) => SignatureVersion::parse(v)
            .ok_or_else(|| Refusal::Misconfigured(format!("signatureVersion {v} is not 1 or 2")))?,
    };
    let region = topic_arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1");

    let event_id = if req.event_id.is_empty() {
        uuid_like(&[
            "event",
            &req.partner_id,
            &req.resource_id,
            &req.now.to_string(),
        ])
    } else {
        req.event_id.clone()
    };
    // SNS keeps the MessageId across retries, so it is derived from the event id.
    let message_id = uuid_like(&["sns-message", topic_arn, &event_id]);
    let timestamp = req.now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();

    let mut fields: Vec<(&'static str, String)> = vec![
        ("Type", message_type.as_str().to_owned()),
        ("MessageId", message_id.clone()),
    ];
    match message_type {
        MessageType::Notification => {
            fields.push(("TopicArn", topic_arn.to_owned()));
            if let Some(subject) = option("subject") {
                fields.push(("Subject", subject.to_owned()));
            }
            fields.push(("Message", order_change_message(req, &event_id)));
            fields.push(("Timestamp", timestamp));
        }
        MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
            let token = util::hash_key(&["sns-token", topic_arn, &event_id]);
            let subscribe_url = option("subscribeUrl").map_or_else(
                || {
                    format!(
                        "https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
                        util::percent_encode(topic_arn)
                    )
                },
                str::to_owned,
            );
            let message = if message_type == MessageType::SubscriptionConfirmation {
                format!(
                    "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the \
                     subscription, visit the SubscribeURL included in this message."
                )
            } else {
                format!(
                    "You have chosen to deactivate subscription {topic_arn}:{message_id}.\nTo \
                     cancel this operation and restore the subscription, visit the SubscribeURL \
                     included in this message."
                )
            };
            fields.push(("Token", token));
            fields.push(("TopicArn", topic_arn.to_owned()));
            fields.push(("Message", message));
            fields.push(("SubscribeURL", subscribe_url));
            fields.push(("Timestamp", timestamp));
        }
    }

    let signed: Map<String, Value> = fields
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Value::String(value.clone())))
        .collect();
    let string_to_sign = string_to_sign(&signed, message_type)?;

    let key = signing_key(&req.secret)?;
    let signature = rsa_sign(version, key.serialized_der(), string_to_sign.as_bytes())?;
    fields.push(("SignatureVersion", version.as_str().to_owned()));
    fields.push(("Signature", STANDARD.encode(signature)));
    fields.push(("SigningCertURL", cert_url.to_owned()));
    let subscription_arn = format!("{topic_arn}:{}", uuid_like(&["subscription", topic_arn]));
    if message_type == MessageType::Notification {
        fields.push((
            "UnsubscribeURL",
            format!(
                "https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
            ),
        ));
    }

    let mut headers = vec![
        (
            "content-type".to_owned(),
            "text/plain; charset=UTF-8".to_owned(),
        ),
        (
            "x-amz-sns-message-type".to_owned(),
            message_type.as_str().to_owned(),
        ),
        ("x-amz-sns-message-id".to_owned(), message_id),
        ("x-amz-sns-topic-arn".to_owned(), topic_arn.to_owned()),
        (
            "user-agent".to_owned(),
            "Amazon Simple Notification Service Agent".to_owned(),
        ),
    ];
    if message_type == MessageType::Notification {
        headers.push(("x-amz-sns-subscription-arn".to_owned(), subscription_arn));
    }

    Ok(SignedRequest {
        method: "POST",
        url_suffix: String::new(),
        headers,
        body: render_envelope(&fields).into_bytes(),
        key_pem: Some(key.serialize_pem()),
        certificate_pem: Some(self_signed_certificate(&key, cert_url)?),
    })
}

/// The SP-API `ORDER_CHANGE` notification `sign` sends, as JSON text.
fn order_change_message(req: &SignRequest, notification_id: &str) -> String {
    let option = |name: &str| req.options.get(name).and_then(Value::as_str);
    let now = req.now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    json!({
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": req.partner_id,
                "AmazonOrderId": req.resource_id,
                "OrderChangeType": option("orderChangeType").unwrap_or("OrderStatusChange"),
                "OrderChangeTrigger": {
                    "TimeOfOrderChange": now,
                    "ChangeReason": "Order status changed",
                },
                "Summary": {
                    "MarketplaceId": "ATVPDKIKX0DER",
                    "OrderStatus": option("orderStatus").unwrap_or("Unshipped"),
                    "PurchaseDate": now,
                    "FulfillmentType": "MFN",
                    "OrderType": "StandardOrder",
                    "NumberOfItemsShipped": 0,
                    "NumberOfItemsUnshipped": 1,
                },
            },
        },
        "NotificationMetadata": {
            "ApplicationId": "amzn1.sp.solution.switchyard-simulator",
            "SubscriptionId": uuid_like(&["sp-api-subscription", &req.partner_id]),
            "PublishTime": now,
            "NotificationId": notification_id,
        },
    })
    .to_string()
}

/// The envelope as SNS writes it: pretty JSON, fields in SNS's order.
fn render_envelope(fields: &[(&str, String)]) -> String {
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "  {} : {}",
                Value::String((*name).to_owned()),
                Value::String(value.clone())
            )
        })
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

/// A UUID-shaped id derived from the parts, so that the same inputs give the same id.
fn uuid_like(parts: &[&str]) -> String {
    let hex = util::hash_key(parts);
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or("0");
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// The simulator's key: the secret (a PKCS#8 PEM RSA key), or a new RSA 2048 key.
fn signing_key(secret: &str) -> Result<rcgen::KeyPair, Refusal> {
    if secret.trim().is_empty() {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| Refusal::Misconfigured(format!("cannot generate an RSA key: {e}")))
    } else {
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(secret, &rcgen::PKCS_RSA_SHA256).map_err(|e| {
            Refusal::Misconfigured(format!("the secret is not a PKCS#8 PEM RSA key: {e}"))
        })
    }
}

/// Signs with RSA PKCS#1 v1.5: SHA-256 through aws-lc-rs; SHA-1 (which aws-lc-rs only verifies)
/// by the textbook construction, then checked with aws-lc-rs before it is returned.
fn rsa_sign(
    version: SignatureVersion,
    pkcs8_der: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let key = RsaKeyPair::from_pkcs8(pkcs8_der)
        .map_err(|e| Refusal::Misconfigured(format!("unusable RSA key: {e}")))?;
    match version {
        SignatureVersion::V2 => {
            let mut signature = vec![0; key.public_modulus_len()];
            key.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| Refusal::Misconfigured("RSA signing failed".into()))?;
            Ok(signature)
        }
        SignatureVersion::V1 => {
            let signature = rsa_sha1_sign(pkcs8_der, message)?;
            UnparsedPublicKey::new(
                &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                key.public_key().as_ref(),
            )
            .verify(message, &signature)
            .map_err(|_| Refusal::Misconfigured("SHA-1 RSA signing failed".into()))?;
            Ok(signature)
        }
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017, 8.2.1), from the PKCS#8 key's modulus and private
/// exponent. Not constant-time: it signs simulated messages only, never with a real key.
fn rsa_sha1_sign(pkcs8_der: &[u8], message: &[u8]) -> Result<Vec<u8>, Refusal> {
    use x509_parser::der_parser::parse_der;
    use x509_parser::num_bigint::BigUint;

    /// DER of `DigestInfo { sha1, NULL }` up to the digest itself.
    const SHA1_DIGEST_INFO: [u8; 15] = [
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    let bad_key = || Refusal::Misconfigured("the signing key is not a PKCS#8 RSA key".into());

    // PrivateKeyInfo { version, algorithm, privateKey OCTET STRING { RSAPrivateKey } }
    let (_, info) = parse_der(pkcs8_der).map_err(|_| bad_key())?;
    let private_key = info
        .as_sequence()
        .ok()
        .and_then(|fields| fields.get(2))
        .and_then(|field| field.as_slice().ok())
        .ok_or_else(bad_key)?;
    // RSAPrivateKey { version, n, e, d, p, q, dp, dq, qinv }
    let (_, rsa) = parse_der(private_key).map_err(|_| bad_key())?;
    let rsa = rsa.as_sequence().map_err(|_| bad_key())?;
    let integer = |i: usize| rsa.get(i).and_then(|v| v.as_biguint().ok());
    let (Some(modulus), Some(private_exponent)) = (integer(1), integer(3)) else {
        return Err(bad_key());
    };

    let size = usize::try_from(modulus.bits().div_ceil(8)).map_err(|_| bad_key())?;
    let digest = sha1::Sha1::digest(message);
    let Some(padding) = size.checked_sub(3 + SHA1_DIGEST_INFO.len() + digest.len()) else {
        return Err(bad_key());
    };
    let mut encoded = Vec::with_capacity(size);
    encoded.extend_from_slice(&[0x00, 0x01]);
    encoded.resize(2 + padding, 0xff);
    encoded.push(0x00);
    encoded.extend_from_slice(&SHA1_DIGEST_INFO);
    encoded.extend_from_slice(&digest);

    let signature = BigUint::from_bytes_be(&encoded)
        .modpow(&private_exponent, &modulus)
        .to_bytes_be();
    let mut out = vec![0; size.saturating_sub(signature.len())];
    out.extend_from_slice(&signature);
    Ok(out)
}

/// A self-signed certificate for the key, named after the host of `cert_url`.
fn self_signed_certificate(key: &rcgen::KeyPair, cert_url: &str) -> Result<String, Refusal> {
    let host = cert_url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split(['/', '?', '#', ':']).next())
        .filter(|host| !host.is_empty() && host.is_ascii())
        .unwrap_or("sns.amazonaws.com");
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()])
        .or_else(|_| rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]))
        .map_err(|e| Refusal::Misconfigured(format!("certificate parameters: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let certificate = params
        .self_signed(key)
        .map_err(|e| Refusal::Misconfigured(format!("cannot make the certificate: {e}")))?;
    Ok(certificate.pem())
}

/// Maps an SP-API notification onto a topic; see `docs/marketplaces.md`, Normalized topics.
pub fn normalize(event: &NativeEvent) -> Normalized {
    let Some(notification) = event.payload.get("Message").filter(|m| m.is_object()) else {
        return Normalized::default();
    };
    let kind = field_ci(notification, "NotificationType")
        .and_then(Value::as_str)
        .unwrap_or(&event.event_type);
    let Some(payload) = field_ci(notification, "Payload") else {
        return Normalized::default();
    };
    let item = |preferred: &[&str], fallback: &[&str]| {
        find_ci(payload, preferred, 3)
            .or_else(|| find_ci(payload, fallback, 3))
            .and_then(util::as_id)
            .map(|id| Resource {
                kind: "item".into(),
                id,
            })
    };
    const ASIN: &[&str] = &["ASIN"];
    const SKU: &[&str] = &["SKU", "SellerSKU"];

    match kind {
        "ORDER_CHANGE" => normalize_order_change(payload),
        "ANY_OFFER_CHANGED" | "B2B_ANY_OFFER_CHANGED" | "PRICING_HEALTH" => Normalized {
            topic: Some("pricing.changed"),
            resource: item(ASIN, SKU),
            ..Normalized::default()
        },
        "LISTINGS_ITEM_STATUS_CHANGED" => {
            let statuses = field_ci(payload, "Status").map(strings);
            let topic = statuses.as_ref().map(|statuses| {
                let listed = statuses.iter().any(|s| {
                    s.eq_ignore_ascii_case("BUYABLE") || s.eq_ignore_ascii_case("DISCOVERABLE")
                });
                if listed {
                    "listing.approved"
                } else {
                    "listing.rejected"
                }
            });
            Normalized {
                topic,
                resource: item(SKU, ASIN),
                status: statuses.map(|s| s.join(",")).filter(|s| !s.is_empty()),
                first_sighting_topic: None,
            }
        }
        "LISTINGS_ITEM_ISSUES_CHANGE" => Normalized {
            topic: Some("listing.rejected"),
            resource: item(SKU, ASIN),
            status: field_ci(payload, "Severities")
                .map(|s| strings(s).join(","))
                .filter(|s| !s.is_empty()),
            first_sighting_topic: None,
        },
        "LISTINGS_ITEM_MFN_QUANTITY_CHANGE" => {
            let out_of_stock = field_ci(payload, "Quantity").and_then(quantity) == Some(0);
            Normalized {
                topic: out_of_stock.then_some("inventory.low"),
                resource: item(SKU, ASIN),
                ..Normalized::default()
            }
        }
        "FBA_INVENTORY_AVAILABILITY_CHANGES" => {
            let mut found = Vec::new();
            collect_ci(
                payload,
                &["Fulfillable", "FulfillableQuantity"],
                5,
                &mut found,
            );
            let quantities: Option<Vec<i64>> = found.into_iter().map(quantity).collect();
            let out_of_stock =
                quantities.is_some_and(|q| !q.is_empty() && q.iter().all(|&n| n == 0));
            Normalized {
                topic: out_of_stock.then_some("inventory.low"),
                resource: item(SKU, ASIN),
                ..Normalized::default()
            }
        }
        _ => Normalized::default(),
    }
}

/// `ORDER_CHANGE`: the order's new status; a first sighting is `order.created`, a cancellation
/// is `order.cancelled` whether seen before or not.
fn normalize_order_change(payload: &Value) -> Normalized {
    let change = field_ci(payload, "OrderChangeNotification").unwrap_or(payload);
    let resource = field_ci(change, "AmazonOrderId")
        .and_then(util::as_id)
        .map(|id| Resource {
            kind: "order".into(),
            id,
        });
    let status = path_ci(change, &["Summary", "OrderStatus"])
        .and_then(Value::as_str)
        .map(str::to_owned);
    let cancelled = status
        .as_deref()
        .is_some_and(|s| s.to_ascii_lowercase().starts_with("cancel"));
    if cancelled {
        Normalized {
            topic: Some("order.cancelled"),
            resource,
            status,
            first_sighting_topic: None,
        }
    } else {
        Normalized {
            topic: Some("order.updated"),
            resource,
            status,
            first_sighting_topic: Some("order.created"),
        }
    }
}

/// A string or an array of strings, as strings (anything else: none).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A quantity sent as a number or a numeric string.
fn quantity(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_hosts_follow_the_aws_rule() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
            "HTTPS://SNS.EU-WEST-1.AMAZONAWS.COM/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem?v=1",
        ] {
            assert_eq!(check_sns_url(good, SnsUrl::SigningCert), Ok(()), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://evil.example.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://sns.ab.amazonaws.com/x.pem",
            "https://sns.us.east.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem.txt",
            "https://sns.us-east-1.amazonaws.com/x.txt?x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
            "https://sns.us-east-1.amazonaws.com./x.pem",
            "https://sns.us-east-1.amazonaws.com",
            "https:/",
            "",
            "https://sns.ü-east-1.amazonaws.com/x.pem",
        ] {
            assert!(check_sns_url(bad, SnsUrl::SigningCert).is_err(), "{bad}");
        }
        assert_eq!(
            check_sns_url(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
                SnsUrl::Subscribe
            ),
            Ok(())
        );
    }

    #[test]
    fn string_to_sign_ends_with_a_newline_and_skips_absent_subject() {
        let envelope: Map<String, Value> = serde_json::from_str(
            r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"hi",
                "Timestamp":"2022-07-28T21:23:58.317Z","Subject":null}"#,
        )
        .unwrap();
        assert_eq!(
            string_to_sign(&envelope, MessageType::Notification).unwrap(),
            "Message\nhi\nMessageId\nm\nTimestamp\n2022-07-28T21:23:58.317Z\nTopicArn\nt\nType\nNotification\n"
        );
        assert!(matches!(
            string_to_sign(&envelope, MessageType::SubscriptionConfirmation),
            Err(Refusal::MalformedBody(_))
        ));
    }

    /// The AWS-signed vectors fail when the final newline of the string to sign is dropped.
    #[test]
    fn vectors_need_the_final_newline() {
        let text = include_str!("../../../tests/vectors/amazon_sns.json");
        let vectors: Value = serde_json::from_str(text).unwrap();
        let pem = vectors["signing_cert_pem"].as_str().unwrap();
        for message in vectors["messages"].as_array().unwrap() {
            let envelope = message.as_object().unwrap();
            let now: Timestamp = envelope["Timestamp"].as_str().unwrap().parse().unwrap();
            let key = certificate_public_key(pem.as_bytes(), now).unwrap();
            let version = SignatureVersion::parse(&envelope["SignatureVersion"]).unwrap();
            let signature = envelope["Signature"].as_str().unwrap();
            let signed = string_to_sign(envelope, MessageType::Notification).unwrap();
            assert_eq!(
                check_signature(version, &key, signed.as_bytes(), signature),
                Ok(())
            );
            let without_newline = signed.strip_suffix('\n').unwrap();
            assert_eq!(
                check_signature(version, &key, without_newline.as_bytes(), signature),
                Err(Refusal::SignatureMismatch)
            );
        }
    }

    #[test]
    fn uuid_like_is_stable_and_shaped() {
        let id = uuid_like(&["a", "b"]);
        assert_eq!(id, uuid_like(&["a", "b"]));
        assert_ne!(id, uuid_like(&["a", "c"]));
        assert_eq!(
            id.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }
}
