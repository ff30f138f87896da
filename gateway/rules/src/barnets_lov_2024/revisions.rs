//! § 79: revising the parent plan — the offer within 3 months of the
//! placement, and the assessment at most every 12 months once a revision has
//! been made.

use bro_domain::EventKind;

use crate::dates::add_months;
use crate::facts::{Facts, Finding, Outcome, placement_windows};

/// `bl79-2` — barnets lov § 79, stk. 2: no later than 3 months after the
/// child was placed, the municipality must offer a revision of the parent
/// plan or of the relevant parts of the holistic plan.
///
/// One case-level duty per placement that has a plan (`bl77` or `bl78`): one
/// prepared while the placement is in progress, or one prepared for it
/// before it started (e.g. on a § 77 stk. 2 recommendation), after the
/// previous placement ended — a plan of an earlier placement is not this
/// placement's plan (revision 2, amendment 3). The trigger is the first plan
/// prepared in the placement, or the placement start when a plan already
/// existed; a plan prepared after the placement ended does not count. Due the
/// placement start + 3 calendar months (clamped to the month's end); met by
/// the first `revision_offered` dated on or after the trigger, a late offer
/// meeting it on its date.
pub(crate) fn offer_within_three_months(facts: &Facts<'_>) -> Vec<Finding> {
    let is_plan = |kind: &EventKind| matches!(kind, EventKind::PlanPrepared { .. });
    let mut findings = Vec::new();
    for start in facts.iter() {
        if !matches!(start.kind, EventKind::PlacementStarted { .. }) {
            continue;
        }
        // The placement lasts until it ends (or, defensively, until another starts).
        let end = facts
            .after(start.position)
            .find(|event| matches!(event.kind, EventKind::PlacementEnded { .. } | EventKind::PlacementStarted { .. }))
            .map_or(facts.events.len(), |event| event.position);
        // A plan prepared for this placement before it started (after the previous one
        // ended): a plan of an earlier placement is not this one's (revision 2, amendment 3).
        let window_start = placement_windows(facts)
            .into_iter()
            .find(|window| (window.start..window.end).contains(&start.position))
            .map_or(0, |window| window.start);
        let plan_before = facts.iter().take(start.position).skip(window_start).any(|event| is_plan(event.kind));
        let trigger = if plan_before {
            Some(start)
        } else {
            facts.iter().take(end).skip(start.position).find(|event| is_plan(event.kind))
        };
        let Some(trigger) = trigger else { continue };
        let offered = facts.on_or_after(trigger.on).find(|event| matches!(event.kind, EventKind::RevisionOffered));
        let outcome = offered.map_or(Outcome::Pending, Outcome::met_by);
        findings.push(Finding::new(trigger, None, Some(add_months(start.on, 3)), outcome));
    }
    findings
}

/// `bl79-3` — barnets lov § 79, stk. 3: "har kommunalbestyrelsen foretaget en
/// revision efter stk. 1 eller 2", it must assess at intervals of at most 12
/// months whether to offer a revision.
///
/// The first interval starts at the first `revision_made`; after that, each
/// `revision_made` and each `revision_assessed` starts the next. One
/// case-level duty per such step, due its date + 12 calendar months, met by
/// the next step after it. An assessment recorded before any revision starts
/// nothing (revision 2, amendment 4).
pub(crate) fn assess_within_twelve_months(facts: &Facts<'_>) -> Vec<Finding> {
    let is_step = |kind: &EventKind| matches!(kind, EventKind::RevisionMade | EventKind::RevisionAssessed);
    let Some(first_revision) = facts.iter().find(|event| matches!(event.kind, EventKind::RevisionMade)) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for step in facts.iter().skip(first_revision.position).filter(|event| is_step(event.kind)) {
        let next = facts.after(step.position).find(|event| is_step(event.kind));
        let outcome = next.map_or(Outcome::Pending, Outcome::met_by);
        findings.push(Finding::new(step, None, Some(add_months(step.on, 12)), outcome));
    }
    findings
}
