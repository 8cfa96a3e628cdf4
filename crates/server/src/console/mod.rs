//! The operator console: server-rendered HTML pages for webhooks, callback logs, events,
//! failures and sources, built into the binary (no separate build, no CDN, no JavaScript needed).
//!
//! Pages act through the same handlers as the JSON API (they call them in-process), so the
//! console can never do what the API would refuse. Sign-in takes a client's id and secret and
//! sets an HttpOnly, SameSite=Strict session cookie; every form carries a CSRF token bound to
//! that session. An admin may switch the console off for a partner: that hides the partner's
//! objects here, while the API keeps working.
//!
//! Pages are maud templates, which escape every spliced text: no text from a record or a request
//! reaches a page unescaped. This module holds the router, the session and the error page;
//! `html` the layout and the building blocks (forms, tables, charts); `requests` what pages share
//! about requests and redirects; one module per part of the console (`login`, `webhooks` with
//! `webhook_form`, `deliveries`, `events`, `failures`, `sources`, `partners`).

mod deliveries;
mod events;
mod failures;
mod html;
mod login;
mod partners;
mod reconciliation;
pub mod replays;
mod requests;
mod sources;
mod webhook_form;
mod webhooks;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::Mac;
use maud::html;
use serde::{Deserialize, Serialize};

use switchyard_core::model::Client;
use switchyard_core::secrets::tokens;

use crate::AppState;
use crate::error::AppError;
use switchyard_core::model::PartnerId;

/// How long a console session lasts.
const SESSION_SECS: i64 = 12 * 3600;
const SESSION_COOKIE: &str = "sy_session";
const LOGIN_COOKIE: &str = "sy_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route(
            "/console/webhooks",
            get(webhooks::webhooks).post(webhooks::create_webhook),
        )
        .route("/console/webhooks/new", get(webhooks::new_webhook))
        .route(
            "/console/webhooks/{id}",
            get(webhooks::webhook).post(webhooks::update_webhook),
        )
        .route("/console/webhooks/{id}/status", post(webhooks::set_status))
        .route(
            "/console/webhooks/{id}/delete",
            post(webhooks::delete_webhook),
        )
        .route("/console/webhooks/{id}/test", post(webhooks::test_webhook))
        .route(
            "/console/webhooks/{id}/transform/try",
            post(webhooks::try_transform),
        )
        .route(
            "/console/webhooks/{id}/logs",
            get(deliveries::callback_logs),
        )
        .route("/console/webhooks/{id}/replay", post(replays::replay))
        .route(
            "/console/webhooks/{id}/replays/{job}",
            get(replays::replay_page),
        )
        .route(
            "/console/deliveries/{id}/retry",
            post(deliveries::retry_delivery),
        )
        .route("/console/events", get(events::events))
        .route("/console/events/{id}", get(events::event))
        .route("/console/failures", get(failures::failures))
        .route("/console/rejections", get(failures::rejections))
        .route("/console/outcomes", get(failures::outcomes))
        .route(
            "/console/sources",
            get(sources::sources).post(sources::create_source),
        )
        .route("/console/sources/new", get(sources::new_source))
        .route(
            "/console/sources/{id}",
            get(sources::source).post(sources::update_source),
        )
        .route(
            "/console/sources/{id}/reconcile",
            post(reconciliation::reconcile_now),
        )
        .route("/console/partners", get(partners::partners))
        .route(
            "/console/partners/{id}",
            post(partners::set_partner_console),
        )
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// What a session cookie says.
#[derive(Serialize, Deserialize)]
struct SessionClaims {
    /// Client id.
    c: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// Random, so two sessions of one client have different CSRF tokens.
    n: String,
}

/// A signed-in operator: the client, narrowed to the partners whose console is on.
pub struct Session {
    pub client: Client,
    /// The form token of this session.
    pub csrf: String,
    /// The client manages partners whose console is off (the pages say so).
    pub hidden_partners: Vec<String>,
}

