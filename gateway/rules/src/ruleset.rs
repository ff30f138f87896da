//! Rule sets: the law in force, chosen by date.
//!
//! Each version of the law is one [`RuleSet`]: its rules, the paragraph each
//! rule cites, and the advisories that go with it. [`RuleSet::in_force_on`]
//! picks the set for a day; [`crate::evaluate`] picks it for the evaluation
//! day and names it in the result, so a report always says which law it
//! applied.

use bro_domain::{Date, Event, PartyId};

use crate::facts::Facts;
use crate::rule::Rule;
use crate::{Advisory, Evaluation, Obligation, RuleId, Status, add_days, barnets_lov_2024};

/// One version of the law as rules.
pub struct RuleSet {
    id: &'static str,
    law: &'static str,
    in_force_from: Date,
    rules: &'static [Rule],
    advisories: fn(&Facts<'_>) -> Vec<Advisory>,
}

/// Every rule set, oldest first. Serviceloven (before 2024) is out of scope:
/// barnets lov is the earliest set known here.
static RULE_SETS: [RuleSet; 1] = [RuleSet {
    id: "barnets-lov-2024-01-01",
    law: "barnets lov",
    in_force_from: barnets_lov_2024::IN_FORCE_FROM,
    rules: barnets_lov_2024::RULES,
    advisories: barnets_lov_2024::advisories::all,
}];

impl RuleSet {
    /// Every rule set, oldest first.
    pub fn all() -> &'static [RuleSet] {
        &RULE_SETS
    }

    /// The rule set in force on `date`: the newest one in force from that
    /// date or earlier.
    ///
    /// A date before the earliest set (barnets lov, in force from
    /// 2024-01-01) still gets that earliest set: the rules of serviceloven,
    /// which governed until then, are out of scope, and applying barnets
    /// lov's rules to older events is the documented approximation.
    pub fn in_force_on(date: Date) -> &'static RuleSet {
        let earliest = &RULE_SETS[0];
        RULE_SETS.iter().rev().find(|set| set.in_force_from <= date).unwrap_or(earliest)
    }

    /// The set's stable id, e.g. `barnets-lov-2024-01-01`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The law the set implements.
    pub fn law(&self) -> &'static str {
        self.law
    }

    /// The first day the law applies.
    pub fn in_force_from(&self) -> Date {
        self.in_force_from
    }

    /// The ids of the set's rules, in table order.
    pub fn rule_ids(&self) -> impl Iterator<Item = RuleId> + '_ {
        self.rules.iter().map(|rule| rule.id)
    }

    /// The provision `rule` cites in this set, if the set has the rule.
    pub fn cites(&self, rule: RuleId) -> Option<&'static str> {
        self.rules.iter().find(|r| r.id == rule).map(|r| r.cites)
    }

    /// Evaluates a case under this set. See [`crate::evaluate`].
    pub fn evaluate(&self, custody_holders: &[PartyId], events: &[Event], today: Date) -> Evaluation {
        let facts = Facts::new(custody_holders, events, today);
        let mut obligations: Vec<Obligation> = self
            .rules
            .iter()
            .flat_map(|rule| (rule.find)(&facts).into_iter().map(move |finding| rule.obligation(finding, today)))
            .collect();
        // Stable: within a trigger date the table order (and, within a rule,
        // the custody holders' order) stays.
        obligations.sort_by_key(|obligation| obligation.trigger);
        let next_change = next_change(events, &obligations, today);
        Evaluation { ruleset: self.id, today, obligations, advisories: (self.advisories)(&facts), next_change }
    }
}

/// The first day after `today` on which an evaluation on `today` may
/// change with no new event. The rules see the day only through the events
/// in effect ([`Facts::new`]), an open duty's deadline ([`Rule::obligation`])
/// and the rule set in force, so these are the only days it can change on.
fn next_change(events: &[Event], obligations: &[Obligation], today: Date) -> Option<Date> {
    let event_takes_effect = events.iter().map(|event| event.occurred_on).filter(|on| *on > today);
    // An open duty becomes overdue the day after its due date.
    let duty_falls_due = obligations
        .iter()
        .filter(|o| o.status == Status::Open)
        .filter_map(|o| o.due)
        .map(|due| add_days(due, 1))
        .filter(|day| *day > today);
    let law_changes = RULE_SETS.iter().map(|set| set.in_force_from).filter(|from| *from > today);
    event_takes_effect.chain(duty_falls_due).chain(law_changes).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_date_falls_back_to_the_earliest_set() {
        let day = |text: &str| text.parse::<Date>().unwrap();
        assert_eq!(RuleSet::in_force_on(day("2026-03-01")).id(), "barnets-lov-2024-01-01");
        assert_eq!(RuleSet::in_force_on(day("2024-01-01")).id(), "barnets-lov-2024-01-01");
        // Serviceloven's time: documented fallback to barnets lov.
        assert_eq!(RuleSet::in_force_on(day("2023-12-31")).id(), "barnets-lov-2024-01-01");
        assert_eq!(RuleSet::in_force_on(day("2024-01-01")).in_force_from(), day("2024-01-01"));
    }

    #[test]
    fn every_rule_has_a_citation() {
        for set in RuleSet::all() {
            let ids: Vec<RuleId> = set.rule_ids().collect();
            assert_eq!(ids, RuleId::ALL, "{} must implement the whole table in order", set.id());
            for rule in ids {
                assert!(set.cites(rule).is_some_and(|cite| cite.starts_with("barnets lov §")));
            }
        }
    }
}
