//! § 75: the support person. The offer on each placement, and the
//! municipality's approval of the person the parents choose.

use bro_domain::{EventKind, PlacementBasis};

use crate::facts::{Facts, Finding, Outcome};

/// Whether a placement on `basis` calls for a support-person decision: § 75
/// names placements under § 46 (with consent), § 47 (without consent) and
/// § 14 of the youth-crime act.
fn calls_for_support_person(basis: PlacementBasis) -> bool {
    match basis {
        PlacementBasis::Bl46 | PlacementBasis::Bl47 | PlacementBasis::Lbu14 => true,
    }
}

/// `bl75` — barnets lov § 75: when a placement under § 46, § 47 or LBU § 14
/// starts, the municipality must decide on offering each custody holder a
/// support person.
///
/// One duty per placement start and custody holder, due the start date. The
/// offer is made "i forbindelse med" the placement (seed 002: municipalities
/// offer a support person from when they start considering placement), so it
/// is met by the first `support_person_offered` to that custody holder made
/// after the previous placement of the case ended (at any time, for the first
/// placement) and before this placement ends: before, on or after the start,
/// with its own date as `met_on` (revision 2, amendment 1). A late offer
/// still meets it, on its date.
pub(crate) fn offer(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Where the current placement's window begins: just after the previous end.
    let mut window_start = 0;
    for start in facts.iter() {
        match start.kind {
            EventKind::PlacementEnded { .. } => window_start = start.position + 1,
            EventKind::PlacementStarted { basis, .. } if calls_for_support_person(*basis) => {
                let window_end = facts
                    .after(start.position)
                    .find(|event| matches!(event.kind, EventKind::PlacementEnded { .. }))
                    .map_or(facts.events.len(), |end| end.position);
                for holder in facts.custody_holders {
                    let offered = facts.iter().take(window_end).skip(window_start).find(|event| {
                        matches!(event.kind, EventKind::SupportPersonOffered { custody_holder } if custody_holder == holder)
                    });
                    let outcome = offered.map_or(Outcome::Pending, Outcome::met_by);
                    findings.push(Finding::new(start, Some(holder.clone()), Some(start.on), outcome));
                }
            }
            _ => {}
        }
    }
    findings
}

/// `bl75-approval` — barnets lov § 75: the parents choose the support person
/// and the municipality approves the choice.
///
/// One duty each time a custody holder chooses a support person, without a
/// deadline (open until decided), met by the next approval or refusal of that
/// custody holder's choice.
pub(crate) fn approval(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for chosen in facts.iter() {
        let EventKind::SupportPersonChosen { custody_holder: holder, .. } = chosen.kind else {
            continue;
        };
        let decided = facts.after(chosen.position).find(|event| match event.kind {
            EventKind::SupportPersonApproved { custody_holder }
            | EventKind::SupportPersonRefused { custody_holder, .. } => custody_holder == holder,
            _ => false,
        });
        let outcome = decided.map_or(Outcome::Pending, Outcome::met_by);
        findings.push(Finding::new(chosen, Some(holder.clone()), None, outcome));
    }
    findings
}
