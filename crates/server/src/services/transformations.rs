//! Subscribers' transformations (`switchyard_delivery::transform`): checked when a subscription
//! is created or changed, and tried on a sample before anything is sent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchyard_core::catalog;
use switchyard_core::model::{Client, SubscriptionRecord};
use switchyard_delivery::transform::{self, Limits, Transformed, Webhook};

use super::scope::visible_subscription;
use crate::AppState;
use crate::error::{AppError, AppResult};

/// Runs engine work off the async threads: a call may take its whole time limit.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AppError::internal())
}

/// A transformation as given on create or update: `None` stays `None`; code that does not
/// compile, defines no `handler`, or overruns its limits while loading is a 400 naming `field`
/// (`invalid_transform`) and saying what is wrong.
pub async fn check(code: Option<String>, field: &str) -> AppResult<Option<String>> {
    let Some(code) = code else {
        return Ok(None);
    };
    let checked = code.clone();
    match blocking(move || transform::check(&checked, &Limits::default())).await? {
        Ok(()) => Ok(Some(code)),
        Err(e) => Err(AppError::bad_request("invalid_transform", e.to_string()).with_field(field)),
    }
}

/// A "try it" request: code to try (default: the subscription's own) on a body (default: a
/// sample of the subscription's event type).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = TryTransform)]
pub struct TryRequest {
    /// `function handler(webhook) {…}`; default: the subscription's transformation.
    pub transform: Option<String>,
    /// The body the handler gets as `payload`; default: the envelope of a sample event of the
    /// subscription's type, as a test notification sends it.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

/// What a handler made of the sample.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TransformTried)]
pub struct TriedOut {
    /// The handler returned `cancel: true`: nothing would be sent.
    pub cancel: bool,
    /// What would be sent (absent when cancelled): the body is `payload`, signed as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// What the handler was given.
    pub given: Webhook,
}

/// What a subscription's handler receives for an event whose envelope is `payload`.
pub fn webhook_for(sub: &SubscriptionRecord, event_type: &str, payload: Value) -> Webhook {
    Webhook {
        event_type: event_type.to_string(),
        payload,
        headers: sub.headers.clone(),
        url: sub.event_url.clone(),
    }
}

/// Runs a transformation on a sample for a subscription the caller may see, sending nothing.
/// A failure of the code is a 400 `transform_failed` saying what went wrong, as an attempt's
/// log would.
pub async fn try_on_sample(
    state: &AppState,
    caller: &Client,
    id: &str,
    request: TryRequest,
) -> AppResult<TriedOut> {
    let sub = visible_subscription(state, caller, id).await?;
    let code = match request.transform.or_else(|| sub.transform.clone()) {
        Some(code) => code,
        None => {
            return Err(AppError::invalid(
                "transform",
                "the subscription has no transformation; give one to try",
            ));
        }
    };
    let event_type = sub.event_types.first().cloned().unwrap_or_default();
    let payload = match request.payload {
        Some(payload) => payload,
        None => sample_envelope(state, &sub, &event_type),
    };
    let given = webhook_for(&sub, &event_type, payload);
    let input = given.clone();
    let outcome = blocking(move || transform::run(&code, &input, &Limits::default())).await?;
    match outcome {
        Ok(Transformed::Cancel) => Ok(TriedOut {
            cancel: true,
            webhook: None,
            given,
        }),
        Ok(Transformed::Send(webhook)) => Ok(TriedOut {
            cancel: false,
            webhook: Some(webhook),
            given,
        }),
        Err(e) => {
            Err(AppError::bad_request("transform_failed", e.to_string()).with_field("transform"))
        }
    }
}

/// The envelope a test notification of the subscription's type carries (an empty payload for a
/// type the catalog does not know).
fn sample_envelope(state: &AppState, sub: &SubscriptionRecord, event_type: &str) -> Value {
    match catalog::find(event_type) {
        Some(t) => super::test_notification::sample_envelope(
            t,
            &sub.event_version,
            &sub.partner_id.0,
            state.clock.now(),
            uuid::Uuid::now_v7(),
        ),
        None => serde_json::json!({"payload": {}, "source": {"eventType": event_type}}),
    }
}
