//! The writer: takes every operation waiting, runs them in one transaction set-wise (or, when
//! one fails, one by one in savepoints), and commits once, the COMMIT sent right behind the
//! batch's last statements (`tail`). Callers are answered only after COMMIT.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, mpsc};

use super::tail::Tail;
use super::{CHANNEL, Conn, Job, MAX_BATCH, Op, attempts, events};
use crate::{AttemptEffects, InsertOutcome, StoreError};

/// Answers every operation of a batch that could not run.
async fn fail_all(
    events: Vec<events::EventOp>,
    attempts: Vec<attempts::AttemptOp>,
    jobs: Vec<Job>,
    err: StoreError,
) {
    for op in events {
        let _ = op.reply.send(Err(err.clone()));
    }
    for op in attempts {
        let _ = op.reply.send(Err(err.clone()));
    }
    for job in jobs {
        let (_, reply) = job(Err(err.clone())).await;
        reply(Err(err.clone()));
    }
}

/// Runs a batch's typed operations: set-wise, or with `safe` one by one in savepoints (then
/// each result is the operation's own). Returns the results and whether deliveries were made
/// due. Set-wise, the events and the attempts each say on `tail` when they have sent their
/// last statement.
async fn run_typed(
    conn: &Conn,
    events: &[events::EventOp],
    attempts: &[attempts::AttemptOp],
    safe: bool,
    tail: Option<&Tail>,
) -> Result<Typed, StoreError> {
    if !safe {
        // The events and the attempts touch different rows (an attempt is of a delivery
        // committed before), so their statements go out pipelined on the one connection rather
        // than one set's round trips after the other's; an error in either aborts the
        // transaction, and the batch is written again with savepoints.
        let (event_share, attempt_share) = (tail.map(Tail::share), tail.map(Tail::share));
        let insert = async {
            if events.is_empty() {
                return Ok((Vec::new(), false));
            }
            let ops: Vec<&events::EventOp> = events.iter().collect();
            let outcomes = events::insert_batch(conn, &ops, event_share.as_ref()).await?;
            let due = outcomes
                .iter()
                .any(|o| matches!(o, InsertOutcome::Created { deliveries, .. } if *deliveries > 0));
            Ok::<_, StoreError>((outcomes.into_iter().map(Ok).collect(), due))
        };
        let complete = async {
            if attempts.is_empty() {
                return Ok(Vec::new());
            }
            let ops: Vec<&attempts::AttemptOp> = attempts.iter().collect();
            Ok::<_, StoreError>(
                attempts::complete_batch(conn, &ops, attempt_share.as_ref())
                    .await?
                    .into_iter()
                    .map(Ok)
                    .collect(),
            )
        };
        let ((inserted, due), completed) = tokio::try_join!(insert, complete)?;
        return Ok(Typed {
            events: inserted,
            attempts: completed,
            due,
        });
    }
    let mut out = Typed {
        events: Vec::with_capacity(events.len()),
        attempts: Vec::with_capacity(attempts.len()),
        due: false,
    };
    for op in events {
        let result = guarded(conn, events::insert_batch(conn, &[op], None)).await?;
        let result = result.map(|mut r| r.remove(0));
        if let Ok(InsertOutcome::Created { deliveries, .. }) = &result {
            out.due |= *deliveries > 0;
        }
        out.events.push(result);
    }
    for op in attempts {
        let result = guarded(conn, attempts::complete_batch(conn, &[op], None)).await?;
        out.attempts.push(result.map(|mut r| r.remove(0)));
    }
    Ok(out)
}

/// Runs `f` in a savepoint that its failure rolls back: its result is the operation's own, and
/// only a failing savepoint statement is the caller's.
async fn guarded<T>(
    conn: &Conn,
    f: impl Future<Output = Result<T, StoreError>>,
) -> Result<Result<T, StoreError>, StoreError> {
    conn.batch_execute("SAVEPOINT op").await?;
    let result = f.await;
    if result.is_err() {
        conn.batch_execute("ROLLBACK TO SAVEPOINT op").await?;
    }
    conn.batch_execute("RELEASE SAVEPOINT op").await?;
    Ok(result)
}

/// The batch's COMMIT, with its one wake-up of every node when it made deliveries due.
fn commit_sql(due: bool) -> &'static str {
    static NOTIFY_AND_COMMIT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("NOTIFY {CHANNEL}; COMMIT"));
    if due {
        NOTIFY_AND_COMMIT.as_str()
    } else {
        "COMMIT"
    }
}

struct Typed {
    events: Vec<Result<InsertOutcome, StoreError>>,
    attempts: Vec<Result<AttemptEffects, StoreError>>,
    /// Deliveries were made due: the other nodes are told at commit.
    due: bool,
}

