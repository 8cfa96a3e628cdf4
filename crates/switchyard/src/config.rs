//! One configuration model, [`Config`]: every setting, each available in every layer — the
//! defaults, `switchyard.toml` (its key), `SWITCHYARD_<KEY>` variables and `--<key>` flags, each
//! layer winning over the ones before it — merged by figment, which also tells where each
//! value came from (`switchyard config` prints it). An unknown key in the file is an error that
//! names it and the closest valid one. The master key comes from `SWITCHYARD_MASTER_KEY` or a key
//! file generated in the data directory with mode 0600; it is not a setting (it is never printed).
//!
//! README's settings table is [`settings_table`]'s output, and a test fails when they differ.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use switchyard_server::Settings;

/// Every setting. `None` is "not given in this layer"; [`load_settings`] applies the defaults.
/// Flags, file keys and variables are the field names (kebab-case, as is, and upper-cased after
/// `SWITCHYARD_`).
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// Settings file [default: ./switchyard.toml when it exists; also SWITCHYARD_CONFIG].
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<String>,
    /// Directory for the SQLite database and the generated master key [default: ./switchyard-data].
    #[arg(long)]
    #[serde(
        default,
        deserialize_with = "path",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite:<data-dir>/switchyard.db].
    #[arg(long)]
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_url: Option<String>,
    /// Allow delivery targets on loopback, private and link-local addresses.
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(
        default,
        deserialize_with = "boolish",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_private_targets: Option<bool>,
    /// Multiplies every retry delay (for staging and tests) [default: 1.0].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_time_scale: Option<f64>,
    /// Delivery connect timeout in seconds [default: 5].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<f64>,
    /// Delivery request timeout in seconds [default: 15].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<f64>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Deliveries in flight at once [default: 64].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_concurrency: Option<usize>,
    /// Longest wait between looks for due deliveries, in milliseconds [default: 1000].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// How long a claimed delivery stays leased, in seconds [default: 2 × request timeout + 30].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_lease_secs: Option<f64>,
    /// Days to keep events, attempts and rejections (pending deliveries are kept) [default: 30].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<f64>,
    /// Do not apply the database schema on start (`switchyard migrate` does it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(
        default,
        deserialize_with = "boolish",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_migrate: Option<bool>,
    /// Receive and store only; other nodes on the same PostgreSQL database deliver.
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(
        default,
        deserialize_with = "boolish",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_deliver: Option<bool>,
    /// Connections served at once; one past it is answered 503 and closed [default: 4096].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Requests served at once; more wait for a place, up to the queueing deadline [default: 256].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// How long a request may wait for a place before it is answered 503 `overloaded`, in
    /// milliseconds [default: 1000].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_deadline_ms: Option<u64>,
    /// On SIGTERM, how long requests and deliveries in flight may take to finish, in seconds;
    /// deliveries cut off are retried later under the same id [default: 20].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_secs: Option<f64>,
    /// The URL marketplaces reach this hub at [default: http://<listen>].
    #[arg(long)]
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_url: Option<String>,
    /// Id of an admin client created at start if missing.
    #[arg(long)]
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub bootstrap_client_id: Option<String>,
    /// Secret of that admin client (never printed).
    #[arg(long, hide_env_values = true)]
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub bootstrap_client_secret: Option<String>,
}

/// One setting as README's table and `switchyard config` show it.
pub struct Setting {
    pub key: &'static str,
    pub default: &'static str,
    #[cfg_attr(not(test), allow(dead_code))] // README's table (tested against it).
    pub about: &'static str,
    /// Never printed.
    pub secret: bool,
}

const fn setting(key: &'static str, default: &'static str, about: &'static str) -> Setting {
    Setting {
        key,
        default,
        about,
        secret: false,
    }
}

/// Every setting of [`ConfigArgs`] (a test checks the two agree).
pub const SETTINGS: [Setting; 21] = [
    setting("listen", "`127.0.0.1:8080`", "address to serve on"),
    setting(
        "data_dir",
        "`./switchyard-data`",
        "SQLite file and generated master key",
    ),
    setting(
        "database_url",
        "`sqlite:<data-dir>/switchyard.db`",
        "database: a SQLite path or `postgres://…`",
    ),
    setting("no_migrate", "`false`", "do not apply the schema on start"),
    setting(
        "no_deliver",
        "`false`",
        "receive and store only (an ingest node; other nodes on the same PostgreSQL database deliver)",
    ),
    setting(
        "delivery_lease_secs",
        "2 × request timeout + 30",
        "how long a node holds a claimed delivery",
    ),
    setting(
        "retention_days",
        "`30`",
        "how long events, attempts and rejections are kept",
    ),
    setting(
        "allow_private_targets",
        "`false`",
        "allow delivery to internal addresses",
    ),
    setting(
        "delivery_time_scale",
        "`1.0`",
        "multiplies every retry delay (staging, tests)",
    ),
    setting("connect_timeout_secs", "`5`", "delivery connect timeout"),
    setting("request_timeout_secs", "`15`", "delivery request timeout"),
    setting("max_body_bytes", "`1048576`", "larger requests get 413"),
    setting(
        "delivery_concurrency",
        "`64`",
        "deliveries in flight at once",
    ),
    setting(
        "poll_interval_ms",
        "`1000`",
        "longest wait between looks for due deliveries",
    ),
    setting(
        "max_in_flight",
        "`256`",
        "requests served at once (`/healthz`, `/readyz`, `/metrics` aside); up to 4 × as many more wait in line",
    ),
    setting(
        "max_connections",
        "`4096`",
        "connections served at once; a connection past it is answered 503 `overloaded` with `Retry-After: 1` and closed, so a flood of connections costs bounded memory",
    ),
    setting(
        "queue_deadline_ms",
        "`1000`",
        "how long a request waits in line before it is answered 503 `overloaded` with `Retry-After: 1` (so is one that finds the line full); nothing of it is stored",
    ),
    setting(
        "shutdown_grace_secs",
        "`20`",
        "on SIGTERM, how long requests and deliveries in flight may take to finish",
    ),
    setting(
        "public_url",
        "`http://<listen>`",
        "the URL marketplaces reach the hub at (ingest URLs, eBay's challenge)",
    ),
    setting(
        "bootstrap_client_id",
        "none",
        "admin client created at start if missing (with the secret)",
    ),
    Setting {
        key: "bootstrap_client_secret",
        default: "none",
        about: "that admin client's secret, at least 8 characters",
        secret: true,
    },
];

/// README's settings table: every setting with its flag, variable and file key.
#[cfg(test)]
pub fn settings_table() -> String {
    let mut out = String::from(
        "| flag / variable / `switchyard.toml` key | default | what it does |\n|---|---|---|\n",
    );
    for s in &SETTINGS {
        out.push_str(&format!(
            "| `--{}` / `SWITCHYARD_{}` / `{}` | {} | {} |\n",
            s.key.replace('_', "-"),
            s.key.to_uppercase(),
            s.key,
            s.default,
            s.about
        ));
    }
    out
}

/// A value given as text in one layer and as a number in another (an environment variable's
/// `12345678` is read as a number).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Loose>::deserialize(d)?.map(|v| match v {
        Loose::Text(s) => s,
        Loose::Int(n) => n.to_string(),
        Loose::Float(n) => n.to_string(),
        Loose::Bool(b) => b.to_string(),
    }))
}

