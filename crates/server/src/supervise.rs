//! Supervision of the hub's background work (dispatcher, retention, performance scheduler).
//!
//! Each task runs in its own tokio task under [`supervise`]: if it panics, or returns before
//! shutdown, the supervisor logs why, marks it down in [`Tasks`] (so `/readyz` answers 503 and
//! names it), waits a backoff that doubles from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], and starts
//! it again. A task that then stays up for [`STEADY`] has its backoff reset. After shutdown the
//! supervisor waits for the task to finish and does not restart it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use switchyard_core::metrics::{self, Metrics};

/// The first wait before a failed task is started again.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a restarted task must stay up for its backoff to start over from the first.
pub const STEADY: Duration = Duration::from_secs(60);

/// A task's state as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Up,
    /// Down since its last failure, waiting to be restarted.
    Down {
        reason: String,
        restarts: u64,
    },
}

/// The supervised tasks of one hub, by name. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    states: Arc<Mutex<BTreeMap<&'static str, TaskState>>>,
}

impl Tasks {
    fn set(&self, name: &'static str, state: TaskState) {
        // A panic while holding this lock leaves whole values behind; carry on.
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.insert(name, state);
    }

    /// Every task with its state, by name.
    pub fn states(&self) -> BTreeMap<&'static str, TaskState> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tasks that are down, with why.
    pub fn down(&self) -> Vec<(&'static str, String)> {
        self.states()
            .into_iter()
            .filter_map(|(name, state)| match state {
                TaskState::Up => None,
                TaskState::Down { reason, .. } => Some((name, reason)),
            })
            .collect()
    }
}

/// Runs `start()` as the task `name` until `shutdown` turns true, restarting it with backoff
/// whenever it panics or returns early. The handle finishes once the task has stopped after
/// shutdown (a task given the shutdown signal drains its own work first).
pub fn supervise<F, Fut>(
    tasks: &Tasks,
    metrics: &Metrics,
    name: &'static str,
    shutdown: watch::Receiver<bool>,
    start: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tasks = tasks.clone();
    let metrics = metrics.clone();
    metrics.add(&metrics::TASK_RESTARTS, &[("task", name)], 0);
    tokio::spawn(async move {
        let mut shutdown = shutdown;
        let mut backoff = FIRST_BACKOFF;
        let mut restarts = 0u64;
        loop {
            tasks.set(name, TaskState::Up);
            let started = tokio::time::Instant::now();
            let outcome = tokio::spawn(start()).await;
            if *shutdown.borrow() {
                return;
            }
            let reason = match outcome {
                Ok(()) => "exited before shutdown".to_string(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
                Err(e) => format!("stopped: {e}"),
            };
            if started.elapsed() >= STEADY {
                backoff = FIRST_BACKOFF;
            }
            restarts += 1;
            tracing::error!(
                task = name,
                %reason,
                retry_in_ms = backoff.as_millis() as u64,
                "a background task failed; it is restarted"
            );
            metrics.inc(&metrics::TASK_RESTARTS, &[("task", name)]);
            tasks.set(
                name,
                TaskState::Down {
                    reason: reason.clone(),
                    restarts,
                },
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// A panic's message, when it was a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(not a string)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn wait_until(what: &str, check: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_is_reported_down_then_restarted() {
        let tasks = Tasks::default();
        let metrics = Metrics::new();
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let (release, released) = watch::channel(false);
        let counted = runs.clone();
        let handle = supervise(&tasks, &metrics, "flaky", stopped.clone(), move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            let mut released = released.clone();
            let mut stopped = stopped.clone();
            async move {
                if run == 0 {
                    // Held until the test has seen the task down.
                    let _ = released.wait_for(|r| *r).await;
                    panic!("the first run fails");
                }
                let _ = stopped.wait_for(|s| *s).await;
            }
        });
        wait_until("the first run starts", || runs.load(Ordering::SeqCst) == 1).await;
        assert_eq!(tasks.states().get("flaky"), Some(&TaskState::Up));
        release.send(true).unwrap();
        wait_until("the task is down", || !tasks.down().is_empty()).await;
        let down = tasks.down();
        assert_eq!(down[0].0, "flaky");
        assert!(down[0].1.contains("the first run fails"), "{down:?}");
        wait_until("the task is restarted", || runs.load(Ordering::SeqCst) == 2).await;
        wait_until("the task is up again", || tasks.down().is_empty()).await;
        assert_eq!(
            metrics.counter(&metrics::TASK_RESTARTS, &[("task", "flaky")]),
            1
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("the supervisor ends after shutdown")
            .unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "not restarted after shutdown"
        );
    }

    #[tokio::test]
    async fn a_task_that_returns_early_is_restarted_and_one_that_returns_at_shutdown_is_not() {
        let tasks = Tasks::default();
        let metrics = Metrics::new();
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let handle = supervise(&tasks, &metrics, "short", stopped, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        wait_until("restarted twice", || runs.load(Ordering::SeqCst) >= 3).await;
        let states = tasks.states();
        assert!(
            matches!(&states["short"], TaskState::Up)
                || matches!(&states["short"], TaskState::Down { reason, .. } if reason == "exited before shutdown"),
            "{states:?}"
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("the supervisor ends after shutdown")
            .unwrap();
    }
}
