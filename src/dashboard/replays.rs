//! Bulk replay from the dashboard: a dry run shows how many deliveries a filter takes and
//! the first of them, a confirmation starts the job, and the job's page follows it live (and
//! can cancel it).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::deliveries::DeliveryQuery;
use super::layout::{self, Section, Visitor};
use super::{ACTOR, PageError, given, link, segment};
use crate::delivery::{JobState, Outcomes, ReplayFilter, ReplayJob};
use crate::services::{BulkReplay, Preview, Services, Window};
use crate::store::DeliveryStatus;

/// The replay `q` asks for: dead deliveries unless it names succeeded ones.
fn request(q: &DeliveryQuery) -> Result<BulkReplay, PageError> {
    let window = Window::parse(None, given(&q.since), given(&q.until))?;
    let filter = ReplayFilter {
        status: Some(q.status()?.unwrap_or(DeliveryStatus::Dead)),
        handler: given(&q.handler).map(str::to_owned),
        event_type: given(&q.event_type).map(str::to_owned),
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        error: given(&q.error).map(str::to_owned),
        ..ReplayFilter::default()
    };
    Ok(BulkReplay {
        filter,
        rate: None,
        backfill: false,
        fresh: false,
    })
}

/// `GET /ui/replay?status=&handler=&type=&error=&since=&until=`: the dry run, and the form
/// that confirms it. The time window is fixed here, so the job takes what the preview showed
/// even when it was given as `1h`.
pub async fn preview_replay(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Markup, PageError> {
    let request = request(&q)?;
    let Preview::Replay { count, first } = services.preview_replay(&request).await? else {
        return Err(crate::http::ApiError::internal("a replay previewed as a backfill").into());
    };
    let at = |ms: Option<u64>| {
        ms.map(|ms| humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)))
            .map(|t| t.to_string())
    };
    let filter = &request.filter;
    let fixed = [
        ("status", filter.status.map(|s| s.as_str().to_owned())),
        ("handler", filter.handler.clone()),
        ("type", filter.event_type.clone()),
        ("error", filter.error.clone()),
        ("since", at(filter.since_ms)),
        ("until", at(filter.until_ms)),
    ];
    let back = link("/ui/deliveries", &q.fields());
    let body = html! {
        p #replay-count { strong { (count) } " " (if count == 1 { "delivery" } else { "deliveries" }) " would be queued again." }
        @if count > 0 {
            form method="post" action="/ui/replay" {
                (visitor.csrf_field())
                @for (name, value) in &fixed {
                    @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
                }
                label { "At most " input name="rate" type="number" min="0.1" step="any" placeholder="as fast as possible" size="10"; " per second" }
                " "
                label { input type="checkbox" name="fresh" value="true"; " Fresh: every step runs again" }
                " "
                button type="submit" #confirm-replay { "Replay " (count) }
                " "
                a href=(back) { "Cancel" }
            }
            h2 { "The first " (first.len()) }
            (super::deliveries::table(&first))
        } @else {
            p { a href=(back) { "Back to the deliveries" } }
        }
    };
    Ok(layout::page("Replay deliveries", &visitor, Section::Deliveries, body))
}

/// The confirmation form: the filter as previewed, and an optional rate.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(flatten)]
    query: DeliveryQuery,
    rate: Option<String>,
    /// `true` when the steps' recorded results are to be forgotten.
    fresh: Option<String>,
}

/// `POST /ui/replay`: starts the job and goes to its page.
pub async fn start_replay(
    State(services): State<Arc<Services>>,
    form: Result<Form<StartForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let Form(form) = form?;
    let mut request = request(&form.query)?;
    request.rate = match given(&form.rate) {
        Some(rate) => Some(rate.parse::<f64>().map_err(|_| crate::services::ServiceError::Rate)?),
        None => None,
    };
    request.fresh = given(&form.fresh) == Some("true");
    let job = services.start_replay(request, ACTOR).await?;
    Ok(Redirect::to(&format!("/ui/jobs/{}", segment(&job.id))))
}

/// `?part=progress` asks for the progress alone, which the page polls while the job runs.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    part: Option<String>,
    done: Option<String>,
}

/// `GET /ui/jobs/{id}`.
pub async fn job(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Query(q): Query<JobQuery>,
) -> Result<Markup, PageError> {
    let job = services.replay_job(&id)?;
    let outcomes = services.replay_outcomes(&id).await?;
    if given(&q.part) == Some("progress") {
        return Ok(progress(&visitor, &job, &outcomes));
    }
    let body = html! {
        (layout::notice(given(&q.done)))
        (progress(&visitor, &job, &outcomes))
        p { a href=(link("/ui/deliveries", &[("status", Some("succeeded")), ("handler", job.filter.handler.as_deref())])) { "Deliveries that succeeded" }
            " · "
            a href=(link("/ui/deliveries", &[("status", Some("dead")), ("handler", job.filter.handler.as_deref())])) { "Deliveries still dead" } }
    };
    Ok(layout::page(
        &format!("Replay job {id}"),
        &visitor,
        Section::Deliveries,
        body,
    ))
}

/// The job's state, progress, how what it queued fared, and its cancel button; polled every
/// second while it runs or what it queued has not finished.
fn progress(visitor: &Visitor, job: &ReplayJob, outcomes: &Outcomes) -> Markup {
    let running = job.state == JobState::Running;
    let polled = running || outcomes.waiting > 0;
    let path = format!("/ui/jobs/{}", segment(&job.id));
    let state = match job.state {
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Cancelled => "cancelled",
        JobState::Failed => "failed",
    };
    html! {
        section #job-progress data-state=(state)
            hx-get=[polled.then(|| format!("{path}?part=progress"))]
            hx-trigger=[polled.then_some("every 1s")]
            hx-swap=[polled.then_some("outerHTML")] {
            p { "State: " strong #job-state { (state) } }
            progress max=(job.total.max(1)) value=(job.queued + job.skipped) {}
            p #job-counts { (job.queued) " queued again, " (job.skipped) " skipped, of " (job.total) "." }
            @if outcomes.followed > 0 {
                p #job-outcomes {
                    "Of those queued: " strong { (outcomes.succeeded) " succeeded" } ", "
                    (outcomes.failed_again) " failed again, " (outcomes.waiting) " still running or waiting"
                    @if outcomes.gone > 0 { ", " (outcomes.gone) " deleted since" }
                    @if outcomes.followed < job.queued { " (the first " (outcomes.followed) ")" }
                    "."
                }
            }
            @if let Some(error) = &job.error { p.error role="alert" { (error) } }
            @if running {
                form method="post" action={ (path) "/cancel" } {
                    (visitor.csrf_field())
                    button.danger type="submit" { "Cancel the job" }
                    " "
                    a href=(path) { "Refresh" }
                }
            }
        }
    }
}

/// `POST /ui/jobs/{id}/cancel`.
pub async fn cancel_job(State(services): State<Arc<Services>>, Path(id): Path<String>) -> Result<Redirect, PageError> {
    services.cancel_replay(&id)?;
    Ok(Redirect::to(&format!("/ui/jobs/{}?done=cancelled", segment(&id))))
}
