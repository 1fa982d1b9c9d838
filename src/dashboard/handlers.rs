//! The handlers page: each handler file with its routes, limits and load error, what it did
//! in the last hour, and its deliveries waiting, running and dead.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::layout::{self, Section, Visitor};
use super::{PageError, link};
use crate::clock::now_ms;
use crate::runtime::HostStatus;
use crate::services::{HandlerStatus, Services};
use crate::store::DeliveryStatus;

/// Counts shown per handler: pending, running, dead, then the last hour's succeeded and
/// failed attempts.
type Counts = [u64; 5];

/// `GET /ui/handlers`.
pub async fn handlers(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
) -> Result<Markup, PageError> {
    let mut counts: HashMap<String, Counts> = HashMap::new();
    for c in services.delivery_counts().await? {
        let column = match c.status {
            // Blocked ones wait too, for their key's turn.
            DeliveryStatus::Pending | DeliveryStatus::Blocked => 0,
            DeliveryStatus::Running => 1,
            DeliveryStatus::Dead => 2,
            DeliveryStatus::Succeeded => continue,
        };
        counts.entry(c.handler).or_default()[column] += c.count;
    }
    for (handler, minutes) in services.metrics.recent_by_handler(now_ms()) {
        let row = counts.entry(handler).or_default();
        row[3] += minutes.iter().map(|m| m.succeeded).sum::<u64>();
        row[4] += minutes.iter().map(|m| m.failed).sum::<u64>();
    }
    let statuses = services.handler_statuses();
    let body = html! {
        @if statuses.is_empty() { p.empty { "No handler files in the handlers folder." } }
        @else { (table(&statuses, &counts)) }
        p.muted { "Attempts count the last hour since eddy started. Files are read again when they change." }
        h2 { "Destinations" }
        (destinations(&services.host_limits()))
    };
    Ok(layout::page("Handlers", &visitor, Section::Handlers, body))
}

fn table(statuses: &[HandlerStatus], counts: &HashMap<String, Counts>) -> Markup {
    html! {
        table.list #handlers {
            thead { tr {
                th { "handler" } th { "routes" } th { "state" } th { "concurrency" } th { "time / CPU" } th { "retries after" }
                th { "waiting" } th { "running" } th { "dead" } th { "succeeded (1 h)" } th { "failed (1 h)" }
            } }
            tbody {
                @for h in statuses {
                    @let row = counts.get(&h.id).copied().unwrap_or_default();
                    tr id={ "handler-" (h.id) } {
                        td { strong { (h.id) } br; small.muted { (h.file.display()) } }
                        td {
                            @for route in &h.routes { code { (route) } " " }
                            @if let Some((path, on_dead)) = &h.order_by {
                                br; small.muted.order { "in order by " code { (path) } ", on dead: " (on_dead) }
                            }
                        }
                        td {
                            @if let Some(error) = &h.error {
                                span class="status dead" { "load error" }
                                pre.stack { (error) }
                                @if h.loaded { small.muted { "The version loaded " (loaded_at(h)) " still runs." } }
                            } @else if h.loaded {
                                span class="status succeeded" { "loaded" } br; small.muted { (loaded_at(h)) }
                            } @else {
                                span class="status pending" { "not loaded" }
                            }
                        }
                        td.num { (h.concurrency.map_or("–".to_owned(), |c| c.to_string())) }
                        td { (limits(h)) }
                        td { (retries(&h.retry)) }
                        td.num { (row[0]) }
                        td.num { (row[1]) }
                        td.num {
                            @if row[2] > 0 {
                                a href=(link("/ui/deliveries", &[("status", Some("dead")), ("handler", Some(&h.id))])) { (row[2]) }
                            } @else { "0" }
                        }
                        td.num { (row[3]) }
                        td.num { (row[4]) }
                    }
                }
            }
        }
    }
}

/// When the version in use was loaded, as a `<time>` the page's script shows in local time.
fn loaded_at(h: &HandlerStatus) -> Markup {
    let at = h.loaded_at.as_deref().unwrap_or_default();
    html! { time datetime=(at) { (at) } }
}

/// Each destination host with a `[limits]` rule or a state to show.
fn destinations(hosts: &[HostStatus]) -> Markup {
    html! {
        @if hosts.is_empty() {
            p.empty { "No host has a [limits] rule in eddy.toml, a pause or failures to show." }
        } @else {
            table.list #destinations {
                thead { tr {
                    th { "host" } th { "rule" } th { "rate" } th { "burst" } th { "concurrency" }
                    th { "in flight" } th { "waiting" } th { "paused until" } th { "circuit" }
                } }
                tbody {
                    @for h in hosts {
                        tr {
                            td { code { (h.host) } }
                            td { @if let Some(rule) = &h.rule { code { (rule) } } }
                            td.num { (h.rate.map_or("–".to_owned(), |r| format!("{r}/s"))) }
                            td.num { (h.burst.map_or("–".to_owned(), |b| b.to_string())) }
                            td.num { (h.concurrency.map_or("–".to_owned(), |c| c.to_string())) }
                            td.num { (h.in_flight) }
                            td.num { (h.waiting) }
                            td { @if let Some(until) = &h.paused_until { time datetime=(until) { (until) } } }
                            td {
                                @let class = if h.breaker == "closed" { "succeeded" } else { "dead" };
                                span class={ "status " (class) } { (h.breaker) }
                                @if h.consecutive_failures > 0 { " " small.muted { (h.consecutive_failures) " failed in a row" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An attempt's wall-clock and CPU limits.
fn limits(h: &HandlerStatus) -> String {
    match (h.timeout, h.cpu_limit) {
        (Some(timeout), Some(cpu)) => {
            let written = |d| humantime::format_duration(d).to_string();
            format!("{} / {}", written(timeout), written(cpu))
        }
        _ => "–".to_owned(),
    }
}

fn retries(delays: &[std::time::Duration]) -> String {
    if delays.is_empty() {
        return "–".to_owned();
    }
    let written: Vec<String> = delays
        .iter()
        .map(|d| humantime::format_duration(*d).to_string())
        .collect();
    written.join(", ")
}
