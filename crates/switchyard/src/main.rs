//! The `switchyard` binary: `serve`, `migrate`, `clients create`.

// jemalloc rather than glibc's malloc: its per-thread caches took 18% off the hub's CPU per
// ingest and 35% per delivery (BENCHMARKS.md, "jemalloc"), where glibc's consolidation of freed
// chunks showed in every profile; the idle hub's RSS is 24 MiB with it, 17 without.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod config;
mod replay;
mod telemetry;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use switchyard_core::SystemClock;
use switchyard_core::model::{Access, Client};
use switchyard_core::secrets::{hash_client_secret, random_token};
use switchyard_server::services::sources;
use switchyard_server::{Hub, open_store};

use config::{ConfigArgs, load_settings};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Self-hosted webhook hub for marketplace commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: HTTP API and delivery.
    Serve(ConfigArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(ConfigArgs),
    /// Print the effective configuration: every setting, its value and where it came from
    /// (default, the file, a SWITCHYARD_* variable, a flag); secrets masked.
    Config(ConfigArgs),
    /// Deliver again every event a subscription received in a time range (with its progress on
    /// a terminal); a serving hub on the same database delivers them.
    Replay(replay::ReplayArgs),
    /// Manage API clients.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Manage inbound sources (one per marketplace connection).
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Send a correctly signed webhook in a marketplace's exact format (to test a receiver,
    /// Switchyard's own /ingest included); `simulate orders` serves a marketplace's orders API
    /// instead, for reconciliation.
    Simulate(Simulate),
}

#[derive(Subcommand)]
enum SourcesCommand {
    /// Create a source and print it with the URL to register with the marketplace.
    Create(CreateSource),
}

