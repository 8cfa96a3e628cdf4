//! The database goes away under load: a PostgreSQL server of the test's own (`initdb` into a
//! temporary directory, its own port) is stopped without warning while a node ingests and
//! delivers, then started again. During the outage ingest answers 503 with `Retry-After`, never
//! a 2xx it could not make durable, and `/readyz` is not ready; afterwards the node reconnects by
//! itself, every acknowledged event is delivered, none under two `webhook-id`s, and nothing
//! panicked.
//!
//! [`Publisher`] is the load both this test and the full-disk one put on a hub.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::postgres::{HEAVY, arrivals, start_node_with, subscribe_three, token, wait_for_all};

/// Where PostgreSQL's server programs are (Debian's layout); `SWITCHYARD_TEST_PG_BIN` overrides.
fn pg_bin(program: &str) -> PathBuf {
    let dir = std::env::var("SWITCHYARD_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string());
    let path = Path::new(&dir).join(program);
    assert!(
        path.exists(),
        "this test needs PostgreSQL's server programs ({}): install postgresql-15 or set \
         SWITCHYARD_TEST_PG_BIN",
        path.display()
    );
    path
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A PostgreSQL server program, run as the `postgres` user when the test runs as root
/// (`initdb` and `postgres` refuse root).
fn pg_command(program: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(pg_bin(program));
        command
    } else {
        Command::new(pg_bin(program))
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL server of the test's own, stopped and removed when dropped.
pub(crate) struct OwnPostgres {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
}

impl OwnPostgres {
    pub(crate) fn start() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        if running_as_root() {
            let uid = id_of("-u");
            let gid = id_of("-g");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = pg_command("initdb");
        initdb.arg("-D").arg(dir.path().join("data")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb");
        let server = OwnPostgres {
            dir,
            port: crate::restart::free_port(),
        };
        server.start_again();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub(crate) fn start_again(&self) {
        let mut start = pg_command("pg_ctl");
        start
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .arg("start");
        run(start, "pg_ctl start");
    }

    /// Stops the server without a checkpoint or a goodbye to its clients, as a crash would.
    pub(crate) fn stop_abruptly(&self) {
        let mut stop = pg_command("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The `postgres` user's uid (`-u`) or gid (`-g`).
fn id_of(flag: &str) -> u32 {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a postgres user exists")
}

/// What the publishers were answered.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    /// Event ids answered 2xx.
    pub(crate) acknowledged: HashSet<String>,
    /// Status → count, for everything answered.
    pub(crate) statuses: HashMap<u16, u64>,
    /// 503s without a `Retry-After`.
    pub(crate) unavailable_without_retry_after: u64,
    /// Requests that got no answer at all (refused connection, timeout).
    pub(crate) unanswered: u64,
}

impl Answers {
    /// What every fault test asks of the answers: each request answered, 503s carrying
    /// `Retry-After`, and nothing but an acknowledgement or a 503.
    pub(crate) fn assert_acknowledged_or_unavailable(&self) {
        assert_eq!(self.unanswered, 0, "every request was answered");
        assert_eq!(self.unavailable_without_retry_after, 0);
        let unexpected: Vec<_> = self
            .statuses
            .keys()
            .filter(|s| ![200, 202, 503].contains(*s))
            .collect();
        assert!(
            unexpected.is_empty(),
            "only 202 or 503: {:?}",
            self.statuses
        );
    }
}

/// How many times a fault test injects its fault: `SWITCHYARD_FAULT_ROUNDS` (default 1), for
/// the long runs RELIABILITY.md reports.
pub(crate) fn fault_rounds() -> usize {
    std::env::var("SWITCHYARD_FAULT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// The hub's `/metrics` text.
pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Publishes unique events to a hub, `concurrency` at a time, until stopped.
pub(crate) struct Publisher {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
    sent: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl Publisher {
    /// `payload(i)` is the i-th event's payload; event ids are `evt-{i}`.
    pub(crate) fn start(
        base: &str,
        token: &str,
        concurrency: usize,
        payload: fn(u64) -> serde_json::Value,
    ) -> Publisher {
        Publisher::start_with_prefix(base, token, concurrency, payload, "evt")
    }

    /// [`Publisher::start`] with event ids `{base's port}-{i}`, so that publishers on several
    /// nodes never share an id.
    pub(crate) fn start_named(
        base: &str,
        token: &str,
        concurrency: usize,
        payload: fn(u64) -> serde_json::Value,
    ) -> Publisher {
        let port = base.rsplit(':').next().unwrap_or("node").to_string();
        Publisher::start_with_prefix(base, token, concurrency, payload, &format!("evt-{port}"))
    }

    fn start_with_prefix(
        base: &str,
        token: &str,
        concurrency: usize,
        payload: fn(u64) -> serde_json::Value,
        prefix: &str,
    ) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Answers::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let http = reqwest::Client::new();
        let mut tasks = JoinSet::new();
        for _ in 0..concurrency {
            let (stop, answers, sent, http) =
                (stop.clone(), answers.clone(), sent.clone(), http.clone());
            let (base, token, prefix) = (base.to_string(), token.to_string(), prefix.to_string());
            tasks.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let i = sent.fetch_add(1, Ordering::SeqCst);
                    let id = format!("{prefix}-{i}");
                    let answer = http
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(&token)
                        .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                                      "eventId": id, "payload": payload(i)}))
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await;
                    let status = answer.as_ref().map(|a| a.status().as_u16()).ok();
                    {
                        let mut answers = answers.lock().unwrap();
                        match &answer {
                            Ok(answer) => {
                                let code = answer.status().as_u16();
                                *answers.statuses.entry(code).or_default() += 1;
                                if answer.status().is_success() {
                                    answers.acknowledged.insert(id);
                                } else if code == 503
                                    && answer.headers().get("retry-after").is_none()
                                {
                                    answers.unavailable_without_retry_after += 1;
                                }
                            }
                            Err(_) => answers.unanswered += 1,
                        }
                    }
                    if status.is_none_or(|s| s == 503) {
                        // As a sender told to wait (or finding no one) would, a little.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            });
        }
        Publisher {
            stop,
            answers,
            sent,
            tasks,
        }
    }

    /// Requests answered 503 so far.
    pub(crate) fn unavailable(&self) -> u64 {
        let answers = self.answers.lock().unwrap();
        answers.statuses.get(&503).copied().unwrap_or(0)
    }

    /// Events acknowledged so far.
    pub(crate) fn answers_acknowledged(&self) -> usize {
        self.answers.lock().unwrap().acknowledged.len()
    }

    /// Requests sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops the publishers and returns what they were answered.
    pub(crate) async fn finish(mut self) -> Answers {
        self.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

pub(crate) async fn readyz_status(http: &reqwest::Client, base: &str) -> u16 {
    http.get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Every (event, subscription) pair arrived under one `webhook-id` only.
pub(crate) fn assert_one_webhook_id_per_pair(sink: &Sink) {
    let split: Vec<_> = arrivals(sink)
        .into_iter()
        .filter(|(_, ids)| ids.iter().collect::<HashSet<_>>().len() > 1)
        .collect();
    assert!(
        split.is_empty(),
        "{} pairs arrived under two webhook-ids, e.g. {:?}",
        split.len(),
        split.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL's server programs (initdb, pg_ctl; /usr/lib/postgresql/15/bin); bash .ci/run runs it"]
async fn a_postgres_server_stopped_under_load_and_started_again_loses_nothing() {
    let _heavy = HEAVY.lock().await;
    let server = OwnPostgres::start();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("node.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let sink = Sink::start().await;
    let node = start_node_with(&server.url(), Stdio::from(log)).await;
    let http = reqwest::Client::new();
    let token = token(&http, &node.base).await;
    subscribe_three(&http, &node.base, &token, &sink).await;

    let load = Publisher::start(&node.base, &token, 16, |i| json!({"n": i}));
    eventually("deliveries flow before the outage", || async {
        sink.hook_count() >= 300
    })
    .await;

    let rounds = fault_rounds();
    for round in 0..rounds {
        server.stop_abruptly();
        let before = load.unavailable();
        wait_for("/readyz says not ready during the outage", || async {
            (readyz_status(&http, &node.base).await == 503).then_some(())
        })
        .await;
        wait_for("ingest answers 503 during the outage", || async {
            (load.unavailable() > before + 20).then_some(())
        })
        .await;
        // Outages of 3 s, and in the long run every third one 10 s.
        let down = if round % 3 == 2 { 10 } else { 3 };
        tokio::time::sleep(Duration::from_secs(down)).await;
        server.start_again();

        wait_for("the node reconnects by itself", || async {
            (readyz_status(&http, &node.base).await == 200).then_some(())
        })
        .await;
        let resumed = load.sent();
        wait_for("ingest is acknowledged again", || async {
            (load.sent() > resumed + 300).then_some(())
        })
        .await;
    }
    let answers = load.finish().await;
    eprintln!(
        "outage: {rounds} outages; {} acknowledged, statuses {:?}, {} unanswered",
        answers.acknowledged.len(),
        answers.statuses,
        answers.unanswered
    );
    answers.assert_acknowledged_or_unavailable();

    wait_for_all(&sink, &answers.acknowledged, Duration::from_secs(120)).await;
    assert_one_webhook_id_per_pair(&sink);
    let scraped = scrape(&http, &node.base).await;
    for task in ["dispatcher", "retention", "performance_scheduler"] {
        assert!(
            scraped.contains(&format!(
                "switchyard_task_restarts_total{{task=\"{task}\"}} 0"
            )),
            "{task} never had to be restarted"
        );
    }
    drop(node);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("panicked"), "nothing panicked:\n{log}");
}
