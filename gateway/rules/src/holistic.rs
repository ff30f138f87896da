//! The § 78 holistic plan assembled from its case: the plan's own goals and
//! coordinator, the sectors' plans, measures and appointments for the parents
//! it covers, their agreements and what they share, and the coordination
//! checks — plus the views of it that one sector, or one parent, may see.
//!
//! Pure like the rest of the engine: a case (and, for the § 79 dates, its
//! evaluation) goes in; nothing is read from a clock or a store. The plan is
//! always assembled anew from the case, so it is current whenever a sector's
//! plan or appointment changes.

use std::collections::BTreeSet;

use bro_domain::{
    Appointment, Case, ConsentScope, Coordinator, Date, DecisionOutcome, EventKind, Goal, GoalAim, PartyId, Plan,
    PlanKind, RecordedEvent, Sector, SectorContact, SectorPlan, SupportMeasure, Timestamp,
};

use crate::coordination::{self, Conflict, ConflictKind, CoordinationPolicy, sector_name};
use crate::{Evaluation, RuleId, Status};

/// Where a holistic plan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanState {
    /// Not every covered parent has agreed.
    Proposed,
    /// Every covered parent's agreement holds: it replaces the § 77 plan.
    InForce,
    /// A covered parent withdrew the agreement and has not agreed again.
    AgreementWithdrawn,
    /// A later holistic plan covers one of its parents.
    Superseded,
}

/// A covered parent's agreement to the plan, and what they share with whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The parent.
    pub custody_holder: PartyId,
    /// When the agreement that holds was given.
    pub agreed_on: Option<Date>,
    /// When the latest agreement was withdrawn, if none holds.
    pub withdrawn_on: Option<Date>,
    /// Sharing scopes (`share:…`) in which a consent or a legal basis holds.
    pub shared_with: Vec<String>,
}

/// Support the children's authority gives a covered parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityMeasure {
    /// The parent.
    pub custody_holder: PartyId,
    /// The measure.
    pub measure: SupportMeasure,
    /// When it was granted (§ 76), if recorded.
    pub granted_on: Option<Date>,
    /// When it started, if it has.
    pub started_on: Option<Date>,
}

/// A time a parent is taken by another sector, without what or with whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusyPeriod {
    /// The parent.
    pub custody_holder: PartyId,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
}

/// A holistic plan, assembled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolisticPlan {
    /// The plan's id in the case (empty in a proposal).
    pub plan_id: String,
    /// When prepared.
    pub prepared_on: Date,
    /// The parents it covers.
    pub covers: Vec<PartyId>,
    /// Its shared goals.
    pub goals: Vec<Goal>,
    /// The coordinator and the day named.
    pub coordinator: Option<(Coordinator, Date)>,
    /// Where it stands.
    pub state: PlanState,
    /// The sectors' plans for the covered parents.
    pub sector_plans: Vec<SectorPlan>,
    /// The children's authority's measures for them.
    pub authority_measures: Vec<AuthorityMeasure>,
    /// Their open sector contacts.
    pub sector_contacts: Vec<SectorContact>,
    /// Their appointments, by start.
    pub appointments: Vec<Appointment>,
    /// In a sector's view: other sectors' appointments as busy time.
    pub busy_periods: Vec<BusyPeriod>,
    /// Each covered parent's agreement.
    pub agreements: Vec<Agreement>,
    /// What pulls in different directions.
    pub conflicts: Vec<Conflict>,
    /// The next § 79 step due (with an evaluation only).
    pub next_revision_due: Option<Date>,
}

/// The state of `plan` (a § 78 plan of `case`).
pub fn state(case: &Case, plan: &Plan) -> PlanState {
    let position = case.plans.iter().position(|p| p.plan_id == plan.plan_id).unwrap_or(usize::MAX);
    let superseded = case.plans.iter().enumerate().any(|(i, later)| {
        i > position && later.kind == PlanKind::Bl78 && later.covers.iter().any(|h| plan.covers.contains(h))
    });
    if superseded {
        return PlanState::Superseded;
    }
    let agreements: Vec<Agreement> = plan.covers.iter().map(|h| agreement(case, h)).collect();
    if !agreements.is_empty() && agreements.iter().all(|a| a.agreed_on.is_some()) {
        PlanState::InForce
    } else if agreements.iter().any(|a| a.agreed_on.is_none() && a.withdrawn_on.is_some()) {
        PlanState::AgreementWithdrawn
    } else {
        PlanState::Proposed
    }
}

