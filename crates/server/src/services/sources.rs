//! Sources: the inbound endpoints, one per marketplace connection. Secrets are write-only
//! (sealed at rest, masked in reads); a create's view gives the URL to register with the
//! marketplace. `/api/v1/sources`, the console and `switchyard sources create` are adapters.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use switchyard_core::model::{Client, MASK, SourceRecord};
use switchyard_core::secrets::{SecretBox, random_token};
use switchyard_marketplaces::{Kind, Refusal, SourceSecret};

use super::reconcile_settings::{self, ReconcileIn, ReconcileOut};
use super::scope::tenant;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::routes::parse_id;
use switchyard_core::model::PartnerId;
use switchyard_core::model::SourceId;

/// The secret id under which a SellerCenter source keeps the token of its URL.
pub const URL_TOKEN_ID: &str = "url-token";
const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

/// Opens a source's sealed secrets.
pub fn open_secrets(state: &AppState, source: &SourceRecord) -> AppResult<Vec<SourceSecret>> {
    open_with(&state.secrets, source)
}

fn open_with(secrets_box: &SecretBox, source: &SourceRecord) -> AppResult<Vec<SourceSecret>> {
    let plain = secrets_box.open(&source.secrets_sealed)?;
    serde_json::from_str(&plain).map_err(|_| {
        tracing::error!(source = %source.id, "stored source secrets cannot be read");
        AppError::internal()
    })
}

fn seal_secrets(secrets_box: &SecretBox, secrets: &[SourceSecret]) -> String {
    secrets_box.seal(&serde_json::to_string(secrets).unwrap_or_else(|_| "[]".into()))
}

/// The URL a marketplace calls; SellerCenter's carries its token (masked unless `reveal`).
fn ingest_url(public_url: &str, source: &SourceRecord, token: Option<&str>) -> String {
    let base = format!("{public_url}/ingest/{}", source.id);
    if source.kind == Kind::Sellercenter.as_str() {
        format!("{base}/{}", token.unwrap_or(MASK))
    } else {
        base
    }
}

/// A source as the API shows it: secrets masked, SellerCenter's URL token shown only on create.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Source)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    pub created_at: jiff::Timestamp,
    /// What to register with the marketplace.
    pub ingest_url: String,
    #[schema(value_type = SourceKind)]
    pub kind: String,
    pub name: String,
    pub options: Value,
    pub partners: Vec<PartnerId>,
    pub replay_window_seconds: i64,
    pub secrets: Vec<MaskedSecret>,
    pub source_id: SourceId,
    pub updated_at: jiff::Timestamp,
    /// Reconciliation against the marketplace's orders API, when set up (credentials masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileOut>,
}

/// A secret's id, its value always `********`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MaskedSecret {
    pub id: String,
    pub value: &'static str,
}

fn view(
    state: &AppState,
    source: &SourceRecord,
    reveal_token: Option<&str>,
) -> AppResult<SourceView> {
    render(&state.secrets, &state.public_url, source, reveal_token)
}

/// A source as the API shows it, secrets masked (SellerCenter's URL token shown only when given).
pub fn render(
    secrets_box: &SecretBox,
    public_url: &str,
    source: &SourceRecord,
    reveal_token: Option<&str>,
) -> AppResult<SourceView> {
    let secrets = open_with(secrets_box, source)?
        .into_iter()
        .map(|s| MaskedSecret {
            id: s.id,
            value: MASK,
        })
        .collect();
    Ok(SourceView {
        created_at: source.created_at,
        ingest_url: ingest_url(public_url, source, reveal_token),
        kind: source.kind.clone(),
        name: source.name.clone(),
        options: source.options.clone(),
        partners: source.partners.clone(),
        replay_window_seconds: source.replay_window_secs,
        secrets,
        source_id: source.id,
        updated_at: source.updated_at,
        reconcile: match (&source.reconcile, Kind::parse(&source.kind)) {
            (Some(settings), Some(kind)) => {
                Some(reconcile_settings::render(secrets_box, kind, settings)?)
            }
            _ => None,
        },
    })
}

