//! W3C Trace Context across the hub's stages. The stage spans (`receive`, `verify`, `store`,
//! `publish`, `claim`, `attempt`, `token_fetch`) are `tracing` spans of target [`STAGE`]; when
//! OpenTelemetry is on (the binary installs its layer when `OTEL_EXPORTER_OTLP_ENDPOINT` is set)
//! they are exported over OTLP, and these helpers carry their context: from an inbound
//! `traceparent` into `receive`, from the stored event into each delivery's `attempt` (which may
//! run later, on another node), and from `attempt` to the subscriber in the `traceparent` it
//! sends. When OpenTelemetry is off no layer wants these spans, so they cost next to nothing and
//! every helper here answers `None`.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every stage span (the log output leaves them out; the OTLP layer takes only
/// them).
pub const STAGE: &str = "switchyard::stage";

/// The `traceparent` header naming `span` (`None` when no trace is kept).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a `traceparent` names; a malformed one is ignored.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Refused only for a span already started, which callers never pass.
        let _ = span.set_parent(context);
    }
}

/// The trace id of `span`, as 32 hex digits (`None` when no trace is kept).
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_opentelemetry_nothing_is_made_up() {
        let span = tracing::info_span!(target: STAGE, "attempt");
        continue_trace(
            &span,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(traceparent(&span), None);
        assert_eq!(trace_id(&span), None);
    }
}