/// Whether a consent or legal basis in `scope` is recorded for `holder` and
/// not withdrawn or ended (whatever its dates).
fn recorded_share(case: &Case, holder: &PartyId, scope: &str) -> bool {
    let of = |h: &PartyId, s: &ConsentScope| h == holder && s.as_str() == scope;
    case.consents.iter().any(|c| of(&c.custody_holder, &c.scope) && c.withdrawn_on.is_none())
        || case.legal_bases.iter().any(|b| of(&b.custody_holder, &b.scope) && b.ended_on.is_none())
}

fn agreement(case: &Case, holder: &PartyId) -> Agreement {
    let bl78 =
        || case.consents.iter().filter(|c| &c.custody_holder == holder && c.scope.as_str() == ConsentScope::BL78);
    let agreed_on = bl78().filter(|c| c.withdrawn_on.is_none()).map(|c| c.given_on).max();
    let withdrawn_on = if agreed_on.is_none() { bl78().filter_map(|c| c.withdrawn_on).max() } else { None };
    let scopes: BTreeSet<&str> = case
        .consents
        .iter()
        .filter(|c| &c.custody_holder == holder)
        .map(|c| c.scope.as_str())
        .chain(case.legal_bases.iter().filter(|b| &b.custody_holder == holder).map(|b| b.scope.as_str()))
        // The plan records what was given and not taken back; who receives what today is the sharing law's.
        .filter(|s| s.starts_with("share:") && recorded_share(case, holder, s))
        .collect();
    Agreement {
        custody_holder: holder.clone(),
        agreed_on,
        withdrawn_on,
        shared_with: scopes.into_iter().map(str::to_owned).collect(),
    }
}

fn authority_measures(case: &Case, covers: &[PartyId]) -> Vec<AuthorityMeasure> {
    let mut out: Vec<AuthorityMeasure> = Vec::new();
    let mut entry = |holder: &PartyId, measure: SupportMeasure| -> usize {
        match out.iter().position(|m| &m.custody_holder == holder && m.measure == measure) {
            Some(at) => at,
            None => {
                out.push(AuthorityMeasure {
                    custody_holder: holder.clone(),
                    measure,
                    granted_on: None,
                    started_on: None,
                });
                out.len() - 1
            }
        }
    };
    let mut granted = Vec::new();
    for d in case.support_decisions.iter().filter(|d| covers.contains(&d.custody_holder)) {
        if d.outcome == DecisionOutcome::Granted {
            granted.push((entry(&d.custody_holder, d.measure), d.decided_on));
        }
    }
    let mut started = Vec::new();
    for s in case.support_starts.iter().filter(|s| covers.contains(&s.custody_holder)) {
        started.push((entry(&s.custody_holder, s.measure), s.started_on));
    }
    for (at, on) in granted {
        out[at].granted_on.get_or_insert(on);
    }
    for (at, on) in started {
        out[at].started_on.get_or_insert(on);
    }
    out
}

/// Everything of `case` about `covers`, for a plan with `goals` and `coordinator`.
fn gather(
    case: &Case,
    plan: &Plan,
    state: PlanState,
    evaluation: Option<&Evaluation>,
    policy: &CoordinationPolicy,
) -> HolisticPlan {
    let covered = |h: &PartyId| plan.covers.contains(h);
    let next_revision_due = evaluation.and_then(|e| {
        e.obligations
            .iter()
            .filter(|o| matches!(o.rule, RuleId::Bl79Stk2 | RuleId::Bl79Stk3))
            .filter(|o| matches!(o.status, Status::Open | Status::Overdue))
            .filter_map(|o| o.due)
            .min()
    });
    HolisticPlan {
        plan_id: plan.plan_id.clone(),
        prepared_on: plan.prepared_on,
        covers: plan.covers.clone(),
        goals: plan.goals.clone(),
        coordinator: plan.coordinator.clone(),
        state,
        sector_plans: case.sector_plans.iter().filter(|p| covered(&p.custody_holder)).cloned().collect(),
        authority_measures: authority_measures(case, &plan.covers),
        sector_contacts: case
            .sector_contacts
            .iter()
            .filter(|c| c.end_date.is_none() && covered(&c.custody_holder))
            .cloned()
            .collect(),
        appointments: case.appointments.iter().filter(|a| covered(&a.custody_holder)).cloned().collect(),
        busy_periods: Vec::new(),
        agreements: plan.covers.iter().map(|h| agreement(case, h)).collect(),
        conflicts: coordination::check_plan(case, plan, evaluation, policy),
        next_revision_due,
    }
}

