//! Periods with a legal maximum — the § 100 stk. 3 homecoming period and the
//! § 103 stk. 2 suspension of contact at the child's request — and the
//! § 100 decision on whether a homecoming needs a homecoming period at all.

use bro_domain::{Date, EventKind, PlacementBasis, PlacementEndReason};

use crate::dates::{add_months, add_weeks};
use crate::facts::{Facts, Finding, Outcome};

/// `bl100-3` — barnets lov § 100, stk. 3: a homecoming period lasts up to 6
/// months.
///
/// One case-level duty per `homecoming_period_started`, due the start + 6
/// calendar months, met by a `homecoming_period_ended` on or before the due
/// date; an end recorded later makes it `violated`.
pub(crate) fn homecoming_period(facts: &Facts<'_>) -> Vec<Finding> {
    bounded_periods(
        facts,
        |kind| matches!(kind, EventKind::HomecomingPeriodStarted),
        |kind| matches!(kind, EventKind::HomecomingPeriodEnded),
        |start| add_months(start, 6),
    )
}

/// `bl100-1` — barnets lov § 100: when a placement under § 46 or § 47 ends
/// in a homecoming, the municipality must have decided on a homecoming
/// period, unless special circumstances made one unnecessary (seed 002).
///
/// One case-level duty per such placement end, due the end's date. Met by a
/// `homecoming_period_started` during the placement, or a
/// `homecoming_period_waived` with reasons (blank reasons are none) recorded
/// in the placement and dated on or before its end (on the day of the end,
/// before or after it); `violated` if the placement ended with neither (the
/// homecoming has happened; nothing later can cure it).
pub(crate) fn homecoming_decision(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut placement = None;
    for event in facts.iter() {
        match event.kind {
            EventKind::PlacementStarted { basis, .. } => placement = Some((event, *basis)),
            EventKind::PlacementEnded { reason: PlacementEndReason::Homecoming } => {
                let Some((start, basis)) = placement.take() else { continue };
                if !matches!(basis, PlacementBasis::Bl46 | PlacementBasis::Bl47) {
                    continue;
                }
                // A waiver counts by its date (on the day of the end, in any order that
                // day), until the next placement starts.
                let next_start = facts
                    .after(event.position)
                    .find(|e| matches!(e.kind, EventKind::PlacementStarted { .. }))
                    .map_or(facts.events.len(), |e| e.position);
                let decided = facts.iter().take(next_start).skip(start.position + 1).find(|e| match e.kind {
                    EventKind::HomecomingPeriodStarted => e.position < event.position,
                    EventKind::HomecomingPeriodWaived { reasons } => !reasons.trim().is_empty() && e.on <= event.on,
                    _ => false,
                });
                let outcome = decided.map_or(Outcome::Violated { late: None }, Outcome::met_by);
                findings.push(Finding::new(event, None, Some(event.on), outcome));
            }
            EventKind::PlacementEnded { .. } => placement = None,
            _ => {}
        }
    }
    findings
}

/// `bl103-2` — barnets lov § 103, stk. 2: contact with the parents may be
/// suspended at the child's request for up to 8 weeks.
///
/// One case-level duty per `contact_suspended`, due the start + 56 days, met
/// by a `contact_resumed` on or before the due date; a later resumption makes
/// it `violated`.
pub(crate) fn contact_suspension(facts: &Facts<'_>) -> Vec<Finding> {
    bounded_periods(
        facts,
        |kind| matches!(kind, EventKind::ContactSuspended),
        |kind| matches!(kind, EventKind::ContactResumed),
        |start| add_weeks(start, 8),
    )
}

/// A duty per period that `starts`, due `limit(start)`, met by the next event
/// that `ends` it by then and violated by a later one.
fn bounded_periods(
    facts: &Facts<'_>,
    starts: fn(&EventKind) -> bool,
    ends: fn(&EventKind) -> bool,
    limit: fn(Date) -> Date,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for start in facts.iter().filter(|event| starts(event.kind)) {
        let due = limit(start.on);
        let outcome = match facts.after(start.position).find(|event| ends(event.kind)) {
            Some(end) if end.on <= due => Outcome::met_by(end),
            Some(end) => Outcome::Violated { late: Some((end.on, end.index)) },
            None => Outcome::Pending,
        };
        findings.push(Finding::new(start, None, Some(due), outcome));
    }
    findings
}
