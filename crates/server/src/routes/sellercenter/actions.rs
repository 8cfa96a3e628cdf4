//! SellerCenter's actions, once the call is authenticated: `GetWebhookEntities`, `GetWebhooks`,
//! `CreateWebhook`, `DeleteWebhook`, over [`crate::services::subscriptions`].

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::Value;

use switchyard_core::catalog::{self, Family};
use switchyard_core::model::{Client, Envelope, SubscriptionRecord, validate_http_url};

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

/// The text of every `<tag>…</tag>` in a small XML document, entities decoded.
pub(super) fn xml_values(doc: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(
            after[..end]
                .trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    found
}

/// CallbackUrl and Events from the body (SellerCenter's XML, or the same as JSON) or the query.
fn webhook_input(
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(String, Vec<String>), ScError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse("E005", "Invalid Request Format: the body is not UTF-8"))?
        .trim();
    let (url, events) = if text.starts_with('<') {
        (
            xml_values(text, "CallbackUrl").into_iter().next(),
            xml_values(text, "Event"),
        )
    } else if text.starts_with('{') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| refuse("E005", format!("Invalid Request Format: {e}")))?;
        let webhook = &v["Request"]["Webhook"];
        let events = match &webhook["Events"]["Event"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        (webhook["CallbackUrl"].as_str().map(str::to_string), events)
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
    validate_http_url("CallbackUrl", &url).map_err(crate::error::AppError::from)?;
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
    fn xml_values_reads_every_element_and_decodes_entities() {
        assert_eq!(
            xml_values("<R><Event> x &amp; y </Event><Event>z</Event></R>", "Event"),
            vec!["x & y", "z"]
        );
    }
}
