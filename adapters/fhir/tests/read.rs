//! Reading: a Bundle's Appointments become one patient's scheduled and
//! cancelled appointments in order, references resolve by fullUrl, `Type/id`
//! and `#id`, the organisation, the day and the message id come from where
//! the README says, and what cannot be read is refused by JSON pointer.

mod common;

use bro_adapter_sdk::proto::{self, PersonIdentifierKind};
use common::{cancelled, edited, error, error_with, fixture, read, read_with, scheduled};
use serde_json::json;

const BUNDLE: &str = "psychiatry-bundle.in.json";

fn day(b: &proto::AdapterBatch, i: usize) -> (i32, i32, i32) {
    let d = b.events.get(i).and_then(|e| e.occurred_on).unwrap_or_default();
    (d.year, d.month, d.day)
}

#[test]
fn a_bundle_is_one_patients_appointments_in_order() {
    let b = read(&fixture(BUNDLE));
    assert_eq!(
        b.subjects,
        [proto::PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value: "2207921238".into() }]
    );
    assert_eq!(b.source_message_id, "msg-2026-0412");
    assert_eq!(b.events.len(), 4);
    let first = scheduled(&b.events[0]).cloned().unwrap_or_default();
    assert_eq!(first.appointment_id, "psyk-17");
    assert_eq!(first.custody_holder, "subjects/0");
    assert_eq!(first.sector(), proto::Sector::Health);
    // The description wins over the service type.
    assert_eq!(first.title, "Samtale i ambulant psykiatri");
    let who = first.professional.unwrap_or_default();
    assert_eq!((who.phone.as_str(), who.email.is_empty()), ("+45 70 00 00 03", false));
    let org = first.organisation.unwrap_or_default();
    assert_eq!(
        (org.sor.as_str(), org.ean.as_str(), org.cvr.as_str()),
        ("999999000000017", "5790000000031", "29990003")
    );
    // A cancelled appointment with its times: scheduled, then cancelled; its organisation the Bundle's only one.
    let second = scheduled(&b.events[1]).cloned().unwrap_or_default();
    assert_eq!(second.title, "Gruppeforløb for forældre");
    assert_eq!(second.organisation.map(|o| o.display_name), Some("Region Testrup, Psykiatrien".into()));
    assert_eq!(cancelled(&b.events[2]), Some(("psyk-18", "Behandleren er syg")));
    assert_eq!(cancelled(&b.events[3]), Some(("psyk-19", "entered in error")));
    // 23:30 UTC on 12 March is 13 March in Copenhagen.
    assert_eq!(day(&b, 0), (2026, 3, 13));
}

#[test]
fn the_sector_comes_from_the_transport() {
    for (given, sector) in [
        ("psychiatry", proto::Sector::Psychiatry),
        ("addiction-treatment", proto::Sector::AddictionTreatment),
        ("health", proto::Sector::Health),
        ("other", proto::Sector::Other),
    ] {
        let b = read_with(&fixture(BUNDLE), &[("sector", given)]);
        assert_eq!(scheduled(&b.events[0]).map(proto::Appointment::sector), Some(sector), "{given}");
    }
    let e = error_with(&fixture(BUNDLE), &[("sector", "jobcentre")]);
    assert!(e.starts_with("invalid content: metadata.sector: unknown sector \"jobcentre\""), "{e}");
    let e = error_with(&fixture(BUNDLE), &[("sector", "Mette Testesen")]);
    assert!(e.contains("(a value that is not a code)"), "{e}");
}

#[test]
fn the_message_id_is_the_bundles_else_the_transports() {
    let no_identifier = edited(BUNDLE, |v| v["identifier"] = json!(null));
    assert_eq!(read(&no_identifier).source_message_id, "c1f0e6a2-5b7d-4f43-9a51-3d2b8e7f6a10");
    let anonymous = edited(BUNDLE, |v| {
        v["identifier"] = json!(null);
        v["id"] = json!(null);
    });
    assert_eq!(read(&anonymous).source_message_id, "transport-id");
    assert_eq!(
        error_with(&anonymous, &[]),
        "invalid content: /identifier: the message has no id of its own and the transport gave none"
    );
    let spaced = edited(BUNDLE, |v| v["identifier"]["value"] = json!("msg 1"));
    assert!(error(&spaced).starts_with("invalid content: /identifier/value: is not an id"));
}

#[test]
fn one_appointment_is_read_with_its_contained_resources() {
    let b = read_with(&fixture("single-appointment.in.json"), &[]);
    assert_eq!(b.source_message_id, "Appointment/aftale-88/_history/3");
    assert_eq!(b.subjects.first().map(proto::PersonIdentifier::kind), Some(PersonIdentifierKind::ReplacementCpr));
    let a = scheduled(&b.events[0]).cloned().unwrap_or_default();
    assert_eq!(a.title, "Opfølgende samtale");
    assert_eq!(a.location, "Rådgivningen, Torvet 2, Testrup");
    assert_eq!(a.professional.map(|p| p.role), Some("misbrugskonsulent".into()));
    // The HealthcareService's providedBy, contained.
    assert_eq!(a.organisation.map(|o| (o.cvr, o.ean)), Some(("29990002".into(), "5790000000024".into())));
    assert_eq!(day(&b, 0), (2026, 4, 1));
    let unversioned = edited("single-appointment.in.json", |v| v["meta"]["versionId"] = json!(null));
    assert_eq!(read(&unversioned).source_message_id, "transport-id");
    assert_eq!(
        error_with(&unversioned, &[]),
        "invalid content: /meta/versionId: the message has no id of its own and the transport gave none"
    );
    let undated = edited("single-appointment.in.json", |v| v["meta"]["lastUpdated"] = json!(null));
    assert_eq!(error(&undated), "invalid content: /meta/lastUpdated: the time of the message is required");
}

