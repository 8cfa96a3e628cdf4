//! `switchyard replay`: delivers again every event a subscription got in a time range, as the
//! console's replay does (in parts, each its own write, under the same delivery ids), with its
//! progress as a bar on a terminal and one line at the end (nothing else when piped). A serving
//! hub on the same database delivers them.

use clap::Args;

use switchyard_core::model::SubscriptionId;
use switchyard_server::open_store;
use switchyard_server::services::subscription_controls::replay_slices;

use crate::config::{ConfigArgs, load_settings};

/// Parts a replay is made in, so that its bar moves.
const PARTS: u32 = 50;

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The subscription whose events to deliver again.
    #[arg(long)]
    subscription: String,
    /// Received since (RFC 3339, e.g. 2026-12-01T00:00:00Z), inclusive.
    #[arg(long)]
    since: jiff::Timestamp,
    /// Received before (default: now).
    #[arg(long)]
    until: Option<jiff::Timestamp>,
}

pub async fn replay(args: ReplayArgs) -> Result<(), String> {
    let (settings, _) = load_settings(&args.config)?;
    let id: SubscriptionId = args.subscription.parse().map_err(|_| {
        format!(
            "--subscription {:?} is not a subscription id",
            args.subscription
        )
    })?;
    let store = open_store(&settings, false)
        .await
        .map_err(|e| e.to_string())?;
    if store
        .get_subscription(id)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no subscription {id}"));
    }
    let now = jiff::Timestamp::now();
    let until = args.until.unwrap_or(now);
    if until <= args.since {
        return Err("--until must be after --since".into());
    }
    let parts = replay_slices(args.since, until, PARTS);
    let bar = indicatif::ProgressBar::new(parts.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} parts, {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut replayed = 0;
    for (from, to) in parts {
        replayed += store
            .replay(id, from, to, now)
            .await
            .map_err(|e| e.to_string())?;
        bar.set_message(format!("{replayed} deliveries pending again"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{replayed} deliveries of subscription {id} are pending again");
    Ok(())
}
