//! `eddy check [--handlers DIR]`: load every handler, report errors as `file:line:col: message`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{ConfigArgs, Failure};
use crate::runtime::{Runtime, handler_id};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Handlers folder [default: `handlers` in eddy.toml, else ./handlers]
    #[arg(long, value_name = "DIR")]
    handlers: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn check(args: CheckArgs) -> Result<(), Failure> {
    let (config, config_path) = args.config.load()?;
    let root = args.handlers.unwrap_or(config.handlers.clone());
    let files = handler_files(&root)?;
    // Loading needs no durable state; a temporary store keeps `check` usable next to a running server.
    let runtime = Runtime::new(
        &config,
        &config_path,
        &root,
        Store::temporary().map_err(anyhow::Error::from)?,
    )
    .map_err(anyhow::Error::from)?;
    let mut failed = 0;
    for file in &files {
        let id = handler_id(&root, file).unwrap_or_default();
        if let Err(e) = runtime.load(&id, file).await {
            failed += 1;
            match e.location {
                Some(_) => println!("{}", e.render()),
                None => println!("{}: {}", file.display(), e.message),
            }
        }
    }
    let ok = files.len() - failed;
    eprintln!("{ok} handler(s) loaded, {failed} with errors");
    if failed == 0 { Ok(()) } else { Err(Failure::Handler) }
}

/// Every handler file under `root`: `.js` files, skipping helpers (names starting with `_`).
pub fn handler_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read handlers folder {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let helper = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('_') || n.starts_with('.'));
            if helper {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