fn path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(text(d)?.map(PathBuf::from))
}

/// A boolean as a flag, a file or a variable may say it: `true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off`.
fn boolish<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Bool(bool),
        Int(i64),
        Text(String),
    }
    match Option::<Loose>::deserialize(d)? {
        None => Ok(None),
        Some(Loose::Bool(b)) => Ok(Some(b)),
        Some(Loose::Int(0)) => Ok(Some(false)),
        Some(Loose::Int(1)) => Ok(Some(true)),
        Some(Loose::Text(t)) => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!(
                "{t:?} is not true or false"
            ))),
        },
        Some(Loose::Int(n)) => Err(serde::de::Error::custom(format!(
            "{n} is not true or false"
        ))),
    }
}

/// The settings file and whether it must exist.
fn config_file(args: &ConfigArgs) -> (PathBuf, bool) {
    match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("switchyard.toml"), false),
    }
}

/// Refuses a key of the file that is no setting, naming the closest one.
fn check_file_keys(path: &Path, text: &str) -> Result<(), String> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    for key in table.keys() {
        if SETTINGS.iter().any(|s| s.key == key) {
            continue;
        }
        let closest = SETTINGS
            .iter()
            .map(|s| (strsim::jaro_winkler(key, s.key), s.key))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k)
            .unwrap_or("listen");
        return Err(format!(
            "{}: unknown setting {key:?}; did you mean {closest:?}?",
            path.display()
        ));
    }
    Ok(())
}