/// A form a signed-in operator posted, its CSRF token checked. Every console handler that
/// takes a form takes it as this, so none can skip the check.
pub struct Posted {
    pub session: Session,
    pub form: html::Form,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = html::Form::parse(&body);
        session
            .check_csrf(&form)
            .map_err(IntoResponse::into_response)?;
        Ok(Posted { session, form })
    }
}

impl Session {
    /// Refuses a form whose CSRF token is not this session's.
    fn check_csrf(&self, form: &html::Form) -> Result<(), ConsoleError> {
        let given = form.get("csrf").unwrap_or_default();
        if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.csrf.as_bytes()).into() {
            Ok(())
        } else {
            Err(ConsoleError(AppError::forbidden(
                "csrf",
                "the form expired or did not come from this console; reload the page and try again",
            )))
        }
    }
}

fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn csrf_for(state: &AppState, session_token: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&state.console_key)
        .expect("HMAC takes any key length");
    mac.update(b"csrf:");
    mac.update(session_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `Secure` when the hub is served over HTTPS.
fn cookie_attributes(state: &AppState) -> &'static str {
    if state.public_url.starts_with("https://") {
        "HttpOnly; SameSite=Strict; Path=/; Secure"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

/// The `Set-Cookie` value that starts a session for a client.
fn start_session(state: &AppState, client_id: &str) -> Result<String, AppError> {
    let claims = SessionClaims {
        c: client_id.to_string(),
        e: state.clock.now().as_second() + SESSION_SECS,
        n: switchyard_core::secrets::random_token::<12>(),
    };
    let payload = serde_json::to_string(&claims).map_err(|_| AppError::internal())?;
    let token = tokens::sign(&state.console_key, &payload);
    Ok(format!(
        "{SESSION_COOKIE}={token}; Max-Age={SESSION_SECS}; {}",
        cookie_attributes(state)
    ))
}

fn end_session(state: &AppState) -> String {
    format!("{SESSION_COOKIE}=; Max-Age=0; {}", cookie_attributes(state))
}

/// Where a request without a valid session goes.
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(SignInFirst.into_response())?;
        let claims: SessionClaims = tokens::verify(&state.console_key, &token)
            .and_then(|payload| serde_json::from_str(&payload).ok())
            .ok_or(SignInFirst.into_response())?;
        if claims.e <= state.clock.now().as_second() {
            return Err(SignInFirst.into_response());
        }
        let mut client = match state.store.get_client(&claims.c).await {
            Ok(Some(client)) => client,
            Ok(None) => return Err(SignInFirst.into_response()),
            Err(e) => return Err(ConsoleError(e.into()).into_response()),
        };
        let disabled = state
            .store
            .console_disabled_partners()
            .await
            .map_err(|e| ConsoleError(e.into()).into_response())?;
        let mut hidden_partners = Vec::new();
        if !client.admin {
            let (off, on): (Vec<PartnerId>, Vec<PartnerId>) = client
                .partners
                .drain(..)
                .partition(|p| disabled.iter().any(|d| d == p));
            client.partners = on;
            hidden_partners = off.into_iter().map(String::from).collect();
        }
        Ok(Session {
            client,
            csrf: csrf_for(state, &token),
            hidden_partners,
        })
    }
}

/// An error shown as an HTML page with the API's status code and message.
pub struct ConsoleError(pub AppError);

impl From<AppError> for ConsoleError {
    fn from(e: AppError) -> Self {
        ConsoleError(e)
    }
}

impl From<switchyard_store::StoreError> for ConsoleError {
    fn from(e: switchyard_store::StoreError) -> Self {
        ConsoleError(e.into())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        // Internal errors were logged where they became an AppError; the page says only what
        // the API would.
        let message = match &self.0.field {
            Some(field) => format!("{field}: {}", self.0.message),
            None => self.0.message,
        };
        let body = html! {
            p class="error" { (message) }
            p {
                a href="javascript:history.back()" { "Back" }
                " · "
                a href="/" { "Home" }
            }
        };
        let mut response = html::bare_page(&format!("Error {}", status.as_u16()), body);
        *response.status_mut() = status;
        response
    }
}

pub type PageResult = Result<Response, ConsoleError>;
