//! Test helpers: terse builders for domain events and a one-call evaluation.

use bro_domain::{
    ConsentScope, Date, DecisionOutcome, Event, EventKind, Goal, GoalAim, Organisation, PartyId, PlacementBasis,
    PlanKind, Sector, SupportMeasure, SupportPersonKind,
};

use crate::{Evaluation, Obligation, RuleId};

/// A date from `YYYY-MM-DD`.
pub(crate) fn day(text: &str) -> Date {
    text.parse().expect("test date")
}

/// A party id.
pub(crate) fn party(id: &str) -> PartyId {
    PartyId::parse("party", id).expect("test party id")
}

/// A list of events being built, in application order.
#[derive(Default)]
pub(crate) struct History {
    /// The events so far.
    pub events: Vec<Event>,
}

impl History {
    /// Adds an event of `kind` on `date`.
    pub fn on(mut self, date: &str, kind: EventKind) -> Self {
        self.events.push(Event { occurred_on: day(date), kind, source: None });
        self
    }

    /// Evaluates the history on `today` for the custody holders `holders`.
    pub fn evaluate(&self, holders: &[&str], today: &str) -> Evaluation {
        let holders: Vec<PartyId> = holders.iter().map(|id| party(id)).collect();
        crate::evaluate(&holders, &self.events, day(today))
    }
}

/// The obligations of `rule`, in output order.
pub(crate) fn of(evaluation: &Evaluation, rule: RuleId) -> Vec<&Obligation> {
    evaluation.obligations.iter().filter(|obligation| obligation.rule == rule).collect()
}

/// The single obligation of `rule`; panics unless there is exactly one.
pub(crate) fn only(evaluation: &Evaluation, rule: RuleId) -> Obligation {
    let found = of(evaluation, rule);
    assert_eq!(found.len(), 1, "expected one {rule} obligation, got {found:#?}");
    found[0].clone()
}

/// A placement start on `basis`.
pub(crate) fn placed(basis: PlacementBasis) -> EventKind {
    EventKind::PlacementStarted { basis, site_kind: None }
}

/// A support-person offer to `holder`.
pub(crate) fn offered(holder: &str) -> EventKind {
    EventKind::SupportPersonOffered { custody_holder: party(holder) }
}

/// `holder` declines the offer.
pub(crate) fn declined(holder: &str) -> EventKind {
    EventKind::SupportPersonDeclined { custody_holder: party(holder) }
}

/// `holder` accepts the offer.
pub(crate) fn accepted(holder: &str) -> EventKind {
    EventKind::SupportPersonAccepted { custody_holder: party(holder) }
}

/// `holder` chooses a support person from their network.
pub(crate) fn chosen(holder: &str) -> EventKind {
    EventKind::SupportPersonChosen { custody_holder: party(holder), kind: SupportPersonKind::Network, person: None }
}

/// The municipality approves `holder`'s choice.
pub(crate) fn approved(holder: &str) -> EventKind {
    EventKind::SupportPersonApproved { custody_holder: party(holder) }
}

/// A § 76 decision granting `measure` to `holder`.
pub(crate) fn granted(holder: &str, measure: SupportMeasure) -> EventKind {
    EventKind::SupportDecided { custody_holder: party(holder), measure, outcome: DecisionOutcome::Granted }
}

/// A § 76 decision refusing `measure` to `holder`.
pub(crate) fn refused(holder: &str, measure: SupportMeasure) -> EventKind {
    EventKind::SupportDecided { custody_holder: party(holder), measure, outcome: DecisionOutcome::Refused }
}

/// Support under `measure` starts for `holder`.
pub(crate) fn started(holder: &str, measure: SupportMeasure) -> EventKind {
    EventKind::SupportStarted { custody_holder: party(holder), measure }
}

/// A consent scope from text.
fn scope(text: &str) -> ConsentScope {
    ConsentScope::parse("scope", text).expect("test scope")
}

/// `holder` consents in scope `scope_text`.
pub(crate) fn consent(holder: &str, scope_text: &str) -> EventKind {
    EventKind::ConsentGiven { custody_holder: party(holder), scope: scope(scope_text) }
}

/// `holder` withdraws consent in scope `scope_text`.
pub(crate) fn withdrawn(holder: &str, scope_text: &str) -> EventKind {
    EventKind::ConsentWithdrawn { custody_holder: party(holder), scope: scope(scope_text) }
}

/// A plan of `kind` covering `covers`, with `goals`.
pub(crate) fn plan(kind: PlanKind, covers: &[&str], goals: Vec<Goal>) -> EventKind {
    EventKind::PlanPrepared {
        plan_id: "plan-1".into(),
        kind,
        covers: covers.iter().map(|id| party(id)).collect(),
        goals,
    }
}

/// A § 77 parent action plan without goals.
pub(crate) fn plan77() -> EventKind {
    plan(PlanKind::Bl77, &[], Vec::new())
}

/// A § 78 holistic plan covering `covers`, without goals.
pub(crate) fn plan78(covers: &[&str]) -> EventKind {
    plan(PlanKind::Bl78, covers, Vec::new())
}

/// A § 77 stk. 3 omission with `reasons`.
pub(crate) fn omitted(reasons: &str) -> EventKind {
    EventKind::PlanOmitted { reasons: reasons.into() }
}

/// A plan goal.
pub(crate) fn goal(goal_id: &str, change_in_parents: &str, aim: Option<GoalAim>) -> Goal {
    Goal { goal_id: goal_id.into(), change_in_parents: change_in_parents.into(), aim, ..Goal::default() }
}

/// A contact of `holder` with `sector`.
pub(crate) fn sector_contact(contact_id: &str, holder: &str, sector: Sector) -> EventKind {
    EventKind::SectorContactAdded {
        contact_id: contact_id.into(),
        custody_holder: party(holder),
        sector,
        organisation: Organisation::default(),
        contact_person: None,
        system_of_record: String::new(),
    }
}
