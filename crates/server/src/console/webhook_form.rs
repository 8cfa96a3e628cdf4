//! The fields a webhook's forms share (partner, authentication, retry policy, extra headers),
//! and what the submitted fields become in the API's terms.

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};
use serde_json::{Value, json};

use switchyard_core::catalog;
use switchyard_core::model::{MASK, SubscriptionRecord};

use super::html::Form;
use super::{ConsoleError, Session};
use crate::error::AppError;

/// The partner: free text for an admin, a choice among its own for a partner client.
pub fn partner_field(session: &Session, current: Option<&str>) -> Markup {
    let client = &session.client;
    html! {
        label for="partner_id" { "Partner" }
        @if client.admin {
            input type="text" id="partner_id" name="partner_id"
                value=(current.unwrap_or_default()) required;
        } @else {
            select id="partner_id" name="partner_id" {
                @for p in &client.partners {
                    option selected[Some(p.as_str()) == current] { (p) }
                }
            }
        }
    }
}

/// How the hub authenticates to the receiver. When `editing`, an empty choice keeps what is
/// stored, and so do empty secrets.
pub fn auth_fields(current: Option<&str>, editing: bool) -> Markup {
    let methods = [
        ("", if editing { "Keep as it is" } else { "None" }),
        ("NONE", "None"),
        ("BASIC_AUTH", "Basic (user name and password)"),
        ("HMAC", "HMAC (shared secret signs each body)"),
        ("OAUTH", "OAuth client credentials"),
    ];
    let keep = if editing {
        " (leave empty to keep the stored one)"
    } else {
        ""
    };
    html! {
        fieldset {
            legend { "Authentication the hub sends" }
            label for="auth_method" { "Method" }
            select id="auth_method" name="auth_method" {
                @for (value, label) in methods {
                    @if editing || value != "NONE" {
                        option value=(value) selected[current == Some(value)] { (label) }
                    }
                }
            }
            label for="user_name" { "User name (Basic)" }
            input type="text" id="user_name" name="user_name";
            label for="password" { "Password (Basic)" (keep) }
            input type="password" id="password" name="password" autocomplete="new-password";
            label for="client_id" { "Client id (OAuth)" }
            input type="text" id="client_id" name="client_id";
            label for="client_secret" { "Client secret (HMAC, OAuth)" (keep) }
            input type="password" id="client_secret" name="client_secret"
                autocomplete="new-password";
            label for="auth_url" { "Token URL (OAuth)" }
            input type="url" id="auth_url" name="auth_url";
            label for="auth_header_name" { "Header name (optional)" }
            input type="text" id="auth_header_name" name="auth_header_name";
        }
    }
}

pub fn retry_field(current: &str) -> Markup {
    let policies = [
        ("walmart", "Walmart: 5, 15, 45 minutes, then failed"),
        (
            "sellercenter",
            "SellerCenter: a ladder, then daily up to 30 days",
        ),
        (
            "exponential",
            "Exponential backoff with jitter, up to 3 days",
        ),
    ];
    html! {
        label for="retry_policy" { "Retry policy" }
        select id="retry_policy" name="retry_policy" {
            @for (value, label) in policies {
                option value=(value) selected[value == current] { (label) }
            }
        }
    }
}

/// The extra headers field, filled with `headers` (as `Name: value` lines).
pub fn headers_field(headers: &BTreeMap<String, String>) -> Markup {
    let text = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    html! {
        label for="headers" { "Extra headers (one " code { "Name: value" } " per line)" }
        textarea id="headers" name="headers" rows="3" { (text) }
    }
}

/// The content filter field: the filter as JSON, empty for none.
pub fn filter_field(filter: Option<&Value>) -> Markup {
    let text = filter
        .map(|f| serde_json::to_string_pretty(f).unwrap_or_default())
        .unwrap_or_default();
    html! {
        label for="filter" {
            "Content filter (JSON, e.g. " code { r#"{"payload.total": {"$gte": 100}}"# }
            "; empty: every event)"
        }
        textarea id="filter" name="filter" rows="4" { (text) }
    }
}

/// The filter the form gives: JSON, or `null` (none) when the field is empty.
pub fn filter_from(form: &Form) -> Result<Value, ConsoleError> {
    match form.get("filter") {
        None => Ok(Value::Null),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            ConsoleError(AppError::invalid(
                "filter",
                format!("the filter is not JSON: {e}"),
            ))
        }),
    }
}

