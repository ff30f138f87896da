//! The `bro` command: `serve` runs the gateway, `demo` shows it working on a
//! fresh embedded store.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line program prints.

mod config;
mod demo;
mod rules_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bro_server::ServeOptions;
use bro_store_sqlite::SqliteStore;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

/// bro: the integration gateway for parent-support cases under barnets lov §§ 75–79.
#[derive(Parser)]
#[command(name = "bro", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway until SIGTERM or Ctrl-C.
    Serve(Overrides),
    /// Start a gateway on a fresh embedded store, create synthetic cases
    /// through the public API, show what happened, and keep serving.
    Demo {
        /// Directory for the demo's store (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// gRPC listen address (default 127.0.0.1:50051, or a free port if taken).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Exit after showing the demo instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Evaluate the barnets-lov rules on scenario files (shared/scenarios format).
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Print the obligations and advisories of one scenario as JSON.
    Eval {
        /// The scenario file.
        file: PathBuf,
    },
    /// Check scenarios against their expectations; exit 1 if any falls short.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves when SIGTERM or SIGINT (Ctrl-C) arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

async fn serve(overrides: Overrides) -> anyhow::Result<()> {
    let settings = overrides.resolve()?;
    init_logging(settings.log_format);
    let store = SqliteStore::open(&settings.data_dir)
        .with_context(|| format!("cannot open the event store in {}", settings.data_dir.display()))?;
    let grpc = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let admin = match settings.admin_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?)
        }
        None => None,
    };
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        admin = ?admin.as_ref().and_then(|l| l.local_addr().ok()),
        "starting bro"
    );
    let options = ServeOptions {
        max_request_bytes: settings.max_request_bytes,
        request_timeout: Duration::from_secs(settings.request_timeout_secs),
        ..ServeOptions::default()
    };
    bro_server::run(grpc, admin, Arc::new(store), options, shutdown_signal()).await?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The rules commands are pure computation: no runtime, no logging on stdout.
    if let Command::Rules(rules) = &cli.command {
        return match rules {
            RulesCommand::Eval { file } => rules_cmd::eval(file),
            RulesCommand::Check { files } => rules_cmd::check(files),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bro: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(overrides) => serve(overrides).await,
            Command::Demo { data_dir, listen, once, log_format } => {
                init_logging(log_format);
                demo::run(data_dir, listen, once).await
            }
            Command::Rules(_) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("bro: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
