//! `bro.v1.AuditService`: the audit log read back — a citizen's access
//! report (dates, purposes, organisations and kinds of access; no employee
//! identities) and the raw records, for supervision. An auditor reads its
//! own municipality's records only ([`AuditScope`]); a supervisor all.

use bro_api::v1 as pb;
use bro_api::v1::audit_service_server::AuditService;
use bro_store::StoreError;
use prost::Message as _;

use std::collections::HashMap;

use bro_domain::CaseId;

use crate::access::Caller;
use crate::access::audit::PAGE_METHOD;
use crate::access::policy::{AuditScope, Rpc, Target, audit_scope};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::paging;
use crate::systems::SystemAccess;

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

/// Records read per step while a page of one municipality's records is filled.
const SCAN_CHUNK: usize = 500;
/// Most records one call looks at; a sparse page then ends early, with a token.
const MAX_SCAN: usize = 20_000;

/// Which records a scope sees: a municipality sees what its people and
/// systems did and what concerns its cases.
struct Visibility<'a> {
    ctx: &'a Context,
    scope: AuditScope,
    /// Each case looked up so far: its municipality.
    cases: HashMap<String, Option<String>>,
}

impl Visibility<'_> {
    async fn sees(&mut self, record: &pb::AuditRecord) -> Result<bool, ApiError> {
        let AuditScope::Municipality(cvr) = &self.scope else { return Ok(true) };
        if record.actor_municipality == *cvr {
            return Ok(true);
        }
        let system = (record.actor_kind == pb::ActorKind::System as i32).then(|| self.ctx.systems.get(&record.actor));
        if let Some(Some(system)) = system
            && (matches!(&system.access, SystemAccess::Municipal { cvr: own } if own == cvr)
                || system.serves.as_deref() == Some(cvr.as_str()))
        {
            return Ok(true);
        }
        self.owns_case(&record.case).await
    }

    /// Whether case `name` (`cases/{case}`) is the scope's municipality's
    /// (every case is the whole log's).
    async fn owns_case(&mut self, name: &str) -> Result<bool, ApiError> {
        let AuditScope::Municipality(cvr) = &self.scope else { return Ok(true) };
        let Ok(case_id) = CaseId::from_resource_name("case", name) else { return Ok(false) };
        if !self.cases.contains_key(name) {
            let owner = self.ctx.store().get_case(&case_id).await?.map(|c| c.municipality_cvr);
            self.cases.insert(name.to_owned(), owner);
        }
        Ok(self.cases.get(name).is_some_and(|owner| owner.as_deref() == Some(cvr.as_str())))
    }
}

/// Where a page is read from.
enum Source<'a> {
    /// The whole log.
    All,
    /// The records concerning one person (keyed hash).
    Person(&'a [u8]),
}

/// One page of the records `visibility` sees after `after`, and the
/// sequence the next page starts after (none: the end of the log). The whole
/// log's page is one read of `size + 1`; a municipality's reads in chunks.
async fn visible_page(
    ctx: &Context,
    visibility: &mut Visibility<'_>,
    source: Source<'_>,
    after: u64,
    size: usize,
) -> Result<(Vec<pb::AuditRecord>, Option<u64>), ApiError> {
    let chunk = match visibility.scope {
        AuditScope::All => size + 1,
        AuditScope::Municipality(_) => SCAN_CHUNK.max(size + 1),
    };
    let (mut page, mut cursor, mut scanned) = (Vec::new(), after, 0);
    loop {
        let rows = match source {
            Source::All => ctx.trail.log().read(cursor, chunk).await?,
            Source::Person(key) => ctx.trail.log().read_person(key, cursor, chunk).await?,
        };
        let exhausted = rows.len() < chunk;
        for stored in &rows {
            let record = decode(stored)?;
            if visibility.sees(&record).await? {
                if page.len() == size {
                    return Ok((page, Some(cursor)));
                }
                page.push(record);
            }
            cursor = stored.sequence;
            scanned += 1;
        }
        if exhausted {
            return Ok((page, None));
        }
        if scanned >= MAX_SCAN {
            return Ok((page, Some(cursor)));
        }
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
    /// What of the log `caller` (admitted by the policy) reads.
    fn visibility(&self, caller: &Caller) -> Result<Visibility<'_>, ApiError> {
        let scope = audit_scope(&caller.principal, &self.ctx.systems)
            .ok_or_else(|| ApiError::PermissionDenied("no part of the audit log is the caller's to read".into()))?;
        Ok(Visibility { ctx: &self.ctx, scope, cases: HashMap::new() })
    }

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
        let mut visibility = self.visibility(&caller)?;
        if let AuditScope::Municipality(cvr) = visibility.scope.clone() {
            // A citizen of another municipality's cases is that municipality's to answer.
            let mut ours = false;
            for case_id in self.ctx.store().find_cases_by_person(&key).await? {
                ours |= visibility.owns_case(&case_id.resource_name()).await?;
            }
            if !ours {
                let why = format!(
                    "no case of municipality {cvr} concerns this citizen: the access report is the case's municipality's, or a supervisor's"
                );
                caller.refused(&why);
                return Err(ApiError::PermissionDenied(why));
            }
        }
        let (page, next) = visible_page(&self.ctx, &mut visibility, Source::Person(&key), after, size).await?;
        // Only the accesses that reached the data count as look-ups.
        let entries = page.iter().filter(|r| r.outcome == "OK").map(report_entry).collect();
        let next_page_token = next.map(|n| paging::encode_token("access-report", n)).unwrap_or_default();
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
        let mut visibility = self.visibility(&caller)?;
        let (records, next) = visible_page(&self.ctx, &mut visibility, Source::All, after, size).await?;
        let next_page_token = next.map(|n| paging::encode_token("audit", n)).unwrap_or_default();
        Ok(pb::ListAuditRecordsResponse { records, next_page_token })
    }
}

grpc_service! {
    AuditService, AuditApi {
        rpc GetAccessReport => get_access_report(pb::GetAccessReportRequest) -> pb::GetAccessReportResponse;
        rpc ListAuditRecords => list_audit_records(pb::ListAuditRecordsRequest) -> pb::ListAuditRecordsResponse;
    }
}
