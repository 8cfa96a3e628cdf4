//! Signing in and out: the sign-in form (with its login-CSRF nonce), the check of a client's id
//! and secret (throttled), and the session cookie.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::html::{Form, bare_page};
use super::requests::see_other;
use super::{
    LOGIN_COOKIE, PageResult, Posted, Session, cookie, cookie_attributes, end_session,
    start_session,
};
use crate::AppState;

pub async fn home(session: Result<Session, Response>) -> Response {
    match session {
        Ok(_) => see_other("/console/webhooks"),
        Err(_) => see_other("/login"),
    }
}

fn login_page(state: &AppState, error: Option<&str>) -> Response {
    let nonce = switchyard_core::secrets::random_token::<16>();
    let body = html! {
        @if let Some(error) = error {
            p class="error" { (error) }
        }
        form method="post" action="/login" class="stack" {
            input type="hidden" name="csrf" value=(nonce);
            label for="client_id" { "Client id" }
            input type="text" id="client_id" name="client_id" autocomplete="username" required;
            label for="client_secret" { "Client secret" }
            input type="password" id="client_secret" name="client_secret"
                autocomplete="current-password" required;
            p { button type="submit" { "Sign in" } }
        }
        p class="muted" {
            "Sign in with an API client's id and secret (" code { "switchyard clients create" }
            "). Admins see every partner; a partner client sees its own partners."
        }
    };
    let mut response = bare_page("Sign in", body);
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

pub async fn logout(State(state): State<AppState>, _: Posted) -> PageResult {
    let mut response = see_other("/login");
    if let Ok(value) = end_session(&state).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}
