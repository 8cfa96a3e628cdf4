//! SellerCenter's answers as types: `SuccessResponse` (`Head`, and a `Body` per action) and
//! `ErrorResponse`, written as JSON (`{"SuccessResponse": …}`) or, with `Format=XML`, as the same
//! document in XML. Fields are declared in alphabetical order, the order the answers have always
//! been written in.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
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

/// Writes a document as JSON (`{"SuccessResponse": …}`), or as XML with `root` as its root
/// element and `inner` inside (quick-xml).
pub fn answer<D: Serialize, I: Serialize>(
    format_xml: bool,
    status: StatusCode,
    document: &D,
    root: &str,
    inner: &I,
) -> Response {
    if !format_xml {
        return (status, axum::Json(document)).into_response();
    }
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    match quick_xml::se::to_string_with_root(root, inner) {
        Ok(xml) => body.push_str(&xml),
        Err(e) => {
            tracing::error!(error = %e, "a SellerCenter answer cannot be written as XML");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    (
        status,
        [(CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_answers_repeat_list_elements_and_escape_text() {
        let inner = SuccessResponse {
            body: SuccessBody::Webhooks {
                webhooks: WebhookList {
                    webhook: vec![WebhookOut {
                        callback_url: "https://a.example/h?x=1&y=<2>".into(),
                        events: EventNames {
                            event: vec!["onOrderCreated".into(), "onFeedCreated".into()],
                        },
                        webhook_id: SubscriptionId::new(),
                    }],
                },
            },
            head: SuccessHead {
                request_action: "GetWebhooks".into(),
                request_id: "",
                response_type: "Webhooks",
                timestamp: "2026-12-06T00:00:00Z".into(),
            },
        };
        let xml = quick_xml::se::to_string_with_root("SuccessResponse", &inner).expect("XML");
        assert!(
            xml.starts_with("<SuccessResponse><Body><Webhooks><Webhook><CallbackUrl>"),
            "{xml}"
        );
        assert!(
            xml.contains("https://a.example/h?x=1&amp;y=&lt;2&gt;"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<Events><Event>onOrderCreated</Event><Event>onFeedCreated</Event></Events>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<ResponseType>Webhooks</ResponseType>"),
            "{xml}"
        );
    }
}
