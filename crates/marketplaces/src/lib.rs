//! One module per marketplace, each with the same four functions:
//!
//! - `verify(&Inbound, &SourceSettings, &dyn KeyStore) -> Result<Outcome, Refusal>`: checks a
//!   received request exactly as that marketplace signs it (every documented form the source is
//!   configured for), before parsing anything it does not need, comparing MACs in constant time;
//!   answers handshakes; and extracts the native event (type, dedup key, partner, time, payload).
//! - `check_options(&Value) -> Result<(), Refusal>`: refuses the source options `verify` would
//!   refuse as [`Refusal::Misconfigured`], with the same parsers and the same message, so that a
//!   source that cannot work is refused when it is created or changed instead of answering every
//!   request 500. (Secrets with a shape — a `whsec_` secret, a secret an HMAC form needs — are
//!   checked by `check_secrets` in the modules that have them, through [`Kind::check_secrets`].)
//! - `sign(&SignRequest) -> Result<SignedRequest, Refusal>`: builds a request in that marketplace's
//!   exact wire format, correctly signed, for `switchyard simulate` and for tests.
//! - `normalize(&NativeEvent) -> Normalized`: maps the native event onto a cross-marketplace topic
//!   (`docs/marketplaces.md`, Normalized topics), with the resource and status it is about.
//!
//! Everything here is pure: no I/O, no clock (the request carries `now`), no global state. Keys
//! that live elsewhere (Amazon's signing certificates, eBay's public keys) are asked of a
//! [`KeyStore`]; when one is missing, `verify` answers [`Refusal::KeyNeeded`] and the caller
//! fetches it and calls again. Adding a marketplace means adding one module and one
//! [`Kind`] entry.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod amazon_sns;
pub mod ebay;
pub mod etsy;
pub mod flipkart;
pub mod orders;
pub mod sellercenter;
pub mod shopify;
pub mod standard;
pub mod tiktok;
pub mod walmart;

pub mod util;

