//! The OpenAPI 3.1 description of the HTTP API, built by hand from what the handlers answer
//! (their answers are hand-built JSON, so no derive could describe them), and the pages that serve
//! it: `GET /openapi.json` and `GET /docs`, a plain HTML page rendered from the same document.
//!
//! `docs/openapi.json` is this document, committed; a test fails when they differ
//! (`SWITCHYARD_UPDATE_OPENAPI=1 cargo test -p switchyard-server openapi` rewrites it), and
//! another fails when a route of `routes/mod.rs` is not described here.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Map, Value, json};

use switchyard_core::catalog;
use switchyard_marketplaces::Kind;

static DOCUMENT: LazyLock<Value> = LazyLock::new(document);
static DOCS_PAGE: LazyLock<String> = LazyLock::new(|| render_html(&DOCUMENT));

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    axum::Json(DOCUMENT.clone())
}

/// `GET /docs`: the document as one HTML page, with no script and no outside asset.
pub async fn docs_page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(DOCS_PAGE.as_str()),
    )
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, {"type": "null"}] })
}

fn nullable_string(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn nullable_time(description: &str) -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": description})
}

fn time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn uuid(description: &str) -> Value {
    json!({"type": "string", "format": "uuid", "description": description})
}

/// A JSON answer.
/// The token endpoint's answer to a client id with too many wrong secrets (`throttle`).
fn too_many_failures() -> Value {
    let mut answer = ok(
        "Too many wrong secrets for this client id lately (`too_many_failures`): refused, right secret or not, for the seconds `Retry-After` gives (doubling with each further failure, at most 900).",
        schema_ref("Error"),
    );
    answer["headers"] = json!({
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
    });
    answer
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema}},
    })
}

/// A JSON request body with its example.
fn json_body(schema: Value, example: Value) -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": schema, "example": example}},
    })
}

/// A form request body with its example.
fn form_body(schema: Value, example: Value) -> Value {
    json!({
        "required": true,
        "content": {"application/x-www-form-urlencoded": {"schema": schema, "example": example}},
    })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": schema})
}

fn id_param(what: &str) -> Value {
    path_param(
        "id",
        &format!("The {what}'s id (a UUID; anything else names nothing: 404)"),
        json!({"type": "string", "format": "uuid"}),
    )
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": schema})
}

fn header_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": false, "description": description,
           "schema": {"type": "string"}})
}

fn partner_header() -> Value {
    header_param(
        "WM_PARTNER.ID",
        "The partner the request is for, when the body does not name one (a client managing \
         several partners must name one).",
    )
}

fn limit_param() -> Value {
    query(
        "limit",
        "Page size; clamped to 1..1000 (default 100).",
        json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64}),
    )
}

fn before_param() -> Value {
    query(
        "before",
        "The previous page's `nextBefore`: only items with a smaller (older) id. Must be a UUID.",
        json!({"type": "string", "format": "uuid"}),
    )
}

fn since_param(description: &str) -> Value {
    query(
        "since",
        description,
        json!({"type": "string", "format": "date-time"}),
    )
}

/// Links from an answer to the operations its id feeds (`parameter`, `operationId`).
fn with_links(mut response: Value, value: &str, targets: &[(&str, &str)]) -> Value {
    let mut links = Map::new();
    for (parameter, operation) in targets {
        let mut name = operation.to_string();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        links.insert(
            name,
            json!({"operationId": operation, "parameters": {*parameter: value}}),
        );
    }
    response["links"] = Value::Object(links);
    response
}

/// Adds the error answers most authenticated operations share to `responses`.
fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    for code in codes {
        let name = match *code {
            "400" => "BadRequest",
            "401" => "Unauthorized",
            "403" => "Forbidden",
            "404" => "NotFound",
            "409" => "Conflict",
            "413" => "TooLarge",
            "500" => "Internal",
            "503" => "Unavailable",
            other => unreachable!("no shared error answer for {other}"),
        };
        responses[*code] = response_ref(name);
    }
    responses
}

/// One posted order fact: a closed object per kind, tagged by `fact`.
fn order_fact_schema() -> Value {
    let date_time = json!({"type": "string", "format": "date-time"});
    let date = json!({"type": "string", "format": "date"});
    let variants = [
        (
            "ordered",
            vec![("orderedAt", date_time.clone())],
            vec![("shipBy", date.clone()), ("estimatedDelivery", date)],
        ),
        (
            "shipped",
            vec![
                (
                    "carrier",
                    json!({"type": "string", "minLength": 1, "maxLength": 64}),
                ),
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
    let one_of: Vec<Value> = variants
        .into_iter()
        .map(|(fact, required, optional)| {
            let mut properties = serde_json::Map::new();
            properties.insert("fact".into(), json!({"const": fact}));
            properties.insert(
                "poNumber".into(),
                json!({"type": "string", "minLength": 1, "maxLength": 128}),
            );
            properties.insert(
                "marketplace".into(),
                json!({"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}),
            );
            let mut names = vec!["fact".to_string(), "poNumber".into(), "marketplace".into()];
            for (name, schema) in required {
                names.push(name.to_string());
                properties.insert(name.into(), schema);
            }
            for (name, schema) in optional {
                properties.insert(name.into(), schema);
            }
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": names,
                "properties": properties,
            })
        })
        .collect();
    json!({"oneOf": one_of})
}

/// An operation. `security: None` uses the document's (a bearer token).
#[allow(clippy::too_many_arguments)]
fn op(
    id: &str,
    tag: &str,
    summary: &str,
    description: &str,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Value,
    security: Option<Value>,
) -> Value {
    let mut o = json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "responses": responses,
    });
    if !parameters.is_empty() {
        o["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = body {
        o["requestBody"] = body;
    }
    if let Some(security) = security {
        o["security"] = security;
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The document.

/// The OpenAPI 3.1 document of every route the hub serves (except this document and its page).
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Self-hosted webhook hub for marketplace commerce",
            "description": "Walmart Marketplace-compatible subscriptions (`/v3/webhooks`), \
                Switchyard's own API (`/api/v1`: publishing, events, deliveries, replay, sources, \
                rejections), and the endpoints marketplaces send their webhooks to (`/ingest`). \
                Get a bearer token from `POST /v3/token` and send it as `Authorization: Bearer …` \
                or `WM_SEC.ACCESS_TOKEN`. Every error is `{\"error\":{\"code\",\"message\",\"field\"?}}`.",
            "license": {"name": "See the repository", "identifier": "LicenseRef-Switchyard"},
        },
        "tags": [
            {"name": "probes", "description": "Liveness and readiness."},
            {"name": "token", "description": "Client credentials for a bearer token."},
            {"name": "webhooks", "description": "Walmart's `/v3/webhooks` API: event types, subscriptions, test notifications."},
            {"name": "events", "description": "Publishing events and reading what was received."},
            {"name": "deliveries", "description": "Deliveries and their attempts; retrying one."},
            {"name": "subscriptions", "description": "Switchyard's own subscription operations: replay, secret rotation, health."},
            {"name": "sources", "description": "Inbound endpoints, one per marketplace connection."},
            {"name": "rejections", "description": "Refused inbound requests."},
            {"name": "sellercenter", "description": "SellerCenter's API dialect for webhooks, signed with the user's API key."},
            {"name": "performance", "description": "Order facts and seller performance notifications."},
            {"name": "ingest", "description": "Where marketplaces send their webhooks; authenticated by each marketplace's own signature scheme, not by a token."},
        ],
        "security": bearer_security(),
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `POST /v3/token` (valid 900 seconds).",
                },
                "wmAccessToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "WM_SEC.ACCESS_TOKEN",
                    "description": "The same token in Walmart's header.",
                },
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The API client's id and secret.",
                },
            },
            "responses": shared_responses(),
            "schemas": schemas(),
        },
    })
}

fn bearer_security() -> Value {
    json!([{"bearerAuth": []}, {"wmAccessToken": []}])
}

fn shared_responses() -> Value {
    let error = |description: &str| ok(description, schema_ref("Error"));
    let mut unauthorized =
        error("No token, or an invalid or expired one (`unauthorized`, `invalid_token`).");
    unauthorized["headers"] = json!({
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    });
    json!({
        "BadRequest": error("Invalid input: `malformed_body`, `invalid_field`, `invalid_query`, or a code naming the problem; `field` says where."),
        "Unauthorized": unauthorized,
        "Forbidden": error("The client lacks the scope (`insufficient_scope`) or does not manage the partner (`partner_not_managed`)."),
        "NotFound": error("No such object, or one of another tenant (`not_found`)."),
        "Conflict": error("The object already exists (`conflict`)."),
        "TooLarge": error("The body is over the size limit (`too_large`)."),
        "Internal": error("An unexpected failure (`internal`); the server log has the details."),
        "Unavailable": error("The database did not commit (`store_unavailable`), the hub is stopping (`shutting_down`), or it is serving as many requests as it can and this one waited past the queueing deadline (`overloaded`); nothing was stored, try again after `Retry-After` seconds."),
    })
}

