//! `GET /metrics`: the hub's numbers in the Prometheus text format, and the middleware that
//! counts every HTTP answer.
//!
//! Like `/healthz` it needs no token, so it shows nothing a partner would not want seen: counts by
//! route template, source id, outcome and failure class, queue depth and latencies; never a raw
//! URL, a partner id, a payload or a secret.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use switchyard_core::metrics::{self, Gauge, Metrics};

use crate::AppState;

/// The content type of the text exposition format 0.0.4.
const CONTENT_TYPE: &str = metrics::CONTENT_TYPE;

/// Counts each answer by route template (`unmatched` when no route matched, so random paths
/// cannot create series), method and status.
pub async fn count_requests(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = method_label(request.method());
    let response = next.run(request).await;
    metrics.inc(
        &metrics::HTTP_REQUESTS,
        &[
            ("route", route.as_deref().unwrap_or("unmatched")),
            ("method", method),
            ("status", response.status().as_str()),
        ],
    );
    response
}

/// The standard methods by name; any other (HTTP allows made-up ones) is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Renders the registry, with the queue depth read from the store now. When the store does not
/// answer, the rest is still served (and the queue gauges are left out) so the scrape shows what
/// the hub itself knows.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    let mut gauges = Vec::with_capacity(4);
    match state.store.queue_depth(now).await {
        Ok(depth) => {
            gauges.push(Gauge {
                family: metrics::DELIVERIES,
                samples: [
                    ("due", depth.due),
                    ("scheduled", depth.scheduled),
                    ("leased", depth.leased),
                ]
                .into_iter()
                .map(|(s, n)| (vec![("state", s.to_string())], n as f64))
                .collect(),
            });
            let age = depth
                .oldest_due_at
                .map(|at| now.duration_since(at).as_secs_f64().max(0.0))
                .unwrap_or(0.0);
            gauges.push(Gauge {
                family: metrics::OLDEST_DUE_AGE_SECONDS,
                samples: vec![(Vec::new(), age)],
            });
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the queue depth"),
    }
    gauges.push(Gauge {
        family: metrics::HTTP_IN_FLIGHT,
        samples: vec![(Vec::new(), state.admission.in_flight() as f64)],
    });
    gauges.push(Gauge {
        family: metrics::BUILD_INFO,
        samples: vec![(
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1.0,
        )],
    });
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(&gauges),
    )
        .into_response()
}
