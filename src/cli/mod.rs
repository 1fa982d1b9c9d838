//! The `eddy` command line: flags in, calls into the library, exit codes out.
//!
//! Exit codes: 0 success, 1 handler failure (or `check` found errors), 2 usage or load error.

// The command line is where eddy prints.
#![allow(clippy::print_stderr, clippy::print_stdout)]

/// `println!` for command output, quiet once stdout is closed (see [`output::line`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

mod check;
mod client;
mod dev;
mod edit;
mod init;
mod log;
mod output;
mod remote;
mod replay;
mod run;
mod serve;
mod show;
mod types;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Integration runtime: durable events routed to sandboxed JavaScript handlers.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr are written [default: pretty on a terminal, else json];
    /// EDDY_LOG (else RUST_LOG) filters them, e.g. EDDY_LOG=eddy=debug
    #[arg(long, global = true, value_enum, env = "EDDY_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<log::LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a project: eddy.toml, handlers/ with a working handler, .env.example, a README.
    Init(init::InitArgs),
    /// Write eddy.d.ts, the types of the handler API, so editors complete and check handlers.
    Types(types::TypesArgs),
    /// Run one event through one handler and print what happened.
    Run(run::RunArgs),
    /// Load every handler and report syntax and load errors as file:line:col: message.
    Check(check::CheckArgs),
    /// Run the pipeline: ingest, routing, delivery with retries, the admin API.
    Serve(serve::ServeArgs),
    /// Serve for development: hot reload and a readable, coloured log of every attempt.
    Dev(serve::DevArgs),
    /// Run the pipeline with a proxy in front of your API that records its writes as events.
    Proxy(serve::ProxyArgs),
    /// Send one event to a running server.
    Send(remote::SendArgs),
    /// Inspect events on a running server.
    #[command(subcommand)]
    Events(remote::EventsCommand),
    /// Inspect deliveries on a running server.
    #[command(subcommand)]
    Deliveries(remote::DeliveriesCommand),
    /// Replay deliveries by id or by filter, or backfill a new handler.
    Replay(replay::ReplayArgs),
    /// Rewrite the data folder with only its live records (the server must be stopped).
    Compact(CompactArgs),
}

#[derive(Debug, clap::Args)]
struct CompactArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Data folder [default: `data` in eddy.toml, else ./.eddy]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

async fn compact(args: CompactArgs) -> Result<(), Failure> {
    let (config, _) = args.config.load()?;
    let data = args.data.unwrap_or(config.data);
    let cache = config.store.cache_bytes();
    let done = crate::store::Store::compact(&data, cache).map_err(anyhow::Error::from)?;
    let change = match done.bytes_after.checked_sub(done.bytes_before) {
        Some(0) | None => String::new(),
        Some(more) => format!(" ({more} bytes more than before)"),
    };
    say!(
        "{}: {} -> {} bytes{change}",
        data.display(),
        done.bytes_before,
        done.bytes_after
    );
    Ok(())
}

/// Flags shared by commands that read `eddy.toml`.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Config file [default: ./eddy.toml, optional]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<(eddy_config::Config, PathBuf)> {
        let explicit = self.config.is_some();
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(eddy_config::DEFAULT_CONFIG_FILE));
        Ok((eddy_config::Config::load(&path, explicit)?, path))
    }
}

use crate::config as eddy_config;

/// Failure of a command, with the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// The handler ran and failed (exit 1).
    Handler,
    /// Usage, config or load error (exit 2), already printed or to print.
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = log::init(cli.log_format, matches!(cli.command, Command::Dev(_))) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init(args) => init::init(args),
            Command::Types(args) => types::types(args),
            Command::Run(args) => run::run(args).await,
            Command::Check(args) => check::check(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Dev(args) => serve::dev(args).await,
            Command::Proxy(args) => serve::proxy(args).await,
            Command::Send(args) => remote::send(args).await,
            Command::Events(command) => remote::events(command).await,
            Command::Deliveries(command) => remote::deliveries(command).await,
            Command::Replay(args) => replay::replay(args).await,
            Command::Compact(args) => compact(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Handler) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
