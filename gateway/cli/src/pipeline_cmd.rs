//! `bro ingest` and `bro deliveries`: command-line clients of a running
//! gateway's `IngestService` and `DeliveryService`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bro_api::v1 as pb;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_server::access::Purpose;
use bro_server::access::client::{self, AuthChannel, CallerInterceptor, ClientTls};

/// What `bro deliveries` does.
#[derive(clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries (oldest first), optionally filtered.
    List {
        /// Only to this system.
        #[arg(long)]
        system: Option<String>,
        /// Only in this state: pending, awaiting_pull, delivered, dead.
        #[arg(long)]
        state: Option<String>,
        /// Most to show.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Put dead-lettered deliveries back in the queue.
    Retry {
        /// Delivery names (`deliveries/{id}`) or ids.
        deliveries: Vec<String>,
    },
    /// Send deliveries again, under new idempotency keys.
    Replay {
        /// Delivery names (`deliveries/{id}`) or ids.
        deliveries: Vec<String>,
    },
}

/// How a command-line client authenticates.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The gateway's gRPC address (`https://…`, or `http://` to a loopback gateway).
    #[arg(long, env = "BRO_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// A file holding a bearer token from the identity provider.
    #[arg(long, env = "BRO_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate (PEM) of the gateway's TLS certificate.
    #[arg(long, env = "BRO_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// This system's client certificate (PEM).
    #[arg(long, env = "BRO_CERT_FILE", requires = "client_key_file")]
    pub cert_file: Option<PathBuf>,
    /// This system's client key (PEM).
    #[arg(long, env = "BRO_CLIENT_KEY_FILE", requires = "cert_file")]
    pub client_key_file: Option<PathBuf>,
    /// Why these calls are made: case-handling, coordination, exchange,
    /// supervision, citizen-request, operations.
    #[arg(long, env = "BRO_PURPOSE")]
    pub purpose: Option<String>,
}

impl ClientArgs {
    /// A channel carrying these credentials; `purpose` unless the user chose one.
    pub async fn connect(&self, purpose: Purpose) -> anyhow::Result<AuthChannel> {
        let purpose = match &self.purpose {
            None => purpose,
            Some(p) => Purpose::parse(p).with_context(|| {
                format!("--purpose {p:?} is not one of: {}", Purpose::ALL.map(|(_, n)| n).join(", "))
            })?,
        };
        let token = match &self.token_file {
            None => None,
            Some(path) => {
                Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
            }
        };
        let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
        let tls = match &self.ca_file {
            None => None,
            Some(ca) => Some(ClientTls {
                ca_pem: read(ca)?,
                identity: match (&self.cert_file, &self.client_key_file) {
                    (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                    _ => None,
                },
                domain: None,
            }),
        };
        let interceptor = CallerInterceptor::new(token.as_deref(), purpose).map_err(anyhow::Error::msg)?;
        Ok(client::connect(&self.server, tls.as_ref(), interceptor).await?)
    }
}

fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "xml" => "application/xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Ingests each file as one message of `system`, under a new random request
/// id: one derived from the file's bytes would be a fingerprint of the
/// message stored in the clear. Running it twice stores nothing new where
/// the message carries its own id (the gateway knows it by that).
/// Returns false if any file was rejected.
pub async fn ingest(args: &ClientArgs, system: &str, files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut client = IngestServiceClient::new(args.connect(Purpose::Exchange).await?);
    let mut all_ok = true;
    for file in files {
        let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let request_id = format!("ingest-{}", uuid::Uuid::new_v4());
        let message = pb::ExternalMessage {
            content_type: content_type_of(file).into(),
            body,
            metadata: [(
                "file-name".to_owned(),
                file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            )]
            .into(),
        };
        let request = pb::IngestRequest { system: system.to_owned(), message: Some(message), request_id };
        match client.ingest(request).await {
            Ok(r) => {
                let r = r.into_inner();
                let what = match r.outcome() {
                    pb::IngestOutcome::Appended => format!("appended {} event(s) to {}", r.events.len(), r.case),
                    pb::IngestOutcome::Duplicate => format!("already ingested into {}", r.case),
                    pb::IngestOutcome::Unmatched => format!("no case matched; queued as {}", r.unmatched_message),
                    pb::IngestOutcome::Accepted => "accepted (where it went is not disclosed to this system)".into(),
                    pb::IngestOutcome::Unspecified => "unknown outcome".into(),
                };
                println!("{}: {what}", file.display());
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                all_ok = false;
                println!("{}: REJECTED: {}", file.display(), status.message());
            }
            Err(status) => anyhow::bail!("{}: {} ({:?})", file.display(), status.message(), status.code()),
        }
    }
    Ok(all_ok)
}

fn state_name(d: &pb::Delivery) -> &'static str {
    match d.state() {
        pb::DeliveryState::Pending => "pending",
        pb::DeliveryState::AwaitingPull => "awaiting_pull",
        pb::DeliveryState::Delivered => "delivered",
        pb::DeliveryState::Dead => "dead",
        pb::DeliveryState::Unspecified => "?",
    }
}

fn name(raw: &str) -> String {
    if raw.starts_with("deliveries/") { raw.to_owned() } else { format!("deliveries/{raw}") }
}

/// Runs a `bro deliveries` command.
pub async fn deliveries(args: &ClientArgs, command: &DeliveriesCommand) -> anyhow::Result<()> {
    let mut client = DeliveryServiceClient::new(args.connect(Purpose::Operations).await?);
    match command {
        DeliveriesCommand::List { system, state, limit } => {
            let mut terms = Vec::new();
            if let Some(s) = system {
                terms.push(format!("system = \"{s}\""));
            }
            if let Some(s) = state {
                terms.push(format!("state = \"{s}\""));
            }
            let request =
                pb::ListDeliveriesRequest { page_size: *limit, filter: terms.join(" AND "), ..Default::default() };
            let listed = client.list_deliveries(request).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?;
            println!(
                "{:<48} {:<20} {:<14} {:>8}  {:<24} last error",
                "delivery", "system", "state", "attempts", "case"
            );
            for d in listed.into_inner().deliveries {
                println!(
                    "{:<48} {:<20} {:<14} {:>8}  {:<24} {}",
                    d.name,
                    d.system,
                    state_name(&d),
                    d.attempts,
                    d.case,
                    d.last_error
                );
            }
        }
        DeliveriesCommand::Retry { deliveries } => {
            for d in deliveries {
                let r = client.retry_delivery(pb::RetryDeliveryRequest { name: name(d) }).await;
                match r {
                    Ok(_) => println!("{}: queued again", name(d)),
                    Err(s) => anyhow::bail!("{}: {}", name(d), s.message()),
                }
            }
        }
        DeliveriesCommand::Replay { deliveries } => {
            for d in deliveries {
                // One id per replay asked for: a retried call does not replay twice.
                let request_id = format!("cli-{}", uuid::Uuid::new_v4());
                let r = client.replay_delivery(pb::ReplayDeliveryRequest { name: name(d), request_id }).await;
                match r {
                    Ok(r) => println!(
                        "{}: replayed as {}",
                        name(d),
                        r.into_inner().delivery.map(|d| d.name).unwrap_or_default()
                    ),
                    Err(s) => anyhow::bail!("{}: {}", name(d), s.message()),
                }
            }
        }
    }
    Ok(())
}
