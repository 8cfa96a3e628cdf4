//! Subscribers' transformations: a JavaScript `function handler(webhook)` that receives
//! `{eventType, payload, headers, url}` and returns it changed, or `{cancel: true}` to drop the
//! delivery.
//!
//! The code runs in QuickJS (rquickjs), in a runtime of its own, with nothing but the
//! language: the base objects, `JSON`, `RegExp`, `Map`/`Set`, `Promise` and `eval`
//! (`Promise` is there because `import()` makes one: without it QuickJS leaks the object). There is no `Date`, no
//! module loader, no host function: no file, network or clock reaches it (`Math.random` is the
//! only source of variety). Each call has a time limit and each engine a memory cap (what a
//! kept engine's handler holds between calls counts against it), enforced by QuickJS's
//! interrupt handler and allocator; a call that overruns either fails, and its engine is
//! dropped with whatever it held.
//!
//! A delivery's engine (a runtime and its one context, with the code loaded) is kept per thread
//! and per subscription ([`run_kept`]): making a context and compiling is most of a call's cost
//! (see BENCHMARKS.md). An engine is never shared between subscriptions, so no handler sees
//! another's globals; a "try it" and a check use an engine of their own, dropped afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rquickjs::context::intrinsic;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Runtime, Value};
use serde_json::Value as Json;

/// The longest transformation kept (bytes of source).
pub const MAX_CODE_BYTES: usize = 64 * 1024;

/// What one call may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall time of the call, compiling included.
    pub time: Duration,
    /// The engine's heap (a kept engine's, over all its calls).
    pub memory_bytes: usize,
    /// The interpreter's native stack (deep recursion ends here, not in a crash).
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(100),
            memory_bytes: 16 << 20,
            stack_bytes: 256 << 10,
        }
    }
}

/// What a handler receives, and what it may change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The type the delivery is announced under (read-only: changing it changes nothing).
    pub event_type: String,
    /// The body that would be sent, as JSON.
    #[schema(value_type = Object)]
    pub payload: Json,
    /// The subscription's custom headers. The hub's own (`content-type`, `webhook-*`) are set
    /// after the transformation and cannot be changed by it.
    pub headers: BTreeMap<String, String>,
    /// Where the delivery goes; the address guard applies to a changed one as to any.
    pub url: String,
}

/// What came of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Transformed {
    /// Send this instead.
    Send(Webhook),
    /// The handler returned `cancel: true`: the delivery is dropped.
    Cancel,
}

/// Why a transformation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    #[error("the transformation is longer than {MAX_CODE_BYTES} bytes")]
    TooLong,
    #[error("the transformation does not compile: {0}")]
    Compile(String),
    #[error("the transformation defines no function handler(webhook)")]
    NoHandler,
    #[error("the transformation threw: {0}")]
    Threw(String),
    #[error("the transformation ran longer than its limit of {} ms", .0.as_millis())]
    TimeLimit(Duration),
    #[error("the transformation ran out of memory (its limit is {} MiB) or stack", .0 >> 20)]
    Memory(usize),
    #[error("the transformation returned {0}")]
    Result(String),
}

/// Compiles `code` and checks that it defines `handler`, as a create or an update does.
pub fn check(code: &str, limits: &Limits) -> Result<(), TransformError> {
    Engine::load(code, limits).map(drop)
}

/// Runs `code`'s handler on `webhook` in an engine of its own, dropped afterwards (a "try it").
pub fn run(code: &str, webhook: &Webhook, limits: &Limits) -> Result<Transformed, TransformError> {
    Engine::load(code, limits)?.transform(webhook)
}

/// Engines kept per thread, at most; past it they are all dropped and made again as needed.
const KEPT_ENGINES: usize = 32;

thread_local! {
    /// Engines already loaded on this thread, by (owner, code): an engine is never shared
    /// between owners (subscriptions), so no handler sees another's globals.
    static KEPT: std::cell::RefCell<std::collections::HashMap<(String, String), Engine>> =
        Default::default();
}

