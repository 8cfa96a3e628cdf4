//! Path and header parameters as the document describes them. The handlers read them with
//! `PathId`, `PathParams` and `wm_partner_id` (which turn a bad id into a 404 rather than a
//! 400, as Walmart's API does); these types say the same in the OpenAPI document.

#![allow(dead_code)] // Read by the `IntoParams` derive, never built.

use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// `WM_PARTNER.ID`: the partner a request acts for, when the body does not say.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct PartnerHeader {
    /// The partner (seller) to act for; default: the body's `partnerId`, else the client's only
    /// partner.
    #[serde(rename = "WM_PARTNER.ID")]
    partner: Option<String>,
}

macro_rules! id_param {
    ($name:ident, $description:literal) => {
        #[derive(Deserialize, IntoParams)]
        #[into_params(parameter_in = Path)]
        pub struct $name {
            #[doc = $description]
            id: Uuid,
        }
    };
}

id_param!(
    SubscriptionIdParam,
    "The subscription's id (a UUID; anything else names nothing: 404)."
);
id_param!(
    EventIdParam,
    "The event's id (a UUID; anything else names nothing: 404)."
);
id_param!(
    DeliveryIdParam,
    "The delivery's id (a UUID; anything else names nothing: 404)."
);
id_param!(
    SourceIdParam,
    "The source's id (a UUID; anything else names nothing: 404)."
);
