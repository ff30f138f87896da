//! The assembled § 78 holistic plan on the wire: `bro_rules::holistic`
//! values as `bro.v1` messages.

use bro_domain::{Case, CaseId};
use bro_proto::convert::{self, date_to_pb, opt_date, timestamp_to_pb};
use bro_proto::v1 as pb;
use bro_rules::coordination::{Conflict, ConflictKind};
use bro_rules::holistic::{HolisticPlan, PlanState, PlanVersion};

/// The resource name of plan `plan_id` of `case`.
pub fn plan_name(case: &CaseId, plan_id: &str) -> String {
    format!("{}/holisticPlans/{plan_id}", case.resource_name())
}

/// A plan state on the wire.
pub fn state_to_pb(state: PlanState) -> pb::HolisticPlanState {
    match state {
        PlanState::Proposed => pb::HolisticPlanState::Proposed,
        PlanState::InForce => pb::HolisticPlanState::InForce,
        PlanState::AgreementWithdrawn => pb::HolisticPlanState::AgreementWithdrawn,
        PlanState::Superseded => pb::HolisticPlanState::Superseded,
    }
}

fn conflict_kind_to_pb(kind: ConflictKind) -> pb::PlanConflictKind {
    match kind {
        ConflictKind::AppointmentsOverlap => pb::PlanConflictKind::AppointmentsOverlap,
        ConflictKind::TooManyMeetings => pb::PlanConflictKind::TooManyMeetings,
        ConflictKind::GoalsPullApart => pb::PlanConflictKind::GoalsPullApart,
        ConflictKind::RevisionOverdue => pb::PlanConflictKind::RevisionOverdue,
        ConflictKind::NoCoordinator => pb::PlanConflictKind::NoCoordinator,
    }
}

/// A conflict on the wire.
pub fn conflict_to_pb(c: &Conflict) -> pb::PlanConflict {
    pb::PlanConflict {
        kind: conflict_kind_to_pb(c.kind).into(),
        custody_holder: c.custody_holder.as_ref().map(|h| h.as_str().to_owned()).unwrap_or_default(),
        items: c.items.clone(),
        message: c.message.clone(),
    }
}

/// A plan assembled from `case` on the wire, as of plan `version` (the case
/// version of its latest change). `name` is empty for a proposal.
pub fn plan_to_pb(plan: &HolisticPlan, name: String, case: &Case, version: u64) -> pb::HolisticPlan {
    let h = |p: &bro_domain::PartyId| p.as_str().to_owned();
    pb::HolisticPlan {
        name,
        etag: convert::etag(case.version),
        version: version as i64,
        state: state_to_pb(plan.state).into(),
        prepared_on: Some(date_to_pb(plan.prepared_on)),
        covers: plan.covers.iter().map(h).collect(),
        goals: plan.goals.iter().map(convert::goal_to_pb).collect(),
        coordinator: plan.coordinator.as_ref().map(|(c, on)| convert::coordinator_to_pb(c, Some(*on))),
        sector_plans: plan.sector_plans.iter().map(convert::sector_plan_to_pb).collect(),
        authority_measures: plan
            .authority_measures
            .iter()
            .map(|m| pb::AuthorityMeasure {
                custody_holder: h(&m.custody_holder),
                measure: convert::measure_to_pb(m.measure).into(),
                granted_on: opt_date(m.granted_on),
                started_on: opt_date(m.started_on),
            })
            .collect(),
        sector_contacts: plan.sector_contacts.iter().map(convert::sector_contact_to_pb).collect(),
        appointments: plan.appointments.iter().map(convert::appointment_to_pb).collect(),
        busy_periods: plan
            .busy_periods
            .iter()
            .map(|b| pb::BusyPeriod {
                custody_holder: h(&b.custody_holder),
                start_time: Some(timestamp_to_pb(b.start)),
                end_time: Some(timestamp_to_pb(b.end)),
            })
            .collect(),
        agreements: plan
            .agreements
            .iter()
            .map(|a| pb::PlanAgreement {
                custody_holder: h(&a.custody_holder),
                agreed_on: opt_date(a.agreed_on),
                withdrawn_on: opt_date(a.withdrawn_on),
                shared_with: a.shared_with.clone(),
            })
            .collect(),
        conflicts: plan.conflicts.iter().map(conflict_to_pb).collect(),
        next_revision_due: opt_date(plan.next_revision_due),
        evaluated_on: None,
        update_time: Some(timestamp_to_pb(case.update_time)),
        distribution_ended: false,
    }
}

/// A version on the wire.
pub fn version_to_pb(v: &PlanVersion) -> pb::HolisticPlanVersion {
    pb::HolisticPlanVersion {
        version: v.sequence as i64,
        occurred_on: Some(date_to_pb(v.occurred_on)),
        record_time: Some(timestamp_to_pb(v.record_time)),
        change: v.change.clone(),
        source_system: v.source_system.clone(),
    }
}

/// The notice that a recipient no longer receives a plan: no content.
pub fn ended_notice(name: String, version: u64, state: PlanState, covers: Vec<String>) -> pb::HolisticPlan {
    pb::HolisticPlan {
        name,
        version: version as i64,
        state: state_to_pb(state).into(),
        covers,
        distribution_ended: true,
        ..Default::default()
    }
}
