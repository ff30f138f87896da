//! The sharing law: what may leave the children's authority for another
//! sector's system, and what such a system may record in a case.
//!
//! A system of the placing municipality (its own journal) works the whole
//! case. Another sector's system — the jobcentre, psychiatry, addiction
//! treatment — sees only its own sector's items (contacts, correspondence,
//! plans, appointments) and its own scope's consents and legal bases, and
//! only of the custody holders whose consent in its scope (`share:jobcenter`,
//! …) holds or for whom a legal basis is recorded ([`Case::shares_with`]).
//! Nothing else — no child, no placement, no decisions, no other sector —
//! leaves under this law, and a sector records only its own sector's items.
//!
//! Every reader of a case goes through here: the API's reads, the outbox
//! planner, the delivery worker and the pull stream (which judge a queued
//! delivery again by the case as it is when it leaves), and the holistic
//! plan's distribution.

use std::collections::HashSet;

use bro_domain::{
    Appointment, Case, CaseId, Consent, CorrespondenceRef, Date, Event, EventKind, LegalBasis, Organisation, Party,
    PartyId, PlanKind, Sector, SectorContact, SectorPlan, Timestamp,
};

use crate::holistic::{self, HolisticPlan, PlanState};

/// The event types another sector's system may be sent (and subscribe to).
pub const SECTOR_EVENT_TYPES: &[&str] = &[
    "consent_given",
    "consent_withdrawn",
    "legal_basis_recorded",
    "legal_basis_ended",
    "sector_contact_added",
    "sector_contact_ended",
    "correspondence_recorded",
    "sector_plan_recorded",
    "appointment_scheduled",
    "appointment_cancelled",
];

/// The events that record an item of one sector (it names its sector).
const SECTOR_ITEM_TYPES: &[&str] =
    &["correspondence_recorded", "sector_plan_recorded", "appointment_scheduled", "sector_contact_added"];

/// The events that change an item recorded before (whose sector the case knows).
const ITEM_CHANGE_TYPES: &[&str] = &["appointment_cancelled", "sector_contact_ended"];

/// A system, as its configuration binds it, as the law judges a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient<'a> {
    /// A system of a municipality itself (its journal or case system): the
    /// cases that municipality places, whole.
    Municipality {
        /// The municipality's CVR number.
        cvr: &'a str,
    },
    /// Another sector's system.
    Sector {
        /// Its sector.
        sector: Sector,
        /// The consent scope that covers it, e.g. `share:jobcenter`.
        scope: &'a str,
        /// The one municipality whose cases it serves; none: every municipality's.
        serves: Option<&'a str>,
    },
    /// A system that only sends: it reads and is sent nothing.
    Nobody,
}

/// What a recipient may see of one case.
#[derive(Clone, Debug)]
pub enum Share {
    /// The whole case.
    Whole,
    /// A sector's part of it.
    Sector(SectorScope),
}

impl Recipient<'_> {
    /// Whether `case` is within the recipient's reach at all (its placing
    /// municipality), before any consent is asked.
    pub fn reaches(&self, case: &Case) -> bool {
        let cvr = case.placing_municipality.cvr.as_str();
        match self {
            Recipient::Municipality { cvr: own } => *own == cvr,
            Recipient::Sector { serves, .. } => serves.is_none_or(|own| own == cvr),
            Recipient::Nobody => false,
        }
    }

    /// What the recipient may see of `case` on `today`; `None`: nothing.
    pub fn share(&self, case: &Case, today: Date) -> Option<Share> {
        if !self.reaches(case) {
            return None;
        }
        match self {
            Recipient::Municipality { .. } => Some(Share::Whole),
            Recipient::Sector { sector, scope, .. } => {
                Some(Share::Sector(SectorScope::new(case, *sector, scope, today)))
            }
            Recipient::Nobody => None,
        }
    }
}

