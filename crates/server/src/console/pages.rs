//! The console's pages. Reads go to the store with the session's tenant filter; every change
//! goes through the JSON API's own handler, called in-process, so the checks are the API's.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

use switchyard_core::catalog;
use switchyard_core::model::{
    AttemptFilter, EventFilter, MASK, OutcomeFilter, RejectionFilter, SubscriptionFilter,
    SubscriptionRecord, SubscriptionStatus,
};
use switchyard_marketplaces::Kind;

use super::html::{
    Form, badge, bar_chart, button_form, csrf_field, esc, link, opt_time, page, q, table, time,
};
use super::{
    ConsoleError, LOGIN_COOKIE, PageResult, Session, cookie, cookie_attributes, end_session,
    start_session,
};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathId;
use crate::routes::wm_partner_id;
use crate::services::{deliveries, events, scope, sources, subscription_controls, subscriptions};
use crate::views;

const PAGE_SIZE: u32 = 50;

/// A form turned into a use case's typed input; a shape the API does not take is a 400.
fn input<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ConsoleError> {
    serde_json::from_value(body)
        .map_err(|e| ConsoleError(AppError::bad_request("invalid_form", e.to_string())))
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

/// A console-local path to go back to, or the fallback (never an outside URL).
fn back_to(form: &Form, fallback: &str) -> String {
    match form.get("back") {
        Some(path) if path.starts_with("/console/") && !path.contains("//") => path,
        _ => fallback.to_string(),
    }
}

/// Notices a redirect may ask a page to show: fixed texts, never text from the URL.
fn notice(query: &Form) -> String {
    let text = match query.get("notice").as_deref() {
        Some("created") => "Webhook created.",
        Some("saved") => "Saved.",
        Some("paused") => "Webhook paused: deliveries wait until it is resumed.",
        Some("resumed") => "Webhook resumed.",
        Some("deleted") => "Webhook deleted; its pending deliveries ended as failed.",
        Some("retried") => "The delivery is pending again and will be sent now.",
        Some("replayed") => "Replay started: the events of that range are pending again.",
        Some("source_saved") => "Source saved.",
        Some("partner_saved") => "Console setting saved.",
        _ => return String::new(),
    };
    format!("<p class=\"notice\">{text}</p>")
}

fn query(raw: Option<String>) -> Form {
    Form::parse(raw.unwrap_or_default().as_bytes())
}

/// A time from a `datetime-local` field (taken as UTC) or RFC 3339.
fn parse_time(form: &Form, name: &str) -> Result<Option<Timestamp>, ConsoleError> {
    let Some(text) = form.get(name) else {
        return Ok(None);
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(Some(t));
    }
    let local = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.clone()
    };
    local
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| Some(z.timestamp()))
        .ok_or_else(|| {
            ConsoleError(AppError::invalid(
                name,
                format!("{name} must be a date and time such as 2026-11-23T08:00"),
            ))
        })
}

fn time_input_value(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

fn parse_uuid(form: &Form, name: &str) -> Option<Uuid> {
    form.get(name).and_then(|v| Uuid::parse_str(&v).ok())
}

// --- sign-in ---

pub async fn home(session: Result<Session, Response>) -> Response {
    match session {
        Ok(_) => see_other("/console/webhooks"),
        Err(_) => see_other("/login"),
    }
}

fn login_page(state: &AppState, error: Option<&str>) -> Response {
    let nonce = switchyard_core::secrets::random_token::<16>();
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/login\" class=\"stack\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{nonce}\">\
         <label for=\"client_id\">Client id</label><input type=\"text\" id=\"client_id\" name=\"client_id\" autocomplete=\"username\" required>\
         <label for=\"client_secret\">Client secret</label><input type=\"password\" id=\"client_secret\" name=\"client_secret\" autocomplete=\"current-password\" required>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"muted\">Sign in with an API client's id and secret (<code>switchyard clients create</code>). \
         Admins see every partner; a partner client sees its own partners.</p>"
    );
    let mut response = super::html::bare_page("Sign in", &body);
    if let Ok(value) = format!(
        "{LOGIN_COOKIE}={nonce}; Max-Age=1800; {}",
        cookie_attributes(state)
    )
    .parse()
    {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

pub async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, None)
}

pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let form = Form::parse(&body);
    // Login CSRF: the form's nonce must match the cookie this browser got with the form.
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let given = form.get("csrf").unwrap_or_default();
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            expected.as_bytes(),
        ))
    {
        let mut response = login_page(&state, Some("The sign-in form expired; try again."));
        *response.status_mut() = StatusCode::FORBIDDEN;
        return Ok(response);
    }
    let id = form.get("client_id").unwrap_or_default();
    let secret = form.get("client_secret").unwrap_or_default();
    let now = state.clock.now();
    if let Err(seconds) = state.sign_in_throttle.check(&id, now) {
        let message = format!("Too many wrong secrets for this client; try again in {seconds} s.");
        let mut response = login_page(&state, Some(&message));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return Ok(response);
    }
    let client = state.store.get_client(&id).await?;
    let valid = client
        .as_ref()
        .is_some_and(|c| switchyard_core::secrets::client_secret_matches(&secret, &c.secret_hash));
    if !valid {
        state.sign_in_throttle.failed(&id, now);
        let mut response = login_page(&state, Some("Unknown client or wrong secret."));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    }
    state.sign_in_throttle.succeeded(&id);
    let mut response = see_other("/console/webhooks");
    let cookie = start_session(&state, &id)?;
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

