//! The case state, and how events change it while keeping its invariants.

use crate::violation::Collector;
use crate::{
    Appointment, CaseId, Child, ConsentScope, ContactPerson, Coordinator, CorrespondenceRef, Date, DecisionOutcome,
    EventKind, Goal, Organisation, Party, PartyId, PlacementBasis, PlacementEndReason, PlacementSiteKind, PlanKind,
    RecommendationReason, RecordedEvent, Sector, SectorPlan, SupportMeasure, SupportPersonKind, Timestamp, Violations,
    check_appointment, check_correspondence, check_cvr, check_external_id, check_id, check_sector_plan, check_text,
};

/// A recommendation to place.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlacementRecommendation {
    /// Date.
    pub recommended_on: Date,
    /// Basis.
    pub basis: PlacementBasis,
    /// Siblings under 18 at home.
    pub siblings_under_18_in_household: bool,
    /// Reason.
    pub reason: RecommendationReason,
}

/// A placement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    /// Basis.
    pub basis: PlacementBasis,
    /// First day.
    pub start_date: Date,
    /// Last day, once ended.
    pub end_date: Option<Date>,
    /// Why it ended.
    pub end_reason: Option<PlacementEndReason>,
    /// Site kind, if known.
    pub site_kind: Option<PlacementSiteKind>,
}

/// A contact with another sector.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectorContact {
    /// Id within the case.
    pub contact_id: String,
    /// Whose contact.
    pub custody_holder: PartyId,
    /// Sector.
    pub sector: Sector,
    /// Organisation.
    pub organisation: Organisation,
    /// Contact person.
    pub contact_person: Option<ContactPerson>,
    /// System of record.
    pub system_of_record: String,
    /// First day.
    pub start_date: Date,
    /// Last day, once ended.
    pub end_date: Option<Date>,
}

/// A consent and its withdrawal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consent {
    /// Who gave it.
    pub custody_holder: PartyId,
    /// Scope.
    pub scope: ConsentScope,
    /// Given on.
    pub given_on: Date,
    /// Withdrawn on.
    pub withdrawn_on: Option<Date>,
}

/// A legal basis for sharing without consent, and its end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegalBasis {
    /// Whose data.
    pub custody_holder: PartyId,
    /// The sharing scope (`share:{recipient}`).
    pub scope: ConsentScope,
    /// The provision.
    pub citation: String,
    /// Recorded on.
    pub recorded_on: Date,
    /// Ended on.
    pub ended_on: Option<Date>,
}

/// A custody holder's answer to a § 75 offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OfferAnswer {
    /// Accepted.
    Accepted,
    /// Declined.
    Declined,
}

/// The municipality's decision on a chosen support person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ApprovalDecision {
    /// Approved.
    Approved,
    /// Refused.
    Refused,
}

/// The § 75 support-person track of one custody holder.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupportPersonTrack {
    /// Whose.
    pub custody_holder: PartyId,
    /// Every offer.
    pub offered_on: Vec<Date>,
    /// Latest answer and its date.
    pub latest_answer: Option<(OfferAnswer, Date)>,
    /// Latest choice: kind, date, person.
    pub chosen: Option<(SupportPersonKind, Date, Option<ContactPerson>)>,
    /// Decision on the latest choice and its date.
    pub decision: Option<(ApprovalDecision, Date)>,
}

/// A § 76 decision.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupportDecision {
    /// For whom.
    pub custody_holder: PartyId,
    /// Measure.
    pub measure: SupportMeasure,
    /// Outcome.
    pub outcome: DecisionOutcome,
    /// Date.
    pub decided_on: Date,
}

/// Support that started.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupportStart {
    /// For whom.
    pub custody_holder: PartyId,
    /// Measure.
    pub measure: SupportMeasure,
    /// First day.
    pub started_on: Date,
}

/// A prepared plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Id within the case.
    pub plan_id: String,
    /// § 77 or § 78.
    pub kind: PlanKind,
    /// Prepared on.
    pub prepared_on: Date,
    /// Covered custody holders (§ 78).
    pub covers: Vec<PartyId>,
    /// Goals (the latest version).
    pub goals: Vec<Goal>,
    /// The coordinator (§ 78) and the day named.
    pub coordinator: Option<(Coordinator, Date)>,
}

/// A § 77 stk. 3 omission.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanOmission {
    /// Date.
    pub omitted_on: Date,
    /// Reasons.
    pub reasons: String,
}

/// A § 79 step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RevisionKind {
    /// Offered.
    Offered,
    /// Made.
    Made,
    /// Assessed.
    Assessed,
}

/// A § 79 step and its date.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    /// Kind.
    pub kind: RevisionKind,
    /// Date.
    pub on: Date,
}

