//! The `bro` command: `serve` runs the gateway, `demo` shows it working on a
//! fresh embedded store.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line program prints.

mod adapter_cmd;
mod adapter_new;
mod adapters;
mod config;
mod demo;
mod demo_plan;
mod dev_cmd;
mod pipeline_cmd;
mod rules_cmd;
mod security;
mod store_copy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bro_server::ServeOptions;
use bro_store_sqlite::SqliteStore;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Overrides, SystemFile};

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
    /// Tools for adapter vendors: create, run, test, check, sign, verify.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// Send message files from a configured system to a running gateway.
    Ingest {
        #[command(flatten)]
        client: pipeline_cmd::ClientArgs,
        /// The configured system the messages come from.
        #[arg(long)]
        system: String,
        /// The message files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show, retry and replay deliveries of a running gateway.
    Deliveries {
        #[command(flatten)]
        client: pipeline_cmd::ClientArgs,
        #[command(subcommand)]
        command: pipeline_cmd::DeliveriesCommand,
    },
    /// Make a new master key file (the keyed-hash index, audit chain and sealing keys derive from it),
    /// or with --audit-signing an audit head signing key (Ed25519, kept apart from the master key).
    Keygen {
        /// Where to write it (created with mode 600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Make an audit head signing key ([audit] signing_key) instead; prints its public key.
        #[arg(long)]
        audit_signing: bool,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The event store on PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Development identities and certificates (never for production).
    #[command(subcommand)]
    Dev(dev_cmd::DevCommand),
}

/// Where an audit log is, and its key.
#[derive(clap::Args)]
struct AuditLogArgs {
    /// The gateway's data directory (its embedded audit log).
    #[arg(long, env = "BRO_DATA_DIR", required_unless_present = "store", conflicts_with = "store")]
    data_dir: Option<PathBuf>,
    /// The audit log on PostgreSQL: postgres://user@host/db.
    #[arg(long, env = "BRO_STORE")]
    store: Option<String>,
    /// The master key file (default: DATA_DIR/bro.key; required with --store).
    #[arg(long, env = "BRO_KEY_FILE")]
    key_file: Option<PathBuf>,
}

impl AuditLogArgs {
    fn source(&self) -> security::AuditSource<'_> {
        match (&self.store, &self.data_dir) {
            (Some(url), _) => security::AuditSource::Postgres(url),
            (None, Some(dir)) => security::AuditSource::DataDir(dir),
            (None, None) => unreachable!("clap requires one of --data-dir and --store"),
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole audit log's hash chain: any changed, removed, inserted
    /// or reordered record, or a cut-off end, is found. Exit 1 if broken.
    Verify {
        #[command(flatten)]
        log: AuditLogArgs,
        /// Signed heads exported earlier (`bro audit export-head`, or the
        /// gateway's head export file): each must verify under the audit
        /// signing key and the log must still extend it.
        #[arg(long)]
        head: Option<PathBuf>,
        /// The audit signing key's public half (base64), as pinned by whoever keeps the heads.
        #[arg(long, conflicts_with = "signing_key")]
        public_key: Option<String>,
        /// The audit signing key file (its public half is used; default: DATA_DIR/audit-signing.key).
        #[arg(long)]
        signing_key: Option<PathBuf>,
    },
    /// Sign the audit log's head now (after checking the whole chain) and
    /// append it, one JSON line, to --out (or print it): keep it where
    /// whoever can write the database cannot reach.
    ExportHead {
        #[command(flatten)]
        log: AuditLogArgs,
        /// The audit signing key file (default: DATA_DIR/audit-signing.key; required with --store).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// The file to append the signed head to.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Create or upgrade the event store's schema on PostgreSQL (`bro serve`
    /// refuses a database at another schema version). Safe to run from
    /// several machines at once; does nothing when already migrated.
    Migrate {
        /// The database: postgres://user@host/db.
        #[arg(long, env = "BRO_STORE")]
        store: String,
    },
    /// Copy a stopped gateway's embedded store and audit log, whole, into a
    /// migrated, empty PostgreSQL database (in one transaction); the target
    /// gateway uses the same key file.
    Copy {
        /// The gateway's data directory.
        #[arg(long)]
        from: PathBuf,
        /// The database: postgres://user@host/db.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum AdapterCommand {
    /// Create a new adapter project NAME (builds with `cargo build --release --target wasm32-wasip2`).
    New {
        /// The adapter's name (lowercase letters, digits, '-').
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run one translation and show the figures production enforces.
    Run {
        /// The component (.wasm).
        adapter: PathBuf,
        /// to-canonical or from-canonical.
        #[arg(long)]
        op: String,
        /// The input: a message file, or canonical JSON for from-canonical.
        #[arg(long)]
        input: PathBuf,
        /// The target system (from-canonical).
        #[arg(long)]
        target: Option<String>,
        /// The message's content type (default: from the file extension).
        #[arg(long)]
        content_type: Option<String>,
        #[command(flatten)]
        limits: adapter_cmd::LimitArgs,
    },
    /// Run golden fixtures: NAME.in.EXT → NAME.expected.json, NAME.canonical.json → NAME.expected.EXT.
    Test {
        /// The component (.wasm).
        adapter: PathBuf,
        /// The fixture directory.
        dir: PathBuf,
        /// Write each actual output over its expected file (review the diff before committing).
        #[arg(long)]
        bless: bool,
        #[command(flatten)]
        limits: adapter_cmd::LimitArgs,
    },
    /// Validate a component against the world and the limits.
    Check {
        /// The component (.wasm).
        adapter: PathBuf,
        #[command(flatten)]
        limits: adapter_cmd::LimitArgs,
    },
    /// Make a vendor signing key pair: PREFIX.key and PREFIX.pub.
    Keygen {
        /// Path prefix of the key files.
        prefix: PathBuf,
    },
    /// Write adapter.toml and adapter.sig beside a component.
    Sign {
        /// The component (.wasm).
        adapter: PathBuf,
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Name in the manifest (default: what the adapter describes).
        #[arg(long)]
        name: Option<String>,
        /// Version in the manifest (default: what the adapter describes).
        #[arg(long = "package-version")]
        package_version: Option<String>,
        /// A known-good message (synthetic data) the adapter must translate:
        /// copied into the package, tried at load and after a crash.
        #[arg(long)]
        probe: Option<PathBuf>,
        /// The probe's content type (default: from its extension).
        #[arg(long = "probe-content-type", requires = "probe")]
        probe_content_type: Option<String>,
    },
    /// Verify a package directory against trusted public keys.
    Verify {
        /// The package directory (adapter.toml, the component, adapter.sig).
        dir: PathBuf,
        /// Trusted public key files.
        #[arg(long = "trusted-key", required = true)]
        keys: Vec<PathBuf>,
    },
}

fn adapter_command(command: &AdapterCommand) -> anyhow::Result<bool> {
    match command {
        AdapterCommand::New { name, dir } => {
            let root = adapter_new::create(name, dir)?;
            println!("created {}: build it with `cargo build --release --target wasm32-wasip2` there", root.display());
            Ok(true)
        }
        AdapterCommand::Run { adapter, op, input, target, content_type, limits } => {
            adapter_cmd::run(adapter, op, input, target.as_deref(), content_type.as_deref(), limits)
        }
        AdapterCommand::Test { adapter, dir, bless, limits } => adapter_cmd::test(adapter, dir, *bless, limits),
        AdapterCommand::Check { adapter, limits } => adapter_cmd::check(adapter, limits),
        AdapterCommand::Keygen { prefix } => adapter_cmd::keygen(prefix).map(|()| true),
        AdapterCommand::Sign { adapter, key, name, package_version, probe, probe_content_type } => {
            let probe = probe.as_deref().map(|p| (p, probe_content_type.as_deref()));
            adapter_cmd::sign(adapter, key, name.as_deref(), package_version.as_deref(), probe).map(|()| true)
        }
        AdapterCommand::Verify { dir, keys } => adapter_cmd::verify(dir, keys),
    }
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
    // On PostgreSQL the audit log shares the store's database; else both are files in the data directory.
    let postgres = match &settings.store_url {
        Some(url) => Some(Arc::new(
            bro_store_postgres::PostgresStore::open(url).await.context("cannot open the event store on PostgreSQL")?,
        )),
        None => None,
    };
    let store: Arc<dyn bro_store::EventStore> = match &postgres {
        Some(store) => store.clone(),
        None => Arc::new(
            SqliteStore::open(&settings.data_dir)
                .with_context(|| format!("cannot open the event store in {}", settings.data_dir.display()))?,
        ),
    };
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
    let adapters = if settings.adapters.directory.is_some() {
        let (config, data_dir) = (settings.adapters.clone(), settings.data_dir.clone());
        let adapters = tokio::task::spawn_blocking(move || adapters::Adapters::start(&config, &data_dir)).await??;
        let adapters = Arc::new(adapters);
        adapters.clone().reload_on_sighup();
        Some(adapters.registry.clone())
    } else {
        None
    };
    let systems = bro_server::systems::Systems::new(
        settings.systems.iter().map(SystemFile::to_system).collect::<anyhow::Result<Vec<_>>>()?,
    )
    .map_err(|e| anyhow::anyhow!("invalid [[systems]]: {e}"))?;
    let security = security::from_settings(&settings, postgres.as_deref())?;
    for system in systems.all() {
        tracing::info!(system = %system.name, adapter = %system.adapter, subscribes = system.subscribe.len(), "system configured");
    }
    let plan_pages = match settings.pages_listen {
        None => None,
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
            Some(bro_server::PlanPagesSettings {
                trusted_proxies: settings.pages_trusted_proxies.clone(),
                ..bro_server::PlanPagesSettings::new(listener, settings.pages_base_url.clone())
                    .map_err(anyhow::Error::msg)?
            })
        }
    };
    let options = ServeOptions {
        max_request_bytes: settings.max_request_bytes,
        request_timeout: Duration::from_secs(settings.request_timeout_secs),
        shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
        adapters,
        systems: Arc::new(systems),
        security: Some(security),
        coordination: Arc::new(settings.coordination.clone()),
        plan_pages,
        delivery_lease: Duration::from_secs(settings.delivery_lease_secs),
        head_export: settings.head_export.clone(),
        streams: settings.streams,
        http2: settings.http2,
        ..ServeOptions::default()
    };
    bro_server::run(grpc, admin, store, options, shutdown_signal()).await?;
    Ok(())
}

/// `bro store migrate`.
#[allow(clippy::print_stdout)] // A command reports what it did.
async fn migrate_store(url: &str) -> anyhow::Result<()> {
    config::check_store_url(url)?;
    let version = bro_store_postgres::PostgresStore::migrate(url).await.context("cannot migrate the store")?;
    println!("the store is at schema version {version}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Adapter(command) = &cli.command {
        return match adapter_command(command) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("bro adapter: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    // The rules commands are pure computation: no runtime, no logging on stdout.
    if let Command::Keygen { out, audit_signing } = &cli.command {
        let made = if *audit_signing { security::keygen_audit_signing(out) } else { security::keygen(out) };
        return match made {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bro keygen: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Audit(AuditCommand::Verify { log, head, public_key, signing_key }) = &cli.command {
        let heads = head.as_deref().map(|file| security::PinnedHeads {
            file,
            public_key: public_key.as_deref(),
            signing_key: signing_key.as_deref(),
        });
        return security::verify_audit(log.source(), log.key_file.as_deref(), heads);
    }
    if let Command::Audit(AuditCommand::ExportHead { log, signing_key, out }) = &cli.command {
        let key_file = log.key_file.as_deref();
        return security::export_head(log.source(), key_file, signing_key.as_deref(), out.as_deref());
    }
    if let Command::Dev(command) = &cli.command {
        return match dev_cmd::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bro dev: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
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
            Command::Ingest { client, system, files } => {
                if pipeline_cmd::ingest(&client, &system, &files).await? {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("some messages were rejected"))
                }
            }
            Command::Deliveries { client, command } => pipeline_cmd::deliveries(&client, &command).await,
            Command::Store(StoreCommand::Migrate { store }) => migrate_store(&store).await,
            Command::Store(StoreCommand::Copy { from, to }) => store_copy::copy(&from, &to).await,
            Command::Rules(_) | Command::Adapter(_) | Command::Keygen { .. } | Command::Audit(_) | Command::Dev(_) => {
                unreachable!("handled before the runtime starts")
            }
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
