//! The use cases under the HTTP layer, driven directly: no request, no router, the hub's state
//! and typed input. What they do must be what the HTTP API shows afterwards.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use switchyard_core::Clock;
use switchyard_marketplaces::{Kind, SignedRequest};
use switchyard_server::services::receive_webhook::{self, InboundWebhook, Receipt};

use crate::helpers::*;

fn header_map(signed: &SignedRequest) -> HeaderMap {
    signed
        .headers
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

async fn receive(
    app: &TestApp,
    source: &str,
    signed: &SignedRequest,
) -> Result<Receipt, switchyard_server::error::AppError> {
    receive_webhook::receive(
        &app.state,
        InboundWebhook {
            source_ref: source,
            url_token: None,
            method: signed.method,
            query: "",
            headers: &header_map(signed),
            body: &signed.body,
            remote: None,
            started: Instant::now(),
        },
    )
    .await
}

#[tokio::test]
async fn a_webhook_received_without_http_is_stored_deduplicated_delivered_or_refused_and_recorded()
{
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let token = app.admin_token().await;
    app.subscribe(
        &token,
        json!({"eventType": "PO_CREATED", "resourceName": "ORDER", "partnerId": "seller-1",
               "eventUrl": sink.hook_url()}),
    )
    .await;
    let (walmart, _) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "walmart-secret"}],
    }))
    .await;
    let now = app.clock.now();
    let good = sign(
        Kind::Walmart,
        "walmart-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-31",
        "evt-31",
        now,
    );

    let Ok(Receipt::Accepted { event_id }) = receive(&app, &walmart, &good).await else {
        panic!("a signed webhook is accepted");
    };
    let Ok(Receipt::Duplicate { event_id: again }) = receive(&app, &walmart, &good).await else {
        panic!("the same webhook again is a duplicate");
    };
    assert_eq!(again, event_id, "a duplicate names the stored event");

    // The API shows the event, and the subscriber gets it once.
    let shown = app.get(&format!("/api/v1/events/{event_id}"), &token).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["eventType"], "PO_CREATED");
    eventually("the receiver gets the event", || async {
        sink.hook_count() == 1
    })
    .await;
    assert!(String::from_utf8_lossy(&sink.hooks()[0].body).contains("PO-31"));

    // A forged one is refused with the error the HTTP layer would answer, and recorded.
    let forged = sign(
        Kind::Walmart,
        "not-the-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-32",
        "evt-32",
        now,
    );
    let Err(refused) = receive(&app, &walmart, &forged).await else {
        panic!("a forged webhook is refused");
    };
    assert_eq!(refused.status, 401);
    let rejections = app.get("/api/v1/rejections", &token).await;
    let listed = rejections.body["rejections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{}", rejections.body);
    assert_eq!(listed[0]["reason"], refused.code);
    assert_eq!(listed[0]["sourceId"], walmart.as_str());
    let events = app.get("/api/v1/events", &token).await;
    assert_eq!(
        events.body["events"].as_array().map(Vec::len),
        Some(1),
        "nothing else stored"
    );

    // A source that does not exist.
    let Err(unknown) = receive(&app, "not-a-source", &good).await else {
        panic!("an unknown source is refused");
    };
    assert_eq!(
        (unknown.status.as_u16(), unknown.code),
        (404, "unknown_source")
    );
}
