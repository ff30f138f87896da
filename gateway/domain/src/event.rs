//! Case events: the vocabulary of change, mirroring `bro.v1.CaseEvent`.

use crate::{Appointment, ConsentScope, Correspondence, Date, PartyId, PersonId, SectorPlan, Timestamp};

/// The legal basis of a placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PlacementBasis {
    /// Barnets lov § 46, with consent.
    Bl46,
    /// Barnets lov § 47, without consent.
    Bl47,
    /// Lov om bekæmpelse af ungdomskriminalitet § 14.
    Lbu14,
}

/// Why a placement was recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RecommendationReason {
    /// Neglect.
    Neglect,
    /// Other serious social conditions with the parents.
    SeriousSocialConditions,
    /// Conditions with the child.
    ChildConditions,
    /// Any other reason.
    Other,
}

/// The kind of placement site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PlacementSiteKind {
    /// Foster family.
    FosterFamily,
    /// Network foster family.
    NetworkFosterFamily,
    /// Residential institution.
    ResidentialInstitution,
    /// Any other site.
    Other,
}

/// Why a placement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PlacementEndReason {
    /// The child went home.
    Homecoming,
    /// Any other reason.
    Other,
}

/// Another sector the parents deal with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Sector {
    /// Jobcentre.
    Jobcentre,
    /// Regional psychiatry.
    Psychiatry,
    /// Addiction treatment centre.
    AddictionTreatment,
    /// Other health care.
    Health,
    /// Any other sector.
    Other,
}

/// Who a chosen support person is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SupportPersonKind {
    /// A professional.
    Professional,
    /// From the parents' network.
    Network,
}

/// A support measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SupportMeasure {
    /// § 32 stk. 1 nr. 2, practical/pedagogical support in the home.
    Bl32_1_2,
    /// § 32 stk. 1 nr. 3, permanent contact person.
    Bl32_1_3,
    /// § 32 stk. 1 nr. 5, family therapy.
    Bl32_1_5,
    /// § 32 stk. 1 nr. 8, other counselling, treatment or support.
    Bl32_1_8,
    /// § 35, economic support.
    Bl35,
    /// Support under other legislation.
    OtherLegislation,
    /// § 75, the support person (support starts only).
    Bl75,
}

impl SupportMeasure {
    /// Whether the measure is under § 32 stk. 1 and so needs consent (§ 32 stk. 2).
    pub fn needs_bl32_consent(self) -> bool {
        matches!(self, Self::Bl32_1_2 | Self::Bl32_1_3 | Self::Bl32_1_5 | Self::Bl32_1_8)
    }
}

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DecisionOutcome {
    /// Granted.
    Granted,
    /// Refused.
    Refused,
}

/// The kind of parent plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PlanKind {
    /// § 77 parent action plan.
    Bl77,
    /// § 78 holistic plan.
    Bl78,
}

/// What a goal aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GoalAim {
    /// Care at a possible homecoming.
    Homecoming,
    /// Contact during the placement.
    Contact,
}

/// An organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Organisation {
    /// Name.
    pub display_name: String,
    /// CVR number, if any.
    pub cvr: String,
    /// EAN/GLN location number, if any.
    pub ean: String,
    /// SOR code, if any.
    pub sor: String,
}

/// A named professional. Names are personal data: `Debug` masks them.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactPerson {
    /// Name.
    pub display_name: String,
    /// Role or title.
    pub role: String,
    /// Telephone.
    pub phone: String,
    /// E-mail.
    pub email: String,
}

impl std::fmt::Debug for ContactPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactPerson").field("role", &self.role).finish_non_exhaustive()
    }
}

/// The child a case concerns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Child {
    /// The child's identifier, if recorded.
    pub identifier: Option<PersonId>,
    /// Reference to the journal case.
    pub journal_reference: String,
}

