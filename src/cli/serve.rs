//! `eddy serve` and `eddy proxy`: run the pipeline (and the proxy, when configured) until
//! SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use super::dev::{ColorChoice, Paint};
use super::{ConfigArgs, Failure};
use crate::config::{Config, Upstream};
use crate::server::{self, Listeners, Stopped};
use crate::services::Services;

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

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Base URL of the API to observe, e.g. http://127.0.0.1:3000 [default: `upstream` in [proxy]]
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Address the proxy listens on [default: `listen` in [proxy], else 127.0.0.1:8788]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of eddy's own API [default: `listen` in eddy.toml, else 127.0.0.1:8787]
    #[arg(long, value_name = "ADDR")]
    api_listen: Option<SocketAddr>,
    /// Handlers folder [default: `handlers` in eddy.toml, else ./handlers]
    #[arg(long, value_name = "DIR")]
    handlers: Option<PathBuf>,
    /// Data folder [default: `data` in eddy.toml, else ./.eddy]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl ServeArgs {
    fn config(self) -> anyhow::Result<(Config, PathBuf)> {
        let (mut config, config_path) = self.config.load()?;
        config.handlers = self.handlers.unwrap_or(config.handlers);
        config.data = self.data.unwrap_or(config.data);
        config.listen = self.listen.unwrap_or(config.listen);
        token_from_env(&mut config);
        Ok((config, config_path))
    }
}

/// `EDDY_API_TOKEN` overrides the file's `api_token`; an empty value counts as unset.
pub(super) fn token_from_env(config: &mut Config) {
    if let Some(token) = std::env::var("EDDY_API_TOKEN").ok().filter(|t| !t.is_empty()) {
        config.api_token = Some(token);
    }
}

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let (config, _) = args.config()?;
    run(config, None).await
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Colour the attempt log
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

/// `eddy dev`: `serve`, printing each attempt as it finishes.
pub async fn dev(args: DevArgs) -> Result<(), Failure> {
    let explicit = args.serve.config.config.is_some();
    let (config, path) = args.serve.config()?;
    super::dev::watch_config(path, explicit);
    run(config, Some(Paint::new(args.color))).await
}

/// `eddy proxy`: `serve` with the proxy on, its upstream and address from the flags.
pub async fn proxy(args: ProxyArgs) -> Result<(), Failure> {
    let serve = ServeArgs {
        config: args.config,
        handlers: args.handlers,
        data: args.data,
        listen: args.api_listen,
    };
    let (mut config, config_path) = serve.config()?;
    let mut proxy = config.proxy.take().unwrap_or_default();
    if let Some(text) = args.upstream {
        let upstream = Upstream::parse(&text).map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
        proxy.upstream = Some(upstream);
    }
    proxy.listen = args.listen.unwrap_or(proxy.listen);
    if proxy.upstream.is_none() {
        return Err(anyhow::anyhow!("eddy proxy needs --upstream URL (or upstream in [proxy] of eddy.toml)").into());
    }
    config.proxy = Some(proxy);
    // The flags bypass the file's validation; run it on the result.
    config.revalidate(&config_path).map_err(anyhow::Error::from)?;
    run(config, None).await
}

async fn run(config: Config, dev_log: Option<Paint>) -> Result<(), Failure> {
    // Before anything is bound or opened: a refused start leaves nothing to check at the
    // next one, and fails on what is wrong rather than on a busy port.
    server::check(&config).map_err(anyhow::Error::from)?;
    let listeners = bind(&config).await?;
    let on_start = dev_log.map(|paint| -> server::OnStart {
        Box::new(move |services: &Arc<Services>| {
            tracing::info!("dev mode: handler files reload as you save them; each attempt is printed below");
            super::dev::spawn_log(services.clone(), paint);
        })
    });
    let setup = server::Setup { config, on_start };
    let shutdown = async {
        wait_for_signal().await;
        tracing::info!("stopping: no new events; waiting for attempts in flight");
    };
    match server::run(setup, listeners, shutdown)
        .await
        .map_err(anyhow::Error::from)?
    {
        Stopped::Sealed => {}
        Stopped::StillInUse => {
            tracing::warn!("the store was still in use at exit; the next start checks it in full")
        }
        Stopped::StoreFailed { cause } => exit_with_failed_store(&cause),
    }
    Ok(())
}

/// Binds the API's address and, with a `[proxy]`, the proxy's.
async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let api = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let proxy = match &config.proxy {
        Some(proxy) => Some(
            TcpListener::bind(proxy.listen)
                .await
                .with_context(|| format!("cannot listen on {} (proxy.listen)", proxy.listen))?,
        ),
        None => None,
    };
    Ok(Listeners { api, proxy })
}

/// Exit code of a server that stopped with a failed store.
const STORE_FAILED_EXIT: i32 = 3;

/// Ends the process without flushing or sealing the failed store: a flush of sled's started
/// before the failure may never return, and the runtime would wait at exit for the thread
/// stuck in it. What was not written is in no acknowledged answer, and deliveries still
/// pending or running on disk run again after the restart.
fn exit_with_failed_store(cause: &str) -> ! {
    // Log lines are written as they are made, so this one is out before the exit.
    tracing::error!("stopped without flushing the store, which failed: {cause}; restart eddy after fixing the disk");
    std::process::exit(STORE_FAILED_EXIT)
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