/// [`run`] for a delivery: the engine of `owner`'s `code` is loaded once per thread and kept for
/// its next calls (making a context and compiling is most of a call's cost; see BENCHMARKS.md),
/// so a handler's globals may outlive one call. An engine whose call failed is dropped: a
/// time or memory limit may have left it half-way.
pub fn run_kept(
    owner: &str,
    code: &str,
    webhook: &Webhook,
    limits: &Limits,
) -> Result<Transformed, TransformError> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let key = (owner.to_string(), code.to_string());
        if !kept.contains_key(&key) {
            if kept.len() >= KEPT_ENGINES {
                kept.clear();
            }
            kept.insert(key.clone(), Engine::load(code, limits)?);
        }
        let outcome = match kept.get(&key) {
            Some(engine) => engine.transform(webhook),
            None => Err(TransformError::Threw("engine: not loaded".into())),
        };
        if outcome.is_err() {
            kept.remove(&key);
        }
        outcome
    })
}

/// A runtime with one context holding a loaded transformation. Fields drop in order: the
/// context before its runtime.
struct Engine {
    context: Context,
    _runtime: Runtime,
    /// When the call under way must stop, in nanoseconds since `born`; the interrupt handler
    /// reads it.
    deadline: Arc<AtomicU64>,
    born: Instant,
    /// The interrupt handler stopped the code.
    interrupted: Arc<AtomicBool>,
    limits: Limits,
}

impl Engine {
    /// A fresh, limited runtime with `code` evaluated in it and its `handler` found.
    fn load(code: &str, limits: &Limits) -> Result<Engine, TransformError> {
        if code.len() > MAX_CODE_BYTES {
            return Err(TransformError::TooLong);
        }
        let runtime = Runtime::new().map_err(engine_error)?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        let born = Instant::now();
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let interrupted = Arc::new(AtomicBool::new(false));
        let (until, flag) = (deadline.clone(), interrupted.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let over = born.elapsed().as_nanos() as u64 > until.load(Ordering::Relaxed);
            if over {
                flag.store(true, Ordering::Relaxed);
            }
            over
        })));
        let context = Context::custom::<(
            intrinsic::Eval,
            intrinsic::RegExpCompiler,
            intrinsic::RegExp,
            intrinsic::Json,
            intrinsic::MapSet,
            intrinsic::Promise,
        )>(&runtime)
        .map_err(|_| TransformError::Memory(limits.memory_bytes))?;
        let engine = Engine {
            context,
            _runtime: runtime,
            deadline,
            born,
            interrupted,
            limits: *limits,
        };
        engine.call(|ctx| {
            ctx.eval::<(), _>(code)
                .catch(&ctx)
                .map_err(|e| match threw(e) {
                    TransformError::Threw(message) => TransformError::Compile(message),
                    other => other,
                })?;
            handler(&ctx).map(drop)
        })?;
        Ok(engine)
    }

    /// Runs `f` in the context under the time limit, classifying every failure of the engine:
    /// the time limit (the interrupt fired), memory (QuickJS's out-of-memory error), or what the
    /// code threw.
    fn call<T>(
        &self,
        f: impl for<'js> FnOnce(Ctx<'js>) -> Result<T, TransformError>,
    ) -> Result<T, TransformError> {
        let until = self.born.elapsed() + self.limits.time;
        self.deadline
            .store(until.as_nanos() as u64, Ordering::Relaxed);
        self.interrupted.store(false, Ordering::Relaxed);
        let result = self.context.with(f);
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        match result {
            Err(_) if self.interrupted.load(Ordering::Relaxed) => {
                Err(TransformError::TimeLimit(self.limits.time))
            }
            Err(TransformError::Threw(m) | TransformError::Compile(m))
                if m == OUT_OF_MEMORY || m.starts_with("out of memory") =>
            {
                Err(TransformError::Memory(self.limits.memory_bytes))
            }
            other => other,
        }
    }

    /// The loaded handler called on `webhook`.
    fn transform(&self, webhook: &Webhook) -> Result<Transformed, TransformError> {
        let input =
            serde_json::to_string(webhook).map_err(|e| TransformError::Result(e.to_string()))?;
        let output = self.call(|ctx| {
            let handler = handler(&ctx)?;
            let input = ctx.json_parse(input).catch(&ctx).map_err(threw)?;
            let result: Value = handler.call((input,)).catch(&ctx).map_err(threw)?;
            if result.is_undefined() || result.is_null() {
                return Err(TransformError::Result(
                    "nothing; return the webhook (changed or not) or {cancel: true}".into(),
                ));
            }
            let text = ctx
                .json_stringify(result)
                .catch(&ctx)
                .map_err(threw)?
                .map(|s| s.to_string())
                .transpose()
                .map_err(|e| TransformError::Result(e.to_string()))?;
            Ok(text.unwrap_or_default())
        })?;
        let output: Json = serde_json::from_str(&output)
            .map_err(|_| TransformError::Result("a value JSON cannot carry".into()))?;
        changed(webhook, output)
    }
}

