//! §§ 77–78: the parent action plan, its omission, and the holistic plan
//! that may replace it with the parents' consent.

use std::collections::HashSet;

use bro_domain::{EventKind, PartyId, PlacementBasis, PlanKind, RecommendationReason};

use crate::facts::{BL78_SCOPE, Facts, Finding, Outcome, Positioned, Window, gives_consent, placement_windows};

/// `bl77` — barnets lov § 77, stk. 1: when support under § 75 or § 76 is
/// initiated, the municipality must prepare a parent action plan.
///
/// One case-level duty per placement, triggered by the first
/// `support_started` (any measure: the support person or a § 76 measure) in
/// that placement's part of the case ([`placement_windows`](crate::facts::placement_windows): a new placement
/// after a homecoming owes a plan again, revision 2, amendment 3) — or by
/// the placement's start, when the support started before it — due that
/// date, met as described on [`plan_timeline`] by a plan of the same part.
pub(crate) fn parent_plan(facts: &Facts<'_>) -> Vec<Finding> {
    placement_windows(facts)
        .into_iter()
        .filter(|window| window.placed)
        .filter_map(|window| {
            let in_window = || facts.iter().take(window.end).skip(window.start);
            let support = in_window().find(|event| matches!(event.kind, EventKind::SupportStarted { .. }))?;
            // Support started before the placement it belongs to: the duty arises with the placement.
            let placed = in_window().find(|event| matches!(event.kind, EventKind::PlacementStarted { .. }));
            let trigger = placed.filter(|start| start.position > support.position).unwrap_or(support);
            Some(plan_timeline(facts, &window).finding(trigger))
        })
        .collect()
}

/// `bl77-2` — barnets lov § 77, stk. 2: on a recommendation to place without
/// consent (§ 47) a child who has siblings under 18 in the household, where
/// the placement is due to neglect or other serious social conditions with
/// the parents, the plan must be prepared even if the parents have declined
/// support.
///
/// One case-level duty per such recommendation, due its date, met as `bl77`
/// by a plan of the recommendation's placement.
pub(crate) fn parent_plan_on_recommendation(facts: &Facts<'_>) -> Vec<Finding> {
    let windows = placement_windows(facts);
    facts
        .iter()
        .filter(|event| match event.kind {
            EventKind::PlacementRecommended { basis, siblings_under_18_in_household, reason } => {
                *basis == PlacementBasis::Bl47
                    && *siblings_under_18_in_household
                    && matches!(reason, RecommendationReason::Neglect | RecommendationReason::SeriousSocialConditions)
            }
            _ => false,
        })
        .filter_map(|recommendation| {
            let window = windows.iter().find(|w| (w.start..w.end).contains(&recommendation.position))?;
            Some(plan_timeline(facts, window).finding(recommendation))
        })
        .collect()
}

/// `bl78-consent` — barnets lov § 78: the holistic plan may replace the
/// parent action plan only with the consent of the parents it covers.
///
/// One duty per `bl78` plan and covered custody holder, due the plan date.
/// Met by that custody holder's consent in scope `bl78`: one that holds when
/// the plan is prepared, or else the first given after it (a late consent
/// counts, from its date). A later withdrawal does not undo it (the consent
/// was recorded; shared scenario 03): the withdrawal reopens `bl77` instead.
pub(crate) fn holistic_plan_consent(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for plan in facts.iter() {
        let EventKind::PlanPrepared { kind: PlanKind::Bl78, covers, .. } = plan.kind else {
            continue;
        };
        for holder in covers {
            let consent = facts
                .consent_holding_before(holder, BL78_SCOPE, plan.position)
                .or_else(|| facts.after(plan.position).find(|event| gives_consent(event.kind, holder, BL78_SCOPE)));
            let outcome = consent.map_or(Outcome::Pending, Outcome::met_by);
            findings.push(Finding::new(plan, Some(holder.clone()), Some(plan.on), outcome));
        }
    }
    findings
}

/// A stretch of the case during which a parent plan is in place: from the
/// event that put it in place to the event (a withdrawn `bl78` consent) that
/// undid it, if any.
struct Satisfied<'a> {
    /// The event that put a plan in place.
    from: Positioned<'a>,
    /// The event that undid it.
    until: Option<Positioned<'a>>,
}

/// When the case had a parent plan in place, as `bl77` and `bl77-2` count it.
struct PlanTimeline<'a> {
    stretches: Vec<Satisfied<'a>>,
}

