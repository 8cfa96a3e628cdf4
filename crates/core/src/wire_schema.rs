//! OpenAPI schemas for the input shapes whose serde is written by hand (a `Deserialize` that
//! takes more than one form): the derive sees only the answer's shape, so the forms a request
//! may use are described here, beside nothing else, as JSON Schema.

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

/// A schema written as JSON. Panics only on a schema literal that is not one (a bug caught by
/// every test that builds the document).
fn from_json(schema: Value) -> RefOr<Schema> {
    match serde_json::from_value(schema) {
        Ok(schema) => schema,
        Err(e) => panic!("a hand-written schema is not a JSON Schema: {e}"),
    }
}

/// `retryPolicy` as a request gives it (see `RetryPolicy`'s `Deserialize`): a name, or an
/// object with `type` and that policy's fields.
pub struct RetryPolicyInput;

impl utoipa::PartialSchema for RetryPolicyInput {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "description": "A name, or an object with `type` and that policy's fields.",
            "anyOf": [
                {"type": "string", "enum": ["walmart", "sellercenter", "exponential"]},
                {"$ref": "#/components/schemas/RetryPolicy"},
            ],
        }))
    }
}

impl utoipa::ToSchema for RetryPolicyInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RetryPolicyInput")
    }
    /// The answer's shape it refers to.
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use crate::retry::RetryPolicy;
        schemas.push((
            <RetryPolicy as utoipa::ToSchema>::name().into(),
            <RetryPolicy as utoipa::PartialSchema>::schema(),
        ));
        <RetryPolicy as utoipa::ToSchema>::schemas(schemas);
    }
}

/// `rateLimit` as a request gives it (see `RateLimit`'s `Deserialize`).
pub struct RateLimitInput;

impl utoipa::PartialSchema for RateLimitInput {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "description": "Deliveries per second (bursts of that many), or `{perSecond, burst}`: \
                0 < perSecond <= 10000, 1 <= burst <= 100000.",
            "anyOf": [
                {"type": "number"},
                {
                    "type": "object",
                    "required": ["perSecond"],
                    "properties": {"perSecond": {"type": "number"}, "burst": {"type": "number"}},
                },
            ],
        }))
    }
}

impl utoipa::ToSchema for RateLimitInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RateLimitInput")
    }
}

/// An event type of the catalog (`GET /v3/webhooks/eventTypes`), as a request names it.
pub struct EventTypeName;

impl utoipa::PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = crate::catalog::all().iter().map(|t| t.event_type).collect();
        from_json(json!({
            "type": "string",
            "enum": names,
            "description": "A native type or topic of `GET /v3/webhooks/eventTypes`.",
        }))
    }
}

impl utoipa::ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventTypeName")
    }
}

/// A resource of the catalog (`ITEM`, `ORDER`, …), as a request names it.
pub struct ResourceName;

impl utoipa::PartialSchema for ResourceName {
    fn schema() -> RefOr<Schema> {
        let mut names: Vec<&str> = crate::catalog::all()
            .iter()
            .map(|t| t.resource_name)
            .collect();
        names.sort_unstable();
        names.dedup();
        from_json(json!({
            "type": "string",
            "enum": names,
            "description": "The resource of an event type of `GET /v3/webhooks/eventTypes`.",
        }))
    }
}

impl utoipa::ToSchema for ResourceName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ResourceName")
    }
}

/// One posted order fact, as `OrderFact::from_json` reads it: a closed object per kind, tagged
/// by `fact`.
pub struct OrderFactInput;

impl utoipa::PartialSchema for OrderFactInput {
    fn schema() -> RefOr<Schema> {
        let date_time = json!({"type": "string", "format": "date-time"});
        let date = json!({"type": "string", "format": "date"});
        let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
        let kinds = [
            (
                "ordered",
                vec![("orderedAt", date_time.clone())],
                vec![("shipBy", date.clone()), ("estimatedDelivery", date)],
            ),
            (
                "shipped",
                vec![
                    ("carrier", text(64)),
                    (
                        "trackingNumber",
                        json!({"type": "string", "pattern": "^[A-Za-z0-9-]{4,64}$"}),
                    ),
                    ("shippedAt", date_time.clone()),
                ],
                vec![],
            ),
            ("originScan", vec![("scannedAt", date_time.clone())], vec![]),
            (
                "delivered",
                vec![("deliveredAt", date_time.clone())],
                vec![],
            ),
            (
                "refunded",
                vec![("refundedAt", date_time.clone())],
                vec![("amount", json!({"type": "number", "minimum": 0}))],
            ),
            (
                "customerContact",
                vec![("contactedAt", date_time.clone())],
                vec![],
            ),
            ("sellerResponse", vec![("respondedAt", date_time)], vec![]),
        ];
        let one_of: Vec<Value> = kinds
            .into_iter()
            .map(|(fact, required, optional)| {
                let mut properties = serde_json::Map::new();
                properties.insert("fact".into(), json!({"type": "string", "const": fact}));
                properties.insert("poNumber".into(), text(128));
                properties.insert(
                    "marketplace".into(),
                    json!({"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}),
                );
                let mut names = vec!["fact".to_string(), "poNumber".into(), "marketplace".into()];
                for (name, schema) in required {
                    names.push(name.to_string());
                    properties.insert(name.into(), schema);
                }
                properties.extend(optional.into_iter().map(|(n, s)| (n.to_string(), s)));
                json!({
                    "type": "object",
                    "additionalProperties": false,
                    "required": names,
                    "properties": properties,
                })
            })
            .collect();
        from_json(json!({"oneOf": one_of}))
    }
}

impl utoipa::ToSchema for OrderFactInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OrderFact")
    }
}
