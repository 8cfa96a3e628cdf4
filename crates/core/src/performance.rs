//! Seller performance notifications computed from the order facts Switchyard holds: the daily
//! `ALARMS` and the weekly `REPORT` of `SELLER_PERFORMANCE_NOTIFICATIONS`, in exactly the payload
//! shapes of `seeds/000_*` (field names, alarm and KPI names, descriptions, actions, standards),
//! for Walmart orders and equally for Amazon, eBay, TikTok or any other marketplace's orders.
//!
//! The input is one [`OrderFacts`] record per order, fed from two sources:
//! - the normalized order events of every marketplace ([`OrderFacts::apply_normalized`]): order
//!   date, expected ship date, estimated delivery date, status and cancellations;
//! - the facts a seller posts to `POST /api/v1/orders/facts` ([`OrderFact`],
//!   [`OrderFacts::apply`]): shipment with carrier and tracking number, carrier origin scan,
//!   delivery, refund, customer contact and seller response.
//!
//! Everything here is a pure function of the records and an `as_of` instant (the run's
//! scheduled time, see [`crate::schedule`]). A fact whose time is after `as_of` is not yet known,
//! so a run computed again later gives the same payload. Calendar days are days in
//! America/Los_Angeles ("PT"), the seed's time zone.
//!
//! # Alarms (`ALARMS`)
//!
//! `D` is the PT date of `as_of`. An order is *open* when, as of `as_of`, it has neither a
//! shipment nor a cancellation. Its *auto-cancel date* is the marketplace's own last day when the
//! marketplace gives one, else the seed's rule: the Expected Ship Date (ESD, "ship-by") plus
//! [`AUTO_CANCEL_DAYS_AFTER_ESD`] (4) calendar days. Each order lands in at most one alarm:
//!
//! | alarm | orders |
//! |---|---|
//! | `LateOriginScan` | shipped, not cancelled, shipped at least [`LATE_ORIGIN_SCAN_HOURS`] (48) hours and less than [`WINDOW_DAYS`] (30) days before `as_of`, with neither an origin scan nor a delivery at or before `as_of` |
//! | `AutoCancelledYday` | cancelled automatically by the marketplace (`cancelledBy: auto`, e.g. Walmart's `PO_LINE_AUTOCANCELLED`) on PT date `D - 1` |
//! | `AutoCancelledWarning` | open, auto-cancel date is `D` (today is the last day to upload tracking) |
//! | `ShippingDueToday` | open, ESD is `D`, and not in `AutoCancelledWarning` |
//! | `UnshippedOrders` | open, ESD before `D`, and not in `AutoCancelledWarning` (past-due orders a marketplace did not cancel stay here) |
//!
//! Open orders without a known ESD are in no alarm. `orderCount` is the full count;
//! `poNumbers` lists at most [`PO_NUMBER_MAX_COUNT`] (1000) of them, most urgent first (oldest
//! shipment, cancellation or ESD, then PO number). An alarm with no order is left out, and when
//! every alarm is empty [`alarms`] returns `None`: the seed sends alarms "when a seller needs
//! attention", its schema requires `orderCount >= 1`, and an email saying nothing is wrong is
//! not an alarm. The summary counts the distinct orders of all alarms (they are disjoint).
//!
//! # Report (`REPORT`)
//!
//! The window is the 30 PT calendar days before `D` (`[D-30 00:00, D 00:00)` PT; the summary
//! says the scores are "current as of" `D - 1`). Each KPI's score is a percentage rounded half up
//! to one decimal; the risk level and the trend are decided on that rounded score, so what a
//! seller reads is what was judged.
//!
//! | KPI | orders counted (denominator) | numerator | standard |
//! |---|---|---|---|
//! | On-time delivery | delivered in the window, with an estimated delivery date | delivered on or before the estimated delivery date (PT date) | 90% or above |
//! | Valid tracking | shipped in the window, not cancelled, and decided: with a scan, without a tracking number, or shipped at least 48 h before `as_of` | with a tracking number and an origin scan (or a delivery) at or before `as_of` | 99% or above |
//! | Seller response | customer contacts in the window, decided: answered, or contacted at least 48 h before `as_of` | answered within [`SELLER_RESPONSE_HOURS`] (48) hours | 95% or above |
//! | Refunds | orders placed in the window | not cancelled, refunded at or before `as_of` | 6% or below |
//! | Cancellations | orders placed in the window | cancelled at or before `as_of` by the seller, automatically, or by a source that does not say who (not customer or marketplace/fraud cancellations) | 2% or below |
//!
//! A KPI whose denominator is zero has no data and is left out of `metrics`, never reported as 0.
//!
//! Risk levels (the seed only names them; its sample values are placeholders, e.g. Refunds 2.8
//! under "6% or below" is shown as Monitor):
//!
//! | KPI | Good | Monitor | Urgent |
//! |---|---|---|---|
//! | On-time delivery | >= 90.0 | 85.0 - 89.9 | < 85.0 |
//! | Valid tracking | >= 99.0 | 95.0 - 98.9 | < 95.0 |
//! | Seller response | >= 95.0 | 90.0 - 94.9 | < 90.0 |
//! | Refunds | <= 6.0 | 6.1 - 9.0 | > 9.0 |
//! | Cancellations | <= 2.0 | 2.1 - 3.0 | > 3.0 |
//!
//! Trend (`overallTrend`) compares the score with the score the same report would have shown
//! 30 days earlier (`as_of` minus 30 days, PT): `UP`/`DOWN` is the direction of the score,
//! `GREEN`/`RED` whether that direction is an improvement (up for the first three KPIs, down for
//! Refunds and Cancellations; this matches the seed's sample, where Refunds and Cancellations
//! going down are `GREEN_DOWN`). A change smaller than [`TREND_NEUTRAL_POINTS`] (0.5 percentage
//! points), or no data in the previous period, is `NEUTRAL`.
//!
//! # Marketplaces
//!
//! `marketplace: Some(m)` restricts a notification to the partner's orders on `m` and adds
//! `"marketplace": m` to the payload (the one field the seed does not have); `None` covers all of
//! the partner's orders. Walmart's API links (`ordersApiUrl`, `developerPortalApiLink`) are only
//! included for Walmart or all marketplaces, since Walmart's order reports do not hold other
//! marketplaces' orders.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::CoreError;
use crate::schedule::pacific;

/// The most PO numbers one alarm lists (`poNumberMaxCount`).
pub const PO_NUMBER_MAX_COUNT: usize = 1000;
/// Hours after the shipping confirmation within which the carrier must scan the package.
pub const LATE_ORIGIN_SCAN_HOURS: i64 = 48;
/// Calendar days after the Expected Ship Date at which an unshipped order is auto-cancelled.
pub const AUTO_CANCEL_DAYS_AFTER_ESD: i64 = 4;
/// Hours within which a seller must answer a customer contact.
pub const SELLER_RESPONSE_HOURS: i64 = 48;
/// Length of the report window (and of the lookback of `LateOriginScan`), in days.
pub const WINDOW_DAYS: i64 = 30;
/// The smallest change of a score, in percentage points, that is a trend.
pub const TREND_NEUTRAL_POINTS: f64 = 0.5;
const TREND_NEUTRAL_TENTHS: i64 = 5;

