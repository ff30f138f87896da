//! `bro.v1.ObligationService`, the worklist: the due obligations across a
//! municipality's cases on the server's today, read from the worklist index
//! ([`crate::worklist`]), which gives what evaluating every case would.

use bro_api::convert::date_to_pb;
use bro_api::v1 as pb;
use bro_api::v1::obligation_service_server::ObligationService;
use bro_domain::{CaseId, Violations, check_cvr};
use bro_store::DueStatus;

use crate::access::Caller;
use crate::access::policy::{Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::paging;

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
        caller: &Caller,
        req: &pb::ListDueObligationsRequest,
    ) -> Result<pb::ListDueObligationsResponse, ApiError> {
        let limit = paging::page_size(req.page_size, 100)?;
        let due_limit = match &req.due_on_or_before {
            None => None,
            Some(d) => Some(bro_api::convert::date_from_pb("due_on_or_before", Some(d))?),
        };
        let status = match pb::ObligationStatus::try_from(req.status) {
            Ok(pb::ObligationStatus::Unspecified) => DueStatus::Any,
            Ok(pb::ObligationStatus::Open) => DueStatus::Open,
            Ok(pb::ObligationStatus::Overdue) => DueStatus::Overdue,
            _ => return Err(Violations::one("status", "must be OPEN, OVERDUE or unspecified (both)").into()),
        };
        let today = self.ctx.clock.today();
        // A token is for one query on one day: tomorrow the statuses differ.
        let scope = format!(
            "due|{}|{}|{}|{today}",
            req.placing_municipality,
            due_limit.map(|d| d.to_string()).unwrap_or_default(),
            req.status
        );
        let after = paging::decode_key_token(&req.page_token, &scope)?;
        let page =
            self.ctx.worklist.due_page(&req.placing_municipality, status, due_limit, after, limit, today).await?;
        // A worklist look-up is a look at every case on the page and at its
        // people: the call's record names them all, so a citizen's access
        // report shows it.
        let mut seen: Vec<&str> = Vec::new();
        for due in &page.obligations {
            if seen.contains(&due.case.as_str()) {
                continue;
            }
            seen.push(&due.case);
            // The stored projection names the people: no history is replayed.
            let case_id = CaseId::from_resource_name("case", &due.case)?;
            caller.concerns_projection(&self.ctx.ledger.get(&case_id).await?);
        }
        Ok(pb::ListDueObligationsResponse {
            obligations: page.obligations,
            next_page_token: page.next_after.map(|key| paging::encode_key_token(&scope, &key)).unwrap_or_default(),
            evaluated_on: Some(date_to_pb(today)),
        })
    }
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
        self.due_obligations(&caller, &req).await
    }
}

grpc_service! {
    ObligationService, ObligationApi {
        rpc ListDueObligations => list_due_obligations(pb::ListDueObligationsRequest) -> pb::ListDueObligationsResponse;
    }
}
