//! One rule of the law: the duties it finds in a case's facts, dated
//! against a day and worded as obligations.

use bro_domain::Date;

use crate::facts::{Facts, Finding, Outcome};
use crate::{Obligation, RuleId, Status};

/// One rule of a rule set: its id, wording, citation, and the function that
/// finds its duties in a case.
pub(crate) struct Rule {
    /// Stable id.
    pub id: RuleId,
    /// The provision, e.g. `barnets lov § 75`.
    pub cites: &'static str,
    /// What has to be done, in a few words.
    pub duty: &'static str,
    /// Finds every duty of this rule in the case.
    pub find: fn(&Facts<'_>) -> Vec<Finding>,
}

impl Rule {
    /// Dates a finding against `today` and words it.
    pub(crate) fn obligation(&self, finding: Finding, today: Date) -> Obligation {
        let (status, met) = match finding.outcome {
            Outcome::Met { on, index } => (Status::Met, Some((on, index))),
            Outcome::Violated { late } => (Status::Violated, late),
            // On the due date itself the duty is still open.
            Outcome::Pending if finding.due.is_some_and(|due| today > due) => (Status::Overdue, None),
            Outcome::Pending => (Status::Open, None),
        };
        Obligation {
            rule: self.id,
            custody_holder: finding.custody_holder,
            trigger: finding.trigger,
            triggered_by: finding.triggered_by,
            status,
            due: finding.due,
            met_on: met.map(|(on, _)| on),
            met_by: met.map(|(_, index)| index),
            reopened_on: finding.reopened_on,
            duty: self.duty,
            cites: self.cites,
        }
    }
}
