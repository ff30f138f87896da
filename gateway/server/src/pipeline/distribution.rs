//! Distribution of § 78 holistic plans through the outbox: whenever a write
//! changes what a subscribing system may see of a plan, the system is sent
//! its view — a municipality's own system the whole plan, another sector's
//! system only what the consents of the covered parents in its scope allow
//! (`bro_rules::holistic::HolisticPlan::sector_view`), and only while the
//! plan is in force. A system that loses its view (an agreement or a consent
//! withdrawn, the plan superseded) is sent a notice without content, once;
//! after that it is sent nothing more of the plan.

use bro_api::v1 as pb;
use bro_domain::{Case, PlanKind, Timestamp};
use bro_rules::coordination::CoordinationPolicy;
use bro_rules::holistic::{self, HolisticPlan};

use super::{HOLISTIC_PLAN, SystemAccess, SystemConfig, Systems};
use crate::access::views::SectorScope;
use crate::plans::wire;

/// Most appointments, busy periods or conflicts one delivered view carries:
/// what an adapter can render within its deadline (the adapters refuse more).
pub const MAX_DELIVERED_ITEMS: usize = 200;
/// How far back a delivered view reaches: appointments that ended longer
/// ago are history the receiving system has had.
const DELIVERED_HISTORY_DAYS: i64 = 14;

/// Cuts a view to what one delivery carries: the appointments and busy
/// periods from two weeks before `now` on, the first [`MAX_DELIVERED_ITEMS`]
/// of each, and the conflicts among what is left.
fn limit_for_delivery(view: &mut HolisticPlan, now: Timestamp) {
    let from = now - chrono::Duration::days(DELIVERED_HISTORY_DAYS);
    view.appointments.retain(|a| a.end_time.unwrap_or(a.start_time) >= from);
    view.appointments.truncate(MAX_DELIVERED_ITEMS);
    view.busy_periods.retain(|b| b.end >= from);
    view.busy_periods.truncate(MAX_DELIVERED_ITEMS);
    let kept: std::collections::HashSet<String> =
        view.appointments.iter().map(|a| format!("appointments/{}", a.appointment_id)).collect();
    view.conflicts.retain(|c| c.items.iter().all(|i| !i.starts_with("appointments/") || kept.contains(i)));
    view.conflicts.truncate(MAX_DELIVERED_ITEMS);
}

/// What `system` may be sent of `plan` (assembled from `case`), if anything.
fn view_for(system: &SystemConfig, plan: &HolisticPlan, case: &Case, now: Timestamp) -> Option<HolisticPlan> {
    let mut view = consented_view(system, plan, case)?;
    limit_for_delivery(&mut view, now);
    Some(view)
}

fn consented_view(system: &SystemConfig, plan: &HolisticPlan, case: &Case) -> Option<HolisticPlan> {
    match &system.access {
        SystemAccess::SendOnly => None,
        SystemAccess::Municipal { cvr } => (&case.placing_municipality.cvr == cvr).then(|| plan.clone()),
        SystemAccess::Sector { sector, scope } => {
            if !system.reaches(&case.placing_municipality.cvr) {
                return None;
            }
            let sector = bro_api::convert::sector_from_pb(*sector)?;
            let shared: Vec<_> = case.shared_custody_holders(scope).map(|p| p.party_id.clone()).collect();
            plan.sector_view(sector, scope, &shared)
        }
    }
}

