//! Overload: an open loop at three times the all-in-one capacity measured in the same run, for
//! `sizes.overload_seconds`, through `sizes.overload_connections` (10,000; 500 in quick mode). Reported: the accepted and shed rates,
//! p99 of the accepted requests (from each request's slot), the hub's peak RSS, how slowly
//! `/healthz` answered meanwhile, and acknowledged-but-lost (every accepted event must reach the
//! sink once the load stops).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::harness::{Row, Sink, loadgen};
use crate::scenarios::{Backend, Sizes, db_label, f, hub_with_source, ingest_args};

pub async fn overload(backend: &Backend, sizes: Sizes, capacity: f64) -> Vec<Row> {
    let seconds = sizes.overload_seconds;
    let connections = sizes.overload_connections;
    let rate = ((capacity * 3.0) as u64).max(1);
    let count = (rate * seconds) as usize;
    let db = backend.fresh();
    let sink = Sink::start(true).await;
    let (hub, url) = hub_with_source(&db, true, &sink.url).await;
    let acks_dir = tempfile::tempdir().expect("temp dir");
    let acks_path = acks_dir.path().join("acks.txt");
    let mut args = ingest_args(&url, count, connections, rate);
    args.push(acks_path.display().to_string());

    // `/healthz` is asked every 100 ms while the flood lasts.
    let probe_base = hub.base.clone();
    let (stop_probe, probe_stopped) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut slowest: f64 = 0.0;
        let mut failed = 0u64;
        while !*probe_stopped.borrow() {
            let started = Instant::now();
            let ok = http
                .get(format!("{probe_base}/healthz"))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if !ok {
                failed += 1;
            }
            slowest = slowest.max(started.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (slowest, failed)
    });
    let r = loadgen(args).await;
    let _ = stop_probe.send(true);
    let (healthz_slowest_ms, healthz_failed) = probe.await.unwrap_or_default();
    let accepted = f(&r, "ok") as u64;
    let drained = sink.wait_for(accepted, Duration::from_secs(180)).await;
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;

    let acknowledged: HashSet<String> = std::fs::read_to_string(&acks_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Some(l.split_once(' ')?.0.to_string()))
        .collect();
    let delivered: HashSet<String> = sink.receipts().into_iter().map(|(id, _)| id).collect();
    let lost = acknowledged.difference(&delivered).count();
    let wall = f(&r, "seconds").max(1e-9);
    let shed = f(&r, "shed");
    let accepted_rate = accepted as f64 / wall;
    let shed_rate = shed / wall;
    let p99 = f(&r, "p99Ms");
    let p99_from_send = f(&r, "p99FromSendMs");
    // Accepted answers come within a few seconds (marketplaces time out and resend past that),
    // the hub stays under 256 MiB, and nothing acknowledged is lost.
    let met = lost == 0 && drained && p99_from_send <= 2_000.0 && peak < 256.0;
    vec![Row {
        scenario: format!(
            "overload: open loop at 3x capacity for {seconds} s, {connections} connections"
        ),
        store: db_label(backend),
        unit: "accepted/s".into(),
        throughput: accepted_rate,
        p50_ms: f(&r, "p50Ms"),
        p95_ms: f(&r, "p95Ms"),
        p99_ms: p99,
        peak_rss_mib: peak,
        cpu_us: None,
        baseline_cpu_us: None,
        baseline: Some(("all-in-one capacity".into(), capacity)),
        ratio: Some(accepted_rate / capacity.max(1.0)),
        target: "acknowledged-but-lost 0; p99 accepted (from send) <= 2 s; peak RSS < 256 MiB"
            .into(),
        met: Some(met),
        note: format!(
            "{count} requests offered at {rate}/s over {wall:.0} s; p99 accepted from send {p99_from_send:.0} ms (the p-columns count from each request's slot); accepted {accepted} ({accepted_rate:.0}/s), shed {shed:.0} ({shed_rate:.0}/s; {} without Retry-After), {} errors {}; acknowledged-but-lost {lost}{}; /healthz slowest {healthz_slowest_ms:.0} ms, {healthz_failed} failed",
            r["shedWithoutRetryAfter"],
            r["errors"],
            r["errorKinds"],
            if drained {
                ""
            } else {
                "; NOT ALL DELIVERED in 180 s"
            },
        ),
    }]
}