/// The layers merged: the file, then `SWITCHYARD_*` variables, then flags.
fn figment(args: &ConfigArgs) -> Result<Figment, String> {
    let (path, required) = config_file(args);
    let mut figment = Figment::new();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            check_file_keys(&path, &text)?;
            figment = figment.merge(Toml::file(&path));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    Ok(figment
        .merge(Env::prefixed("SWITCHYARD_").only(&keys))
        .merge(Serialized::globals(args)))
}

/// The configuration the layers come to (no defaults applied).
fn merged(args: &ConfigArgs) -> Result<(ConfigArgs, Figment), String> {
    let figment = figment(args)?;
    let merged: ConfigArgs = figment.extract().map_err(|e| e.to_string())?;
    Ok((merged, figment))
}

/// `switchyard config`: every setting, its effective value and where it came from, secrets
/// masked.
pub fn describe(args: &ConfigArgs) -> Result<String, String> {
    let (merged, figment) = merged(args)?;
    let values = serde_json::to_value(&merged).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for s in &SETTINGS {
        let line = match values.get(s.key) {
            Some(value) => {
                let shown = if s.secret {
                    "\"********\"".to_string()
                } else {
                    value.to_string()
                };
                let origin = figment
                    .find_metadata(s.key)
                    .map(|m| match &m.source {
                        Some(figment::Source::File(path)) => path.display().to_string(),
                        _ if m.name.contains("environment") => {
                            format!("SWITCHYARD_{}", s.key.to_uppercase())
                        }
                        // The flags' layer (figment names it after the type).
                        _ => "command line".into(),
                    })
                    .unwrap_or_else(|| "?".into());
                format!("{} = {shown}    # {origin}\n", s.key)
            }
            None => format!(
                "# {} = {}    # default\n",
                s.key,
                s.default.trim_matches('`')
            ),
        };
        out.push_str(&line);
    }
    Ok(out)
}

fn seconds(field: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{field} must be a positive number of seconds"))
}

/// The settings to run with, and the address to listen on.
pub fn load_settings(args: &ConfigArgs) -> Result<(Settings, String), String> {
    let (c, _) = merged(args)?;
    let data_dir = c
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("switchyard-data"));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let master_key = master_key(&data_dir)?;
    let mut settings = Settings::new(data_dir, master_key);
    settings.database_url = c.database_url.clone();
    settings.allow_private_targets = c.allow_private_targets.unwrap_or(false);
    let scale = c.delivery_time_scale.unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        return Err("delivery time scale must be a positive number".into());
    }
    settings.delivery_time_scale = scale;
    if let Some(s) = c.connect_timeout_secs {
        settings.connect_timeout = seconds("connect timeout", s)?;
    }
    if let Some(s) = c.request_timeout_secs {
        settings.request_timeout = seconds("request timeout", s)?;
    }
    if let Some(n) = c.max_body_bytes {
        settings.max_body_bytes = n.max(1024);
    }
    if let Some(n) = c.delivery_concurrency {
        settings.delivery_concurrency = n.clamp(1, 10_000);
    }
    if let Some(ms) = c.poll_interval_ms {
        settings.poll_interval = Duration::from_millis(ms.clamp(10, 60_000));
    }
    if let Some(n) = c.max_connections {
        settings.max_connections = n.clamp(1, 1_000_000);
    }
    if let Some(n) = c.max_in_flight {
        settings.max_in_flight = n.clamp(1, 100_000);
    }
    if let Some(ms) = c.queue_deadline_ms {
        settings.queue_deadline = Duration::from_millis(ms.clamp(1, 60_000));
    }
    if let Some(s) = c.shutdown_grace_secs {
        settings.shutdown_grace = seconds("shutdown grace", s)?;
    }
    settings.bootstrap_client = match (
        c.bootstrap_client_id.clone(),
        c.bootstrap_client_secret.clone(),
    ) {
        (Some(id), Some(secret)) if !id.is_empty() && secret.len() >= 8 => Some((id, secret)),
        (None, None) => None,
        _ => {
            return Err(
                "SWITCHYARD_BOOTSTRAP_CLIENT_ID and SWITCHYARD_BOOTSTRAP_CLIENT_SECRET go together \
                 (secret at least 8 characters)"
                    .into(),
            );
        }
    };
    let listen = c.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
    settings.migrate_on_start = !c.no_migrate.unwrap_or(false);
    settings.deliver = !c.no_deliver.unwrap_or(false);
    if let Some(days) = c.retention_days {
        settings.retention = seconds("retention", days * 86_400.0)?;
    }
    if let Some(s) = c.delivery_lease_secs {
        settings.delivery_lease = Some(seconds("delivery lease", s)?);
    }
    settings.public_url = c
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    Ok((settings, listen))
}

