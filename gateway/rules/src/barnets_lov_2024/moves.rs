//! § 132: when a custody holder moves to another municipality during a
//! placement, the placing municipality notifies the new one and sends the
//! necessary case material, with a summary of the relevant assessments.

use bro_domain::EventKind;

use crate::dates::add_days;
use crate::facts::{Facts, Finding, Outcome};

/// Days within which the material goes: the law says "uden ugrundet
/// ophold" (without undue delay); 14 days is bro's convention, stated in
/// the rule's citation.
const NOTIFY_WITHIN_DAYS: u32 = 14;

/// `bl132` — barnets lov § 132: a custody holder's move to another
/// municipality while a placement is in progress obliges the municipality
/// to notify the new municipality and send the case material.
///
/// One duty per such move, owed for the custody holder who moved, due the
/// move + 14 days. Met by the first `case_handover_sent` to that
/// municipality dated on or after the move (a late one still meets it, on
/// its date). A move while no placement is in progress creates no duty.
pub(crate) fn notify_new_municipality(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut placed = false;
    for event in facts.iter() {
        match event.kind {
            EventKind::PlacementStarted { .. } => placed = true,
            EventKind::PlacementEnded { .. } => placed = false,
            EventKind::CustodyHolderMoved { custody_holder, to_municipality } if placed => {
                let sent = facts.on_or_after(event.on).find(
                    |e| matches!(e.kind, EventKind::CaseHandoverSent { to_municipality: to } if to == to_municipality),
                );
                let outcome = sent.map_or(Outcome::Pending, Outcome::met_by);
                let due = add_days(event.on, NOTIFY_WITHIN_DAYS);
                findings.push(Finding::new(event, Some(custody_holder.clone()), Some(due), outcome));
            }
            _ => {}
        }
    }
    findings
}
