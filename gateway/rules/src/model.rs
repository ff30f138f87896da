//! The engine's output: obligations with their statuses, and advisories.
//!
//! Everything here is plain data with stable string ids, so the command line,
//! the API and the scenario files can name rules, statuses and advisories the
//! same way.

use std::fmt;

use bro_domain::{Date, PartyId};

/// A rule's stable id, as in the obligations table of `shared/domain.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// `bl75`: decide on offering a support person (§ 75), per custody holder.
    Bl75,
    /// `bl75-approval`: approve or refuse the chosen support person (§ 75).
    Bl75Approval,
    /// `bl76`: decide on support to the parents (§ 76).
    Bl76,
    /// `bl32-consent`: consent holds when a § 32 stk. 1 measure is granted (§ 32 stk. 2).
    Bl32Consent,
    /// `bl77`: prepare the parent action plan (§ 77 stk. 1).
    Bl77,
    /// `bl77-2`: prepare the plan on a § 47 recommendation with siblings at home (§ 77 stk. 2).
    Bl77Stk2,
    /// `bl78-consent`: the covered custody holder consents to a holistic plan (§ 78).
    Bl78Consent,
    /// `bl79-2`: offer a revision within 3 months of the placement (§ 79 stk. 2).
    Bl79Stk2,
    /// `bl79-3`: assess within 12 months whether to offer a revision (§ 79 stk. 3).
    Bl79Stk3,
    /// `bl100-1`: decide on a homecoming period when a placement ends in a homecoming (§ 100).
    Bl100Stk1,
    /// `bl100-3`: a homecoming period ends within 6 months (§ 100 stk. 3).
    Bl100Stk3,
    /// `bl103-2`: contact suspended at the child's request resumes within 8 weeks (§ 103 stk. 2).
    Bl103Stk2,
    /// `bl132`: notify the new municipality when a custody holder moves (§ 132).
    Bl132,
}

impl RuleId {
    /// Every rule id, in the order of the obligations table.
    pub const ALL: [RuleId; 13] = [
        RuleId::Bl75,
        RuleId::Bl75Approval,
        RuleId::Bl76,
        RuleId::Bl32Consent,
        RuleId::Bl77,
        RuleId::Bl77Stk2,
        RuleId::Bl78Consent,
        RuleId::Bl79Stk2,
        RuleId::Bl79Stk3,
        RuleId::Bl100Stk1,
        RuleId::Bl100Stk3,
        RuleId::Bl103Stk2,
        RuleId::Bl132,
    ];

    /// The stable id, e.g. `bl77-2`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Bl75 => "bl75",
            RuleId::Bl75Approval => "bl75-approval",
            RuleId::Bl76 => "bl76",
            RuleId::Bl32Consent => "bl32-consent",
            RuleId::Bl77 => "bl77",
            RuleId::Bl77Stk2 => "bl77-2",
            RuleId::Bl78Consent => "bl78-consent",
            RuleId::Bl79Stk2 => "bl79-2",
            RuleId::Bl79Stk3 => "bl79-3",
            RuleId::Bl100Stk1 => "bl100-1",
            RuleId::Bl100Stk3 => "bl100-3",
            RuleId::Bl103Stk2 => "bl103-2",
            RuleId::Bl132 => "bl132",
        }
    }

    /// The rule with this stable id, if there is one.
    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|rule| rule.as_str() == id)
    }

    /// Whether the duty is owed to each custody holder separately (the
    /// obligation names one) rather than being a duty of the case.
    pub fn is_per_custody_holder(self) -> bool {
        matches!(self, RuleId::Bl75 | RuleId::Bl75Approval | RuleId::Bl32Consent | RuleId::Bl78Consent | RuleId::Bl132)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an obligation stands on the evaluation day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not met, and the due date has not passed (on the due date itself it is still open).
    Open,
    /// Not met, and the due date has passed.
    Overdue,
    /// Met, possibly late.
    Met,
    /// Breached in a way later events cannot cure.
    Violated,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [Status::Open, Status::Overdue, Status::Met, Status::Violated];

    /// The stable id: `open`, `overdue`, `met` or `violated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Overdue => "overdue",
            Status::Met => "met",
            Status::Violated => "violated",
        }
    }

    /// The status with this id, if there is one.
    pub fn parse(id: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == id)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One duty the municipality has in the case, and where it stands.