fn paths() -> Value {
    let mut paths = Map::new();
    let mut add = |path: &str, method: &str, operation: Value| {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = operation;
    };
    for (path, method, operation) in probe_and_token_ops()
        .into_iter()
        .chain(webhook_ops())
        .chain(event_ops())
        .chain(delivery_ops())
        .chain(source_ops())
        .chain(rejection_ops())
        .chain(ingest_ops())
        .chain(sellercenter_ops())
    {
        add(path, method, operation);
    }
    Value::Object(paths)
}

type Operation = (&'static str, &'static str, Value);

/// SellerCenter's API dialect: one path, the action in the signed query.
fn sellercenter_ops() -> Vec<Operation> {
    let params = || {
        let text =
            |name: &str, description: &str| query(name, description, json!({"type": "string"}));
        vec![
            query(
                "Action",
                "The action.",
                json!({"type": "string", "enum": ["CreateWebhook", "GetWebhooks", "DeleteWebhook", "GetWebhookEntities"]}),
            ),
            text("UserID", "The Switchyard client id."),
            text("Version", "`1.0`."),
            text(
                "Timestamp",
                "ISO 8601, within 5 minutes of the hub's clock.",
            ),
            query(
                "Format",
                "`JSON` (default) or `XML`.",
                json!({"type": "string", "enum": ["JSON", "XML"]}),
            ),
            text(
                "Signature",
                "Hex HMAC-SHA256 with the user's API key over the other parameters, sorted, RFC 3986-encoded, `name=value` joined by `&`.",
            ),
            text("WebhookId", "DeleteWebhook: the webhook."),
            text(
                "PartnerId",
                "CreateWebhook: the partner, for a client managing several.",
            ),
            text(
                "CallbackUrl",
                "CreateWebhook: the callback URL, when not in the body.",
            ),
            text(
                "Events",
                "CreateWebhook: comma-separated events or entity names, when not in the body.",
            ),
        ]
    };
    let answers = || {
        let both = |d: &str, root: &str| {
            json!({
                "description": d,
                "content": {
                    "application/json": {"schema": {"type": "object", "required": [root], "properties": {root: {"type": "object"}}}},
                    "application/xml": {"schema": {"type": "string"}},
                },
            })
        };
        json!({
            "200": both("`SuccessResponse` with `Head` and `Body`.", "SuccessResponse"),
            "400": both("`ErrorResponse`: E001 missing parameter, E002 version, E003 stale timestamp, E004 timestamp format, E005 invalid request, E008 invalid action, E009 access denied.", "ErrorResponse"),
            "401": both("`ErrorResponse` E007: signature mismatch (or unknown user).", "ErrorResponse"),
            "403": both("`ErrorResponse`: the client may not act for that partner.", "ErrorResponse"),
            "409": both("`ErrorResponse`: a conflicting write.", "ErrorResponse"),
            "503": both("`ErrorResponse` E006: the database is unavailable.", "ErrorResponse"),
        })
    };
    let description = "SellerCenter's webhook API: `CreateWebhook` (body `<Request><Webhook><CallbackUrl>…</CallbackUrl><Events><Event>onOrderCreated</Event>…</Events></Webhook></Request>`; an entity name alone means all its events), `GetWebhooks`, `DeleteWebhook`, `GetWebhookEntities`. Signed with the user's SellerCenter API key, not a bearer token.";
    vec![
        (
            "/sellercenter",
            "get",
            op(
                "sellercenterGet",
                "sellercenter",
                "SellerCenter API (GET)",
                description,
                params(),
                None,
                answers(),
                Some(json!([])),
            ),
        ),
        (
            "/sellercenter",
            "post",
            op(
                "sellercenterPost",
                "sellercenter",
                "SellerCenter API (POST)",
                description,
                params(),
                Some(json!({
                    "required": false,
                    "content": {"application/xml": {
                        "schema": {"type": "string"},
                        "example": "<Request><Webhook><CallbackUrl>https://example.com/sc</CallbackUrl><Events><Event>Order</Event></Events></Webhook></Request>",
                    }},
                })),
                answers(),
                Some(json!([])),
            ),
        ),
    ]
}

fn probe_and_token_ops() -> Vec<Operation> {
    vec![
        (
            "/healthz",
            "get",
            op(
                "healthz",
                "probes",
                "Liveness",
                "Answers while the process serves.",
                vec![],
                None,
                json!({"200": ok("Serving.", json!({
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                }))}),
                Some(json!([])),
            ),
        ),
        (
            "/readyz",
            "get",
            op(
                "readyz",
                "probes",
                "Readiness",
                "Ready when the database answers and every background task (dispatcher, retention, performance scheduler) is up; a 503 `task_down` lists the tasks down in `error.tasks`.",
                vec![],
                None,
                json!({
                    "200": ok("The database answers.", json!({
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"const": "ready"}},
                    })),
                    "503": response_ref("Unavailable"),
                }),
                Some(json!([])),
            ),
        ),
        (
            "/v3/token",
            "post",
            op(
                "issueToken",
                "token",
                "Get a bearer token",
                "Client credentials in HTTP Basic, or as `client_id` and `client_secret` form \
                 fields; `grant_type` must be `client_credentials`. The token is valid for 900 \
                 seconds.",
                vec![],
                Some(form_body(
                    json!({
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }),
                    json!({"grant_type": "client_credentials"}),
                )),
                with_errors(
                    json!({
                        "200": ok("A token.", schema_ref("Token")),
                        "400": ok("The body is not a form (`malformed_body`) or `grant_type` is not `client_credentials` (`unsupported_grant_type`).", schema_ref("Error")),
                        "401": ok("No credentials, an unknown client or a wrong secret (`invalid_client`).", schema_ref("Error")),
                        "429": too_many_failures(),
                    }),
                    &["413", "503"],
                ),
                Some(json!([{"clientBasic": []}, {}])),
            ),
        ),
    ]
}

fn subscription_input_example() -> Value {
    json!({
        "eventType": "OFFER_UNPUBLISHED",
        "eventVersion": "V1",
        "resourceName": "ITEM",
        "eventUrl": "http://127.0.0.1:9000/hook",
        "authDetails": {"authMethod": "BASIC_AUTH", "userName": "shop", "password": "s3cret"},
        "retryPolicy": "walmart",
    })
}

