//! The disk fills up under load: the data directory is a small tmpfs the test mounts, and a
//! filler file takes its last byte while events are published. The hub answers 503 with
//! `Retry-After` rather than acknowledging what it could not write, keeps serving reads, leaves
//! the SQLite file intact, and carries on when space returns; every acknowledged event is
//! delivered, under one `webhook-id`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::outage::{Publisher, assert_one_webhook_id_per_pair, readyz_status};
use crate::postgres::{HEAVY, subscribe_three, token, wait_for_all};
use crate::restart::{free_port, start_hub_with};

/// A size-limited tmpfs, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "this test mounts a small tmpfs and needs root (or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the filesystem has no byte left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last partial chunks, byte by byte rounds, until not even one fits.
    for size in [4096usize, 512, 1] {
        while let Ok(n @ 1..) = file.write(&chunk[..size]) {
            written += n as u64;
        }
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, to mount a small tmpfs as the data directory; bash .ci/run runs it"]
async fn a_full_disk_is_answered_503_reads_go_on_and_nothing_acknowledged_is_lost() {
    let _heavy = HEAVY.lock().await;
    // Each round leaves the database larger; the long run gets a larger disk.
    let disk = SmallDisk::mount(if crate::outage::fault_rounds() > 1 {
        "96m"
    } else {
        "24m"
    });
    let data = disk.path.join("data");
    let sink = Sink::start().await;
    let mut hub = start_hub_with(&data, free_port(), &[("SWITCHYARD_LOG", "off")]).await;
    let http = reqwest::Client::new();
    let token = token(&http, &hub.base).await;
    subscribe_three(&http, &hub.base, &token, &sink).await;

    // Payloads of 4 KiB, so the disk's last pages go quickly.
    let load = Publisher::start(
        &hub.base,
        &token,
        8,
        |i| json!({"n": i, "padding": "x".repeat(4096)}),
    );
    eventually("deliveries flow before the disk fills", || async {
        sink.hook_count() >= 150
    })
    .await;

    let rounds = crate::outage::fault_rounds();
    let mut filled = 0;
    for _ in 0..rounds {
        let filler = disk.path.join("filler");
        let this_time = fill(&filler);
        assert!(this_time > 0);
        filled += this_time;
        let before = load.unavailable();
        wait_for("publishes are answered 503 on the full disk", || async {
            (load.unavailable() > before + 20).then_some(())
        })
        .await;
        // Reads go on: the subscriptions, the events, the probes.
        for path in ["/v3/webhooks/subscriptions", "/api/v1/events?limit=5"] {
            let answer = http
                .get(format!("{}{path}", hub.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{path} answers on a full disk");
        }
        assert_eq!(
            http.get(format!("{}/healthz", hub.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        // Space returns.
        std::fs::remove_file(&filler).unwrap();
        let resumed = load.answers_acknowledged();
        wait_for("publishes are acknowledged again", || async {
            (load.answers_acknowledged() > resumed + 200).then_some(())
        })
        .await;
    }
    let answers = load.finish().await;
    eprintln!(
        "full disk: {rounds} times full, {} bytes filled; {} acknowledged, statuses {:?}, {} unanswered",
        filled,
        answers.acknowledged.len(),
        answers.statuses,
        answers.unanswered
    );
    answers.assert_acknowledged_or_unavailable();
    assert_eq!(readyz_status(&http, &hub.base).await, 200);

    wait_for_all(&sink, &answers.acknowledged, Duration::from_secs(120)).await;
    assert_one_webhook_id_per_pair(&sink);

    // A clean stop, then the file is checked whole.
    hub.sigterm();
    let _ = hub.child.wait();
    let db = rusqlite::Connection::open(data.join("switchyard.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok", "the database file is intact");
    let stored: i64 = db
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert!(
        stored as usize >= answers.acknowledged.len(),
        "{stored} events stored, {} acknowledged",
        answers.acknowledged.len()
    );
}