///
/// Event positions (`triggered_by`, `met_by`) are indexes into the `events`
/// slice given to [`crate::evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obligation {
    /// Which rule.
    pub rule: RuleId,
    /// The custody holder the duty is owed to; `None` for a duty of the case.
    pub custody_holder: Option<PartyId>,
    /// The date of the event that gave rise to the duty.
    pub trigger: Date,
    /// The index of that event.
    pub triggered_by: usize,
    /// Where it stands on the evaluation day.
    pub status: Status,
    /// The last day to meet it; `None` for duties without a deadline.
    pub due: Option<Date>,
    /// The date of the event that met it (or, for a violation, of the late
    /// event that showed the breach).
    pub met_on: Option<Date>,
    /// The index of that event.
    pub met_by: Option<usize>,
    /// When the duty was met and then undone (a consent withdrawn): the date
    /// it reopened, which is also its new due date.
    pub reopened_on: Option<Date>,
    /// What has to be done, in a few words.
    pub duty: &'static str,
    /// The provision, e.g. `barnets lov § 77, stk. 2`.
    pub cites: &'static str,
}

/// An advisory's stable id. Advisories come from the recommendations for
/// practice, not from the law: they point out good practice, never a breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdvisoryId {
    /// `repeat-support-person-offer`: the custody holder's latest answer to a
    /// support-person offer is a decline, and no offer has followed it.
    RepeatSupportPersonOffer,
    /// `goal-without-change-in-parents`: a plan goal does not describe the
    /// change to be seen in the parents.
    GoalWithoutChangeInParents,
    /// `goal-without-aim`: a plan goal does not say whether it aims at
    /// homecoming or at contact.
    GoalWithoutAim,
    /// `no-coordinator-for-several-sectors`: a custody holder is in contact
    /// with two or more other sectors and no holistic plan in force
    /// coordinates them.
    NoCoordinatorForSeveralSectors,
}

impl AdvisoryId {
    /// Every advisory id.
    pub const ALL: [AdvisoryId; 4] = [
        AdvisoryId::RepeatSupportPersonOffer,
        AdvisoryId::GoalWithoutChangeInParents,
        AdvisoryId::GoalWithoutAim,
        AdvisoryId::NoCoordinatorForSeveralSectors,
    ];

    /// The stable id, e.g. `repeat-support-person-offer`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdvisoryId::RepeatSupportPersonOffer => "repeat-support-person-offer",
            AdvisoryId::GoalWithoutChangeInParents => "goal-without-change-in-parents",
            AdvisoryId::GoalWithoutAim => "goal-without-aim",
            AdvisoryId::NoCoordinatorForSeveralSectors => "no-coordinator-for-several-sectors",
        }
    }

    /// The advisory with this id, if there is one.
    pub fn parse(id: &str) -> Option<AdvisoryId> {
        AdvisoryId::ALL.into_iter().find(|advisory| advisory.as_str() == id)
    }
}

impl fmt::Display for AdvisoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A piece of advice on practice, reported beside the obligations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advisory {
    /// Which advisory.
    pub id: AdvisoryId,
    /// The custody holder it concerns, if it concerns one.
    pub custody_holder: Option<PartyId>,
    /// What was seen and what to consider, in plain English.
    pub message: String,
}

/// The result of evaluating a case on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The id of the rule set applied, e.g. `barnets-lov-2024-01-01`.
    pub ruleset: &'static str,
    /// The evaluation day.
    pub today: Date,
    /// Every obligation, in order of trigger date, then of the rule table.
    pub obligations: Vec<Obligation>,
    /// Advisories, in a stable order.
    pub advisories: Vec<Advisory>,
    /// The first day after `today` on which the obligations or advisories
    /// may read differently without any new event: an event dated later
    /// takes effect, an open duty's due date passes, or another rule set
    /// comes into force. `None`: nothing changes until the case does. The
    /// evaluation is the same on every day from `today` until then.
    pub next_change: Option<Date>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for rule in RuleId::ALL {
            assert_eq!(RuleId::parse(rule.as_str()), Some(rule));
        }
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        for advisory in AdvisoryId::ALL {
            assert_eq!(AdvisoryId::parse(advisory.as_str()), Some(advisory));
        }
        assert_eq!(RuleId::parse("bl99"), None);
        assert_eq!(Status::parse("late"), None);
    }
}