/// A custody holder.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Party {
    /// Id within the case.
    pub party_id: PartyId,
    /// Person identifier, if recorded.
    pub identifier: Option<PersonId>,
    /// Name; personal data.
    pub display_name: String,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("party_id", &self.party_id)
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

/// A plan goal.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Goal {
    /// Id within the plan.
    pub goal_id: String,
    /// The change to be seen in the parents.
    pub change_in_parents: String,
    /// Homecoming or contact, if stated.
    pub aim: Option<GoalAim>,
    /// Sub-goals.
    pub sub_goals: Vec<String>,
    /// Owning sector, if stated (none: the children's authority).
    pub owner_sector: Option<Sector>,
    /// Free-text owner.
    pub owner: String,
    /// The custody holders the goal concerns (empty: all the plan covers).
    pub custody_holders: Vec<PartyId>,
}

/// The coordinator of a § 78 holistic plan: the parents' one contact.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coordinator {
    /// The person (name, role, phone, e-mail).
    pub person: ContactPerson,
    /// Where they work.
    pub organisation: Organisation,
    /// Their sector (none: the children's authority itself).
    pub sector: Option<Sector>,
}

/// Where an event came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventSource {
    /// Source system id.
    pub system: String,
    /// The source message's id.
    pub message_id: String,
}

