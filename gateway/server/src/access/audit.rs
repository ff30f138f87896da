//! The audit trail: every call's record goes through one writer task that
//! appends whatever has queued up in one durable transaction (group commit),
//! and the caller's answer waits for it; and the records the gateway writes
//! besides calls — deliveries handed over, plan pages shown.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_store::{AppendObserver, AuditLog, Keyring, Stage, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::{AuditDraft, Principal};
use crate::clock::Stopwatch;

/// The method name views of the parents' plan pages are audited under.
pub const PAGE_METHOD: &str = "page:/plan";

const MAX_BATCH: usize = 512;
const QUEUE: usize = 4096;

struct Pending {
    record: pb::AuditRecord,
    done: oneshot::Sender<Result<(), String>>,
}

/// Appends audit records durably; cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    queue: mpsc::Sender<Pending>,
    log: Arc<dyn AuditLog>,
    observer: Option<Arc<dyn AppendObserver>>,
}

impl AuditTrail {
    /// Starts the writer task over `log`; it ends when every clone is
    /// dropped. `observer` is told how long each record took to be durable
    /// ([`Stage::Audit`]).
    pub fn start(
        log: Arc<dyn AuditLog>,
        observer: Option<Arc<dyn AppendObserver>>,
    ) -> (AuditTrail, tokio::task::JoinHandle<()>) {
        let (queue, mut incoming) = mpsc::channel::<Pending>(QUEUE);
        let writer_log = log.clone();
        let task = tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (records, waiters): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.record, p.done)).unzip();
                let outcome = writer_log.append(records).await.map(|_| ()).map_err(|e| e.to_string());
                if let Err(e) = &outcome {
                    tracing::error!(error = %e, "the audit log cannot be written; the calls are refused");
                }
                for waiter in waiters {
                    let _ = waiter.send(outcome.clone());
                }
            }
        });
        (AuditTrail { queue, log, observer }, task)
    }

    /// Appends one record; returns when it is durable.
    pub async fn record(&self, record: pb::AuditRecord) -> Result<(), StoreError> {
        let stopwatch = Stopwatch::start();
        let (done, wait) = oneshot::channel();
        self.queue.send(Pending { record, done }).await.map_err(|_| StoreError::Closed)?;
        let written = wait.await.map_err(|_| StoreError::Closed)?.map_err(StoreError::Backend);
        if let Some(observer) = &self.observer {
            observer.stage_finished(Stage::Audit, stopwatch.elapsed());
        }
        written
    }

    /// True when a write's record commits with the write (the log is in
    /// the event store's database).
    pub fn commits_with_appends(&self) -> bool {
        self.log.commits_with_appends()
    }

    /// The log, for reading.
    pub fn log(&self) -> &Arc<dyn AuditLog> {
        &self.log
    }
}

/// The keyed hashes of the people an outgoing batch names.
pub fn batch_person_keys(keys: &Keyring, batch: &pb::AdapterBatch) -> Vec<Vec<u8>> {
    let ids = batch.subjects.iter().chain(batch.parties.iter().filter_map(|p| p.identifier.as_ref()));
    let mut out: Vec<Vec<u8>> = ids.filter_map(|id| keys.identifier_key(id)).collect();
    out.sort();
    out.dedup();
    out
}

/// The record of a delivery handed to its system (`how`: http, file, pull).
pub fn delivery_record(
    system: &str,
    delivery: &bro_store::Delivery,
    person_keys: Vec<Vec<u8>>,
    how: &str,
    now: bro_domain::Timestamp,
) -> pb::AuditRecord {
    pb::AuditRecord {
        time: Some(bro_api::convert::timestamp_to_pb(now)),
        actor_kind: pb::ActorKind::System as i32,
        actor: system.to_owned(),
        method: format!("delivery:{how}"),
        case: delivery.new.case_id.resource_name(),
        person_keys,
        data_kind: "case events".into(),
        purpose: super::Purpose::Exchange.as_str().into(),
        outcome: "OK".into(),
        ..Default::default()
    }
}

/// The record of a look at a parent's plan page (`outcome`: the gRPC code
/// name it stands for; `detail`: why a link was refused).
pub fn page_record(
    case: String,
    person_keys: Vec<Vec<u8>>,
    outcome: &str,
    detail: &str,
    now: bro_domain::Timestamp,
) -> pb::AuditRecord {
    pb::AuditRecord {
        time: Some(bro_api::convert::timestamp_to_pb(now)),
        actor_kind: pb::ActorKind::Citizen as i32,
        method: PAGE_METHOD.into(),
        case,
        person_keys,
        data_kind: "holistic plan".into(),
        purpose: super::Purpose::CitizenRequest.as_str().into(),
        outcome: outcome.into(),
        detail: detail.into(),
        ..Default::default()
    }
}

/// The outcome of the record a write leaves before it commits: whatever
/// happens after, the audit log already names who changed which case.
pub const STARTED: &str = "STARTED";

/// The outcome of the record a write commits in its own transaction, where
/// the audit log is in the event store's database (PostgreSQL): the record
/// exists exactly when the change does.
pub const COMMITTED: &str = "COMMITTED";

/// The record of one call: who (`principal`), why (`purpose`), what
/// (`method`, and the case and people noted in `draft`), and how it ended
/// (`outcome`: a gRPC code name, or [`STARTED`] or [`COMMITTED`], and why).
pub fn call_record(
    now: bro_domain::Timestamp,
    method: &str,
    principal: Option<&Principal>,
    purpose: String,
    draft: AuditDraft,
    default_data_kind: &str,
    (outcome, detail): (&str, String),
) -> pb::AuditRecord {
    let (kind, actor, municipality) = actor_fields(principal);
    pb::AuditRecord {
        sequence: 0,
        time: Some(bro_api::convert::timestamp_to_pb(now)),
        actor_kind: kind as i32,
        actor,
        actor_municipality: municipality,
        method: method.chars().take(200).collect(),
        case: draft.case,
        person_keys: draft.person_keys,
        data_kind: draft.data_kind.unwrap_or(default_data_kind).to_owned(),
        purpose,
        outcome: outcome.to_owned(),
        detail,
        cases: draft.cases,
    }
}

/// The actor fields of a record.
pub fn actor_fields(principal: Option<&Principal>) -> (pb::ActorKind, String, String) {
    match principal {
        Some(Principal::Person(p)) => {
            (pb::ActorKind::Person, p.subject.clone(), p.municipality.clone().unwrap_or_default())
        }
        Some(Principal::System(name)) => (pb::ActorKind::System, name.clone(), String::new()),
        None => (pb::ActorKind::Unauthenticated, String::new(), String::new()),
    }
}
