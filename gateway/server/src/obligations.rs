//! Obligations through the API: the rules engine run on a case's history for
//! the server's today, on `GetCase`, and the worklist service
//! `bro.v1.ObligationService` across a municipality's cases.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bro_api::convert::date_to_pb;
use bro_api::v1 as pb;
use bro_api::v1::obligation_service_server::ObligationService;
use bro_domain::{Date, PartyId, RecordedEvent, Violations, check_cvr};
use bro_rules::{Evaluation, Status};
use bro_store::{CaseLedger, CaseQuery, LedgerError};
use chrono::Datelike;
use tonic::{Request, Response};

use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging;

/// Cases read per store page while building the worklist.
const CASE_PAGE: usize = 500;

/// Evaluates a case's history (any order) on `today`.
pub(crate) fn evaluate(custody_holders: &[PartyId], history: &[RecordedEvent], today: Date) -> (Evaluation, Vec<u64>) {
    let mut ordered: Vec<&RecordedEvent> = history.iter().collect();
    ordered.sort_by_key(|e| (e.event.occurred_on, e.sequence));
    let sequences: Vec<u64> = ordered.iter().map(|e| e.sequence).collect();
    let events: Vec<bro_domain::Event> = ordered.into_iter().map(|e| e.event.clone()).collect();
    (bro_rules::evaluate(custody_holders, &events, today), sequences)
}

fn status_to_pb(status: Status) -> pb::ObligationStatus {
    match status {
        Status::Open => pb::ObligationStatus::Open,
        Status::Overdue => pb::ObligationStatus::Overdue,
        Status::Met => pb::ObligationStatus::Met,
        Status::Violated => pb::ObligationStatus::Violated,
    }
}

fn obligations_to_pb(evaluation: &Evaluation, sequences: &[u64]) -> Vec<pb::Obligation> {
    let sequence = |index: Option<usize>| index.and_then(|i| sequences.get(i)).map_or(0, |s| *s as i64);
    evaluation
        .obligations
        .iter()
        .map(|o| pb::Obligation {
            rule: o.rule.as_str().to_owned(),
            cites: o.cites.to_owned(),
            duty: o.duty.to_owned(),
            custody_holder: o.custody_holder.as_ref().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            trigger_date: Some(date_to_pb(o.trigger)),
            status: status_to_pb(o.status).into(),
            due_date: o.due.map(date_to_pb),
            met_on: o.met_on.map(date_to_pb),
            met_by_sequence: sequence(o.met_by),
            triggered_by_sequence: sequence(Some(o.triggered_by)),
            reopened_on: o.reopened_on.map(date_to_pb),
        })
        .collect()
}

fn custody_holders(case: &pb::Case) -> Vec<PartyId> {
    case.custody_holders.iter().filter_map(|p| PartyId::parse("party_id", &p.party_id).ok()).collect()
}

/// A case's obligations and advisories on `today`, consistent with the
/// case's version (events appended since it was read are left out).
pub async fn evaluate_case(ledger: &CaseLedger, mut case: pb::Case, today: Date) -> Result<pb::Case, LedgerError> {
    let id = bro_domain::CaseId::from_resource_name("name", &case.name)
        .map_err(|v| bro_store::StoreError::Corrupt(format!("stored case name: {v}")))?;
    let mut history = ledger.history(&id).await?;
    history.retain(|e| e.sequence <= case.version as u64);
    let (evaluation, sequences) = evaluate(&custody_holders(&case), &history, today);
    case.obligations = obligations_to_pb(&evaluation, &sequences);
    case.advisories = evaluation
        .advisories
        .iter()
        .map(|a| pb::Advisory {
            id: a.id.as_str().to_owned(),
            custody_holder: a.custody_holder.as_ref().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            message: a.message.clone(),
        })
        .collect();
    case.ruleset = evaluation.ruleset.to_owned();
    case.evaluated_on = Some(date_to_pb(today));
    Ok(case)
}

/// The worklist service.
pub struct ObligationApi {
    ledger: Arc<CaseLedger>,
    systems: Arc<crate::pipeline::Systems>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl ObligationApi {
    /// A worklist over a ledger.
    pub fn new(
        ledger: Arc<CaseLedger>,
        systems: Arc<crate::pipeline::Systems>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        ObligationApi { ledger, systems, clock, metrics }
    }

    async fn due_obligations(
        &self,
        caller: Result<crate::access::Caller, ApiError>,
        req: &pb::ListDueObligationsRequest,
    ) -> Result<pb::ListDueObligationsResponse, ApiError> {
        let caller = caller?;
        check_cvr("placing_municipality", &req.placing_municipality)?;
        crate::access::policy::authorize(
            &caller.principal,
            &self.systems,
            crate::access::policy::Rpc::ListDueObligations,
            crate::access::policy::Target::Municipality(&req.placing_municipality),
        )
        .inspect_err(|d| caller.refused(&d.0))?;
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
        let today = self.clock.today();
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
            let (cases, next) = self.ledger.list(&query).await?;
            for case in cases {
                let name = case.name.clone();
                let evaluated = evaluate_case(&self.ledger, case, today).await?;
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

#[tonic::async_trait]
impl ObligationService for ObligationApi {
    async fn list_due_obligations(
        &self,
        request: Request<pb::ListDueObligationsRequest>,
    ) -> Result<Response<pb::ListDueObligationsResponse>, tonic::Status> {
        let start = Instant::now();
        let caller = crate::access::Caller::of(&request);
        let result = self.due_obligations(caller, request.get_ref()).await.map_err(tonic::Status::from);
        let code = result.as_ref().map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
        self.metrics.record_rpc("ListDueObligations", code, start.elapsed());
        result.map(Response::new)
    }
}
