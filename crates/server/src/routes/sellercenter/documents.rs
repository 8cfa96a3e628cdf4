//! SellerCenter's answers as types: `SuccessResponse` (`Head`, and a `Body` per action) and
//! `ErrorResponse`, written as JSON (`{"SuccessResponse": …}`) or, with `Format=XML`, as the same
//! document in XML. Fields are declared in alphabetical order, the order the answers have always
//! been written in.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use switchyard_core::model::SubscriptionId;

/// `{"SuccessResponse": {"Body", "Head"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SellercenterSuccess)]
pub struct SuccessOut {
    #[serde(rename = "SuccessResponse")]
    pub success_response: SuccessResponse,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterSuccessResponse)]
pub struct SuccessResponse {
    pub body: SuccessBody,
    pub head: SuccessHead,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterSuccessHead)]
pub struct SuccessHead {
    pub request_action: String,
    pub request_id: &'static str,
    /// `WebhookEntities`, `Webhooks` or `Webhook`.
    pub response_type: &'static str,
    pub timestamp: String,
}

/// The action's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = SellercenterBody)]
pub enum SuccessBody {
    /// `GetWebhookEntities`.
    Entities {
        #[serde(rename = "Entities")]
        entities: EntityList,
    },
    /// `GetWebhooks`.
    Webhooks {
        #[serde(rename = "Webhooks")]
        webhooks: WebhookList,
    },
    /// `CreateWebhook`.
    Webhook {
        #[serde(rename = "Webhook")]
        webhook: WebhookOut,
    },
    /// `DeleteWebhook`.
    Deleted {
        #[serde(rename = "Webhook")]
        webhook: DeletedWebhookOut,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SellercenterEntityList)]
pub struct EntityList {
    #[serde(rename = "Entity")]
    pub entity: Vec<EntityOut>,
}

/// An entity (`Order`, `Product`, …) with its events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterEntity)]
pub struct EntityOut {
    pub events: EventNames,
    pub name: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SellercenterEvents)]
pub struct EventNames {
    #[serde(rename = "Event")]
    pub event: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SellercenterWebhookList)]
pub struct WebhookList {
    #[serde(rename = "Webhook")]
    pub webhook: Vec<WebhookOut>,
}

/// A webhook: a subscription with the `sellercenter` envelope, its SellerCenter events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterWebhook)]
pub struct WebhookOut {
    pub callback_url: String,
    pub events: EventNames,
    pub webhook_id: SubscriptionId,
}

/// Only the id (closed, so that the document tells it from a created webhook).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[schema(as = SellercenterDeletedWebhook)]
pub struct DeletedWebhookOut {
    pub webhook_id: SubscriptionId,
}

/// `{"ErrorResponse": {"Body": "", "Head"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SellercenterError)]
pub struct ErrorOut {
    #[serde(rename = "ErrorResponse")]
    pub error_response: ErrorResponse,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterErrorResponse)]
pub struct ErrorResponse {
    /// Always empty.
    pub body: &'static str,
    pub head: ErrorHead,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = SellercenterErrorHead)]
pub struct ErrorHead {
    /// `E001` … `E009`.
    pub error_code: &'static str,
    pub error_message: String,
    /// `Sender`, or `Platform` for E006.
    pub error_type: &'static str,
    pub request_action: String,
}

/// Writes a document as JSON, or as XML under its one top-level key.
pub fn answer<T: Serialize>(format_xml: bool, status: StatusCode, document: &T) -> Response {
    if !format_xml {
        return (status, axum::Json(document)).into_response();
    }
    let value = serde_json::to_value(document).unwrap_or(Value::Null);
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if let Value::Object(map) = &value {
        for (root, inner) in map {
            xml(root, inner, &mut body);
        }
    }
    (
        status,
        [(CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// JSON as SellerCenter's XML: objects become elements, an array repeats its key's element.
fn xml(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            for item in items {
                xml(name, item, out);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                xml(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", crate::markup::escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn xml_answers_repeat_array_elements_and_escape_text() {
        let mut out = String::new();
        xml(
            "Body",
            &json!({"Events": {"Event": ["a<b", "c"]}, "Empty": null}),
            &mut out,
        );
        assert_eq!(
            out,
            "<Body><Empty/><Events><Event>a&lt;b</Event><Event>c</Event></Events></Body>"
        );
    }
}
