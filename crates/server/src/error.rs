//! The one place errors become HTTP answers: `{"error":{"code","message","field"?}}`.
//!
//! Only deliberate errors reach a client with their message; anything else is logged and
//! answered as a 500 without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use switchyard_core::CoreError;
use switchyard_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<i64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a `Retry-After` header of `seconds`.
    pub fn retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::bad_request("invalid_field", message).with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 429 `too_many_failures`: a client id refused for a while after wrong secrets.
    pub fn too_many_failures(retry_after: i64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many wrong secrets for this client; try again in {retry_after} s"),
        )
        .retry_after(retry_after)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    as = Error,
    example = json!({"error": {"code": "invalid_field", "field": "status", "message": "status must be ACTIVE or INACTIVE"}})
)]
pub struct ErrorOut {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable, snake_case.
    pub code: &'static str,
    /// The input at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorOut {
            error: ErrorBody {
                code: self.code,
                field: self.field,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid { field, message } => AppError::invalid(field, message),
            CoreError::Schema { .. } => {
                AppError::bad_request("schema_mismatch", e.to_string()).with_field("payload")
            }
            CoreError::Decrypt => {
                tracing::error!("a stored secret cannot be decrypted: is the master key right?");
                AppError::internal()
            }
        }
    }
}

/// What a 503 for an unavailable database tells the sender to wait, in seconds.
pub const STORE_RETRY_AFTER_SECS: i64 = 1;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            StoreError::Invalid { field, message } => AppError::invalid(field, message),
            // The use cases check the partners a request names first; this is the store's
            // own refusal behind them.
            StoreError::OutOfScope => AppError::forbidden(
                "partner_not_managed",
                "this client does not manage that partner",
            ),
            StoreError::Closed => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the hub is shutting down",
            )
            .retry_after(STORE_RETRY_AFTER_SECS),
            other => {
                tracing::error!(error = %other, "store error");
                // Nothing was made durable: the sender is told when to try again.
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the database is unavailable; nothing was stored, try again",
                )
                .retry_after(STORE_RETRY_AFTER_SECS)
            }
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
