//! SellerCenter's actions, once the call is authenticated: `GetWebhookEntities`, `GetWebhooks`,
//! `CreateWebhook`, `DeleteWebhook`, over [`crate::services::subscriptions`].

use std::collections::BTreeMap;

use axum::http::StatusCode;

use switchyard_core::catalog::{self, Family};
use switchyard_core::model::{Client, Envelope, SubscriptionRecord};

use super::documents::{
    DeletedWebhookOut, EntityList, EntityOut, EventNames, SuccessBody, WebhookList, WebhookOut,
};
use super::{ScError, refuse};
use crate::AppState;
use crate::services::scope::{resolve_partner, visible_subscription};
use crate::services::subscriptions::{self, ListQuery, SellercenterWebhook};

/// What an action answers: its response type and body.
pub(super) type Answer = Result<(&'static str, SuccessBody), ScError>;

/// SellerCenter's entities (`Feed`, `Order`, `Metrics`, `Statistics`, `Product`) with their events.
fn entities_map() -> BTreeMap<&'static str, Vec<&'static catalog::EventType>> {
    let mut map: BTreeMap<&str, Vec<&catalog::EventType>> = BTreeMap::new();
    for t in catalog::all() {
        if t.family == Family::Sellercenter
            && let Some(entity) = t.entity
        {
            map.entry(entity).or_default().push(t);
        }
    }
    map
}

pub(super) fn entities() -> Answer {
    let entity = entities_map()
        .into_iter()
        .map(|(name, events)| EntityOut {
            events: EventNames {
                event: events.iter().map(|e| e.event_type.to_string()).collect(),
            },
            name,
        })
        .collect();
    Ok((
        "WebhookEntities",
        SuccessBody::Entities {
            entities: EntityList { entity },
        },
    ))
}

fn sellercenter_events(sub: &SubscriptionRecord) -> Vec<String> {
    sub.event_types
        .iter()
        .filter(|t| catalog::find(t).is_some_and(|e| e.family == Family::Sellercenter))
        .cloned()
        .collect()
}

fn webhook_view(sub: &SubscriptionRecord) -> WebhookOut {
    WebhookOut {
        callback_url: sub.event_url.clone(),
        events: EventNames {
            event: sellercenter_events(sub),
        },
        webhook_id: sub.id,
    }
}

pub(super) async fn get_webhooks(state: &AppState, client: &Client) -> Answer {
    let subs = subscriptions::list(state, client, ListQuery::default()).await?;
    let webhook = subs
        .iter()
        .filter(|s| s.envelope == Envelope::Sellercenter)
        .map(webhook_view)
        .collect();
    Ok((
        "Webhooks",
        SuccessBody::Webhooks {
            webhooks: WebhookList { webhook },
        },
    ))
}

/// `CreateWebhook`'s body as SellerCenter's XML has it:
/// `<Request><Webhook><CallbackUrl>…</CallbackUrl><Events><Event>…</Event>…</Events></Webhook></Request>`
/// (read by quick-xml; the root element's name is not checked).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XmlRequest {
    #[serde(default)]
    webhook: XmlWebhook,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlWebhook {
    callback_url: Option<String>,
    #[serde(default)]
    events: XmlEvents,
}

#[derive(Debug, Default, serde::Deserialize)]
struct XmlEvents {
    #[serde(rename = "Event", default)]
    event: Vec<String>,
}

/// The same body as JSON: `{"Request": {"Webhook": {"CallbackUrl", "Events": {"Event": …}}}}`,
/// `Event` one name or a list.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonRequest {
    #[serde(default)]
    request: JsonRequestBody,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonRequestBody {
    #[serde(default)]
    webhook: JsonWebhook,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonWebhook {
    callback_url: Option<String>,
    #[serde(default)]
    events: JsonEvents,
}

#[derive(Debug, Default, serde::Deserialize)]
struct JsonEvents {
    #[serde(rename = "Event", default)]
    event: OneOrMany,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

/// A SellerCenter XML request body, read by quick-xml.
pub(super) fn read_xml_request(text: &str) -> Result<XmlRequest, ScError> {
    quick_xml::de::from_str(text)
        .map_err(|e| refuse("E005", format!("Invalid Request Format: {e}")))
}

/// CallbackUrl and Events from the body (SellerCenter's XML, or the same as JSON) or the query.
fn webhook_input(
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(String, Vec<String>), ScError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse("E005", "Invalid Request Format: the body is not UTF-8"))?
        .trim();
    let trimmed =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|e| e.trim().to_string()).collect() };
    let (url, events) = if text.starts_with('<') {
        let webhook = read_xml_request(text)?.webhook;
        (webhook.callback_url, trimmed(webhook.events.event))
    } else if text.starts_with('{') {
        let request: JsonRequest = serde_json::from_str(text)
            .map_err(|e| refuse("E005", format!("Invalid Request Format: {e}")))?;
        let webhook = request.request.webhook;
        let events = match webhook.events.event {
            OneOrMany::One(event) => vec![event],
            OneOrMany::Many(events) => events,
        };
        (webhook.callback_url, trimmed(events))
    } else {
        (
            params.get("CallbackUrl").cloned(),
            params
                .get("Events")
                .map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
        )
    };
    let url = url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| refuse("E005", "CallbackUrl is mandatory"))?;
    if events.is_empty() {
        return Err(refuse(
            "E005",
            "give at least one Event (an event or an entity name)",
        ));
    }
    Ok((url, events))
}