/// A period from a start to an optional end: homecoming periods, suspensions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    /// First day.
    pub start_date: Date,
    /// End, once recorded.
    pub end_date: Option<Date>,
}

/// A decision that a placement ends without a homecoming period.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HomecomingWaiver {
    /// Date.
    pub waived_on: Date,
    /// Reasons.
    pub reasons: String,
}

/// A custody holder's move to another municipality.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Move {
    /// Who moved.
    pub custody_holder: PartyId,
    /// The new municipality's CVR number.
    pub to_municipality: String,
    /// Date.
    pub moved_on: Date,
}

/// Case material sent to another municipality.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handover {
    /// The receiving municipality's CVR number.
    pub to_municipality: String,
    /// Date.
    pub sent_on: Date,
}

/// A parent-support case: the fold of its events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// Id.
    pub id: CaseId,
    /// Sequence of the last applied event.
    pub version: u64,
    /// The legal date of the latest event in date order.
    pub last_occurred_on: Date,
    /// Child.
    pub child: Child,
    /// Custody holders.
    pub custody_holders: Vec<Party>,
    /// Placing municipality.
    pub placing_municipality: Organisation,
    /// Recommendations.
    pub recommendations: Vec<PlacementRecommendation>,
    /// Placements.
    pub placements: Vec<Placement>,
    /// Sector contacts.
    pub sector_contacts: Vec<SectorContact>,
    /// Consents.
    pub consents: Vec<Consent>,
    /// Legal bases for sharing without consent.
    pub legal_bases: Vec<LegalBasis>,
    /// Support-person tracks.
    pub support_persons: Vec<SupportPersonTrack>,
    /// § 76 decisions.
    pub support_decisions: Vec<SupportDecision>,
    /// Support starts.
    pub support_starts: Vec<SupportStart>,
    /// Plans.
    pub plans: Vec<Plan>,
    /// Omissions.
    pub plan_omissions: Vec<PlanOmission>,
    /// § 79 steps.
    pub revisions: Vec<Revision>,
    /// § 100 homecoming periods.
    pub homecoming_periods: Vec<Period>,
    /// Homecoming periods waived.
    pub homecoming_waivers: Vec<HomecomingWaiver>,
    /// § 103 suspensions.
    pub contact_suspensions: Vec<Period>,
    /// Custody holders' moves to other municipalities.
    pub moves: Vec<Move>,
    /// Case material sent to other municipalities.
    pub handovers: Vec<Handover>,
    /// Correspondence, in the order recorded: each letter's reference (the
    /// letter stays in its event; see [`CorrespondenceRef`]).
    pub correspondence: Vec<CorrespondenceRef>,
    /// Other sectors' plans, current versions.
    pub sector_plans: Vec<SectorPlan>,
    /// Appointments, by start time.
    pub appointments: Vec<Appointment>,
    /// When created.
    pub create_time: Timestamp,
    /// When last changed.
    pub update_time: Timestamp,
}

/// The order a history takes effect in, as indices into `events`: the
/// opening event first, whatever its date; then by legal date; within a day,
/// by sequence (the order recorded). The case ([`Case::replay`]) and the
/// rules engine both apply a history in this order.
pub fn legal_order(events: &[RecordedEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| {
        let e = &events[i];
        (!matches!(e.event.kind, EventKind::CaseOpened { .. }), e.event.occurred_on, e.sequence)
    });
    order
}

impl Case {
    /// Whether `custody_holder`'s data may be shared in `scope` (e.g.
    /// `share:jobcenter`) on `today`: a consent in that scope given on or
    /// before it and not withdrawn by it, or a legal basis recorded on or
    /// before it and not ended by it. Dates count, not when they were
    /// recorded: a consent dated ahead opens nothing yet, and a withdrawal
    /// dated ahead closes nothing yet.
    pub fn shares_with(&self, custody_holder: &PartyId, scope: &str, today: Date) -> bool {
        let holds = |from: Date, to: Option<Date>| from <= today && to.is_none_or(|end| end > today);
        let consent = self.consents.iter().any(|c| {
            &c.custody_holder == custody_holder && c.scope.as_str() == scope && holds(c.given_on, c.withdrawn_on)
        });
        let basis = self.legal_bases.iter().any(|b| {
            &b.custody_holder == custody_holder && b.scope.as_str() == scope && holds(b.recorded_on, b.ended_on)
        });
        consent || basis
    }

