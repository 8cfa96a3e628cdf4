//! Switchyard's benchmark harness. Each scenario starts what it measures on 127.0.0.1 (the hub,
//! the baselines and the load generator are child processes of this binary), is bounded in
//! count and time, and is measured against its baseline in the same run; the results are
//! printed as a table and written as JSON under `target/bench/`.
//!
//! ```text
//! switchyard-bench all [--quick]       every scenario (PostgreSQL too when
//!                                      SWITCHYARD_TEST_POSTGRES_URL is set)
//! switchyard-bench ingest|latency|delivery|e2e|backlog|fanout|idle|large|sustained|overload|pipeline|shaping|brokers|polling [--quick] [--postgres]
//! switchyard-bench nodes|network --postgres [--quick]
//! switchyard-bench console [--quick] [--events N] [--fanout N] [--requests N] [--data DIR]
//! ```
//! `--out DIR` puts the JSON elsewhere; `--backlog N` and `--drain N` size the backlog scenario;
//! `--connections N` the overload scenario's connections.

#[global_allocator]
static ALLOCATOR: allocator::Chosen = allocator::Chosen;

mod allocator;
mod children;
mod console;
mod destinations;
mod harness;
mod overload;
mod pipeline;
mod relay;
mod scale;
mod scenarios;
mod shaping;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use scenarios::{Backend, Sizes};

pub struct Options {
    pub events: u64,
    pub fanout: u64,
    pub requests: usize,
    pub out: PathBuf,
    /// Small counts: for breakage, not timing.
    pub quick: bool,
    /// Keep the console's seeded database here instead of a temporary directory.
    pub data: Option<PathBuf>,
    pub backlog: Option<u64>,
    pub drain: Option<u64>,
    pub connections: Option<u64>,
    /// A single scenario on PostgreSQL (`SWITCHYARD_TEST_POSTGRES_URL`) instead of SQLite.
    pub postgres: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: switchyard-bench all|ingest|latency|delivery|e2e|backlog|fanout|idle|large|sustained|overload|pipeline|shaping|brokers|polling|nodes|network|console \
         [--quick] [--postgres] [--out DIR] [--backlog N] [--drain N] [--connections N] [--events N] [--fanout N] [--requests N] [--data DIR]"
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Options {
    let mut o = Options {
        events: 100_000,
        fanout: 10,
        requests: 20,
        out: PathBuf::from("target/bench"),
        data: None,
        quick: false,
        backlog: None,
        drain: None,
        connections: None,
        postgres: false,
    };
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| args.get(i + 1).cloned().unwrap_or_else(|| usage());
        let number = |i: usize| value(i).parse::<u64>().unwrap_or_else(|_| usage());
        match args[i].as_str() {
            "--postgres" => {
                o.postgres = true;
                i += 1;
                continue;
            }
            "--quick" => {
                o.quick = true;
                o.events = 2_000;
                o.requests = 3;
                i += 1;
                continue;
            }
            "--events" => o.events = number(i),
            "--fanout" => o.fanout = number(i),
            "--requests" => o.requests = number(i) as usize,
            "--backlog" => o.backlog = Some(number(i)),
            "--drain" => o.drain = Some(number(i)),
            "--connections" => o.connections = Some(number(i)),
            "--out" => o.out = PathBuf::from(value(i)),
            "--data" => o.data = Some(PathBuf::from(value(i))),
            _ => usage(),
        }
        i += 2;
    }
    o
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or_default();
    match command {
        // Hidden: the processes the scenarios start.
        "hub" => return children::hub(rest).await,
        "bare" => return children::bare().await,
        "loadgen" => return children::loadgen(rest).await,
        "pipeline-child" => return pipeline::child(rest).await,
        "console" => return console::run(parse(rest)).await,
        _ => {}
    }
    let o = parse(rest);
    let mut sizes = Sizes::new(o.quick);
    if let Some(n) = o.backlog {
        sizes.backlog = n;
        sizes.drain = sizes.drain.min(n);
    }
    if let Some(n) = o.drain {
        sizes.drain = n;
    }
    if let Some(n) = o.connections {
        sizes.overload_connections = n as usize;
    }
    let sqlite = if o.postgres {
        match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Backend::Postgres(url),
            _ => {
                eprintln!("--postgres needs SWITCHYARD_TEST_POSTGRES_URL");
                std::process::exit(2)
            }
        }
    } else {
        Backend::Sqlite
    };
    let started = Instant::now();
    let rows = match command {
        "all" => scenarios::all(sizes).await,
        "ingest" => scenarios::ingest(&sqlite, sizes).await.0,
        "latency" => {
            let (_, rate, _) = scenarios::ingest(&sqlite, sizes).await;
            scenarios::latency(&sqlite, sizes, rate / 2.0).await
        }
        "large" => {
            let (mut rows, rate, _) = scenarios::ingest(&sqlite, sizes).await;
            rows.truncate(1);
            rows.extend(scale::large_store(&sqlite, sizes, rate).await);
            rows
        }
        "sustained" => {
            let (mut rows, _, rate) = scenarios::ingest(&sqlite, sizes).await;
            rows.extend(scale::sustained(&sqlite, sizes, rate).await.0);
            rows
        }
        "pipeline" => {
            let (mut rows, rate, _) = scenarios::ingest(&sqlite, sizes).await;
            rows.truncate(1);
            let cpu = rows[0].cpu_us.unwrap_or(0.0);
            rows.extend(pipeline::pipeline(&sqlite, sizes, rate, cpu).await);
            rows
        }
        "overload" => {
            let (mut rows, _, rate) = scenarios::ingest(&sqlite, sizes).await;
            rows.extend(overload::overload(&sqlite, sizes, rate).await);
            rows
        }
        "nodes" | "network" => {
            let Backend::Postgres(url) = &sqlite else {
                eprintln!("{command} runs on PostgreSQL: add --postgres");
                std::process::exit(2)
            };
            if command == "nodes" {
                scale::two_nodes(url, sizes).await
            } else {
                let (mut rows, rate, _) = scenarios::ingest(&sqlite, sizes).await;
                let (r, delivered, _, _) = scenarios::delivery(&sqlite, sizes).await;
                rows.extend(r);
                rows.extend(scale::network(url, sizes, rate, delivered).await);
                rows
            }
        }
        "delivery" => scenarios::delivery(&sqlite, sizes).await.0,
        "e2e" => scenarios::end_to_end(&sqlite, sizes).await,
        "backlog" => {
            let (_, rate, _, _) = scenarios::delivery(&sqlite, sizes).await;
            scenarios::backlog(&sqlite, sizes, rate).await
        }
        "fanout" => {
            let (_, _, direct, direct_cpu) = scenarios::delivery(&sqlite, sizes).await;
            scenarios::fanout(&sqlite, sizes, direct, direct_cpu).await
        }
        "idle" => scenarios::idle(&sqlite).await,
        "shaping" => shaping::shaping(&sqlite, sizes).await,
        "brokers" => destinations::brokers(&sqlite, sizes).await,
        "polling" => destinations::polling(&sqlite, sizes).await,
        _ => usage(),
    };
    let seconds = started.elapsed().as_secs_f64();
    harness::print_table(&rows);
    println!("\ntook {seconds:.0} s");
    harness::write_report(
        &o.out,
        &format!("{command}.json"),
        &json!({
            "command": command,
            "quick": o.quick,
            "seconds": seconds,
            "machine": {
                "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "memTotal": std::fs::read_to_string("/proc/meminfo").ok()
                    .and_then(|m| m.lines().next().map(str::to_string)),
            },
            "rows": rows,
        }),
    );
}