pub async fn logout(State(state): State<AppState>, session: Session, body: Bytes) -> PageResult {
    session.check_csrf(&Form::parse(&body))?;
    let mut response = see_other("/login");
    if let Ok(value) = end_session(&state).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

// --- webhooks ---

fn describe_types(sub: &SubscriptionRecord) -> String {
    esc(&sub.event_types.join(", "))
}

pub async fn webhooks(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let status = query
        .get("status")
        .and_then(|s| SubscriptionStatus::parse(&s));
    let subs = state
        .store
        .list_subscriptions(&SubscriptionFilter {
            partners: scope::visible_partners(&session.client),
            status,
            ..Default::default()
        })
        .await?;
    let page_no: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let shown = subs
        .iter()
        .skip(page_no * PAGE_SIZE as usize)
        .take(PAGE_SIZE as usize);
    let mut rows = Vec::new();
    for sub in shown {
        let health = state.store.subscription_state(sub.id).await?;
        let breaker_open = health
            .breaker_until
            .is_some_and(|until| until > state.clock.now());
        let mut health_text = format!("{} pending", health.pending);
        if health.consecutive_failures > 0 {
            health_text += &format!(", {} failing in a row", health.consecutive_failures);
        }
        if breaker_open {
            health_text += ", breaker open";
        }
        rows.push(vec![
            link(
                &format!("/console/webhooks/{}", sub.id),
                &sub.event_types.join(", "),
            ),
            esc(&sub.partner_id),
            format!("<code>{}</code>", esc(&sub.event_url)),
            badge(sub.status.as_str()),
            esc(&health_text),
            link(
                &format!("/console/webhooks/{}/logs", sub.id),
                "Callback logs",
            ),
        ]);
    }
    let mut pager = String::new();
    if page_no > 0 {
        pager += &link(
            &format!("/console/webhooks?page={}", page_no - 1),
            "← Newer",
        );
    }
    if subs.len() > (page_no + 1) * PAGE_SIZE as usize {
        pager += &format!(
            " {}",
            link(
                &format!("/console/webhooks?page={}", page_no + 1),
                "Older →"
            )
        );
    }
    let body = format!(
        "{}<div class=\"actions\"><a class=\"button\" href=\"/console/webhooks/new\">Add webhook</a>\
         <a href=\"/console/webhooks\">All</a> <a href=\"/console/webhooks?status=ACTIVE\">Active</a> \
         <a href=\"/console/webhooks?status=INACTIVE\">Paused</a></div>{}<p>{pager}</p>",
        notice(&query),
        table(
            &["Events", "Partner", "URL", "Status", "Health", ""],
            &rows,
            "No webhooks yet. Add one to start receiving events."
        )
    );
    Ok(page(&session, "Webhooks", &body))
}

fn partner_field(session: &Session, current: Option<&str>) -> String {
    let client = &session.client;
    if client.admin {
        return format!(
            "<label for=\"partner_id\">Partner</label><input type=\"text\" id=\"partner_id\" name=\"partner_id\" value=\"{}\" required>",
            esc(current.unwrap_or_default())
        );
    }
    let options: String = client
        .partners
        .iter()
        .map(|p| {
            let selected = if Some(p.as_str()) == current {
                " selected"
            } else {
                ""
            };
            format!("<option{selected}>{}</option>", esc(p))
        })
        .collect();
    format!(
        "<label for=\"partner_id\">Partner</label><select id=\"partner_id\" name=\"partner_id\">{options}</select>"
    )
}

fn auth_fields(current: Option<&str>, editing: bool) -> String {
    let methods = [
        ("", if editing { "Keep as it is" } else { "None" }),
        ("NONE", "None"),
        ("BASIC_AUTH", "Basic (user name and password)"),
        ("HMAC", "HMAC (shared secret signs each body)"),
        ("OAUTH", "OAuth client credentials"),
    ];
    let options: String = methods
        .iter()
        .filter(|(value, _)| editing || *value != "NONE")
        .map(|(value, label)| {
            let selected = if current == Some(value) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{value}\"{selected}>{label}</option>")
        })
        .collect();
    let keep = if editing {
        " (leave empty to keep the stored one)"
    } else {
        ""
    };
    format!(
        "<fieldset><legend>Authentication the hub sends</legend>\
         <label for=\"auth_method\">Method</label><select id=\"auth_method\" name=\"auth_method\">{options}</select>\
         <label for=\"user_name\">User name (Basic)</label><input type=\"text\" id=\"user_name\" name=\"user_name\">\
         <label for=\"password\">Password (Basic){keep}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\">\
         <label for=\"client_id\">Client id (OAuth)</label><input type=\"text\" id=\"client_id\" name=\"client_id\">\
         <label for=\"client_secret\">Client secret (HMAC, OAuth){keep}</label><input type=\"password\" id=\"client_secret\" name=\"client_secret\" autocomplete=\"new-password\">\
         <label for=\"auth_url\">Token URL (OAuth)</label><input type=\"url\" id=\"auth_url\" name=\"auth_url\">\
         <label for=\"auth_header_name\">Header name (optional)</label><input type=\"text\" id=\"auth_header_name\" name=\"auth_header_name\">\
         </fieldset>"
    )
}

fn retry_field(current: &str) -> String {
    let options: String = [
        ("walmart", "Walmart: 5, 15, 45 minutes, then failed"),
        (
            "sellercenter",
            "SellerCenter: a ladder, then daily up to 30 days",
        ),
        (
            "exponential",
            "Exponential backoff with jitter, up to 3 days",
        ),
    ]
    .iter()
    .map(|(value, label)| {
        let selected = if *value == current { " selected" } else { "" };
        format!("<option value=\"{value}\"{selected}>{label}</option>")
    })
    .collect();
    format!(
        "<label for=\"retry_policy\">Retry policy</label><select id=\"retry_policy\" name=\"retry_policy\">{options}</select>"
    )
}

