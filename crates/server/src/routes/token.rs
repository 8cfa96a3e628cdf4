//! `POST /v3/token`: client credentials (HTTP Basic or form fields) for a bearer token.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;

use switchyard_core::secrets::{client_secret_matches, tokens};

use crate::AppState;
use crate::error::{AppError, AppResult, ErrorOut};
use crate::extract::{RawBody, TokenClaims, basic_credentials};
use crate::models::TokenOut;

/// Token lifetime, as Walmart's (`expires_in: 900`).
pub const TOKEN_TTL_SECS: i64 = 900;

/// The token request's form; the credentials may instead be in HTTP Basic.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TokenRequest)]
pub(crate) struct TokenForm {
    #[schema(value_type = GrantType)]
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The one grant the token endpoints take.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Names the form's only value in the document.
pub(crate) enum GrantType {
    ClientCredentials,
}

/// Get a bearer token
///
/// Client credentials in HTTP Basic, or as `client_id` and `client_secret` form fields;
/// `grant_type` must be `client_credentials`. The token is valid for 900 seconds.
#[utoipa::path(
    post, path = "/v3/token", tag = "token", operation_id = "issueToken",
    security(("clientBasic" = []), ()),
    request_body(
        content = TokenForm, content_type = "application/x-www-form-urlencoded",
        example = json!({"grant_type": "client_credentials"}),
    ),
    responses(
        (status = 200, description = "A token.", body = TokenOut),
        (status = 400, description = "The body is not a form (`malformed_body`) or `grant_type` is not `client_credentials` (`unsupported_grant_type`).", body = ErrorOut),
        (status = 401, description = "No credentials, an unknown client or a wrong secret (`invalid_client`).", body = ErrorOut),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 429, description = "Too many wrong secrets for this client id lately (`too_many_failures`): refused, right secret or not, for the seconds `Retry-After` gives (doubling with each further failure, at most 900).", body = ErrorOut,
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> AppResult<impl IntoResponse> {
    let form: TokenForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        AppError::bad_request(
            "malformed_body",
            "send application/x-www-form-urlencoded with grant_type=client_credentials",
        )
    })?;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(AppError::bad_request(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )
        .with_field("grant_type"));
    }
    let (id, secret) = basic_credentials(&headers)
        .or_else(|| Some((form.client_id?, form.client_secret?)))
        .ok_or_else(|| {
            AppError::unauthorized(
                "invalid_client",
                "client credentials are required, in HTTP Basic or as client_id and client_secret",
            )
        })?;
    let now = state.clock.now();
    state
        .sign_in_throttle
        .check(&id, now)
        .map_err(AppError::too_many_failures)?;
    let client = state.store.get_client(&id).await?;
    let valid = client
        .as_ref()
        .is_some_and(|c| client_secret_matches(&secret, &c.secret_hash));
    if !valid {
        state.sign_in_throttle.failed(&id, now);
        return Err(AppError::unauthorized(
            "invalid_client",
            "unknown client or wrong secret",
        ));
    }
    state.sign_in_throttle.succeeded(&id);
    let claims = TokenClaims {
        c: id,
        e: state.clock.now().as_second() + TOKEN_TTL_SECS,
    };
    let payload = serde_json::to_string(&claims).map_err(|_| AppError::internal())?;
    let token = tokens::sign(&state.token_key, &payload);
    Ok(axum::Json(TokenOut {
        access_token: token,
        expires_in: TOKEN_TTL_SECS,
        token_type: "Bearer",
    }))
}