/// Walks the events up to the end of `window` and records when a parent
/// plan of that window is in place (plans of earlier placements do not
/// count; consents given earlier do). A plan is in place once some plan
/// exists and every custody holder whose support under §§ 75–76 has started
/// in the window has one:
///
/// - a `bl77` plan, or a plan omitted with reasons (§ 77 stk. 3; blank
///   reasons are no reasons), is every custody holder's separate plan; or
/// - a `bl78` holistic plan whose covered custody holders all have a `bl78`
///   consent that holds (§ 78) is the plan of the parents it covers, for as
///   long as that lasts.
///
/// § 78 allows a holistic plan for one parent or both, and it replaces the
/// separate plan only for the parents it covers (revision 2, amendment 2):
/// when a holistic plan comes into force for a parent, that parent's
/// separate plan is gone, so when the consent is later withdrawn the parent
/// has no plan again until a new one is prepared, an omission with reasons
/// is recorded, or the holistic plan is in force again ("a separate plan
/// again", the `bl77` reopened row); the other parent keeps the separate
/// plan.
fn plan_timeline<'a>(facts: &Facts<'a>, window: &Window) -> PlanTimeline<'a> {
    let mut stretches = Vec::new();
    let mut holistic_plans: Vec<&'a [PartyId]> = Vec::new();
    let mut consenting: HashSet<&'a PartyId> = HashSet::new();
    let mut supported: HashSet<&'a PartyId> = HashSet::new();
    // The parents a separate plan is in place for, and those a holistic plan in force covers.
    let mut separate: HashSet<&'a PartyId> = HashSet::new();
    let mut covered: HashSet<&'a PartyId> = HashSet::new();
    let mut current: Option<Positioned<'a>> = None;
    for event in facts.iter().take(window.end) {
        let in_window = event.position >= window.start;
        match event.kind {
            EventKind::PlanPrepared { kind: PlanKind::Bl77, .. } if in_window => {
                separate = facts.custody_holders.iter().collect();
            }
            EventKind::PlanOmitted { reasons } if in_window && !reasons.trim().is_empty() => {
                separate = facts.custody_holders.iter().collect();
            }
            EventKind::PlanPrepared { kind: PlanKind::Bl78, covers, .. } if in_window => holistic_plans.push(covers),
            EventKind::SupportStarted { custody_holder, .. } if in_window => {
                supported.insert(custody_holder);
            }
            EventKind::ConsentGiven { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.insert(custody_holder);
            }
            EventKind::ConsentWithdrawn { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.remove(custody_holder);
            }
            _ => continue,
        }
        let now_covered: HashSet<&'a PartyId> = holistic_plans
            .iter()
            .filter(|covers| !covers.is_empty() && covers.iter().all(|holder| consenting.contains(holder)))
            .flat_map(|covers| covers.iter())
            .collect();
        // A holistic plan coming into force replaces the separate plan of the parents it covers.
        for holder in now_covered.difference(&covered) {
            separate.remove(holder);
        }
        covered = now_covered;
        let any_plan = !separate.is_empty() || !covered.is_empty();
        let in_place = any_plan && supported.iter().all(|holder| separate.contains(holder) || covered.contains(holder));
        match (current, in_place) {
            (None, true) => current = Some(event),
            (Some(from), false) => {
                stretches.push(Satisfied { from, until: Some(event) });
                current = None;
            }
            _ => {}
        }
    }
    if let Some(from) = current {
        stretches.push(Satisfied { from, until: None });
    }
    PlanTimeline { stretches }
}

impl PlanTimeline<'_> {
    /// The case-level plan duty triggered by `trigger`, due its date.
    ///
    /// Met if a plan is in place at the end, `met_on` being when that stretch
    /// began (which may be before the trigger: a plan already in place meets
    /// the duty). If a stretch covering or following the trigger was undone,
    /// the duty reopened: its due date becomes the latest undoing date.
    fn finding(&self, trigger: Positioned<'_>) -> Finding {
        let mut finding = Finding::new(trigger, None, Some(trigger.on), Outcome::Pending);
        for stretch in &self.stretches {
            match stretch.until {
                Some(undone) if undone.position > trigger.position => {
                    finding.due = Some(undone.on);
                    finding.reopened_on = Some(undone.on);
                }
                Some(_) => {}
                None => finding.outcome = Outcome::met_by(stretch.from),
            }
        }
        finding
    }
}
