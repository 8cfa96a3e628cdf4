//! Tenant scope: which partners a caller may see and act for. Every use case reads and writes a
//! partner's objects through [`tenant`], the store seen through the caller's scope
//! (`switchyard_store::Scope`), which the store applies; the checks here add what a request
//! names (the partner it acts for) and the 404 for what it addresses outside its scope.

use switchyard_core::model::{Client, SourceRecord, SubscriptionRecord};
use switchyard_store::{Scope, Scoped};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::routes::parse_id;
use switchyard_core::model::PartnerId;

/// The partner a request is for: the one its body names, else the one its `WM_PARTNER.ID` header
/// names (`header`), else the client's only one; a partner the client does not manage is a 403.
pub fn resolve_partner(
    caller: &Client,
    given: Option<String>,
    header: Option<&str>,
    field: &str,
) -> AppResult<PartnerId> {
    let named = given.or_else(|| header.map(str::to_string));
    match named {
        Some(p) if p.trim().is_empty() => Err(AppError::invalid(field, "partnerId is empty")),
        Some(p) if caller.manages(&p) => Ok(p.into()),
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

/// The store as `caller` may reach it: the partners it manages (every one for an admin).
pub fn tenant<'a>(state: &'a AppState, caller: &'a Client) -> Scoped<'a> {
    state.store.scoped(Scope::of(caller))
}

/// The store as an inbound request reaches it before any tenant is known: the URL names a
/// source, and the source's partners are the scope of what the request then stores
/// ([`of_source`]).
pub fn inbound(state: &AppState) -> Scoped<'_> {
    state.store.scoped(Scope::All)
}

/// The store within a source's partners: what a webhook it received may write.
pub fn of_source<'a>(state: &'a AppState, source: &'a SourceRecord) -> Scoped<'a> {
    state.store.scoped(Scope::Partners(&source.partners))
}

/// A subscription the caller may see, by the id a request gave; any other is 404 (another
/// tenant's objects do not exist for it).
pub async fn visible_subscription(
    state: &AppState,
    caller: &Client,
    raw_id: &str,
) -> AppResult<SubscriptionRecord> {
    let id = parse_id(raw_id, "subscription")?;
    tenant(state, caller)
        .get_subscription(id)
        .await?
        .ok_or_else(|| AppError::not_found("subscription"))
}
