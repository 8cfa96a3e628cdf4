//! The test notification: a sample of an event type sent to an `eventUrl` now, as Walmart's
//! `POST /v3/webhooks/test` does, with the answer saying how the endpoint answered (and, with a
//! `filter`, whether the sample passes it).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use switchyard_core::catalog;
use switchyard_core::model::{AuthDetails, Client};
use switchyard_core::wire_schema::{EventTypeName, ResourceName};
use switchyard_delivery::OutboundRequest;
use switchyard_delivery::envelope;

use super::subscriptions::{check_filter, check_input};
use crate::AppState;
use crate::error::{AppError, AppResult};

/// A test notification: where to send a sample of which event type.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = TestNotification)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRequest {
    #[schema(value_type = EventTypeName)]
    pub event_type: String,
    pub event_version: Option<String>,
    #[schema(value_type = Option<ResourceName>)]
    pub resource_name: Option<String>,
    #[schema(format = "uri")]
    pub event_url: String,
    pub auth_details: Option<AuthDetails>,
    pub headers: Option<BTreeMap<String, String>>,
    pub partner_id: Option<String>,
    /// A content filter to try the sample against (the answer says whether it passes; the
    /// sample is sent either way).
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

/// Sends a sample of the event type to `eventUrl` now; an answer other than 2xx, or none, is
/// the error `test_delivery_failed` saying how the endpoint answered. With a `filter`, says
/// whether the sample passes it (`Some`).
pub async fn test_notification(
    state: &AppState,
    caller: &Client,
    header_partner: Option<&str>,
    t: TestRequest,
) -> AppResult<Option<bool>> {
    let filter = check_filter(t.filter, "filter")?
        .map(|f| switchyard_core::filter::Filter::parse(&f))
        .transpose()
        .map_err(|_| AppError::internal())?;
    let c = check_input(
        caller,
        header_partner,
        "",
        &t.event_type,
        t.event_version,
        t.resource_name,
        t.event_url,
        None,
        t.auth_details,
        t.headers,
        None,
        t.partner_id,
    )?;
    let now = state.clock.now();
    let event_id = Uuid::now_v7();
    let body = serde_json::to_vec(&sample_envelope(
        c.event_type,
        &c.event_version,
        &c.partner_id,
        now,
        event_id,
    ))
    .map_err(|_| AppError::internal())?;
    let passes = filter
        .map(|f| serde_json::from_slice::<Value>(&body).is_ok_and(|envelope| f.matches(&envelope)));
    let msg_id = format!("msg_test_{}", event_id.simple());
    let request = OutboundRequest {
        url: c.event_url,
        headers: envelope::standard_webhooks_headers(&msg_id, now, &body, &[]),
        body,
        custom_headers: c.headers,
        auth: c.auth,
        token_cache_key: None,
    };
    let outcome = state.sender.send(&request).await;
    if outcome.succeeded() {
        return Ok(passes);
    }
    let message = match (outcome.status_code, &outcome.error_message) {
        (Some(code), _) => format!("eventUrl answered HTTP {code}"),
        (None, Some(m)) => format!("eventUrl could not be reached: {m}"),
        (None, None) => "eventUrl could not be reached".to_string(),
    };
    Err(AppError::bad_request("test_delivery_failed", message).with_field("eventUrl"))
}

/// The envelope of a sample event of `event_type` for `partner`, as a test notification sends
/// it (and a transformation's "try it" is given).
pub(super) fn sample_envelope(
    event_type: &catalog::EventType,
    version: &str,
    partner: &str,
    now: jiff::Timestamp,
    event_id: Uuid,
) -> Value {
    json!({
        "source": {
            "eventType": event_type.event_type,
            "eventVersion": version,
            "eventTime": envelope::event_time(now),
            "eventId": event_id,
        },
        "payload": catalog::sample_payload(event_type, partner),
    })
}