#[test]
fn the_day_is_the_timestamp_else_the_bundles_or_each_appointments_update() {
    let b = read(&fixture("searchset-noshow.in.json"));
    assert_eq!(day(&b, 0), (2026, 4, 20));
    // A history without either: each Appointment's own meta.lastUpdated, oldest version first.
    let h = read(&fixture("history.in.json"));
    assert_eq!((day(&h, 0), day(&h, 1), day(&h, 2)), ((2026, 4, 28), (2026, 5, 4), (2026, 5, 4)));
    assert_eq!(cancelled(&h.events[2]), Some(("a-40", "Borgeren har meldt afbud")));
    let undated = edited(BUNDLE, |v| v["timestamp"] = json!(null));
    assert!(error(&undated).starts_with("invalid content: /timestamp: the time of the message is required"));
    let outside = edited(BUNDLE, |v| v["timestamp"] = json!("1899-12-31T12:00:00Z"));
    assert_eq!(error(&outside), "invalid content: /timestamp: is outside the years 1900 to 9999");
    let local = edited(BUNDLE, |v| v["timestamp"] = json!("2026-03-12T10:00:00"));
    assert!(error(&local).starts_with("invalid content: /timestamp: is not a FHIR instant"));
}

#[test]
fn references_resolve_by_full_url_type_and_id_versions_and_identifier() {
    let versioned = edited(BUNDLE, |v| {
        v["entry"][1]["resource"]["participant"][0]["actor"]["reference"] = json!("Patient/pat-1/_history/4")
    });
    assert_eq!(read(&versioned).events.len(), 4);
    let absolute = edited(BUNDLE, |v| {
        v["entry"][0]["resource"]["participant"][1]["actor"]["reference"] =
            json!("https://fhir.region-testrup.example/Practitioner/dr-1");
    });
    assert!(scheduled(&read(&absolute).events[0]).is_some_and(|a| a.professional.is_some()));
    // A logical reference: the patient by identifier, not by resource.
    let logical = edited(BUNDLE, |v| {
        v["entry"][2]["resource"]["participant"][0]["actor"] =
            json!({"type": "Patient", "identifier": {"system": "urn:oid:1.2.208.176.1.2", "value": "2207921238"}});
    });
    assert_eq!(read(&logical).events.len(), 4);
    let dangling =
        edited(BUNDLE, |v| v["entry"][1]["resource"]["participant"][0]["actor"]["reference"] = json!("Patient/pat-2"));
    assert!(error(&dangling).starts_with(
        "invalid content: /entry/1/resource/participant/0/actor/reference: names no resource of the Bundle"
    ));
    let unknown = edited(BUNDLE, |v| {
        v["entry"][1]["resource"]["participant"][0]["actor"]["reference"] =
            json!("urn:uuid:00000000-0000-4000-8000-000000000000");
    });
    assert!(error(&unknown).contains("/participant/0/actor/reference: names no resource"));
    let contained =
        edited("single-appointment.in.json", |v| v["participant"][0]["actor"]["reference"] = json!("#nobody"));
    assert!(error(&contained).ends_with("/participant/0/actor/reference: names no contained resource (#id)"));
}

#[test]
fn statuses_schedule_cancel_or_retract() {
    for status in ["proposed", "pending", "booked", "arrived", "fulfilled", "checked-in", "waitlist"] {
        let b = read(&edited(BUNDLE, |v| v["entry"][0]["resource"]["status"] = json!(status)));
        assert!(scheduled(&b.events[0]).is_some(), "{status}");
    }
    let b = read(&fixture("searchset-noshow.in.json"));
    assert_eq!(cancelled(&b.events[2]), Some(("302", "no-show")));
    // Cancelled without times: the cancellation alone.
    let bare = edited(BUNDLE, |v| {
        v["entry"][1]["resource"]["start"] = json!(null);
        v["entry"][1]["resource"]["end"] = json!(null);
    });
    let b = read(&bare);
    assert_eq!((b.events.len(), cancelled(&b.events[1])), (3, Some(("psyk-18", "Behandleren er syg"))));
    let half = edited(BUNDLE, |v| v["entry"][1]["resource"]["end"] = json!(null));
    assert_eq!(error(&half), "invalid content: /entry/1/resource/end: is required with start");
    let open = edited(BUNDLE, |v| v["entry"][0]["resource"]["end"] = json!(null));
    assert_eq!(error(&open), "invalid content: /entry/0/resource/end: is required for a booked appointment");
    let unknown = edited(BUNDLE, |v| v["entry"][0]["resource"]["status"] = json!("rescheduled"));
    assert!(error(&unknown).starts_with(
        "invalid content: /entry/0/resource/status: unknown status \"rescheduled\"; expected proposed, pending, booked"
    ));
    let missing = edited(BUNDLE, |v| v["entry"][0]["resource"]["status"] = json!(null));
    assert_eq!(error(&missing), "invalid content: /entry/0/resource/status: is required");
}