impl Share {
    /// Whether an event may be sent under this share.
    pub fn may_receive(&self, kind: &EventKind) -> bool {
        match self {
            Share::Whole => true,
            Share::Sector(scope) => scope.may_receive(kind),
        }
    }

    /// The custody holders a batch of `events` sent under this share may
    /// name: every one of the case for the municipality; for another sector,
    /// only those its events are about.
    pub fn parties<'c, 'e>(&self, case: &'c Case, events: impl IntoIterator<Item = &'e EventKind>) -> Vec<&'c Party> {
        match self {
            Share::Whole => case.custody_holders.iter().collect(),
            Share::Sector(_) => {
                let named: Vec<&PartyId> = events.into_iter().filter_map(EventKind::custody_holder).collect();
                case.custody_holders.iter().filter(|p| named.contains(&&p.party_id)).collect()
            }
        }
    }
}

/// Who and what a sector's view of one case covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorScope {
    sector: Sector,
    scope: String,
    holders: HashSet<PartyId>,
    appointments: HashSet<String>,
    contacts: HashSet<String>,
}

impl SectorScope {
    /// The view of `case` for `sector` under consent scope `scope` on
    /// `today`: the custody holders who share in that scope that day, and
    /// their items of the sector.
    pub fn new(case: &Case, sector: Sector, scope: &str, today: Date) -> SectorScope {
        let holders: HashSet<PartyId> = case.shared_custody_holders(scope, today).map(|p| p.party_id.clone()).collect();
        let appointments = case
            .appointments
            .iter()
            .filter(|a| a.sector == sector && holders.contains(&a.custody_holder))
            .map(|a| a.appointment_id.clone())
            .collect();
        let contacts = case
            .sector_contacts
            .iter()
            .filter(|c| c.sector == sector && holders.contains(&c.custody_holder))
            .map(|c| c.contact_id.clone())
            .collect();
        SectorScope { sector, scope: scope.to_owned(), holders, appointments, contacts }
    }

    /// The sector.
    pub fn sector(&self) -> Sector {
        self.sector
    }

    /// The consent scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Whether any custody holder is covered.
    pub fn covers_anyone(&self) -> bool {
        !self.holders.is_empty()
    }

    /// Whether `party` is covered.
    pub fn covers(&self, party: &PartyId) -> bool {
        self.holders.contains(party)
    }

    fn mine(&self, sector: Sector, holder: &PartyId) -> bool {
        sector == self.sector && self.holders.contains(holder)
    }

    fn in_scope(&self, scope: &str, holder: &PartyId) -> bool {
        scope == self.scope && self.holders.contains(holder)
    }

    /// Whether the sector may read a letter of the case: its own sector's
    /// letter about a covered custody holder.
    pub fn may_read(&self, letter: &CorrespondenceRef) -> bool {
        self.mine(letter.sector, &letter.custody_holder)
    }

    /// Whether the sector may see an appointment of the case: its own
    /// sector's appointment with a covered custody holder.
    pub fn may_see_appointment(&self, appointment: &Appointment) -> bool {
        self.mine(appointment.sector, &appointment.custody_holder)
    }

    /// Whether an event of the case may be shown to the sector.
    pub fn may_see(&self, kind: &EventKind) -> bool {
        match kind {
            EventKind::CorrespondenceRecorded { correspondence: c } => self.mine(c.sector, &c.custody_holder),
            EventKind::SectorPlanRecorded { plan } => self.mine(plan.sector, &plan.custody_holder),
            EventKind::AppointmentScheduled { appointment: a } => self.mine(a.sector, &a.custody_holder),
            EventKind::AppointmentCancelled { appointment_id, .. } => self.appointments.contains(appointment_id),
            EventKind::SectorContactAdded { sector, custody_holder, .. } => self.mine(*sector, custody_holder),
            EventKind::SectorContactEnded { contact_id } => self.contacts.contains(contact_id),
            EventKind::ConsentGiven { custody_holder, scope }
            | EventKind::ConsentWithdrawn { custody_holder, scope }
            | EventKind::LegalBasisRecorded { custody_holder, scope, .. }
            | EventKind::LegalBasisEnded { custody_holder, scope } => self.in_scope(scope.as_str(), custody_holder),
            _ => false,
        }
    }

