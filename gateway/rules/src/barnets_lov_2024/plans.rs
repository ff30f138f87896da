//! §§ 77–78: the parent action plan, its omission, and the holistic plan
//! that may replace it with the parents' consent.

use std::collections::HashSet;

use bro_domain::{EventKind, PartyId, PlacementBasis, PlanKind, RecommendationReason};

use crate::facts::{BL78_SCOPE, Facts, Finding, Outcome, Positioned, gives_consent};

/// `bl77` — barnets lov § 77, stk. 1: when support under § 75 or § 76 is
/// initiated, the municipality must prepare a parent action plan.
///
/// One case-level duty per placement, triggered by the first
/// `support_started` (any measure: the support person or a § 76 measure) in
/// that placement's part of the case ([`placement_windows`]: a new placement
/// after a homecoming owes a plan again, revision 2, amendment 3), due that
/// date, met as described on [`plan_timeline`] by a plan of the same part.
pub(crate) fn parent_plan(facts: &Facts<'_>) -> Vec<Finding> {
    placement_windows(facts)
        .into_iter()
        .filter(|window| window.placed)
        .filter_map(|window| {
            let start = facts
                .iter()
                .take(window.end)
                .skip(window.start)
                .find(|event| matches!(event.kind, EventKind::SupportStarted { .. }))?;
            Some(plan_timeline(facts, &window).finding(start))
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

/// One placement's part of the case: from just after the previous placement
/// ended (or the first event) to the end of this placement, its end
/// included (or the last event). Plans, support and recommendations belong
/// to the part they fall in.
struct Window {
    /// First position.
    start: usize,
    /// One past the last position.
    end: usize,
    /// Whether a placement starts in it (a case that was never placed is one
    /// part, and counts as placed: its support owes a plan all the same).
    placed: bool,
}

/// The case cut into placements' parts.
fn placement_windows(facts: &Facts<'_>) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut start = 0;
    let mut placed = false;
    for event in facts.iter() {
        match event.kind {
            EventKind::PlacementStarted { .. } => placed = true,
            EventKind::PlacementEnded { .. } => {
                windows.push(Window { start, end: event.position + 1, placed });
                start = event.position + 1;
                placed = false;
            }
            _ => {}
        }
    }
    let never_placed = windows.is_empty() && !placed;
    if start < facts.events.len() || windows.is_empty() {
        windows.push(Window { start, end: facts.events.len(), placed: placed || never_placed });
    }
    windows
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
/// count; consents given earlier do). A plan is in place once:
///
/// - a `bl77` plan is prepared, or a plan is omitted with reasons (§ 77
///   stk. 3; blank reasons are no reasons), which stays in place; or
/// - a `bl78` holistic plan exists whose covered custody holders all have a
///   `bl78` consent that holds, and which covers every custody holder whose
///   support under §§ 75–76 has started in the window (§ 78 allows a plan
///   for one parent, but it replaces the separate plan only for the parent
///   it covers: revision 2, amendment 2), for as long as that lasts.
///
/// When a holistic plan comes to suffice it replaces the separate plan, so
/// when its consent is later withdrawn, or support starts for a parent it
/// does not cover, the case has no plan again until a new one is prepared, an
/// omission with reasons is recorded, or the holistic plan suffices again
/// ("a separate plan again", the `bl77` reopened row).
fn plan_timeline<'a>(facts: &Facts<'a>, window: &Window) -> PlanTimeline<'a> {
    let mut stretches = Vec::new();
    let mut separate_plan = false;
    let mut holistic_suffices = false;
    let mut holistic_plans: Vec<&'a [PartyId]> = Vec::new();
    let mut consenting: HashSet<&'a PartyId> = HashSet::new();
    let mut supported: HashSet<&'a PartyId> = HashSet::new();
    let mut current: Option<Positioned<'a>> = None;
    for event in facts.iter().take(window.end) {
        let in_window = event.position >= window.start;
        match event.kind {
            EventKind::PlanPrepared { kind: PlanKind::Bl77, .. } if in_window => separate_plan = true,
            EventKind::PlanOmitted { reasons } if in_window && !reasons.trim().is_empty() => separate_plan = true,
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
        let now_suffices = holistic_plans.iter().any(|covers| {
            !covers.is_empty()
                && covers.iter().all(|holder| consenting.contains(holder))
                && supported.iter().all(|holder| covers.contains(holder))
        });
        if now_suffices && !holistic_suffices {
            // The holistic plan replaces the separate one from here on.
            separate_plan = false;
        }
        holistic_suffices = now_suffices;
        let in_place = separate_plan || holistic_suffices;
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
