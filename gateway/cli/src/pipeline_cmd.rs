//! `bro ingest` and `bro deliveries`: command-line clients of a running
//! gateway's `IngestService` and `DeliveryService`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bro_api::v1 as pb;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;

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

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(server.to_owned())
        .with_context(|| format!("invalid server address {server:?}"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}

fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "xml" => "application/xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Ingests each file as one message of `system`. The request id is derived
/// from the system and the file's bytes, so running it twice stores nothing new.
/// Returns false if any file was rejected.
pub async fn ingest(server: &str, system: &str, files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut client = IngestServiceClient::new(connect(server).await?);
    let mut all_ok = true;
    for file in files {
        let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let digest = Sha256::new().chain_update(system.as_bytes()).chain_update([0]).chain_update(&body).finalize();
        let request_id = format!("ingest-{}", hex(&digest[..16]));
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
pub async fn deliveries(server: &str, command: &DeliveriesCommand) -> anyhow::Result<()> {
    let mut client = DeliveryServiceClient::new(connect(server).await?);
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