/// Secrets as the API takes them: `[{"id","value"}]`, or a single `"secret"`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SourceSecretInput)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretInput {
    /// Default: its position, from 1.
    pub id: Option<String>,
    /// `********` keeps the stored secret of that id.
    #[schema(min_length = 1, max_length = 8192)]
    pub value: String,
}

/// A source to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SourceCreate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSource {
    #[schema(value_type = SourceKind)]
    pub kind: String,
    pub name: Option<String>,
    #[schema(min_items = 1)]
    pub partners: Vec<String>,
    /// One secret (id `1`).
    pub secret: Option<String>,
    #[schema(max_items = 20)]
    pub secrets: Option<Vec<SecretInput>>,
    #[schema(minimum = 1, maximum = 86_400)]
    pub replay_window_seconds: Option<i64>,
    /// The kind's options (README).
    pub options: Option<Value>,
    /// Reconcile against the marketplace's orders API (README, Reconciliation).
    pub reconcile: Option<ReconcileIn>,
}

/// The kinds of source (`switchyard_marketplaces::Kind`), by name.
pub struct SourceKind;

impl utoipa::PartialSchema for SourceKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let kinds = Kind::ALL.map(Kind::as_str);
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(kinds))
            .into()
    }
}

impl utoipa::ToSchema for SourceKind {}

fn check_partners(caller: &Client, partners: &[String]) -> AppResult<()> {
    if partners.is_empty() || partners.iter().any(|p| p.trim().is_empty()) {
        return Err(AppError::invalid(
            "partners",
            "give at least one partner id",
        ));
    }
    if let Some(p) = partners.iter().find(|p| !caller.manages(p)) {
        return Err(AppError::forbidden(
            "partner_not_managed",
            format!("this client does not manage partner {p:?}"),
        )
        .with_field("partners"));
    }
    Ok(())
}

fn check_window(secs: i64) -> AppResult<i64> {
    if (1..=86_400).contains(&secs) {
        Ok(secs)
    } else {
        Err(AppError::invalid(
            "replayWindowSeconds",
            "replayWindowSeconds must be between 1 and 86400",
        ))
    }
}

/// A source's options: a JSON object that the kind's verifier can work with. A source whose
/// options its verifier refuses would answer every request 500 `source_misconfigured`, so it is
/// refused here instead, with the verifier's own reason.
fn check_options(kind: Kind, options: Option<Value>) -> AppResult<Value> {
    let options = match options.unwrap_or_else(|| json!({})) {
        Value::Object(map) => Value::Object(map),
        _ => {
            return Err(AppError::invalid(
                "options",
                "options must be a JSON object",
            ));
        }
    };
    kind.check_options(&options).map_err(|refusal| {
        let why = match refusal {
            Refusal::Misconfigured(why) => why,
            other => other.to_string(),
        };
        AppError::invalid("options", why)
    })?;
    Ok(options)
}

/// Refuses secrets this kind's verifier could never use with these options (400 `secrets`).
fn check_secrets(kind: Kind, options: &Value, secrets: &[SourceSecret]) -> AppResult<()> {
    let values: Vec<&str> = secrets.iter().map(|s| s.value.as_str()).collect();
    kind.check_secrets(options, &values).map_err(|refusal| {
        let why = match refusal {
            Refusal::Misconfigured(why) => why,
            other => other.to_string(),
        };
        AppError::invalid("secrets", why)
    })
}

fn secrets_from(
    secret: Option<String>,
    secrets: Option<Vec<SecretInput>>,
    kept: &[SourceSecret],
) -> AppResult<Vec<SourceSecret>> {
    let mut out = Vec::new();
    if let Some(value) = secret {
        out.push(SourceSecret {
            id: "1".into(),
            value,
        });
    }
    for (i, s) in secrets.unwrap_or_default().into_iter().enumerate() {
        let id = s.id.unwrap_or_else(|| (i + 1).to_string());
        // A masked value sent back keeps the stored secret of that id.
        let value = if s.value == MASK {
            kept.iter()
                .find(|k| k.id == id)
                .map(|k| k.value.clone())
                .ok_or_else(|| {
                    AppError::invalid("secrets", format!("no stored secret {id:?} to keep"))
                })?
        } else {
            s.value
        };
        out.push(SourceSecret { id, value });
    }
    if out
        .iter()
        .any(|s| s.value.is_empty() || s.value.len() > 8192)
    {
        return Err(AppError::invalid(
            "secrets",
            "secrets must be 1 to 8192 characters",
        ));
    }
    if out.len() > 20 {
        return Err(AppError::invalid("secrets", "at most 20 secrets"));
    }
    Ok(out)
}

