//! Plans as read: a § 78 holistic plan is never stored as such; it is its
//! events (`plan_prepared` of kind § 78, `plan_coordinator_named`,
//! `plan_goals_updated`, consents in scope `bl78`) assembled with the rest of
//! its case by `bro_rules::holistic` whenever it is read — now, or as it
//! was after any earlier event of the case.

use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_domain::{Case, CaseId, Date, PartyId, Violations};
use bro_rules::coordination::CoordinationPolicy;
use bro_rules::holistic::{self, HolisticPlan};
use bro_store::CaseLedger;

use crate::clock::Clock;
use crate::error::ApiError;

/// A plan as read: the case it was assembled from (at the version asked
/// for), the plan, and its version.
pub struct Loaded {
    /// The case (at the version read).
    pub case: Arc<Case>,
    /// The plan.
    pub plan: HolisticPlan,
    /// The plan's version (the sequence of its latest change).
    pub version: u64,
    /// The day it was evaluated on.
    pub evaluated_on: Date,
}

impl Loaded {
    /// `plan` — this plan, or a view cut from it — on the wire, named,
    /// versioned and dated as read.
    pub fn to_pb(&self, plan: &HolisticPlan) -> pb::HolisticPlan {
        let name = bro_api::plan::plan_name(&self.case.id, &self.plan.plan_id);
        let mut out = bro_api::plan::plan_to_pb(plan, name, &self.case, self.version);
        out.evaluated_on = Some(convert::date_to_pb(self.evaluated_on));
        out
    }
}

/// Reads plans from the ledger; shared by the service and the page server.
#[derive(Clone)]
pub struct PlanReader {
    ledger: Arc<CaseLedger>,
    coordination: Arc<CoordinationPolicy>,
    clock: Arc<dyn Clock>,
}

/// The answer for a plan that does not exist.
pub fn not_found(name: String) -> ApiError {
    ApiError::NotFound { reason: "HOLISTIC_PLAN_NOT_FOUND", name }
}

impl PlanReader {
    /// A reader over `ledger`, checking plans by `coordination`.
    pub fn new(ledger: Arc<CaseLedger>, coordination: Arc<CoordinationPolicy>, clock: Arc<dyn Clock>) -> Self {
        PlanReader { ledger, coordination, clock }
    }

    /// The store under the ledger.
    pub fn store(&self) -> &Arc<dyn bro_store::EventStore> {
        self.ledger.store()
    }

    /// A case's whole history.
    pub async fn history(&self, case_id: &CaseId) -> Result<Vec<bro_domain::RecordedEvent>, ApiError> {
        Ok(self.ledger.history(case_id).await?)
    }

    /// Plan `plan_id` of `case_id`, now (`version` 0) or as recorded after
    /// case event `version`, evaluated on today (or on that event's day).
    pub async fn load(&self, case_id: &CaseId, plan_id: &str, version: u64) -> Result<Loaded, ApiError> {
        let name = bro_api::plan::plan_name(case_id, plan_id);
        let current = self.ledger.state(case_id).await?;
        let mut history = self.ledger.history(case_id).await?;
        history.retain(|e| e.sequence <= current.version);
        let versions = holistic::versions(&current, &history, plan_id);
        let created = versions.first().map(|v| v.sequence).ok_or_else(|| not_found(name.clone()))?;
        let (case, history, on) = if version == 0 || version == current.version {
            (current.clone(), history, self.clock.today())
        } else {
            if version < created || version > current.version {
                return Err(Violations::one(
                    "version",
                    format!("the plan has versions from {created} to {}; {version} is outside", current.version),
                )
                .into());
            }
            history.retain(|e| e.sequence <= version);
            let then = Case::replay(case_id.clone(), &history).map_err(|(i, v)| {
                bro_store::StoreError::Corrupt(format!(
                    "history of case {case_id} does not replay at event {}: {v}",
                    i + 1
                ))
            })?;
            let day = history.iter().find(|e| e.sequence == version).map(|e| crate::clock::danish_date(e.record_time));
            (Arc::new(then), history, day.unwrap_or_else(|| self.clock.today()))
        };
        let holders: Vec<PartyId> = case.custody_holders.iter().map(|p| p.party_id.clone()).collect();
        let evaluated = bro_rules::evaluate_history(&holders, &history, on);
        let plan = holistic::assemble(&case, plan_id, &self.coordination, Some(&evaluated.evaluation))
            .ok_or_else(|| not_found(name))?;
        let upto = if version == 0 { current.version } else { version };
        let version = versions.iter().map(|v| v.sequence).filter(|s| *s <= upto).max().unwrap_or(created);
        Ok(Loaded { case, plan, version, evaluated_on: on })
    }
}
