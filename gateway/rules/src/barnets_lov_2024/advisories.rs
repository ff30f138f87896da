//! Advisories from the 2024 recommendations on cooperation with and support
//! to parents of placed children. They are advice on practice, not law, and
//! never change an obligation's status.

use std::collections::{BTreeSet, HashSet};

use bro_domain::{EventKind, Goal, PartyId, PlanKind, Sector};

use crate::facts::{BL78_SCOPE, Facts};
use crate::{Advisory, AdvisoryId};

/// Every advisory for the case, in a stable order: support-person offers per
/// custody holder, plan goals per plan, then sector coordination per
/// custody holder.
pub(crate) fn all(facts: &Facts<'_>) -> Vec<Advisory> {
    let mut advisories = repeat_support_person_offer(facts);
    advisories.extend(goal_quality(facts));
    advisories.extend(several_sectors_without_coordinator(facts));
    advisories
}

/// `repeat-support-person-offer`: a custody holder's latest answer to a
/// support-person offer is a decline, and no offer has followed it. Parents
/// may decline and accept later; the recommendations ask municipalities to
/// repeat the offer when it is meaningful to the parents.
fn repeat_support_person_offer(facts: &Facts<'_>) -> Vec<Advisory> {
    let mut advisories = Vec::new();
    for holder in facts.custody_holders {
        // The latest decline not yet followed by an answer or a new offer.
        let mut standing_decline = None;
        for event in facts.iter() {
            match event.kind {
                EventKind::SupportPersonDeclined { custody_holder } if custody_holder == holder => {
                    standing_decline = Some(event.on);
                }
                EventKind::SupportPersonAccepted { custody_holder }
                | EventKind::SupportPersonOffered { custody_holder }
                    if custody_holder == holder =>
                {
                    standing_decline = None;
                }
                _ => {}
            }
        }
        if let Some(declined_on) = standing_decline {
            advisories.push(Advisory {
                id: AdvisoryId::RepeatSupportPersonOffer,
                custody_holder: Some(holder.clone()),
                message: format!(
                    "{holder} declined the offer of a support person on {declined_on} and has not been offered one since; \
                     parents may accept later, so repeat the offer when it is meaningful to them"
                ),
            });
        }
    }
    advisories
}

/// A plan as the goal advisories see it.
struct PlanInForce<'a> {
    plan_id: &'a str,
    kind: PlanKind,
    covers: BTreeSet<&'a PartyId>,
    goals: &'a [Goal],
}

/// `goal-without-change-in-parents` and `goal-without-aim`: the
/// recommendations ask that each goal of a parent plan describe concretely
/// the change to be seen in the parents, and say whether it aims at
/// homecoming or at contact.
///
/// Only the current plans are read: a plan prepared later of the same kind
/// and for the same custody holders supersedes an earlier one.
fn goal_quality(facts: &Facts<'_>) -> Vec<Advisory> {
    let mut plans: Vec<PlanInForce<'_>> = Vec::new();
    for event in facts.iter() {
        let EventKind::PlanPrepared { plan_id, kind, covers, goals } = event.kind else {
            continue;
        };
        let plan = PlanInForce { plan_id, kind: *kind, covers: covers.iter().collect(), goals };
        plans.retain(|earlier| earlier.kind != plan.kind || earlier.covers != plan.covers);
        plans.push(plan);
    }
    let mut advisories = Vec::new();
    for plan in &plans {
        let what = match plan.kind {
            PlanKind::Bl77 => "parent action plan",
            PlanKind::Bl78 => "holistic plan",
        };
        for goal in plan.goals {
            let goal_id = &goal.goal_id;
            let plan_id = plan.plan_id;
            if goal.change_in_parents.trim().is_empty() {
                advisories.push(Advisory {
                    id: AdvisoryId::GoalWithoutChangeInParents,
                    custody_holder: None,
                    message: format!(
                        "goal {goal_id:?} of {what} {plan_id:?} does not describe the change that should be seen in the parents"
                    ),
                });
            }
            if goal.aim.is_none() {
                advisories.push(Advisory {
                    id: AdvisoryId::GoalWithoutAim,
                    custody_holder: None,
                    message: format!(
                        "goal {goal_id:?} of {what} {plan_id:?} does not say whether it aims at homecoming or at contact during the placement"
                    ),
                });
            }
        }
    }
    advisories
}

