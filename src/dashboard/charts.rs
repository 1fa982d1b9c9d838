//! Small charts of the last hour as inline SVG: one bar (or point) per minute, colours from
//! the stylesheet, and each minute's figures in a `<title>` for hovering and screen readers.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// One series of a chart: its CSS class, its name in the legend, a value per minute.
pub struct Series<'a> {
    pub class: &'static str,
    pub name: &'static str,
    pub values: &'a [f64],
}

/// Stacked bars, one per minute, each series on top of the one before; `labels` name the
/// minutes and `unit` the values.
pub fn stacked(title: &str, labels: &[String], series: &[Series<'_>], unit: &str) -> Markup {
    let minutes = labels.len().max(1);
    let totals: Vec<f64> = (0..minutes)
        .map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0.0)).sum())
        .collect();
    let top = nice_top(totals.iter().copied().fold(0.0, f64::max));
    let slot = WIDTH / minutes as f64;
    html! {
        (frame(title, top, unit, series, html! {
            @for (i, label) in labels.iter().enumerate() {
                g {
                    title { (label) @for s in series { ", " (s.name) " " (figure(s.values.get(i).copied().unwrap_or(0.0))) " " (unit) } }
                    @for (k, s) in series.iter().enumerate() {
                        @let below: f64 = series[..k].iter().map(|b| b.values.get(i).copied().unwrap_or(0.0)).sum();
                        @let value = s.values.get(i).copied().unwrap_or(0.0);
                        @if value > 0.0 {
                            rect class=(s.class)
                                x=(fmt(i as f64 * slot + 0.5)) width=(fmt((slot - 1.0).max(0.5)))
                                y=(fmt(HEIGHT - (below + value) / top * HEIGHT)) height=(fmt(value / top * HEIGHT)) {}
                        }
                    }
                }
            }
        }))
    }
}

/// Lines, one point per minute; minutes without a value leave a gap.
pub fn lines(title: &str, labels: &[String], series: &[(Series<'_>, Vec<bool>)], unit: &str) -> Markup {
    let minutes = labels.len().max(1);
    let max = series
        .iter()
        .flat_map(|(s, _)| s.values.iter().copied().filter(|v| v.is_finite()))
        .fold(0.0, f64::max);
    let top = nice_top(max);
    let slot = WIDTH / minutes as f64;
    let dot = |i: usize, v: f64| {
        (
            fmt(i as f64 * slot + slot / 2.0),
            fmt(HEIGHT - v.min(top) / top * HEIGHT),
        )
    };
    let point = |i: usize, v: f64| {
        let (x, y) = dot(i, v);
        format!("{x},{y}")
    };
    let plain: Vec<Series<'_>> = series
        .iter()
        .map(|(s, _)| Series {
            class: s.class,
            name: s.name,
            values: s.values,
        })
        .collect();
    html! {
        (frame(title, top, unit, &plain, html! {
            @for (s, present) in series {
                @for run in runs(present) {
                    @if let [only] = run.as_slice() {
                        @let (x, y) = dot(*only, s.values[*only]);
                        circle class=(s.class) cx=(x) cy=(y) r="2.5" {}
                    } @else {
                        polyline class=(s.class) points=(run.iter().map(|i| point(*i, s.values[*i])).collect::<Vec<_>>().join(" ")) {}
                    }
                }
            }
            @for (i, label) in labels.iter().enumerate() {
                rect.hover x=(fmt(i as f64 * slot)) width=(fmt(slot)) y="0" height=(fmt(HEIGHT)) {
                    title { (label) @for (s, present) in series { @if present.get(i) == Some(&true) { ", " (s.name) " " (figure(s.values[i])) " " (unit) } } }
                }
            }
        }))
    }
}

/// Runs of consecutive minutes that have a value.
fn runs(present: &[bool]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    for (i, here) in present.iter().enumerate() {
        if *here {
            current.push(i);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn frame(title: &str, top: f64, unit: &str, series: &[Series<'_>], marks: Markup) -> Markup {
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT + 16.0) } role="img" aria-label=(title) {
                line.axis x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
                line.grid x1="0" y1="0.5" x2=(WIDTH) y2="0.5" {}
                (marks)
                text.tick x="2" y="10" { (figure(top)) " " (unit) }
                text.tick x="2" y=(HEIGHT + 13.0) { "60 min ago" }
                text.tick.end x=(WIDTH - 2.0) y=(HEIGHT + 13.0) { "now" }
            }
            ul.legend { @for s in series { li class=(s.class) { (s.name) } } }
        }
    }
}

/// A round top for the axis at or above `max` (1, 2 or 5 times a power of ten).
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

fn figure(v: f64) -> String {
    if v.is_infinite() {
        "over 30000".to_owned()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_round_and_bars_stack_within_it() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(130.0), 200.0);
        assert_eq!(nice_top(0.3), 0.5);
        let labels = vec!["12:00".to_owned(), "12:01".to_owned()];
        let ok = [3.0, 0.0];
        let failed = [1.0, 2.0];
        let series = [
            Series {
                class: "ok",
                name: "succeeded",
                values: &ok,
            },
            Series {
                class: "failed",
                name: "failed",
                values: &failed,
            },
        ];
        let svg = stacked("Attempts", &labels, &series, "per minute").into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "no bar for a zero: {svg}");
        assert!(
            svg.contains("12:00, succeeded 3 per minute, failed 1 per minute"),
            "{svg}"
        );
        // 3 of a top of 5 over 120 px is 72 px tall; the failed 1 sits on top of it.
        assert!(
            svg.contains(r#"y="48.0" height="72.0""#) && svg.contains(r#"y="24.0" height="24.0""#),
            "{svg}"
        );
    }

    #[test]
    fn lines_break_where_minutes_have_no_value() {
        assert_eq!(runs(&[true, true, false, true]), [vec![0, 1], vec![3]]);
        assert!(runs(&[false, false]).is_empty());
        let labels: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
        let values = [10.0, 15.0, 0.0, 20.0];
        let series = [(
            Series {
                class: "p50",
                name: "p50",
                values: &values,
            },
            vec![true, true, false, true],
        )];
        let svg = lines("Latency", &labels, &series, "ms").into_string();
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "a minute alone is a dot: {svg}");
        assert!(
            svg.contains("m2</title>"),
            "a minute without attempts names no figure: {svg}"
        );
    }
}