/// The kinds of source, as `POST /api/v1/sources` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AmazonSns,
    Ebay,
    Etsy,
    Tiktok,
    Walmart,
    Flipkart,
    Sellercenter,
    Shopify,
    Standard,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::AmazonSns,
        Kind::Ebay,
        Kind::Etsy,
        Kind::Tiktok,
        Kind::Walmart,
        Kind::Flipkart,
        Kind::Sellercenter,
        Kind::Shopify,
        Kind::Standard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AmazonSns => "amazon_sns",
            Kind::Ebay => "ebay",
            Kind::Etsy => "etsy",
            Kind::Tiktok => "tiktok",
            Kind::Walmart => "walmart",
            Kind::Flipkart => "flipkart",
            Kind::Sellercenter => "sellercenter",
            Kind::Shopify => "shopify",
            Kind::Standard => "standard",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The name put in a normalized event's `marketplace`.
    pub fn marketplace(self) -> &'static str {
        match self {
            Kind::AmazonSns => "amazon",
            other => other.as_str(),
        }
    }

    /// Whether this marketplace's first news of an order may be a status change, so that the
    /// first sighting of an order decides its topic (`order.created`): Amazon's `ORDER_CHANGE`
    /// and TikTok Shop's order status updates. Only these need the resource registry on the
    /// ack path.
    pub fn first_sighting_decides_topic(self) -> bool {
        matches!(self, Kind::AmazonSns | Kind::Tiktok)
    }

    /// Verifies a request for a source of this kind.
    pub fn verify(
        self,
        request: &Inbound,
        source: &SourceSettings,
        keys: &dyn KeyStore,
    ) -> Result<Outcome, Refusal> {
        match self {
            Kind::AmazonSns => amazon_sns::verify(request, source, keys),
            Kind::Ebay => ebay::verify(request, source, keys),
            Kind::Etsy => etsy::verify(request, source, keys),
            Kind::Tiktok => tiktok::verify(request, source, keys),
            Kind::Walmart => walmart::verify(request, source, keys),
            Kind::Flipkart => flipkart::verify(request, source, keys),
            Kind::Sellercenter => sellercenter::verify(request, source, keys),
            Kind::Shopify => shopify::verify(request, source, keys),
            Kind::Standard => standard::verify(request, source, keys),
        }
    }

    /// Checks a source's secrets as this kind's `verify` needs them with these options (a
    /// source that could never verify is refused when made, not answered 500 ever after). The
    /// kinds whose secrets are opaque shared strings take any non-empty one.
    pub fn check_secrets(self, options: &Value, secrets: &[&str]) -> Result<(), Refusal> {
        match self {
            Kind::Standard => standard::check_secrets(secrets),
            Kind::Etsy => etsy::check_secrets(options, secrets),
            Kind::Ebay => ebay::check_secrets(options, secrets),
            _ => Ok(()),
        }
    }

    /// Checks a source's options as a source of this kind's `verify` reads them.
    pub fn check_options(self, options: &Value) -> Result<(), Refusal> {
        match self {
            Kind::AmazonSns => amazon_sns::check_options(options),
            Kind::Ebay => ebay::check_options(options),
            Kind::Etsy => etsy::check_options(options),
            Kind::Tiktok => tiktok::check_options(options),
            Kind::Walmart => walmart::check_options(options),
            Kind::Flipkart => flipkart::check_options(options),
            Kind::Sellercenter => sellercenter::check_options(options),
            Kind::Shopify => shopify::check_options(options),
            Kind::Standard => standard::check_options(options),
        }
    }

    /// Builds a signed request in this kind's wire format.
    pub fn sign(self, request: &SignRequest) -> Result<SignedRequest, Refusal> {
        match self {
            Kind::AmazonSns => amazon_sns::sign(request),
            Kind::Ebay => ebay::sign(request),
            Kind::Etsy => etsy::sign(request),
            Kind::Tiktok => tiktok::sign(request),
            Kind::Walmart => walmart::sign(request),
            Kind::Flipkart => flipkart::sign(request),
            Kind::Sellercenter => sellercenter::sign(request),
            Kind::Shopify => shopify::sign(request),
            Kind::Standard => standard::sign(request),
        }
    }

    /// This marketplace's orders API, for reconciliation (`None` for `standard`, which has none).
    pub fn orders(self) -> Option<&'static dyn orders::OrdersApi> {
        match self {
            Kind::AmazonSns => Some(&amazon_sns::orders::Api),
            Kind::Ebay => Some(&ebay::orders::Api),
            Kind::Etsy => Some(&etsy::orders::Api),
            Kind::Tiktok => Some(&tiktok::orders::Api),
            Kind::Walmart => Some(&walmart::orders::Api),
            Kind::Flipkart => Some(&flipkart::orders::Api),
            Kind::Sellercenter => Some(&sellercenter::orders::Api),
            Kind::Shopify => Some(&shopify::orders::Api),
            Kind::Standard => None,
        }
    }

    /// Maps a verified native event onto a topic, applying a source's inventory-low threshold:
    /// a stock-level event whose quantity is at or below it is `inventory.low` (the modules alone
    /// only call a quantity of zero low).
    pub fn normalize_with_threshold(
        self,
        event: &NativeEvent,
        threshold: Option<i64>,
    ) -> Normalized {
        let mut normalized = self.normalize(event);
        if normalized.topic.is_none()
            && let Some(threshold) = threshold
            && self
                .stock_level_events()
                .contains(&event.event_type.as_str())
            && util::lowest_quantity(&event.payload).is_some_and(|q| q <= threshold)
        {
            normalized.topic = Some("inventory.low");
        }
        normalized
    }

    /// The native event types that report a stock level.
    fn stock_level_events(self) -> &'static [&'static str] {
        match self {
            Kind::AmazonSns => &[
                "LISTINGS_ITEM_MFN_QUANTITY_CHANGE",
                "FBA_INVENTORY_AVAILABILITY_CHANGES",
            ],
            Kind::Ebay => &["ITEM_AVAILABILITY"],
            Kind::Shopify => &["inventory_levels/update"],
            _ => &[],
        }
    }

    /// Maps a verified native event onto a topic.
    pub fn normalize(self, event: &NativeEvent) -> Normalized {
        match self {
            Kind::AmazonSns => amazon_sns::normalize(event),
            Kind::Ebay => ebay::normalize(event),
            Kind::Etsy => etsy::normalize(event),
            Kind::Tiktok => tiktok::normalize(event),
            Kind::Walmart => walmart::normalize(event),
            Kind::Flipkart => flipkart::normalize(event),
            Kind::Sellercenter => sellercenter::normalize(event),
            Kind::Shopify => shopify::normalize(event),
            Kind::Standard => standard::normalize(event),
        }
    }
}