const ORDERS_API_URL: &str = "https://developer.walmart.com/";
const ALARMS_MORE_INFO: &str = "https://marketplacelearn.walmart.com/guides/Policies%20&%20standards/Performance/Performance-alarms";
const REPORT_MORE_INFO: &str = "https://marketplacelearn.walmart.com/guides/Policies%20&%20standards/Performance/Seller-performance-standards?locale=en-US";
const API_REFERENCE: &str = "https://developer.walmart.com/us-marketplace/reference/";
const NO_TRACKING: &str = "We have not yet received tracking information for the above orders.";
const UPLOAD_TRACKING: &str =
    "Please upload valid tracking information today or proactively cancel the orders.";

// ---------------------------------------------------------------------------------------------
// The record
// ---------------------------------------------------------------------------------------------

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CancelledBy {
    /// The seller cancelled it.
    Seller,
    /// The marketplace cancelled it automatically for lack of tracking (`PO_LINE_AUTOCANCELLED`).
    Auto,
    /// The customer asked for it (e.g. TikTok's completed cancellation request).
    Customer,
    /// The marketplace cancelled it for its own reasons (`FRAUD_CANCEL`).
    Marketplace,
    /// The source did not say (a bare `CANCELLED` status).
    Unknown,
}

impl CancelledBy {
    /// Whether the cancellation counts against the seller's cancellation rate.
    pub fn is_seller_fault(self) -> bool {
        matches!(
            self,
            CancelledBy::Seller | CancelledBy::Auto | CancelledBy::Unknown
        )
    }

    fn parse(s: &str) -> Option<CancelledBy> {
        match squash(s).as_str() {
            "SELLER" => Some(CancelledBy::Seller),
            "AUTO" | "AUTOMATIC" => Some(CancelledBy::Auto),
            "CUSTOMER" | "BUYER" => Some(CancelledBy::Customer),
            "MARKETPLACE" | "FRAUD" => Some(CancelledBy::Marketplace),
            "UNKNOWN" => Some(CancelledBy::Unknown),
            _ => None,
        }
    }
}

/// A shipment confirmation. From a seller's fact it always has a carrier and a tracking number;
/// from a marketplace's "shipped" status it may have neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    pub shipped_at: Timestamp,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

/// One refund of (part of) an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub refunded_at: Timestamp,
    pub amount: Option<f64>,
}

/// A customer contact and, when there was one, the first seller response at or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerContact {
    pub contacted_at: Timestamp,
    pub responded_at: Option<Timestamp>,
}

/// Everything known about one order of one partner on one marketplace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderFacts {
    pub partner_id: String,
    /// Lowercase marketplace name (`walmart`, `amazon`, `ebay`, `tiktok`, ...).
    pub marketplace: String,
    /// The purchase order number (Walmart) or order id (other marketplaces).
    pub po_number: String,
    pub ordered_at: Option<Timestamp>,
    /// True while `ordered_at` is only the earliest event time seen, not an order date a source
    /// stated; a stated one replaces it.
    pub ordered_at_is_estimate: bool,
    /// Expected Ship Date (ship-by), a PT calendar date.
    pub ship_by: Option<Date>,
    /// The marketplace's own last day before auto-cancellation, when it gives one.
    pub auto_cancel_on: Option<Date>,
    /// Estimated delivery date, a PT calendar date.
    pub estimated_delivery: Option<Date>,
    /// The latest marketplace status seen, and when.
    pub status: Option<String>,
    pub status_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub cancelled_by: Option<CancelledBy>,
    pub shipment: Option<Shipment>,
    /// The carrier's first (origin) scan.
    pub origin_scan_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub refunds: Vec<Refund>,
    /// Times customers contacted the seller about this order, ascending.
    pub contacts: Vec<Timestamp>,
    /// Times the seller answered, ascending.
    pub responses: Vec<Timestamp>,
}

impl OrderFacts {
    pub fn new(
        partner_id: impl Into<String>,
        marketplace: impl Into<String>,
        po_number: impl Into<String>,
    ) -> Self {
        OrderFacts {
            partner_id: partner_id.into(),
            marketplace: marketplace.into().to_ascii_lowercase(),
            po_number: po_number.into(),
            ..OrderFacts::default()
        }
    }

    /// The last PT day on which tracking may be uploaded before the order is auto-cancelled:
    /// the marketplace's own date, else ESD + 4 calendar days (the seed's rule).
    pub fn auto_cancel_date(&self) -> Option<Date> {
        self.auto_cancel_on.or_else(|| {
            self.ship_by.and_then(|d| {
                d.checked_add(Span::new().days(AUTO_CANCEL_DAYS_AFTER_ESD))
                    .ok()
            })
        })
    }

    /// The first refund's time.
    pub fn refunded_at(&self) -> Option<Timestamp> {
        self.refunds.iter().map(|r| r.refunded_at).min()
    }

    /// Each contact with the first response at or after it (one response answers every contact
    /// before it: a reply addresses the conversation).
    pub fn customer_contacts(&self) -> Vec<CustomerContact> {
        self.contacts
            .iter()
            .map(|&c| CustomerContact {
                contacted_at: c,
                responded_at: self.responses.iter().copied().filter(|&r| r >= c).min(),
            })
            .collect()
    }

    fn cancelled_as_of(&self, as_of: Timestamp) -> bool {
        self.cancelled_at.is_some_and(|c| c <= as_of)
    }

    fn shipped_as_of(&self, as_of: Timestamp) -> Option<&Shipment> {
        self.shipment.as_ref().filter(|s| s.shipped_at <= as_of)
    }

    fn open_as_of(&self, as_of: Timestamp) -> bool {
        !self.cancelled_as_of(as_of)
            && self.shipped_as_of(as_of).is_none()
            && self.ordered_at.is_none_or(|o| o <= as_of)
    }

    fn check_identity(&self, marketplace: &str, po_number: &str) -> Result<(), CoreError> {
        if !self.po_number.is_empty() && self.po_number != po_number {
            return Err(CoreError::invalid(
                "poNumber",
                format!(
                    "fact is for {po_number:?}, not for order {:?}",
                    self.po_number
                ),
            ));
        }
        if !self.marketplace.is_empty() && !self.marketplace.eq_ignore_ascii_case(marketplace) {
            return Err(CoreError::invalid(
                "marketplace",
                format!(
                    "fact is for {marketplace:?}, the order is on {:?}",
                    self.marketplace
                ),
            ));
        }
        Ok(())
    }