    /// Whether an event may be sent to the sector's system: what it may see,
    /// and the withdrawal of a consent (or the end of a legal basis) in its
    /// own scope, so it knows to stop — even though the parent is no longer
    /// covered after it.
    pub fn may_receive(&self, kind: &EventKind) -> bool {
        self.may_see(kind)
            || matches!(kind,
                EventKind::ConsentWithdrawn { scope, .. } | EventKind::LegalBasisEnded { scope, .. }
                    if scope.as_str() == self.scope)
    }

    /// The case as the sector may see it.
    pub fn view(&self, case: &Case) -> SectorView {
        let mine = |sector: Sector, holder: &PartyId| self.mine(sector, holder);
        SectorView {
            case_id: case.id.clone(),
            version: case.version,
            create_time: case.create_time,
            update_time: case.update_time,
            placing_municipality: case.placing_municipality.clone(),
            custody_holders: case.custody_holders.iter().filter(|p| self.covers(&p.party_id)).cloned().collect(),
            sector_contacts: case
                .sector_contacts
                .iter()
                .filter(|c| mine(c.sector, &c.custody_holder))
                .cloned()
                .collect(),
            consents: case
                .consents
                .iter()
                .filter(|c| self.in_scope(c.scope.as_str(), &c.custody_holder))
                .cloned()
                .collect(),
            legal_bases: case
                .legal_bases
                .iter()
                .filter(|b| self.in_scope(b.scope.as_str(), &b.custody_holder))
                .cloned()
                .collect(),
            correspondence: case.correspondence.iter().filter(|c| self.may_read(c)).cloned().collect(),
            sector_plans: case.sector_plans.iter().filter(|p| mine(p.sector, &p.custody_holder)).cloned().collect(),
            appointments: case.appointments.iter().filter(|a| self.may_see_appointment(a)).cloned().collect(),
        }
    }
}

/// A case as another sector may see it: everything here may leave, and
/// nothing that is not here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorView {
    /// The case.
    pub case_id: CaseId,
    /// Its version.
    pub version: u64,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it last changed.
    pub update_time: Timestamp,
    /// The placing municipality (an authority, not a person).
    pub placing_municipality: Organisation,
    /// The covered custody holders.
    pub custody_holders: Vec<Party>,
    /// Their contacts with the sector.
    pub sector_contacts: Vec<SectorContact>,
    /// Their consents in the sector's scope.
    pub consents: Vec<Consent>,
    /// Their legal bases in the sector's scope.
    pub legal_bases: Vec<LegalBasis>,
    /// Their correspondence with the sector, by reference (each letter is
    /// read from the event that recorded it).
    pub correspondence: Vec<CorrespondenceRef>,
    /// The sector's plans for them.
    pub sector_plans: Vec<SectorPlan>,
    /// Their appointments with the sector.
    pub appointments: Vec<Appointment>,
}

/// What `recipient` may be sent of holistic plan `plan` (assembled from
/// `case`), if anything: the municipality's own system the whole plan; another
/// sector's system only its consented view, and only while the plan is in
/// force ([`HolisticPlan::sector_view`]).
pub fn plan_view(recipient: &Recipient<'_>, plan: &HolisticPlan, case: &Case, today: Date) -> Option<HolisticPlan> {
    if !recipient.reaches(case) {
        return None;
    }
    match recipient {
        Recipient::Municipality { .. } => Some(plan.clone()),
        Recipient::Sector { sector, scope, .. } => {
            let shared: Vec<PartyId> = case.shared_custody_holders(scope, today).map(|p| p.party_id.clone()).collect();
            plan.sector_view(*sector, scope, &shared)
        }
        Recipient::Nobody => None,
    }
}

