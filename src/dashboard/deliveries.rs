//! The deliveries pages: the list (by status, handler, type, time and error text, with a
//! bulk replay of what it shows) and one delivery with every attempt.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Section, Visitor};
use super::{ACTOR, PageError, given, link, segment};
use crate::services::{DeliveriesAsked, ServiceError, Services, delivery_filter, delivery_status};
use crate::store::{AttemptRecord, DeliveryRecord, DeliveryStatus, Replayed};

/// Rows per page.
const PAGE: usize = 50;

/// The filter form of the deliveries page (and of a bulk replay's preview).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub handler: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub error: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub order: Option<String>,
    pub cursor: Option<String>,
}

impl DeliveryQuery {
    /// The status asked for, if any.
    pub fn status(&self) -> Result<Option<DeliveryStatus>, ServiceError> {
        delivery_status(self.status.as_deref())
    }

    /// The filter fields, for links that keep them.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 7] {
        [
            ("status", given(&self.status)),
            ("handler", given(&self.handler)),
            ("type", given(&self.event_type)),
            ("error", given(&self.error)),
            ("since", given(&self.since)),
            ("until", given(&self.until)),
            ("order", given(&self.order)),
        ]
    }
}

/// `GET /ui/deliveries`.
pub async fn deliveries(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Markup, PageError> {
    let filter = delivery_filter(&DeliveriesAsked {
        status: q.status.as_deref(),
        handler: q.handler.as_deref(),
        event_type: q.event_type.as_deref(),
        error: q.error.as_deref(),
        since: q.since.as_deref(),
        until: q.until.as_deref(),
        order: q.order.as_deref(),
        cursor: q.cursor.as_deref(),
        limit: PAGE,
    })?;
    let page = services.deliveries(&filter).await?;
    let next = page.next.as_deref().map(|cursor| {
        let fields: Vec<_> = q.fields().into_iter().chain([("cursor", Some(cursor))]).collect();
        link("/ui/deliveries", &fields)
    });
    let replayable = matches!(filter.status, Some(DeliveryStatus::Dead | DeliveryStatus::Succeeded));
    let body = html! {
        (filter_form(&q))
        @if page.items.is_empty() {
            p.empty { "No deliveries match." }
        } @else {
            @if replayable {
                p { a.button #replay-these href=(link("/ui/replay", &q.fields())) { "Replay all that match…" } }
            }
            (table(&page.items))
        }
        @if let Some(next) = next { p.pager { a href=(next) rel="next" { "Next page →" } } }
    };
    Ok(layout::page("Deliveries", &visitor, Section::Deliveries, body))
}

fn filter_form(q: &DeliveryQuery) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let status = given(&q.status);
    html! {
        form.filters method="get" action="/ui/deliveries" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in ["pending", "blocked", "running", "succeeded", "dead"] {
                        option value=(s) selected[status == Some(s)] { (s) }
                    }
                }
            }
            label { "Handler " input name="handler" value=(value(&q.handler)); }
            label { "Type " input name="type" value=(value(&q.event_type)); }
            label { "Error text " input name="error" value=(value(&q.error)); }
            label { "Since " input name="since" value=(value(&q.since)) placeholder="1h"; }
            label { "Until " input name="until" value=(value(&q.until)) placeholder="10m"; }
            label { "Order "
                select name="order" {
                    option value="newest" { "newest first" }
                    option value="oldest" selected[given(&q.order) == Some("oldest")] { "oldest first" }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// Deliveries as a table, each linked to its page.
pub fn table(deliveries: &[DeliveryRecord]) -> Markup {
    html! {
        table.list #deliveries {
            thead { tr { th { "created" } th { "handler" } th { "type" } th { "status" } th { "attempts" } th { "last error" } } }
            tbody {
                @for d in deliveries {
                    tr {
                        td { a href={ "/ui/deliveries/" (segment(&d.id)) } { (layout::time(d.created_ms)) } }
                        td { (d.handler) }
                        td { code { (d.event_type) } }
                        td { (layout::status(d.status)) }
                        td.num { (d.attempts) }
                        td.error { (d.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// The button that queues one finished delivery again.
pub fn replay_button(visitor: &Visitor, id: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/deliveries/" (segment(id)) "/replay" } {
            (visitor.csrf_field())
            button type="submit" { "Replay" }
        }
    }
}

/// The button that queues a delivery again with its steps' recorded results forgotten.
fn fresh_button(visitor: &Visitor, id: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/deliveries/" (segment(id)) "/replay?fresh=true" } {
            (visitor.csrf_field())
            button type="submit" title="Every step runs again" { "Replay fresh" }
        }
    }
}

/// A dead delivery its key waits for.
fn holds_key(d: &DeliveryRecord) -> bool {
    d.status == DeliveryStatus::Dead && d.line_place.is_some()
}

/// The button that lets the key a dead delivery holds move on.
fn skip_button(visitor: &Visitor, id: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/deliveries/" (segment(id)) "/skip" } {
            (visitor.csrf_field())
            button type="submit" { "Skip" }
        }
    }
}

/// `GET /ui/deliveries/{id}`.
pub async fn delivery(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Query(done): Query<super::Done>,
) -> Result<Markup, PageError> {
    let detail = services.delivery(&id).await?;
    let d = &detail.delivery;
    let body = html! {
        (layout::notice(given(&done.done)))
        dl.facts {
            dt { "event" } dd { a href={ "/ui/events/" (segment(&d.event_id)) } { (d.event_id) } " (" code { (d.event_type) } ")" }
            dt { "handler" } dd { (d.handler) }
            dt { "status" } dd { (layout::status(d.status)) }
            dt { "created" } dd { (layout::time(d.created_ms)) }
            @if let Some(next) = d.next_attempt_ms { dt { "next attempt" } dd { (layout::time(next)) } }
            @if let Some(error) = &d.last_error { dt { "last error" } dd.error { (error) } }
            @if let Some(key) = &d.order_key {
                dt { "order key" }
                dd #order-key {
                    code { (key) }
                    @if let Some(front) = &detail.blocked_by {
                        " waits for " a href={ "/ui/deliveries/" (segment(front)) } { (front) }
                    } @else if holds_key(d) {
                        " waits for this delivery: replay it once fixed, or skip it"
                    }
                }
            }
        }
        @if matches!(d.status, DeliveryStatus::Dead | DeliveryStatus::Succeeded) {
            div.actions {
                (replay_button(&visitor, &d.id))
                @if d.steps_since.is_some() { (fresh_button(&visitor, &d.id)) }
                @if holds_key(d) { (skip_button(&visitor, &d.id)) }
            }
        }
        h2 { "Attempts" }
        @if detail.attempts.is_empty() { p.empty { "None yet." } }
        @for attempt in detail.attempts.iter().rev() { (attempt_section(attempt)) }
    };
    Ok(layout::page(
        &format!("Delivery {id}"),
        &visitor,
        Section::Deliveries,
        body,
    ))
}

fn attempt_section(a: &AttemptRecord) -> Markup {
    let report = &a.report;
    let outcome = &report["outcome"];
    let (class, said) = match a.succeeded {
        true => ("succeeded", "succeeded".to_owned()),
        false => ("dead", text(&outcome["kind"])),
    };
    html! {
        section.attempt id={ "attempt-" (a.n) } {
            h3 {
                "Attempt " (a.n) " "
                span class={ "status " (class) } { (said) }
                @if a.replay { " (replay)" }
            }
            p.muted { "started " (layout::time(a.started_ms)) ", took " (layout::duration_ms(a.duration_ms)) }
            @if outcome["status"] == "failure" {
                pre.stack { (text(&outcome["name"])) ": " (text(&outcome["message"]))
                    @if let Some(stack) = outcome["stack"].as_str() { "\n" (stack.lines().skip(1).collect::<Vec<_>>().join("\n")) }
                }
            }
            (steps(&report["steps"]))
            (logs(&report["logs"]))
            (fetches(&report["fetches"]))
        }
    }
}

/// The attempt's `ctx.step` calls: whether each ran, was recalled or failed, and how long.
fn steps(records: &Value) -> Markup {
    let steps = records.as_array().cloned().unwrap_or_default();
    html! {
        @if !steps.is_empty() {
            h4 { "Steps" }
            table.list.steps {
                thead { tr { th { "step" } th { "outcome" } th { "duration" } } }
                tbody {
                    @for step in &steps {
                        tr {
                            td { code { (text(&step["name"])) } }
                            td {
                                @match step["status"].as_str() {
                                    Some("recalled") => "recalled: its recorded result, not run again",
                                    Some("failed") => { "failed: " (text(&step["error"])) },
                                    _ => "ran",
                                }
                            }
                            td.num { (layout::duration_ms(step["duration_ms"].as_f64().unwrap_or(0.0))) }
                        }
                    }
                }
            }
        }
    }
}

fn logs(lines: &Value) -> Markup {
    let lines = lines.as_array().cloned().unwrap_or_default();
    html! {
        @if !lines.is_empty() {
            h4 { "Console" }
            pre.console { @for line in &lines { span class={ "level " (text(&line["level"])) } { (text(&line["level"])) } " " (text(&line["message"])) "\n" } }
        }
    }
}

fn fetches(records: &Value) -> Markup {
    let records = records.as_array().cloned().unwrap_or_default();
    html! {
        @if !records.is_empty() {
            h4 { "Fetches" }
            table.list.fetches {
                thead { tr { th { "method" } th { "URL" } th { "status" } th { "time" } } }
                tbody {
                    @for f in &records {
                        tr {
                            td { (text(&f["method"])) }
                            td.url { (text(&f["url"])) }
                            td.num { (f["status"].as_u64().map_or("no answer".to_owned(), |s| s.to_string())) }
                            td.num {
                                (layout::duration_ms(f["duration_ms"].as_f64().unwrap_or(0.0)))
                                @if let Some(waited) = f["waited_ms"].as_f64() {
                                    br; small.muted { (layout::duration_ms(waited)) " waiting for its turn" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `POST /ui/deliveries/{id}/skip`.
pub async fn skip_one(State(services): State<Arc<Services>>, Path(id): Path<String>) -> Result<Redirect, PageError> {
    services.skip(&id, ACTOR).await?;
    Ok(Redirect::to(&format!("/ui/deliveries/{}?done=skipped", segment(&id))))
}

/// `?fresh=true` on a replay: forget the steps' recorded results.
#[derive(Debug, Default, Deserialize)]
pub struct ReplayQuery {
    fresh: Option<String>,
}

/// `POST /ui/deliveries/{id}/replay[?fresh=true]`.
pub async fn replay_one(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<Redirect, PageError> {
    let fresh = given(&q.fresh) == Some("true");
    let done = match services.replay(&id, fresh, ACTOR).await? {
        Replayed::AlreadyQueued => "already",
        Replayed::Queued | Replayed::NotFound => "replayed",
    };
    Ok(Redirect::to(&format!("/ui/deliveries/{}?done={done}", segment(&id))))
}
