//! The OpenAPI 3.1 document, derived from the code: the schemas from the request and answer
//! types (`utoipa::ToSchema`), the operations from the handlers' `#[utoipa::path]` and the router
//! they are mounted on ([`crate::routes::api_routes`], a `utoipa_axum::OpenApiRouter`: a route is
//! in the document because it is in the router, never by a second list). What no type says is
//! here: the document's title and tags, the security schemes, the error answers the operations
//! share, and which operations an answer's id feeds (its links, for clients and for
//! schemathesis's stateful phase).
//!
//! `docs/openapi.json` is this document, committed; a test fails when they differ
//! (`SWITCHYARD_UPDATE_OPENAPI=1 cargo test -p switchyard-server openapi` rewrites it).

mod page;

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, RefOr};

use crate::error::ErrorOut;

pub use page::render_html;

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);
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

/// The OpenAPI 3.1 document of every route of the JSON API.
pub fn document() -> Value {
    DOCUMENT.clone()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "Walmart Marketplace-compatible subscriptions (`/v3/webhooks`), \
            Switchyard's own API (`/api/v1`: publishing, events, deliveries, replay, sources, \
            rejections), and the endpoints marketplaces send their webhooks to (`/ingest`). \
            Get a bearer token from `POST /v3/token` and send it as `Authorization: Bearer …` \
            or `WM_SEC.ACCESS_TOKEN`. Every error is `{\"error\":{\"code\",\"message\",\"field\"?}}`.",
        license(name = "See the repository", identifier = "LicenseRef-Switchyard"),
    ),
    tags(
        (name = "probes", description = "Liveness and readiness."),
        (name = "token", description = "Client credentials for a bearer token."),
        (name = "webhooks", description = "Walmart's `/v3/webhooks` API: event types, subscriptions, test notifications."),
        (name = "events", description = "Publishing events and reading what was received."),
        (name = "deliveries", description = "Deliveries and their attempts; retrying one."),
        (name = "subscriptions", description = "Switchyard's own subscription operations: replay, secret rotation, health."),
        (name = "sources", description = "Inbound endpoints, one per marketplace connection."),
        (name = "rejections", description = "Refused inbound requests."),
        (name = "sellercenter", description = "SellerCenter's API dialect for webhooks, signed with the user's API key."),
        (name = "performance", description = "Order facts and seller performance notifications."),
        (name = "ingest", description = "Where marketplaces send their webhooks; authenticated by each marketplace's own signature scheme, not by a token."),
    ),
    components(
        // Named by `IntoResponses` impls, which cannot register what they refer to.
        schemas(ErrorOut, crate::routes::sellercenter::SellercenterErrorOut),
        // What a subscriber receives (the document's `webhooks`).
        schemas(
            switchyard_core::envelope::WalmartEnvelope,
            switchyard_core::envelope::Source,
            switchyard_core::envelope::SellercenterEnvelope
        ),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Internal, Unavailable),
    ),
    security(("bearerAuth" = []), ("wmAccessToken" = [])),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// The document: [`ApiDoc`] with the router's operations, then what spans operations.
fn build() -> Value {
    let (_, operations) = crate::routes::api_routes().split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(operations);
    let mut doc = match serde_json::to_value(&doc) {
        Ok(doc) => doc,
        Err(e) => panic!("the OpenAPI document does not serialize: {e}"),
    };
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut())
        {
            // `security(())` is "no authentication": say it as OpenAPI does, an empty list.
            if operation["security"] == json!([{}]) {
                operation["security"] = json!([]);
            }
        }
    }
    add_links(&mut doc);
    doc["webhooks"] = delivered();
    doc
}

/// What the hub sends a subscriber (OpenAPI 3.1 `webhooks`): the envelope, schema derived from
/// the type that writes it, and the Standard Webhooks headers.
fn delivered() -> Value {
    json!({
        "delivery": {"post": {
            "summary": "A delivery to a subscription's eventUrl",
            "description": "The envelope the subscription's `envelope` names (`walmart` and `normalized`: `DeliveredEnvelope`; `sellercenter`: `DeliveredSellercenterBody`), unless its `transform` rewrote it. Every body carries `resourceVersion`, the event's place in the hub's log: for one resource a later event's is larger. Retries keep `webhook-id`; a `coalesce` subscription receives only the latest pending state of a resource.",
            "operationId": "receiveDelivery",
            "parameters": [
                {"in": "header", "name": "webhook-id", "required": true, "schema": {"type": "string"}, "description": "The delivery's id, the same on every retry: dedup on it."},
                {"in": "header", "name": "webhook-timestamp", "required": true, "schema": {"type": "string"}, "description": "Seconds since the epoch when signed."},
                {"in": "header", "name": "webhook-signature", "required": true, "schema": {"type": "string"}, "description": "`v1,<base64 HMAC-SHA256>` over `webhook-id.webhook-timestamp.body` with the subscription's signing secret (two entries while a rotated secret still signs)."},
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/DeliveredEnvelope"},
                {"$ref": "#/components/schemas/DeliveredSellercenterBody"},
                {"description": "What the subscription's transformation returned as payload."}
            ]}}}},
            "responses": {"200": {"description": "Received; any 2xx (SellerCenter's callbacks: 200 only). Anything else, or none, is retried on the subscription's policy."}},
        }},
    })
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `POST /v3/token` (valid 900 seconds)."))
                    .build(),
            )),
        );
        components.add_security_scheme(
            "wmAccessToken",
            RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(
                ApiKeyValue::with_description(
                    "WM_SEC.ACCESS_TOKEN",
                    "The same token in Walmart's header.",
                ),
            ))),
        );
        components.add_security_scheme(
            "clientBasic",
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The API client's id and secret."))
                    .build(),
            )),
        );
    }
}

