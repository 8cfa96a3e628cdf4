//! What the marketplaces' tests share: implementations not written here, run as child processes,
//! to check signatures against.
//!
//! A test that needs one says so with `#[ignore = "needs python3 …"]`, so that `cargo test`
//! reports it as ignored rather than passing it unchecked; `bash .ci/run` runs it with
//! `--include-ignored`, and then a missing interpreter fails it with a message saying what to
//! install. No test here returns early as a pass.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs a python3 script with arguments and `stdin`; its standard output, trimmed.
///
/// Panics when python3 cannot be started or the script fails: a test that asks for it must
/// not pass without it.
pub fn python(script: &str, args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs python3 on PATH ({e})"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Python prelude that makes the PyPI `standardwebhooks` package judge timestamps at `now`
/// instead of the machine's clock, so that a message signed at a test's fixed instant is checked
/// at that instant; everything after it is the package's own code. It ends by importing
/// `Webhook`.
#[allow(dead_code)] // not every test crate that includes this module verifies Standard Webhooks
pub fn standardwebhooks_at(now: jiff::Timestamp) -> String {
    format!(
        r#"
import datetime as _dt
import standardwebhooks.webhooks as _webhooks
class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp({}, tz or _dt.timezone.utc)
_webhooks.datetime = _FixedDatetime
from standardwebhooks.webhooks import Webhook
"#,
        now.as_second()
    )
}
