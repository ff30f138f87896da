//! Barnets lov as in force from 1 January 2024: the obligations table of
//! `shared/domain.md` with its revision 2 amendments (an offer made in
//! connection with a placement counts before its start; a § 78 plan replaces
//! the parent plan only for the parents it covers; a parent plan per
//! placement; § 79 stk. 3 only after a revision; the new duties `bl100-1` and
//! `bl132`), one function per rule, each citing its paragraph.
//!
//! The rules read the case's events only; `case_opened` and the sector
//! contact events are ignored by the obligations (the advisories read the
//! sector contacts).

pub(crate) mod advisories;
mod moves;
mod periods;
mod plans;
mod revisions;
mod support;
mod support_person;

#[cfg(test)]
mod tests;

use bro_domain::Date;

use crate::RuleId;
use crate::rule::Rule;

/// The day barnets lov replaced serviceloven's rules on children.
pub(crate) const IN_FORCE_FROM: Date = match Date::from_ymd_opt(2024, 1, 1) {
    Some(day) => day,
    None => panic!("2024-01-01 is a date"),
};

/// The rules, in the order of the obligations table.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        id: RuleId::Bl75,
        cites: "barnets lov § 75",
        duty: "decide on offering the custody holder a support person",
        find: support_person::offer,
    },
    Rule {
        id: RuleId::Bl75Approval,
        cites: "barnets lov § 75",
        duty: "approve or refuse the support person the custody holder chose",
        find: support_person::approval,
    },
    Rule {
        id: RuleId::Bl76,
        cites: "barnets lov § 76",
        duty: "decide on support to the parents during the placement",
        find: support::decision,
    },
    Rule {
        id: RuleId::Bl32Consent,
        cites: "barnets lov § 32, stk. 2",
        duty: "hold the custody holder's consent when granting a § 32 stk. 1 measure",
        find: support::consent_at_grant,
    },
    Rule {
        id: RuleId::Bl77,
        cites: "barnets lov § 77, stk. 1",
        duty: "prepare a parent action plan",
        find: plans::parent_plan,
    },
    Rule {
        id: RuleId::Bl77Stk2,
        cites: "barnets lov § 77, stk. 2",
        duty: "prepare a parent action plan even if the parents decline support",
        find: plans::parent_plan_on_recommendation,
    },
    Rule {
        id: RuleId::Bl78Consent,
        cites: "barnets lov § 78",
        duty: "record the custody holder's consent to the holistic plan replacing the parent plan",
        find: plans::holistic_plan_consent,
    },
    Rule {
        id: RuleId::Bl79Stk2,
        cites: "barnets lov § 79, stk. 2",
        duty: "offer a revision of the plan within 3 months of the placement",
        find: revisions::offer_within_three_months,
    },
    Rule {
        id: RuleId::Bl79Stk3,
        cites: "barnets lov § 79, stk. 3",
        duty: "assess whether to offer a revision of the plan",
        find: revisions::assess_within_twelve_months,
    },
    Rule {
        id: RuleId::Bl100Stk1,
        cites: "barnets lov § 100",
        duty: "decide on a homecoming period when the placement ends in a homecoming",
        find: periods::homecoming_decision,
    },
    Rule {
        id: RuleId::Bl100Stk3,
        cites: "barnets lov § 100, stk. 3",
        duty: "end the homecoming period within 6 months",
        find: periods::homecoming_period,
    },
    Rule {
        id: RuleId::Bl103Stk2,
        cites: "barnets lov § 103, stk. 2",
        duty: "resume contact suspended at the child's request within 8 weeks",
        find: periods::contact_suspension,
    },
    Rule {
        id: RuleId::Bl132,
        cites: "barnets lov § 132 (\"uden ugrundet ophold\": due in 14 days, bro's convention)",
        duty: "notify the new municipality and send the case material with a summary of the assessments",
        find: moves::notify_new_municipality,
    },
];
