//! The peers benchmark's output: one Markdown table, a row per server, figures from one run,
//! followed by what each row needs said about it.

/// One server's figures, or why it has none.
pub struct Row {
    pub label: &'static str,
    pub figures: Result<Figures, String>,
}

/// What was measured for one server.
pub struct Figures {
    /// 2xx answers to `POST /events` per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Handler runs that reached the fake API, per second, over the same window.
    pub runs_rate: f64,
    /// Resident memory, peak over the server's life and at the end of the load, MiB.
    pub rss_mib: Option<(f64, f64)>,
    /// Facts the table cannot show (errors, backlog, retries).
    pub notes: Vec<String>,
}

/// Prints the table; the ratio columns divide the first row's figures by each other row's.
pub fn print(rows: &[Row]) {
    println!(
        "| run | ingest req/s | p50 ms | p99 ms | handler runs/s | RSS peak MiB | RSS end MiB | \
         {0} ÷ run, req/s | {0} ÷ run, runs/s |",
        rows[0].label
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let base = rows[0].figures.as_ref().ok();
    for (i, row) in rows.iter().enumerate() {
        match &row.figures {
            Ok(f) => println!("| {} | {} |", row.label, cells(f, base.filter(|_| i > 0))),
            Err(_) => println!("| {} | skipped | | | | | | | |", row.label),
        }
    }
    println!();
    for row in rows {
        match &row.figures {
            Ok(f) => f.notes.iter().for_each(|n| println!("- {}: {n}", row.label)),
            Err(why) => println!("- {}: skipped: {why}", row.label),
        }
    }
}

fn cells(f: &Figures, base: Option<&Figures>) -> String {
    let (peak, end) = match f.rss_mib {
        Some((peak, end)) => (format!("{peak:.0}"), format!("{end:.0}")),
        None => ("?".into(), "?".into()),
    };
    let ratio = |of: f64, to: f64| match (base, to > 0.0) {
        (Some(_), true) => format!("{:.2}", of / to),
        _ => "".into(),
    };
    let (rate_ratio, runs_ratio) = match base {
        Some(b) => (ratio(b.rate, f.rate), ratio(b.runs_rate, f.runs_rate)),
        None => (String::new(), String::new()),
    };
    format!(
        "{:.0} | {:.2} | {:.2} | {:.0} | {peak} | {end} | {rate_ratio} | {runs_ratio}",
        f.rate, f.p50_ms, f.p99_ms, f.runs_rate
    )
}