/// Where an answer's id is (operation, status, the id's place in its body), and the operations
/// taking it, each with the parameter it goes in.
type Link = (
    (&'static str, &'static str, &'static str),
    &'static [(&'static str, &'static str)],
);

/// Which operations an answer's id feeds.
const LINKS: &[Link] = &[
    (
        (
            "createSubscriptions",
            "200",
            "$response.body#/events/0/subscriptionId",
        ),
        &[
            ("getSubscription", "id"),
            ("updateSubscription", "id"),
            ("deleteSubscription", "id"),
            ("replaySubscription", "id"),
            ("rotateSigningSecret", "id"),
            ("subscriptionHealth", "id"),
        ],
    ),
    (
        ("publishEvent", "202", "$response.body#/eventId"),
        &[("getEvent", "id"), ("reportEventOutcome", "id")],
    ),
    (
        ("createSource", "201", "$response.body#/sourceId"),
        &[
            ("getSource", "id"),
            ("updateSource", "id"),
            ("deleteSource", "id"),
            ("ingest", "source_id"),
            ("ingestChallenge", "source_id"),
            ("ingestOauthToken", "source_id"),
        ],
    ),
];

fn add_links(doc: &mut Value) {
    for ((from, status, value), targets) in LINKS {
        let Some(response) = doc["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
            .flat_map(|item| {
                item.as_object_mut()
                    .into_iter()
                    .flat_map(|i| i.values_mut())
            })
            .find(|op| op["operationId"] == *from)
            .and_then(|op| op["responses"].get_mut(*status))
        else {
            panic!("a link starts at {from} {status}, which the document does not have");
        };
        let links: serde_json::Map<String, Value> = targets
            .iter()
            .map(|(operation, parameter)| {
                let mut name = operation.to_string();
                if let Some(first) = name.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                let link = json!({"operationId": operation, "parameters": {*parameter: value}});
                (name, link)
            })
            .collect();
        response["links"] = Value::Object(links);
    }
}

/// An error answer: a `{"error": …}` body ([`ErrorOut`]) described for one operation.
pub fn error_answer(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(utoipa::openapi::Ref::from_schema_name("Error"))),
    )
}

/// The error answers operations share, referenced from the operations as
/// `#/components/responses/<name>`.
macro_rules! shared_error {
    ($name:ident, $description:literal $(, header $header:literal = $header_description:literal)?) => {
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let response = error_answer($description);
                $(
                    let response = response.header(
                        $header,
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(Some(
                                utoipa::openapi::ObjectBuilder::new()
                                    .schema_type(utoipa::openapi::schema::Type::String),
                            ))
                            .description(Some($header_description))
                            .build(),
                    );
                )?
                (stringify!($name), response.build().into())
            }
        }
    };
}

shared_error!(
    BadRequest,
    "Invalid input: `malformed_body`, `invalid_field`, `invalid_query`, or a code naming the problem; `field` says where."
);
shared_error!(
    Unauthorized,
    "No token, or an invalid or expired one (`unauthorized`, `invalid_token`).",
    header "WWW-Authenticate" = "`Bearer`"
);
shared_error!(
    Forbidden,
    "The client lacks the scope (`insufficient_scope`) or does not manage the partner (`partner_not_managed`)."
);
shared_error!(
    NotFound,
    "No such object, or one of another tenant (`not_found`)."
);
shared_error!(Conflict, "The object already exists (`conflict`).");
shared_error!(TooLarge, "The body is over the size limit (`too_large`).");
shared_error!(
    Internal,
    "An unexpected failure (`internal`); the server log has the details."
);
shared_error!(
    Unavailable,
    "The database did not commit (`store_unavailable`), the hub is stopping (`shutting_down`), or it is serving as many requests as it can and this one waited past the queueing deadline (`overloaded`); nothing was stored, try again after `Retry-After` seconds.",
    header "Retry-After" = "Seconds to wait."
);

#[cfg(test)]
mod tests;
