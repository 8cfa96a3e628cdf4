//! A source's `reconcile` settings, as `POST /api/v1/sources` and `PATCH
//! /api/v1/sources/{id}` take them and reads show them. The credentials are write-only like
//! every secret: sealed at rest, masked in reads, kept when a masked value is sent back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use switchyard_core::model::{MASK, ReconcileSettings};
use switchyard_core::secrets::SecretBox;
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::{ApiError, OrdersContext};

use crate::error::{AppError, AppResult};

pub const DEFAULT_INTERVAL_SECS: i64 = 900;
pub const DEFAULT_LOOKBACK_SECS: i64 = 86_400;

/// Reconciliation against the marketplace's orders API.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = ReconcileIn)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileIn {
    /// Default: the marketplace's production API. Any http(s) base URL (a sandbox, the
    /// simulator).
    pub api_base_url: Option<String>,
    /// The marketplace's credentials by name (README, Reconciliation); write-only. On a change,
    /// `********` (or leaving this out) keeps the stored value of that name.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Map<String, Value>>,
    /// What the marketplace's client reads that is not secret (`marketplaceIds`, `shopId`).
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// How often it runs (jittered by up to a tenth); default 900.
    #[schema(minimum = 60, maximum = 604_800)]
    pub interval_seconds: Option<i64>,
    /// How far before the last run's end each window starts (the first run: before now), so
    /// that an order changed during a run, or announced late, is not skipped; default 86400.
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub lookback_seconds: Option<i64>,
}

/// A source's reconciliation as reads show it: credentials masked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ReconcileOut)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileOut {
    pub api_base_url: String,
    /// Each credential's name, its value always `********`.
    #[schema(value_type = Object)]
    pub credentials: Map<String, Value>,
    #[schema(value_type = Object)]
    pub options: Value,
    pub interval_seconds: i64,
    pub lookback_seconds: i64,
}

/// The orders API a source of this kind reconciles against, or a 400.
pub fn orders_api(
    kind: Kind,
) -> AppResult<&'static dyn switchyard_marketplaces::orders::OrdersApi> {
    kind.orders().ok_or_else(|| {
        AppError::invalid(
            "reconcile",
            format!(
                "a {} source has no orders API to reconcile with",
                kind.as_str()
            ),
        )
    })
}

/// The credentials stored, opened.
pub fn open_credentials(secrets: &SecretBox, settings: &ReconcileSettings) -> AppResult<Value> {
    let plain = secrets.open(&settings.credentials_sealed)?;
    serde_json::from_str(&plain).map_err(|_| {
        tracing::error!("stored reconcile credentials cannot be read");
        AppError::internal()
    })
}

