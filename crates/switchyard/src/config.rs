//! Settings, from (highest first) flags, `SWITCHYARD_*` environment variables, an optional
//! `switchyard.toml`, and the defaults. The master key comes from `SWITCHYARD_MASTER_KEY` or a
//! key file generated in the data directory with mode 0600.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use switchyard_server::Settings;

/// Flags shared by the commands that open the hub's database.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHYARD_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the SQLite database and the generated master key [default: ./switchyard-data].
    #[arg(long, env = "SWITCHYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite:<data-dir>/switchyard.db].
    #[arg(long, env = "SWITCHYARD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Settings file [default: ./switchyard.toml when it exists].
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Allow delivery targets on loopback, private and link-local addresses.
    #[arg(long, env = "SWITCHYARD_ALLOW_PRIVATE_TARGETS", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_targets: Option<bool>,
    /// Multiplies every retry delay (for staging and tests) [default: 1.0].
    #[arg(long, env = "SWITCHYARD_DELIVERY_TIME_SCALE")]
    pub delivery_time_scale: Option<f64>,
    /// Delivery connect timeout in seconds [default: 5].
    #[arg(long, env = "SWITCHYARD_CONNECT_TIMEOUT_SECS")]
    pub connect_timeout_secs: Option<f64>,
    /// Delivery request timeout in seconds [default: 15].
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<f64>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Deliveries in flight at once [default: 64].
    #[arg(long, env = "SWITCHYARD_DELIVERY_CONCURRENCY")]
    pub delivery_concurrency: Option<usize>,
    /// Longest wait between looks for due deliveries, in milliseconds [default: 1000].
    #[arg(long, env = "SWITCHYARD_POLL_INTERVAL_MS")]
    pub poll_interval_ms: Option<u64>,
    /// How long a claimed delivery stays leased, in seconds [default: 2 × request timeout + 30].
    #[arg(long, env = "SWITCHYARD_DELIVERY_LEASE_SECS")]
    pub delivery_lease_secs: Option<f64>,
    /// Days to keep events, attempts and rejections (pending deliveries are kept) [default: 30].
    #[arg(long, env = "SWITCHYARD_RETENTION_DAYS")]
    pub retention_days: Option<f64>,
    /// Do not apply the database schema on start (`switchyard migrate` does it).
    #[arg(long, env = "SWITCHYARD_NO_MIGRATE", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_migrate: Option<bool>,
    /// Receive and store only; other nodes on the same PostgreSQL database deliver.
    #[arg(long, env = "SWITCHYARD_NO_DELIVER", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_deliver: Option<bool>,
    /// Connections served at once; one past it is answered 503 and closed [default: 4096].
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests served at once; more wait for a place, up to the queueing deadline [default: 256].
    #[arg(long, env = "SWITCHYARD_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// How long a request may wait for a place before it is answered 503 `overloaded`, in
    /// milliseconds [default: 1000].
    #[arg(long, env = "SWITCHYARD_QUEUE_DEADLINE_MS")]
    pub queue_deadline_ms: Option<u64>,
    /// On SIGTERM, how long requests and deliveries in flight may take to finish, in seconds;
    /// deliveries cut off are retried later under the same id [default: 20].
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<f64>,
    /// The URL marketplaces reach this hub at [default: http://<listen>].
    #[arg(long, env = "SWITCHYARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Id of an admin client created at start if missing.
    #[arg(long, env = "SWITCHYARD_BOOTSTRAP_CLIENT_ID")]
    pub bootstrap_client_id: Option<String>,
    /// Secret of that admin client.
    #[arg(
        long,
        env = "SWITCHYARD_BOOTSTRAP_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub bootstrap_client_secret: Option<String>,
}

/// `switchyard.toml`: the same settings, snake_case.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    allow_private_targets: Option<bool>,
    delivery_time_scale: Option<f64>,
    connect_timeout_secs: Option<f64>,
    request_timeout_secs: Option<f64>,
    max_body_bytes: Option<usize>,
    delivery_concurrency: Option<usize>,
    poll_interval_ms: Option<u64>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    queue_deadline_ms: Option<u64>,
    shutdown_grace_secs: Option<f64>,
    public_url: Option<String>,
    bootstrap_client_id: Option<String>,
    bootstrap_client_secret: Option<String>,
}

