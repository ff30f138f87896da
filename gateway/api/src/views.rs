//! What the sharing law lets another sector see of a case, on the wire: a
//! `bro.v1.Case` with only the parts of a `bro_rules::sharing::SectorView`
//! and every other field empty.

use bro_proto::convert::{
    consent_to_pb, etag, legal_basis_to_pb, organisation_to_pb, party_to_pb, sector_contact_to_pb, sector_plan_to_pb,
    timestamp_to_pb,
};
use bro_proto::v1 as pb;
use bro_rules::sharing::SectorView;

/// A sector's view of a case for the wire.
pub fn sector_view_to_pb(view: &SectorView) -> pb::Case {
    pb::Case {
        name: view.case_id.resource_name(),
        etag: etag(view.version),
        version: view.version as i64,
        create_time: Some(timestamp_to_pb(view.create_time)),
        update_time: Some(timestamp_to_pb(view.update_time)),
        placing_municipality: Some(organisation_to_pb(&view.placing_municipality)),
        custody_holders: view.custody_holders.iter().map(party_to_pb).collect(),
        sector_contacts: view.sector_contacts.iter().map(sector_contact_to_pb).collect(),
        consents: view.consents.iter().map(consent_to_pb).collect(),
        legal_bases: view.legal_bases.iter().map(legal_basis_to_pb).collect(),
        correspondence_count: i32::try_from(view.correspondence.len()).unwrap_or(i32::MAX),
        sector_plans: view.sector_plans.iter().map(sector_plan_to_pb).collect(),
        appointment_count: i32::try_from(view.appointments.len()).unwrap_or(i32::MAX),
        ..Default::default()
    }
}
