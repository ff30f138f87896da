//! §§ 77–78: the parent action plan, its omission, and the holistic plan
//! that may replace it with the parents' consent.

use std::collections::HashSet;

use bro_domain::{EventKind, PartyId, PlacementBasis, PlanKind, RecommendationReason};

use crate::facts::{BL78_SCOPE, Facts, Finding, Outcome, Positioned, gives_consent};

/// `bl77` — barnets lov § 77, stk. 1: when support under § 75 or § 76 is
/// initiated, the municipality must prepare a parent action plan.
///
/// One case-level duty, triggered by the first `support_started` (any
/// measure: the support person or a § 76 measure), due that date, met as
/// described on [`plan_timeline`].
pub(crate) fn parent_plan(facts: &Facts<'_>) -> Vec<Finding> {
    let timeline = plan_timeline(facts);
    facts
        .iter()
        .find(|event| matches!(event.kind, EventKind::SupportStarted { .. }))
        .map(|start| timeline.finding(start))
        .into_iter()
        .collect()
}

/// `bl77-2` — barnets lov § 77, stk. 2: on a recommendation to place without
/// consent (§ 47) a child who has siblings under 18 in the household, where
/// the placement is due to neglect or other serious social conditions with
/// the parents, the plan must be prepared even if the parents have declined
/// support.
///
/// One case-level duty per such recommendation, due its date, met as `bl77`.
pub(crate) fn parent_plan_on_recommendation(facts: &Facts<'_>) -> Vec<Finding> {
    let timeline = plan_timeline(facts);
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
        .map(|recommendation| timeline.finding(recommendation))
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

/// Walks the events and records when a parent plan is in place. A plan is in
/// place once:
///
/// - a `bl77` plan is prepared, or a plan is omitted with reasons (§ 77
///   stk. 3; blank reasons are no reasons), which stays in place; or
/// - a `bl78` holistic plan exists and every custody holder it covers has a
///   `bl78` consent that holds (§ 78), for as long as that lasts.
///
/// When a holistic plan comes into force it replaces the separate plan, so
/// when its consent is later withdrawn the case has no plan again until a
/// new one is prepared, an omission with reasons is recorded, or consent is
/// restored ("a separate plan again", the `bl77` reopened row).
fn plan_timeline<'a>(facts: &Facts<'a>) -> PlanTimeline<'a> {
    let mut stretches = Vec::new();
    let mut separate_plan = false;
    let mut holistic_in_force = false;
    let mut holistic_plans: Vec<&'a [PartyId]> = Vec::new();
    let mut consenting: HashSet<&'a PartyId> = HashSet::new();
    let mut current: Option<Positioned<'a>> = None;
    for event in facts.iter() {
        match event.kind {
            EventKind::PlanPrepared { kind: PlanKind::Bl77, .. } => separate_plan = true,
            EventKind::PlanOmitted { reasons } if !reasons.trim().is_empty() => separate_plan = true,
            EventKind::PlanPrepared { kind: PlanKind::Bl78, covers, .. } => holistic_plans.push(covers),
            EventKind::ConsentGiven { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.insert(custody_holder);
            }
            EventKind::ConsentWithdrawn { custody_holder, scope } if scope.as_str() == BL78_SCOPE => {
                consenting.remove(custody_holder);
            }
            _ => continue,
        }
        let now_in_force = holistic_plans
            .iter()
            .any(|covers| !covers.is_empty() && covers.iter().all(|holder| consenting.contains(holder)));
        if now_in_force && !holistic_in_force {
            // The holistic plan replaces the separate one from here on.
            separate_plan = false;
        }
        holistic_in_force = now_in_force;
        let in_place = separate_plan || holistic_in_force;
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