/// The § 78 plan `plan_id` of `case`, assembled; `None` if the case has no
/// such holistic plan. With an evaluation of the case, the § 79 dates count.
pub fn assemble(
    case: &Case,
    plan_id: &str,
    policy: &CoordinationPolicy,
    evaluation: Option<&Evaluation>,
) -> Option<HolisticPlan> {
    let plan = case.plans.iter().find(|p| p.plan_id == plan_id && p.kind == PlanKind::Bl78)?;
    Some(gather(case, plan, state(case, plan), evaluation, policy))
}

/// The parents a proposal covers by default: those with a contact, plan or
/// appointment in another sector, else every custody holder.
pub fn default_covers(case: &Case) -> Vec<PartyId> {
    let involved = |h: &PartyId| {
        case.sector_contacts.iter().any(|c| &c.custody_holder == h)
            || case.sector_plans.iter().any(|p| &p.custody_holder == h)
            || case.appointments.iter().any(|a| &a.custody_holder == h)
    };
    let some: Vec<PartyId> = case.custody_holders.iter().map(|p| p.party_id.clone()).filter(|h| involved(h)).collect();
    if some.is_empty() { case.custody_holders.iter().map(|p| p.party_id.clone()).collect() } else { some }
}

/// A proposal for a holistic plan covering `covers`, prepared `on`: the goals
/// of the latest § 77 plan (those concerning a covered parent) and of the
/// covered parents' sector plans, with everything the sectors recorded.
pub fn propose(
    case: &Case,
    covers: &[PartyId],
    on: Date,
    policy: &CoordinationPolicy,
    evaluation: Option<&Evaluation>,
) -> HolisticPlan {
    let mut goals: Vec<Goal> = Vec::new();
    let mut push = |mut goal: Goal| {
        let base = goal.goal_id.clone();
        let mut n = 2;
        while goals.iter().any(|g| g.goal_id == goal.goal_id) {
            goal.goal_id = format!("{base}-{n}");
            n += 1;
        }
        if goals.len() < bro_domain::MAX_GOALS {
            goals.push(goal);
        }
    };
    if let Some(parent_plan) = case.plans.iter().rev().find(|p| p.kind == PlanKind::Bl77) {
        for goal in &parent_plan.goals {
            let holders: Vec<PartyId> = goal.custody_holders.iter().filter(|h| covers.contains(h)).cloned().collect();
            if !goal.custody_holders.is_empty() && holders.is_empty() {
                continue;
            }
            push(Goal { custody_holders: holders, ..goal.clone() });
        }
    }
    for plan in case.sector_plans.iter().filter(|p| covers.contains(&p.custody_holder)) {
        for goal in &plan.goals {
            let aim = if goal.tags.iter().any(|t| t == "aim:contact") {
                Some(GoalAim::Contact)
            } else if goal.tags.iter().any(|t| t == "aim:homecoming") {
                Some(GoalAim::Homecoming)
            } else {
                None
            };
            let serving = plan.activities.iter().filter(|a| a.goal_ids.contains(&goal.goal_id));
            push(Goal {
                goal_id: format!("{}-{}", sector_slug(plan.sector), goal.goal_id),
                change_in_parents: goal.text.clone(),
                aim,
                sub_goals: serving.map(|a| if a.title.is_empty() { a.kind.clone() } else { a.title.clone() }).collect(),
                owner_sector: Some(plan.sector),
                owner: plan.organisation.display_name.clone(),
                custody_holders: vec![plan.custody_holder.clone()],
            });
        }
    }
    let draft = Plan {
        plan_id: String::new(),
        kind: PlanKind::Bl78,
        prepared_on: on,
        covers: covers.to_vec(),
        goals,
        coordinator: None,
    };
    gather(case, &draft, PlanState::Proposed, evaluation, policy)
}

fn sector_slug(sector: Sector) -> &'static str {
    match sector {
        Sector::Jobcentre => "jobcentre",
        Sector::Psychiatry => "psychiatry",
        Sector::AddictionTreatment => "addiction-treatment",
        Sector::Health => "health",
        Sector::Other => "other",
    }
}

/// The parents a goal concerns: its own list, or everyone the plan covers.
fn concerned<'a>(goal: &'a Goal, covers: &'a [PartyId]) -> &'a [PartyId] {
    if goal.custody_holders.is_empty() { covers } else { &goal.custody_holders }
}