/// Checks a create request and builds the source, with SellerCenter's URL token when one is
/// generated. The caller checks that it may speak for the partners. Shared by the API and
/// `switchyard sources create`.
pub fn prepare(
    secrets_box: &SecretBox,
    client_id: &str,
    c: CreateSource,
    now: jiff::Timestamp,
) -> AppResult<(SourceRecord, Option<String>)> {
    let kind = Kind::parse(&c.kind).ok_or_else(|| {
        AppError::bad_request(
            "unknown_kind",
            format!(
                "unknown source kind {:?}; use one of {}",
                c.kind,
                Kind::ALL.map(Kind::as_str).join(", ")
            ),
        )
        .with_field("kind")
    })?;
    if c.partners.is_empty() || c.partners.iter().any(|p| p.trim().is_empty()) {
        return Err(AppError::invalid(
            "partners",
            "give at least one partner id",
        ));
    }
    let window = check_window(
        c.replay_window_seconds
            .unwrap_or(DEFAULT_REPLAY_WINDOW_SECS),
    )?;
    let options = check_options(kind, c.options)?;
    let mut secrets = secrets_from(c.secret, c.secrets, &[])?;
    check_secrets(kind, &options, &secrets)?;
    let mut token = None;
    if kind == Kind::Sellercenter {
        let t = random_token::<24>();
        secrets.push(SourceSecret {
            id: URL_TOKEN_ID.into(),
            value: t.clone(),
        });
        token = Some(t);
    } else if secrets.is_empty() && !matches!(kind, Kind::AmazonSns | Kind::Ebay) {
        // Amazon signs with AWS's certificates and eBay with its published keys; every other
        // kind verifies with a secret it shares with the source.
        return Err(AppError::invalid(
            "secrets",
            format!(
                "a {} source needs a secret to verify requests with",
                kind.as_str()
            ),
        ));
    }
    let source = SourceRecord {
        id: SourceId::new(),
        kind: kind.as_str().into(),
        name: c.name.unwrap_or_else(|| kind.as_str().into()),
        partners: c.partners.into_iter().map(PartnerId::from).collect(),
        secrets_sealed: seal_secrets(secrets_box, &secrets),
        replay_window_secs: window,
        options,
        client_id: client_id.into(),
        created_at: now,
        updated_at: now,
        reconcile: match c.reconcile {
            Some(input) => Some(reconcile_settings::prepare(secrets_box, kind, input, None)?),
            None => None,
        },
    };
    Ok((source, token))
}

/// Creates a source for partners the caller manages; the view carries SellerCenter's URL token
/// this once.
pub async fn create(state: &AppState, caller: &Client, c: CreateSource) -> AppResult<SourceView> {
    check_partners(caller, &c.partners)?;
    let (source, token) = prepare(&state.secrets, &caller.id, c, state.clock.now())?;
    tenant(state, caller).create_source(source.clone()).await?;
    view(state, &source, token.as_deref())
}

/// The sources whose partners the caller may see.
pub async fn list(state: &AppState, caller: &Client) -> AppResult<Vec<SourceView>> {
    let sources = tenant(state, caller).list_sources(None).await?;
    sources.iter().map(|s| view(state, s, None)).collect()
}

/// A source the caller manages every partner of, or 404.
pub async fn visible_source(
    state: &AppState,
    caller: &Client,
    raw: &str,
) -> AppResult<SourceRecord> {
    let id = parse_id(raw, "source")?;
    match tenant(state, caller).get_source(id).await? {
        Some(s) if s.partners.iter().all(|p| caller.manages(p)) => Ok(s),
        _ => Err(AppError::not_found("source")),
    }
}