    /// Records a fact a seller posted. Facts are idempotent (posting one twice changes nothing)
    /// and may come in any order: the first origin scan, delivery, refund time win; a new
    /// shipment confirmation replaces the previous one (a corrected tracking number).
    pub fn apply(&mut self, fact: &OrderFact) -> Result<(), CoreError> {
        fact.validate()?;
        self.check_identity(fact.marketplace(), fact.po_number())?;
        if self.po_number.is_empty() {
            self.po_number = fact.po_number().to_string();
        }
        if self.marketplace.is_empty() {
            self.marketplace = fact.marketplace().to_string();
        }
        match fact {
            OrderFact::Ordered {
                ordered_at,
                ship_by,
                estimated_delivery,
                ..
            } => {
                self.ordered_at = Some(*ordered_at);
                self.ordered_at_is_estimate = false;
                if ship_by.is_some() {
                    self.ship_by = *ship_by;
                }
                if estimated_delivery.is_some() {
                    self.estimated_delivery = *estimated_delivery;
                }
            }
            OrderFact::Shipped {
                carrier,
                tracking_number,
                shipped_at,
                ..
            } => {
                if let Some(delivered) = self.delivered_at
                    && *shipped_at > delivered
                {
                    return Err(CoreError::invalid(
                        "shippedAt",
                        "is after the order's recorded delivery",
                    ));
                }
                self.shipment = Some(Shipment {
                    shipped_at: *shipped_at,
                    carrier: Some(carrier.trim().to_string()),
                    tracking_number: Some(tracking_number.trim().to_string()),
                });
            }
            OrderFact::OriginScan { scanned_at, .. } => {
                self.origin_scan_at = earliest(self.origin_scan_at, *scanned_at);
            }
            OrderFact::Delivered { delivered_at, .. } => {
                if let Some(s) = &self.shipment
                    && *delivered_at < s.shipped_at
                {
                    return Err(CoreError::invalid(
                        "deliveredAt",
                        "is before the order's recorded shipment",
                    ));
                }
                self.delivered_at = earliest(self.delivered_at, *delivered_at);
            }
            OrderFact::Refunded {
                refunded_at,
                amount,
                ..
            } => {
                let refund = Refund {
                    refunded_at: *refunded_at,
                    amount: *amount,
                };
                if !self.refunds.contains(&refund) {
                    self.refunds.push(refund);
                    self.refunds.sort_by_key(|r| r.refunded_at);
                }
            }
            OrderFact::CustomerContact { contacted_at, .. } => {
                insert_sorted(&mut self.contacts, *contacted_at);
            }
            OrderFact::SellerResponse { responded_at, .. } => {
                insert_sorted(&mut self.responses, *responded_at);
            }
        }
        Ok(())
    }

    /// Records a normalized order event (`docs/marketplaces.md`, Normalized topics):
    /// `marketplace`, `partnerId`, `resource {type: "order", id}`, `status`, `occurredAt`,
    /// `nativeEventType`, `native`.
    ///
    /// - Dates: the top-level fields `orderedAt`, `shipBy`, `estimatedDeliveryDate`,
    ///   `autoCancelDate` when a normalizer provides them, else the first of the native
    ///   payload's well-known fields (searched case- and underscore-insensitively, 6 levels
    ///   deep): order date `orderDate` / `PurchaseDate`; ship-by `estimatedShipDate` /
    ///   `shipByDate` / `LatestShipDate`; delivery `estimatedDeliveryDate` /
    ///   `LatestDeliveryDate`. Values may be RFC 3339, `YYYY-MM-DD`, or epoch seconds /
    ///   milliseconds (Walmart). Without an order date, the earliest `occurredAt` stands in.
    /// - Status: `PO_LINE_AUTOCANCELLED` is an automatic cancellation, `FRAUD_CANCEL` a
    ///   marketplace one; any other status containing "cancel" is a cancellation (by the customer
    ///   for a completed cancellation *request*, else by whoever a top-level `cancelledBy` names,
    ///   else unknown), except pending requests and Walmart's `INTENT_TO_CANCEL`, which cancel
    ///   nothing. "Shipped" / "in transit" statuses record a shipment without tracking at
    ///   `occurredAt` (unless one is known), "delivered" / "completed" a delivery.
    pub fn apply_normalized(&mut self, normalized: &Value) -> Result<(), CoreError> {
        let obj = normalized
            .as_object()
            .ok_or_else(|| CoreError::invalid("normalized", "must be a JSON object"))?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str);
        let marketplace = text("marketplace")
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| CoreError::invalid("marketplace", "missing"))?;
        let resource = obj
            .get("resource")
            .and_then(Value::as_object)
            .ok_or_else(|| CoreError::invalid("resource", "missing"))?;
        let kind = resource.get("type").and_then(Value::as_str).unwrap_or("");
        if !kind.eq_ignore_ascii_case("order") {
            return Err(CoreError::invalid(
                "resource.type",
                format!("{kind:?} is not an order"),
            ));
        }
        let id = match resource.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(CoreError::invalid("resource.id", "missing")),
        };
        let occurred = obj
            .get("occurredAt")
            .and_then(parse_instant)
            .ok_or_else(|| CoreError::invalid("occurredAt", "missing or not a time"))?;
        self.check_identity(marketplace, &id)?;
        if let Some(p) = text("partnerId")
            && !self.partner_id.is_empty()
            && self.partner_id != p
        {
            return Err(CoreError::invalid(
                "partnerId",
                format!("event is for {p:?}, the order is {:?}'s", self.partner_id),
            ));
        }
        if self.partner_id.is_empty()
            && let Some(p) = text("partnerId")
        {
            self.partner_id = p.to_string();
        }
        if self.po_number.is_empty() {
            self.po_number = id;
        }
        if self.marketplace.is_empty() {
            self.marketplace = marketplace.to_ascii_lowercase();
        }

        // Each date from its field of the normalized form, or else from the first key (breadth
        // first) in the native payload with one of the names the marketplaces give it; the
        // payload walked once for all the dates it has to give.
        let native = obj.get("native").unwrap_or(&Value::Null);
        let top = |key: &str| obj.get(key).filter(|v| !v.is_null());
        let tops = [
            top("orderedAt"),
            top("shipBy"),
            top("estimatedDeliveryDate"),
        ];
        let wanted = [0, 1, 2].map(|i| tops[i].is_none().then_some(NATIVE_DATE_KEYS[i]));
        let found = find_keys(native, wanted, 6);
        let [ordered_at, ship_by, deliver_by] = [0, 1, 2].map(|i| tops[i].or(found[i]));

        // Dates.
        match ordered_at.and_then(parse_instant) {
            Some(t) => {
                self.ordered_at = Some(t);
                self.ordered_at_is_estimate = false;
            }
            None if self.ordered_at.is_none() || self.ordered_at_is_estimate => {
                self.ordered_at = earliest(self.ordered_at, occurred);
                self.ordered_at_is_estimate = true;
            }
            None => {}
        }
        if let Some(d) = ship_by.and_then(parse_date) {
            self.ship_by = Some(d);
        }
        if let Some(d) = deliver_by.and_then(parse_date) {
            self.estimated_delivery = Some(d);
        }
        if let Some(d) = obj.get("autoCancelDate").and_then(parse_date) {
            self.auto_cancel_on = Some(d);
        }

        // Status.
        let status = text("status");
        if let Some(s) = status
            && self.status_at.is_none_or(|at| occurred >= at)
        {
            self.status = Some(s.to_string());
            self.status_at = Some(occurred);
        }
        let stated_by = text("cancelledBy").and_then(CancelledBy::parse);
        match classify(status, text("nativeEventType"), stated_by) {
            StatusMeaning::Cancelled(by) => {
                self.cancelled_at = earliest(self.cancelled_at, occurred);
                if self.cancelled_by.is_none_or(|b| b == CancelledBy::Unknown) {
                    self.cancelled_by = Some(by);
                }
            }
            StatusMeaning::Shipped => {
                if self.shipment.is_none() {
                    self.shipment = Some(Shipment {
                        shipped_at: occurred,
                        carrier: None,
                        tracking_number: None,
                    });
                }
            }
            StatusMeaning::Delivered => {
                self.delivered_at = earliest(self.delivered_at, occurred);
            }
            StatusMeaning::Other => {}
        }
        Ok(())
    }
}