/// Merges each parent's overlapping or touching periods.
fn merge_busy(mut periods: Vec<BusyPeriod>) -> Vec<BusyPeriod> {
    periods.sort_by(|a, b| (&a.custody_holder, a.start).cmp(&(&b.custody_holder, b.start)));
    let mut out: Vec<BusyPeriod> = Vec::new();
    for p in periods {
        match out.last_mut() {
            Some(last) if last.custody_holder == p.custody_holder && p.start <= last.end => {
                last.end = last.end.max(p.end);
            }
            _ => out.push(p),
        }
    }
    out.sort_by_key(|p| p.start);
    out
}

impl HolisticPlan {
    /// What `sector`'s system may be sent under consent scope `scope`, where
    /// `shared` are the parents whose consent (or legal basis) in that scope
    /// holds. Only a plan in force is distributed. The view holds the goals
    /// of the sector and of the children's authority that concern only
    /// sharing parents, the coordinator, the sector's own plans, contacts and
    /// appointments, other sectors' appointments as busy time, each sharing
    /// parent's agreement (with this scope only), and the conflicts that
    /// involve the sector's items, without naming the other sectors' items.
    pub fn sector_view(&self, sector: Sector, scope: &str, shared: &[PartyId]) -> Option<HolisticPlan> {
        let holders: Vec<PartyId> = self.covers.iter().filter(|h| shared.contains(h)).cloned().collect();
        if self.state != PlanState::InForce || holders.is_empty() {
            return None;
        }
        let mine = |s: Sector, h: &PartyId| s == sector && holders.contains(h);
        let goals: Vec<Goal> = self
            .goals
            .iter()
            .filter(|g| g.owner_sector.is_none_or(|s| s == sector))
            .filter(|g| concerned(g, &self.covers).iter().all(|h| holders.contains(h)))
            .cloned()
            .collect();
        let sector_plans: Vec<SectorPlan> =
            self.sector_plans.iter().filter(|p| mine(p.sector, &p.custody_holder)).cloned().collect();
        let appointments: Vec<Appointment> =
            self.appointments.iter().filter(|a| mine(a.sector, &a.custody_holder)).cloned().collect();
        let busy = self
            .appointments
            .iter()
            .filter(|a| a.sector != sector && !a.cancelled && holders.contains(&a.custody_holder))
            .map(|a| BusyPeriod {
                custody_holder: a.custody_holder.clone(),
                start: a.start_time,
                end: coordination::end_of(a.start_time, a.end_time),
            })
            .collect();
        // Item paths the sector may see named.
        let mut own: BTreeSet<String> =
            appointments.iter().map(|a| format!("appointments/{}", a.appointment_id)).collect();
        for p in &sector_plans {
            own.extend(p.goals.iter().map(|g| format!("sectorPlans/{}/goals/{}", p.plan_id, g.goal_id)));
            own.extend(p.activities.iter().map(|a| format!("sectorPlans/{}/activities/{}", p.plan_id, a.activity_id)));
        }
        let shown_goals: BTreeSet<String> =
            goals.iter().map(|g| format!("plans/{}/goals/{}", self.plan_id, g.goal_id)).collect();
        let conflicts = self
            .conflicts
            .iter()
            .filter(|c| c.items.iter().any(|i| own.contains(i)))
            .filter(|c| c.custody_holder.as_ref().is_none_or(|h| holders.contains(h)))
            .filter_map(|c| {
                let others_hidden = c.items.iter().any(|i| !own.contains(i) && !shown_goals.contains(i));
                let message = match c.kind {
                    ConflictKind::AppointmentsOverlap => {
                        "the appointment overlaps an appointment the parent has with another sector".to_owned()
                    }
                    ConflictKind::TooManyMeetings => c.message.clone(),
                    ConflictKind::GoalsPullApart if others_hidden => {
                        "an item of this sector pulls against another sector's part of the plan; the coordinator will follow up"
                            .to_owned()
                    }
                    ConflictKind::GoalsPullApart => c.message.clone(),
                    ConflictKind::RevisionOverdue | ConflictKind::NoCoordinator => return None,
                };
                Some(Conflict {
                    kind: c.kind,
                    custody_holder: c.custody_holder.clone(),
                    items: c.items.iter().filter(|i| own.contains(*i) || shown_goals.contains(*i)).cloned().collect(),
                    message,
                })
            })
            .collect();
        Some(HolisticPlan {
            plan_id: self.plan_id.clone(),
            prepared_on: self.prepared_on,
            covers: holders.clone(),
            goals,
            coordinator: self.coordinator.clone(),
            state: self.state,
            sector_plans,
            authority_measures: Vec::new(),
            sector_contacts: self
                .sector_contacts
                .iter()
                .filter(|c| mine(c.sector, &c.custody_holder))
                .cloned()
                .collect(),
            appointments,
            busy_periods: merge_busy(busy),
            agreements: self
                .agreements
                .iter()
                .filter(|a| holders.contains(&a.custody_holder))
                .map(|a| Agreement {
                    shared_with: a.shared_with.iter().filter(|s| s.as_str() == scope).cloned().collect(),
                    ..a.clone()
                })
                .collect(),
            conflicts,
            next_revision_due: None,
        })
    }