/// A source the caller may see.
pub async fn get(state: &AppState, caller: &Client, id: &str) -> AppResult<SourceView> {
    let source = visible_source(state, caller, id).await?;
    view(state, &source, None)
}

/// A change to a source: each field given replaces what is stored (a masked secret keeps it).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SourcePatch)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSource {
    pub name: Option<String>,
    pub partners: Option<Vec<String>>,
    pub secrets: Option<Vec<SecretInput>>,
    pub replay_window_seconds: Option<i64>,
    pub options: Option<Value>,
    /// Reconciliation settings: given fields replace the stored ones (a masked or absent
    /// credential keeps its value); `null` turns reconciliation off.
    #[schema(value_type = Option<ReconcileIn>, nullable)]
    pub reconcile: Option<Value>,
}

/// Changes a source the caller may see.
pub async fn update(
    state: &AppState,
    caller: &Client,
    id: &str,
    p: PatchSource,
) -> AppResult<SourceView> {
    let mut source = visible_source(state, caller, id).await?;
    if let Some(name) = p.name {
        source.name = name;
    }
    if let Some(partners) = p.partners {
        check_partners(caller, &partners)?;
        source.partners = partners.into_iter().map(PartnerId::from).collect();
    }
    if let Some(secs) = p.replay_window_seconds {
        source.replay_window_secs = check_window(secs)?;
    }
    let verifying_changed = p.options.is_some() || p.secrets.is_some();
    if p.options.is_some() {
        // Stored kinds are ones `prepare` parsed; one that no longer parses has no verifier
        // either, so the change is refused like its requests are.
        let kind = Kind::parse(&source.kind).ok_or_else(|| {
            tracing::error!(source = %source.id, kind = %source.kind, "source of an unknown kind");
            AppError::internal()
        })?;
        source.options = check_options(kind, p.options)?;
    }
    if let Some(given) = p.secrets {
        let kept = open_secrets(state, &source)?;
        let mut secrets = secrets_from(None, Some(given), &kept)?;
        // SellerCenter's URL token is not the client's to change here.
        if let Some(token) = kept.iter().find(|s| s.id == URL_TOKEN_ID) {
            secrets.retain(|s| s.id != URL_TOKEN_ID);
            secrets.push(token.clone());
        }
        if secrets.is_empty() {
            return Err(AppError::invalid(
                "secrets",
                "a source needs at least one secret",
            ));
        }
        source.secrets_sealed = seal_secrets(&state.secrets, &secrets);
    }
    if let Some(change) = p.reconcile {
        let kind = Kind::parse(&source.kind).ok_or_else(AppError::internal)?;
        source.reconcile = match change {
            Value::Null => None,
            given => {
                let input: ReconcileIn = serde_json::from_value(given)
                    .map_err(|e| AppError::invalid("reconcile", e.to_string()))?;
                Some(reconcile_settings::prepare(
                    &state.secrets,
                    kind,
                    input,
                    source.reconcile.as_ref(),
                )?)
            }
        };
    }
    if verifying_changed {
        // The options and secrets as they would be stored, checked together.
        let kind = Kind::parse(&source.kind).ok_or_else(AppError::internal)?;
        check_secrets(kind, &source.options, &open_secrets(state, &source)?)?;
    }
    source.updated_at = state.clock.now();
    let updated = tenant(state, caller).update_source(source.clone()).await;
    state.sources.forget(source.id);
    if !updated? {
        return Err(AppError::not_found("source"));
    }
    view(state, &source, None)
}

/// Deletes a source the caller may see; returns its id.
pub async fn delete(state: &AppState, caller: &Client, id: &str) -> AppResult<SourceId> {
    let source = visible_source(state, caller, id).await?;
    let deleted = tenant(state, caller).delete_source(source.id).await;
    state.sources.forget(source.id);
    deleted?;
    Ok(source.id)
}
