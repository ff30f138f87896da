//! `bro.v1.ObligationService`, the worklist: the due obligations across a
//! municipality's cases, each case evaluated by the rules engine for the
//! server's today; and [`evaluated_case`], a case with its obligations of
//! the day, as `GetCase` answers it.

use std::cmp::Ordering;

use bro_api::convert::date_to_pb;
use bro_api::v1 as pb;
use bro_api::v1::obligation_service_server::ObligationService;
use bro_domain::{Date, PartyId, Violations, check_cvr};
use bro_store::{CaseLedger, CaseQuery, LedgerError};
use chrono::Datelike;

use crate::access::Caller;
use crate::access::policy::{Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::paging;

/// Cases read per store page while building the worklist.
const CASE_PAGE: usize = 500;

/// A case's obligations and advisories on `today`, consistent with the
/// case's version (events appended since it was read are left out).
pub async fn evaluated_case(ledger: &CaseLedger, case: pb::Case, today: Date) -> Result<pb::Case, LedgerError> {
    let id = bro_domain::CaseId::from_resource_name("name", &case.name)
        .map_err(|v| bro_store::StoreError::Corrupt(format!("stored case name: {v}")))?;
    let mut history = ledger.history(&id).await?;
    history.retain(|e| e.sequence <= case.version as u64);
    let holders: Vec<PartyId> =
        case.custody_holders.iter().filter_map(|p| PartyId::parse("party_id", &p.party_id).ok()).collect();
    let evaluated = bro_rules::evaluate_history(&holders, &history, today);
    Ok(bro_api::evaluation::with_evaluation(case, &evaluated, today))
}

/// The worklist service.
pub struct ObligationApi {
    ctx: Context,
}

impl ObligationApi {
    /// The worklist over the gateway's context.
    pub fn new(ctx: Context) -> Self {
        ObligationApi { ctx }
    }

    async fn due_obligations(
        &self,
        req: &pb::ListDueObligationsRequest,
    ) -> Result<pb::ListDueObligationsResponse, crate::error::ApiError> {
        let limit = paging::page_size(req.page_size, 100)?;
        let due_limit = match &req.due_on_or_before {
            None => None,
            Some(d) => Some(bro_api::convert::date_from_pb("due_on_or_before", Some(d))?),
        };
        let wanted: &[pb::ObligationStatus] = match pb::ObligationStatus::try_from(req.status) {
            Ok(pb::ObligationStatus::Unspecified) => &[pb::ObligationStatus::Open, pb::ObligationStatus::Overdue],
            Ok(pb::ObligationStatus::Open) => &[pb::ObligationStatus::Open],
            Ok(pb::ObligationStatus::Overdue) => &[pb::ObligationStatus::Overdue],
            _ => return Err(Violations::one("status", "must be OPEN, OVERDUE or unspecified (both)").into()),
        };
        let today = self.ctx.clock.today();
        let scope = format!(
            "due|{}|{}|{}|{today}",
            req.placing_municipality,
            due_limit.map(|d| d.to_string()).unwrap_or_default(),
            req.status
        );
        let offset = paging::decode_token(&req.page_token, &scope)? as usize;

        let mut due = Vec::new();
        let mut query =
            CaseQuery { municipality_cvr: Some(req.placing_municipality.clone()), after_ordinal: 0, limit: CASE_PAGE };
        loop {
            let (cases, next) = self.ctx.ledger.list(&query).await?;
            for case in cases {
                let name = case.name.clone();
                let evaluated = evaluated_case(&self.ctx.ledger, case, today).await?;
                for o in evaluated.obligations {
                    let status_ok = wanted.iter().any(|s| *s as i32 == o.status);
                    let due_ok = match (due_limit, &o.due_date) {
                        (None, _) => true,
                        (Some(limit), Some(d)) => {
                            (d.year, d.month, d.day) <= (limit.year(), limit.month() as i32, limit.day() as i32)
                        }
                        (Some(_), None) => false,
                    };
                    if status_ok && due_ok {
                        due.push(pb::DueObligation { case: name.clone(), obligation: Some(o) });
                    }
                }
            }
            match next {
                Some(after) => query.after_ordinal = after,
                None => break,
            }
        }
        due.sort_by(compare_due);
        let total = due.len();
        let page: Vec<_> = due.into_iter().skip(offset).take(limit).collect();
        let next = offset + page.len();
        Ok(pb::ListDueObligationsResponse {
            obligations: page,
            next_page_token: if next < total { paging::encode_token(&scope, next as u64) } else { String::new() },
            evaluated_on: Some(date_to_pb(today)),
        })
    }
}

/// Soonest due first; duties without a deadline last; then by case and rule.
fn compare_due(a: &pb::DueObligation, b: &pb::DueObligation) -> Ordering {
    let key = |d: &pb::DueObligation| {
        let o = d.obligation.as_ref();
        let due = o.and_then(|o| o.due_date.as_ref()).map(|d| (d.year, d.month, d.day));
        (
            due.is_none(),
            due,
            d.case.clone(),
            o.map(|o| o.rule.clone()),
            o.map(|o| o.custody_holder.clone()),
            o.and_then(|o| o.trigger_date.as_ref()).map(|d| (d.year, d.month, d.day)),
        )
    };
    key(a).cmp(&key(b))
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl ObligationApi {
    async fn list_due_obligations(
        &self,
        caller: Caller,
        req: pb::ListDueObligationsRequest,
    ) -> Result<pb::ListDueObligationsResponse, ApiError> {
        check_cvr("placing_municipality", &req.placing_municipality)?;
        let target = Target::Municipality(&req.placing_municipality);
        self.ctx.authorize(&caller, Rpc::ListDueObligations, target)?;
        self.due_obligations(&req).await
    }
}

grpc_service! {
    ObligationService, ObligationApi {
        rpc ListDueObligations => list_due_obligations(pb::ListDueObligationsRequest) -> pb::ListDueObligationsResponse;
    }
}