    /// The custody holders whose data may be shared in `scope` on `today`.
    pub fn shared_custody_holders<'a>(&'a self, scope: &'a str, today: Date) -> impl Iterator<Item = &'a Party> + 'a {
        self.custody_holders.iter().filter(move |p| self.shares_with(&p.party_id, scope, today))
    }

    /// A case opened on `on` in municipality `cvr` for custody holders known
    /// only by party id: a starting point for tests and benchmarks.
    pub fn opened_for(id: CaseId, holders: &[PartyId], cvr: &str, on: Date) -> Result<Case, Violations> {
        let opened = RecordedEvent {
            sequence: 1,
            record_time: Timestamp::default(),
            request_id: String::new(),
            event: crate::Event {
                occurred_on: on,
                source: None,
                kind: EventKind::CaseOpened {
                    child: Child { identifier: None, journal_reference: String::new() },
                    custody_holders: holders
                        .iter()
                        .map(|h| Party { party_id: h.clone(), identifier: None, display_name: String::new() })
                        .collect(),
                    placing_municipality: Organisation { cvr: cvr.to_owned(), ..Default::default() },
                },
            },
        };
        Case::open(id, &opened)
    }

    /// Opens a case from its first event, which must be `case_opened`.
    pub fn open(id: CaseId, first: &RecordedEvent) -> Result<Case, Violations> {
        let EventKind::CaseOpened { child, custody_holders, placing_municipality } = &first.event.kind else {
            return Err(Violations::one(first.event.kind.type_name(), "a case's first event must be case_opened"));
        };
        check_opening(child, custody_holders, placing_municipality).map_err(|v| v.within("case_opened"))?;
        Ok(Case {
            id,
            version: first.sequence,
            last_occurred_on: first.event.occurred_on,
            child: child.clone(),
            custody_holders: custody_holders.clone(),
            placing_municipality: placing_municipality.clone(),
            recommendations: Vec::new(),
            placements: Vec::new(),
            sector_contacts: Vec::new(),
            consents: Vec::new(),
            legal_bases: Vec::new(),
            support_persons: Vec::new(),
            support_decisions: Vec::new(),
            support_starts: Vec::new(),
            plans: Vec::new(),
            plan_omissions: Vec::new(),
            revisions: Vec::new(),
            homecoming_periods: Vec::new(),
            homecoming_waivers: Vec::new(),
            contact_suspensions: Vec::new(),
            moves: Vec::new(),
            handovers: Vec::new(),
            correspondence: Vec::new(),
            sector_plans: Vec::new(),
            appointments: Vec::new(),
            create_time: first.record_time,
            update_time: first.record_time,
        })
    }

    /// Replays a whole history in [`legal_order`]. On failure, returns the
    /// index (into `events`) of the event that broke an invariant.
    pub fn replay(id: CaseId, events: &[RecordedEvent]) -> Result<Case, (usize, Violations)> {
        let order = legal_order(events);
        let Some((&first, rest)) = order.split_first() else {
            return Err((0, Violations::one("events", "a case needs at least its opening event")));
        };
        let mut case = Case::open(id, &events[first]).map_err(|v| (first, v))?;
        for &i in rest {
            case.apply(&events[i]).map_err(|v| (i, v))?;
        }
        case.version = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        case.update_time = events.iter().map(|e| e.record_time).max().unwrap_or(case.update_time);
        Ok(case)
    }

    /// Applies one event after those already applied. Fails, changing
    /// nothing, if the event contradicts the case. Field paths in the error
    /// are relative to the event, e.g. `support_person_approved.custody_holder`.
    pub fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), Violations> {
        let event = &recorded.event;
        let on = event.occurred_on;
        let ty = event.kind.type_name();
        self.check_fields(&event.kind).map_err(|v| v.within(ty))?;
        if let Some(holder) = event.kind.custody_holder() {
            self.require_custody_holder(holder).map_err(|v| v.within(ty))?;
        }
        let fail = |field: &str, why: String| Err(Violations::one(format!("{ty}.{field}"), why));
        let fail_event = |why: String| Err(Violations::one(ty, why));
        match &event.kind {
            EventKind::CaseOpened { .. } => {
                return fail_event("the case is already open; case_opened comes once".into());
            }
            EventKind::PlacementRecommended { basis, siblings_under_18_in_household, reason } => {
                self.recommendations.push(PlacementRecommendation {
                    recommended_on: on,
                    basis: *basis,
                    siblings_under_18_in_household: *siblings_under_18_in_household,
                    reason: *reason,
                });
            }
            EventKind::PlacementStarted { basis, site_kind } => {
                if let Some(p) = self.current_placement() {
                    return fail_event(format!(
                        "a placement is already in progress since {}; end it first",
                        p.start_date
                    ));
                }
                self.placements.push(Placement {
                    basis: *basis,
                    start_date: on,
                    end_date: None,
                    end_reason: None,
                    site_kind: *site_kind,
                });
            }
            EventKind::PlacementEnded { reason } => {
                let Some(p) = self.placements.last_mut().filter(|p| p.end_date.is_none()) else {
                    return fail_event(self.nothing_in_progress("placement", on, "placement_started"));
                };
                p.end_date = Some(on);
                p.end_reason = Some(*reason);
            }
            EventKind::SupportPersonOffered { custody_holder } => {
                self.track_mut(custody_holder).offered_on.push(on);
            }
            EventKind::SupportPersonAccepted { custody_holder }
            | EventKind::SupportPersonDeclined { custody_holder } => {
                let answer = if matches!(event.kind, EventKind::SupportPersonAccepted { .. }) {
                    OfferAnswer::Accepted
                } else {
                    OfferAnswer::Declined
                };
                let track = self.track_mut(custody_holder);
                if track.offered_on.is_empty() {
                    return fail(
                        "custody_holder",
                        format!("{custody_holder} has not been offered a support person on or before {on}"),
                    );
                }
                track.latest_answer = Some((answer, on));
            }
            EventKind::SupportPersonChosen { custody_holder, kind, person } => {
                let track = self.track_mut(custody_holder);
                if track.offered_on.is_empty() {
                    return fail(
                        "custody_holder",
                        format!("{custody_holder} has not been offered a support person on or before {on}"),
                    );
                }
                track.chosen = Some((*kind, on, person.clone()));
                track.decision = None;
            }
            EventKind::SupportPersonApproved { custody_holder }
            | EventKind::SupportPersonRefused { custody_holder, .. } => {
                let decision = if matches!(event.kind, EventKind::SupportPersonApproved { .. }) {
                    ApprovalDecision::Approved
                } else {
                    ApprovalDecision::Refused
                };
                let track = self.track_mut(custody_holder);
                if track.chosen.is_none() || track.decision.is_some() {
                    return fail(
                        "custody_holder",
                        format!(
                            "{custody_holder} has no support person chosen and awaiting a decision on {on}; \
                             record support_person_chosen first"
                        ),
                    );
                }
                track.decision = Some((decision, on));
            }
            EventKind::SupportDecided { custody_holder, measure, outcome } => {
                if *measure == SupportMeasure::Bl75 {
                    return fail(
                        "measure",
                        "bl75 is the support person; decide on it with support_person_* events".into(),
                    );
                }
                self.support_decisions.push(SupportDecision {
                    custody_holder: custody_holder.clone(),
                    measure: *measure,
                    outcome: *outcome,
                    decided_on: on,
                });
            }
            EventKind::SupportStarted { custody_holder, measure } => {
                self.support_starts.push(SupportStart {
                    custody_holder: custody_holder.clone(),
                    measure: *measure,
                    started_on: on,
                });
            }
            EventKind::ConsentGiven { custody_holder, scope } => {
                self.consents.push(Consent {
                    custody_holder: custody_holder.clone(),
                    scope: scope.clone(),
                    given_on: on,
                    withdrawn_on: None,
                });
            }
            EventKind::ConsentWithdrawn { custody_holder, scope } => {
                let holding = self
                    .consents
                    .iter_mut()
                    .filter(|c| &c.custody_holder == custody_holder && &c.scope == scope && c.withdrawn_on.is_none());
                let mut any = false;
                for consent in holding {
                    consent.withdrawn_on = Some(on);
                    any = true;
                }
                if !any {
                    return fail(
                        "scope",
                        format!("{custody_holder} has no consent in scope {scope} that holds on {on}"),
                    );
                }
            }
            EventKind::LegalBasisRecorded { custody_holder, scope, citation } => {
                if !scope.as_str().starts_with("share:") {
                    return fail(
                        "scope",
                        format!("a legal basis covers sharing: use share:{{recipient}}, not {scope}"),
                    );
                }
                check_text("citation", citation).map_err(|v| v.within(ty))?;
                if citation.trim().is_empty() {
                    return fail("citation", "name the provision, e.g. \"barnets lov § 182, stk. 2\"".into());
                }
                let holds = self
                    .legal_bases
                    .iter()
                    .any(|b| &b.custody_holder == custody_holder && &b.scope == scope && b.ended_on.is_none());
                if holds {
                    return fail("scope", format!("{custody_holder} already has a legal basis in scope {scope}"));
                }
                self.legal_bases.push(LegalBasis {
                    custody_holder: custody_holder.clone(),
                    scope: scope.clone(),
                    citation: citation.clone(),
                    recorded_on: on,
                    ended_on: None,
                });
            }
            EventKind::LegalBasisEnded { custody_holder, scope } => {
                let Some(basis) = self
                    .legal_bases
                    .iter_mut()
                    .find(|b| &b.custody_holder == custody_holder && &b.scope == scope && b.ended_on.is_none())
                else {
                    return fail("scope", format!("{custody_holder} has no legal basis in scope {scope} that holds"));
                };
                basis.ended_on = Some(on);
            }
            EventKind::PlanPrepared { plan_id, kind, covers, goals } => {
                if self.plans.iter().any(|p| &p.plan_id == plan_id) {
                    return fail("plan_id", format!("plan {plan_id:?} already exists in this case"));
                }
                if *kind == PlanKind::Bl78 && covers.is_empty() {
                    return fail("covers", "a § 78 holistic plan must name the custody holders it covers".into());
                }
                let mut seen = Vec::new();
                for (i, holder) in covers.iter().enumerate() {
                    self.require_custody_holder(holder).map_err(|v| v.within(&format!("{ty}.covers[{i}]")))?;
                    if seen.contains(&holder) {
                        return fail(&format!("covers[{i}]"), format!("{holder} is listed twice"));
                    }
                    seen.push(holder);
                }
                self.check_goal_holders(*kind, covers, goals).map_err(|v| v.within(ty))?;
                self.plans.push(Plan {
                    plan_id: plan_id.clone(),
                    kind: *kind,
                    prepared_on: on,
                    covers: covers.clone(),
                    goals: goals.clone(),
                    coordinator: None,
                });
            }
            EventKind::PlanCoordinatorNamed { plan_id, coordinator } => {
                let Some(plan) = self.plans.iter_mut().find(|p| &p.plan_id == plan_id) else {
                    return fail("plan_id", format!("the case has no plan {plan_id:?}"));
                };
                if plan.kind != PlanKind::Bl78 {
                    return fail(
                        "plan_id",
                        format!("plan {plan_id:?} is a § 77 plan; a coordinator belongs to a § 78 holistic plan"),
                    );
                }
                plan.coordinator = Some((coordinator.clone(), on));
            }
            EventKind::PlanGoalsUpdated { plan_id, goals } => {
                let Some(at) = self.plans.iter().position(|p| &p.plan_id == plan_id) else {
                    return fail("plan_id", format!("the case has no plan {plan_id:?}"));
                };
                let plan = &self.plans[at];
                self.check_goal_holders(plan.kind, &plan.covers, goals).map_err(|v| v.within(ty))?;
                self.plans[at].goals = goals.clone();
            }
            EventKind::PlanOmitted { reasons } => {
                self.plan_omissions.push(PlanOmission { omitted_on: on, reasons: reasons.clone() });
            }
            EventKind::RevisionOffered => self.revisions.push(Revision { kind: RevisionKind::Offered, on }),
            EventKind::RevisionMade => self.revisions.push(Revision { kind: RevisionKind::Made, on }),
            EventKind::RevisionAssessed => {
                self.revisions.push(Revision { kind: RevisionKind::Assessed, on });
            }
            EventKind::HomecomingPeriodStarted => {
                if let Some(p) = self.homecoming_periods.last().filter(|p| p.end_date.is_none()) {
                    return fail_event(format!("a homecoming period is already running since {}", p.start_date));
                }
                self.homecoming_periods.push(Period { start_date: on, end_date: None });
            }
            EventKind::HomecomingPeriodEnded => {
                let Some(p) = self.homecoming_periods.last_mut().filter(|p| p.end_date.is_none()) else {
                    return fail_event(self.nothing_in_progress("homecoming period", on, "homecoming_period_started"));
                };
                p.end_date = Some(on);
            }
            EventKind::HomecomingPeriodWaived { reasons } => {
                // While the child is placed, or on the day the placement ended.
                let ended_today = self.placements.last().is_some_and(|p| p.end_date == Some(on));
                if self.current_placement().is_none() && !ended_today {
                    return fail_event(format!(
                        "no placement is in progress on {on}; a homecoming period is waived while the child is placed \
                         (or on the day the placement ends)"
                    ));
                }
                self.homecoming_waivers.push(HomecomingWaiver { waived_on: on, reasons: reasons.clone() });
            }
            EventKind::CustodyHolderMoved { custody_holder, to_municipality } => {
                if to_municipality == &self.placing_municipality.cvr {
                    return fail(
                        "to_municipality",
                        "is the placing municipality; record a move to another municipality".into(),
                    );
                }
                self.moves.push(Move {
                    custody_holder: custody_holder.clone(),
                    to_municipality: to_municipality.clone(),
                    moved_on: on,
                });
            }
            EventKind::CaseHandoverSent { to_municipality } => {
                if to_municipality == &self.placing_municipality.cvr {
                    return fail("to_municipality", "is the placing municipality itself".into());
                }
                self.handovers.push(Handover { to_municipality: to_municipality.clone(), sent_on: on });
            }
            EventKind::ContactSuspended => {
                if let Some(p) = self.contact_suspensions.last().filter(|p| p.end_date.is_none()) {
                    return fail_event(format!("contact is already suspended since {}", p.start_date));
                }
                self.contact_suspensions.push(Period { start_date: on, end_date: None });
            }
            EventKind::ContactResumed => {
                let Some(p) = self.contact_suspensions.last_mut().filter(|p| p.end_date.is_none()) else {
                    return fail_event(self.nothing_in_progress("contact suspension", on, "contact_suspended"));
                };
                p.end_date = Some(on);
            }
            EventKind::SectorContactAdded {
                contact_id,
                custody_holder,
                sector,
                organisation,
                contact_person,
                system_of_record,
            } => {
                if self.sector_contacts.iter().any(|c| &c.contact_id == contact_id) {
                    return fail("contact_id", format!("contact {contact_id:?} already exists in this case"));
                }
                self.sector_contacts.push(SectorContact {
                    contact_id: contact_id.clone(),
                    custody_holder: custody_holder.clone(),
                    sector: *sector,
                    organisation: organisation.clone(),
                    contact_person: contact_person.clone(),
                    system_of_record: system_of_record.clone(),
                    start_date: on,
                    end_date: None,
                });
            }
            EventKind::SectorContactEnded { contact_id } => {
                let Some(c) = self.sector_contacts.iter_mut().find(|c| &c.contact_id == contact_id) else {
                    return fail("contact_id", format!("the case has no sector contact {contact_id:?}"));
                };
                if let Some(ended) = c.end_date {
                    return fail("contact_id", format!("contact {contact_id:?} already ended on {ended}"));
                }
                c.end_date = Some(on);
            }
            EventKind::CorrespondenceRecorded { correspondence } => {
                if self.correspondence.iter().any(|m| m.message_id == correspondence.message_id) {
                    return fail(
                        "correspondence.message_id",
                        format!("message {:?} is already recorded in this case", correspondence.message_id),
                    );
                }
                self.correspondence.push(CorrespondenceRef {
                    message_id: correspondence.message_id.clone(),
                    sequence: recorded.sequence,
                    sector: correspondence.sector,
                    custody_holder: correspondence.custody_holder.clone(),
                });
            }
            EventKind::SectorPlanRecorded { plan } => {
                match self.sector_plans.iter_mut().find(|p| p.plan_id == plan.plan_id) {
                    Some(existing) if existing.custody_holder != plan.custody_holder => {
                        return fail(
                            "plan.custody_holder",
                            format!(
                                "plan {:?} belongs to {}; a plan cannot move to another parent",
                                plan.plan_id, existing.custody_holder
                            ),
                        );
                    }
                    Some(existing) => *existing = (**plan).clone(),
                    None => self.sector_plans.push((**plan).clone()),
                }
            }
            EventKind::AppointmentScheduled { appointment } => {
                match self.appointments.iter().position(|a| a.appointment_id == appointment.appointment_id) {
                    Some(at) if self.appointments[at].custody_holder != appointment.custody_holder => {
                        return fail(
                            "appointment.custody_holder",
                            format!("appointment {:?} belongs to another parent", appointment.appointment_id),
                        );
                    }
                    Some(at) => {
                        self.appointments.remove(at);
                    }
                    None => {}
                }
                let at = self.appointments.partition_point(|a| a.start_time <= appointment.start_time);
                self.appointments.insert(at, (**appointment).clone());
            }
            EventKind::AppointmentCancelled { appointment_id, reason } => {
                let Some(a) = self.appointments.iter_mut().find(|a| &a.appointment_id == appointment_id) else {
                    return fail("appointment_id", format!("the case has no appointment {appointment_id:?}"));
                };
                // A repeated cancellation (a source resending its state) changes nothing.
                if !a.cancelled {
                    a.cancelled = true;
                    a.cancellation_reason = reason.clone();
                }
            }
        }
        self.version = self.version.max(recorded.sequence);
        self.last_occurred_on = self.last_occurred_on.max(on);
        self.update_time = self.update_time.max(recorded.record_time);
        Ok(())
    }

    /// The placement in progress, if any.
    pub fn current_placement(&self) -> Option<&Placement> {
        self.placements.last().filter(|p| p.end_date.is_none())
    }

    /// The custody holder with this id, if the case has one.
    pub fn custody_holder(&self, id: &PartyId) -> Option<&Party> {
        self.custody_holders.iter().find(|p| &p.party_id == id)
    }

    fn require_custody_holder(&self, id: &PartyId) -> Result<(), Violations> {
        if self.custody_holder(id).is_some() {
            return Ok(());
        }
        let known: Vec<&str> = self.custody_holders.iter().map(|p| p.party_id.as_str()).collect();
        Err(Violations::one("custody_holder", format!("the case has no custody holder \"{id}\"; it has {known:?}")))
    }

    /// Goals name custody holders of the case; in a § 78 plan, ones it covers
    /// (paths `goals[i].custody_holders[j]`).
    pub fn check_goal_holders(&self, kind: PlanKind, covers: &[PartyId], goals: &[Goal]) -> Result<(), Violations> {
        let mut c = Collector::default();
        for (i, goal) in goals.iter().enumerate() {
            for (j, holder) in goal.custody_holders.iter().enumerate() {
                let field = format!("goals[{i}].custody_holders[{j}]");
                if self.custody_holder(holder).is_none() {
                    c.push(field, format!("the case has no custody holder \"{holder}\""));
                } else if kind == PlanKind::Bl78 && !covers.contains(holder) {
                    c.push(field, format!("{holder} is not covered by the plan"));
                }
            }
        }
        c.finish()
    }

    fn nothing_in_progress(&self, what: &str, on: Date, starter: &str) -> String {
        format!("no {what} is in progress on {on}; an end must follow a {starter} dated on or before it")
    }

    fn track_mut(&mut self, holder: &PartyId) -> &mut SupportPersonTrack {
        let at = match self.support_persons.iter().position(|t| &t.custody_holder == holder) {
            Some(at) => at,
            None => {
                self.support_persons.push(SupportPersonTrack {
                    custody_holder: holder.clone(),
                    offered_on: Vec::new(),
                    latest_answer: None,
                    chosen: None,
                    decision: None,
                });
                self.support_persons.len() - 1
            }
        };
        &mut self.support_persons[at]
    }

    /// Field-level checks that need no case state: lengths and formats.
    fn check_fields(&self, kind: &EventKind) -> Result<(), Violations> {
        let mut c = Collector::default();
        let mut text = |field: &str, value: &str| {
            if let Err(v) = check_text(field, value) {
                c.0.extend(v.0);
            }
        };
        match kind {
            EventKind::SupportPersonRefused { reason, .. } => text("reason", reason),
            EventKind::PlanOmitted { reasons } | EventKind::HomecomingPeriodWaived { reasons } => {
                text("reasons", reasons)
            }
            EventKind::CustodyHolderMoved { to_municipality, .. } | EventKind::CaseHandoverSent { to_municipality } => {
                if let Err(v) = check_cvr("to_municipality", to_municipality) {
                    c.0.extend(v.0);
                }
            }
            EventKind::PlanPrepared { plan_id, goals, .. } | EventKind::PlanGoalsUpdated { plan_id, goals } => {
                if let Err(v) = check_id("plan_id", plan_id) {
                    c.0.extend(v.0);
                }
                if let Err(v) = check_goals(goals) {
                    c.0.extend(v.0);
                }
            }
            EventKind::PlanCoordinatorNamed { plan_id, coordinator } => {
                if let Err(v) = check_id("plan_id", plan_id) {
                    c.0.extend(v.0);
                }
                if let Err(v) = check_coordinator(coordinator) {
                    c.0.extend(v.within("coordinator").0);
                }
            }
            EventKind::SectorContactAdded { contact_id, organisation, system_of_record, .. } => {
                if let Err(v) = check_id("contact_id", contact_id) {
                    c.0.extend(v.0);
                }
                if !system_of_record.is_empty()
                    && let Err(v) = check_id("system_of_record", system_of_record)
                {
                    c.0.extend(v.0);
                }
                if let Err(v) = check_organisation(organisation, false) {
                    c.0.extend(v.within("organisation").0);
                }
            }
            EventKind::SectorContactEnded { contact_id } => {
                if let Err(v) = check_id("contact_id", contact_id) {
                    c.0.extend(v.0);
                }
            }
            EventKind::CorrespondenceRecorded { correspondence } => {
                if let Err(v) = check_correspondence(correspondence) {
                    c.0.extend(v.within("correspondence").0);
                }
            }
            EventKind::SectorPlanRecorded { plan } => {
                if let Err(v) = check_sector_plan(plan) {
                    c.0.extend(v.within("plan").0);
                }
            }
            EventKind::AppointmentScheduled { appointment } => {
                if let Err(v) = check_appointment(appointment) {
                    c.0.extend(v.within("appointment").0);
                }
            }
            EventKind::AppointmentCancelled { appointment_id, reason } => {
                if let Err(v) = check_external_id("appointment_id", appointment_id) {
                    c.0.extend(v.0);
                }
                if let Err(v) = check_text("reason", reason) {
                    c.0.extend(v.0);
                }
            }
            _ => {}
        }
        c.finish()
    }
}

