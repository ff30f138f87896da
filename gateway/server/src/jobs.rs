//! Jobs that must run once per period however many replicas share the
//! store: each replica asks the store on every tick
//! ([`bro_store::EventStore::claim_job`], an advisory lock and a last-run
//! row on PostgreSQL), and only the one told yes runs it.
//!
//! The one such job today exports the audit log's head — its last sequence
//! and chain value — signed with the audit signing key
//! ([`bro_store::AuditSigner`], apart from the master key), as a log line
//! (`audit head`) and, if configured, a JSON line appended to a file: kept
//! where whoever can write the database cannot reach, it is what shows that
//! records were cut off the end of the log, or the log rebuilt, since
//! (`bro audit verify --head FILE`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bro_store::AuditSigner;

use tokio::task::JoinHandle;

use crate::context::Context;

/// The audit head export: how often, and where besides the log.
#[derive(Clone, Debug)]
pub struct HeadExport {
    /// The period; one replica exports once per period.
    pub every: Duration,
    /// A file each export appends a signed head to (one JSON line).
    pub file: Option<PathBuf>,
}

impl Default for HeadExport {
    fn default() -> Self {
        HeadExport { every: Duration::from_secs(300), file: None }
    }
}

/// The job's name in the store.
const HEAD_EXPORT_JOB: &str = "audit-head-export";

/// Starts the audit head export; it ends when the gateway stops.
pub fn start_head_export(ctx: &Context, export: HeadExport, signer: Arc<AuditSigner>) -> JoinHandle<()> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        // Ask a few times per period, so the export is at most a quarter late.
        let tick = (export.every / 4).max(Duration::from_secs(1));
        let every = chrono::Duration::from_std(export.every).unwrap_or(chrono::Duration::minutes(5));
        loop {
            match ctx.store().claim_job(HEAD_EXPORT_JOB, ctx.clock.now(), every).await {
                Ok(true) => {
                    if let Err(e) = export_head(&ctx, &export, &signer).await {
                        tracing::error!(error = %e, "the audit head was not exported");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim the audit head export"),
            }
            tokio::select! {
                () = ctx.stopping.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
        }
    })
}

async fn export_head(ctx: &Context, export: &HeadExport, signer: &AuditSigner) -> Result<(), String> {
    // The head exported covers every write committed so far.
    ctx.trail.log().settle().await.map_err(|e| e.to_string())?;
    let head = ctx.trail.log().head().await.map_err(|e| e.to_string())?;
    let signed = signer.sign(&head, ctx.clock.now());
    tracing::info!(
        sequence = signed.sequence,
        chain_value = %signed.chain_value,
        time = %signed.time,
        key_id = %signed.key_id,
        signature = %signed.signature,
        "audit head"
    );
    let Some(path) = export.file.clone() else { return Ok(()) };
    let line = signed.to_line();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot append to the head export file: {e}"))
}
