//! What another sector's system may see of a case: only its own sector's
//! items (contacts, correspondence, plans, appointments) and its own consent
//! scope's consents, of the custody holders whose consent in that scope holds.
//! Nothing else — no child, no placement, no decisions, no other sector —
//! leaves through these views.

use std::collections::HashSet;

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_domain::Case;

/// Who and what a sector view covers.
#[derive(Clone, Debug)]
pub struct SectorScope {
    sector: i32,
    scope: String,
    holders: HashSet<String>,
    appointments: HashSet<String>,
    contacts: HashSet<String>,
}

impl SectorScope {
    /// The view of `case` for `sector` under consent scope `scope`.
    pub fn new(case: &Case, sector: pb::Sector, scope: &str) -> SectorScope {
        Self::of_projection(&bro_api::convert::case_to_pb(case), sector, scope)
    }

    /// The same, from the stored projection.
    pub fn of_projection(projection: &pb::Case, sector: pb::Sector, scope: &str) -> SectorScope {
        // Consents that hold, and legal bases that have not ended (as `Case::shares_with`).
        let consented = projection
            .consents
            .iter()
            .filter(|c| c.scope == scope && c.withdrawn_on.is_none())
            .map(|c| c.custody_holder.clone());
        let by_law = projection
            .legal_bases
            .iter()
            .filter(|b| b.scope == scope && b.ended_on.is_none())
            .map(|b| b.custody_holder.clone());
        let holders: HashSet<String> =
            consented.chain(by_law).filter(|h| projection.custody_holders.iter().any(|p| &p.party_id == h)).collect();
        let sector_pb = sector as i32;
        let appointments = projection
            .appointments
            .iter()
            .filter(|a| a.sector == sector_pb && holders.contains(&a.custody_holder))
            .map(|a| a.appointment_id.clone())
            .collect();
        let contacts = projection
            .sector_contacts
            .iter()
            .filter(|c| c.sector == sector_pb && holders.contains(&c.custody_holder))
            .map(|c| c.contact_id.clone())
            .collect();
        SectorScope { sector: sector_pb, scope: scope.to_owned(), holders, appointments, contacts }
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
    pub fn covers(&self, party: &str) -> bool {
        self.holders.contains(party)
    }

    fn mine(&self, sector: i32, holder: &str) -> bool {
        sector == self.sector && self.holders.contains(holder)
    }

    /// Whether an event may be shown or sent.
    pub fn event_visible(&self, event: &pb::CaseEvent) -> bool {
        match &event.kind {
            Some(Kind::CorrespondenceRecorded(e)) => {
                e.correspondence.as_ref().is_some_and(|c| self.mine(c.sector, &c.custody_holder))
            }
            Some(Kind::SectorPlanRecorded(e)) => {
                e.plan.as_ref().is_some_and(|p| self.mine(p.sector, &p.custody_holder))
            }
            Some(Kind::AppointmentScheduled(e)) => {
                e.appointment.as_ref().is_some_and(|a| self.mine(a.sector, &a.custody_holder))
            }
            Some(Kind::AppointmentCancelled(e)) => self.appointments.contains(&e.appointment_id),
            Some(Kind::SectorContactAdded(e)) => self.mine(e.sector, &e.custody_holder),
            Some(Kind::SectorContactEnded(e)) => self.contacts.contains(&e.contact_id),
            Some(Kind::ConsentGiven(e)) => e.scope == self.scope && self.holders.contains(&e.custody_holder),
            Some(Kind::ConsentWithdrawn(e)) => e.scope == self.scope && self.holders.contains(&e.custody_holder),
            Some(Kind::LegalBasisRecorded(e)) => e.scope == self.scope && self.holders.contains(&e.custody_holder),
            Some(Kind::LegalBasisEnded(e)) => e.scope == self.scope && self.holders.contains(&e.custody_holder),
            _ => false,
        }
    }

    /// The case as the sector may see it.
    pub fn case_view(&self, case: &pb::Case) -> pb::Case {
        pb::Case {
            name: case.name.clone(),
            etag: case.etag.clone(),
            version: case.version,
            create_time: case.create_time,
            update_time: case.update_time,
            placing_municipality: case.placing_municipality.clone(),
            custody_holders: case.custody_holders.iter().filter(|p| self.covers(&p.party_id)).cloned().collect(),
            sector_contacts: case
                .sector_contacts
                .iter()
                .filter(|c| self.mine(c.sector, &c.custody_holder))
                .cloned()
                .collect(),
            consents: case
                .consents
                .iter()
                .filter(|c| c.scope == self.scope && self.covers(&c.custody_holder))
                .cloned()
                .collect(),
            legal_bases: case
                .legal_bases
                .iter()
                .filter(|b| b.scope == self.scope && self.covers(&b.custody_holder))
                .cloned()
                .collect(),
            correspondence: case
                .correspondence
                .iter()
                .filter(|c| self.mine(c.sector, &c.custody_holder))
                .cloned()
                .collect(),
            sector_plans: case
                .sector_plans
                .iter()
                .filter(|p| self.mine(p.sector, &p.custody_holder))
                .cloned()
                .collect(),
            appointments: case
                .appointments
                .iter()
                .filter(|a| self.mine(a.sector, &a.custody_holder))
                .cloned()
                .collect(),
            ..Default::default()
        }
    }
}
