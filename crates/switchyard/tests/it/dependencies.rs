//! With `CI` set, a missing outside dependency fails the run. The tests that need one are
//! `#[ignore]`d (so a bare `cargo test` counts them as ignored, never as passed) and CI runs
//! them with `--include-ignored`; this test is the guard that CI has them all, whatever the
//! command line: it names each that is missing. Without `CI` it only reports them.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn postgres_reachable() -> Result<(), String> {
    let url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .map_err(|_| "SWITCHYARD_TEST_POSTGRES_URL is not set".to_string())?;
    let parsed =
        reqwest::Url::parse(&url).map_err(|e| format!("SWITCHYARD_TEST_POSTGRES_URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port().unwrap_or(5432);
    std::net::TcpStream::connect((host.as_str(), port))
        .map(drop)
        .map_err(|e| format!("PostgreSQL at {host}:{port}: {e}"))
}

/// What the ignored tests need that is not here, each with the tests that need it.
fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    if let Err(why) = postgres_reachable() {
        missing.push(format!("{why} (postgres::, conformance postgres::)"));
    }
    let pg_bin = std::env::var("SWITCHYARD_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string());
    if !Path::new(&pg_bin).join("initdb").exists() {
        missing.push(format!("initdb in {pg_bin} (outage::)"));
    }
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        missing.push("root, to mount a tmpfs (full_disk::)".to_string());
    }
    if !runs("python3", "--version") {
        missing.push("python3 (the independent signature checks)".to_string());
    }
    for (module, tests) in [
        ("standardwebhooks", "the Standard Webhooks checks"),
        (
            "prometheus_client",
            "metrics::the_scrape_parses_with_prometheus_client",
        ),
        ("schemathesis", "openapi::"),
        ("openapi_python_client", "generated_client::"),
    ] {
        if !python_has(module) {
            missing.push(format!("python3 module {module} ({tests})"));
        }
    }
    for (name, port) in [
        ("NATS with JetStream", 4222),
        ("RabbitMQ", 5672),
        ("Redis", 6379),
        ("Mosquitto (MQTT)", 1883),
    ] {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            missing.push(format!("{name} on 127.0.0.1:{port} (brokers::)"));
        }
    }
    // Found on PATH, never run here: `rabbitmq-server --version` would start a node.
    for server in [
        "nats-server",
        "redis-server",
        "mosquitto",
        "rabbitmq-server",
    ] {
        let on_path = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(server).is_file()));
        if !on_path {
            missing.push(format!(
                "{server}, to run one of the tests' own (brokers::)"
            ));
        }
    }
    if !runs("node", "--version") {
        missing.push("Node.js (amazon_sns::, console::)".to_string());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        missing.push(format!("Chromium at {chromium} (console::)"));
    }
    let playwright = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser/node_modules/playwright-core");
    if !playwright.exists() {
        missing.push("playwright-core: cd tests/browser && npm ci (console::)".to_string());
    }
    missing
}

#[test]
fn with_ci_set_every_outside_dependency_of_the_ignored_tests_is_present() {
    let missing = missing();
    for what in &missing {
        eprintln!("missing for the ignored tests: {what}");
    }
    if std::env::var_os("CI").is_some() {
        assert!(
            missing.is_empty(),
            "CI is set, and what the ignored tests need is missing:\n{}",
            missing.join("\n")
        );
    }
}