fn headers_text(headers: &BTreeMap<String, String>) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Name: value` lines into a map; a line without a colon is an error.
fn parse_headers(form: &Form) -> Result<BTreeMap<String, String>, ConsoleError> {
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
fn auth_from(form: &Form, editing: bool) -> Option<Value> {
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

pub async fn new_webhook(session: Session) -> PageResult {
    let mut groups: BTreeMap<&str, Vec<&catalog::EventType>> = BTreeMap::new();
    for t in catalog::all() {
        groups.entry(t.resource_name).or_default().push(t);
    }
    let entities: String = groups
        .iter()
        .map(|(resource, types)| {
            let events: String = types
                .iter()
                .map(|t| {
                    format!(
                        "<label title=\"{}\"><input type=\"checkbox\" name=\"event\" value=\"{}\"> {}</label>",
                        esc(t.description),
                        esc(t.event_type),
                        esc(t.event_type)
                    )
                })
                .collect();
            format!(
                "<fieldset><legend><label><input type=\"checkbox\" name=\"entity\" value=\"{r}\"> <strong>{r}</strong>: all its events</label></legend>{events}</fieldset>",
                r = esc(resource)
            )
        })
        .collect();
    let body = format!(
        "<form method=\"post\" action=\"/console/webhooks\" class=\"stack\">{csrf}{partner}\
         <label for=\"event_url\">Callback URL</label><input type=\"url\" id=\"event_url\" name=\"event_url\" placeholder=\"https://example.com/webhooks\" required>\
         <h2>Events</h2><p class=\"muted\">Choose an entity to receive all of its events, or single events. One webhook is made per event.</p>{entities}\
         {auth}{retry}\
         <label for=\"headers\">Extra headers (one <code>Name: value</code> per line)</label><textarea id=\"headers\" name=\"headers\" rows=\"3\"></textarea>\
         <p><button type=\"submit\">Create</button></p></form>",
        csrf = csrf_field(&session),
        partner = partner_field(&session, None),
        auth = auth_fields(None, false),
        retry = retry_field("walmart"),
    );
    Ok(page(&session, "Add webhook", &body))
}

pub async fn create_webhook(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
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
    let extra = parse_headers(&form)?;
    let auth = auth_from(&form, false);
    let events: Vec<Value> = types
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
        .collect();
    let created = subscriptions::create(
        &state,
        &session.client,
        wm_partner_id(&headers),
        input(json!({ "events": events }))?,
    )
    .await?;
    // The signing secrets are shown once, here, and never again.
    let rows: Vec<Vec<String>> = created
        .iter()
        .map(|e| {
            vec![
                link(
                    &format!("/console/webhooks/{}", e.subscription_id),
                    &e.event_type,
                ),
                format!("<code>{}</code>", esc(&e.signing_secret)),
            ]
        })
        .collect();
    let body = format!(
        "<p class=\"notice\">Created {} webhook(s). Copy the signing secrets now: they verify the \
         <code>webhook-signature</code> header and are not shown again.</p>{}\
         <p><a href=\"/console/webhooks\">Back to webhooks</a></p>",
        rows.len(),
        table(&["Event", "Signing secret"], &rows, "")
    );
    Ok(page(&session, "Webhooks created", &body))
}

async fn visible(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<SubscriptionRecord, ConsoleError> {
    Ok(scope::visible_subscription(state, &session.client, id).await?)
}

fn retry_name(sub: &SubscriptionRecord) -> &'static str {
    match sub.retry_policy {
        switchyard_core::retry::RetryPolicy::Sellercenter => "sellercenter",
        switchyard_core::retry::RetryPolicy::Exponential { .. } => "exponential",
        _ => "walmart",
    }
}

async fn webhook_page(
    state: &AppState,
    session: &Session,
    sub: &SubscriptionRecord,
    message: String,
) -> PageResult {
    let health = state.store.subscription_state(sub.id).await?;
    let auth = views::open_auth(state, sub)?;
    let auth_method = auth
        .as_ref()
        .map(|a| {
            serde_json::to_value(a.auth_method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "none".into());
    let id = sub.id;
    let (toggle_to, toggle_label) = if sub.status == SubscriptionStatus::Active {
        ("INACTIVE", "Pause")
    } else {
        ("ACTIVE", "Resume")
    };
    let now = state.clock.now();
    let facts = table(
        &["", ""],
        &[
            vec![
                "Status".into(),
                format!(
                    "{} {}",
                    badge(sub.status.as_str()),
                    esc(sub.disabled_reason.as_deref().unwrap_or_default())
                ),
            ],
            vec!["Events".into(), describe_types(sub)],
            vec!["Partner".into(), esc(&sub.partner_id)],
            vec!["Resource".into(), esc(&sub.resource_name)],
            vec![
                "Callback URL".into(),
                format!("<code>{}</code>", esc(&sub.event_url)),
            ],
            vec!["Authentication".into(), esc(&auth_method)],
            vec!["Retry policy".into(), esc(retry_name(sub))],
            vec!["Pending deliveries".into(), health.pending.to_string()],
            vec!["Oldest pending".into(), opt_time(health.oldest_pending_at)],
            vec![
                "Failures in a row".into(),
                health.consecutive_failures.to_string(),
            ],
            vec![
                "Circuit breaker".into(),
                if health.breaker_until.is_some_and(|u| u > now) {
                    badge("open")
                } else {
                    "closed".into()
                },
            ],
            vec!["Created".into(), time(sub.created_at)],
        ],
        "",
    );
    let actions = format!(
        "<div class=\"actions\">{}{}<form method=\"post\" action=\"/console/webhooks/{id}/status\" class=\"inline\">{}<input type=\"hidden\" name=\"status\" value=\"{toggle_to}\"><button type=\"submit\">{toggle_label}</button></form>{}<a class=\"button\" href=\"/console/webhooks/{id}/logs\">Callback logs</a></div>",
        button_form(
            session,
            &format!("/console/webhooks/{id}/test"),
            "Send a test",
            None
        ),
        "",
        csrf_field(session),
        button_form(
            session,
            &format!("/console/webhooks/{id}/delete"),
            "Delete",
            Some("Delete this webhook? Its pending deliveries end as failed.")
        ),
    );
    let edit = format!(
        "<h2>Edit</h2><form method=\"post\" action=\"/console/webhooks/{id}\" class=\"stack\">{csrf}\
         <label for=\"event_url\">Callback URL</label><input type=\"url\" id=\"event_url\" name=\"event_url\" value=\"{url}\" required>\
         {auth}{retry}\
         <label for=\"headers\">Extra headers (one <code>Name: value</code> per line)</label><textarea id=\"headers\" name=\"headers\" rows=\"3\">{headers}</textarea>\
         <p><button type=\"submit\">Save</button></p></form>",
        csrf = csrf_field(session),
        url = esc(&sub.event_url),
        auth = auth_fields(None, true),
        retry = retry_field(retry_name(sub)),
        headers = esc(&headers_text(&sub.headers)),
    );
    let body = format!("{message}{actions}{facts}{edit}");
    Ok(page(
        session,
        &format!("Webhook {}", sub.event_types.join(", ")),
        &body,
    ))
}

pub async fn webhook(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    webhook_page(&state, &session, &sub, notice(&query(raw))).await
}

pub async fn update_webhook(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let mut patch = json!({
        "eventUrl": form.get("event_url").unwrap_or_default(),
        "headers": parse_headers(&form)?,
    });
    if let Some(policy) = form.get("retry_policy") {
        patch["retryPolicy"] = json!(policy);
    }
    if let Some(auth) = auth_from(&form, true) {
        patch["authDetails"] = auth;
    }
    subscriptions::update(&state, &session.client, &id, input(patch)?).await?;
    Ok(see_other(&format!(
        "/console/webhooks/{}?notice=saved",
        esc(&id)
    )))
}

pub async fn set_status(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let status = form.get("status").unwrap_or_default();
    subscriptions::update(
        &state,
        &session.client,
        &id,
        input(json!({ "status": status }))?,
    )
    .await?;
    let notice = if status == "ACTIVE" {
        "resumed"
    } else {
        "paused"
    };
    let sub = visible(&state, &session, &id).await?;
    Ok(see_other(&format!(
        "/console/webhooks/{}?notice={notice}",
        sub.id
    )))
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    session.check_csrf(&Form::parse(&body))?;
    subscriptions::delete(&state, &session.client, &id).await?;
    Ok(see_other("/console/webhooks?notice=deleted"))
}

pub async fn test_webhook(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    session.check_csrf(&Form::parse(&body))?;
    let sub = visible(&state, &session, &id).await?;
    let mut test = json!({
        "eventType": sub.event_types.first(),
        "eventVersion": sub.event_version,
        "eventUrl": sub.event_url,
        "headers": sub.headers,
        "partnerId": sub.partner_id,
    });
    if let Some(auth) = views::open_auth(&state, &sub)? {
        test["authDetails"] = json!(auth);
    }
    let answer =
        subscriptions::test_notification(&state, &session.client, None, input(test)?).await;
    let message = match answer {
        Ok(_) => "<p class=\"notice\">Test sent: the endpoint answered with a 2xx.</p>".to_string(),
        Err(e) => format!("<p class=\"error\">Test failed: {}</p>", esc(&e.message)),
    };
    webhook_page(&state, &session, &sub, message).await
}

pub async fn callback_logs(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    let query = query(raw);
    let status = query.get("status").unwrap_or_default();
    let since = parse_time(&query, "since")?;
    let until = parse_time(&query, "until")?;
    let logged = state
        .store
        .list_attempts(&AttemptFilter {
            subscription_id: sub.id,
            succeeded: match status.as_str() {
                "succeeded" => Some(true),
                "failed" => Some(false),
                _ => None,
            },
            since,
            until,
            after: parse_uuid(&query, "after"),
            limit: PAGE_SIZE,
        })
        .await?;
    let here = format!(
        "/console/webhooks/{}/logs?status={}&since={}&until={}",
        sub.id,
        q(&status),
        q(&query.get("since").unwrap_or_default()),
        q(&query.get("until").unwrap_or_default())
    );
    let rows: Vec<Vec<String>> = logged
        .iter()
        .map(|l| {
            let a = &l.attempt;
            let excerpt: String = a
                .response_excerpt
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let error = [a.error_class.as_deref(), a.error_message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            vec![
                time(a.attempted_at),
                link(&format!("/console/events/{}", l.event_id), &l.event_type),
                badge(if a.succeeded { "succeeded" } else { "failed" }),
                a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
                format!("{} ms", a.latency_ms),
                esc(&error),
                format!("<code>{}</code>", esc(&excerpt)),
                format!(
                    "<form method=\"post\" action=\"/console/deliveries/{}/retry\" class=\"inline\">{}<input type=\"hidden\" name=\"back\" value=\"{}\"><button type=\"submit\" class=\"secondary\">Retry</button></form>",
                    a.delivery_id,
                    csrf_field(&session),
                    esc(&here)
                ),
            ]
        })
        .collect();
    let select = |value: &str, label: &str| {
        let selected = if status == value { " selected" } else { "" };
        format!("<option value=\"{value}\"{selected}>{label}</option>")
    };
    let filters = format!(
        "<form method=\"get\" class=\"filters\"><label>Status<select name=\"status\">{}{}{}</select></label>\
         <label>Since (UTC)<input type=\"datetime-local\" name=\"since\" value=\"{}\"></label>\
         <label>Until (UTC)<input type=\"datetime-local\" name=\"until\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button></form>",
        select("", "All"),
        select("succeeded", "Succeeded"),
        select("failed", "Failed"),
        time_input_value(since),
        time_input_value(until),
    );
    let next = match (logged.len() == PAGE_SIZE as usize, logged.last()) {
        (true, Some(last)) => link(&format!("{here}&after={}", last.attempt.id), "Older →"),
        _ => String::new(),
    };
    let replay = format!(
        "<h2>Replay a time range</h2><form method=\"post\" action=\"/console/webhooks/{}/replay\" class=\"filters\" data-confirm=\"Deliver every event of this range again?\">{}\
         <label>Received since (UTC)<input type=\"datetime-local\" name=\"since\" required></label>\
         <label>Until (UTC, empty: now)<input type=\"datetime-local\" name=\"until\"></label>\
         <button type=\"submit\">Replay</button></form>",
        sub.id,
        csrf_field(&session)
    );
    let body = format!(
        "{}<p>{} · <code>{}</code> · {}</p>{filters}{}<p>{next}</p>{replay}",
        notice(&query),
        link(
            &format!("/console/webhooks/{}", sub.id),
            &sub.event_types.join(", ")
        ),
        esc(&sub.event_url),
        badge(sub.status.as_str()),
        table(
            &[
                "Time", "Event", "Result", "Status", "Latency", "Error", "Response", ""
            ],
            &rows,
            "No attempts match."
        ),
    );
    Ok(page(&session, "Callback logs", &body))
}

pub async fn retry_delivery(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    deliveries::retry(&state, &session.client, &id).await?;
    let back = back_to(&form, "/console/webhooks");
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!("{back}{sep}notice=retried")))
}

pub async fn replay(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let since = parse_time(&form, "since")?
        .ok_or_else(|| ConsoleError(AppError::invalid("since", "since is required")))?;
    let mut r = json!({ "since": since });
    if let Some(until) = parse_time(&form, "until")? {
        r["until"] = json!(until);
    }
    subscription_controls::replay(&state, &session.client, &id, input(r)?).await?;
    let sub = visible(&state, &session, &id).await?;
    Ok(see_other(&format!(
        "/console/webhooks/{}/logs?notice=replayed",
        sub.id
    )))
}

// --- events ---

/// What a resource search names: `type:id` as given, or a bare id under every resource type.
fn resource_keys(given: &str) -> Vec<String> {
    if given.contains(':') {
        return vec![given.to_string()];
    }
    [
        "order", "item", "product", "return", "shipment", "package", "feed", "account",
    ]
    .iter()
    .map(|kind| format!("{kind}:{given}"))
    .collect()
}

pub async fn events(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let since = parse_time(&query, "since")?;
    let until = parse_time(&query, "until")?;
    let found = state
        .store
        .list_events(&EventFilter {
            partners: scope::visible_partners(&session.client),
            topic: query.get("topic"),
            marketplace: query.get("marketplace"),
            partner_id: query.get("partner"),
            resource_keys: query.get("resource").map(|r| resource_keys(&r)),
            since,
            until,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
        })
        .await?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|e| {
            let marketplace = e
                .normalized
                .as_ref()
                .and_then(|n| n["marketplace"].as_str())
                .unwrap_or(if e.origin == "publish" {
                    "published"
                } else {
                    "—"
                });
            vec![
                time(e.received_at),
                link(&format!("/console/events/{}", e.id), &e.event_type),
                esc(e.topic.as_deref().unwrap_or("—")),
                esc(marketplace),
                esc(&e.partner_id),
                esc(e.resource_key.as_deref().unwrap_or("—")),
            ]
        })
        .collect();
    let topics: String = std::iter::once("<option value=\"\">Any</option>".to_string())
        .chain(
            catalog::all()
                .iter()
                .filter(|t| t.family == catalog::Family::Normalized)
                .map(|t| {
                    let selected = if query.get("topic").as_deref() == Some(t.event_type) {
                        " selected"
                    } else {
                        ""
                    };
                    format!("<option{selected}>{}</option>", esc(t.event_type))
                }),
        )
        .collect();
    let marketplaces: String = std::iter::once("<option value=\"\">Any</option>".to_string())
        .chain(Kind::ALL.iter().map(|k| {
            let name = k.marketplace();
            let selected = if query.get("marketplace").as_deref() == Some(name) {
                " selected"
            } else {
                ""
            };
            format!("<option{selected}>{}</option>", esc(name))
        }))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let value = |name: &str| esc(&query.get(name).unwrap_or_default());
    let filters = format!(
        "<form method=\"get\" class=\"filters\">\
         <label>Topic<select name=\"topic\">{topics}</select></label>\
         <label>Marketplace<select name=\"marketplace\">{marketplaces}</select></label>\
         <label>Partner<input type=\"text\" name=\"partner\" value=\"{}\"></label>\
         <label>Resource id<input type=\"text\" name=\"resource\" value=\"{}\" placeholder=\"PO-1 or order:PO-1\"></label>\
         <label>Since (UTC)<input type=\"datetime-local\" name=\"since\" value=\"{}\"></label>\
         <label>Until (UTC)<input type=\"datetime-local\" name=\"until\" value=\"{}\"></label>\
         <button type=\"submit\">Search</button></form>",
        value("partner"),
        value("resource"),
        time_input_value(since),
        time_input_value(until),
    );
    let next = match (found.len() == PAGE_SIZE as usize, found.last()) {
        (true, Some(last)) => {
            let kept: Vec<(String, String)> = query
                .0
                .iter()
                .filter(|(k, _)| k != "before")
                .cloned()
                .chain([("before".to_string(), last.id.to_string())])
                .collect();
            link(
                &format!(
                    "/console/events?{}",
                    serde_urlencoded::to_string(&kept).unwrap_or_default()
                ),
                "Older →",
            )
        }
        _ => String::new(),
    };
    let body = format!(
        "{filters}{}<p>{next}</p>",
        table(
            &[
                "Received",
                "Event",
                "Topic",
                "Marketplace",
                "Partner",
                "Resource"
            ],
            &rows,
            "No events match."
        )
    );
    Ok(page(&session, "Events", &body))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub async fn event(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
) -> PageResult {
    let (event, deliveries) = events::get(&state, &session.client, &id).await?;
    let mut delivery_html = String::new();
    for d in &deliveries {
        let attempts = state
            .store
            .get_delivery(d.id)
            .await?
            .map(|(_, a)| a)
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = attempts
            .iter()
            .map(|a| {
                vec![
                    time(a.attempted_at),
                    badge(if a.succeeded { "succeeded" } else { "failed" }),
                    a.status_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "—".into()),
                    format!("{} ms", a.latency_ms),
                    esc(a
                        .error_message
                        .as_deref()
                        .or(a.error_class.as_deref())
                        .unwrap_or_default()),
                ]
            })
            .collect();
        delivery_html += &format!(
            "<h3>{} {} · {} attempt(s) · next {}</h3><p class=\"actions\">{}</p>{}",
            link(
                &format!("/console/webhooks/{}", d.subscription_id),
                "Webhook"
            ),
            badge(d.status.as_str()),
            d.attempts,
            opt_time(d.next_attempt_at),
            {
                let mut f = button_form(
                    &session,
                    &format!("/console/deliveries/{}/retry", d.id),
                    "Retry",
                    None,
                );
                f = f.replace(
                    "<button",
                    &format!(
                        "<input type=\"hidden\" name=\"back\" value=\"/console/events/{}\"><button",
                        event.id
                    ),
                );
                f
            },
            table(
                &["Time", "Result", "Status", "Latency", "Error"],
                &rows,
                "Not attempted yet."
            )
        );
    }
    let outcomes = state
        .store
        .list_outcomes(&OutcomeFilter {
            event_id: Some(event.id),
            limit: 100,
            ..Default::default()
        })
        .await?;
    let outcome_rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                time(o.reported_at),
                esc(&o.client_id),
                badge(&o.status),
                esc(o.reason.as_deref().unwrap_or("—")),
                esc(o.message.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    let raw = match &event.raw_body {
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => format!("<pre>{}</pre>", esc(text)),
            Err(_) => format!("<p class=\"muted\">{} bytes, not UTF-8</p>", bytes.len()),
        },
        None => "<p class=\"muted\">Published through the API: no marketplace body.</p>".into(),
    };
    let headers = if event.headers.is_empty() {
        "<p class=\"muted\">None kept.</p>".to_string()
    } else {
        table(
            &["Header", "Value"],
            &event
                .headers
                .iter()
                .map(|(k, v)| vec![format!("<code>{}</code>", esc(k)), esc(v)])
                .collect::<Vec<_>>(),
            "",
        )
    };
    let facts = table(
        &["", ""],
        &[
            vec!["Event type".into(), esc(&event.event_type)],
            vec!["Topic".into(), esc(event.topic.as_deref().unwrap_or("—"))],
            vec!["Partner".into(), esc(&event.partner_id)],
            vec!["Origin".into(), esc(&event.origin)],
            vec!["Marketplace event id".into(), esc(&event.public_event_id)],
            vec![
                "Resource".into(),
                esc(event.resource_key.as_deref().unwrap_or("—")),
            ],
            vec!["Occurred".into(), time(event.occurred_at)],
            vec!["Received".into(), time(event.received_at)],
        ],
        "",
    );
    let normalized = event
        .normalized
        .as_ref()
        .map(|n| format!("<pre>{}</pre>", esc(&pretty(n))))
        .unwrap_or_else(|| "<p class=\"muted\">No normalized form.</p>".into());
    let body = format!(
        "{facts}<div class=\"grid\"><section><h2>Raw body</h2>{raw}</section>\
         <section><h2>Normalized</h2>{normalized}</section></div>\
         <h2>Headers kept</h2>{headers}<h2>Payload delivered</h2><pre>{}</pre>\
         <h2>Deliveries</h2>{}{delivery_html}<h2>Reported outcomes</h2>{}",
        esc(&pretty(&event.payload)),
        if deliveries.is_empty() {
            "<p class=\"empty\">No subscription matched this event.</p>"
        } else {
            ""
        },
        table(
            &["Time", "Client", "Status", "Reason", "Message"],
            &outcome_rows,
            "No subscriber reported an outcome."
        )
    );
    Ok(page(
        &session,
        &format!("Event {}", event.event_type),
        &body,
    ))
}

// --- failures ---

pub async fn failures(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let week = query.get("window").as_deref() == Some("7d");
    let (span, bucket) = if week {
        (SignedDuration::from_hours(24 * 7), 6 * 3600)
    } else {
        (SignedDuration::from_hours(24), 3600)
    };
    let now = state.clock.now();
    // Whole buckets, so the first bar is not a sliver.
    let start_secs = (now - span).as_second().div_euclid(bucket) * bucket + bucket;
    let start = Timestamp::from_second(start_secs).map_err(|_| AppError::internal())?;
    let report = state
        .store
        .failure_report(scope::visible_partners(&session.client), start, bucket)
        .await?;
    let buckets: Vec<Timestamp> = (0..)
        .map(|i| start_secs + i * bucket)
        .take_while(|s| *s <= now.as_second())
        .filter_map(|s| Timestamp::from_second(s).ok())
        .collect();
    let by = |rows: &[switchyard_store::BucketCount],
              series: &dyn Fn(&switchyard_store::BucketCount) -> String| {
        let mut out: BTreeMap<String, BTreeMap<Timestamp, u64>> = BTreeMap::new();
        for r in rows {
            *out.entry(series(r))
                .or_default()
                .entry(r.bucket)
                .or_default() += r.count;
        }
        out
    };
    let subs: BTreeMap<String, SubscriptionRecord> = state
        .store
        .list_subscriptions(&SubscriptionFilter {
            partners: scope::visible_partners(&session.client),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|s| (s.id.to_string(), s))
        .collect();
    let webhook_name = |id: &str| {
        subs.get(id)
            .map(|s| format!("{} → {}", s.event_types.join(", "), s.event_url))
            .unwrap_or_else(|| format!("deleted webhook {id}"))
    };
    let charts = format!(
        "{}{}{}",
        bar_chart(
            "Refused inbound requests, by reason",
            &buckets,
            &by(&report.rejections, &|r| r.reason.clone())
        ),
        bar_chart(
            "Failed delivery attempts, by reason",
            &buckets,
            &by(&report.attempt_failures, &|r| r.reason.clone())
        ),
        bar_chart(
            "Failures reported by subscribers, by reason",
            &buckets,
            &by(&report.outcomes, &|r| r.reason.clone())
        ),
    );
    let totals = |rows: &[switchyard_store::BucketCount]| {
        let mut out: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in rows {
            *out.entry((r.key.clone(), r.reason.clone())).or_default() += r.count;
        }
        let mut sorted: Vec<_> = out.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sorted
    };
    let since_q = q(&start.to_string());
    let rejection_rows: Vec<Vec<String>> = totals(&report.rejections)
        .into_iter()
        .map(|((source, reason), n)| {
            vec![
                esc(&source),
                esc(&reason),
                link(
                    &format!(
                        "/console/rejections?source={}&reason={}&since={since_q}",
                        q(&source),
                        q(&reason)
                    ),
                    &n.to_string(),
                ),
            ]
        })
        .collect();
    let attempt_rows: Vec<Vec<String>> = totals(&report.attempt_failures)
        .into_iter()
        .map(|((sub, reason), n)| {
            vec![
                esc(&webhook_name(&sub)),
                esc(&reason),
                link(
                    &format!("/console/webhooks/{sub}/logs?status=failed&since={since_q}"),
                    &n.to_string(),
                ),
            ]
        })
        .collect();
    let outcome_rows: Vec<Vec<String>> = totals(&report.outcomes)
        .into_iter()
        .map(|((client, reason), n)| {
            vec![
                esc(&client),
                esc(&reason),
                link(
                    &format!("/console/outcomes?reason={}&since={since_q}", q(&reason)),
                    &n.to_string(),
                ),
            ]
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (label, rows) in [
        ("refused", &report.rejections),
        ("delivery", &report.attempt_failures),
        ("subscriber", &report.outcomes),
    ] {
        for r in rows.iter() {
            *reasons.entry(format!("{label}: {}", r.reason)).or_default() += r.count;
        }
    }
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top_rows: Vec<Vec<String>> = top
        .iter()
        .take(10)
        .map(|(reason, n)| vec![esc(reason), n.to_string()])
        .collect();
    let window = format!(
        "<div class=\"actions\">{} {}</div>",
        if week {
            link("/console/failures", "Last 24 hours")
        } else {
            "<strong>Last 24 hours</strong>".into()
        },
        if week {
            "<strong>Last 7 days</strong>".into()
        } else {
            link("/console/failures?window=7d", "Last 7 days")
        },
    );
    let body = format!(
        "{window}<h2>Top reasons</h2>{}{charts}\
         <h2>Refused inbound requests, by source</h2>{}\
         <h2>Failed deliveries, by webhook</h2>{}\
         <h2>Failures reported by subscribers</h2>{}",
        table(
            &["Reason", "Count"],
            &top_rows,
            "Nothing failed in this window."
        ),
        table(
            &["Source", "Reason", "Requests"],
            &rejection_rows,
            "No request was refused."
        ),
        table(
            &["Webhook", "Reason", "Attempts"],
            &attempt_rows,
            "No delivery attempt failed."
        ),
        table(
            &["Client", "Reason", "Events"],
            &outcome_rows,
            "No subscriber reported a failure."
        ),
    );
    Ok(page(&session, "Failures", &body))
}

pub async fn rejections(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let found = state
        .store
        .list_rejections(&RejectionFilter {
            partners: scope::visible_partners(&session.client),
            source_id: query.get("source"),
            reason: query.get("reason"),
            since: parse_time(&query, "since")?,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
        })
        .await?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|r| {
            vec![
                time(r.received_at),
                esc(&r.source_id),
                badge("refused"),
                esc(&r.reason),
                r.status_code.to_string(),
                esc(&r.message),
                esc(r.remote_addr.as_deref().unwrap_or("—")),
                format!("{} bytes", r.body_size),
            ]
        })
        .collect();
    let next = match (found.len() == PAGE_SIZE as usize, found.last()) {
        (true, Some(last)) => link(
            &format!(
                "/console/rejections?source={}&reason={}&before={}",
                q(&query.get("source").unwrap_or_default()),
                q(&query.get("reason").unwrap_or_default()),
                last.id
            ),
            "Older →",
        ),
        _ => String::new(),
    };
    let body = format!(
        "<p>{}</p>{}<p>{next}</p>",
        link("/console/failures", "← Failures"),
        table(
            &[
                "Time", "Source", "", "Reason", "Status", "Message", "From", "Body"
            ],
            &rows,
            "No refused requests match."
        )
    );
    Ok(page(&session, "Refused requests", &body))
}

pub async fn outcomes(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query = query(raw);
    let found = state
        .store
        .list_outcomes(&OutcomeFilter {
            partners: scope::visible_partners(&session.client),
            status: Some("failed".into()),
            reason: query.get("reason"),
            since: parse_time(&query, "since")?,
            before: parse_uuid(&query, "before"),
            limit: PAGE_SIZE,
            ..Default::default()
        })
        .await?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|o| {
            vec![
                time(o.reported_at),
                link(
                    &format!("/console/events/{}", o.event_id),
                    &o.event_id.to_string(),
                ),
                esc(&o.partner_id),
                esc(&o.client_id),
                esc(o.reason.as_deref().unwrap_or("—")),
                esc(o.message.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    let body = format!(
        "<p>{}</p>{}",
        link("/console/failures", "← Failures"),
        table(
            &[
                "Reported", "Event", "Partner", "Client", "Reason", "Message"
            ],
            &rows,
            "No reported failures match."
        )
    );
    Ok(page(&session, "Failures reported by subscribers", &body))
}

// --- sources ---

pub async fn sources(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let found = state
        .store
        .list_sources(scope::visible_partners(&session.client))
        .await?;
    let mut rows = Vec::new();
    for s in &found {
        let url = sources::render(&state.secrets, &state.public_url, s, None)?.ingest_url;
        let stats = state.store.source_stats(s.id).await?;
        rows.push(vec![
            link(&format!("/console/sources/{}", s.id), &s.name),
            esc(&s.kind),
            esc(&s.partners.join(", ")),
            format!(
                "<code class=\"copy\">{}</code> <button type=\"button\" class=\"secondary\" data-copy=\"{}\">Copy</button>",
                esc(&url),
                esc(&url)
            ),
            stats.accepted.to_string(),
            stats.duplicates.to_string(),
            link(&format!("/console/rejections?source={}", s.id), &stats.refused.to_string()),
        ]);
    }
    let body = format!(
        "{}<div class=\"actions\"><a class=\"button\" href=\"/console/sources/new\">Add source</a></div>{}",
        notice(&query(raw)),
        table(
            &[
                "Name",
                "Marketplace",
                "Partners",
                "Ingest URL",
                "Accepted",
                "Duplicates",
                "Refused"
            ],
            &rows,
            "No sources yet. Add one for each marketplace account that sends webhooks."
        )
    );
    Ok(page(&session, "Sources", &body))
}

fn kind_options(current: Option<&str>) -> String {
    Kind::ALL
        .iter()
        .map(|k| {
            let selected = if Some(k.as_str()) == current {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{}\"{selected}>{}</option>",
                k.as_str(),
                esc(k.as_str())
            )
        })
        .collect()
}

pub async fn new_source(session: Session) -> PageResult {
    let body = format!(
        "<form method=\"post\" action=\"/console/sources\" class=\"stack\">{}\
         <label for=\"kind\">Marketplace</label><select id=\"kind\" name=\"kind\">{}</select>\
         <label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" required>\
         <label for=\"partners\">Partners (comma-separated; the first is the default)</label><input type=\"text\" id=\"partners\" name=\"partners\" value=\"{}\" required>\
         <label for=\"secret\">Secret (the marketplace's signing secret or app secret; empty where the kind needs none)</label><input type=\"password\" id=\"secret\" name=\"secret\" autocomplete=\"new-password\">\
         <label for=\"replay_window_seconds\">Replay window, seconds (optional)</label><input type=\"text\" id=\"replay_window_seconds\" name=\"replay_window_seconds\">\
         <label for=\"options\">Options, JSON (optional)</label><textarea id=\"options\" name=\"options\" rows=\"3\"></textarea>\
         <p><button type=\"submit\">Create</button></p></form>",
        csrf_field(&session),
        kind_options(None),
        esc(&session.client.partners.join(", ")),
    );
    Ok(page(&session, "Add source", &body))
}

fn source_body(form: &Form, create: bool) -> Result<Value, ConsoleError> {
    let mut body = json!({});
    if create {
        body["kind"] = json!(form.get("kind").unwrap_or_default());
        if let Some(secret) = form.get("secret") {
            body["secret"] = json!(secret);
        }
    } else if let Some(secret) = form.get("secret") {
        body["secrets"] = json!([{ "value": secret }]);
    }
    if let Some(name) = form.get("name") {
        body["name"] = json!(name);
    }
    body["partners"] = json!(
        form.get("partners")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    );
    if let Some(window) = form.get("replay_window_seconds") {
        let secs: i64 = window.parse().map_err(|_| {
            ConsoleError(AppError::invalid(
                "replayWindowSeconds",
                "the replay window is a whole number of seconds",
            ))
        })?;
        body["replayWindowSeconds"] = json!(secs);
    }
    if let Some(options) = form.get("options") {
        let value: Value = serde_json::from_str(&options).map_err(|e| {
            ConsoleError(AppError::invalid(
                "options",
                format!("options are not JSON: {e}"),
            ))
        })?;
        body["options"] = value;
    }
    Ok(body)
}

pub async fn create_source(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let created =
        sources::create(&state, &session.client, input(source_body(&form, true)?)?).await?;
    let url = created.ingest_url.as_str();
    let body = format!(
        "<p class=\"notice\">Source created. Give the marketplace this ingest URL{}:</p>\
         <p><code class=\"copy\">{}</code> <button type=\"button\" class=\"secondary\" data-copy=\"{}\">Copy</button></p>\
         <p><a href=\"/console/sources\">Back to sources</a></p>",
        if url.contains("/ingest/") && created.kind == "sellercenter" {
            " (its token is shown only now)"
        } else {
            ""
        },
        esc(url),
        esc(url)
    );
    Ok(page(&session, "Source created", &body))
}

pub async fn source(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let view = sources::get(&state, &session.client, &id).await?;
    let source_id = view.source_id.to_string();
    let stats = state.store.source_stats(view.source_id).await?;
    let partners = view.partners.join(", ");
    let url = view.ingest_url.as_str();
    let body = format!(
        "{}{}\
         <h2>Edit</h2><form method=\"post\" action=\"/console/sources/{}\" class=\"stack\">{}\
         <label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" value=\"{}\">\
         <label for=\"partners\">Partners (comma-separated)</label><input type=\"text\" id=\"partners\" name=\"partners\" value=\"{}\">\
         <label for=\"secret\">New secret (empty: keep the stored one)</label><input type=\"password\" id=\"secret\" name=\"secret\" autocomplete=\"new-password\">\
         <label for=\"replay_window_seconds\">Replay window, seconds</label><input type=\"text\" id=\"replay_window_seconds\" name=\"replay_window_seconds\" value=\"{}\">\
         <label for=\"options\">Options, JSON</label><textarea id=\"options\" name=\"options\" rows=\"3\">{}</textarea>\
         <p><button type=\"submit\">Save</button></p></form>",
        notice(&query(raw)),
        table(
            &["", ""],
            &[
                vec!["Marketplace".into(), esc(&view.kind)],
                vec![
                    "Ingest URL".into(),
                    format!(
                        "<code class=\"copy\">{}</code> <button type=\"button\" class=\"secondary\" data-copy=\"{}\">Copy</button>",
                        esc(url),
                        esc(url)
                    )
                ],
                vec!["Accepted".into(), stats.accepted.to_string()],
                vec!["Duplicates".into(), stats.duplicates.to_string()],
                vec![
                    "Refused".into(),
                    link(
                        &format!("/console/rejections?source={}", source_id),
                        &stats.refused.to_string()
                    )
                ],
            ],
            "",
        ),
        esc(&source_id),
        csrf_field(&session),
        esc(&view.name),
        esc(&partners),
        view.replay_window_seconds,
        esc(&pretty(&view.options)),
    );
    Ok(page(&session, &format!("Source {}", view.name), &body))
}

pub async fn update_source(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let updated = sources::update(
        &state,
        &session.client,
        &id,
        input(source_body(&form, false)?)?,
    )
    .await?;
    Ok(see_other(&format!(
        "/console/sources/{}?notice=source_saved",
        updated.source_id
    )))
}

// --- partners (admin) ---

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
    for s in state
        .store
        .list_subscriptions(&SubscriptionFilter::default())
        .await?
    {
        known.insert(s.partner_id);
    }
    for s in state.store.list_sources(None).await? {
        known.extend(s.partners);
    }
    let rows: Vec<Vec<String>> = known
        .iter()
        .map(|p| {
            let on = !disabled.contains(p);
            vec![
                esc(p),
                badge(if on { "ok" } else { "INACTIVE" }).replace(">ok<", ">on<").replace(">INACTIVE<", ">off<"),
                format!(
                    "<form method=\"post\" action=\"/console/partners/{}\" class=\"inline\">{}<input type=\"hidden\" name=\"enabled\" value=\"{}\"><button type=\"submit\" class=\"secondary\">{}</button></form>",
                    q(p),
                    csrf_field(&session),
                    !on,
                    if on { "Switch off" } else { "Switch on" }
                ),
            ]
        })
        .collect();
    let body = format!(
        "{}<p class=\"muted\">Switching the console off for a partner hides its webhooks, events and sources from \
         partner clients here. The API keeps working for them.</p>{}\
         <h2>Another partner</h2><form method=\"post\" action=\"/console/partners/_\" class=\"filters\">{}\
         <label>Partner id<input type=\"text\" name=\"partner_id\" required></label>\
         <input type=\"hidden\" name=\"enabled\" value=\"false\"><button type=\"submit\">Switch off</button></form>",
        notice(&query(raw)),
        table(&["Partner", "Console", ""], &rows, "No partners known yet."),
        csrf_field(&session),
    );
    Ok(page(&session, "Partners", &body))
}

pub async fn set_partner_console(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    body: Bytes,
) -> PageResult {
    admin_only(&session)?;
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
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
    state.store.set_console_enabled(&partner, enabled).await?;
    Ok(see_other("/console/partners?notice=partner_saved"))
}