fn webhook_ops() -> Vec<Operation> {
    let sub_id = || id_param("subscription");
    vec![
        (
            "/v3/webhooks/eventTypes",
            "get",
            op(
                "listEventTypes",
                "webhooks",
                "List event types",
                "Walmart's native types, SellerCenter's events, the normalized topics and the \
                 operational events, each with the JSON schema its payload must match.",
                vec![],
                None,
                with_errors(
                    json!({"200": ok("The catalog.", schema_ref("EventTypeList"))}),
                    &["401", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/subscriptions",
            "post",
            op(
                "createSubscriptions",
                "webhooks",
                "Create subscriptions",
                "One subscription per entry of `events` (the body may also say `event` or \
                 `eventTypes`). Each answer entry carries the Standard Webhooks `signingSecret`, \
                 shown only here. Needs a scope other than `no_access` on the resource.",
                vec![partner_header()],
                Some(json_body(
                    schema_ref("CreateSubscriptions"),
                    json!({"events": [subscription_input_example()]}),
                )),
                with_errors(
                    json!({"200": with_links(
                        ok("Created.", schema_ref("CreatedSubscriptions")),
                        "$response.body#/events/0/subscriptionId",
                        &[
                            ("id", "getSubscription"),
                            ("id", "updateSubscription"),
                            ("id", "deleteSubscription"),
                            ("id", "replaySubscription"),
                            ("id", "rotateSigningSecret"),
                            ("id", "subscriptionHealth"),
                        ],
                    )}),
                    &["400", "401", "403", "409", "413", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/subscriptions",
            "get",
            op(
                "listSubscriptions",
                "webhooks",
                "List subscriptions",
                "The subscriptions of the partners the client manages, credentials masked.",
                vec![
                    query(
                        "subscriptionId",
                        "Only this subscription (an id that is not a UUID matches nothing).",
                        json!({"type": "string"}),
                    ),
                    query(
                        "eventType",
                        "Only this event type.",
                        json!({"type": "string"}),
                    ),
                    query(
                        "resourceName",
                        "Only this resource.",
                        json!({"type": "string"}),
                    ),
                    query(
                        "status",
                        "Only this status.",
                        json!({"type": "string", "enum": ["ACTIVE", "INACTIVE"]}),
                    ),
                ],
                None,
                with_errors(
                    json!({"200": ok("The subscriptions.", schema_ref("SubscriptionList"))}),
                    &["400", "401", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/subscriptions/{id}",
            "get",
            op(
                "getSubscription",
                "webhooks",
                "Get a subscription",
                "Credentials in `authDetails` are masked (`********`).",
                vec![sub_id()],
                None,
                with_errors(
                    json!({"200": ok("The subscription.", schema_ref("Subscription"))}),
                    &["401", "404", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/subscriptions/{id}",
            "patch",
            op(
                "updateSubscription",
                "webhooks",
                "Change a subscription",
                "Changes only the fields given. `null` removes `authDetails`, `maxInFlight` or \
                 `rateLimit`; a masked credential sent back keeps the stored one; read-only \
                 fields may be sent back unchanged. Setting `ACTIVE` clears `disabledReason`.",
                vec![sub_id()],
                Some(json_body(
                    schema_ref("SubscriptionPatch"),
                    json!({"status": "INACTIVE", "maxInFlight": 8, "rateLimit": {"perSecond": 50, "burst": 100}}),
                )),
                with_errors(
                    json!({"200": ok("The subscription as changed.", schema_ref("Subscription"))}),
                    &["400", "401", "403", "404", "413", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/subscriptions/{id}",
            "delete",
            op(
                "deleteSubscription",
                "webhooks",
                "Delete a subscription",
                "Its pending deliveries end as failed.",
                vec![sub_id()],
                None,
                with_errors(
                    json!({"200": ok("Deleted.", json!({
                        "type": "object",
                        "required": ["subscriptionId", "message"],
                        "properties": {
                            "subscriptionId": uuid("The deleted subscription."),
                            "message": {"type": "string"},
                        },
                    }))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
        (
            "/v3/webhooks/test",
            "post",
            op(
                "testNotification",
                "webhooks",
                "Send a test notification",
                "Sends a sample of the event type to `eventUrl` now, with the given auth and \
                 headers, and says whether the endpoint answered 2xx.",
                vec![partner_header()],
                Some(json_body(
                    schema_ref("TestNotification"),
                    json!({
                        "eventType": "OFFER_UNPUBLISHED",
                        "resourceName": "ITEM",
                        "eventUrl": "http://127.0.0.1:9000/hook",
                    }),
                )),
                with_errors(
                    json!({
                        "200": ok("The endpoint answered 2xx.", json!({
                            "type": "object", "required": ["message"],
                            "properties": {"message": {"type": "string"}},
                        })),
                        "400": ok("Invalid input, or the endpoint did not answer 2xx (`test_delivery_failed`, `field`: `eventUrl`).", schema_ref("Error")),
                    }),
                    &["401", "403", "413", "503"],
                ),
                None,
            ),
        ),
    ]
}

fn event_ops() -> Vec<Operation> {
    vec![
        (
            "/api/v1/events",
            "post",
            op(
                "publishEvent",
                "events",
                "Publish an event",
                "Validates the payload against the type's schema and stores the event with a \
                 delivery for every ACTIVE subscription of the partner naming its type or topic, \
                 in one transaction; answers only after the commit. A repeated `eventId` (or \
                 `Idempotency-Key`) of the same partner creates nothing and answers 200. Needs \
                 `full_access` on the type's resource.",
                vec![
                    partner_header(),
                    header_param(
                        "Idempotency-Key",
                        "Deduplication key when the body has no `eventId` (1 to 255 characters).",
                    ),
                ],
                Some(json_body(
                    schema_ref("PublishRequest"),
                    json!({
                        "eventType": "OFFER_UNPUBLISHED",
                        "eventId": "offer-42-unpublished",
                        "payload": {"sku": "SKU-42"},
                    }),
                )),
                with_errors(
                    json!({
                        "202": with_links(
                            ok("Stored, with its deliveries.", schema_ref("PublishAccepted")),
                            "$response.body#/eventId",
                            &[("id", "getEvent"), ("id", "reportEventOutcome")],
                        ),
                        "200": ok("A duplicate: nothing was stored.", schema_ref("PublishDuplicate")),
                    }),
                    &["400", "401", "403", "413", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/events",
            "get",
            op(
                "listEvents",
                "events",
                "List events",
                "Events of the partners the client manages, newest first, without their raw \
                 bodies; page with `nextBefore`.",
                vec![
                    query(
                        "topic",
                        "Only this normalized topic.",
                        json!({"type": "string"}),
                    ),
                    query(
                        "marketplace",
                        "Only events received from this marketplace.",
                        json!({"type": "string"}),
                    ),
                    query("partnerId", "Only this partner.", json!({"type": "string"})),
                    since_param("Only events received at or after this time."),
                    before_param(),
                    limit_param(),
                ],
                None,
                with_errors(
                    json!({"200": ok("A page of events.", schema_ref("EventList"))}),
                    &["400", "401", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/events/{id}",
            "get",
            op(
                "getEvent",
                "events",
                "Get an event",
                "The event with its raw body (for received events), normalized form and \
                 deliveries.",
                vec![id_param("event")],
                None,
                with_errors(
                    json!({"200": ok("The event.", schema_ref("EventDetail"))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/events/{id}/outcome",
            "post",
            op(
                "reportEventOutcome",
                "events",
                "Report an event's outcome",
                "The consumer's report of what became of an event: `processed` or `failed`, with \
                 an optional machine-readable `reason` and a `message`.",
                vec![id_param("event")],
                Some(json_body(
                    schema_ref("OutcomeRequest"),
                    json!({"status": "failed", "reason": "sku_not_found", "message": "SKU-42 is not in the catalog"}),
                )),
                with_errors(
                    json!({"201": ok("Recorded.", schema_ref("Outcome"))}),
                    &["400", "401", "404", "413", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/orders/facts",
            "post",
            op(
                "postOrderFacts",
                "performance",
                "Post order facts",
                "Facts about a partner's orders that marketplaces do not send: `shipped` (carrier, \
                 tracking number), `originScan`, `delivered`, `refunded`, `customerContact`, \
                 `sellerResponse`. All are applied in one transaction, or none. Needs \
                 `full_access` on ORDER. Seller performance notifications are computed from them \
                 and from received order events.",
                vec![],
                Some(json_body(
                    json!({
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["facts"],
                        "properties": {
                            "partnerId": {"type": "string"},
                            "facts": {
                                "type": "array", "minItems": 1, "description": "At most 1000.",
                                "items": order_fact_schema(),
                            },
                        },
                    }),
                    json!({"partnerId": "seller-1", "facts": [{"fact": "shipped", "poNumber": "PO-1", "marketplace": "walmart", "carrier": "UPS", "trackingNumber": "1Z999AA10123456784", "shippedAt": "2026-11-23T15:00:00Z"}]}),
                )),
                with_errors(
                    json!({"202": ok("Applied.", json!({
                        "type": "object",
                        "required": ["partnerId", "applied"],
                        "properties": {"partnerId": {"type": "string"}, "applied": {"type": "integer", "minimum": 1}},
                    }))}),
                    &["400", "401", "403", "413", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/performance/run",
            "post",
            op(
                "previewPerformanceNotification",
                "performance",
                "Compute a seller performance notification",
                "Computes the `ALARMS` or `REPORT` payload of `SELLER_PERFORMANCE_NOTIFICATIONS` \
                 as the scheduler would at `asOf` (default: now), for one marketplace or all, \
                 without sending it. `payload` is null when there is nothing to report.",
                vec![],
                Some(json_body(
                    json!({
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["notificationType"],
                        "properties": {
                            "partnerId": {"type": "string"},
                            "notificationType": {"type": "string", "enum": ["ALARMS", "REPORT"]},
                            "asOf": {"type": "string", "format": "date-time"},
                            "marketplace": {"type": "string"},
                        },
                    }),
                    json!({"partnerId": "seller-1", "notificationType": "ALARMS", "asOf": "2026-11-23T14:00:00Z"}),
                )),
                with_errors(
                    json!({"200": ok("The payload.", json!({
                        "type": "object",
                        "required": ["partnerId", "notificationType", "asOf", "payload"],
                        "properties": {
                            "partnerId": {"type": "string"},
                            "notificationType": {"type": "string"},
                            "asOf": {"type": "string"},
                            "payload": {"type": ["object", "null"]},
                        },
                    }))}),
                    &["400", "401", "403", "413", "503"],
                ),
                None,
            ),
        ),
    ]
}

fn delivery_ops() -> Vec<Operation> {
    let sub_id = || id_param("subscription");
    vec![
        (
            "/api/v1/deliveries",
            "get",
            op(
                "listDeliveries",
                "deliveries",
                "List deliveries",
                "Deliveries of the partners the client manages, newest first; page with \
                 `nextBefore`.",
                vec![
                    query(
                        "subscriptionId",
                        "Only this subscription's (a UUID).",
                        json!({"type": "string", "format": "uuid"}),
                    ),
                    query(
                        "eventId",
                        "Only this event's (a UUID).",
                        json!({"type": "string", "format": "uuid"}),
                    ),
                    query(
                        "status",
                        "Only deliveries in this state.",
                        json!({"type": "string", "enum": ["pending", "succeeded", "failed"]}),
                    ),
                    before_param(),
                    limit_param(),
                ],
                None,
                with_errors(
                    json!({"200": ok("A page of deliveries.", schema_ref("DeliveryList"))}),
                    &["400", "401", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/deliveries/{id}",
            "get",
            op(
                "getDelivery",
                "deliveries",
                "Get a delivery",
                "The delivery with every attempt (status, latency, error, the first 4 KiB of the \
                 answer).",
                vec![id_param("delivery")],
                None,
                with_errors(
                    json!({"200": ok("The delivery.", schema_ref("DeliveryDetail"))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/deliveries/{id}/retry",
            "post",
            op(
                "retryDelivery",
                "deliveries",
                "Retry a delivery now",
                "Makes the delivery pending and due now, with a fresh retry cycle.",
                vec![id_param("delivery")],
                None,
                with_errors(
                    json!({"202": ok("Due now.", schema_ref("Delivery"))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/subscriptions/{id}/replay",
            "post",
            op(
                "replaySubscription",
                "subscriptions",
                "Replay a time range",
                "Delivers again every event of the subscription received in [`since`, `until`) \
                 (`until` defaults to now), under the same delivery ids.",
                vec![sub_id()],
                Some(json_body(
                    schema_ref("ReplayRequest"),
                    json!({"since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}),
                )),
                with_errors(
                    json!({"202": ok("Replayed.", json!({
                        "type": "object",
                        "required": ["subscriptionId", "replayed"],
                        "properties": {
                            "subscriptionId": uuid("The subscription."),
                            "replayed": {"type": "integer", "minimum": 0, "description": "Deliveries made due."},
                        },
                    }))}),
                    &["400", "401", "404", "413", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/subscriptions/{id}/rotate-secret",
            "post",
            op(
                "rotateSigningSecret",
                "subscriptions",
                "Rotate the signing secret",
                "Answers the new Standard Webhooks secret (shown only here); the old one keeps \
                 signing alongside it for 24 hours.",
                vec![sub_id()],
                None,
                with_errors(
                    json!({"200": ok("The new secret.", json!({
                        "type": "object",
                        "required": ["subscriptionId", "signingSecret", "previousSecretExpiresAt"],
                        "properties": {
                            "subscriptionId": uuid("The subscription."),
                            "signingSecret": {"type": "string", "pattern": "^whsec_"},
                            "previousSecretExpiresAt": time("When the old secret stops signing."),
                        },
                    }))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/subscriptions/{id}/health",
            "get",
            op(
                "subscriptionHealth",
                "subscriptions",
                "Delivery health",
                "Breaker, pacing and backlog now, with the last 24 hours' success rate and \
                 latency.",
                vec![sub_id()],
                None,
                with_errors(
                    json!({"200": ok("The health.", schema_ref("SubscriptionHealth"))}),
                    &["401", "404", "503"],
                ),
                None,
            ),
        ),
    ]
}

fn source_ops() -> Vec<Operation> {
    let source_id = || id_param("source");
    vec![
        (
            "/api/v1/sources",
            "post",
            op(
                "createSource",
                "sources",
                "Create a source",
                "An inbound endpoint for one marketplace connection. The answer's `ingestUrl` is \
                 what to register with the marketplace (a SellerCenter source's carries a \
                 generated token, shown only here). Secrets are write-only.",
                vec![],
                Some(json_body(
                    schema_ref("SourceCreate"),
                    json!({
                        "kind": "walmart",
                        "name": "Walmart US",
                        "partners": ["seller-1"],
                        "secrets": [{"id": "1", "value": "the-client-secret"}],
                        "replayWindowSeconds": 300,
                    }),
                )),
                with_errors(
                    json!({"201": with_links(
                        ok("Created.", schema_ref("Source")),
                        "$response.body#/sourceId",
                        &[
                            ("id", "getSource"),
                            ("id", "updateSource"),
                            ("id", "deleteSource"),
                            ("source_id", "ingest"),
                            ("source_id", "ingestChallenge"),
                            ("source_id", "ingestOauthToken"),
                        ],
                    )}),
                    &["400", "401", "403", "409", "413", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/sources",
            "get",
            op(
                "listSources",
                "sources",
                "List sources",
                "The sources of the partners the client manages, secrets masked.",
                vec![],
                None,
                with_errors(
                    json!({"200": ok("The sources.", json!({
                        "type": "object",
                        "required": ["sources"],
                        "properties": {"sources": {"type": "array", "items": schema_ref("Source")}},
                    }))}),
                    &["401", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/sources/{id}",
            "get",
            op(
                "getSource",
                "sources",
                "Get a source",
                "Secrets masked.",
                vec![source_id()],
                None,
                with_errors(
                    json!({"200": ok("The source.", schema_ref("Source"))}),
                    &["401", "404", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/sources/{id}",
            "patch",
            op(
                "updateSource",
                "sources",
                "Change a source",
                "Changes only the fields given. `secrets` replaces the list; a masked value sent \
                 back keeps the stored secret of that id.",
                vec![source_id()],
                Some(json_body(
                    schema_ref("SourcePatch"),
                    json!({"secrets": [{"id": "1", "value": "********"}, {"id": "2", "value": "the-new-secret"}]}),
                )),
                with_errors(
                    json!({"200": ok("The source as changed.", schema_ref("Source"))}),
                    &["400", "401", "403", "404", "413", "500", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/sources/{id}",
            "delete",
            op(
                "deleteSource",
                "sources",
                "Delete a source",
                "Its ingest URL stops accepting requests.",
                vec![source_id()],
                None,
                with_errors(
                    json!({"200": ok("Deleted.", json!({
                        "type": "object",
                        "required": ["sourceId", "message"],
                        "properties": {
                            "sourceId": uuid("The deleted source."),
                            "message": {"type": "string"},
                        },
                    }))}),
                    &["401", "404", "500", "503"],
                ),
                None,
            ),
        ),
    ]
}

fn rejection_ops() -> Vec<Operation> {
    vec![
        (
            "/api/v1/rejections",
            "get",
            op(
                "listRejections",
                "rejections",
                "List rejections",
                "Refused inbound requests of the client's partners' sources, newest first (those \
                 naming no source are for admins); page with `nextBefore`.",
                vec![
                    query(
                        "sourceId",
                        "Only this source (as the URL named it).",
                        json!({"type": "string"}),
                    ),
                    query(
                        "reason",
                        "Only this reason code.",
                        json!({"type": "string"}),
                    ),
                    since_param("Only rejections at or after this time."),
                    before_param(),
                    limit_param(),
                ],
                None,
                with_errors(
                    json!({"200": ok("A page of rejections.", json!({
                        "type": "object",
                        "required": ["rejections", "nextBefore"],
                        "properties": {
                            "rejections": {"type": "array", "items": schema_ref("Rejection")},
                            "nextBefore": {"type": ["string", "null"], "format": "uuid"},
                        },
                    }))}),
                    &["400", "401", "503"],
                ),
                None,
            ),
        ),
        (
            "/api/v1/rejections/summary",
            "get",
            op(
                "rejectionSummary",
                "rejections",
                "Count rejections",
                "Rejections counted by source and reason since a time (default: 24 hours ago).",
                vec![since_param("Count from this time (default: 24 hours ago).")],
                None,
                with_errors(
                    json!({"200": ok("The counts.", json!({
                        "type": "object",
                        "required": ["since", "total", "counts"],
                        "properties": {
                            "since": time("Counted from."),
                            "total": {"type": "integer", "minimum": 0},
                            "counts": {"type": "array", "items": {
                                "type": "object",
                                "required": ["sourceId", "reason", "count"],
                                "properties": {
                                    "sourceId": {"type": "string"},
                                    "reason": {"type": "string"},
                                    "count": {"type": "integer", "minimum": 0},
                                },
                            }},
                        },
                    }))}),
                    &["400", "401", "503"],
                ),
                None,
            ),
        ),
    ]
}

fn ingest_ops() -> Vec<Operation> {
    let source_param = || {
        path_param(
            "source_id",
            "The source's id, from its `ingestUrl`.",
            json!({"type": "string"}),
        )
    };
    let refusals = |extra: &str| {
        let error = |d: &str| ok(d, schema_ref("Error"));
        json!({
            "400": error("`malformed_body` or `unsupported_message`."),
            "401": error(&format!("`missing_signature`, `signature_mismatch`, `stale_timestamp` or `key_unavailable`{extra}.")),
            "403": error("The payload names a partner the source may not speak for (`unknown_partner`)."),
            "404": error("No such source (`unknown_source`)."),
            "413": error("The body is over the size limit (`too_large`)."),
            "500": error("The source is misconfigured (`source_misconfigured`) or its secrets cannot be opened (`internal`)."),
            "503": response_ref("Unavailable"),
        })
    };
    let received = |description: &str| {
        let mut responses = refusals("");
        responses["200"] = ok(description, schema_ref("IngestAnswer"));
        responses
    };
    let ingest_body = || {
        json!({
            "required": false,
            "content": {"application/json": {
                "schema": {"description": "The marketplace's webhook body, as it signed it."},
                "example": {"source": {"eventType": "PO_CREATED", "eventVersion": "V1",
                    "eventTime": "2025-01-01T00:00:00.000Z", "eventId": "evt-1"},
                    "payload": {"purchaseOrderId": "1234567890123", "sellerId": "seller-1"}},
            }},
        })
    };
    let signed = "Verified in the source's marketplace scheme before anything else is read; a \
        handshake (SNS subscription confirmation, Etsy's challenge) is answered here and stores \
        nothing. An event is stored with its deliveries and only then answered 200 (`accepted` \
        or `duplicate`). Every refusal is recorded as a rejection.";
    vec![
        (
            "/ingest/{source_id}",
            "post",
            op(
                "ingest",
                "ingest",
                "Receive a marketplace webhook",
                signed,
                vec![source_param()],
                Some(ingest_body()),
                received("Accepted, a duplicate, or a handshake's answer."),
                Some(json!([])),
            ),
        ),
        (
            "/ingest/{source_id}",
            "get",
            op(
                "ingestChallenge",
                "ingest",
                "Answer a marketplace's challenge",
                "eBay's `GET ?challenge_code=…` is answered `{\"challengeResponse\": …}`; other \
                 GETs are verified and refused like any unsigned request.",
                vec![
                    source_param(),
                    query(
                        "challenge_code",
                        "eBay's challenge.",
                        json!({"type": "string"}),
                    ),
                ],
                None,
                received("The challenge's answer."),
                Some(json!([])),
            ),
        ),
        (
            "/ingest/{source_id}/{token}",
            "post",
            op(
                "ingestWithToken",
                "ingest",
                "Receive a SellerCenter callback",
                "SellerCenter's form: the URL carries the source's generated token, which the \
                 verifier checks.",
                vec![
                    source_param(),
                    path_param(
                        "token",
                        "The token of the source's `ingestUrl`.",
                        json!({"type": "string"}),
                    ),
                ],
                Some(ingest_body()),
                received("Accepted or a duplicate."),
                Some(json!([])),
            ),
        ),
        (
            "/ingest/{source_id}/oauth/token",
            "post",
            op(
                "ingestOauthToken",
                "ingest",
                "A Walmart source's OAuth token URL",
                "For a `walmart` source in the `bearer` form: the `authUrl` of a Walmart \
                 subscription's `OAUTH` auth. Client credentials (HTTP Basic or form fields) must \
                 be the source's `oauthClientId` option and one of its secrets; the token is \
                 accepted by that source only.",
                vec![source_param()],
                Some(form_body(
                    json!({
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }),
                    json!({"grant_type": "client_credentials", "client_id": "walmart", "client_secret": "the-client-secret"}),
                )),
                json!({
                    "200": ok("A token for this source.", schema_ref("Token")),
                    "401": ok("Wrong credentials or `grant_type` (`invalid_client`).", schema_ref("Error")),
                    "404": ok("No Walmart OAuth source here (`unknown_source`).", schema_ref("Error")),
                    "500": response_ref("Internal"),
                }),
                Some(json!([{"clientBasic": []}, {}])),
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Schemas.

fn schemas() -> Value {
    let mut all = Map::new();
    for part in [
        core_schemas(),
        subscription_schemas(),
        event_schemas(),
        source_schemas(),
    ] {
        if let Value::Object(map) = part {
            all.extend(map);
        }
    }
    Value::Object(all)
}

fn core_schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": false,
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": false,
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable, snake_case."},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The input at fault, when one is."},
                },
            }},
            "example": {"error": {"code": "invalid_field", "message": "status must be ACTIVE or INACTIVE", "field": "status"}},
        },
        "Token": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer", "description": "Seconds."},
            },
        },
        "EventTypeList": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": {
                "type": "object",
                "required": ["eventType", "eventVersion", "resourceName", "description", "family", "schema"],
                "properties": {
                    "eventType": {"type": "string"},
                    "eventVersion": {"type": "string"},
                    "resourceName": {"type": "string"},
                    "description": {"type": "string"},
                    "family": {"type": "string", "enum": ["walmart", "sellercenter", "normalized", "operational"]},
                    "schema": {"type": "object", "description": "The JSON schema a payload of this type must match."},
                },
            }}},
        },
    })
}

/// The event types of the catalog, and their resources.
fn catalog_names() -> (Vec<&'static str>, Vec<&'static str>) {
    let types: Vec<&str> = catalog::all().iter().map(|t| t.event_type).collect();
    let mut resources: Vec<&str> = catalog::all().iter().map(|t| t.resource_name).collect();
    resources.sort_unstable();
    resources.dedup();
    (types, resources)
}

fn subscription_schemas() -> Value {
    let (event_types, resources) = catalog_names();
    let retry_types = json!(["walmart", "sellercenter", "exponential", "delays"]);
    json!({
        "AuthDetails": {
            "type": "object",
            "description": "How a delivery authenticates to its endpoint (Walmart's shape). In answers, credentials are `********`.",
            "required": ["authMethod"],
            "additionalProperties": false,
            "properties": {
                "authMethod": {"type": "string", "enum": ["BASIC_AUTH", "HMAC", "OAUTH"]},
                "userName": {"type": "string"},
                "password": {"type": "string"},
                "authHeaderName": {"type": "string"},
                "authUrl": {"type": "string"},
                "clientId": {"type": "string"},
                "clientSecret": {"type": "string"},
            },
        },
        "RetryPolicy": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": retry_types},
                "baseSeconds": {"type": "number"},
                "factor": {"type": "number"},
                "jitter": {"type": "number"},
                "capSeconds": {"type": "number"},
                "giveUpAfterSeconds": {"type": "number"},
                "delaysSeconds": {"type": "array", "items": {"type": "number"}},
            },
        },
        "RetryPolicyInput": {
            "description": "A name, or an object with `type` and that policy's fields.",
            "anyOf": [
                {"type": "string", "enum": ["walmart", "sellercenter", "exponential"]},
                schema_ref("RetryPolicy"),
            ],
        },
        "RateLimit": {
            "type": "object",
            "required": ["perSecond", "burst"],
            "properties": {"perSecond": {"type": "number"}, "burst": {"type": "number"}},
        },
        "RateLimitInput": {
            "description": "Deliveries per second (bursts of that many), or `{perSecond, burst}`: 0 < perSecond <= 10000, 1 <= burst <= 100000.",
            "anyOf": [
                {"type": "number"},
                {"type": "object", "required": ["perSecond"],
                 "properties": {"perSecond": {"type": "number"}, "burst": {"type": "number"}}},
            ],
        },
        "CircuitBreaker": {
            "type": "object",
            "required": ["failureThreshold", "probeIntervalSeconds"],
            "additionalProperties": false,
            "properties": {
                "failureThreshold": {"type": "integer", "minimum": 1, "maximum": 10000},
                "probeIntervalSeconds": {"type": "integer", "minimum": 1, "maximum": 86400},
            },
        },
        "Ordering": {"type": "string", "enum": ["none", "resource"]},
        "SubscriptionStatus": {"type": "string", "enum": ["ACTIVE", "INACTIVE"]},
        "SubscriptionInput": {
            "type": "object",
            "required": ["eventType", "resourceName", "eventUrl"],
            "additionalProperties": false,
            "properties": {
                "eventType": {"type": "string", "enum": event_types, "description": "A native type or topic of `GET /v3/webhooks/eventTypes`."},
                "eventVersion": {"type": "string", "description": "Default: the type's version."},
                "resourceName": {"type": "string", "enum": resources, "description": "The type's resource."},
                "eventUrl": {"type": "string", "format": "uri"},
                "status": schema_ref("SubscriptionStatus"),
                "authDetails": schema_ref("AuthDetails"),
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
                "retryPolicy": schema_ref("RetryPolicyInput"),
                "partnerId": {"type": "string"},
                "ordering": schema_ref("Ordering"),
                "maxInFlight": {"type": "integer", "minimum": 1, "maximum": 10000},
                "rateLimit": schema_ref("RateLimitInput"),
                "circuitBreaker": schema_ref("CircuitBreaker"),
                "autoDisableAfterSeconds": {"type": "integer", "minimum": 60, "maximum": 7_776_000},
                "envelope": schema_ref("Envelope"),
            },
        },
        "CreateSubscriptions": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 100,
                                      "items": schema_ref("SubscriptionInput")}},
        },
        "CreatedSubscriptions": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": {
                "type": "object",
                "required": ["eventType", "subscriptionId", "partnerId", "eventVersion", "resourceName", "status", "signingSecret"],
                "properties": {
                    "eventType": {"type": "string"},
                    "subscriptionId": uuid("The new subscription."),
                    "partnerId": {"type": "string"},
                    "eventVersion": {"type": "string"},
                    "resourceName": {"type": "string"},
                    "status": schema_ref("SubscriptionStatus"),
                    "signingSecret": {"type": "string", "pattern": "^whsec_", "description": "Shown only here."},
                },
            }}},
        },
        "Envelope": {
            "type": "string",
            "enum": ["walmart", "sellercenter", "normalized"],
            "description": "The body of deliveries: Walmart's envelope (default), SellerCenter's \
                `{\"event\",\"payload\"}` (success on HTTP 200 only), or Walmart's envelope always \
                carrying the normalized form.",
        },
        "Subscription": {
            "type": "object",
            "required": ["subscriptionId", "partnerId", "eventType", "eventVersion", "resourceName",
                         "eventUrl", "headers", "status", "retryPolicy", "ordering", "maxInFlight",
                         "rateLimit", "circuitBreaker", "autoDisableAfterSeconds", "envelope",
                         "disabledReason", "createdAt", "updatedAt"],
            "properties": {
                "subscriptionId": uuid("The subscription."),
                "partnerId": {"type": "string"},
                "eventType": {"type": "string"},
                "eventTypes": {"type": "array", "items": {"type": "string"}, "description": "Present when it has several."},
                "eventVersion": {"type": "string"},
                "resourceName": {"type": "string"},
                "eventUrl": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "authDetails": schema_ref("AuthDetails"),
                "status": schema_ref("SubscriptionStatus"),
                "retryPolicy": schema_ref("RetryPolicy"),
                "ordering": schema_ref("Ordering"),
                "maxInFlight": {"type": ["integer", "null"], "minimum": 1},
                "rateLimit": nullable(schema_ref("RateLimit")),
                "circuitBreaker": schema_ref("CircuitBreaker"),
                "autoDisableAfterSeconds": {"type": "integer"},
                "envelope": schema_ref("Envelope"),
                "disabledReason": nullable_string("Why the hub set it INACTIVE."),
                "createdAt": time("Created."),
                "updatedAt": time("Last changed."),
            },
        },
        "SubscriptionList": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": schema_ref("Subscription")}},
        },
        "SubscriptionPatch": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "eventUrl": {"type": "string", "format": "uri"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
                "authDetails": nullable(schema_ref("AuthDetails")),
                "status": schema_ref("SubscriptionStatus"),
                "eventVersion": {"type": "string"},
                "retryPolicy": schema_ref("RetryPolicyInput"),
                "ordering": schema_ref("Ordering"),
                "maxInFlight": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000},
                "rateLimit": nullable(schema_ref("RateLimitInput")),
                "circuitBreaker": schema_ref("CircuitBreaker"),
                "autoDisableAfterSeconds": {"type": "integer", "minimum": 60, "maximum": 7_776_000},
                "envelope": schema_ref("Envelope"),
                "disabledReason": {"description": "Read-only; ignored."},
                "createdAt": {"description": "Read-only; ignored."},
                "updatedAt": {"description": "Read-only; ignored."},
                "subscriptionId": {"description": "Read-only: may only be sent back unchanged."},
                "partnerId": {"description": "Read-only: may only be sent back unchanged."},
                "eventType": {"description": "Read-only: may only be sent back unchanged."},
                "eventTypes": {"description": "Read-only: may only be sent back unchanged."},
                "resourceName": {"description": "Read-only: may only be sent back unchanged."},
            },
        },
        "TestNotification": {
            "type": "object",
            "required": ["eventType", "resourceName", "eventUrl"],
            "additionalProperties": false,
            "properties": {
                "eventType": {"type": "string", "enum": event_types},
                "eventVersion": {"type": "string"},
                "resourceName": {"type": "string", "enum": resources, "description": "The type's resource."},
                "eventUrl": {"type": "string", "format": "uri"},
                "authDetails": schema_ref("AuthDetails"),
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
                "partnerId": {"type": "string"},
            },
        },
        "ReplayRequest": {
            "type": "object",
            "required": ["since"],
            "additionalProperties": false,
            "properties": {
                "since": time("From (inclusive)."),
                "until": time("To (exclusive); default now."),
            },
        },
        "SubscriptionHealth": {
            "type": "object",
            "required": ["subscriptionId", "status", "disabledReason", "breaker", "breakerUntil",
                         "failingSince", "paced", "pacedUntil", "backlog", "oldestPendingAt",
                         "window", "lastSuccessAt", "lastFailureAt", "consecutiveFailures",
                         "attempts", "successRate", "latencyP50Ms", "latencyP95Ms"],
            "properties": {
                "subscriptionId": uuid("The subscription."),
                "status": schema_ref("SubscriptionStatus"),
                "disabledReason": nullable_string("Why the hub set it INACTIVE."),
                "breaker": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "breakerUntil": nullable_time("While in the future, the breaker is open."),
                "failingSince": nullable_time("Start of the current failure streak."),
                "paced": {"type": "boolean"},
                "pacedUntil": nullable_time("A 429's hold, while it lasts."),
                "backlog": {"type": "integer", "minimum": 0},
                "oldestPendingAt": nullable_time("The oldest pending delivery's creation."),
                "window": {"const": "24h"},
                "lastSuccessAt": nullable_time("In the window."),
                "lastFailureAt": nullable_time("In the window."),
                "consecutiveFailures": {"type": "integer", "minimum": 0},
                "attempts": {"type": "integer", "minimum": 0},
                "successRate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "latencyP50Ms": {"type": ["integer", "null"], "minimum": 0},
                "latencyP95Ms": {"type": ["integer", "null"], "minimum": 0},
            },
        },
    })
}

fn event_properties() -> Value {
    json!({
        "eventId": uuid("The hub's id of the event."),
        "publicEventId": {"type": "string", "description": "The publisher's `eventId` or the marketplace's id (else the hub's)."},
        "origin": {"type": "string", "description": "The source id, or `publish:<partner>`."},
        "partnerId": {"type": "string"},
        "eventType": {"type": "string"},
        "eventVersion": {"type": "string"},
        "topic": nullable_string("The normalized topic, when there is one."),
        "occurredAt": time("When it happened."),
        "receivedAt": time("When the hub stored it."),
        "payload": {"description": "The event's payload."},
        "normalized": {"type": ["object", "null"], "description": "The cross-marketplace form of a received event."},
    })
}

fn delivery_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "eventId", "subscriptionId", "partnerId", "status", "attempts",
                     "nextAttemptAt", "firstAttemptAt", "lastAttemptAt", "lastStatusCode",
                     "lastError", "createdAt", "updatedAt"],
        "properties": {
            "id": uuid("The delivery, also every attempt's `webhook-id`."),
            "eventId": uuid("The event."),
            "subscriptionId": uuid("The subscription."),
            "partnerId": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "nextAttemptAt": nullable_time("When it is due, while pending."),
            "firstAttemptAt": nullable_time("First attempt."),
            "lastAttemptAt": nullable_time("Last attempt."),
            "lastStatusCode": {"type": ["integer", "null"]},
            "lastError": nullable_string("The last attempt's error."),
            "createdAt": time("Created."),
            "updatedAt": time("Last changed."),
        },
    })
}

fn event_schemas() -> Value {
    let required = json!([
        "eventId",
        "publicEventId",
        "origin",
        "partnerId",
        "eventType",
        "eventVersion",
        "topic",
        "occurredAt",
        "receivedAt",
        "payload",
        "normalized"
    ]);
    let mut detail_props = event_properties();
    detail_props["raw"] = json!({
        "description": "The body as received (received events only): text when it is UTF-8, else base64.",
        "anyOf": [
            {"type": "null"},
            {"type": "object", "required": ["encoding", "body"], "properties": {
                "encoding": {"type": "string", "enum": ["utf-8", "base64"]},
                "body": {"type": "string"},
            }},
        ],
    });
    detail_props["deliveries"] = json!({"type": "array", "items": schema_ref("Delivery")});
    let mut detail_required = required.clone();
    if let Some(list) = detail_required.as_array_mut() {
        list.push(json!("raw"));
        list.push(json!("deliveries"));
    }
    // The detail's `attempts` is the list of attempts, where the summary has their number.
    let mut delivery_detail = delivery_schema();
    delivery_detail["description"] = json!("A delivery with its attempts, oldest first.");
    delivery_detail["properties"]["attempts"] =
        json!({"type": "array", "items": schema_ref("Attempt")});
    let (event_types, _) = catalog_names();
    json!({
        "PublishRequest": {
            "type": "object",
            "required": ["eventType", "payload"],
            "additionalProperties": false,
            "properties": {
                "eventType": {"type": "string", "enum": event_types, "description": "A type of `GET /v3/webhooks/eventTypes`."},
                "eventVersion": {"type": "string", "description": "Default: the type's version."},
                "partnerId": {"type": "string", "description": "Default: `WM_PARTNER.ID`, else the client's only partner."},
                "eventId": {"type": "string", "minLength": 1, "maxLength": 255, "description": "The publisher's id; repeating it creates nothing."},
                "occurredAt": time("When it happened; default now."),
                "resource": {
                    "type": "object",
                    "required": ["type", "id"],
                    "additionalProperties": false,
                    "description": "What it is about, for `ordering: resource` subscriptions (255 characters at most together).",
                    "properties": {"type": {"type": "string", "minLength": 1}, "id": {"type": "string", "minLength": 1}},
                },
                "payload": {"description": "Must match the type's schema."},
            },
        },
        "PublishAccepted": {
            "type": "object",
            "required": ["eventId", "status", "deliveries"],
            "properties": {
                "eventId": uuid("The stored event."),
                "status": {"const": "accepted"},
                "deliveries": {"type": "integer", "minimum": 0},
            },
        },
        "PublishDuplicate": {
            "type": "object",
            "required": ["eventId", "status"],
            "properties": {
                "eventId": uuid("The event stored first."),
                "status": {"const": "duplicate"},
            },
        },
        "Event": {"type": "object", "required": required, "properties": event_properties()},
        "EventDetail": {"type": "object", "required": detail_required, "properties": detail_props},
        "EventList": {
            "type": "object",
            "required": ["events", "nextBefore"],
            "properties": {
                "events": {"type": "array", "items": schema_ref("Event")},
                "nextBefore": {"type": ["string", "null"], "format": "uuid", "description": "The next page's `before`, when the page is full."},
            },
        },
        "OutcomeRequest": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": false,
            "properties": {
                "status": {"type": "string", "enum": ["processed", "failed"]},
                "reason": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[a-z0-9_]+$"},
                "message": {"type": "string", "maxLength": 1000},
            },
        },
        "Outcome": {
            "type": "object",
            "required": ["outcomeId", "eventId", "partnerId", "status", "reason", "message", "clientId", "reportedAt"],
            "properties": {
                "outcomeId": uuid("The report."),
                "eventId": uuid("The event."),
                "partnerId": {"type": "string"},
                "status": {"type": "string"},
                "reason": nullable_string("The machine-readable reason."),
                "message": nullable_string("The consumer's message."),
                "clientId": {"type": "string", "description": "The client that reported."},
                "reportedAt": time("When it was reported."),
            },
        },
        "Delivery": delivery_schema(),
        "Attempt": {
            "type": "object",
            "required": ["id", "deliveryId", "attemptedAt", "succeeded", "statusCode", "latencyMs",
                         "errorClass", "errorMessage", "responseExcerpt"],
            "properties": {
                "id": uuid("The attempt."),
                "deliveryId": uuid("Its delivery."),
                "attemptedAt": time("When."),
                "succeeded": {"type": "boolean"},
                "statusCode": {"type": ["integer", "null"]},
                "latencyMs": {"type": "integer", "minimum": 0},
                "errorClass": nullable_string("`http_status`, `timeout`, `connect`, `refused_target`, `auth` or `request`."),
                "errorMessage": nullable_string("What went wrong."),
                "responseExcerpt": nullable_string("The first 4 KiB of the answer."),
            },
        },
        "DeliveryDetail": delivery_detail,
        "DeliveryList": {
            "type": "object",
            "required": ["deliveries", "nextBefore"],
            "properties": {
                "deliveries": {"type": "array", "items": schema_ref("Delivery")},
                "nextBefore": {"type": ["string", "null"], "format": "uuid"},
            },
        },
        "Rejection": {
            "type": "object",
            "required": ["id", "sourceId", "reason", "statusCode", "message", "remoteAddr",
                         "bodySha256", "bodySize", "receivedAt"],
            "properties": {
                "id": uuid("The rejection."),
                "sourceId": {"type": "string", "description": "As the URL named it."},
                "reason": {"type": "string"},
                "statusCode": {"type": "integer"},
                "message": {"type": "string"},
                "remoteAddr": nullable_string("The sender's address."),
                "bodySha256": {"type": "string"},
                "bodySize": {"type": "integer", "minimum": 0},
                "receivedAt": time("When."),
            },
        },
        "IngestAnswer": {
            "type": "object",
            "description": "`{\"status\": \"accepted\"|\"duplicate\", \"eventId\"}` for an event; a handshake's own JSON answer otherwise (`{\"status\": \"confirming\"}`, `{\"challengeResponse\"}`, `{\"challenge\"}`).",
            "properties": {
                "status": {"type": "string"},
                "eventId": uuid("The stored event."),
            },
        },
    })
}

fn source_schemas() -> Value {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let secret_input = json!({
        "type": "object",
        "required": ["value"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "description": "Default: its position, from 1."},
            "value": {"type": "string", "minLength": 1, "maxLength": 8192, "description": "`********` keeps the stored secret of that id."},
        },
    });
    json!({
        "SourceSecretInput": secret_input,
        "SourceCreate": {
            "type": "object",
            "required": ["kind", "partners"],
            "additionalProperties": false,
            "properties": {
                "kind": {"type": "string", "enum": kinds},
                "name": {"type": "string"},
                "partners": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "secret": {"type": "string", "description": "One secret (id `1`)."},
                "secrets": {"type": "array", "maxItems": 20, "items": schema_ref("SourceSecretInput")},
                "replayWindowSeconds": {"type": "integer", "minimum": 1, "maximum": 86400},
                "options": {"type": "object", "description": "The kind's options (README)."},
            },
        },
        "SourcePatch": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string"},
                "partners": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "secrets": {"type": "array", "minItems": 1, "maxItems": 20, "items": schema_ref("SourceSecretInput")},
                "replayWindowSeconds": {"type": "integer", "minimum": 1, "maximum": 86400},
                "options": {"type": "object"},
            },
        },
        "Source": {
            "type": "object",
            "required": ["sourceId", "kind", "name", "partners", "secrets", "replayWindowSeconds",
                         "options", "ingestUrl", "createdAt", "updatedAt"],
            "properties": {
                "sourceId": uuid("The source."),
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "partners": {"type": "array", "items": {"type": "string"}},
                "secrets": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "value"],
                    "properties": {"id": {"type": "string"}, "value": {"const": "********"}},
                }},
                "replayWindowSeconds": {"type": "integer"},
                "options": {"type": "object"},
                "ingestUrl": {"type": "string", "description": "What to register with the marketplace."},
                "createdAt": time("Created."),
                "updatedAt": time("Last changed."),
            },
        },
    })
}

// ---------------------------------------------------------------------------------------------
// The HTML page.

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Follows a `#/…` reference within the document.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .unwrap_or(value),
        None => value,
    }
}

/// A short name for a schema's type.
fn type_name(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    let base = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    };
    match (
        schema.get("format").and_then(Value::as_str),
        schema.get("enum").and_then(Value::as_array),
    ) {
        (_, Some(values)) => format!(
            "{base}: {}",
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(format), None) => format!("{base} ({format})"),
        (None, None) => base,
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Renders the document as one self-contained HTML page: operations grouped by tag.
pub fn render_html(doc: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let mut html = String::new();
    let title = text(&doc["info"], "title");
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} API</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}\
         code,pre{{font-family:ui-monospace,monospace;font-size:.9em}}\
         pre{{background:#f4f4f4;padding:.6rem;overflow-x:auto}}\
         section.op{{border-top:1px solid #ddd;padding:.5rem 0}}\
         .method{{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}}\
         </style></head><body>\n<h1>{} API <small>{}</small></h1>\n<p>{}</p>\n\
         <p>The machine-readable document: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>\n",
        escape(&title),
        escape(&title),
        escape(&text(&doc["info"], "version")),
        escape(&text(&doc["info"], "description")),
        escape(&text(doc, "openapi")),
    );
    let tags = doc["tags"].as_array().cloned().unwrap_or_default();
    html.push_str("<nav><ul>\n");
    for tag in &tags {
        let name = text(tag, "name");
        let _ = writeln!(html, "<li><a href=\"#tag-{0}\">{0}</a></li>", escape(&name));
    }
    html.push_str("</ul></nav>\n");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for tag in &tags {
        let name = text(tag, "name");
        let _ = write!(
            html,
            "<h2 id=\"tag-{0}\">{0}</h2>\n<p>{1}</p>\n",
            escape(&name),
            escape(&text(tag, "description"))
        );
        for (path, item) in &paths {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let in_tag = operation["tags"]
                    .as_array()
                    .and_then(|t| t.first())
                    .and_then(Value::as_str)
                    == Some(name.as_str());
                if in_tag {
                    render_operation(&mut html, doc, path, method, operation);
                }
            }
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn render_operation(html: &mut String, doc: &Value, path: &str, method: &str, operation: &Value) {
    let text = |key: &str| operation.get(key).and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        html,
        "<section class=\"op\" id=\"{}\">\n<h3><span class=\"method\">{}</span> <code>{}</code></h3>\n\
         <p><strong>{}</strong> — {}</p>\n",
        escape(text("operationId")),
        escape(method),
        escape(path),
        escape(text("summary")),
        escape(text("description")),
    );
    let security = operation.get("security").unwrap_or(&doc["security"]);
    let schemes: Vec<String> = security
        .as_array()
        .map(|alternatives| {
            alternatives
                .iter()
                .filter_map(Value::as_object)
                .map(|req| {
                    if req.is_empty() {
                        "none".to_string()
                    } else {
                        req.keys().cloned().collect::<Vec<_>>().join(" + ")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let auth = if schemes.is_empty() {
        "none".to_string()
    } else {
        schemes.join(" or ")
    };
    let _ = writeln!(html, "<p>Authentication: {}</p>", escape(&auth));
    if let Some(parameters) = operation.get("parameters").and_then(Value::as_array) {
        html.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>\n",
        );
        for p in parameters {
            let p = resolve(doc, p);
            let get = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(get("name")),
                escape(get("in")),
                escape(&type_name(&p["schema"])),
                if required { "yes" } else { "no" },
                escape(get("description")),
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(content) = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
    {
        for (media, body) in content {
            let schema = type_name(&body["schema"]);
            let _ = writeln!(
                html,
                "<p>Request body (<code>{}</code>): {}</p>",
                escape(media),
                escape(&schema)
            );
            if let Some(example) = body.get("example") {
                let shown = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = writeln!(html, "<pre>{}</pre>", escape(&shown));
            }
        }
    }
    html.push_str("<p>Responses:</p>\n<ul>\n");
    if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
        for (code, response) in responses {
            let response = resolve(doc, response);
            let schema = response
                .pointer("/content/application~1json/schema")
                .map(type_name)
                .unwrap_or_default();
            let _ = writeln!(
                html,
                "<li><code>{}</code> {} <em>{}</em></li>",
                escape(code),
                escape(
                    response
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
                escape(&schema),
            );
        }
    }
    html.push_str("</ul>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    /// Routes that are not part of the JSON API: this document, its page, metrics, and the HTML
    /// console.
    fn undocumented(path: &str) -> bool {
        matches!(path, "/" | "/openapi.json" | "/docs" | "/metrics")
            || ["/console", "/login", "/logout", "/assets"]
                .iter()
                .any(|prefix| path.starts_with(prefix))
    }

    fn pretty(doc: &Value) -> String {
        let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
        text.push('\n');
        text
    }

    #[test]
    fn openapi_committed_document_is_current() {
        let generated = pretty(&document());
        if std::env::var_os("SWITCHYARD_UPDATE_OPENAPI").is_some() {
            std::fs::write(COMMITTED, &generated).expect("write docs/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not what document() builds; regenerate it with \
             SWITCHYARD_UPDATE_OPENAPI=1 cargo test -p switchyard-server openapi"
        );
    }

    #[test]
    fn openapi_documents_every_route_of_the_router_with_its_methods() {
        let routes = crate::route_table::declared_routes();
        assert!(routes.len() >= 20, "the route parser found {routes:?}");
        let doc = document();
        let mut missing = Vec::new();
        for (path, methods) in &routes {
            if undocumented(path) {
                continue;
            }
            assert!(!methods.is_empty(), "no method found for {path}");
            for method in methods {
                if doc["paths"][path].get(method).is_none() {
                    missing.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(missing.is_empty(), "not in the document: {missing:?}");
        // Announced in the document ahead of its route.
        assert!(doc["paths"]["/api/v1/events/{id}/outcome"]["post"].is_object());
    }

    #[test]
    fn openapi_route_parser_reads_chained_methods() {
        let source = r#"
            .route("/a", get(x::get_one).patch(x::update).delete(x::delete))
            .route(
                "/b/{id}",
                post(api::publish).get(api::list_events),
            )
            .route("/console", get(console::index))
        "#;
        let routes = crate::route_table::routes_in_source(source);
        let names = |p: &str| routes[p].iter().cloned().collect::<Vec<_>>();
        assert_eq!(names("/a"), ["delete", "get", "patch"]);
        assert_eq!(names("/b/{id}"), ["get", "post"]);
        assert!(undocumented("/console"));
    }

    fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn openapi_document_has_the_shape_of_openapi_3_1() {
        let doc = document();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1."))
        );
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
        }

        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("schemes");
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        let mut ids = BTreeSet::new();
        let mut linked = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with('/'), "{path}");
            let item = item.as_object().expect("path item");
            assert!(!item.is_empty(), "{path} has no operation");
            let templated: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_string)
                .collect();
            for (method, operation) in item {
                assert!(METHODS.contains(&method.as_str()), "{method} {path}");
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                assert!(operation["summary"].is_string(), "{id}: summary");
                let tag = operation["tags"][0].as_str().expect("tag");
                assert!(tags.contains(tag), "{id}: undeclared tag {tag}");
                let responses = operation["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|code| code.starts_with('2')),
                    "{id}: no success answer"
                );
                for (code, response) in responses {
                    assert!(
                        code.len() == 3 && code.parse::<u16>().is_ok(),
                        "{id}: {code}"
                    );
                    let response = resolve(&doc, response);
                    assert!(response["description"].is_string(), "{id} {code}");
                    for link in response["links"]
                        .as_object()
                        .into_iter()
                        .flat_map(|l| l.values())
                    {
                        linked.push(link["operationId"].as_str().expect("link").to_string());
                    }
                    assert!(
                        response
                            .pointer("/content/application~1json/schema")
                            .is_some(),
                        "{id} {code}: no JSON schema"
                    );
                }
                let params: Vec<&Value> = operation["parameters"]
                    .as_array()
                    .map(|p| p.iter().collect())
                    .unwrap_or_default();
                let in_path: BTreeSet<String> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect();
                assert_eq!(in_path, templated, "{id}: path parameters");
                for p in &params {
                    assert!(
                        ["path", "query", "header"].contains(&p["in"].as_str().unwrap_or("")),
                        "{id}"
                    );
                    assert!(p["schema"].is_object(), "{id}: parameter schema");
                }
                if let Some(body) = operation.get("requestBody") {
                    let content = body["content"].as_object().expect("content");
                    for (media, m) in content {
                        assert!(m["schema"].is_object(), "{id} {media}: schema");
                        assert!(m.get("example").is_some(), "{id} {media}: example");
                    }
                }
                let security = operation.get("security").unwrap_or(&doc["security"]);
                for requirement in security.as_array().expect("security") {
                    for scheme in requirement.as_object().expect("requirement").keys() {
                        assert!(schemes.contains_key(scheme), "{id}: scheme {scheme}");
                    }
                }
            }
        }
        for target in linked {
            assert!(ids.contains(&target), "a link names no operation {target}");
        }
    }

    #[test]
    fn openapi_docs_page_lists_every_operation_escaped() {
        let doc = document();
        let page = render_html(&doc);
        for item in doc["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("item").values() {
                let id = operation["operationId"].as_str().expect("id");
                assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
            }
        }
        assert!(!page.contains("<script"));
        assert!(
            !page.contains("<link") && !page.contains(" src="),
            "no outside asset"
        );
        // Text is escaped: the Error example's quotes and the arrows of descriptions.
        assert!(page.contains("&quot;"));
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
