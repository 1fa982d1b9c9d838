//! The overview: the last hour's ingest, attempt outcomes and attempt latency as charts,
//! and the dead deliveries of each handler.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::charts::{self, Series};
use super::layout::{self, Section, Visitor};
use super::{PageError, link};
use crate::clock::now_ms;
use crate::metrics::Minute;
use crate::services::Services;
use crate::store::DeliveryStatus;

/// `GET /ui`.
pub async fn overview(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
) -> Result<Markup, PageError> {
    let minutes = services.metrics.recent(now_ms());
    let counts = services.delivery_counts().await?;
    let dead: Vec<_> = counts
        .iter()
        .filter(|c| c.status == DeliveryStatus::Dead && c.count > 0)
        .collect();
    let waiting: u64 = counts
        .iter()
        .filter(|c| c.status == DeliveryStatus::Pending)
        .map(|c| c.count)
        .sum();
    let sum = |f: fn(&Minute) -> u64| minutes.iter().map(f).sum::<u64>();
    let body = html! {
        dl.totals {
            div { dt { "events in the last hour" } dd #ingested-hour { (sum(|m| m.ingested)) } }
            div { dt { "attempts succeeded" } dd { (sum(|m| m.succeeded)) } }
            div { dt { "attempts failed" } dd { (sum(|m| m.failed)) } }
            div { dt { "deliveries waiting" } dd { (waiting) } }
            div { dt { "dead deliveries" } dd { (dead.iter().map(|c| c.count).sum::<u64>()) } }
        }
        (hour_charts(&minutes))
        p.muted { "The charts cover the last hour since eddy started; a restart begins them again." }
        h2 { "Dead deliveries by handler" }
        @if dead.is_empty() {
            p.empty { "None." }
        } @else {
            table.list #dead-by-handler {
                thead { tr { th { "handler" } th { "dead" } th {} } }
                tbody {
                    @for c in &dead {
                        tr {
                            td { (c.handler) }
                            td.num { (c.count) }
                            td { a href=(link("/ui/deliveries", &[("status", Some("dead")), ("handler", Some(&c.handler))])) { "See them" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Overview", &visitor, Section::Overview, body))
}

/// The three charts of an hour of minutes.
pub fn hour_charts(minutes: &[Minute]) -> Markup {
    let labels: Vec<String> = minutes.iter().map(|m| minute_label(m.at)).collect();
    let of = |f: fn(&Minute) -> u64| minutes.iter().map(|m| f(m) as f64).collect::<Vec<f64>>();
    let (ingested, succeeded, failed) = (of(|m| m.ingested), of(|m| m.succeeded), of(|m| m.failed));
    let quantile = |share| {
        let values: Vec<Option<f64>> = minutes.iter().map(|m| m.duration_quantile_ms(share)).collect();
        let present = values.iter().map(Option::is_some).collect::<Vec<bool>>();
        (
            values.into_iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<f64>>(),
            present,
        )
    };
    let (p50, p50_present) = quantile(0.5);
    let (p95, p95_present) = quantile(0.95);
    html! {
        div.charts {
            (charts::stacked("Events ingested", &labels, &[Series { class: "ingest", name: "events", values: &ingested }], "per minute"))
            (charts::stacked("Attempts", &labels, &[
                Series { class: "ok", name: "succeeded", values: &succeeded },
                Series { class: "failed", name: "failed", values: &failed },
            ], "per minute"))
            (charts::lines("Attempt duration", &labels, &[
                (Series { class: "p50", name: "median", values: &p50 }, p50_present),
                (Series { class: "p95", name: "95th percentile", values: &p95 }, p95_present),
            ], "ms"))
        }
    }
}

fn minute_label(minute: u64) -> String {
    i64::try_from(minute * 60)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(|| minute.to_string(), |t| t.format("%H:%M UTC").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_minutes_makes_three_charts_named_by_time() {
        assert_eq!(minute_label(0), "00:00 UTC");
        assert_eq!(minute_label(61), "01:01 UTC");
        let mut minutes = vec![Minute::default(); 60];
        minutes[59].ingested = 7;
        minutes[59].succeeded = 2;
        minutes[59].durations[3] = 2;
        let html = hour_charts(&minutes).into_string();
        assert_eq!(html.matches("<figure").count(), 3);
        assert!(
            html.contains("events 7 per minute") && html.contains("median 10 ms"),
            "{html}"
        );
    }
}
