//! Request extractors whose refusals are `AppError`s, so every bad request gets our error shape:
//! JSON and query bodies, and the authenticated caller; and the Basic credentials both token
//! endpoints read.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;

use switchyard_core::model::Client;
use switchyard_core::secrets::tokens;

use crate::AppState;
use crate::error::AppError;

/// The raw body, with the size limit answered as 413.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        "the request body is over the size limit",
                    )
                } else {
                    AppError::bad_request("malformed_body", "the request body could not be read")
                }
            })
    }
}

/// A JSON body parsed into `T`; malformed JSON and wrong fields are 400s naming the problem.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses one JSON value into `T`; anything but whitespace after the value (`{…} garbage`,
/// `{…}}{`) is refused as `malformed_body`, as `serde_json::from_slice` would.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = parse_value(deserializer)?;
    deserializer.end().map_err(|e| {
        AppError::bad_request(
            "malformed_body",
            format!("invalid JSON body: anything after the JSON value is refused ({e})"),
        )
    })?;
    Ok(value)
}

fn parse_value<'de, T: DeserializeOwned>(
    deserializer: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, AppError> {
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "malformed_body"
        } else {
            "invalid_field"
        };
        let err = AppError::bad_request(code, format!("invalid JSON body: {inner}"));
        if path.is_empty() || path == "." || path == "?" {
            err
        } else {
            err.with_field(path)
        }
    })
}

/// Query parameters parsed into `T`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| AppError::bad_request("invalid_query", format!("invalid query: {e}")))
    }
}

/// The client a request is made by, from `Authorization: Bearer` or `WM_SEC.ACCESS_TOKEN`.
pub struct Caller(pub Client);

/// What a token says.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct TokenClaims {
    /// Client id.
    pub c: String,
    /// Expiry, Unix seconds.
    pub e: i64,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| {
                parts
                    .headers
                    .get("WM_SEC.ACCESS_TOKEN")
                    .and_then(|v| v.to_str().ok())
            })
            .map(str::trim)
            .ok_or_else(|| {
                AppError::unauthorized(
                    "unauthorized",
                    "a bearer token is required (POST /v3/token), in Authorization or WM_SEC.ACCESS_TOKEN",
                )
            })?;
        let invalid = || AppError::unauthorized("invalid_token", "the token is invalid or expired");
        let payload = tokens::verify(&state.token_key, bearer).ok_or_else(invalid)?;
        let claims: TokenClaims = serde_json::from_str(&payload).map_err(|_| invalid())?;
        if claims.e <= state.clock.now().as_second() {
            return Err(invalid());
        }
        let client = state
            .store
            .get_client(&claims.c)
            .await?
            .ok_or_else(invalid)?;
        Ok(Caller(client))
    }
}

/// A path parameter; one that cannot be decoded names nothing, so it is a JSON 404.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| PathId(id))
            .map_err(|_| AppError::new(StatusCode::NOT_FOUND, "not_found", "no such object"))
    }
}

/// Several path parameters; ones that cannot be decoded name nothing, so it is a JSON 404.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PathParams(v))
            .map_err(|_| AppError::new(StatusCode::NOT_FOUND, "not_found", "no such object"))
    }
}

/// The client id and secret of an `Authorization: Basic` header, if it holds a well-formed pair.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}
