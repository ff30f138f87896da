//! Distribution of § 78 holistic plans through the outbox: whenever a write
//! changes what a subscribing system may see of a plan, the system is sent
//! its view — a municipality's own system the whole plan, another sector's
//! system only what the consents of the covered parents in its scope allow,
//! and only while the plan is in force (`bro_rules::sharing::plan_view`). A
//! system that loses its view (an agreement or a consent withdrawn, the plan
//! superseded) is sent a notice without content, once; after that it is sent
//! nothing more of the plan.

use bro_api::convert;
use bro_api::plan as wire;
use bro_api::v1 as pb;
use bro_domain::{Case, PlanKind, Timestamp};
use bro_rules::coordination::CoordinationPolicy;
use bro_rules::holistic::{self, HolisticPlan};
use bro_rules::sharing;

use crate::systems::{HOLISTIC_PLAN, SystemConfig, Systems};

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
    let mut view = sharing::plan_view(&system.recipient(), plan, case, crate::clock::danish_date(now))?;
    limit_for_delivery(&mut view, now);
    Some(view)
}

/// The plan deliveries of a write: for every subscribing system and every
/// holistic plan of `case`, its new view where the view changed, or a notice
/// where it was lost.
pub fn plan_views<'a>(
    systems: &'a Systems,
    policy: &CoordinationPolicy,
    before: Option<&Case>,
    case: &Case,
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
                    wire::plan_to_pb(&current, name.clone(), case, case.version)
                }
                (Some(then), None) => wire::ended_notice(
                    name.clone(),
                    case.version,
                    after.state,
                    then.covers.iter().map(|h| h.as_str().to_owned()).collect(),
                ),
                _ => continue,
            };
            out.push((*system, batch_for(case, message)));
        }
    }
    out
}

/// A canonical batch carrying `plan` and the parents it covers.
fn batch_for(case: &Case, plan: pb::HolisticPlan) -> pb::AdapterBatch {
    let parties = case
        .custody_holders
        .iter()
        .filter(|p| plan.covers.iter().any(|h| h == p.party_id.as_str()))
        .map(convert::party_to_pb)
        .collect();
    pb::AdapterBatch { case: case.id.resource_name(), parties, holistic_plan: Some(plan), ..Default::default() }
}

#[cfg(test)]
mod tests;