fn read_file_config(args: &ConfigArgs) -> Result<FileConfig, String> {
    let (path, required) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("switchyard.toml"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn seconds(field: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{field} must be a positive number of seconds"))
}

/// The settings to run with, and the address to listen on.
pub fn load_settings(args: &ConfigArgs) -> Result<(Settings, String), String> {
    let file = read_file_config(args)?;
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("switchyard-data"));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let master_key = master_key(&data_dir)?;
    let mut settings = Settings::new(data_dir, master_key);
    settings.database_url = args.database_url.clone().or(file.database_url);
    settings.allow_private_targets = args
        .allow_private_targets
        .or(file.allow_private_targets)
        .unwrap_or(false);
    let scale = args
        .delivery_time_scale
        .or(file.delivery_time_scale)
        .unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        return Err("delivery time scale must be a positive number".into());
    }
    settings.delivery_time_scale = scale;
    if let Some(s) = args.connect_timeout_secs.or(file.connect_timeout_secs) {
        settings.connect_timeout = seconds("connect timeout", s)?;
    }
    if let Some(s) = args.request_timeout_secs.or(file.request_timeout_secs) {
        settings.request_timeout = seconds("request timeout", s)?;
    }
    if let Some(n) = args.max_body_bytes.or(file.max_body_bytes) {
        settings.max_body_bytes = n.max(1024);
    }
    if let Some(n) = args.delivery_concurrency.or(file.delivery_concurrency) {
        settings.delivery_concurrency = n.clamp(1, 10_000);
    }
    if let Some(ms) = args.poll_interval_ms.or(file.poll_interval_ms) {
        settings.poll_interval = Duration::from_millis(ms.clamp(10, 60_000));
    }
    if let Some(n) = args.max_connections.or(file.max_connections) {
        settings.max_connections = n.clamp(1, 1_000_000);
    }
    if let Some(n) = args.max_in_flight.or(file.max_in_flight) {
        settings.max_in_flight = n.clamp(1, 100_000);
    }
    if let Some(ms) = args.queue_deadline_ms.or(file.queue_deadline_ms) {
        settings.queue_deadline = Duration::from_millis(ms.clamp(1, 60_000));
    }
    if let Some(s) = args.shutdown_grace_secs.or(file.shutdown_grace_secs) {
        settings.shutdown_grace = seconds("shutdown grace", s)?;
    }
    let id = args
        .bootstrap_client_id
        .clone()
        .or(file.bootstrap_client_id);
    let secret = args
        .bootstrap_client_secret
        .clone()
        .or(file.bootstrap_client_secret);
    settings.bootstrap_client = match (id, secret) {
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
    let listen = args
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    settings.migrate_on_start = !args.no_migrate.unwrap_or(false);
    settings.deliver = !args.no_deliver.unwrap_or(false);
    if let Some(days) = args.retention_days {
        settings.retention = seconds("retention", days * 86_400.0)?;
    }
    if let Some(s) = args.delivery_lease_secs {
        settings.delivery_lease = Some(seconds("delivery lease", s)?);
    }
    settings.public_url = args
        .public_url
        .clone()
        .or(file.public_url)
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
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchyard.toml");
        std::fs::write(
            &file,
            format!(
                "listen = \"127.0.0.1:9999\"\ndata_dir = {:?}\ndelivery_time_scale = 0.5\n\
                 request_timeout_secs = 3\nallow_private_targets = true\n",
                dir.path().join("data")
            ),
        )
        .unwrap();
        let from_file = ConfigArgs {
            config: Some(file.clone()),
            ..ConfigArgs::default()
        };
        let (settings, listen) = load_settings(&from_file).unwrap();
        assert_eq!(listen, "127.0.0.1:9999");
        assert_eq!(settings.delivery_time_scale, 0.5);
        assert_eq!(settings.request_timeout, Duration::from_secs(3));
        assert!(settings.allow_private_targets);
        assert!(
            dir.path().join("data/master.key").exists(),
            "key file generated"
        );

        let flags = ConfigArgs {
            config: Some(file),
            listen: Some("127.0.0.1:7777".into()),
            delivery_time_scale: Some(2.0),
            allow_private_targets: Some(false),
            ..ConfigArgs::default()
        };
        let (settings, listen) = load_settings(&flags).unwrap();
        assert_eq!(listen, "127.0.0.1:7777");
        assert_eq!(settings.delivery_time_scale, 2.0);
        assert!(!settings.allow_private_targets);
        // The same key is read back, so sealed secrets stay readable across restarts.
        let (again, _) = load_settings(&flags).unwrap();
        assert_eq!(again.master_key, settings.master_key);
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listen = 5\n").unwrap();
        let args = ConfigArgs {
            config: Some(file),
            ..ConfigArgs::default()
        };
        assert!(load_settings(&args).unwrap_err().contains("bad.toml"));
        let args = ConfigArgs {
            data_dir: Some(dir.path().to_path_buf()),
            delivery_time_scale: Some(-1.0),
            ..ConfigArgs::default()
        };
        assert!(load_settings(&args).is_err());
        let args = ConfigArgs {
            data_dir: Some(dir.path().to_path_buf()),
            bootstrap_client_id: Some("admin".into()),
            ..ConfigArgs::default()
        };
        assert!(load_settings(&args).unwrap_err().contains("BOOTSTRAP"));
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
