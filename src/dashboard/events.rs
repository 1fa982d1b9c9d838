//! The events pages: the list (newest first, by type pattern, time and text in the data)
//! and one event with its data, deliveries and version history.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, Visitor};
use super::{PageError, diff, given};
use crate::services::{EventDetail, EventsAsked, Services};
use crate::store::{DeliveryRecord, DeliveryStatus, EventRecord};

/// Rows per page.
const PAGE: usize = 50;
/// Events read at most per page when searching their data.
const SEARCH_SCAN: usize = 20_000;

/// The filter form of the events page.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    text: Option<String>,
    order: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /ui/events`.
pub async fn events(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Query(q): Query<EventQuery>,
) -> Result<Markup, PageError> {
    let asked = EventsAsked {
        types: q.event_type.as_deref(),
        since: q.since.as_deref(),
        until: q.until.as_deref(),
        order: q.order.as_deref(),
        cursor: q.cursor.as_deref(),
        unrouted: false,
        limit: PAGE,
    };
    let filter = services.event_filter(&asked).await?;
    let page = match given(&q.text) {
        Some(text) => services.events_containing(&filter, text, SEARCH_SCAN).await?,
        None => services.events(&filter).await?,
    };
    let next = page.next.as_deref().map(|cursor| {
        let fields = [
            ("type", given(&q.event_type)),
            ("since", given(&q.since)),
            ("until", given(&q.until)),
            ("text", given(&q.text)),
            ("order", given(&q.order)),
            ("cursor", Some(cursor)),
        ];
        super::link("/ui/events", &fields)
    });
    let body = html! {
        (layout::notice(given(&q.done)))
        (filter_form(&q))
        @if page.items.is_empty() {
            p.empty { "No events match." }
        } @else {
            (table(&page.items))
        }
        @if let Some(next) = next { p.pager { a href=(next) rel="next" { "Next page →" } } }
    };
    Ok(layout::page("Events", &visitor, Section::Events, body))
}

fn filter_form(q: &EventQuery) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form.filters method="get" action="/ui/events" {
            label { "Type " input name="type" value=(value(&q.event_type)) placeholder="crm.* or github.**"; }
            label { "Since " input name="since" value=(value(&q.since)) placeholder="1h or 2026-01-31T12:00:00Z"; }
            label { "Until " input name="until" value=(value(&q.until)) placeholder="10m"; }
            label { "Text in data " input name="text" value=(value(&q.text)) placeholder="ada@example.com"; }
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

fn table(events: &[EventRecord]) -> Markup {
    html! {
        table.list #events {
            thead { tr { th { "received" } th { "type" } th { "id" } th { "source" } th { "deliveries" } th { "version" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (layout::time(e.received_ms)) }
                        td { code { (e.event.kind) } }
                        td { a href={ "/ui/events/" (super::segment(&e.event.id)) } { (e.event.id) } }
                        td { (e.event.source) }
                        td.num { (e.deliveries.len()) }
                        td.num { (e.version) }
                    }
                }
            }
        }
    }
}

/// `GET /ui/events/{id}`.
pub async fn event(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Query(done): Query<super::Done>,
) -> Result<Markup, PageError> {
    let detail = services.event(&id).await?;
    let record = &detail.event;
    let path = format!("/ui/events/{}", super::segment(&id));
    let body = html! {
        (layout::notice(given(&done.done)))
        dl.facts {
            dt { "type" } dd { code { (record.event.kind) } }
            dt { "source" } dd { (record.event.source) }
            @if let Some(subject) = &record.event.subject { dt { "subject" } dd { (subject) } }
            dt { "time" } dd { (record.event.time) }
            dt { "received" } dd { (layout::time(record.received_ms)) }
            dt { "version" } dd { (record.version) }
            @if !record.redacted.is_empty() {
                dt { "redacted" } dd { (record.redacted.join(", ")) " at " (layout::maybe_time(record.redacted_ms)) }
            }
        }
        (super::edits::actions(&visitor, &path))
        h2 { "Data" }
        (layout::json(&record.event.data))
        h2 { "Deliveries" }
        (deliveries_table(&visitor, &detail.deliveries))
        h2 { "History" }
        (history(&detail))
    };
    Ok(layout::page(&format!("Event {id}"), &visitor, Section::Events, body))
}

/// The deliveries of one event, each finished one with its replay button.
pub fn deliveries_table(visitor: &Visitor, deliveries: &[DeliveryRecord]) -> Markup {
    html! {
        @if deliveries.is_empty() {
            p.empty { "None: no handler routes this type." }
        } @else {
            table.list #deliveries {
                thead { tr { th { "handler" } th { "status" } th { "attempts" } th { "next attempt" } th { "last error" } th {} } }
                tbody {
                    @for d in deliveries {
                        tr {
                            td { a href={ "/ui/deliveries/" (super::segment(&d.id)) } { (d.handler) } }
                            td { (layout::status(d.status)) }
                            td.num { (d.attempts) }
                            td { (layout::maybe_time(d.next_attempt_ms)) }
                            td.error { (d.last_error.as_deref().unwrap_or("")) }
                            td { @if matches!(d.status, DeliveryStatus::Dead | DeliveryStatus::Succeeded) {
                                (super::deliveries::replay_button(visitor, &d.id))
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// Each edit, newest first, as the fields it changed.
fn history(detail: &EventDetail) -> Markup {
    let current = (detail.event.version, &detail.event.event.data);
    let mut versions: Vec<(u32, &serde_json::Value)> = detail.history.iter().map(|v| (v.version, &v.data)).collect();
    versions.push(current);
    let replaced: Vec<u64> = detail.history.iter().map(|v| v.replaced_ms).collect();
    html! {
        @if versions.len() < 2 {
            p.empty { "Never edited: this is version " (detail.event.version) "." }
        }
        @for (i, pair) in versions.windows(2).enumerate().rev() {
            section.version {
                h3 { "Version " (pair[0].0) " → " (pair[1].0) ", " (layout::time(replaced[i])) }
                (diff::table(&diff::changes(pair[0].1, pair[1].1)))
            }
        }
    }
}