/// A received HTTP request, as it arrived.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// `POST` for events; `GET` for eBay's challenge.
    pub method: &'a str,
    /// The URL the marketplace was given to call, exactly as registered (scheme, host, path;
    /// no query). eBay's challenge hashes it.
    pub endpoint_url: &'a str,
    /// The raw query string, without `?` (may be empty).
    pub query: &'a str,
    /// Header names in lowercase; a name may repeat.
    pub headers: &'a [(String, String)],
    /// The body, byte for byte.
    pub body: &'a [u8],
    /// The current time (injected), for replay windows.
    pub now: Timestamp,
}

impl Inbound<'_> {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        util::query_pairs(self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A secret of a source. Several at once allow rotation without downtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSecret {
    /// Which secret this is: Walmart's `WM_SEC.KEY_VERSION`, or any label.
    pub id: String,
    pub value: String,
}

/// What a verifier knows of the source a request arrived at, secrets opened.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub kind: Kind,
    /// The source's secrets (newest first): HMAC keys, tokens, app secrets.
    pub secrets: Vec<SourceSecret>,
    /// Largest accepted distance between a signed timestamp and `now` (default 5 minutes).
    pub replay_window: SignedDuration,
    /// The kind's options (see each module's docs), e.g. `{"form": "seed"}`.
    pub options: Value,
}

impl SourceSettings {
    /// A string option, if set.
    pub fn option_str(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(Value::as_str)
    }
}

/// Something a verifier needs that is not in the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// A PEM certificate at a URL (Amazon SNS `SigningCertURL`, already checked to be an SNS
    /// host).
    CertificateUrl(String),
    /// eBay's public key for a key id, as the PEM (or base64 DER) eBay's API returns.
    EbayPublicKey(String),
}

/// Keys fetched and cached by the caller.
pub trait KeyStore {
    fn get(&self, key: &KeyRef) -> Option<Vec<u8>>;
}

/// A key store with nothing in it.
pub struct NoKeys;

impl KeyStore for NoKeys {
    fn get(&self, _: &KeyRef) -> Option<Vec<u8>> {
        None
    }
}

impl KeyStore for std::collections::HashMap<KeyRef, Vec<u8>> {
    fn get(&self, key: &KeyRef) -> Option<Vec<u8>> {
        std::collections::HashMap::get(self, key).cloned()
    }
}

/// What a verified request is.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An event to store and deliver.
    Event(NativeEvent),
    /// A handshake, answered as given; nothing is stored.
    Handshake(Handshake),
}

/// The answer to a handshake, and what the caller must do after answering.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Amazon: GET this URL (already checked to be an SNS host) to confirm the subscription.
    pub confirm_url: Option<String>,
}

/// A verified event in its marketplace's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeEvent {
    pub kind: Kind,
    /// The native event type (`ORDER_CHANGE`, `orders/create`, `1` for TikTok's order status).
    pub event_type: String,
    /// What the marketplace's retries share: its notification id, or a hash where it has none.
    pub dedup_key: String,
    /// The marketplace's own id of this event, where it has one.
    pub native_event_id: Option<String>,
    /// The seller the payload says it is for (checked against the source's partners).
    pub partner_id: Option<String>,
    /// When it happened, as the payload says.
    pub occurred_at: Option<Timestamp>,
    /// The parsed body (for Amazon, the SNS envelope with `Message` parsed when it is JSON).
    pub payload: Value,
}

/// A resource an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// `order`, `item`, `return`, `feed`, `shipment`, `product`, `account`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Resource {
    /// A resource of `kind` when the payload named an id.
    pub fn of(kind: &str, id: Option<String>) -> Option<Resource> {
        id.map(|id| Resource {
            kind: kind.into(),
            id,
        })
    }
}

