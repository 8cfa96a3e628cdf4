//! Refused inbound requests: each is recorded (reason, remote address, body hash and size; never
//! the body or a secret), counted, and watched for a spike, and answered with its error.

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::StatusCode;
use jiff::SignedDuration;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchyard_core::metrics;
use switchyard_core::model::RejectionRecord;

use super::scope::inbound;
use crate::AppState;
use crate::error::AppError;
use switchyard_core::model::PartnerId;
use switchyard_core::model::SourceId;

/// What the request looked like, for the rejection record and the metrics.
pub struct Arrival<'a> {
    pub source_ref: &'a str,
    /// The stored source the URL names, once known; `None` labels metrics `unknown`.
    pub source: Option<SourceId>,
    pub remote: Option<SocketAddr>,
    pub body: &'a [u8],
    /// When the request came in, for the acknowledgement latency.
    pub started: Instant,
}

impl Arrival<'_> {
    /// The `source` label: a stored source's id, never what an unknown URL says.
    pub fn source_label(&self) -> String {
        self.source
            .map(|id| id.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

impl AppState {
    /// Records a refusal and returns it as the error to answer with. A failure to record is logged, never hidden
    /// behind a different answer.
    pub async fn refuse(
        &self,
        arrival: &Arrival<'_>,
        partners: &[PartnerId],
        status: StatusCode,
        code: &'static str,
        message: String,
    ) -> AppError {
        let rejection = RejectionRecord {
            id: Uuid::now_v7(),
            source_id: arrival.source_ref.chars().take(100).collect(),
            partners: partners.to_vec(),
            reason: code.to_string(),
            status_code: status.as_u16(),
            message: message.clone(),
            remote_addr: arrival.remote.map(|a| a.ip().to_string()),
            body_sha256: hex::encode(Sha256::digest(arrival.body)),
            body_size: arrival.body.len() as u64,
            received_at: self.clock.now(),
        };
        if let Err(e) = inbound(self).insert_rejection(rejection).await {
            tracing::error!(error = %e, "cannot record a rejection");
        }
        self.metrics.inc(
            &metrics::INGEST_REQUESTS,
            &[
                ("source", &arrival.source_label()),
                ("outcome", "refused"),
                ("reason", code),
            ],
        );
        self.watch_rejection_spike(arrival.source_ref, partners)
            .await;
        tracing::info!(
            source = arrival.source_ref,
            reason = code,
            "inbound request refused"
        );
        AppError::new(status, code, message)
    }
}

/// Refusals in this window count towards a source's spike threshold.
const SPIKE_WINDOW: SignedDuration = SignedDuration::from_mins(5);
/// Default of the source option `rejectionSpikeThreshold`.
const DEFAULT_SPIKE_THRESHOLD: u32 = 50;

impl AppState {
    /// Announces `source.rejections_spiking` (once per source and window) when a source's
    /// refusals in the last five minutes reach its threshold.
    async fn watch_rejection_spike(&self, source_ref: &str, partners: &[PartnerId]) {
        let Ok(id) = source_ref.parse::<SourceId>() else {
            return;
        };
        let Some(first_partner) = partners.first() else {
            return;
        };
        let threshold = match inbound(self).get_source(id).await {
            Ok(Some(source)) => source
                .options
                .get("rejectionSpikeThreshold")
                .and_then(|v| v.as_u64())
                .map(|t| t.clamp(1, 1000) as u32)
                .unwrap_or(DEFAULT_SPIKE_THRESHOLD),
            _ => return,
        };
        let now = self.clock.now();
        let filter = switchyard_core::model::RejectionFilter {
            source_id: Some(source_ref.to_string()),
            since: Some(now - SPIKE_WINDOW),
            limit: threshold,
            ..Default::default()
        };
        let Ok(recent) = inbound(self).list_rejections(&filter).await else {
            return;
        };
        if (recent.len() as u32) < threshold {
            return;
        }
        // One announcement per source and five-minute window.
        let window = now.as_second() / SPIKE_WINDOW.as_secs();
        let payload = json!({
            "sourceId": source_ref,
            "rejections": recent.len(),
            "windowSeconds": SPIKE_WINDOW.as_secs(),
            "threshold": threshold,
            "reasons": recent.iter().map(|r| r.reason.clone()).collect::<std::collections::BTreeSet<_>>(),
        });
        let key = format!("spike:{source_ref}:{window}");
        // The hub's own announcement to the source's first partner, as the dispatcher makes
        // its operational events.
        if switchyard_delivery::dispatcher::publish_operational(
            self.store.unscoped().as_ref(),
            now,
            first_partner,
            "source.rejections_spiking",
            key,
            payload,
        )
        .await
        {
            self.dispatcher.wake();
        }
    }
}