#[test]
fn the_organisation_is_the_participant_the_service_or_the_only_one() {
    // No Organization anywhere: the appointment has none.
    let none = edited(BUNDLE, |v| {
        let entries = v["entry"].as_array_mut().map(std::mem::take).unwrap_or_default();
        v["entry"] = json!(entries.into_iter().take(6).collect::<Vec<_>>());
        v["entry"][0]["resource"]["participant"].as_array_mut().map(Vec::pop);
    });
    assert!(read(&none).events.iter().filter_map(scheduled).all(|a| a.organisation.is_none()));
    let nameless = edited(BUNDLE, |v| v["entry"][6]["resource"]["name"] = json!(null));
    assert_eq!(error(&nameless), "invalid content: /entry/6/resource/name: the organisation's name is required");
    let sor = edited(BUNDLE, |v| v["entry"][6]["resource"]["identifier"][0]["value"] = json!("SOR-17"));
    assert_eq!(
        error(&sor),
        "invalid content: /entry/6/resource/identifier/0/value: is not a SOR code (up to 20 digits)"
    );
    let cvr = edited(BUNDLE, |v| v["entry"][6]["resource"]["identifier"][2]["value"] = json!("2999"));
    assert_eq!(
        error(&cvr),
        "invalid content: /entry/6/resource/identifier/2/value: is not a CVR number (eight digits)"
    );
    let gln = edited(BUNDLE, |v| v["entry"][6]["resource"]["identifier"][1]["value"] = json!("57900000000"));
    assert!(error(&gln).ends_with("is not an EAN/GLN location number (13 digits)"));
}

#[test]
fn the_patient_is_one_person_identified_by_cpr() {
    assert_eq!(
        error(&fixture("two-patients.in.json")),
        "invalid content: /entry/1/resource/participant/0/actor: is another patient than the first Appointment's; a message concerns one patient"
    );
    let none = edited(BUNDLE, |v| v["entry"][2]["resource"]["participant"] = json!([]));
    assert_eq!(
        error(&none),
        "invalid content: /entry/2/resource/participant: the Appointment has no Patient participant"
    );
    let twice = edited(BUNDLE, |v| {
        v["entry"][2]["resource"]["participant"] =
            json!([{"actor": {"reference": "Patient/pat-1"}}, {"actor": {"reference": "Patient/pat-1"}}]);
    });
    assert!(error(&twice).ends_with("the Appointment has more than one Patient participant"));
    let undated = edited(BUNDLE, |v| v["entry"][3]["resource"]["identifier"][1]["value"] = json!("3213921238"));
    assert_eq!(
        error(&undated),
        "invalid content: /entry/3/resource/identifier/1/value: is not a CPR number (ten digits, DDMMYY first)"
    );
    let replacement =
        edited("single-appointment.in.json", |v| v["contained"][0]["identifier"][0]["value"] = json!("0101-A90X"));
    assert!(error(&replacement).ends_with("is not a replacement CPR number (ten letters or digits)"));
    assert!(
        error(&fixture("no-cpr.in.json"))
            .starts_with("invalid content: /entry/1/resource/identifier: the patient has no CPR")
    );
}

#[test]
fn appointment_ids_are_checked_and_not_repeated() {
    let spaced = edited(BUNDLE, |v| v["entry"][0]["resource"]["identifier"][0]["value"] = json!("psyk 17"));
    assert!(error(&spaced).starts_with("invalid content: /entry/0/resource/identifier/0/value: is not an id"));
    let anonymous = edited(BUNDLE, |v| v["entry"][2]["resource"]["id"] = json!(null));
    assert_eq!(
        error(&anonymous),
        "invalid content: /entry/2/resource/id: the Appointment has neither an identifier nor an id"
    );
    let repeated = edited(BUNDLE, |v| v["entry"][2]["resource"]["id"] = json!("psyk-17"));
    assert!(error(&repeated).starts_with("invalid content: /entry/2/resource: is the same appointment as an earlier"));
}

#[test]
fn a_bundle_of_other_resources_is_refused() {
    assert_eq!(error(&fixture("no-appointments.in.json")), "invalid content: /entry: the Bundle holds no Appointment");
    let untyped = edited(BUNDLE, |v| v["type"] = json!(null));
    assert_eq!(error(&untyped), "invalid content: /type: is required");
    let unresourced = edited(BUNDLE, |v| v["entry"][5]["resource"] = json!(null));
    assert_eq!(error(&unresourced), "invalid content: /entry/5/resource: is required");
}
