//! `eddy send`, `eddy events list|show`, `eddy deliveries list|show`.

use anyhow::Context;
use serde_json::{Value, json};

use super::Failure;
use super::client::{Client, ServerArgs, print_table};

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Event type, like accounts.patch.
    #[arg(value_name = "TYPE")]
    kind: String,
    /// The event's data: inline JSON, @file, or - for standard input [default: null]
    data: Option<String>,
    /// Event id (a repeated id is accepted once).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// The order and time window of a listing.
#[derive(Debug, clap::Args)]
pub struct WindowArgs {
    /// newest (the default) or oldest first.
    #[arg(long, value_parser = ["newest", "oldest"])]
    order: Option<String>,
    /// From this RFC 3339 time, or this long ago (6h).
    #[arg(long)]
    since: Option<String>,
    /// Before this RFC 3339 time, or this long ago (30m).
    #[arg(long)]
    until: Option<String>,
}

impl WindowArgs {
    fn query(self) -> [(&'static str, Option<String>); 3] {
        [("order", self.order), ("since", self.since), ("until", self.until)]
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        /// A type, or a pattern of types like crm.* or github.**.
        #[arg(long = "type")]
        kind: Option<String>,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        cursor: Option<String>,
        /// Only events that matched no handler.
        #[arg(long)]
        unrouted: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one event with its deliveries.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete an event with every delivery, attempt, captured log and history version.
    /// Run `eddy compact` (server stopped) to remove the bytes from disk too.
    Delete {
        /// The event; without it, --where/--type choose the events.
        id: Option<String>,
        #[command(flatten)]
        bulk: BulkArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove fields (or the whole payload) from an event, its history and every captured log.
    Redact {
        /// The event; without it, --where/--type choose the events.
        id: Option<String>,
        #[command(flatten)]
        bulk: BulkArgs,
        /// Comma-separated paths under data, like data.email,data.phone.
        #[arg(long, value_delimiter = ',', required_unless_present = "all", conflicts_with = "all")]
        fields: Vec<String>,
        /// The whole payload (type, id and time stay).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Edit an event's data: `--set data.path=value` (repeatable), or in $EDITOR. The previous
    /// data is kept in the event's history.
    Edit {
        id: String,
        /// `data.a.b=value` (or `a.b=value`); the value is JSON if it parses, else a string.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// How bulk delete and redact choose events.
#[derive(Debug, clap::Args)]
pub struct BulkArgs {
    /// `data.path=value` (repeatable): events whose data has these values; the value is JSON
    /// if it parses, else a string.
    #[arg(long = "where", value_name = "PATH=VALUE")]
    matches: Vec<String>,
    /// Only events of this type.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Show how many events would change, and the first ids; change nothing.
    #[arg(long)]
    dry_run: bool,
}

impl BulkArgs {
    fn body(&self) -> anyhow::Result<Value> {
        let mut matches = serde_json::Map::new();
        for m in &self.matches {
            let (path, raw) = m
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--where {m:?}: expected PATH=VALUE"))?;
            let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
            matches.insert(path.to_owned(), value);
        }
        Ok(json!({ "where": matches, "type": self.kind, "dry_run": self.dry_run }))
    }
}

/// Prints the answer of a bulk operation.
fn print_bulk(answer: &Value, verb: &str, json_output: bool) {
    if json_output {
        say!("{answer}");
        return;
    }
    let would = if answer["dry_run"] == true { "would be " } else { "" };
    say!("{} events {would}{verb}", answer["count"]);
    for id in answer["first"].as_array().into_iter().flatten() {
        say!("  {}", id.as_str().unwrap_or_default());
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// pending, blocked, running, succeeded or dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        handler: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        /// Only deliveries whose last error contains this text.
        #[arg(long)]
        error: Option<String>,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one delivery with every attempt.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Let the key a dead delivery holds move on: the delivery stays dead, and the next
    /// delivery with its order key runs.
    Skip {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn send(args: SendArgs) -> Result<(), Failure> {
    let data = match args.data.as_deref() {
        None => Value::Null,
        Some(text) => serde_json::from_str(&super::run::read_input(text)?).context("the data is not valid JSON")?,
    };
    let mut event = json!({ "type": args.kind, "data": data });
    if let Some(id) = args.id {
        event["id"] = Value::String(id);
    }
    let answer = Client::new(&args.server)?.post("/events", &event).await?;
    if args.server.json {
        say!("{answer}");
    } else {
        let duplicates = answer["duplicates"].as_array().cloned().unwrap_or_default();
        for id in answer["ids"].as_array().into_iter().flatten() {
            match duplicates.contains(id) {
                true => say!(
                    "{} (a duplicate: accepted before, not stored again)",
                    id.as_str().unwrap_or_default()
                ),
                false => say!("{}", id.as_str().unwrap_or_default()),
            }
        }
    }
    Ok(())
}

pub async fn events(command: EventsCommand) -> Result<(), Failure> {
    match command {
        EventsCommand::List {
            kind,
            window,
            limit,
            cursor,
            unrouted,
            server,
        } => {
            let query = [
                ("type", kind),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
                ("unrouted", unrouted.then(|| "true".to_owned())),
            ];
            let query: Vec<_> = query.into_iter().chain(window.query()).collect();
            let row = |e: &Value| {
                let deliveries = e["deliveries"].as_array().map_or(0, Vec::len);
                let event = &e["event"];
                vec![
                    text(&event["id"]),
                    text(&event["type"]),
                    text(&event["time"]),
                    deliveries.to_string(),
                ]
            };
            let headers = ["ID", "TYPE", "TIME", "DELIVERIES"];
            list(&server, "/events", &query, ("events", &headers), row).await?;
        }
        EventsCommand::Edit { id, sets, server } => {
            let client = Client::new(&server)?;
            let patch = if sets.is_empty() {
                let current = client.get(&format!("/events/{id}"), &[]).await?;
                super::edit::patch_in_editor(&current["event"]["event"]["data"])?
            } else {
                super::edit::patch_from_sets(&sets)?
            };
            let answer = client.patch(&format!("/events/{id}"), &patch).await?;
            if server.json {
                say!("{answer}");
            } else {
                match answer["changed"].as_bool() {
                    Some(false) => say!(
                        "{id} is unchanged: the edit changed nothing (still version {})",
                        answer["event"]["version"]
                    ),
                    _ => say!("{id} is now version {}", answer["event"]["version"]),
                }
            }
        }
        EventsCommand::Redact {
            id,
            bulk,
            fields,
            all,
            server,
        } => {
            let client = Client::new(&server)?;
            let Some(id) = id else {
                let mut body = bulk.body()?;
                body["fields"] = json!(fields);
                body["payload"] = json!(all);
                let answer = client.post("/events-bulk/redact", &body).await?;
                print_bulk(&answer, "redacted", server.json);
                return Ok(());
            };
            let body = json!({ "fields": fields, "payload": all });
            let answer = client.post(&format!("/events/{id}/redact"), &body).await?;
            if server.json {
                say!("{answer}");
            } else {
                say!("{id} redacted");
            }
        }
        EventsCommand::Delete { id, bulk, server } => {
            let client = Client::new(&server)?;
            let Some(id) = id else {
                let answer = client.post("/events-bulk/delete", &bulk.body()?).await?;
                print_bulk(&answer, "deleted", server.json);
                return Ok(());
            };
            let answer = client.delete(&format!("/events/{id}")).await?;
            if server.json {
                say!("{answer}");
            } else {
                say!("{id} deleted");
            }
        }
        EventsCommand::Show { id, server } => {
            let answer = Client::new(&server)?.get(&format!("/events/{id}"), &[]).await?;
            match server.json {
                true => say!("{}", serde_json::to_string_pretty(&answer).context("print")?),
                false => say!("{}", super::show::event(&answer).trim_end()),
            }
        }
    }
    Ok(())
}

pub async fn deliveries(command: DeliveriesCommand) -> Result<(), Failure> {
    match command {
        DeliveriesCommand::List {
            status,
            handler,
            kind,
            error,
            window,
            limit,
            cursor,
            server,
        } => {
            let query = [
                ("status", status),
                ("handler", handler),
                ("type", kind),
                ("error", error),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ];
            let query: Vec<_> = query.into_iter().chain(window.query()).collect();
            let row = |d: &Value| {
                let fields = ["id", "handler", "event_type", "status", "attempts", "last_error"];
                fields.iter().map(|f| text(&d[*f])).collect()
            };
            let headers = ["ID", "HANDLER", "TYPE", "STATUS", "ATTEMPTS", "LAST ERROR"];
            list(&server, "/deliveries", &query, ("deliveries", &headers), row).await?;
        }
        DeliveriesCommand::Show { id, server } => {
            let answer = Client::new(&server)?.get(&format!("/deliveries/{id}"), &[]).await?;
            match server.json {
                true => say!("{}", serde_json::to_string_pretty(&answer).context("print")?),
                false => say!("{}", super::show::delivery(&answer).trim_end()),
            }
        }
        DeliveriesCommand::Skip { id, server } => {
            let answer = Client::new(&server)?
                .post(&format!("/deliveries/{id}/skip"), &json!({}))
                .await?;
            match server.json {
                true => say!("{answer}"),
                false => say!("{id} skipped: the next delivery of its key runs"),
            }
        }
    }
    Ok(())
}

/// GETs a listing and prints it: JSON with `--json`, else a table of `columns.0` rows with
/// `columns.1` headers, and the cursor of the next page.
async fn list(
    server: &ServerArgs,
    path: &str,
    query: &[(&str, Option<String>)],
    columns: (&str, &[&str]),
    row: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    let answer = Client::new(server)?.get(path, query).await?;
    if server.json {
        say!("{answer}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = answer[columns.0].as_array().into_iter().flatten().map(row).collect();
    print_table(columns.1, &rows);
    if let Some(next) = answer["next_cursor"].as_str() {
        eprintln!("more: --cursor {next}");
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
