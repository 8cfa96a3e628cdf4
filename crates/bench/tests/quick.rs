//! The benchmark harness's `--quick` run, once, so that CI notices when a scenario breaks. It
//! checks that every scenario ran and moved traffic; it never checks a timing or a target
//! (timing belongs to the benchmark itself, on a quiet machine).

use std::process::Command;

#[test]
fn every_scenario_runs_in_quick_mode() {
    let out = tempfile::tempdir().expect("temp dir");
    let status = Command::new(env!("CARGO_BIN_EXE_switchyard-bench"))
        .args(["all", "--quick", "--out"])
        .arg(out.path())
        // SQLite only: the PostgreSQL store has its own tests, and this run is about breakage.
        .env("SWITCHYARD_TEST_POSTGRES_URL", "")
        .status()
        .expect("switchyard-bench runs");
    assert!(status.success(), "switchyard-bench all --quick failed");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("all.json")).expect("all.json written"),
    )
    .expect("all.json is JSON");
    let rows = report["rows"].as_array().expect("rows");
    let scenarios: Vec<&str> = rows.iter().filter_map(|r| r["scenario"].as_str()).collect();
    for expected in [
        "ingest (ingest-only node)",
        "ingest, all-in-one node delivering too",
        "ingest pipeline without HTTP (in-process)",
        "ingest ack latency at half that rate",
        "delivery to a sink answering 200",
        "end to end at 1,000 events/s",
        "backlog: 20000 pending deliveries",
        "fan-out: one event to 100 subscriptions",
        "idle hub",
        "content filter, per delivery",
        "transformation, per delivery",
        "delivery with a transformation",
        "ingest with 20000 events already stored",
        "sustained: ingest at the all-in-one max for 5 s",
        "overload: open loop at 3x capacity for 5 s, 500 connections",
    ] {
        assert!(
            scenarios.contains(&expected),
            "{expected:?} missing from {scenarios:?}"
        );
    }
    for row in rows {
        let note = row["note"].as_str().unwrap_or_default();
        assert!(!note.contains("TIMED OUT"), "{row}");
        assert!(
            !note.contains(" errors") || note.contains(" 0 errors"),
            "{row}"
        );
        if row["scenario"]
            .as_str()
            .is_some_and(|s| s.starts_with("overload"))
        {
            assert!(note.contains("acknowledged-but-lost 0;"), "{row}");
        }
        if row["scenario"] != "idle hub" {
            assert!(row["throughput"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
        }
        assert!(row["peakRssMib"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    }
}