/// The writer: takes every operation waiting, runs them in one transaction, commits once.
pub(super) async fn run_writer(
    pool: Pool,
    ops: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Op>>>,
    derive_wake: Arc<Notify>,
) {
    let mut held: Option<Conn> = None;
    loop {
        // One writer at a time takes what is waiting; the others are busy committing.
        let batch = {
            let mut ops = ops.lock().await;
            let Some(first) = ops.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            batch
        };
        let (events, attempts, jobs) = crate::writer_op::sort(batch);
        if held.as_ref().is_some_and(|c| c.is_closed()) {
            held = None;
        }
        if held.is_none() {
            match pool.get().await {
                Ok(conn) => held = Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "postgres: no writer connection");
                    fail_all(events, attempts, jobs, e.into()).await;
                    continue;
                }
            }
        }
        let Some(conn) = held.as_ref() else {
            continue;
        };
        // BEGIN goes out with the batch's first statements rather than a round trip ahead of
        // them (`biased`: the futures are first polled in order, so it is sent first); if it
        // failed, so did the connection, and the statements after it with it. A batch without
        // jobs sends its COMMIT right behind its last statements (see `tail`); jobs run after
        // the typed operations, so a batch with some commits after them.
        let pipelined = jobs.is_empty();
        let tail = Tail::new(usize::from(!events.is_empty()) + usize::from(!attempts.is_empty()));
        let typed = async {
            let result = run_typed(conn, &events, &attempts, false, Some(&tail)).await;
            tail.end(result.is_ok());
            result
        };
        let early_commit = async {
            if pipelined && tail.opened().await {
                Some(conn.batch_execute(commit_sql(tail.due())).await)
            } else {
                None
            }
        };
        let (begun, fast, early_commit) =
            tokio::join!(biased; conn.batch_execute("BEGIN"), typed, early_commit);
        if let Err(e) = begun {
            let _ = conn.batch_execute("ROLLBACK").await;
            fail_all(events, attempts, jobs, e.into()).await;
            continue;
        }
        let (typed, early_commit) = match fast {
            Ok(typed) => (typed, early_commit),
            Err(err) => {
                // A COMMIT sent behind the failed statement was a rollback; `ROLLBACK` then
                // only warns that no transaction is open.
                tracing::debug!(error = %err, "postgres: a batch fell back to savepoints");
                let restarted = conn.batch_execute("ROLLBACK; BEGIN").await;
                if let Err(e) = restarted {
                    fail_all(events, attempts, jobs, e.into()).await;
                    continue;
                }
                match run_typed(conn, &events, &attempts, true, None).await {
                    Ok(typed) => (typed, None),
                    Err(e) => {
                        let _ = conn.batch_execute("ROLLBACK").await;
                        fail_all(events, attempts, jobs, e).await;
                        continue;
                    }
                }
            }
        };
        let mut replies = Vec::with_capacity(jobs.len());
        let mut broken = None;
        for job in jobs {
            // The savepoint goes out with the job's first statement. A job that succeeded
            // keeps it (the commit releases it; a RELEASE would be one more round trip); one
            // that failed is rolled back to it. A savepoint that could not be set leaves a
            // failed job's writes in the transaction: then the batch is not committed.
            let (set, (ok, reply)) =
                tokio::join!(conn.batch_execute("SAVEPOINT job"), job(Ok(conn)));
            if let Err(e) = set {
                broken = Some(StoreError::from(e));
            } else if !ok && let Err(e) = conn.batch_execute("ROLLBACK TO SAVEPOINT job").await {
                broken = Some(StoreError::from(e));
            }
            replies.push(reply);
        }
        // One wake-up for the whole batch, sent with its commit.
        let committed = match (broken, early_commit) {
            (Some(e), _) => Err(e),
            (None, Some(sent)) => sent.map_err(StoreError::from),
            (None, None) => conn
                .batch_execute(commit_sql(typed.due))
                .await
                .map_err(StoreError::from),
        };
        if let Err(e) = &committed {
            tracing::warn!(error = %e, "postgres: commit failed; the batch is not acknowledged");
            let _ = conn.batch_execute("ROLLBACK").await;
        }
        let created = typed
            .events
            .iter()
            .any(|r| matches!(r, Ok(InsertOutcome::Created { .. })));
        for (op, result) in events.into_iter().zip(typed.events) {
            let _ = op.reply.send(committed.clone().and(result));
        }
        for (op, result) in attempts.into_iter().zip(typed.attempts) {
            let _ = op.reply.send(committed.clone().and(result));
        }
        for reply in replies {
            reply(committed.clone());
        }
        if committed.is_ok() && created {
            derive_wake.notify_one();
        }
    }
}