/// The plan deliveries of a write: for every subscribing system and every
/// holistic plan of `case`, its new view where the view changed, or a notice
/// where it was lost.
pub fn plan_views<'a>(
    systems: &'a Systems,
    policy: &CoordinationPolicy,
    before: Option<&Case>,
    case: &Case,
    projection: &pb::Case,
    now: Timestamp,
) -> Vec<(&'a SystemConfig, pb::AdapterBatch)> {
    let subscribers: Vec<&SystemConfig> =
        systems.all().iter().filter(|s| s.subscribe.iter().any(|t| t == HOLISTIC_PLAN)).collect();
    if subscribers.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for plan in case.plans.iter().filter(|p| p.kind == PlanKind::Bl78) {
        let Some(after) = holistic::assemble(case, &plan.plan_id, policy, None) else { continue };
        let earlier = before.and_then(|b| Some((b, holistic::assemble(b, &plan.plan_id, policy, None)?)));
        let name = wire::plan_name(&case.id, &plan.plan_id);
        for system in &subscribers {
            let current = view_for(system, &after, case, now);
            let then = earlier.as_ref().and_then(|(b, p)| view_for(system, p, b, now));
            let message = match (then, current) {
                (then, Some(current)) if then.as_ref() != Some(&current) => {
                    wire::plan_to_pb(&current, name.clone(), projection, case.version)
                }
                (Some(then), None) => wire::ended_notice(
                    name.clone(),
                    case.version,
                    after.state,
                    then.covers.iter().map(|h| h.as_str().to_owned()).collect(),
                ),
                _ => continue,
            };
            out.push((*system, batch_for(projection, message)));
        }
    }
    out
}

/// An adapter batch carrying `plan`: its parents as `subjects`, and every
/// custody-holder reference in it as `subjects/N`.
fn batch_for(case: &pb::Case, mut plan: pb::HolisticPlan) -> pb::AdapterBatch {
    let parties: Vec<pb::Party> =
        case.custody_holders.iter().filter(|p| plan.covers.contains(&p.party_id)).cloned().collect();
    let subjects: Vec<pb::PersonIdentifier> = parties.iter().filter_map(|p| p.identifier.clone()).collect();
    wire::for_each_holder(&mut plan, |holder| {
        let identifier = parties.iter().find(|p| &p.party_id == holder).and_then(|p| p.identifier.as_ref());
        if let Some(i) = identifier.and_then(|id| subjects.iter().position(|s| s == id)) {
            *holder = format!("subjects/{i}");
        }
    });
    pb::AdapterBatch {
        subjects,
        case: case.name.clone(),
        source_message_id: String::new(),
        events: Vec::new(),
        parties,
        holistic_plan: Some(plan),
    }
}

/// Whether holistic plan `plan_id` of the stored case is in force: every
/// parent it covers has an agreement (`bl78` consent) that holds, and no
/// later holistic plan covers one of them (as `holistic::state`).
fn in_force(case: &pb::Case, plan_id: &str) -> bool {
    let bl78 = pb::PlanKind::Bl78 as i32;
    let Some(at) = case.plans.iter().position(|p| p.plan_id == plan_id && p.kind == bl78) else { return false };
    let plan = &case.plans[at];
    let agreed = |holder: &String| {
        case.consents.iter().any(|c| &c.custody_holder == holder && c.scope == "bl78" && c.withdrawn_on.is_none())
    };
    let superseded =
        case.plans[at + 1..].iter().any(|p| p.kind == bl78 && p.covers.iter().any(|h| plan.covers.contains(h)));
    !plan.covers.is_empty() && plan.covers.iter().all(agreed) && !superseded
}

/// Whether a queued plan delivery may still go to `system`, judged by the
/// case as it is now: a notice always (it carries nothing new); a view only
/// while the plan is in force and every parent in it still shares with the
/// system (a newer delivery carries the view that remains).
pub fn plan_still_sendable(
    system: &SystemConfig,
    case: &pb::Case,
    plan: &pb::HolisticPlan,
    parties: &[pb::Party],
) -> bool {
    let cvr = case.placing_municipality.as_ref().map_or("", |m| m.cvr.as_str());
    match &system.access {
        SystemAccess::SendOnly => false,
        SystemAccess::Municipal { cvr: own } => own == cvr,
        SystemAccess::Sector { sector, scope } => {
            if !system.reaches(cvr) {
                return false;
            }
            if plan.distribution_ended {
                return true;
            }
            let plan_id = plan.name.rsplit('/').next().unwrap_or_default();
            let view = SectorScope::of_projection(case, *sector, scope);
            in_force(case, plan_id) && parties.iter().all(|p| view.covers(&p.party_id))
        }
    }
}

#[cfg(test)]
mod tests;
