//! `bro.v1.AuditService`: the audit log read back — a citizen's access
//! report (dates, purposes, organisations and kinds of access; no employee
//! identities) and the raw records, for supervision.

use bro_api::v1 as pb;
use bro_api::v1::audit_service_server::AuditService;
use bro_store::StoreError;
use prost::Message as _;

use crate::access::Caller;
use crate::access::audit::PAGE_METHOD;
use crate::access::policy::{Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::paging;

/// `bro.v1.AuditService`.
pub struct AuditApi {
    ctx: Context,
}

impl AuditApi {
    /// The service over the gateway's context.
    pub fn new(ctx: Context) -> Self {
        AuditApi { ctx }
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
        (None, _) if record.method == PAGE_METHOD => format!("read {} (page)", record.data_kind),
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

/// The handlers, each run by [`Context::handle`] through the table below.
impl AuditApi {
    async fn get_access_report(
        &self,
        caller: Caller,
        req: pb::GetAccessReportRequest,
    ) -> Result<pb::GetAccessReportResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::GetAccessReport, Target::Nothing)?;
        let person = bro_api::convert::person_id_from_pb("person", req.person.as_ref())?
            .ok_or_else(|| bro_domain::Violations::one("person", "is required"))?;
        caller.concerns_person(&person);
        let size = paging::page_size(req.page_size, 100)?;
        let after = paging::decode_token(&req.page_token, "access-report")?;
        let key = self.ctx.keys.person_key(person.kind_name(), person.expose());
        let rows = self.ctx.trail.log().read_person(&key, after, size + 1).await?;
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
    }

    async fn list_audit_records(
        &self,
        caller: Caller,
        req: pb::ListAuditRecordsRequest,
    ) -> Result<pb::ListAuditRecordsResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ListAuditRecords, Target::Nothing)?;
        let size = paging::page_size(req.page_size, 100)?;
        let after = paging::decode_token(&req.page_token, "audit")?;
        let rows = self.ctx.trail.log().read(after, size + 1).await?;
        let more = rows.len() > size;
        let records = rows.iter().take(size).map(decode).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = match (more, records.last()) {
            (true, Some(last)) => paging::encode_token("audit", last.sequence as u64),
            _ => String::new(),
        };
        Ok(pb::ListAuditRecordsResponse { records, next_page_token })
    }
}

grpc_service! {
    AuditService, AuditApi {
        rpc GetAccessReport => get_access_report(pb::GetAccessReportRequest) -> pb::GetAccessReportResponse;
        rpc ListAuditRecords => list_audit_records(pb::ListAuditRecordsRequest) -> pb::ListAuditRecordsResponse;
    }
}