/// What happened, with the data of that kind of event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventKind {
    /// The case was opened.
    CaseOpened {
        /// The child.
        child: Child,
        /// Custody holders, at least one.
        custody_holders: Vec<Party>,
        /// Placing municipality.
        placing_municipality: Organisation,
    },
    /// A placement was recommended.
    PlacementRecommended {
        /// Basis.
        basis: PlacementBasis,
        /// Siblings under 18 in the household.
        siblings_under_18_in_household: bool,
        /// Reason.
        reason: RecommendationReason,
    },
    /// A placement started.
    PlacementStarted {
        /// Basis.
        basis: PlacementBasis,
        /// Site kind, if known.
        site_kind: Option<PlacementSiteKind>,
    },
    /// The current placement ended.
    PlacementEnded {
        /// Why.
        reason: PlacementEndReason,
    },
    /// A support person was offered.
    SupportPersonOffered {
        /// To whom.
        custody_holder: PartyId,
    },
    /// The offer was accepted.
    SupportPersonAccepted {
        /// By whom.
        custody_holder: PartyId,
    },
    /// The offer was declined.
    SupportPersonDeclined {
        /// By whom.
        custody_holder: PartyId,
    },
    /// A support person was chosen.
    SupportPersonChosen {
        /// By whom.
        custody_holder: PartyId,
        /// Professional or network.
        kind: SupportPersonKind,
        /// The person, if recorded.
        person: Option<ContactPerson>,
    },
    /// The choice was approved.
    SupportPersonApproved {
        /// Whose choice.
        custody_holder: PartyId,
    },
    /// The choice was refused.
    SupportPersonRefused {
        /// Whose choice.
        custody_holder: PartyId,
        /// Why.
        reason: String,
    },
    /// A § 76 decision.
    SupportDecided {
        /// For whom.
        custody_holder: PartyId,
        /// Measure.
        measure: SupportMeasure,
        /// Outcome.
        outcome: DecisionOutcome,
    },
    /// Support started.
    SupportStarted {
        /// For whom.
        custody_holder: PartyId,
        /// Measure.
        measure: SupportMeasure,
    },
    /// Consent given.
    ConsentGiven {
        /// By whom.
        custody_holder: PartyId,
        /// Scope.
        scope: ConsentScope,
    },
    /// Consent withdrawn.
    ConsentWithdrawn {
        /// By whom.
        custody_holder: PartyId,
        /// Scope.
        scope: ConsentScope,
    },
    /// A legal basis for sharing a custody holder's data without consent.
    LegalBasisRecorded {
        /// Whose data.
        custody_holder: PartyId,
        /// The sharing scope it covers (`share:{recipient}`).
        scope: ConsentScope,
        /// The provision, e.g. "barnets lov § 182, stk. 2".
        citation: String,
    },
    /// A recorded legal basis no longer applies.
    LegalBasisEnded {
        /// Whose data.
        custody_holder: PartyId,
        /// The sharing scope.
        scope: ConsentScope,
    },
    /// A plan was prepared.
    PlanPrepared {
        /// Plan id (assigned when the event is stored, if it came empty).
        plan_id: String,
        /// § 77 or § 78.
        kind: PlanKind,
        /// For § 78, the covered custody holders.
        covers: Vec<PartyId>,
        /// Goals.
        goals: Vec<Goal>,
    },
    /// The coordinator of a § 78 plan was named (a later one replaces it).
    PlanCoordinatorNamed {
        /// The plan.
        plan_id: String,
        /// The coordinator.
        coordinator: Coordinator,
    },
    /// A plan's goals were replaced.
    PlanGoalsUpdated {
        /// The plan.
        plan_id: String,
        /// The new goals.
        goals: Vec<Goal>,
    },
    /// The plan was omitted.
    PlanOmitted {
        /// Reasons (empty: none given).
        reasons: String,
    },
    /// A revision was offered.
    RevisionOffered,
    /// A revision was made.
    RevisionMade,
    /// The need for a revision was assessed.
    RevisionAssessed,
    /// A homecoming period started.
    HomecomingPeriodStarted,
    /// The homecoming period ended.
    HomecomingPeriodEnded,
    /// The municipality decided that the placement ends without a homecoming
    /// period (§ 100: special circumstances make one unnecessary).
    HomecomingPeriodWaived {
        /// Why; empty text is no reasons.
        reasons: String,
    },
    /// Contact suspended at the child's request.
    ContactSuspended,
    /// Contact resumed.
    ContactResumed,
    /// A sector contact was registered.
    SectorContactAdded {
        /// Contact id (assigned when stored, if it came empty).
        contact_id: String,
        /// Whose contact.
        custody_holder: PartyId,
        /// Sector.
        sector: Sector,
        /// Organisation.
        organisation: Organisation,
        /// Contact person, if known.
        contact_person: Option<ContactPerson>,
        /// System of record id.
        system_of_record: String,
    },
    /// A sector contact ended.
    SectorContactEnded {
        /// Which.
        contact_id: String,
    },
    /// A correspondence message was sent or received.
    CorrespondenceRecorded {
        /// The message.
        correspondence: Box<Correspondence>,
    },
    /// Another sector's plan was recorded or replaced.
    SectorPlanRecorded {
        /// The plan.
        plan: Box<SectorPlan>,
    },
    /// An appointment was scheduled or moved.
    AppointmentScheduled {
        /// The appointment.
        appointment: Box<Appointment>,
    },
    /// A custody holder moved to another municipality (§ 132).
    CustodyHolderMoved {
        /// Who moved.
        custody_holder: PartyId,
        /// The new municipality's CVR number.
        to_municipality: String,
    },
    /// The case material was sent to another municipality (§ 132).
    CaseHandoverSent {
        /// The receiving municipality's CVR number.
        to_municipality: String,
    },
    /// An appointment was cancelled.
    AppointmentCancelled {
        /// Which.
        appointment_id: String,
        /// Why.
        reason: String,
    },
}

