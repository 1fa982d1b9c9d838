//! `eddy check [--handlers DIR]`: load every handler, report errors as `file:line:col: message`.

use std::path::PathBuf;

use super::{ConfigArgs, Failure};
use crate::runtime::Runtime;
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
    let (config, _) = args.config.load()?;
    let root = args.handlers.unwrap_or(config.handlers.clone());
    let files = crate::router::discover(&root).map_err(anyhow::Error::from)?;
    // Loading needs no durable state; a temporary store keeps `check` usable next to a running server.
    let store = Store::temporary().map_err(anyhow::Error::from)?;
    let runtime = Runtime::new(&config, &root, std::sync::Arc::new(store)).map_err(anyhow::Error::from)?;
    let mut failed = 0;
    for file in &files {
        if let Err(e) = runtime.prepare(&file.id, &file.path).await {
            failed += 1;
            match e.location {
                Some(_) => say!("{}", e.render()),
                None => say!("{}: {}", file.path.display(), e.message),
            }
        }
    }
    let ok = files.len() - failed;
    eprintln!("{ok} handler(s) loaded, {failed} with errors");
    if failed == 0 { Ok(()) } else { Err(Failure::Handler) }
}