/// The context's global `handler`, which must be a function.
fn handler<'js>(ctx: &Ctx<'js>) -> Result<Function<'js>, TransformError> {
    let handler: Value = ctx.globals().get("handler").map_err(engine_error)?;
    handler.into_function().ok_or(TransformError::NoHandler)
}

fn engine_error(e: rquickjs::Error) -> TransformError {
    TransformError::Threw(format!("engine: {e}"))
}

/// The webhook as the handler's answer leaves it: fields it returns replace the given ones,
/// fields it omits are kept.
fn changed(given: &Webhook, output: Json) -> Result<Transformed, TransformError> {
    let Json::Object(mut out) = output else {
        return Err(TransformError::Result(format!(
            "{}, not an object",
            kind_of(&output)
        )));
    };
    if out.get("cancel").and_then(Json::as_bool) == Some(true) {
        return Ok(Transformed::Cancel);
    }
    let mut webhook = given.clone();
    if let Some(payload) = out.remove("payload") {
        webhook.payload = payload;
    }
    match out.remove("url") {
        None => {}
        Some(Json::String(url)) => webhook.url = url,
        Some(other) => {
            return Err(TransformError::Result(format!(
                "a url that is {}, not a string",
                kind_of(&other)
            )));
        }
    }
    match out.remove("headers") {
        None => {}
        Some(Json::Object(headers)) => {
            let mut kept = BTreeMap::new();
            for (name, value) in headers {
                let Json::String(value) = value else {
                    return Err(TransformError::Result(format!(
                        "header {name:?} as {}, not a string",
                        kind_of(&value)
                    )));
                };
                let lower = name.to_ascii_lowercase();
                if lower != "content-type" && !lower.starts_with("webhook-") {
                    kept.insert(name, value);
                }
            }
            webhook.headers = kept;
        }
        Some(other) => {
            return Err(TransformError::Result(format!(
                "headers that are {}, not an object",
                kind_of(&other)
            )));
        }
    }
    Ok(Transformed::Send(webhook))
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// What [`threw`] makes of QuickJS's out-of-memory (and stack overflow) exception, which is
/// a bare `null`.
const OUT_OF_MEMORY: &str = "\u{0}out of memory";

/// What the code threw, as its message (with where, when QuickJS says).
fn threw(e: CaughtError<'_>) -> TransformError {
    TransformError::Threw(match e {
        CaughtError::Exception(e) => {
            let message = e.message().unwrap_or_default();
            let at = e
                .stack()
                .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
                .unwrap_or_default();
            if at.is_empty() {
                message
            } else {
                format!("{message} ({at})")
            }
        }
        CaughtError::Value(v) if v.is_null() => OUT_OF_MEMORY.to_string(),
        CaughtError::Value(v) => v
            .as_string()
            .and_then(|s| s.to_string().ok())
            .or_else(|| v.as_number().map(|n| n.to_string()))
            .unwrap_or_else(|| format!("a {}", v.type_name())),
        CaughtError::Error(e) => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook() -> Webhook {
        Webhook {
            event_type: "order.created".into(),
            payload: json!({"payload": {"total": 12.5, "sku": "A-1"}, "source": {"eventId": "e1"}}),
            headers: BTreeMap::from([("x-team".to_string(), "ops".to_string())]),
            url: "https://example.com/hook".into(),
        }
    }

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn a_handler_rewrites_the_body_headers_and_url() {
        let code = r#"function handler(webhook) {
            webhook.payload = {sku: webhook.payload.payload.sku, cents: webhook.payload.payload.total * 100};
            webhook.headers["x-shape"] = "slim";
            webhook.headers["webhook-id"] = "forged";
            webhook.url = webhook.url + "?v=2";
            return webhook;
        }"#;
        let Transformed::Send(out) = run(code, &webhook(), &limits()).expect("runs") else {
            panic!("not cancelled")
        };
        assert_eq!(out.payload, json!({"sku": "A-1", "cents": 1250}));
        assert_eq!(out.headers.get("x-shape").map(String::as_str), Some("slim"));
        assert!(
            !out.headers.contains_key("webhook-id"),
            "the hub's headers are its own"
        );
        assert_eq!(out.url, "https://example.com/hook?v=2");
        assert_eq!(out.event_type, "order.created");
    }

    #[test]
    fn omitted_fields_are_kept_and_cancel_drops() {
        let kept = run(
            "function handler(w) { return {payload: 1}; }",
            &webhook(),
            &limits(),
        )
        .expect("runs");
        let Transformed::Send(out) = kept else {
            panic!("sent")
        };
        assert_eq!(out.payload, json!(1));
        assert_eq!(out.url, webhook().url);
        assert_eq!(out.headers, webhook().headers);
        let cancelled = run(
            "function handler(w) { return w.payload.payload.total < 100 ? {cancel: true} : w; }",
            &webhook(),
            &limits(),
        );
        assert_eq!(cancelled, Ok(Transformed::Cancel));
    }

    #[test]
    fn a_loop_forever_stops_at_the_time_limit() {
        let limits = Limits {
            time: Duration::from_millis(30),
            ..Limits::default()
        };
        for code in [
            "function handler(w) { while (true) {} }",
            "while (true) {} function handler(w) { return w; }",
        ] {
            let started = Instant::now();
            let outcome = run(code, &webhook(), &limits);
            assert_eq!(
                outcome,
                Err(TransformError::TimeLimit(limits.time)),
                "{code}"
            );
            assert!(started.elapsed() < Duration::from_secs(5), "it stopped");
        }
    }

    #[test]
    fn memory_and_recursion_are_capped() {
        // Time enough that the memory and stack caps are what stop these, however loaded the
        // machine (a debug build on a busy CI filled 16 MiB in more than 100 ms); the time
        // limit has its own test.
        let limits = Limits {
            time: Duration::from_secs(60),
            ..limits()
        };
        let hog = "function handler(w) { var a = []; while (true) { a.push('x'.repeat(1000) + a.length); } }";
        assert_eq!(
            run(hog, &webhook(), &limits),
            Err(TransformError::Memory(limits.memory_bytes))
        );
        let deep = "function f(n) { return f(n + 1) + 1; } function handler(w) { return f(0); }";
        let outcome = run(deep, &webhook(), &limits);
        assert!(
            matches!(outcome, Err(TransformError::Threw(ref m)) if m.contains("stack")),
            "{outcome:?}"
        );
    }

    #[test]
    fn nothing_outside_the_language_is_reachable() {
        let probe = r#"function handler(w) {
            return {payload: [typeof Date, typeof fetch, typeof require, typeof XMLHttpRequest,
                typeof console, typeof process, typeof std, typeof os, typeof performance,
                typeof setTimeout, typeof WebSocket, typeof Deno]};
        }"#;
        let Ok(Transformed::Send(out)) = run(probe, &webhook(), &limits()) else {
            panic!("runs")
        };
        assert!(
            out.payload
                .as_array()
                .is_some_and(|kinds| kinds.iter().all(|k| k == "undefined")),
            "{}",
            out.payload
        );
        let network = "function handler(w) { fetch('http://127.0.0.1:1/'); return w; }";
        let outcome = run(network, &webhook(), &limits());
        assert!(
            matches!(outcome, Err(TransformError::Threw(ref m)) if m.contains("fetch")),
            "{outcome:?}"
        );
        // A module cannot be loaded (there is no loader): the import's promise is rejected,
        // and the jobs left queued are freed with the runtime.
        let import = "var got = 'nothing'; import('fs').then(() => { got = 'fs'; });
            (async () => { while (true) { await 0; } })();
            function handler(w) { return {payload: got}; }";
        let Ok(Transformed::Send(out)) = run(import, &webhook(), &limits()) else {
            panic!("runs")
        };
        assert_eq!(out.payload, json!("nothing"));
    }

    #[test]
    fn a_kept_engine_serves_one_owner_and_is_dropped_after_a_failure() {
        let counter = "var calls = 0; function handler(w) {
            calls += 1;
            if (w.payload === 'fail') { throw new Error('asked to'); }
            return {payload: calls};
        }";
        let call = |owner: &str, payload: serde_json::Value| {
            let mut w = webhook();
            w.payload = payload;
            match run_kept(owner, counter, &w, &limits()) {
                Ok(Transformed::Send(out)) => Ok(out.payload),
                Ok(Transformed::Cancel) => panic!("not cancelled"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(call("sub-a", json!(1)), Ok(json!(1)));
        assert_eq!(call("sub-a", json!(1)), Ok(json!(2)), "kept for its owner");
        assert_eq!(
            call("sub-b", json!(1)),
            Ok(json!(1)),
            "the same code of another owner has its own engine"
        );
        assert!(call("sub-a", json!("fail")).is_err());
        assert_eq!(
            call("sub-a", json!(1)),
            Ok(json!(1)),
            "after a failure the engine is made afresh"
        );
        // A time limit on a kept engine stops that call, and the next one runs.
        let slow =
            "function handler(w) { if (w.payload === 'loop') { while (true) {} } return w; }";
        let short = Limits {
            time: Duration::from_millis(30),
            ..Limits::default()
        };
        let mut looping = webhook();
        looping.payload = json!("loop");
        assert_eq!(
            run_kept("sub-c", slow, &looping, &short),
            Err(TransformError::TimeLimit(short.time))
        );
        assert!(matches!(
            run_kept("sub-c", slow, &webhook(), &short),
            Ok(Transformed::Send(_))
        ));
        assert!(matches!(
            run_kept("sub-c", slow, &webhook(), &short),
            Ok(Transformed::Send(_))
        ));
    }

    #[test]
    fn bad_code_and_bad_answers_say_what_is_wrong() {
        assert!(matches!(
            check("function handler(w) { return w", &limits()),
            Err(TransformError::Compile(_))
        ));
        assert_eq!(
            check("function other(w) { return w; }", &limits()),
            Err(TransformError::NoHandler)
        );
        assert_eq!(
            check("function handler(w) { return w; }", &limits()),
            Ok(())
        );
        assert_eq!(
            check(&"x".repeat(MAX_CODE_BYTES + 1), &limits()),
            Err(TransformError::TooLong)
        );
        let threw = run(
            "function handler(w) { throw new Error('no sku'); }",
            &webhook(),
            &limits(),
        );
        assert!(
            matches!(threw, Err(TransformError::Threw(ref m)) if m.starts_with("no sku")),
            "{threw:?}"
        );
        for (code, says) in [
            ("function handler(w) { }", "nothing"),
            (
                "function handler(w) { return 3; }",
                "a number, not an object",
            ),
            (
                "function handler(w) { return {url: 3}; }",
                "a url that is a number",
            ),
            (
                "function handler(w) { return {headers: {a: 1}}; }",
                "header \"a\" as a number",
            ),
        ] {
            let outcome = run(code, &webhook(), &limits());
            assert!(
                matches!(outcome, Err(TransformError::Result(ref m)) if m.contains(says)),
                "{code}: {outcome:?}"
            );
        }
    }
}