/// Most goals a plan may have.
pub const MAX_GOALS: usize = 100;

/// Checks a plan's goals: at most [`MAX_GOALS`], distinct ids, each goal's fields.
pub fn check_goals(goals: &[Goal]) -> Result<(), Violations> {
    let mut c = Collector::default();
    if goals.len() > MAX_GOALS {
        c.push("goals", format!("has {} entries; at most {MAX_GOALS} are allowed", goals.len()));
    }
    for (i, g) in goals.iter().enumerate() {
        if let Err(v) = check_goal(g) {
            c.0.extend(v.within(&format!("goals[{i}]")).0);
        }
        if !g.goal_id.is_empty() && goals[..i].iter().any(|h| h.goal_id == g.goal_id) {
            c.push(format!("goals[{i}].goal_id"), format!("{:?} is used twice in the plan", g.goal_id));
        }
    }
    c.finish()
}

/// Checks a coordinator: a name, and a phone number or an e-mail address to reach them.
pub fn check_coordinator(coordinator: &Coordinator) -> Result<(), Violations> {
    let mut c = Collector::default();
    let person = &coordinator.person;
    for (field, value) in [
        ("person.display_name", &person.display_name),
        ("person.role", &person.role),
        ("person.phone", &person.phone),
        ("person.email", &person.email),
    ] {
        if let Err(v) = check_text(field, value) {
            c.0.extend(v.0);
        }
    }
    if person.display_name.trim().is_empty() {
        c.push("person.display_name", "the coordinator must be named: the parents need to know whom to call");
    }
    if person.phone.trim().is_empty() && person.email.trim().is_empty() {
        c.push("person", "give a phone number or an e-mail address: the coordinator is the parents' contact");
    }
    if let Err(v) = check_organisation(&coordinator.organisation, false) {
        c.0.extend(v.within("organisation").0);
    }
    c.finish()
}

