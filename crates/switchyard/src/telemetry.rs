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

/// A progress bar fed by the store's migration events (`step` of `of`): drawn on a terminal
/// only, so scripts see nothing of it.
struct MigrationProgress {
    bar: indicatif::ProgressBar,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MigrationProgress {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Step(Option<u64>, Option<u64>);
        impl tracing::field::Visit for Step {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                match field.name() {
                    "step" => self.0 = Some(value),
                    "of" => self.1 = Some(value),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut step = Step(None, None);
        event.record(&mut step);
        if let Step(Some(step), Some(of)) = step {
            self.bar.set_length(of);
            self.bar.set_position(step.saturating_sub(1));
            self.bar.set_message(format!("migration {step} of {of}"));
            if step == of {
                self.bar.finish_and_clear();
            }
        }
    }
}

/// Installs the log output and, when asked for, the OTLP trace exporter; `progress` shows the
/// schema migrations as a bar (for `switchyard migrate`).
pub fn init(progress: bool) -> Telemetry {
    let logs = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(format!("{STAGE}=off").parse().expect("a valid directive"));
    let log_layer = fmt::layer().with_writer(std::io::stderr).with_filter(logs);
    let progress_layer = progress.then(|| {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("[{bar:30}] {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        MigrationProgress { bar }.with_filter(
            Targets::new().with_target(switchyard_store::MIGRATE_TARGET, tracing::Level::DEBUG),
        )
    });
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
        .with(progress_layer)
        .with(trace_layer)
        .init();
    Telemetry { provider }
}
