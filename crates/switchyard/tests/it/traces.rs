//! Traces an operator can follow: the real binary with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! a collector on 127.0.0.1 that decodes what it receives with the official OTLP protobuf
//! definitions (the `opentelemetry-proto` crate, generated from them). One webhook that arrives
//! with a `traceparent` is followed from ingest to a sink's 200: every stage span is in the
//! sender's trace, each under the one it belongs to, the sink gets a `traceparent` of that trace
//! naming the attempt, and the attempt's row records the trace id.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::restart::{admin_token, free_port, start_hub_with, subscribe};

/// One exported span, as the collector decoded it.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
    service: String,
}

impl Exported {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Collected = Arc<Mutex<Vec<Exported>>>;

/// `POST /v1/traces` (OTLP/HTTP, protobuf).
async fn collect(State(spans): State<Collected>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Exported {
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| {
                            let value = a
                                .value
                                .as_ref()
                                .and_then(|v| v.value.as_ref())
                                .map(|v| {
                                    use opentelemetry_proto::tonic::common::v1::any_value::Value;
                                    match v {
                                        Value::StringValue(s) => s.clone(),
                                        Value::IntValue(i) => i.to_string(),
                                        Value::BoolValue(b) => b.to_string(),
                                        Value::DoubleValue(d) => d.to_string(),
                                        other => format!("{other:?}"),
                                    }
                                })
                                .unwrap_or_default();
                            (a.key.clone(), value)
                        })
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

async fn start_collector() -> (String, Collected) {
    let spans: Collected = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(spans.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhooks_trace_runs_from_the_inbound_request_to_the_subscribers_answer() {
    let (collector, spans) = start_collector().await;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub_with(
        dir.path(),
        free_port(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "switchyard-under-test"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let token = admin_token(&http, &hub.base).await;

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source: Value = http
        .post(format!("{}/api/v1/sources", hub.base))
        .bearer_auth(&token)
        .json(&json!({"kind": "standard", "partners": ["seller-1"], "secret": secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source_id = source["sourceId"].as_str().expect("a source").to_string();
    subscribe(
        &http,
        &hub.base,
        &token,
        json!({"eventType": "order.created", "resourceName": "ORDER",
               "partnerId": "seller-1", "eventUrl": sink.hook_url()}),
    )
    .await;

    // The marketplace's own trace: a webhook sent from its span `00f067aa0ba902b7`.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sender_span = "00f067aa0ba902b7";
    let body = br#"{"type":"order.created","data":{"id":"PO-TRACE-1","partnerId":"seller-1"}}"#;
    let ts = jiff::Timestamp::now().as_second();
    let signature =
        switchyard_core::signatures::standard_webhooks::sign(secret, "msg_trace_1", ts, body)
            .expect("signed");
    let answer = http
        .post(format!("{}/ingest/{source_id}", hub.base))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_trace_1")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", &signature)
        .header("traceparent", format!("00-{trace}-{sender_span}-01"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let event_id = answer.json::<Value>().await.unwrap()["eventId"]
        .as_str()
        .expect("accepted")
        .to_string();

    // The subscriber is told the trace, and which span its request came from.
    wait_for("the sink gets the delivery", || async {
        (sink.hook_count() == 1).then_some(())
    })
    .await;
    let sent = sink.hooks()[0]
        .header("traceparent")
        .expect("the delivery carries a traceparent");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", trace, "01"),
        "{sent}"
    );
    let attempt_span = parts[2].to_string();

    // Every stage, exported, in the one trace, each under its parent.
    let stages = wait_for("the stage spans are exported", || async {
        let spans = spans.lock().unwrap().clone();
        let named = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name && s.trace_id == trace)
                .cloned()
        };
        match (
            named("receive"),
            named("verify"),
            named("store"),
            named("attempt"),
        ) {
            (Some(r), Some(v), Some(s), Some(a)) => Some((r, v, s, a)),
            _ => None,
        }
    })
    .await;
    let (receive, verify, store, attempt) = stages;
    assert_eq!(
        receive.parent_span_id, sender_span,
        "receive continues the sender's span"
    );
    assert_eq!(verify.parent_span_id, receive.span_id);
    assert_eq!(store.parent_span_id, receive.span_id);
    assert_eq!(store.attribute("duplicate"), Some("false"));
    assert_eq!(store.attribute("fan_out"), Some("1"));
    assert_eq!(receive.attribute("outcome"), Some("accepted"));
    assert_eq!(receive.attribute("source"), Some(source_id.as_str()));
    assert_eq!(
        attempt.parent_span_id, receive.span_id,
        "the attempt continues the trace its event was stored in"
    );
    assert_eq!(
        attempt.span_id, attempt_span,
        "the subscriber's parent is the attempt"
    );
    assert_eq!(attempt.attribute("status"), Some("200"));
    assert!(
        receive.service.contains("switchyard-under-test"),
        "{}",
        receive.service
    );

    // The attempt's row says which trace it is part of.
    let read = |path: String| {
        let request = http.get(format!("{}{path}", hub.base)).bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let deliveries = read(format!("/api/v1/deliveries?eventId={event_id}")).await;
    let delivery_id = deliveries["deliveries"][0]["id"]
        .as_str()
        .expect("a delivery");
    let detail = read(format!("/api/v1/deliveries/{delivery_id}")).await;
    assert_eq!(detail["attempts"][0]["traceId"], trace, "{detail}");
    // And the console's page of the event shows it beside the attempt.
    let mut browser = crate::console::Browser::at(&hub.base);
    assert_eq!(browser.sign_in(ADMIN_ID, ADMIN_SECRET).await, 303);
    let (status, page, _) = browser.get(&format!("/console/events/{event_id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<code title=\"trace id\">{trace}</code>")),
        "{page}"
    );

    // An idle hub exports no trace per poll: its claims that find nothing stop being exported
    // (the dispatcher looks at least once a second; the exporter sends every 100 ms).
    let empty_claims = || {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == "claim" && s.attribute("claimed") == Some("0"))
            .count()
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = empty_claims();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        empty_claims(),
        before,
        "an idle dispatcher's claims are not exported"
    );
}
