//! `eddy check [--handlers DIR]`: what `eddy serve` would refuse, without serving: the
//! config as `serve` reads it (listen address and token, handlers folder), and every handler
//! loaded and its exports checked, errors reported as `file:line:col: message`.

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
    let (mut config, path) = args.config.load()?;
    super::serve::token_from_env(&mut config);
    let root = args.handlers.unwrap_or(config.handlers.clone());
    config.handlers = root.clone();
    let refused = crate::server::check(&config).err();
    if let Some(e) = &refused {
        say!("{}: {e}", path.display());
    }
    let (files, skipped) = crate::router::discover_with_skipped(&root).map_err(anyhow::Error::from)?;
    for file in &skipped {
        say!("{}: {}", file.display(), crate::router::not_loaded_reason(file));
    }
    // Loading needs no durable state; a temporary store keeps `check` usable next to a running server.
    let store = Store::temporary().map_err(anyhow::Error::from)?;
    let runtime = Runtime::new(&config, &root, std::sync::Arc::new(store)).map_err(anyhow::Error::from)?;
    let mut failed = 0;
    for file in &files {
        let error = match runtime.prepare(&file.id, &file.path).await {
            Err(e) if e.location.is_some() => Some(e.render()),
            Err(e) => Some(format!("{}: {}", file.path.display(), e.message)),
            Ok(pool) => crate::services::check_exports(&pool.info)
                .err()
                .map(|e| format!("{}: {e}", file.path.display())),
        };
        if let Some(error) = error {
            failed += 1;
            say!("{error}");
        }
    }
    let ok = files.len() - failed;
    let not_loaded = match skipped.len() {
        0 => String::new(),
        n => format!(", {n} file(s) not loaded"),
    };
    eprintln!("{ok} handler(s) loaded, {failed} with errors{not_loaded}");
    if failed == 0 && skipped.is_empty() && refused.is_none() {
        Ok(())
    } else {
        Err(Failure::Handler)
    }
}
