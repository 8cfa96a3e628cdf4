//! The writer thread: takes every operation waiting and runs them in one transaction (group
//! commit). Storing events and recording attempts run first, typed and without savepoints; if
//! one fails, the transaction is rolled back and they run again each in a savepoint of its own
//! (see the module above). Every other write is a [`Job`] in a savepoint of its own.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::{Job, MAX_BATCH, Op, Shared, deliveries, events};
use switchyard_core::clock::to_millis as ms;

use crate::{InsertOutcome, Reply, StoreError};

fn begin(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    Ok(())
}

/// The writer thread: takes every operation waiting, runs them in one transaction, commits once.
pub(super) fn run_writer(
    conn: Connection,
    shared: Arc<Shared>,
    mut ops: mpsc::UnboundedReceiver<Op>,
) {
    while let Some(first) = ops.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (events, attempts, jobs) = crate::writer_op::sort(batch);
        if let Err(err) = begin(&conn) {
            tracing::error!(error = %err, "sqlite: cannot begin a transaction");
            fail_all(&shared, events, attempts, jobs, err);
            continue;
        }
        let typed = match run_typed(&conn, &shared, &events, &attempts, false) {
            Ok(done) => done,
            Err(err) => {
                // One of them failed: start over, each in a savepoint of its own.
                tracing::debug!(error = %err, "sqlite: a batch fell back to savepoints");
                let restarted = conn
                    .execute_batch("ROLLBACK")
                    .map_err(StoreError::from)
                    .and_then(|_| begin(&conn));
                if let Err(err) = restarted {
                    tracing::error!(error = %err, "sqlite: cannot restart a batch");
                    fail_all(&shared, events, attempts, jobs, err);
                    continue;
                }
                match run_typed(&conn, &shared, &events, &attempts, true) {
                    Ok(done) => done,
                    Err(err) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        fail_all(&shared, events, attempts, jobs, err);
                        continue;
                    }
                }
            }
        };
        let replies: Vec<Reply> = jobs
            .into_iter()
            .map(|job| run_in_savepoint(&conn, job))
            .collect();
        let committed = conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(StoreError::from);
        if let Err(e) = &committed {
            tracing::error!(error = %e, "sqlite: commit failed; the batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
        typed.answer(&shared, events, attempts, &committed);
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// The results of a batch's typed operations, in the order of their operations.
struct Typed {
    events: Vec<Result<InsertOutcome, StoreError>>,
    attempts: Vec<Result<deliveries::Completed, StoreError>>,
}

impl Typed {
    /// Answers the callers once the batch's fate is known; after a commit, frees the leases of
    /// the attempts recorded and tells the deriver about new events.
    fn answer(
        self,
        shared: &Shared,
        events: Vec<events::EventOp>,
        attempts: Vec<deliveries::AttemptOp>,
        committed: &Result<(), StoreError>,
    ) {
        let mut leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
        for (op, result) in attempts.iter().zip(&self.attempts) {
            match (committed, result) {
                (Ok(()), Ok(done)) => {
                    if let Some(id) = done.release {
                        leases.release(id);
                    }
                }
                _ => {
                    leases.recording_failed(&op.attempt.delivery_id.0, ms(op.attempt.attempted_at))
                }
            }
        }
        drop(leases);
        if committed.is_ok()
            && self
                .events
                .iter()
                .any(|r| matches!(r, Ok(InsertOutcome::Created { .. })))
        {
            shared.wake_deriver();
        }
        for (op, result) in events.into_iter().zip(self.events) {
            let _ = op.reply.send(committed.clone().and(result));
        }
        for (op, result) in attempts.into_iter().zip(self.attempts) {
            let _ = op
                .reply
                .send(committed.clone().and(result.map(|d| d.effects)));
        }
    }
}

/// Runs the typed operations; `safe` puts each in a savepoint, so one failing fails only
/// itself. Without `safe` the first failure fails the whole call (the caller starts over).
fn run_typed(
    conn: &Connection,
    shared: &Shared,
    events: &[events::EventOp],
    attempts: &[deliveries::AttemptOp],
    safe: bool,
) -> Result<Typed, StoreError> {
    let mut out = Typed {
        events: Vec::with_capacity(events.len()),
        attempts: Vec::with_capacity(attempts.len()),
    };
    for op in events {
        out.events
            .push(guarded(conn, safe, || events::insert(conn, shared, op))?);
    }
    let mut streaks = deliveries::Streaks::new();
    for op in attempts {
        out.attempts.push(guarded(conn, safe, || {
            deliveries::complete(conn, shared, op, (!safe).then_some(&mut streaks))
        })?);
    }
    Ok(out)
}

/// Runs `f`: as it is (its failure is the caller's), or with `safe` in a savepoint that its
/// failure rolls back (then its result is the operation's own, and only a failing savepoint
/// statement is the caller's).
fn guarded<T>(
    conn: &Connection,
    safe: bool,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    if !safe {
        return f().map(Ok);
    }
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
    run("SAVEPOINT op")?;
    let result = f();
    if result.is_err() {
        run("ROLLBACK TO op")?;
    }
    run("RELEASE op")?;
    Ok(result)
}

/// Answers every operation of a batch that could not run.
fn fail_all(
    shared: &Shared,
    events: Vec<events::EventOp>,
    attempts: Vec<deliveries::AttemptOp>,
    jobs: Vec<Job>,
    err: StoreError,
) {
    for op in events {
        let _ = op.reply.send(Err(err.clone()));
    }
    let mut leases = shared.leases.lock().unwrap_or_else(|p| p.into_inner());
    for op in attempts {
        leases.recording_failed(&op.attempt.delivery_id.0, ms(op.attempt.attempted_at));
        let _ = op.reply.send(Err(err.clone()));
    }
    drop(leases);
    for job in jobs {
        let (_, reply) = job(Err(err.clone()));
        reply(Err(err.clone()));
    }
}

/// Runs one job in its own savepoint, so its failure undoes only its own writes.
fn run_in_savepoint(conn: &Connection, job: Job) -> Reply {
    // Cached statements: parsing these four times per write showed in profiles.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
    if let Err(e) = run("SAVEPOINT job") {
        return job(Err(StoreError::from(e))).1;
    }
    let (ok, reply) = job(Ok(conn));
    let ended = if ok {
        run("RELEASE job")
    } else {
        run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "sqlite: cannot end a savepoint");
    }
    reply
}
