//! `eddy replay`: replay deliveries by id or by filter, or backfill a handler, following
//! bulk jobs with a progress bar (Ctrl-C cancels the job).

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::{Value, json};

use super::Failure;
use super::client::{Client, ServerArgs, print_table};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Delivery ids to replay; without ids, the filter below picks the deliveries.
    ids: Vec<String>,
    /// dead (default) or succeeded.
    #[arg(long)]
    status: Option<String>,
    /// Deliveries to this handler (with --backfill: the handler to run).
    #[arg(long)]
    handler: Option<String>,
    /// Event type.
    #[arg(long = "type")]
    kind: Option<String>,
    /// RFC 3339 time or a duration ago, like 6h.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    /// The last error contains this text.
    #[arg(long)]
    error: Option<String>,
    /// Show what would be replayed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Deliveries per second, so live traffic keeps flowing.
    #[arg(long)]
    rate: Option<f64>,
    /// Run stored events of --type through --handler, which did not exist when they arrived.
    #[arg(long)]
    backfill: bool,
    /// Forget the results the deliveries' steps recorded: every `ctx.step` runs again.
    #[arg(long, conflicts_with = "backfill")]
    fresh: bool,
    /// Replay without asking, however many match (from a terminal, more than
    /// `[replay] confirm_above` need it).
    #[arg(long, short = 'y')]
    yes: bool,
    /// After the job, wait for the deliveries it queued to finish and say how they fared.
    #[arg(long)]
    outcomes: bool,
    /// Config file, for `[replay] confirm_above` [default: ./eddy.toml, optional]
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    if !args.ids.is_empty() {
        for id in &args.ids {
            let fresh = if args.fresh { "?fresh=true" } else { "" };
            let answer = client
                .post(&format!("/deliveries/{id}/replay{fresh}"), &json!({}))
                .await?;
            say!("{id} {}", answer["status"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let request = json!({
        "status": args.status, "handler": args.handler, "type": args.kind, "since": args.since,
        "until": args.until, "error": args.error, "dry_run": args.dry_run, "rate": args.rate,
        "backfill": args.backfill, "fresh": args.fresh,
    });
    if !args.dry_run && !args.yes && std::io::stdin().is_terminal() {
        confirm(&client, &request, args.config.as_deref()).await?;
    }
    let answer = client.post("/replays", &request).await?;
    if args.server.json && args.dry_run {
        say!("{answer}");
    } else if args.dry_run {
        print_dry_run(&answer);
    } else {
        let id = follow(&client, &answer, args.server.json).await?;
        if args.outcomes {
            outcomes(&client, &id, args.server.json).await?;
        }
    }
    Ok(())
}

/// From a terminal, refuses a replay of more than `[replay] confirm_above` items: a filter
/// that takes more than meant is seen before anything is queued.
async fn confirm(client: &Client, request: &Value, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let path = config.unwrap_or(std::path::Path::new("eddy.toml"));
    let limit = crate::config::Config::load(path, config.is_some())?
        .replay
        .confirm_above;
    let mut dry_run = request.clone();
    dry_run["dry_run"] = json!(true);
    let preview = client.post("/replays", &dry_run).await?;
    let count = preview["count"].as_u64().unwrap_or(0);
    if count > limit as u64 {
        let what = if preview["kind"] == "backfill" {
            "events"
        } else {
            "deliveries"
        };
        anyhow::bail!(
            "{count} {what} match, more than [replay] confirm_above ({limit}): nothing was queued. \
             Run it again with --yes to go ahead, or with --dry-run to see them first"
        );
    }
    Ok(())
}

/// Waits until none of the deliveries job `id` queued is pending or running (Ctrl-C stops
/// waiting), then says how they fared.
async fn outcomes(client: &Client, id: &str, json_output: bool) -> anyhow::Result<()> {
    let path = format!("/replays/{id}");
    let query = [("outcomes", Some("true".to_owned()))];
    let last = loop {
        let answer = client.get(&path, &query).await?;
        if answer["outcomes"]["waiting"] == 0 {
            break answer;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => break client.get(&path, &query).await?,
        }
    };
    let o = &last["outcomes"];
    match json_output {
        true => say!("{o}"),
        false => say!(
            "{} succeeded, {} failed again, {} still waiting{}",
            o["succeeded"],
            o["failed_again"],
            o["waiting"],
            if o["gone"] == 0 {
                String::new()
            } else {
                format!(", {} deleted", o["gone"])
            }
        ),
    }
    Ok(())
}

fn print_dry_run(answer: &Value) {
    let backfill = answer["kind"] == "backfill";
    let what = if backfill {
        "events would be backfilled"
    } else {
        "deliveries would be replayed"
    };
    say!("{} {what}", answer["count"]);
    let rows: Vec<Vec<String>> = answer["first"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| match row {
            Value::String(event) => vec![event.clone()],
            d => ["id", "handler", "event_type", "last_error"]
                .iter()
                .map(|f| d[*f].as_str().unwrap_or("").to_owned())
                .collect(),
        })
        .collect();
    if !rows.is_empty() {
        let headers: &[&str] = if backfill {
            &["EVENT"]
        } else {
            &["ID", "HANDLER", "TYPE", "LAST ERROR"]
        };
        print_table(headers, &rows);
    }
}

/// Polls the job until it ends, drawing progress on standard error when it is a terminal
/// and the job has something to do; Ctrl-C cancels it. Returns the job's id.
async fn follow(client: &Client, job: &Value, json_output: bool) -> anyhow::Result<String> {
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/replays/{id}");
    let mut cancelled = false;
    let mut bar = Progress::new(!json_output && std::io::stderr().is_terminal());
    let last = loop {
        let status = client.get(&path, &[]).await?;
        bar.show(&status);
        if status["state"] != "running" {
            break status;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c(), if !cancelled => {
                client.delete(&path).await?;
                cancelled = true;
            }
        }
    };
    bar.finish();
    if json_output {
        say!("{last}");
    } else {
        say!(
            "{} {}: {} queued, {} skipped of {}",
            last["kind"].as_str().unwrap_or("replay"),
            last["state"].as_str().unwrap_or_default(),
            last["queued"],
            last["skipped"],
            last["total"]
        );
    }
    Ok(id)
}

/// A job's progress bar: drawn only where someone watches, and only once there is work.
struct Progress {
    on: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(on: bool) -> Self {
        Self { on, bar: None }
    }

    fn show(&mut self, status: &Value) {
        let total = status["total"].as_u64().unwrap_or(0);
        if !self.on || total == 0 {
            return;
        }
        let done = status["queued"].as_u64().unwrap_or(0) + status["skipped"].as_u64().unwrap_or(0);
        let bar = self.bar.get_or_insert_with(|| {
            let style = indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("#>-");
            indicatif::ProgressBar::new(total).with_style(style)
        });
        bar.set_length(total);
        bar.set_position(done);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_made_only_for_a_watched_job_with_work() {
        let work = json!({"total": 5, "queued": 2, "skipped": 1});
        let mut watched = Progress::new(true);
        watched.show(&json!({"total": 0, "queued": 0, "skipped": 0}));
        assert!(watched.bar.is_none(), "an empty job draws nothing");
        watched.show(&work);
        let bar = watched.bar.as_ref().expect("a bar once there is work");
        assert_eq!((bar.position(), bar.length()), (3, Some(5)));
        let mut unwatched = Progress::new(false);
        unwatched.show(&work);
        assert!(unwatched.bar.is_none(), "nothing for --json or a pipe");
        watched.finish();
    }
}
