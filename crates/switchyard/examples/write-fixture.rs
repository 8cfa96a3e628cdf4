//! Writes `tests/fixtures/<NAME>/`: a database of this checkout's schema holding one of every
//! kind of record, with its manifest, for a later version's upgrade test
//! (`crates/switchyard/tests/it/upgrade.rs`). Run it on a version before changing its schema:
//!
//! ```sh
//! SWITCHYARD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run -p switchyard --example write-fixture -- schema-N-<commit>
//! ```
//!
//! It shares the integration tests' helpers (a hub on port 0 with a fixed clock, a receiver on
//! 127.0.0.1) by including their files.

#[allow(dead_code)]
#[path = "../tests/it/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "../tests/it/fixture.rs"]
mod fixture;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: write-fixture NAME (a directory name under tests/fixtures/)");
        std::process::exit(2);
    };
    let postgres = std::env::var("SWITCHYARD_TEST_POSTGRES_URL").ok();
    fixture::write(&fixture::fixtures_dir().join(&name), postgres.as_deref()).await;
    println!("wrote tests/fixtures/{name}/");
}