/// `SWITCHYARD_MASTER_KEY` (64 hex characters are taken as 32 bytes; other text as it is, at
/// least 16 characters), else `<data_dir>/master.key`, generated on first start.
fn master_key(data_dir: &Path) -> Result<Vec<u8>, String> {
    if let Ok(key) = std::env::var("SWITCHYARD_MASTER_KEY") {
        let key = key.trim();
        if key.len() == 64
            && let Ok(bytes) = hex::decode(key)
        {
            return Ok(bytes);
        }
        if key.len() < 16 {
            return Err("SWITCHYARD_MASTER_KEY must be at least 16 characters".into());
        }
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .map_err(|_| format!("{} does not hold a hex key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
            write_private(&path, &hex::encode(key))?;
            tracing::info!(path = %path.display(), "generated a master key; keep it, it opens the stored secrets");
            Ok(key.to_vec())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Args as _;
    use figment::Jail;

    use super::*;

    /// Tests that read the environment run in figment's `Jail` (one at a time, with the
    /// variables and working directory they set), so none sees another's.
    #[allow(clippy::result_large_err)] // figment's own error type, in its own test harness.
    fn jailed(test: impl FnOnce(&mut Jail) -> Result<(), String>) {
        Jail::expect_with(|jail| test(jail).map_err(Into::into));
    }

    #[test]
    fn every_setting_is_a_flag_a_variable_and_a_file_key_and_in_the_readme() {
        let command = ConfigArgs::augment_args(clap::Command::new("serve"));
        let mut flags: Vec<String> = command
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "config")
            .collect();
        flags.sort();
        let mut keys: Vec<String> = SETTINGS.iter().map(|s| s.key.to_string()).collect();
        keys.sort();
        assert_eq!(
            flags, keys,
            "ConfigArgs and SETTINGS list the same settings"
        );
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&settings_table()),
            "README's settings table is not settings_table()'s; paste this in:\n{}",
            settings_table()
        );
    }

    #[test]
    fn flags_win_over_variables_over_the_file_over_defaults_for_every_setting() {
        jailed(|jail| {
            let data = jail.directory().join("data");
            jail.create_file(
                "switchyard.toml",
                &format!(
                    "listen = \"127.0.0.1:9999\"\ndata_dir = {:?}\ndelivery_time_scale = 0.5\n\
                     request_timeout_secs = 3\nallow_private_targets = true\nretention_days = 7\n\
                     delivery_lease_secs = 90\nno_migrate = true\nno_deliver = true\n",
                    data
                ),
            )
            .map_err(|e| e.to_string())?;
            let (settings, listen) = load_settings(&ConfigArgs::default())?;
            assert_eq!(listen, "127.0.0.1:9999");
            assert_eq!(settings.delivery_time_scale, 0.5);
            assert_eq!(settings.request_timeout, Duration::from_secs(3));
            assert!(settings.allow_private_targets);
            // The four settings the file once refused.
            assert_eq!(settings.retention, Duration::from_secs(7 * 86_400));
            assert_eq!(settings.delivery_lease, Some(Duration::from_secs(90)));
            assert!(!settings.migrate_on_start && !settings.deliver);
            assert!(data.join("master.key").exists(), "key file generated");

            // Variables win over the file, each boolean spelling taken.
            jail.set_env("SWITCHYARD_LISTEN", "127.0.0.1:8888");
            jail.set_env("SWITCHYARD_DELIVERY_TIME_SCALE", "2");
            jail.set_env("SWITCHYARD_NO_DELIVER", "0");
            jail.set_env("SWITCHYARD_ALLOW_PRIVATE_TARGETS", "no");
            jail.set_env("SWITCHYARD_BOOTSTRAP_CLIENT_ID", "admin");
            jail.set_env("SWITCHYARD_BOOTSTRAP_CLIENT_SECRET", "12345678");
            // Not a setting: ignored, not an error.
            jail.set_env("SWITCHYARD_TEST_SOMETHING", "x");
            let (settings, listen) = load_settings(&ConfigArgs::default())?;
            assert_eq!(listen, "127.0.0.1:8888");
            assert_eq!(settings.delivery_time_scale, 2.0);
            assert!(settings.deliver && !settings.allow_private_targets);
            assert_eq!(
                settings.bootstrap_client,
                Some(("admin".to_string(), "12345678".to_string()))
            );

            // Flags win over variables.
            let flags = ConfigArgs {
                listen: Some("127.0.0.1:7777".into()),
                delivery_time_scale: Some(3.0),
                no_deliver: Some(true),
                ..ConfigArgs::default()
            };
            let (settings, listen) = load_settings(&flags)?;
            assert_eq!(listen, "127.0.0.1:7777");
            assert_eq!(settings.delivery_time_scale, 3.0);
            assert!(!settings.deliver);
            // The same key is read back, so sealed secrets stay readable across restarts.
            let (again, _) = load_settings(&flags)?;
            assert_eq!(again.master_key, settings.master_key);

            // `switchyard config` says where each value came from, and masks the secret.
            let said = describe(&flags)?;
            let line = |key: &str| {
                said.lines()
                    .find(|l| l.starts_with(&format!("{key} = ")))
                    .unwrap_or_default()
                    .to_string()
            };
            assert!(
                line("listen").contains("\"127.0.0.1:7777\"")
                    && line("listen").ends_with("# command line"),
                "{said}"
            );
            assert!(line("no_deliver").ends_with("# command line"), "{said}");
            assert_eq!(
                line("allow_private_targets"),
                "allow_private_targets = false    # SWITCHYARD_ALLOW_PRIVATE_TARGETS",
                "{said}"
            );
            assert!(
                line("retention_days").ends_with("switchyard.toml"),
                "{said}"
            );
            assert!(
                said.contains("# max_in_flight = 256    # default"),
                "{said}"
            );
            assert!(
                line("bootstrap_client_secret").contains("********"),
                "{said}"
            );
            assert!(
                !said.contains("12345678"),
                "the secret is never printed: {said}"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        jailed(|jail| {
            jail.create_file("bad.toml", "listen = [5]\n")
                .map_err(|e| e.to_string())?;
            let args = ConfigArgs {
                config: Some("bad.toml".into()),
                ..ConfigArgs::default()
            };
            assert!(load_settings(&args).is_err());
            jail.create_file("typo.toml", "retention_day = 3\n")
                .map_err(|e| e.to_string())?;
            let args = ConfigArgs {
                config: Some("typo.toml".into()),
                ..ConfigArgs::default()
            };
            let error = load_settings(&args).err().unwrap_or_default();
            assert!(
                error.contains("\"retention_day\"")
                    && error.contains("did you mean \"retention_days\""),
                "{error}"
            );
            let args = ConfigArgs {
                config: Some("missing.toml".into()),
                ..ConfigArgs::default()
            };
            assert!(load_settings(&args).is_err(), "a named file must exist");
            let dir = jail.directory().to_path_buf();
            let args = ConfigArgs {
                data_dir: Some(dir.clone()),
                delivery_time_scale: Some(-1.0),
                ..ConfigArgs::default()
            };
            assert!(load_settings(&args).is_err());
            let args = ConfigArgs {
                data_dir: Some(dir),
                bootstrap_client_id: Some("admin".into()),
                ..ConfigArgs::default()
            };
            assert!(
                load_settings(&args)
                    .err()
                    .unwrap_or_default()
                    .contains("BOOTSTRAP")
            );
            jail.set_env("SWITCHYARD_NO_DELIVER", "maybe");
            assert!(load_settings(&ConfigArgs::default()).is_err());
            Ok(())
        });
    }

    #[cfg(unix)]
    #[test]
    fn the_generated_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        master_key(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
