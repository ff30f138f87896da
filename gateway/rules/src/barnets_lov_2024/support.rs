//! § 76 decisions on support to the parents, and the § 32 stk. 2 consent that
//! a § 32 stk. 1 measure needs.

use bro_domain::{DecisionOutcome, EventKind};

use crate::facts::{BL32_SCOPE, Facts, Finding, Outcome};

/// `bl76` — barnets lov § 76: during the placement the municipality must
/// decide on support to the parents (under § 32 stk. 1, § 75 or other
/// legislation); the recommendations add that it should always assess
/// whether the parents need more than a support person.
///
/// One case-level duty per placement start, due the start date, met by the
/// first `support_decided` (granted or refused, for any custody holder)
/// dated on or after the start. A late decision still meets it.
pub(crate) fn decision(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for start in facts.iter() {
        if !matches!(start.kind, EventKind::PlacementStarted { .. }) {
            continue;
        }
        let decided = facts.on_or_after(start.on).find(|event| matches!(event.kind, EventKind::SupportDecided { .. }));
        let outcome = decided.map_or(Outcome::Pending, Outcome::met_by);
        findings.push(Finding::new(start, None, Some(start.on), outcome));
    }
    findings
}

/// `bl32-consent` — barnets lov § 32, stk. 2: a decision under § 32 stk. 1
/// (nr. 2, 3, 5 and 8 for parents) requires the custody holder's consent.
///
/// One duty per grant of such a measure, owed to the custody holder it is
/// granted for and due the grant date. Met when that custody holder's consent
/// in scope `bl32` holds at the grant: given on an earlier day, or on the same
/// day and listed before the grant, and not withdrawn in between; `met_on` is
/// the date of that consent. Otherwise `violated`: a consent given after the
/// grant does not cure it. A withdrawal after the grant does not undo it
/// either: the grant was lawful when made.
pub(crate) fn consent_at_grant(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for grant in facts.iter() {
        let EventKind::SupportDecided { custody_holder, measure, outcome: DecisionOutcome::Granted } = grant.kind
        else {
            continue;
        };
        if !measure.needs_bl32_consent() {
            continue;
        }
        let outcome = match facts.consent_holding_before(custody_holder, BL32_SCOPE, grant.position) {
            Some(consent) => Outcome::met_by(consent),
            None => Outcome::Violated { late: None },
        };
        findings.push(Finding::new(grant, Some(custody_holder.clone()), Some(grant.on), outcome));
    }
    findings
}