fn earliest(current: Option<Timestamp>, new: Timestamp) -> Option<Timestamp> {
    Some(current.map_or(new, |c| c.min(new)))
}

fn insert_sorted(list: &mut Vec<Timestamp>, t: Timestamp) {
    if let Err(at) = list.binary_search(&t) {
        list.insert(at, t);
    }
}

/// Upper-case ASCII letters and digits only: `Canceled`, `CANCELLED`, `po-line autocancelled`
/// compare on their letters.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `squash(key)` written into `buf`, without allocating: `find_keys` asks it of every key of a
/// payload, and a `String` each was a third of deriving an order's facts. `None` when it does
/// not fit, longer than any name looked for.
fn squash_into<'b>(key: &str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let mut n = 0;
    for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
        *buf.get_mut(n)? = b.to_ascii_uppercase();
        n += 1;
    }
    Some(&buf[..n])
}

enum StatusMeaning {
    Cancelled(CancelledBy),
    Shipped,
    Delivered,
    Other,
}

fn classify(
    status: Option<&str>,
    native_type: Option<&str>,
    stated_by: Option<CancelledBy>,
) -> StatusMeaning {
    let s = status.map(squash).unwrap_or_default();
    let t = native_type.map(squash).unwrap_or_default();
    if s == "POLINEAUTOCANCELLED" || t == "POLINEAUTOCANCELLED" {
        return StatusMeaning::Cancelled(CancelledBy::Auto);
    }
    if s == "FRAUDCANCEL" {
        return StatusMeaning::Cancelled(CancelledBy::Marketplace);
    }
    if s.contains("CANCEL") {
        if s.contains("INTENT") || (s.contains("REQUEST") && !s.contains("COMPLETE")) {
            return StatusMeaning::Other;
        }
        let by = if s.contains("REQUEST") {
            CancelledBy::Customer
        } else {
            stated_by.unwrap_or(CancelledBy::Unknown)
        };
        return StatusMeaning::Cancelled(by);
    }
    if s.contains("UNDELIVERED") || s.contains("NOTDELIVERED") {
        return StatusMeaning::Other;
    }
    if s.contains("DELIVERED") || s == "COMPLETED" || s == "COMPLETE" {
        return StatusMeaning::Delivered;
    }
    if s.contains("UNSHIPPED") || s.contains("PARTIALLY") || s.contains("NOTSHIPPED") {
        return StatusMeaning::Other;
    }
    if s.contains("SHIPPED") || s == "INTRANSIT" {
        return StatusMeaning::Shipped;
    }
    StatusMeaning::Other
}

/// The names the marketplaces give an order's dates in their payloads, squashed (`squash`):
/// when it was ordered, when it is to ship by, when it is to be delivered by.
const NATIVE_DATE_KEYS: [&[&str]; 3] = [
    &["ORDERDATE", "PURCHASEDATE", "ORDEREDAT"],
    &[
        "ESTIMATEDSHIPDATE",
        "SHIPBYDATE",
        "LATESTSHIPDATE",
        "SHIPBY",
    ],
    &[
        "ESTIMATEDDELIVERYDATE",
        "LATESTDELIVERYDATE",
        "DELIVERBYDATE",
    ],
];

/// For each set of squashed `names` (`None`: not wanted), the first value under a key that
/// squashes to one of them, breadth first, `depth` levels deep: what a walk per set would find,
/// in one walk.
fn find_keys<'a, const N: usize>(
    v: &'a Value,
    names: [Option<&[&str]>; N],
    depth: usize,
) -> [Option<&'a Value>; N] {
    let wanted = names.map(Option::unwrap_or_default);
    let mut open = names.map(|set| set.is_some());
    let mut found = [None; N];
    let mut level: Vec<&Value> = vec![v];
    for _ in 0..depth {
        if !open.contains(&true) {
            break;
        }
        let mut next = Vec::new();
        let mut buf = [0u8; 64];
        for v in level {
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        if !child.is_null()
                            && let Some(key) = squash_into(k, &mut buf)
                        {
                            for i in 0..N {
                                if open[i] && wanted[i].iter().any(|w| w.as_bytes() == key) {
                                    found[i] = Some(child);
                                    open[i] = false;
                                }
                            }
                        }
                        next.push(child);
                    }
                }
                Value::Array(items) => next.extend(items.iter()),
                _ => {}
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    found
}

/// RFC 3339 text, `YYYY-MM-DD` (PT midnight), or epoch seconds / milliseconds (above 10^11).
fn parse_instant(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            s.parse::<Timestamp>().ok().or_else(|| {
                s.parse::<Date>()
                    .ok()
                    .and_then(|d| d.to_zoned(pacific().clone()).ok())
                    .map(|z| z.timestamp())
            })
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            if n.abs() > 100_000_000_000 {
                Timestamp::from_millisecond(n).ok()
            } else {
                Timestamp::from_second(n).ok()
            }
        }
        _ => None,
    }
}

/// `YYYY-MM-DD`, or any instant `parse_instant` reads, as a PT date.
fn parse_date(v: &Value) -> Option<Date> {
    if let Value::String(s) = v
        && let Ok(d) = s.trim().parse::<Date>()
        && s.trim().len() == 10
    {
        return Some(d);
    }
    parse_instant(v).map(|t| pacific().to_datetime(t).date())
}

// ---------------------------------------------------------------------------------------------
// Facts a seller posts
// ---------------------------------------------------------------------------------------------

