//! Logs and traces. Logs go to stderr, filtered by `SWITCHYARD_LOG` (`tracing` syntax, default
//! `info`). Traces — the stage spans of target `switchyard::stage` (`receive`, `verify`,
//! `store`, `publish`, `claim`, `attempt`, `token_fetch`) — are exported over OTLP (HTTP,
//! protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set,
//! with the standard `OTEL_*` variables honoured by the OpenTelemetry SDK (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`, …).
//! Unset, no layer wants a stage span, so they are not even built: nothing is exported or slowed.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

use switchyard_delivery::trace_context::STAGE;

/// Keeps the exporter alive; dropping it flushes the spans not yet sent.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: traces not all exported at exit: {e}");
        }
    }
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Installs the log output and, when asked for, the OTLP trace exporter.
pub fn init() -> Telemetry {
    let logs = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(format!("{STAGE}=off").parse().expect("a valid directive"));
    let log_layer = fmt::layer().with_writer(std::io::stderr).with_filter(logs);
    let wanted = (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let provider = wanted
        .then(|| {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| eprintln!("warning: traces will not be exported: {e}"))
                .ok()
        })
        .flatten()
        .map(|exporter| {
            let mut resource = opentelemetry_sdk::Resource::builder();
            if !set("OTEL_SERVICE_NAME") {
                resource = resource.with_service_name("switchyard");
            }
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.build())
                .build()
        });
    let trace_layer = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("switchyard"))
            .with_filter(Targets::new().with_target(STAGE, tracing::Level::INFO))
    });
    tracing_subscriber::registry()
        .with(log_layer)
        .with(trace_layer)
        .init();
    Telemetry { provider }
}