/// Checks what a source asks for and seals it; `stored` is what a change starts from.
pub fn prepare(
    secrets: &SecretBox,
    kind: Kind,
    input: ReconcileIn,
    stored: Option<&ReconcileSettings>,
) -> AppResult<ReconcileSettings> {
    let api = orders_api(kind)?;
    let field = |name: &str| format!("reconcile.{name}");
    let api_base_url = match input.api_base_url {
        Some(url) => Some(check_url(&url)?),
        None => stored.and_then(|s| s.api_base_url.clone()),
    };
    let mut credentials: Map<String, Value> = match stored {
        Some(s) => match open_credentials(secrets, s)? {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    for (name, value) in input.credentials.unwrap_or_default() {
        match value {
            Value::String(v) if v == MASK => {
                if !credentials.contains_key(&name) {
                    return Err(AppError::invalid(
                        field("credentials"),
                        format!("no stored credential {name:?} to keep"),
                    ));
                }
            }
            Value::String(v) if !v.is_empty() && v.len() <= 8192 => {
                credentials.insert(name, Value::String(v));
            }
            Value::Null => {
                credentials.remove(&name);
            }
            _ => {
                return Err(AppError::invalid(
                    field("credentials"),
                    format!("credential {name:?} must be a string of 1 to 8192 characters"),
                ));
            }
        }
    }
    let options = match input.options {
        Some(Value::Object(map)) => Value::Object(map),
        Some(Value::Null) | None => stored
            .map(|s| s.options.clone())
            .unwrap_or_else(|| json!({})),
        Some(_) => {
            return Err(AppError::invalid(
                field("options"),
                "reconcile.options must be a JSON object",
            ));
        }
    };
    let interval_seconds = input
        .interval_seconds
        .or(stored.map(|s| s.interval_seconds))
        .unwrap_or(DEFAULT_INTERVAL_SECS);
    if !(60..=604_800).contains(&interval_seconds) {
        return Err(AppError::invalid(
            field("intervalSeconds"),
            "reconcile.intervalSeconds must be between 60 and 604800",
        ));
    }
    let lookback_seconds = input
        .lookback_seconds
        .or(stored.map(|s| s.lookback_seconds))
        .unwrap_or(DEFAULT_LOOKBACK_SECS);
    if !(0..=2_592_000).contains(&lookback_seconds) {
        return Err(AppError::invalid(
            field("lookbackSeconds"),
            "reconcile.lookbackSeconds must be between 0 and 2592000",
        ));
    }
    for name in api.required_options() {
        if options.get(*name).is_none_or(Value::is_null) {
            return Err(AppError::invalid(
                field("options"),
                format!(
                    "reconcile.options.{name} is required for a {} source",
                    kind.as_str()
                ),
            ));
        }
    }
    let credentials = Value::Object(credentials);
    check_builds(api, &credentials, &options)?;
    Ok(ReconcileSettings {
        api_base_url,
        credentials_sealed: secrets.seal(&credentials.to_string()),
        options,
        interval_seconds,
        lookback_seconds,
    })
}

/// Builds the first requests a run would make, so that settings the client cannot use (a
/// credential missing) are refused now, with the client's own reason, rather than failing
/// every run.
fn check_builds(
    api: &dyn switchyard_marketplaces::orders::OrdersApi,
    credentials: &Value,
    options: &Value,
) -> AppResult<()> {
    let now = jiff::Timestamp::now();
    let ctx = OrdersContext {
        base_url: "http://reconcile.invalid",
        credentials,
        options,
        partner_id: "partner",
        now,
        nonce: "check",
    };
    let refused = |e: ApiError| match e {
        ApiError::Config(why) => Err(AppError::invalid("reconcile.credentials", why)),
        _ => Ok(()),
    };
    match api.token_request(&ctx) {
        Err(e) => refused(e),
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            let window = switchyard_marketplaces::orders::Window {
                since: now - jiff::SignedDuration::from_hours(1),
                until: now,
            };
            match api.page_request(&ctx, None, window, None) {
                Err(e) => refused(e),
                Ok(_) => Ok(()),
            }
        }
    }
}

fn check_url(url: &str) -> AppResult<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| AppError::invalid("reconcile.apiBaseUrl", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(AppError::invalid(
            "reconcile.apiBaseUrl",
            "reconcile.apiBaseUrl must be an http(s) URL",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AppError::invalid(
            "reconcile.apiBaseUrl",
            "put credentials in reconcile.credentials, not in the URL",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The base URL a source's runs call.
pub fn base_url(kind: Kind, settings: &ReconcileSettings) -> String {
    settings
        .api_base_url
        .clone()
        .or_else(|| kind.orders().map(|api| api.default_base_url().to_string()))
        .unwrap_or_default()
}

/// The settings as reads show them.
pub fn render(
    secrets: &SecretBox,
    kind: Kind,
    settings: &ReconcileSettings,
) -> AppResult<ReconcileOut> {
    let credentials = match open_credentials(secrets, settings)? {
        Value::Object(map) => map.keys().map(|k| (k.clone(), json!(MASK))).collect(),
        _ => Map::new(),
    };
    Ok(ReconcileOut {
        api_base_url: base_url(kind, settings),
        credentials,
        options: settings.options.clone(),
        interval_seconds: settings.interval_seconds,
        lookback_seconds: settings.lookback_seconds,
    })
}