/// A fact a seller posts to `POST /api/v1/orders/facts`: camelCase JSON tagged by `"fact"`,
/// e.g. `{"fact": "shipped", "poNumber": "PO1", "marketplace": "walmart", "carrier": "UPS",
/// "trackingNumber": "1Z999", "shippedAt": "2026-03-09T17:00:00Z"}`. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "fact",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum OrderFact {
    /// An order was placed: for orders from channels the hub does not receive webhooks from, or
    /// to state dates a marketplace's event lacks. Dates given replace what was known.
    Ordered {
        po_number: String,
        marketplace: String,
        ordered_at: Timestamp,
        /// Expected ship date (ship-by), a Pacific date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ship_by: Option<jiff::civil::Date>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_delivery: Option<jiff::civil::Date>,
    },
    /// The seller confirmed the shipment.
    Shipped {
        po_number: String,
        marketplace: String,
        carrier: String,
        tracking_number: String,
        shipped_at: Timestamp,
    },
    /// The carrier's first scan of the package.
    OriginScan {
        po_number: String,
        marketplace: String,
        scanned_at: Timestamp,
    },
    Delivered {
        po_number: String,
        marketplace: String,
        delivered_at: Timestamp,
    },
    Refunded {
        po_number: String,
        marketplace: String,
        refunded_at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<f64>,
    },
    /// A customer contacted the seller about the order.
    CustomerContact {
        po_number: String,
        marketplace: String,
        contacted_at: Timestamp,
    },
    /// The seller answered the customer.
    SellerResponse {
        po_number: String,
        marketplace: String,
        responded_at: Timestamp,
    },
}

impl OrderFact {
    pub fn po_number(&self) -> &str {
        match self {
            OrderFact::Ordered { po_number, .. }
            | OrderFact::Shipped { po_number, .. }
            | OrderFact::OriginScan { po_number, .. }
            | OrderFact::Delivered { po_number, .. }
            | OrderFact::Refunded { po_number, .. }
            | OrderFact::CustomerContact { po_number, .. }
            | OrderFact::SellerResponse { po_number, .. } => po_number,
        }
    }

    pub fn marketplace(&self) -> &str {
        match self {
            OrderFact::Ordered { marketplace, .. }
            | OrderFact::Shipped { marketplace, .. }
            | OrderFact::OriginScan { marketplace, .. }
            | OrderFact::Delivered { marketplace, .. }
            | OrderFact::Refunded { marketplace, .. }
            | OrderFact::CustomerContact { marketplace, .. }
            | OrderFact::SellerResponse { marketplace, .. } => marketplace,
        }
    }

    /// The `fact` tag.
    pub fn name(&self) -> &'static str {
        match self {
            OrderFact::Ordered { .. } => "ordered",
            OrderFact::Shipped { .. } => "shipped",
            OrderFact::OriginScan { .. } => "originScan",
            OrderFact::Delivered { .. } => "delivered",
            OrderFact::Refunded { .. } => "refunded",
            OrderFact::CustomerContact { .. } => "customerContact",
            OrderFact::SellerResponse { .. } => "sellerResponse",
        }
    }

    /// Parses and validates a posted body.
    pub fn from_json(body: &Value) -> Result<OrderFact, CoreError> {
        let fact: OrderFact = serde_json::from_value(body.clone())
            .map_err(|e| CoreError::invalid("fact", e.to_string()))?;
        fact.validate()?;
        Ok(fact)
    }

    /// Checks the values: `poNumber` 1-128 printable characters; `marketplace` a lowercase name
    /// (`a-z`, `0-9`, `_`, `-`, at most 32); `carrier` 1-64 characters; `trackingNumber` 4-64
    /// ASCII letters, digits or `-` (surrounding blanks ignored); `amount` finite and not
    /// negative.
    pub fn validate(&self) -> Result<(), CoreError> {
        let po = self.po_number().trim();
        if po.is_empty() {
            return Err(CoreError::invalid("poNumber", "must not be empty"));
        }
        if po.chars().count() > 128 || po.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "poNumber",
                "must be at most 128 printable characters",
            ));
        }
        if po != self.po_number() {
            return Err(CoreError::invalid(
                "poNumber",
                "must not start or end with blanks",
            ));
        }
        let m = self.marketplace();
        if m.is_empty()
            || m.len() > 32
            || !m
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(CoreError::invalid(
                "marketplace",
                "must be a lowercase marketplace name such as walmart, amazon, ebay or tiktok",
            ));
        }
        match self {
            OrderFact::Shipped {
                carrier,
                tracking_number,
                ..
            } => {
                let carrier = carrier.trim();
                if carrier.is_empty() {
                    return Err(CoreError::invalid("carrier", "must not be empty"));
                }
                if carrier.chars().count() > 64 || carrier.chars().any(char::is_control) {
                    return Err(CoreError::invalid(
                        "carrier",
                        "must be at most 64 printable characters",
                    ));
                }
                let tracking = tracking_number.trim();
                if tracking.is_empty() {
                    return Err(CoreError::invalid("trackingNumber", "must not be empty"));
                }
                if !(4..=64).contains(&tracking.len())
                    || !tracking
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(CoreError::invalid(
                        "trackingNumber",
                        "must be 4 to 64 letters, digits or '-'",
                    ));
                }
            }
            OrderFact::Refunded {
                amount: Some(a), ..
            } if !a.is_finite() || *a < 0.0 => {
                return Err(CoreError::invalid(
                    "amount",
                    "must be a number that is not negative",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Alarms
// ---------------------------------------------------------------------------------------------

/// The five alarm types, in the seed's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmType {
    LateOriginScan,
    AutoCancelledYday,
    AutoCancelledWarning,
    ShippingDueToday,
    UnshippedOrders,
}

impl AlarmType {
    pub const ALL: [AlarmType; 5] = [
        AlarmType::LateOriginScan,
        AlarmType::AutoCancelledYday,
        AlarmType::AutoCancelledWarning,
        AlarmType::ShippingDueToday,
        AlarmType::UnshippedOrders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlarmType::LateOriginScan => "LateOriginScan",
            AlarmType::AutoCancelledYday => "AutoCancelledYday",
            AlarmType::AutoCancelledWarning => "AutoCancelledWarning",
            AlarmType::ShippingDueToday => "ShippingDueToday",
            AlarmType::UnshippedOrders => "UnshippedOrders",
        }
    }

    /// The seed's description, verbatim.
    pub fn description(self) -> &'static str {
        match self {
            AlarmType::LateOriginScan => {
                "We have noticed that the above shipped orders have not been scanned by the carrier within 48 hours of the shipping confirmation being sent."
            }
            AlarmType::AutoCancelledYday => {
                "We did not receive valid tracking information within 4 calendar days after the Expected Ship Date (ESD), resulting in the automatic cancellation of the above orders."
            }
            _ => NO_TRACKING,
        }
    }

    /// The seed's action, verbatim.
    pub fn action(self) -> &'static str {
        match self {
            AlarmType::LateOriginScan => {
                "We suggest you contact the carrier as needed to address the delays and verify your tracking information is valid for all your shipments."
            }
            AlarmType::AutoCancelledYday => {
                "Do not ship the above order, as the customer has already been refunded."
            }
            _ => UPLOAD_TRACKING,
        }
    }
}

fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(t).date()
}

fn days_before(d: Date, n: i64) -> Option<Date> {
    d.checked_sub(Span::new().days(n)).ok()
}

