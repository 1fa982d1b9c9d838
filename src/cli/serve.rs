//! `eddy serve`: run the pipeline until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::sync::watch;

use super::{ConfigArgs, Failure};
use crate::server;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Handlers folder [default: `handlers` in eddy.toml, else ./handlers]
    #[arg(long, value_name = "DIR")]
    handlers: Option<PathBuf>,
    /// Data folder [default: `data` in eddy.toml, else ./.eddy]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Address to listen on [default: `listen` in eddy.toml, else 127.0.0.1:8787]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let (mut config, config_path) = args.config.load()?;
    config.handlers = args.handlers.unwrap_or(config.handlers);
    config.data = args.data.unwrap_or(config.data);
    config.listen = args.listen.unwrap_or(config.listen);
    let store = Store::open(&config.data).map_err(anyhow::Error::from)?;
    let app = server::app(&config, &config_path, store).map_err(anyhow::Error::from)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().map_err(anyhow::Error::from)?;
    eprintln!(
        "eddy: listening on http://{addr} (handlers {}, data {})",
        config.handlers.display(),
        config.data.display()
    );
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("eddy: stopping: no new events; waiting for attempts in flight");
        let _ = stop.send(true);
    });
    server::run(app, listener, stopped).await.map_err(anyhow::Error::from)?;
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