impl EventKind {
    /// The event type's name, as in the scenario format and the proto `oneof`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::CaseOpened { .. } => "case_opened",
            EventKind::PlacementRecommended { .. } => "placement_recommended",
            EventKind::PlacementStarted { .. } => "placement_started",
            EventKind::PlacementEnded { .. } => "placement_ended",
            EventKind::SupportPersonOffered { .. } => "support_person_offered",
            EventKind::SupportPersonAccepted { .. } => "support_person_accepted",
            EventKind::SupportPersonDeclined { .. } => "support_person_declined",
            EventKind::SupportPersonChosen { .. } => "support_person_chosen",
            EventKind::SupportPersonApproved { .. } => "support_person_approved",
            EventKind::SupportPersonRefused { .. } => "support_person_refused",
            EventKind::SupportDecided { .. } => "support_decided",
            EventKind::SupportStarted { .. } => "support_started",
            EventKind::ConsentGiven { .. } => "consent_given",
            EventKind::LegalBasisRecorded { .. } => "legal_basis_recorded",
            EventKind::LegalBasisEnded { .. } => "legal_basis_ended",
            EventKind::ConsentWithdrawn { .. } => "consent_withdrawn",
            EventKind::PlanPrepared { .. } => "plan_prepared",
            EventKind::PlanCoordinatorNamed { .. } => "plan_coordinator_named",
            EventKind::PlanGoalsUpdated { .. } => "plan_goals_updated",
            EventKind::PlanOmitted { .. } => "plan_omitted",
            EventKind::RevisionOffered => "revision_offered",
            EventKind::RevisionMade => "revision_made",
            EventKind::RevisionAssessed => "revision_assessed",
            EventKind::HomecomingPeriodStarted => "homecoming_period_started",
            EventKind::HomecomingPeriodEnded => "homecoming_period_ended",
            EventKind::HomecomingPeriodWaived { .. } => "homecoming_period_waived",
            EventKind::ContactSuspended => "contact_suspended",
            EventKind::ContactResumed => "contact_resumed",
            EventKind::SectorContactAdded { .. } => "sector_contact_added",
            EventKind::SectorContactEnded { .. } => "sector_contact_ended",
            EventKind::CorrespondenceRecorded { .. } => "correspondence_recorded",
            EventKind::SectorPlanRecorded { .. } => "sector_plan_recorded",
            EventKind::AppointmentScheduled { .. } => "appointment_scheduled",
            EventKind::AppointmentCancelled { .. } => "appointment_cancelled",
            EventKind::CustodyHolderMoved { .. } => "custody_holder_moved",
            EventKind::CaseHandoverSent { .. } => "case_handover_sent",
        }
    }

    /// The custody holder the event names, if it names one.
    pub fn custody_holder(&self) -> Option<&PartyId> {
        match self {
            EventKind::SupportPersonOffered { custody_holder }
            | EventKind::SupportPersonAccepted { custody_holder }
            | EventKind::SupportPersonDeclined { custody_holder }
            | EventKind::SupportPersonChosen { custody_holder, .. }
            | EventKind::SupportPersonApproved { custody_holder }
            | EventKind::SupportPersonRefused { custody_holder, .. }
            | EventKind::SupportDecided { custody_holder, .. }
            | EventKind::SupportStarted { custody_holder, .. }
            | EventKind::ConsentGiven { custody_holder, .. }
            | EventKind::ConsentWithdrawn { custody_holder, .. }
            | EventKind::LegalBasisRecorded { custody_holder, .. }
            | EventKind::LegalBasisEnded { custody_holder, .. }
            | EventKind::SectorContactAdded { custody_holder, .. }
            | EventKind::CustodyHolderMoved { custody_holder, .. } => Some(custody_holder),
            EventKind::CorrespondenceRecorded { correspondence } => Some(&correspondence.custody_holder),
            EventKind::SectorPlanRecorded { plan } => Some(&plan.custody_holder),
            EventKind::AppointmentScheduled { appointment } => Some(&appointment.custody_holder),
            _ => None,
        }
    }
}

/// An event as submitted: when it took effect, what happened, and its source.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// The legal date.
    pub occurred_on: Date,
    /// What happened.
    pub kind: EventKind,
    /// Where it came from, if through an adapter.
    pub source: Option<EventSource>,
}

/// An event as stored: with its sequence number and record-keeping data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedEvent {
    /// 1-based, gap-free position in the case's history.
    pub sequence: u64,
    /// When it was recorded.
    pub record_time: Timestamp,
    /// The request that recorded it.
    pub request_id: String,
    /// The event.
    pub event: Event,
}