fn orders_of<'a>(
    partner_id: &'a str,
    marketplace: Option<&'a str>,
    orders: &'a [OrderFacts],
) -> impl Iterator<Item = &'a OrderFacts> + 'a {
    orders.iter().filter(move |o| {
        o.partner_id == partner_id
            && marketplace.is_none_or(|m| o.marketplace.eq_ignore_ascii_case(m))
    })
}

/// Which alarm, if any, an order is in as of `as_of`.
pub fn alarm_of(o: &OrderFacts, as_of: Timestamp) -> Option<AlarmType> {
    alarm_with_key(o, as_of, pacific()).map(|(a, _)| a)
}

fn alarm_with_key(o: &OrderFacts, as_of: Timestamp, tz: &TimeZone) -> Option<(AlarmType, i64)> {
    let today = local_date(as_of, tz);
    if let Some(ship) = o.shipped_as_of(as_of)
        && !o.cancelled_as_of(as_of)
    {
        let overdue = ship.shipped_at + SignedDuration::from_hours(LATE_ORIGIN_SCAN_HOURS) <= as_of;
        let recent = ship.shipped_at > as_of - SignedDuration::from_hours(24 * WINDOW_DAYS);
        let scanned = o.origin_scan_at.is_some_and(|s| s <= as_of)
            || o.delivered_at.is_some_and(|d| d <= as_of);
        if overdue && recent && !scanned {
            return Some((AlarmType::LateOriginScan, ship.shipped_at.as_second()));
        }
        return None;
    }
    if let (Some(at), Some(CancelledBy::Auto)) = (o.cancelled_at, o.cancelled_by)
        && at <= as_of
    {
        if days_before(today, 1) == Some(local_date(at, tz)) {
            return Some((AlarmType::AutoCancelledYday, at.as_second()));
        }
        return None;
    }
    if !o.open_as_of(as_of) {
        return None;
    }
    let ship_by = o.ship_by?;
    let key = ship_by
        .to_zoned(TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_second());
    if o.auto_cancel_date() == Some(today) {
        Some((AlarmType::AutoCancelledWarning, key))
    } else if ship_by == today {
        Some((AlarmType::ShippingDueToday, key))
    } else if ship_by < today {
        Some((AlarmType::UnshippedOrders, key))
    } else {
        None
    }
}

/// The `ALARMS` payload for a partner (all its marketplaces, or one) as of `as_of`, or `None`
/// when no order is in any alarm. See the module documentation for each alarm's definition.
pub fn alarms(
    partner_id: &str,
    marketplace: Option<&str>,
    orders: &[OrderFacts],
    as_of: Timestamp,
) -> Option<Value> {
    let tz = pacific();
    let mut found: Vec<Vec<(i64, &str)>> = vec![Vec::new(); AlarmType::ALL.len()];
    for o in orders_of(partner_id, marketplace, orders) {
        if let Some((alarm, key)) = alarm_with_key(o, as_of, tz) {
            let slot = AlarmType::ALL.iter().position(|a| *a == alarm).unwrap_or(0);
            found[slot].push((key, o.po_number.as_str()));
        }
    }
    let total: usize = found.iter().map(Vec::len).sum();
    if total == 0 {
        return None;
    }
    let entries: Vec<Value> = AlarmType::ALL
        .iter()
        .zip(found.iter_mut())
        .filter(|(_, list)| !list.is_empty())
        .map(|(alarm, list)| {
            list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            let po_numbers: Vec<&str> = list
                .iter()
                .take(PO_NUMBER_MAX_COUNT)
                .map(|(_, po)| *po)
                .collect();
            json!({
                "alarmType": alarm.name(),
                "orderCount": list.len(),
                "description": alarm.description(),
                "action": alarm.action(),
                "poNumbers": po_numbers,
            })
        })
        .collect();
    let summary = if total == 1 {
        "We have identified 1 order that needs your immediate attention.".to_string()
    } else {
        format!("We have identified {total} orders that need your immediate attention.")
    };
    let mut payload = Map::new();
    payload.insert("partnerId".into(), json!(partner_id));
    if let Some(m) = marketplace {
        payload.insert("marketplace".into(), json!(m));
    }
    payload.insert("lastRefreshTs".into(), json!(refresh_ts(as_of)));
    if walmart_links(marketplace) {
        payload.insert("ordersApiUrl".into(), json!(ORDERS_API_URL));
    }
    payload.insert("moreInfoLink".into(), json!(ALARMS_MORE_INFO));
    payload.insert("supportedLanguages".into(), json!(["en-US"]));
    payload.insert("notificationType".into(), json!("ALARMS"));
    payload.insert(
        "enNotification".into(),
        json!({
            "summary": summary,
            "message": "For information on all the orders, please use the following orders api",
            "poNumberMaxCount": PO_NUMBER_MAX_COUNT,
            "alarms": entries,
        }),
    );
    Some(Value::Object(payload))
}

fn walmart_links(marketplace: Option<&str>) -> bool {
    marketplace.is_none_or(|m| m.eq_ignore_ascii_case("walmart"))
}

/// `2025-09-10 12:52:36 UTC`, the seed's `lastRefreshTs` form.
fn refresh_ts(as_of: Timestamp) -> String {
    as_of.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// The five KPIs, in the seed's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kpi {
    OnTimeDelivery,
    ValidTracking,
    SellerResponse,
    Refunds,
    Cancellations,
}

/// Good / Monitor / Urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLevel {
    Good,
    Monitor,
    Urgent,
}

impl RiskLevel {
    pub fn name(self) -> &'static str {
        match self {
            RiskLevel::Good => "Good",
            RiskLevel::Monitor => "Monitor",
            RiskLevel::Urgent => "Urgent",
        }
    }
}

/// `overallTrend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    GreenUp,
    GreenDown,
    Neutral,
    RedUp,
    RedDown,
}

impl Trend {
    pub fn name(self) -> &'static str {
        match self {
            Trend::GreenUp => "GREEN_UP",
            Trend::GreenDown => "GREEN_DOWN",
            Trend::Neutral => "NEUTRAL",
            Trend::RedUp => "RED_UP",
            Trend::RedDown => "RED_DOWN",
        }
    }
}

impl Kpi {
    pub const ALL: [Kpi; 5] = [
        Kpi::OnTimeDelivery,
        Kpi::ValidTracking,
        Kpi::SellerResponse,
        Kpi::Refunds,
        Kpi::Cancellations,
    ];