/// Whether a queued delivery of holistic plan `plan_id` about `parents` may
/// still go to `recipient`, judged by the case as it is now: a notice that
/// distribution ended always (it carries nothing new); a view to another
/// sector only while the plan is in force and every parent in it still
/// shares with the sector (a newer delivery carries the view that remains).
pub fn plan_still_sendable(
    recipient: &Recipient<'_>,
    case: &Case,
    plan_id: &str,
    parents: &[PartyId],
    ended_notice: bool,
    today: Date,
) -> bool {
    if !recipient.reaches(case) {
        return false;
    }
    match recipient {
        Recipient::Municipality { .. } => true,
        Recipient::Sector { .. } if ended_notice => true,
        Recipient::Sector { sector, scope, .. } => {
            let in_force = case
                .plans
                .iter()
                .find(|p| p.plan_id == plan_id && p.kind == PlanKind::Bl78)
                .is_some_and(|plan| holistic::state(case, plan) == PlanState::InForce);
            let scope = SectorScope::new(case, *sector, scope, today);
            in_force && parents.iter().all(|p| scope.covers(p))
        }
        Recipient::Nobody => false,
    }
}

/// Who records, as its configuration binds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorder {
    /// A system of the placing municipality: it records anything.
    Municipality,
    /// Another sector's system: its own sector's items only.
    Sector(Sector),
    /// A system whose binding the law does not know: nothing.
    Nobody,
}

/// One event a message asks to record, as the law looks at it before the
/// message is matched to a case (its people are not known yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted<'a> {
    /// The event type, e.g. `appointment_scheduled`.
    pub event_type: &'a str,
    /// For an item of a sector, the sector it names (`None`: none the
    /// gateway knows).
    pub sector: Option<Sector>,
}

/// Whether `recorder` may record `events`: a municipality's own system
/// anything; another sector's system only items of its own sector (letters,
/// plans, appointments, contacts) and changes to items — never consents,
/// legal bases or the municipality's decisions. An event that says nothing
/// (`None`) is left to be refused when it is read. The refusal names the
/// event by its index and no personal data.
pub fn may_record(recorder: Recorder, events: &[Option<Submitted<'_>>]) -> Result<(), String> {
    if recorder == Recorder::Municipality {
        return Ok(());
    }
    for (i, event) in events.iter().enumerate() {
        let Some(event) = event else { continue };
        if recorder == Recorder::Nobody {
            return Err(format!("events[{i}]: this system may record nothing"));
        }
        if ITEM_CHANGE_TYPES.contains(&event.event_type) {
            continue;
        }
        if !SECTOR_ITEM_TYPES.contains(&event.event_type) {
            return Err(format!(
                "events[{i}]: this system may not record {}; only the municipality's own systems do",
                event.event_type
            ));
        }
        if let Recorder::Sector(own) = recorder
            && event.sector != Some(own)
        {
            return Err(format!("events[{i}]: this system records only its own sector's items"));
        }
    }
    Ok(())
}

/// Whether another sector's events change only that sector's items of
/// `case`: the appointments it cancels and the contacts it ends must be its
/// own sector's.
pub fn only_own_items(case: &Case, sector: Sector, events: &[Event]) -> Result<(), String> {
    for event in events {
        match &event.kind {
            EventKind::AppointmentCancelled { appointment_id, .. }
                if case.appointments.iter().any(|a| &a.appointment_id == appointment_id && a.sector != sector) =>
            {
                return Err("an appointment of another sector cannot be cancelled by this system".into());
            }
            EventKind::SectorContactEnded { contact_id }
                if case.sector_contacts.iter().any(|c| &c.contact_id == contact_id && c.sector != sector) =>
            {
                return Err("a contact of another sector cannot be ended by this system".into());
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
