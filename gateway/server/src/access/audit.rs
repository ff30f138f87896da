//! The audit trail: every call's record goes through one writer task that
//! appends whatever has queued up in one durable transaction (group commit),
//! and the caller's answer waits for it. `AuditService` reads it back: the
//! citizen's access report (no employee identities) and the raw records.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::audit_service_server::AuditService;
use bro_store::{AuditLog, Keyring, StoreError};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::policy::{self, Rpc, Target};
use super::{Caller, Principal};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging;
use crate::pipeline::Systems;

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
}

impl AuditTrail {
    /// Starts the writer task over `log`; it ends when every clone is dropped.
    pub fn start(log: Arc<dyn AuditLog>) -> (AuditTrail, tokio::task::JoinHandle<()>) {
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
        (AuditTrail { queue, log }, task)
    }

    /// Appends one record; returns when it is durable.
    pub async fn record(&self, record: pb::AuditRecord) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Pending { record, done }).await.map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?.map_err(StoreError::Backend)
    }

    /// The log, for reading.
    pub fn log(&self) -> &Arc<dyn AuditLog> {
        &self.log
    }
}

/// `bro.v1.AuditService`.
pub struct AuditApi {
    trail: AuditTrail,
    keys: Arc<Keyring>,
    systems: Arc<Systems>,
    metrics: Arc<Metrics>,
}

impl AuditApi {
    /// The service.
    pub fn new(trail: AuditTrail, keys: Arc<Keyring>, systems: Arc<Systems>, metrics: Arc<Metrics>) -> Self {
        AuditApi { trail, keys, systems, metrics }
    }

    fn authorize(&self, caller: &Caller, rpc: Rpc) -> Result<(), ApiError> {
        policy::authorize(&caller.principal, &self.systems, rpc, Target::Nothing)?;
        Ok(())
    }
}

fn decode(stored: &bro_store::StoredAuditRecord) -> Result<pb::AuditRecord, ApiError> {
    pb::AuditRecord::decode(stored.record.as_slice())
        .map_err(|e| ApiError::from(StoreError::Corrupt(format!("audit record {}: {e}", stored.sequence))))
}

/// What a citizen is told about one record.
fn report_entry(record: &pb::AuditRecord) -> pb::AccessReportEntry {
    let time = record.time.map(|t| bro_domain::Timestamp::from_timestamp(t.seconds, 0).unwrap_or_default());
    let date = time.map(|t| bro_api::convert::date_to_pb(crate::clock::danish_date(t)));
    let rpc = Rpc::from_path(&record.method);
    let action = match (rpc, record.method.starts_with("delivery:")) {
        (_, true) => format!("sent {} to the system", record.data_kind),
        (None, _) if record.method == crate::plans::http::PAGE_METHOD => format!("read {} (page)", record.data_kind),
        (Some(rpc), _) => format!("{} {}", rpc.action(), record.data_kind),
        (None, _) => format!("read {}", record.data_kind),
    };
    let organisation = match pb::ActorKind::try_from(record.actor_kind) {
        Ok(pb::ActorKind::System) => record.actor.clone(),
        Ok(pb::ActorKind::Citizen) => "you, through your plan link".into(),
        _ if !record.actor_municipality.is_empty() => format!("CVR {}", record.actor_municipality),
        _ => "unknown".into(),
    };
    pb::AccessReportEntry {
        date,
        purpose: record.purpose.clone(),
        organisation,
        action,
        data_kind: record.data_kind.clone(),
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_access_report(
        &self,
        request: Request<pb::GetAccessReportRequest>,
    ) -> Result<Response<pb::GetAccessReportResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("GetAccessReport", async {
                let caller = caller?;
                self.authorize(&caller, Rpc::GetAccessReport)?;
                let person = bro_api::convert::person_id_from_pb("person", req.person.as_ref())?
                    .ok_or_else(|| bro_domain::Violations::one("person", "is required"))?;
                caller.concerns_person(&person);
                let size = paging::page_size(req.page_size, 100)?;
                let after = paging::decode_token(&req.page_token, "access-report")?;
                let key = self.keys.person_key(person.kind_name(), person.expose());
                let rows = self.trail.log().read_person(&key, after, size + 1).await?;
                let more = rows.len() > size;
                let mut entries = Vec::new();
                let mut last = after;
                for stored in rows.iter().take(size) {
                    let record = decode(stored)?;
                    last = stored.sequence;
                    // Only the accesses that reached the data count as look-ups.
                    if record.outcome == "OK" {
                        entries.push(report_entry(&record));
                    }
                }
                let next_page_token = if more { paging::encode_token("access-report", last) } else { String::new() };
                Ok(pb::GetAccessReportResponse { entries, next_page_token })
            })
            .await
    }

    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("ListAuditRecords", async {
                let caller = caller?;
                self.authorize(&caller, Rpc::ListAuditRecords)?;
                let size = paging::page_size(req.page_size, 100)?;
                let after = paging::decode_token(&req.page_token, "audit")?;
                let rows = self.trail.log().read(after, size + 1).await?;
                let more = rows.len() > size;
                let records = rows.iter().take(size).map(decode).collect::<Result<Vec<_>, _>>()?;
                let next_page_token = match (more, records.last()) {
                    (true, Some(last)) => paging::encode_token("audit", last.sequence as u64),
                    _ => String::new(),
                };
                Ok(pb::ListAuditRecordsResponse { records, next_page_token })
            })
            .await
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
        time: Some(prost_types::Timestamp { seconds: now.timestamp(), nanos: now.timestamp_subsec_nanos() as i32 }),
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
