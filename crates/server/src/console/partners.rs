//! Partners (admins only): every partner the hub knows, with the switch that turns the console
//! off or on for it.

use std::collections::BTreeSet;

use axum::extract::{RawQuery, State};
use maud::{Markup, html};

use switchyard_core::model::SubscriptionFilter;

use super::html::{csrf_field, inline_form, labelled_badge, page, q, table};
use super::requests::{notice, query, see_other};
use super::{ConsoleError, PageResult, Posted, Session};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathId;
use crate::services::scope;

fn admin_only(session: &Session) -> Result<(), ConsoleError> {
    if session.client.admin {
        Ok(())
    } else {
        Err(ConsoleError(AppError::forbidden(
            "admin_only",
            "only an admin client may switch the console per partner",
        )))
    }
}

pub async fn partners(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    admin_only(&session)?;
    let disabled = state.store.console_disabled_partners().await?;
    let mut known: BTreeSet<String> = disabled.iter().cloned().collect();
    for s in scope::tenant(&state, &session.client)
        .list_subscriptions(&SubscriptionFilter::default())
        .await?
    {
        known.insert(s.partner_id.0);
    }
    for s in scope::tenant(&state, &session.client)
        .list_sources(None)
        .await?
    {
        known.extend(s.partners.into_iter().map(String::from));
    }
    let rows: Vec<Vec<Markup>> = known
        .iter()
        .map(|p| {
            let on = !disabled.contains(p);
            let switch = inline_form(
                &session,
                &format!("/console/partners/{}", q(p)),
                None,
                html! {
                    input type="hidden" name="enabled" value=(if on { "false" } else { "true" });
                    button type="submit" class="secondary" {
                        @if on { "Switch off" } @else { "Switch on" }
                    }
                },
            );
            vec![
                html! { (p) },
                if on {
                    labelled_badge("ok", "on")
                } else {
                    labelled_badge("INACTIVE", "off")
                },
                switch,
            ]
        })
        .collect();
    let body = html! {
        (notice(&query(raw)))
        p class="muted" {
            "Switching the console off for a partner hides its webhooks, events and sources from \
             partner clients here. The API keeps working for them."
        }
        (table(&["Partner", "Console", ""], &rows, "No partners known yet."))
        h2 { "Another partner" }
        form method="post" action="/console/partners/_" class="filters" {
            (csrf_field(&session))
            label { "Partner id" input type="text" name="partner_id" required; }
            input type="hidden" name="enabled" value="false";
            button type="submit" { "Switch off" }
        }
    };
    Ok(page(&session, "Partners", body))
}

pub async fn set_partner_console(
    State(state): State<AppState>,
    PathId(id): PathId,
    Posted { session, form }: Posted,
) -> PageResult {
    admin_only(&session)?;
    let partner = if id == "_" {
        form.get("partner_id").unwrap_or_default()
    } else {
        id
    };
    if partner.is_empty() || partner.len() > 200 {
        return Err(ConsoleError(AppError::invalid(
            "partner_id",
            "give a partner id",
        )));
    }
    let enabled = form.get("enabled").as_deref() == Some("true");
    scope::tenant(&state, &session.client)
        .set_console_enabled(&partner, enabled)
        .await?;
    Ok(see_other("/console/partners?notice=partner_saved"))
}