/// `no-coordinator-for-several-sectors`: a custody holder has open contacts
/// (`sector_contact_added`, not ended by the evaluation day) with two or more
/// different sectors, and no holistic plan in force that names a coordinator
/// covers them.
///
/// Interpretation: the law names no coordinator; the § 78 holistic plan is
/// the instrument for coordinating several plans for the same parent, and its
/// coordinator (`plan_coordinator_named`) is the one contact seed 000 asks
/// for. A holistic plan counts while it is in force — every custody holder it
/// covers has a `bl78` consent that holds — and once it names a coordinator.
/// Sectors are told apart by kind (`other` counts as one).
fn several_sectors_without_coordinator(facts: &Facts<'_>) -> Vec<Advisory> {
    let mut contacts: Vec<(&str, &PartyId, Sector)> = Vec::new();
    let mut consenting: HashSet<&PartyId> = HashSet::new();
    let mut holistic_plans: Vec<(&str, &[PartyId])> = Vec::new();
    let mut named: HashSet<&str> = HashSet::new();
    for event in facts.iter() {
        match event.kind {
            EventKind::SectorContactAdded { contact_id, custody_holder, sector, .. } => {
                contacts.push((contact_id, custody_holder, *sector));
            }
            EventKind::SectorContactEnded { contact_id } => contacts.retain(|(id, _, _)| id != contact_id),
            EventKind::PlanPrepared { plan_id, kind: PlanKind::Bl78, covers, .. } => {
                holistic_plans.push((plan_id, covers));
            }
            EventKind::PlanCoordinatorNamed { plan_id, .. } => {
                named.insert(plan_id);
            }
            EventKind::ConsentGiven { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.insert(custody_holder);
            }
            EventKind::ConsentWithdrawn { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.remove(custody_holder);
            }
            _ => {}
        }
    }
    // Per custody holder: the ids of the holistic plans in force that cover them.
    let in_force = |holder: &PartyId| -> Vec<&str> {
        holistic_plans
            .iter()
            .filter(|(_, covers)| covers.contains(holder) && covers.iter().all(|c| consenting.contains(c)))
            .map(|(id, _)| *id)
            .collect()
    };
    let mut advisories = Vec::new();
    for holder in facts.custody_holders {
        let sectors: BTreeSet<&'static str> = contacts
            .iter()
            .filter(|(_, custody_holder, _)| *custody_holder == holder)
            .map(|(_, _, sector)| sector_name(*sector))
            .collect();
        let plans = in_force(holder);
        if sectors.len() < 2 || plans.iter().any(|id| named.contains(id)) {
            continue;
        }
        let list = sectors.into_iter().collect::<Vec<_>>().join(", ");
        let why = if !plans.is_empty() {
            "the holistic plan in force names no coordinator"
        } else {
            "no holistic plan in force coordinates them"
        };
        advisories.push(Advisory {
            id: AdvisoryId::NoCoordinatorForSeveralSectors,
            custody_holder: Some(holder.clone()),
            message: format!(
                "{holder} is in contact with several sectors ({list}) and {why}; name who coordinates, so that \
                 measures do not pull in different directions and coordinating does not fall to the parent"
            ),
        });
    }
    advisories
}

/// A sector's name for messages.
fn sector_name(sector: Sector) -> &'static str {
    match sector {
        Sector::Jobcentre => "jobcentre",
        Sector::Psychiatry => "psychiatry",
        Sector::AddictionTreatment => "addiction treatment",
        Sector::Health => "health care",
        Sector::Other => "other",
    }
}