fn check_goal(goal: &Goal) -> Result<(), Violations> {
    let mut c = Collector::default();
    for (field, value) in
        [("goal_id", &goal.goal_id), ("change_in_parents", &goal.change_in_parents), ("owner", &goal.owner)]
    {
        if let Err(v) = check_text(field, value) {
            c.0.extend(v.0);
        }
    }
    if goal.sub_goals.len() > 100 {
        c.push("sub_goals", format!("has {} entries; at most 100 are allowed", goal.sub_goals.len()));
    }
    for (i, s) in goal.sub_goals.iter().enumerate() {
        if let Err(v) = check_text(&format!("sub_goals[{i}]"), s) {
            c.0.extend(v.0);
        }
    }
    c.finish()
}

/// Checks an organisation; `cvr_required` for the placing municipality.
pub fn check_organisation(org: &Organisation, cvr_required: bool) -> Result<(), Violations> {
    let mut c = Collector::default();
    if (cvr_required || !org.cvr.is_empty())
        && let Err(v) = check_cvr("cvr", &org.cvr)
    {
        c.0.extend(v.0);
    }
    let ean_ok = org.ean.is_empty() || (org.ean.len() == 13 && org.ean.bytes().all(|b| b.is_ascii_digit()));
    if !ean_ok {
        c.push("ean", "is not an EAN/GLN location number (13 digits)");
    }
    if org.sor.len() > 20 || !org.sor.bytes().all(|b| b.is_ascii_digit()) {
        c.push("sor", "is not a SOR code (up to 20 digits)");
    }
    if let Err(v) = check_text("display_name", &org.display_name) {
        c.0.extend(v.0);
    }
    c.finish()
}

/// Checks the data of a `case_opened` event.
pub fn check_opening(
    child: &Child,
    custody_holders: &[Party],
    placing_municipality: &Organisation,
) -> Result<(), Violations> {
    let mut c = Collector::default();
    if let Err(v) = check_text("child.journal_reference", &child.journal_reference) {
        c.0.extend(v.0);
    }
    if custody_holders.is_empty() {
        c.push("custody_holders", "at least one custody holder is required");
    }
    if custody_holders.len() > 4 {
        c.push("custody_holders", format!("has {} entries; at most 4 are allowed", custody_holders.len()));
    }
    for (i, p) in custody_holders.iter().enumerate() {
        if custody_holders[..i].iter().any(|q| q.party_id == p.party_id) {
            c.push(format!("custody_holders[{i}].party_id"), format!("{:?} is used twice", p.party_id.as_str()));
        }
        if let Err(v) = check_text(&format!("custody_holders[{i}].display_name"), &p.display_name) {
            c.0.extend(v.0);
        }
    }
    if let Err(v) = check_organisation(placing_municipality, true) {
        c.0.extend(v.within("placing_municipality").0);
    }
    c.finish()
}

#[cfg(test)]
mod tests;