#[derive(Args)]
struct CreateSource {
    #[command(flatten)]
    config: ConfigArgs,
    /// amazon_sns, ebay, etsy, tiktok, walmart, flipkart, sellercenter, shopify or standard.
    #[arg(long)]
    kind: String,
    /// A partner (seller) the source may speak for; repeat for several (the first is the default).
    #[arg(long = "partner", required = true)]
    partners: Vec<String>,
    #[arg(long)]
    name: Option<String>,
    /// A secret, ID=VALUE (e.g. a Walmart key version) or just VALUE; repeatable.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// A kind option, KEY=VALUE (VALUE is taken as JSON when it parses, else as text); repeatable.
    #[arg(long = "option")]
    options: Vec<String>,
    /// Largest accepted age of a signed timestamp, in seconds [default: 300].
    #[arg(long)]
    replay_window_secs: Option<i64>,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Simulate {
    #[command(subcommand)]
    command: Option<SimulateCommand>,
    /// amazon_sns, ebay, etsy, tiktok, walmart, flipkart, sellercenter, shopify or standard.
    #[arg(long, required = true)]
    marketplace: Option<String>,
    /// The native event type (e.g. PO_CREATED, orders/create, 1 for TikTok's order status).
    #[arg(long, required = true)]
    event: Option<String>,
    /// Where to send it (a source's ingest URL).
    #[arg(long, required = true)]
    to: Option<String>,
    /// The secret to sign with (HMAC key, token, app secret); Amazon and eBay generate a key
    /// when it is not given.
    #[arg(long, default_value = "")]
    secret: String,
    /// The partner (seller) the payload names.
    #[arg(long, default_value = "seller-1")]
    partner: String,
    /// The resource (order) id the payload names.
    #[arg(long, default_value = "ORDER-1")]
    resource: String,
    /// The marketplace's event id (default: random).
    #[arg(long)]
    event_id: Option<String>,
    /// A signing option, KEY=VALUE (e.g. appKey=..., keyVersion=2, form=seed); repeatable.
    #[arg(long = "option")]
    options: Vec<String>,
    /// Change the body after signing: the receiver must refuse it.
    #[arg(long)]
    tamper: bool,
    /// Sign with a time an hour ago: the receiver must refuse it as a replay.
    #[arg(long)]
    stale: bool,
    /// Sign as of this instant (RFC 3339, e.g. 2026-11-25T15:00:00Z) instead of now: for a
    /// receiver whose clock is not the machine's (a test's, a replayed capture's).
    #[arg(long, value_name = "INSTANT")]
    at: Option<jiff::Timestamp>,
    /// Send the same request twice: the receiver must count it once.
    #[arg(long)]
    duplicate: bool,
    /// Write the generated key and certificate (Amazon, eBay) to this file.
    #[arg(long)]
    key_out: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// Serve a marketplace's orders API on this machine from orders it is given (its auth,
    /// paging and 429s as the marketplace documents them), for a source's `reconcile.apiBaseUrl`.
    /// Beside the API: `GET|PUT|POST /_simulator/orders`, `PUT /_simulator/config`,
    /// `GET /_simulator/requests`. Runs until interrupted.
    Orders(SimulateOrders),
}

#[derive(Args)]
struct SimulateOrders {
    /// amazon_sns, ebay, etsy, tiktok, walmart, flipkart, sellercenter or shopify.
    #[arg(long)]
    marketplace: String,
    /// The address to serve on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// A JSON file of orders: `[{"id", "status", "createdAt", "updatedAt", "extra"?}]`.
    #[arg(long)]
    orders: Option<std::path::PathBuf>,
    /// The credentials it accepts, as JSON by the names the source's `reconcile.credentials`
    /// uses (e.g. `{"clientId":"id","clientSecret":"secret"}` for Walmart).
    #[arg(long, default_value = "{}")]
    credentials: String,
    /// Orders per page.
    #[arg(long, default_value_t = 2)]
    page_size: usize,
    /// Answer every Nth call with 429 (0: never).
    #[arg(long, default_value_t = 0)]
    rate_limit_every: u64,
    /// Seconds sent in `Retry-After` with a 429 (where the marketplace sends one).
    #[arg(long)]
    retry_after: Option<u64>,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Create an API client and print its secret (shown once).
    Create(CreateClient),
}

#[derive(Args)]
struct CreateClient {
    #[command(flatten)]
    config: ConfigArgs,
    /// A name to recognise the client by.
    #[arg(long)]
    name: String,
    /// The client id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// A partner (seller) the client manages; repeat for several.
    #[arg(long = "partner")]
    partners: Vec<String>,
    /// Delegated access on a resource, RESOURCE=no_access|view_only|full_access; repeatable.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// An admin sees and changes every partner's objects.
    #[arg(long)]
    admin: bool,
    /// Print {"clientId","clientSecret"} as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // One TLS provider for the whole process, before anything builds a TLS config.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // Declared before the runtime, so dropped after it: spans still queued are flushed.
    let _telemetry = telemetry::init(matches!(cli.command, Command::Migrate(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            let (settings, _) = load_settings(&args)?;
            open_store(&settings, false)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("schema is up to date");
            Ok(())
        }
        Command::Clients {
            command: ClientsCommand::Create(c),
        } => create_client(c).await,
        Command::Simulate(s) => simulate(s).await,
        Command::Replay(args) => replay::replay(args).await,
        Command::Config(args) => {
            print!("{}", config::describe(&args)?);
            Ok(())
        }
        Command::Sources {
            command: SourcesCommand::Create(c),
        } => create_source(c).await,
    }
}

async fn create_source(c: CreateSource) -> Result<(), String> {
    let (settings, _) = load_settings(&c.config)?;
    let store = open_store(&settings, false)
        .await
        .map_err(|e| e.to_string())?;
    let secrets: Vec<serde_json::Value> = c
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| match s.split_once('=') {
            Some((id, value)) => serde_json::json!({"id": id, "value": value}),
            None => serde_json::json!({"id": (i + 1).to_string(), "value": s}),
        })
        .collect();
    let mut options = serde_json::Map::new();
    for option in &c.options {
        let (k, v) = option
            .split_once('=')
            .ok_or_else(|| format!("--option {option:?}: use KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        options.insert(k.to_string(), value);
    }
    let request = serde_json::json!({
        "kind": c.kind, "name": c.name, "partners": c.partners, "secrets": secrets,
        "replayWindowSeconds": c.replay_window_secs, "options": options,
    });
    let input = serde_json::from_value(request).map_err(|e| e.to_string())?;
    let secrets_box = switchyard_core::secrets::SecretBox::new(&settings.master_key);
    let refused = |e: switchyard_server::error::AppError| format!("{} ({})", e.message, e.code);
    let (source, token) =
        sources::prepare(&secrets_box, "cli", input, jiff::Timestamp::now()).map_err(refused)?;
    store
        .create_source(source.clone())
        .await
        .map_err(|e| e.to_string())?;
    let view = sources::render(
        &secrets_box,
        &settings.public_url,
        &source,
        token.as_deref(),
    )
    .map_err(refused)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&view).unwrap_or_default()
    );
    Ok(())
}

/// `simulate orders`: serves until Ctrl-C or SIGTERM.
async fn simulate_orders(s: SimulateOrders) -> Result<(), String> {
    let orders: Vec<switchyard_simulator::SimOrder> = match &s.orders {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a JSON array of orders: {e}", path.display()))?
        }
        None => Vec::new(),
    };
    let credentials: serde_json::Value = serde_json::from_str(&s.credentials)
        .map_err(|e| format!("--credentials is not JSON: {e}"))?;
    if !credentials.is_object() {
        return Err("--credentials is a JSON object".into());
    }
    let config = switchyard_simulator::SimConfig {
        credentials,
        page_size: s.page_size.max(1),
        rate_limit_every: s.rate_limit_every,
        always_rate_limit: false,
        retry_after: s.retry_after,
    };
    let count = orders.len();
    let running = switchyard_simulator::start(&s.marketplace, &s.listen, config, orders)
        .await
        .map_err(|e| format!("cannot serve: {e}"))?;
    eprintln!(
        "{} orders API simulated at {} with {count} orders; set the source's \
         reconcile.apiBaseUrl to it. Ctrl-C stops it.",
        s.marketplace,
        running.base_url()
    );
    wait_for_signal().await;
    drop(running);
    Ok(())
}

