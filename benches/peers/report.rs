//! The peers benchmark's output: one Markdown table, a row per server, each cell the median
//! and range of its runs, followed by what each run needs said about it.

use crate::support::format_spread;

/// One server's runs, each with its figures or why it has none.
pub struct Row {
    pub label: &'static str,
    pub runs: Vec<Result<Figures, String>>,
}

/// What one run measured for one server.
pub struct Figures {
    /// 2xx answers to `POST /events` per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Handler runs that reached the fake API, per second, over the same window.
    pub runs_rate: f64,
    /// The server's CPU time over the measured window divided by the handler runs in it,
    /// microseconds: the machine's cost of one run, whatever the server does around it.
    pub cpu_us_per_run: Option<f64>,
    /// Resident memory, peak over the server's life and at the end of the load, MiB.
    pub rss_mib: Option<(f64, f64)>,
    /// Facts the table cannot show (errors, backlog, retries).
    pub notes: Vec<String>,
}

/// Prints the table; the ratio columns divide the first row's figures by each other row's,
/// run by run, and give the median and range of those ratios.
pub fn print(rows: &[Row]) {
    println!("Each cell: median (lowest–highest) over the runs.\n");
    println!(
        "| run | ingest req/s | p50 ms | p99 ms | handler runs/s | CPU µs/run | RSS peak MiB | RSS end MiB | \
         {0} ÷ run, req/s | {0} ÷ run, runs/s |",
        rows[0].label
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (i, row) in rows.iter().enumerate() {
        let ok: Vec<&Figures> = row.runs.iter().filter_map(|r| r.as_ref().ok()).collect();
        if ok.is_empty() {
            println!("| {} | skipped | | | | | | | | |", row.label);
            continue;
        }
        let ratios = match i {
            // The base row has no ratios: two empty cells.
            0 => " | ".to_owned(),
            _ => ratio_cells(&rows[0], row),
        };
        println!("| {} | {} | {ratios} |", row.label, cells(&ok));
    }
    println!();
    for row in rows {
        for (run, figures) in row.runs.iter().enumerate() {
            let run = run + 1;
            match figures {
                Ok(f) => f.notes.iter().for_each(|n| println!("- {}, run {run}: {n}", row.label)),
                Err(why) => println!("- {}, run {run}: skipped: {why}", row.label),
            }
        }
    }
}

/// The figures' cells, each over the runs that have figures.
fn cells(runs: &[&Figures]) -> String {
    let of = |figure: fn(&Figures) -> f64, decimals| {
        let values: Vec<f64> = runs.iter().map(|f| figure(f)).collect();
        format_spread(&values, decimals)
    };
    let cpu: Vec<f64> = runs.iter().filter_map(|f| f.cpu_us_per_run).collect();
    let rss = |peak: bool| {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|f| f.rss_mib.map(|(p, e)| if peak { p } else { e }))
            .collect();
        format_spread(&values, 0)
    };
    format!(
        "{} | {} | {} | {} | {} | {} | {}",
        of(|f| f.rate, 0),
        of(|f| f.p50_ms, 2),
        of(|f| f.p99_ms, 2),
        of(|f| f.runs_rate, 0),
        format_spread(&cpu, 0),
        rss(true),
        rss(false)
    )
}

/// The base row divided by `row` within each run both have figures for, then over the runs.
fn ratio_cells(base: &Row, row: &Row) -> String {
    let pairs: Vec<(&Figures, &Figures)> = base
        .runs
        .iter()
        .zip(&row.runs)
        .filter_map(|(b, r)| Some((b.as_ref().ok()?, r.as_ref().ok()?)))
        .collect();
    let ratio = |figure: fn(&Figures) -> f64| {
        let values: Vec<f64> = pairs
            .iter()
            .filter(|(_, r)| figure(r) > 0.0)
            .map(|(b, r)| figure(b) / figure(r))
            .collect();
        format_spread(&values, 2)
    };
    format!("{} | {}", ratio(|f| f.rate), ratio(|f| f.runs_rate))
}
