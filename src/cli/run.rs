//! `eddy run <handler.js> --event <json|@file|->`: one event through one handler.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};

use super::{ConfigArgs, Failure, output};
use crate::event::{Event, new_id};
use crate::router::handler_id;
use crate::runtime::{InvocationRequest, Runtime};
use crate::store::{OpenOnUse, Store};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The handler file.
    handler: PathBuf,
    /// The event: inline JSON, @file, or - for standard input.
    #[arg(long, value_name = "JSON|@FILE|-")]
    event: String,
    #[command(flatten)]
    config: ConfigArgs,
    /// Data folder for handler state [default: `data` in eddy.toml, else ./.eddy]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RunArgs) -> Result<(), Failure> {
    let (config, _) = args.config.load()?;
    let event = read_event(&args.event)?;
    let file = args
        .handler
        .canonicalize()
        .with_context(|| format!("cannot read handler {}", args.handler.display()))?;
    let root = handlers_root(&config.handlers, &file)?;
    let id = handler_id(&root, &file).ok_or_else(|| anyhow!("{} is not a .js file", args.handler.display()))?;
    let data = args.data.unwrap_or(config.data.clone());
    // Opened by the handler's first state call, if it makes one.
    let store = OpenOnUse::new(data.clone(), config.store.cache_bytes());
    let runtime = Arc::new(
        Runtime::new(&config, &shown_root(&root, &args.handler), Arc::new(store.clone()))
            .map_err(anyhow::Error::from)?,
    );
    runtime.load_once();
    let handler = match runtime.prepare(&id, &file).await {
        Ok(handler) => handler,
        Err(e) => return Err(Failure::Usage(anyhow!("{}", e.render()))),
    };
    let request = InvocationRequest {
        delivery_id: new_id(),
        attempt: 1,
        idempotency_key: crate::runtime::idempotency_key(&event.id, &id, 1),
        event_version: 1,
        recalled_steps: Default::default(),
        event,
    };
    let report = runtime.run(&handler, request).await;
    let opened = store.opened().cloned();
    // Nothing is written after the run here, so its state writes are flushed now.
    if let Some(opened) = &opened
        && report.capture.state_writes > 0
    {
        opened
            .commit()
            .await
            .map_err(|e| anyhow!("the handler's state could not be written to disk: {e}"))?;
    }
    let was_opened = opened.is_some();
    drop((handler, runtime, store, opened));
    if was_opened {
        // Not sealing only costs the next open a copy of the files, so a failure is not reported.
        let _ = Store::seal(&data, std::time::Duration::from_secs(1)).await;
    }
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        output::print_report(&report);
    }
    if report.outcome.is_success() {
        Ok(())
    } else {
        Err(Failure::Handler)
    }
}

fn read_event(arg: &str) -> anyhow::Result<Event> {
    Ok(Event::from_json(&read_input(arg)?, "eddy/cli")?)
}

/// Inline text, `@file`, or `-` for standard input.
pub fn read_input(arg: &str) -> anyhow::Result<String> {
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read file {path}"))?
    } else {
        arg.to_owned()
    };
    Ok(text)
}

/// The handlers folder if the file is inside it, else the file's own folder.
fn handlers_root(configured: &Path, file: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(root) = configured.canonicalize()
        && file.starts_with(&root)
    {
        return Ok(root);
    }
    file.parent()
        .map(Path::to_owned)
        .ok_or_else(|| anyhow!("{} has no parent folder", file.display()))
}

/// The root as the user would write it, for readable stack traces: the handler argument's
/// folder when it is the root, else the canonical path.
fn shown_root(root: &Path, handler_arg: &Path) -> PathBuf {
    match handler_arg.parent() {
        Some(parent) if parent.canonicalize().is_ok_and(|p| p == root) && !parent.as_os_str().is_empty() => {
            parent.to_owned()
        }
        _ => root.to_owned(),
    }
}