    /// The seed's KPI name.
    pub fn name(self) -> &'static str {
        match self {
            Kpi::OnTimeDelivery => "On-time delivery",
            Kpi::ValidTracking => "Valid tracking",
            Kpi::SellerResponse => "Seller response",
            Kpi::Refunds => "Refunds",
            Kpi::Cancellations => "Cancellations",
        }
    }

    /// The seed's `performanceStandard`.
    pub fn standard(self) -> &'static str {
        match self {
            Kpi::OnTimeDelivery => "90% or above",
            Kpi::ValidTracking => "99% or above",
            Kpi::SellerResponse => "95% or above",
            Kpi::Refunds => "6% or below",
            Kpi::Cancellations => "2% or below",
        }
    }

    /// Whether a higher score is better.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Kpi::OnTimeDelivery | Kpi::ValidTracking | Kpi::SellerResponse
        )
    }

    /// (Good limit, Monitor limit) in tenths of a percent: for higher-is-better KPIs Good is
    /// `>= good`, Monitor `>= monitor`; for the others Good is `<= good`, Monitor `<= monitor`.
    fn limits_tenths(self) -> (u64, u64) {
        match self {
            Kpi::OnTimeDelivery => (900, 850),
            Kpi::ValidTracking => (990, 950),
            Kpi::SellerResponse => (950, 900),
            Kpi::Refunds => (60, 90),
            Kpi::Cancellations => (20, 30),
        }
    }

    /// Walmart's report API for the KPI. (The seed's sample pairs Refunds with
    /// `getcancellationsordersreport` and Cancellations with `getrefundsordersreport`; that looks
    /// like a swap in the sample, so each KPI here links the report of its own name.)
    pub fn api_link(self) -> String {
        let name = match self {
            Kpi::OnTimeDelivery => "getotdordersreport",
            Kpi::ValidTracking => "getvtrordersreport",
            Kpi::SellerResponse => "getsrrordersreport",
            Kpi::Refunds => "getrefundsordersreport",
            Kpi::Cancellations => "getcancellationsordersreport",
        };
        format!("{API_REFERENCE}{name}")
    }

    /// The risk level of a score (percent, one decimal).
    pub fn risk_level(self, score: f64) -> RiskLevel {
        self.risk_tenths(to_tenths(score))
    }

    fn risk_tenths(self, tenths: u64) -> RiskLevel {
        let (good, monitor) = self.limits_tenths();
        if self.higher_is_better() {
            if tenths >= good {
                RiskLevel::Good
            } else if tenths >= monitor {
                RiskLevel::Monitor
            } else {
                RiskLevel::Urgent
            }
        } else if tenths <= good {
            RiskLevel::Good
        } else if tenths <= monitor {
            RiskLevel::Monitor
        } else {
            RiskLevel::Urgent
        }
    }

    /// The trend from the previous period's score to this one (percent, one decimal).
    pub fn trend(self, current: f64, previous: Option<f64>) -> Trend {
        self.trend_tenths(to_tenths(current), previous.map(to_tenths))
    }

    fn trend_tenths(self, current: u64, previous: Option<u64>) -> Trend {
        let Some(previous) = previous else {
            return Trend::Neutral;
        };
        let delta = current as i64 - previous as i64;
        if delta.abs() < TREND_NEUTRAL_TENTHS {
            Trend::Neutral
        } else {
            match (delta > 0, self.higher_is_better()) {
                (true, true) => Trend::GreenUp,
                (true, false) => Trend::RedUp,
                (false, true) => Trend::RedDown,
                (false, false) => Trend::GreenDown,
            }
        }
    }
}

fn to_tenths(score: f64) -> u64 {
    if score.is_finite() && score > 0.0 {
        (score * 10.0).round() as u64
    } else {
        0
    }
}

/// A KPI's counts over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    fn count(&mut self, hit: bool) {
        self.denominator += 1;
        if hit {
            self.numerator += 1;
        }
    }

    /// The percentage in tenths, rounded half up; `None` without data.
    pub fn score_tenths(self) -> Option<u64> {
        (self.denominator > 0)
            .then(|| (self.numerator * 2000 + self.denominator) / (2 * self.denominator))
    }

    /// The percentage rounded half up to one decimal; `None` without data.
    pub fn score(self) -> Option<f64> {
        self.score_tenths().map(|t| t as f64 / 10.0)
    }
}

/// Each KPI's counts over the 30 PT days before `as_of`'s PT date, as of `as_of` (see the
/// module documentation for the definitions).
pub fn kpi_ratios(
    partner_id: &str,
    marketplace: Option<&str>,
    orders: &[OrderFacts],
    as_of: Timestamp,
) -> [Ratio; 5] {
    let tz = pacific();
    let mut ratios = [Ratio::default(); 5];
    let today = local_date(as_of, tz);
    let start_of = |d: Option<Date>| {
        d.and_then(|d| d.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp())
    };
    let (Some(from), Some(until)) = (
        start_of(days_before(today, WINDOW_DAYS)),
        start_of(Some(today)),
    ) else {
        return ratios;
    };
    let in_window = |t: Timestamp| from <= t && t < until && t <= as_of;
    let grace = |t: Timestamp, hours: i64| t + SignedDuration::from_hours(hours) <= as_of;
    for o in orders_of(partner_id, marketplace, orders) {
        // On-time delivery.
        if let (Some(delivered), Some(edd)) = (o.delivered_at, o.estimated_delivery)
            && in_window(delivered)
        {
            ratios[0].count(local_date(delivered, tz) <= edd);
        }
        // Valid tracking.
        if let Some(ship) = o.shipped_as_of(as_of)
            && in_window(ship.shipped_at)
            && !o.cancelled_as_of(as_of)
        {
            let has_tracking = ship
                .tracking_number
                .as_deref()
                .is_some_and(|t| !t.is_empty());
            let scanned = o.origin_scan_at.is_some_and(|s| s <= as_of)
                || o.delivered_at.is_some_and(|d| d <= as_of);
            if has_tracking && scanned {
                ratios[1].count(true);
            } else if !has_tracking || grace(ship.shipped_at, LATE_ORIGIN_SCAN_HOURS) {
                ratios[1].count(false);
            }
        }
        // Seller response.
        for c in o.customer_contacts() {
            if !in_window(c.contacted_at) {
                continue;
            }
            let deadline = c.contacted_at + SignedDuration::from_hours(SELLER_RESPONSE_HOURS);
            match c.responded_at.filter(|&r| r <= as_of) {
                Some(r) => ratios[2].count(r <= deadline),
                None if deadline <= as_of => ratios[2].count(false),
                None => {}
            }
        }
        // Refunds and cancellations: the orders placed in the window.
        if let Some(ordered) = o.ordered_at
            && in_window(ordered)
        {
            let cancelled = o.cancelled_as_of(as_of);
            let refunded = o.refunded_at().is_some_and(|r| r <= as_of);
            ratios[3].count(refunded && !cancelled);
            ratios[4].count(
                cancelled
                    && o.cancelled_by
                        .unwrap_or(CancelledBy::Unknown)
                        .is_seller_fault(),
            );
        }
    }
    ratios
}

/// One KPI as reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpiScore {
    pub kpi: Kpi,
    pub score: f64,
    pub risk: RiskLevel,
    pub trend: Trend,
    pub current: Ratio,
    pub previous: Ratio,
}

