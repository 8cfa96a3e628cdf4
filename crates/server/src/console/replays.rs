//! Replays started from the console, followed on a page of their own: the replay runs in the
//! background in slices (`services::subscription_controls::replay_in_slices`), and its page shows
//! how far it got, refreshing itself until it is done.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use maud::html;
use serde_json::json;
use uuid::Uuid;

use switchyard_core::model::{ClientId, SubscriptionId};

use super::html::{link, page};
use super::requests::{input, parse_time, see_other};
use super::webhooks::visible;
use super::{ConsoleError, PageResult, Posted, Session};
use crate::AppState;
use crate::error::AppError;
use crate::extract::PathParams;
use crate::services::subscription_controls::{self, ReplayProgress, ReplayRequest};

/// A replay is made in this many parts, so that its page has something to show.
const SLICES: u32 = 20;
/// Replays remembered for their pages (the oldest finished ones are forgotten first).
const KEPT: usize = 100;

struct Job {
    subscription: SubscriptionId,
    client: ClientId,
    progress: ReplayProgress,
}

/// The replays started from this node's console.
#[derive(Default)]
pub struct ReplayJobs(Mutex<HashMap<Uuid, Job>>);

impl ReplayJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Job>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, subscription: SubscriptionId, client: ClientId) -> Uuid {
        let id = Uuid::now_v7();
        let mut jobs = self.lock();
        if jobs.len() >= KEPT
            && let Some(oldest) = jobs
                .iter()
                .filter(|(_, j)| j.progress.finished)
                .map(|(id, _)| *id)
                .min()
        {
            jobs.remove(&oldest);
        }
        jobs.insert(
            id,
            Job {
                subscription,
                client,
                progress: ReplayProgress::default(),
            },
        );
        id
    }

    fn update(&self, id: Uuid, progress: &ReplayProgress) {
        if let Some(job) = self.lock().get_mut(&id) {
            job.progress = progress.clone();
        }
    }

    /// A replay's progress, for the client that started it, of the subscription it names.
    fn get(
        &self,
        id: Uuid,
        subscription: SubscriptionId,
        client: &ClientId,
    ) -> Option<ReplayProgress> {
        self.lock()
            .get(&id)
            .filter(|j| j.subscription == subscription && &j.client == client)
            .map(|j| j.progress.clone())
    }
}

/// `POST /console/webhooks/{id}/replay`: starts the replay and shows its page.
pub async fn replay(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Posted { session, form }: Posted,
) -> PageResult {
    let since = parse_time(&form, "since")?
        .ok_or_else(|| ConsoleError(AppError::invalid("since", "since is required")))?;
    let mut r = json!({ "since": since });
    if let Some(until) = parse_time(&form, "until")? {
        r["until"] = json!(until);
    }
    let request: ReplayRequest = input(r)?;
    if request.until.is_some_and(|until| until <= request.since) {
        return Err(ConsoleError(AppError::invalid(
            "until",
            "until must be after since",
        )));
    }
    let sub = visible(&state, &session, &id).await?;
    let job = state.replays.start(sub.id, session.client.id.clone());
    let (task_state, client) = (state.clone(), session.client.clone());
    tokio::spawn(async move {
        let jobs = &task_state.replays;
        let done = subscription_controls::replay_in_slices(
            &task_state,
            &client,
            &id,
            request,
            SLICES,
            |progress| jobs.update(job, progress),
        )
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e.message, "a console replay stopped");
        }
    });
    Ok(see_other(&format!(
        "/console/webhooks/{}/replays/{job}",
        sub.id
    )))
}

/// `GET /console/webhooks/{id}/replays/{job}`: how far the replay got.
pub async fn replay_page(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, job)): PathParams<(String, String)>,
) -> PageResult {
    let sub = visible(&state, &session, &id).await?;
    let progress = job
        .parse()
        .ok()
        .and_then(|job| state.replays.get(job, sub.id, &session.client.id))
        .ok_or_else(|| ConsoleError(AppError::not_found("replay")))?;
    let logs = format!("/console/webhooks/{}/logs", sub.id);
    let body = html! {
        @if !progress.finished {
            // Refreshes itself until the replay is done.
            meta http-equiv="refresh" content="1";
        }
        p { (link(&logs, "← Callback logs")) }
        p {
            progress value=(progress.slices_done) max=(progress.slices.max(1)) {}
            " " (progress.slices_done) " of " (progress.slices) " parts"
        }
        p { strong { (progress.replayed) } " deliveries pending again" }
        @match (&progress.error, progress.finished) {
            (Some(error), _) => p class="error" { "Stopped: " (error) },
            (None, true) => p class="notice" { "Done." },
            (None, false) => p { "Replaying…" },
        }
    };
    Ok(page(&session, "Replay", body))
}