    /// What one covered parent is shown (their own page): the goals that
    /// concern them, their own measures, contacts and appointments, their own
    /// agreement, and the clashes in their own calendar.
    pub fn parent_view(&self, holder: &PartyId) -> Option<HolisticPlan> {
        if !self.covers.contains(holder) {
            return None;
        }
        let theirs = |h: &PartyId| h == holder;
        Some(HolisticPlan {
            covers: vec![holder.clone()],
            goals: self.goals.iter().filter(|g| concerned(g, &self.covers).contains(holder)).cloned().collect(),
            sector_plans: self.sector_plans.iter().filter(|p| theirs(&p.custody_holder)).cloned().collect(),
            authority_measures: self.authority_measures.iter().filter(|m| theirs(&m.custody_holder)).cloned().collect(),
            sector_contacts: self.sector_contacts.iter().filter(|c| theirs(&c.custody_holder)).cloned().collect(),
            appointments: self.appointments.iter().filter(|a| theirs(&a.custody_holder)).cloned().collect(),
            busy_periods: Vec::new(),
            agreements: self.agreements.iter().filter(|a| theirs(&a.custody_holder)).cloned().collect(),
            conflicts: self
                .conflicts
                .iter()
                .filter(|c| matches!(c.kind, ConflictKind::AppointmentsOverlap | ConflictKind::TooManyMeetings))
                .filter(|c| c.custody_holder.as_ref().is_some_and(theirs))
                .cloned()
                .collect(),
            ..self.clone()
        })
    }
}

/// Why a parent's page link to plan `plan_id`, made when the case was at
/// version `made_at`, no longer works, if an event recorded since revokes
/// it: the parent withdrew agreement, the plan was updated (goals or
/// coordinator), or a new § 78 plan covering the parent replaced it. The
/// reason names no one.
pub fn link_revoked_by(
    history: &[RecordedEvent],
    plan_id: &str,
    holder: &PartyId,
    made_at: u64,
) -> Option<&'static str> {
    history.iter().filter(|e| e.sequence > made_at).find_map(|recorded| match &recorded.event.kind {
        EventKind::ConsentWithdrawn { custody_holder, scope }
            if custody_holder == holder && scope.as_str() == ConsentScope::BL78 =>
        {
            Some("the parent withdrew agreement to the plan")
        }
        EventKind::PlanGoalsUpdated { plan_id: id, .. } | EventKind::PlanCoordinatorNamed { plan_id: id, .. }
            if id == plan_id =>
        {
            Some("the plan was updated")
        }
        EventKind::PlanPrepared { plan_id: id, kind: PlanKind::Bl78, covers, .. }
            if id != plan_id && covers.contains(holder) =>
        {
            Some("a new plan replaced it")
        }
        _ => None,
    })
}

/// One version of a plan: a recorded change that changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanVersion {
    /// The case event (its sequence) that made it.
    pub sequence: u64,
    /// Its legal date.
    pub occurred_on: Date,
    /// When it was recorded.
    pub record_time: Timestamp,
    /// What changed.
    pub change: String,
    /// The system it came through, if any.
    pub source_system: String,
}