/// The KPIs with data, as of `as_of`, with their risk levels and trends.
pub fn kpi_scores(
    partner_id: &str,
    marketplace: Option<&str>,
    orders: &[OrderFacts],
    as_of: Timestamp,
) -> Vec<KpiScore> {
    let current = kpi_ratios(partner_id, marketplace, orders, as_of);
    let previous_as_of = as_of
        .to_zoned(pacific().clone())
        .checked_sub(Span::new().days(WINDOW_DAYS))
        .map(|z| z.timestamp());
    let previous = match previous_as_of {
        Ok(p) => kpi_ratios(partner_id, marketplace, orders, p),
        Err(_) => [Ratio::default(); 5],
    };
    Kpi::ALL
        .iter()
        .zip(current.iter().zip(previous.iter()))
        .filter_map(|(&kpi, (&cur, &prev))| {
            let tenths = cur.score_tenths()?;
            Some(KpiScore {
                kpi,
                score: tenths as f64 / 10.0,
                risk: kpi.risk_tenths(tenths),
                trend: kpi.trend_tenths(tenths, prev.score_tenths()),
                current: cur,
                previous: prev,
            })
        })
        .collect()
}

fn marketplace_display(m: &str) -> String {
    match m.to_ascii_lowercase().as_str() {
        "walmart" => "Walmart".into(),
        "amazon" => "Amazon".into(),
        "ebay" => "eBay".into(),
        "tiktok" => "TikTok Shop".into(),
        "etsy" => "Etsy".into(),
        "flipkart" => "Flipkart".into(),
        "sellercenter" => "SellerCenter".into(),
        "shopify" => "Shopify".into(),
        _ => m.to_string(),
    }
}

/// The `REPORT` payload for a partner (all its marketplaces, or one) as of `as_of` (the Monday
/// 5:00 AM PT run). KPIs without data are left out; with none, `metrics` is empty.
pub fn report(
    partner_id: &str,
    marketplace: Option<&str>,
    orders: &[OrderFacts],
    as_of: Timestamp,
) -> Value {
    let tz = pacific();
    let links = walmart_links(marketplace);
    let metrics: Vec<Value> = kpi_scores(partner_id, marketplace, orders, as_of)
        .into_iter()
        .map(|k| {
            let mut m = json!({
                "kpi": k.kpi.name(),
                "score": k.score,
                "overallTrend": k.trend.name(),
                "performanceStandard": k.kpi.standard(),
                "performanceRiskLevel": k.risk.name(),
                "duration": "30 days",
            });
            if links {
                m["developerPortalApiLink"] = json!(k.kpi.api_link());
            }
            m
        })
        .collect();
    let yesterday = days_before(local_date(as_of, tz), 1).unwrap_or(local_date(as_of, tz));
    let whose = match marketplace {
        Some(m) => format!("your {} performance", marketplace_display(m)),
        None => "your performance".to_string(),
    };
    let summary = format!(
        "Here is the summary of {whose}, the scores are current as of {}",
        yesterday.strftime("%a %b %-d")
    );
    let mut payload = Map::new();
    payload.insert("partnerId".into(), json!(partner_id));
    if let Some(m) = marketplace {
        payload.insert("marketplace".into(), json!(m));
    }
    payload.insert("lastRefreshTs".into(), json!(refresh_ts(as_of)));
    payload.insert("moreInfoLink".into(), json!(REPORT_MORE_INFO));
    payload.insert("supportedLanguages".into(), json!(["en-US"]));
    payload.insert("notificationType".into(), json!("REPORT"));
    payload.insert(
        "enNotification".into(),
        json!({
            "summary": summary,
            "message": "To download order details use the following api links:",
            "metrics": metrics,
        }),
    );
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{NATIVE_DATE_KEYS, find_keys, squash, squash_into};

    /// One set's walk, as `apply_normalized` made it before `find_keys` (the reference).
    fn find_key<'a>(v: &'a Value, names: &[&str], depth: usize) -> Option<&'a Value> {
        let wanted: Vec<String> = names.iter().map(|n| squash(n)).collect();
        let mut level: Vec<&Value> = vec![v];
        for _ in 0..depth {
            let mut next = Vec::new();
            for v in level {
                match v {
                    Value::Object(map) => {
                        for (k, child) in map {
                            if !child.is_null() && wanted.contains(&squash(k)) {
                                return Some(child);
                            }
                            next.push(child);
                        }
                    }
                    Value::Array(items) => next.extend(items.iter()),
                    _ => {}
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        None
    }

    #[test]
    fn one_walk_finds_what_a_walk_per_set_finds() {
        let payloads = [
            json!({"order": {"orderDate": 1, "lines": [{"shipByDate": "2026-01-02"}]},
                   "estimated_delivery_date": null, "x": {"y": {"latestDeliveryDate": 3}}}),
            json!({"purchaseDate": "a", "ORDER-DATE": "b", "deep": {"shipBy": null,
                   "a": {"b": {"c": {"d": {"e": {"shipBy": "too deep"}}}}}}}),
            json!([{"shipBy": 1}, {"orderedAt": 2, "deliverByDate": [3]}]),
            json!({"a": [[{"estimatedShipDate": 4}]], "shipBy": {"estimatedShipDate": 5}}),
            json!("not an object"),
            Value::Null,
        ];
        // The names as the marketplaces spell them, squashed by `squash` for the reference.
        let sets: [&[&str]; 3] = [
            &["orderDate", "purchaseDate", "orderedAt"],
            &[
                "estimatedShipDate",
                "shipByDate",
                "latestShipDate",
                "shipBy",
            ],
            &[
                "estimatedDeliveryDate",
                "latestDeliveryDate",
                "deliverByDate",
            ],
        ];
        for (set, squashed) in sets.iter().zip(NATIVE_DATE_KEYS) {
            let reference: Vec<String> = set.iter().map(|n| squash(n)).collect();
            assert_eq!(reference, squashed);
        }
        for payload in &payloads {
            for depth in [1, 2, 6] {
                let each = sets.map(|set| find_key(payload, set, depth));
                let all = find_keys(payload, NATIVE_DATE_KEYS.map(Some), depth);
                assert_eq!(all, each, "{payload}");
                let some = find_keys(payload, [None, Some(NATIVE_DATE_KEYS[1]), None], depth);
                assert_eq!(some, [None, each[1], None], "{payload}");
            }
        }
        assert!(
            find_keys(&payloads[0], NATIVE_DATE_KEYS.map(Some), 6)
                .iter()
                .all(Option::is_some)
        );
    }

    #[test]
    fn a_key_is_squashed_in_place_as_squash_does_or_not_at_all_when_too_long() {
        let mut buf = [0u8; 64];
        for key in [
            "orderDate",
            "ORDER_DATE",
            "po number",
            "státus",
            "",
            "__",
            "a1-B2",
        ] {
            assert_eq!(
                squash_into(key, &mut buf),
                Some(squash(key).as_bytes()),
                "{key:?}"
            );
        }
        let long = "x".repeat(64);
        assert_eq!(
            squash_into(&long, &mut buf),
            Some(long.to_uppercase().as_bytes())
        );
        assert_eq!(squash_into(&format!("{long}y"), &mut buf), None);
        assert_eq!(
            squash_into(&format!("{long}-_"), &mut buf).map(<[u8]>::len),
            Some(64)
        );
    }
}