async fn simulate(s: Simulate) -> Result<(), String> {
    use switchyard_marketplaces::{Kind, SignRequest};
    if let Some(SimulateCommand::Orders(orders)) = s.command {
        return simulate_orders(orders).await;
    }
    let (Some(marketplace), Some(event), Some(to)) = (s.marketplace, s.event, s.to) else {
        return Err("simulate needs --marketplace, --event and --to".into());
    };
    let kind = Kind::parse(&marketplace).ok_or_else(|| {
        format!(
            "unknown marketplace {:?}; use one of {}",
            marketplace,
            Kind::ALL.map(Kind::as_str).join(", ")
        )
    })?;
    let mut options = serde_json::Map::new();
    for option in &s.options {
        let (k, v) = option
            .split_once('=')
            .ok_or_else(|| format!("--option {option:?}: use KEY=VALUE"))?;
        options.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let now = s.at.unwrap_or_else(jiff::Timestamp::now);
    let signed_at = if s.stale {
        now - jiff::SignedDuration::from_hours(1)
    } else {
        now
    };
    let event_id = s
        .event_id
        .unwrap_or_else(|| format!("sim-{}", random_token::<9>()));
    let mut signed = kind
        .sign(&SignRequest {
            event_type: event,
            secret: s.secret,
            options: serde_json::Value::Object(options),
            endpoint_url: to.clone(),
            partner_id: s.partner,
            resource_id: s.resource,
            event_id,
            now: signed_at,
        })
        .map_err(|e| format!("cannot sign: {e}"))?;
    if s.tamper {
        // Still valid JSON, but no longer the signed bytes.
        signed.body.push(b' ');
    }
    if let Some(path) = &s.key_out {
        let text = [signed.key_pem.as_deref(), signed.certificate_pem.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("key and certificate written to {}", path.display());
    }
    let client = reqwest::Client::new();
    let times = if s.duplicate { 2 } else { 1 };
    for _ in 0..times {
        let method: reqwest::Method = signed
            .method
            .parse()
            .map_err(|_| "bad method".to_string())?;
        let mut request = client
            .request(method, format!("{}{}", to, signed.url_suffix))
            .body(signed.body.clone());
        for (name, value) in &signed.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        println!("{status} {body}");
    }
    Ok(())
}

async fn serve(args: ConfigArgs) -> Result<(), String> {
    let (settings, listen) = load_settings(&args)?;
    let hub = Hub::build(&settings, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let listener = switchyard_server::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, store = hub.state.store.kind(), data_dir = %settings.data_dir.display(), "switchyard is serving");
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new requests; finishing deliveries in flight");
        let _ = stop.send(true);
    });
    hub.serve(listener, stopped)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn create_client(c: CreateClient) -> Result<(), String> {
    let (settings, _) = load_settings(&c.config)?;
    let store = open_store(&settings, false)
        .await
        .map_err(|e| e.to_string())?;
    let mut scopes = BTreeMap::new();
    for scope in &c.scopes {
        let (resource, access) = scope.split_once('=').ok_or_else(|| {
            format!("--scope {scope:?}: use RESOURCE=ACCESS, e.g. ITEM=full_access")
        })?;
        let access: Access = access
            .parse()
            .map_err(|e| format!("--scope {scope:?}: {e}"))?;
        scopes.insert(resource.trim().to_string(), access);
    }
    if !c.admin && c.partners.is_empty() {
        return Err("give at least one --partner, or --admin".into());
    }
    let id =
        c.id.unwrap_or_else(|| format!("sy_{}", random_token::<12>()));
    let secret = random_token::<32>();
    store
        .create_client(Client {
            id: id.clone().into(),
            name: c.name,
            secret_hash: hash_client_secret(&secret),
            partners: c.partners.into_iter().map(Into::into).collect(),
            scopes,
            admin: c.admin,
            created_at: jiff::Timestamp::now(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let sellercenter_key = switchyard_server::routes::sellercenter::api_key(
        &switchyard_core::secrets::derive_key(
            &settings.master_key,
            switchyard_server::SELLERCENTER_KEY_PURPOSE,
        ),
        &id,
    );
    if c.json {
        println!(
            "{}",
            serde_json::json!({"clientId": id, "clientSecret": secret, "sellercenterApiKey": sellercenter_key})
        );
    } else {
        println!(
            "clientId:           {id}\nclientSecret:       {secret}\nsellercenterApiKey: {sellercenter_key}\n(shown only now)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ConfigArgs {
        let argv = std::iter::once("switchyard")
            .chain(std::iter::once("serve"))
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Serve(config) => config,
            _ => unreachable!("serve"),
        }
    }

    /// Boolean options are plain flags, and still take an explicit value as the environment
    /// variables do.
    #[test]
    fn boolean_options_are_plain_flags() {
        let flags = serve(&["--no-deliver", "--allow-private-targets", "--no-migrate"]);
        assert_eq!(flags.no_deliver, Some(true));
        assert_eq!(flags.allow_private_targets, Some(true));
        assert_eq!(flags.no_migrate, Some(true));
        let explicit = serve(&["--no-deliver=false", "--allow-private-targets", "true"]);
        assert_eq!(explicit.no_deliver, Some(false));
        assert_eq!(explicit.allow_private_targets, Some(true));
        let none = serve(&["--listen", "127.0.0.1:0"]);
        assert_eq!(
            none.no_deliver, None,
            "unset falls back to the file and the default"
        );
        assert!(Cli::try_parse_from(["switchyard", "serve", "--no-deliver=maybe"]).is_err());
    }
}