/// The versions of plan `plan_id`: its creation, then every later event (in
/// the order recorded) that changed what the plan shows — its goals and
/// coordinator, the covered parents' agreements and consents to share, their
/// sector plans, contacts, appointments and support, § 79 steps, and a later
/// holistic plan that supersedes it. `history` is the case's whole history
/// in sequence order; `case` is the case after it.
pub fn versions(case: &Case, history: &[RecordedEvent], plan_id: &str) -> Vec<PlanVersion> {
    let Some(plan) = case.plans.iter().find(|p| p.plan_id == plan_id && p.kind == PlanKind::Bl78) else {
        return Vec::new();
    };
    let covered = |h: &PartyId| plan.covers.contains(h);
    let appointment_holder =
        |id: &str| case.appointments.iter().find(|a| a.appointment_id == id).map(|a| &a.custody_holder);
    let contact = |id: &str| case.sector_contacts.iter().find(|c| c.contact_id == id);
    // § 32 consents do not change the plan; agreements and sharing do.
    let counts = |scope: &ConsentScope| scope.as_str() == ConsentScope::BL78 || scope.as_str().starts_with("share:");
    let mut out = Vec::new();
    let mut created = false;
    for recorded in history {
        let change: Option<String> = match &recorded.event.kind {
            EventKind::PlanPrepared { plan_id: id, .. } if id == plan_id => {
                created = true;
                Some("plan created".into())
            }
            _ if !created => None,
            EventKind::PlanPrepared { plan_id: id, kind: PlanKind::Bl78, covers, .. }
                if covers.iter().any(&covered) =>
            {
                Some(format!("superseded by holistic plan {id}"))
            }
            EventKind::PlanGoalsUpdated { plan_id: id, .. } if id == plan_id => Some("goals updated".into()),
            EventKind::PlanCoordinatorNamed { plan_id: id, .. } if id == plan_id => Some("coordinator named".into()),
            EventKind::ConsentGiven { custody_holder, scope } if covered(custody_holder) && counts(scope) => {
                Some(consent_change(custody_holder, scope.as_str(), true))
            }
            EventKind::ConsentWithdrawn { custody_holder, scope } if covered(custody_holder) && counts(scope) => {
                Some(consent_change(custody_holder, scope.as_str(), false))
            }
            EventKind::LegalBasisRecorded { custody_holder, scope, .. } if covered(custody_holder) => {
                Some(format!("legal basis for sharing in {scope} recorded for {custody_holder}"))
            }
            EventKind::LegalBasisEnded { custody_holder, scope } if covered(custody_holder) => {
                Some(format!("legal basis for sharing in {scope} ended for {custody_holder}"))
            }
            EventKind::SectorPlanRecorded { plan: p } if covered(&p.custody_holder) => {
                Some(format!("{}'s plan recorded", sector_name(p.sector)))
            }
            EventKind::AppointmentScheduled { appointment } if covered(&appointment.custody_holder) => {
                Some(format!("appointment scheduled ({})", sector_name(appointment.sector)))
            }
            EventKind::AppointmentCancelled { appointment_id, .. }
                if appointment_holder(appointment_id).is_some_and(covered) =>
            {
                Some("appointment cancelled".into())
            }
            EventKind::SectorContactAdded { custody_holder, sector, .. } if covered(custody_holder) => {
                Some(format!("contact with {} added", sector_name(*sector)))
            }
            EventKind::SectorContactEnded { contact_id }
                if contact(contact_id).is_some_and(|c| covered(&c.custody_holder)) =>
            {
                Some("sector contact ended".into())
            }
            EventKind::SupportDecided { custody_holder, .. } if covered(custody_holder) => {
                Some("support decided".into())
            }
            EventKind::SupportStarted { custody_holder, .. } if covered(custody_holder) => {
                Some("support started".into())
            }
            EventKind::RevisionOffered => Some("§ 79 revision offered".into()),
            EventKind::RevisionMade => Some("§ 79 revision made".into()),
            EventKind::RevisionAssessed => Some("§ 79 revision need assessed".into()),
            _ => None,
        };
        if let Some(change) = change {
            out.push(PlanVersion {
                sequence: recorded.sequence,
                occurred_on: recorded.event.occurred_on,
                record_time: recorded.record_time,
                change,
                source_system: recorded.event.source.as_ref().map(|s| s.system.clone()).unwrap_or_default(),
            });
        }
    }
    out
}

fn consent_change(holder: &PartyId, scope: &str, given: bool) -> String {
    match (scope == ConsentScope::BL78, given) {
        (true, true) => format!("{holder} agreed to the plan"),
        (true, false) => format!("{holder} withdrew the agreement"),
        (false, true) => format!("{holder} consented to sharing in {scope}"),
        (false, false) => format!("{holder} withdrew consent to sharing in {scope}"),
    }
}

#[cfg(test)]
mod tests;
