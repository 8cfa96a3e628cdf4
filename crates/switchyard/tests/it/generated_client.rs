//! The OpenAPI document is usable: a client generated from the running hub's `/openapi.json` by
//! a generator not written here (PyPI's openapi-python-client) issues a token, creates a
//! subscription, reads it back, publishes an event and reads the delivery with its attempts.
//! It needs python3 with openapi-python-client: `#[ignore]`d, so `cargo test` lists it as
//! ignored; `bash .ci/run` installs the generator and runs it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

/// The driver script, run against the generated package.
const USE_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/generated_client/use_client.py"
);

fn generate(document: &Path, into: &Path) {
    let output = Command::new("python3")
        .args(["-m", "openapi_python_client", "generate"])
        .arg("--path")
        .arg(document)
        .arg("--output-path")
        .arg(into)
        .arg("--overwrite")
        .output()
        .expect("this test needs openapi-python-client (pip install openapi-python-client)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the generator failed:\n{said}");
    // The one operation it leaves out is SellerCenter's XML POST, which its author does not
    // support; any other warning is a defect of the document.
    for warning in said.lines().filter(|l| l.starts_with("WARNING")) {
        assert!(
            warning.contains("POST /sellercenter"),
            "the generator warns about the document: {warning}\n{said}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with PyPI openapi-python-client; bash .ci/run installs and runs it"]
async fn a_client_generated_from_the_document_subscribes_publishes_and_reads_the_delivery() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let document = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let document_path = dir.path().join("openapi.json");
    std::fs::write(&document_path, &document).unwrap();
    let package = dir.path().join("client");
    generate(&document_path, &package);
    assert!(package.join("switchyard_client").join("api").is_dir());

    let base = app.base.clone();
    let hook = sink.hook_url();
    let package_for_python = package.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(USE_CLIENT)
            .args([base.as_str(), ADMIN_ID, ADMIN_SECRET, hook.as_str()])
            .env("PYTHONPATH", &package_for_python)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the generated client failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");

    // What the typed client read is what the hub holds and what the receiver got.
    let subscription = read["subscriptionId"].as_str().unwrap();
    assert_eq!(read["readBack"]["subscriptionId"], subscription);
    assert_eq!(read["readBack"]["eventUrl"], sink.hook_url());
    assert_eq!(read["readBack"]["status"], "ACTIVE");
    assert_eq!(read["deliveries"], 1);
    let delivery = &read["delivery"];
    assert_eq!(delivery["eventId"], read["eventId"]);
    assert_eq!(delivery["subscriptionId"], subscription);
    assert_eq!(delivery["status"], "succeeded");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[0]["succeeded"], true);
    let hooks = sink.hooks();
    assert_eq!(hooks.len(), 1);
    assert!(
        String::from_utf8_lossy(&hooks[0].body).contains("generated-client-1"),
        "the receiver got the published payload"
    );
}