pub(super) async fn create_webhook(
    state: &AppState,
    client: &Client,
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Answer {
    let (url, names) = webhook_input(params, body)?;
    switchyard_core::destination::parse("CallbackUrl", &url)
        .map_err(crate::error::AppError::from)?;
    let entities = entities_map();
    // An entity name alone means all of its events.
    let mut chosen: Vec<&'static catalog::EventType> = Vec::new();
    for name in &names {
        let events: Vec<&catalog::EventType> = match entities.get(name.as_str()) {
            Some(all) => all.clone(),
            None => match catalog::find(name) {
                Some(t) if t.family == Family::Sellercenter => vec![t],
                _ => return Err(refuse("E005", format!("unknown event or entity {name:?}"))),
            },
        };
        for e in events {
            if !chosen.iter().any(|c| c.event_type == e.event_type) {
                chosen.push(e);
            }
        }
    }
    for e in &chosen {
        if client.access_to(e.resource_name) == switchyard_core::model::Access::NoAccess {
            return Err(refuse(
                "E009",
                format!(
                    "Access Denied: this user has no access to {} events",
                    e.resource_name
                ),
            ));
        }
    }
    let partner = resolve_partner(client, params.get("PartnerId").cloned(), None, "PartnerId")?;
    let mut event_types: Vec<String> = Vec::new();
    for e in &chosen {
        event_types.push(e.event_type.to_string());
        for topic in catalog::topics_of_sellercenter_event(e.event_type) {
            if !event_types.iter().any(|t| t == topic) {
                event_types.push(topic.to_string());
            }
        }
    }
    let record = subscriptions::create_sellercenter(
        state,
        client,
        SellercenterWebhook {
            partner_id: partner,
            event_url: url,
            event_types,
            resource_name: chosen[0].resource_name.to_string(),
        },
    )
    .await?;
    Ok((
        "Webhook",
        SuccessBody::Webhook {
            webhook: webhook_view(&record),
        },
    ))
}

pub(super) async fn delete_webhook(state: &AppState, client: &Client, id: &str) -> Answer {
    let not_found = || refuse("E005", "Webhook not found");
    // Another tenant's webhook, a webhook of the JSON API, or no UUID at all: not found.
    let sub = match visible_subscription(state, client, id).await {
        Ok(s) if s.envelope == Envelope::Sellercenter => s,
        Ok(_) => return Err(not_found()),
        Err(e) if matches!(e.status.as_u16(), 400 | 404) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    subscriptions::delete(state, client, &sub.id.to_string())
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                not_found()
            } else {
                e.into()
            }
        })?;
    Ok((
        "Webhook",
        SuccessBody::Deleted {
            webhook: DeletedWebhookOut { webhook_id: sub.id },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xml_request_is_read_with_its_events_and_entities_decoded() {
        let request = read_xml_request(
            "<?xml version=\"1.0\"?><Request><Webhook><CallbackUrl>https://a.example/h?x=1&amp;y=2</CallbackUrl>\
             <Events><Event> x &amp; y </Event><Event>z</Event></Events></Webhook></Request>",
        )
        .ok()
        .expect("a well-formed request");
        assert_eq!(
            request.webhook.callback_url.as_deref(),
            Some("https://a.example/h?x=1&y=2")
        );
        assert_eq!(request.webhook.events.event.len(), 2);
        assert_eq!(request.webhook.events.event[1], "z");
        assert!(read_xml_request("<Request><Webhook>").is_err());
    }

    #[test]
    fn a_json_request_takes_one_event_or_several() {
        for (text, events) in [
            (
                r#"{"Request":{"Webhook":{"CallbackUrl":"u","Events":{"Event":"a"}}}}"#,
                1,
            ),
            (
                r#"{"Request":{"Webhook":{"CallbackUrl":"u","Events":{"Event":["a","b"]}}}}"#,
                2,
            ),
        ] {
            let request: JsonRequest = serde_json::from_str(text).expect("JSON");
            let n = match request.request.webhook.events.event {
                OneOrMany::One(_) => 1,
                OneOrMany::Many(v) => v.len(),
            };
            assert_eq!(n, events);
        }
    }
}