/// A native event mapped onto the topic catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Normalized {
    /// The topic (`order.created`, ...), or `None` for types with no mapping.
    pub topic: Option<&'static str>,
    pub resource: Option<Resource>,
    pub status: Option<String>,
    /// Used instead of `topic` when this resource was never seen before: TikTok and Amazon only
    /// send status changes, so the first sighting of an order is `order.created`.
    pub first_sighting_topic: Option<&'static str>,
}

/// Why a request was refused: the failures dashboard's reason codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request carries no signature or token")]
    MissingSignature,
    #[error("the signature does not match")]
    SignatureMismatch,
    #[error("the timestamp is outside the replay window")]
    StaleTimestamp,
    #[error("malformed request: {0}")]
    MalformedBody(String),
    /// A message type or form the source does not accept (e.g. SNS raw delivery).
    #[error("not accepted: {0}")]
    Unsupported(String),
    /// The source's settings cannot verify this (no secret configured, bad option).
    #[error("source misconfigured: {0}")]
    Misconfigured(String),
    /// A key must be fetched first; the caller fetches it and verifies again.
    #[error("a key is needed: {0:?}")]
    KeyNeeded(KeyRef),
    /// The key could not be had or is not usable (bad certificate host, unparsable key).
    #[error("key unavailable: {0}")]
    KeyUnavailable(String),
}

impl Refusal {
    /// The reason code recorded with the rejection.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MissingSignature => "missing_signature",
            Refusal::SignatureMismatch => "signature_mismatch",
            Refusal::StaleTimestamp => "stale_timestamp",
            Refusal::MalformedBody(_) => "malformed_body",
            Refusal::Unsupported(_) => "unsupported_message",
            Refusal::Misconfigured(_) => "source_misconfigured",
            Refusal::KeyNeeded(_) | Refusal::KeyUnavailable(_) => "key_unavailable",
        }
    }

    /// The HTTP status the sender gets.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingSignature
            | Refusal::SignatureMismatch
            | Refusal::StaleTimestamp
            | Refusal::KeyUnavailable(_)
            | Refusal::KeyNeeded(_) => 401,
            Refusal::MalformedBody(_) | Refusal::Unsupported(_) => 400,
            Refusal::Misconfigured(_) => 500,
        }
    }
}

/// What to simulate: one event of a marketplace, signed with a secret.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The native event type to send (module-specific; each module documents its defaults).
    pub event_type: String,
    /// The secret to sign with (HMAC key, token, app secret; for Amazon and eBay a PKCS#8 PEM
    /// private key, which `sign` generates when empty and returns in `SignedRequest::key_pem`).
    pub secret: String,
    /// Extra signing parameters: app key (TikTok), key version (Walmart), cert URL (Amazon), ...
    pub options: Value,
    /// The endpoint URL the request goes to (eBay's and Flipkart's schemes sign it).
    pub endpoint_url: String,
    /// The partner (seller) the payload names.
    pub partner_id: String,
    /// A resource id for the payload (an order id), so tests can send the same order twice.
    pub resource_id: String,
    /// The marketplace's event id (dedup key), so tests can send a retry.
    pub event_id: String,
    /// The time to sign with (a stale one makes a replay test).
    pub now: Timestamp,
}

impl SignedRequest {
    /// A plain POST with no generated keys: what most marketplaces send.
    pub fn post(headers: Vec<(String, String)>, body: Vec<u8>) -> SignedRequest {
        SignedRequest {
            method: "POST",
            url_suffix: String::new(),
            headers,
            body,
            key_pem: None,
            certificate_pem: None,
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRequest {
    pub method: &'static str,
    /// Appended to the endpoint URL (a query string for GET handshakes, or empty).
    pub url_suffix: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Amazon and eBay: the key the simulator generated, PEM, with its certificate (Amazon),
    /// which the simulator must serve at the signed `SigningCertURL`.
    pub key_pem: Option<String>,
    pub certificate_pem: Option<String>,
}