/// The transformation field: its JavaScript source, empty for none.
pub fn transform_field(transform: Option<&str>) -> Markup {
    html! {
        label for="transform" {
            "Transformation (JavaScript, e.g. "
            code { "function handler(webhook) { webhook.payload = {sku: webhook.payload.payload.sku}; return webhook; }" }
            "; it may return " code { "{cancel: true}" } "; empty: none)"
        }
        textarea id="transform" name="transform" rows="6" spellcheck="false" {
            (transform.unwrap_or_default())
        }
    }
}

/// The transformation the form gives: its source, or `null` (none) when the field is empty.
/// The API checks that it compiles.
pub fn transform_from(form: &Form) -> Value {
    match form.get("transform") {
        None => Value::Null,
        Some(code) => Value::String(code),
    }
}

/// The "latest state only" box.
pub fn coalesce_field(on: bool) -> Markup {
    html! {
        label {
            input type="checkbox" name="coalesce" value="on" checked[on];
            " Latest state only: a pending delivery of a state event (inventory, price, listing \
             status, order status) gives way to a newer one for the same resource"
        }
    }
}

/// Whether the form ticks "latest state only" (an unticked box is not posted).
pub fn coalesce_from(form: &Form) -> bool {
    form.get("coalesce").is_some()
}

/// The name of a webhook's retry policy, as the form's choice.
pub fn retry_name(sub: &SubscriptionRecord) -> &'static str {
    match sub.retry_policy {
        switchyard_core::retry::RetryPolicy::Sellercenter => "sellercenter",
        switchyard_core::retry::RetryPolicy::Exponential { .. } => "exponential",
        _ => "walmart",
    }
}

/// The API's events for the webhooks the add form asks for: one per event chosen, alone or
/// through its entity; none chosen is an error.
pub fn new_events(form: &Form) -> Result<Vec<Value>, ConsoleError> {
    let entities: BTreeSet<String> = form.all("entity").into_iter().collect();
    let mut types: Vec<&catalog::EventType> = Vec::new();
    for t in catalog::all() {
        let chosen = entities.contains(t.resource_name)
            || form.all("event").iter().any(|e| e == t.event_type);
        if chosen {
            types.push(t);
        }
    }
    if types.is_empty() {
        return Err(ConsoleError(AppError::invalid(
            "events",
            "choose at least one entity or event",
        )));
    }
    let extra = parse_headers(form)?;
    let auth = auth_from(form, false);
    Ok(types
        .iter()
        .map(|t| {
            let mut e = json!({
                "eventType": t.event_type,
                "resourceName": t.resource_name,
                "eventUrl": form.get("event_url").unwrap_or_default(),
                "retryPolicy": form.get("retry_policy").unwrap_or_else(|| "walmart".into()),
                "headers": extra,
            });
            if let Some(p) = form.get("partner_id") {
                e["partnerId"] = json!(p);
            }
            if let Some(a) = &auth {
                e["authDetails"] = a.clone();
            }
            e
        })
        .collect())
}

/// `Name: value` lines into a map; a line without a colon is an error.
pub fn parse_headers(form: &Form) -> Result<BTreeMap<String, String>, ConsoleError> {
    let mut headers = BTreeMap::new();
    for line in form.get("headers").unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            ConsoleError(AppError::invalid(
                "headers",
                format!("header line {line:?} needs the form Name: value"),
            ))
        })?;
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(headers)
}

/// `authDetails` from the form: `None` to leave it out, `Some(Null)` to remove it.
pub fn auth_from(form: &Form, editing: bool) -> Option<Value> {
    let method = form.get("auth_method")?;
    if method == "NONE" {
        return Some(Value::Null);
    }
    let mut auth = json!({"authMethod": method});
    for (field, key) in [
        ("user_name", "userName"),
        ("password", "password"),
        ("client_id", "clientId"),
        ("client_secret", "clientSecret"),
        ("auth_url", "authUrl"),
        ("auth_header_name", "authHeaderName"),
    ] {
        match form.get(field) {
            Some(value) => auth[key] = json!(value),
            // An empty secret when editing keeps the stored one (the API merges masked values).
            None if editing && matches!(key, "password" | "clientSecret") => {
                auth[key] = json!(MASK)
            }
            None => {}
        }
    }
    Some(auth)
}
