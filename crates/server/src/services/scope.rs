//! Tenant scope: which partners a caller may see and act for. Every use case that reads or writes
//! a partner's objects goes through one of these.

use switchyard_core::model::{Client, SubscriptionRecord};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::routes::parse_id;

/// The partner a request is for: the one its body names, else the one its `WM_PARTNER.ID` header
/// names (`header`), else the client's only one; a partner the client does not manage is a 403.
pub fn resolve_partner(
    caller: &Client,
    given: Option<String>,
    header: Option<&str>,
    field: &str,
) -> AppResult<String> {
    let named = given.or_else(|| header.map(str::to_string));
    match named {
        Some(p) if p.trim().is_empty() => Err(AppError::invalid(field, "partnerId is empty")),
        Some(p) if caller.manages(&p) => Ok(p),
        Some(p) => Err(AppError::forbidden(
            "partner_not_managed",
            format!("this client does not manage partner {p:?}"),
        )
        .with_field(field)),
        None if !caller.admin && caller.partners.len() == 1 => Ok(caller.partners[0].clone()),
        None => Err(AppError::invalid(
            field,
            "partnerId is required (in the body or WM_PARTNER.ID) for a client managing several partners",
        )),
    }
}

/// The partners a client may see: `None` for admins (all).
pub fn visible_partners(caller: &Client) -> Option<Vec<String>> {
    (!caller.admin).then(|| caller.partners.clone())
}

/// A subscription the caller may see, by the id a request gave; any other is 404 (another
/// tenant's objects do not exist for it).
pub async fn visible_subscription(
    state: &AppState,
    caller: &Client,
    raw_id: &str,
) -> AppResult<SubscriptionRecord> {
    let id = parse_id(raw_id, "subscription")?;
    match state.store.get_subscription(id).await? {
        Some(s) if caller.manages(&s.partner_id) => Ok(s),
        _ => Err(AppError::not_found("subscription")),
    }
}
