//! Writing: every fixture survives XML → canonical → XML → canonical, the
//! output is deterministic, the gateway's outbound batches (party ids,
//! `parties`, skipped kinds) are written, and what cannot be written is
//! refused by field.

mod common;

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, case_event::Kind};
use bro_adapter_sdk::testing::{accepted, refused};
use common::{batch, read};

/// `b` with the tests' system settings.
fn with_settings(b: &proto::AdapterBatch) -> proto::AdapterBatch {
    proto::AdapterBatch { settings: common::settings(), ..b.clone() }
}

fn render(b: &proto::AdapterBatch) -> Vec<u8> {
    accepted(sdi::render(b, "haendelsesbesked")).body
}

fn refusal(b: &proto::AdapterBatch) -> String {
    refused(sdi::render(b, "haendelsesbesked"), &[])
}

#[test]
fn every_fixture_survives_a_round_trip() {
    let mut trips = 0;
    for name in common::inputs() {
        let Ok(first) = sdi::translate(&common::fixture(&name)) else { continue };
        let again = read(&render(&with_settings(&first)));
        assert_eq!(again, first, "{name}");
        trips += 1;
    }
    assert_eq!(trips, 6);
}

#[test]
fn output_is_deterministic_and_names_itself() {
    let b = with_settings(&batch("planer.in.xml"));
    assert_eq!(render(&b), render(&b));
    let m = sdi::render(&b, "haendelsesbesked");
    assert_eq!(m.map(|m| m.content_type).ok().as_deref(), Some("application/xml; charset=utf-8"));
    // The message's own id is kept: it is already a UUID.
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert!(text.contains("<sd:UUIDIdentifikator>a4b5c6d7-e8f9-4a0b-9c1d-2e3f4a5b6c7d</sd:UUIDIdentifikator>"));
}

/// An outbound batch as the gateway sends it: party ids, `parties`, sequences.
fn outbound() -> proto::AdapterBatch {
    let cpr = |v: &str| proto::PersonIdentifier { kind: proto::PersonIdentifierKind::Cpr as i32, value: v.into() };
    let on = |month, day| Some(proto::Date { year: 2026, month, day });
    let event = |sequence, occurred_on, kind| proto::CaseEvent {
        sequence,
        occurred_on,
        kind: Some(kind),
        ..Default::default()
    };
    proto::AdapterBatch {
        subjects: vec![cpr("0507880000"), cpr("1206851000")],
        case: "cases/emil-testesen".into(),
        source_message_id: String::new(),
        parties: vec![
            proto::Party {
                party_id: "mor".into(),
                identifier: Some(cpr("0507880000")),
                display_name: "Mette Testesen".into(),
            },
            proto::Party {
                party_id: "far".into(),
                identifier: Some(cpr("1206851000")),
                display_name: "Jonas Prøvesen".into(),
            },
        ],
        events: vec![
            event(
                7,
                on(3, 1),
                Kind::ConsentGiven(proto::ConsentGiven { custody_holder: "mor".into(), scope: "bl78".into() }),
            ),
            event(
                8,
                on(3, 5),
                Kind::PlanPrepared(proto::PlanPrepared {
                    plan_id: "helhedsplan-1".into(),
                    kind: proto::PlanKind::Bl78 as i32,
                    covers: vec!["mor".into(), "subjects/1".into()],
                    goals: Vec::new(),
                }),
            ),
            event(
                9,
                on(3, 6),
                Kind::AppointmentCancelled(proto::AppointmentCancelled {
                    appointment_id: "m".into(),
                    reason: String::new(),
                }),
            ),
            event(
                10,
                on(2, 27),
                Kind::SupportPersonOffered(proto::SupportPersonOffered { custody_holder: "far".into() }),
            ),
        ],
        holistic_plan: None,
        settings: common::settings(),
        addressed_municipality: String::new(),
    }
}

#[test]
fn an_outbound_batch_names_people_by_cpr_urn_and_skips_what_the_journal_does_not_record() {
    let b = outbound();
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert!(text.contains("<bro:BroSag>cases/emil-testesen</bro:BroSag>"));
    assert!(text.contains("urn:bro:sdi:rolle:mor<") && text.contains("<bro:Navn>Jonas Prøvesen</bro:Navn>"));
    assert_eq!(text.matches("<bro:Sagshaendelse>").count(), 3);
    let again = read(text.as_bytes());
    assert_eq!(again.case, "cases/emil-testesen");
    assert_eq!(again.subjects, b.subjects);
    // Party ids became subjects; the backdated offer comes first.
    let Some(Kind::SupportPersonOffered(o)) = again.events.first().and_then(|e| e.kind.clone()) else {
        panic!("the offer is not first")
    };
    assert_eq!(o.custody_holder, "subjects/1");
    let Some(Kind::PlanPrepared(p)) = again.events.last().and_then(|e| e.kind.clone()) else { panic!("no plan") };
    assert_eq!(p.covers, ["subjects/0", "subjects/1"]);
}

#[test]
fn the_message_id_is_derived_from_the_case_and_the_sequences() {
    let b = outbound();
    let id = read(&render(&b)).source_message_id;
    assert_eq!(id, sdi::ids::name_uuid("cases/emil-testesen#7-10"));
    let mut later = b.clone();
    if let Some(e) = later.events.last_mut() {
        e.sequence = 11;
    }
    assert_ne!(read(&render(&later)).source_message_id, id);
    let mut own = b.clone();
    own.source_message_id = "journal-4711".into();
    assert_eq!(read(&render(&own)).source_message_id, sdi::ids::name_uuid("besked:journal-4711"));
    let mut anonymous = b;
    anonymous.case.clear();
    let a = read(&render(&anonymous)).source_message_id;
    assert_eq!(a, read(&render(&anonymous)).source_message_id);
}

#[test]
fn the_golden_outputs_read_back() {
    let b = read(&common::fixture("udgaaende.expected.xml"));
    assert_eq!(b.events.len(), 5);
    assert_eq!(b.events.first().and_then(|e| e.occurred_on), Some(proto::Date { year: 2026, month: 2, day: 27 }));
    let opened = read(&common::fixture("opret.expected.xml"));
    let Some(Kind::CaseOpened(o)) = opened.events.first().and_then(|e| e.kind.clone()) else {
        panic!("no case_opened")
    };
    // A party id that is not a role comes back as the role's id.
    assert_eq!(o.custody_holders.first().map(|p| p.party_id.as_str()), Some("foraelder-1"));
    assert_eq!(o.child.map(|c| c.journal_reference).as_deref(), Some("27.24.00-G01-7-26"));
    assert_eq!(opened.case, "cases/alma-eksempel");
}

#[test]
fn from_canonical_refuses_what_it_cannot_write() {
    let b = outbound();
    let unknown = sdi::render(&b, "sf1470");
    assert!(matches!(&unknown, Err(AdapterError::Unsupported(t)) if t.starts_with("target \"sf1470\"")));
    let mut sector_only = b.clone();
    sector_only.events.retain(|e| matches!(e.kind, Some(Kind::AppointmentCancelled(_))));
    assert!(refusal(&sector_only).starts_with("invalid content: events: no event the journal records"));
    let mut stranger = b.clone();
    if let Some(Some(Kind::ConsentGiven(c))) = stranger.events.first_mut().map(|e| e.kind.as_mut()) {
        c.custody_holder = "parent-9".into();
    }
    let e = refusal(&stranger);
    assert!(
        e.starts_with("invalid content: events[0].consentGiven.custodyHolder: \"parent-9\" names no custody holder"),
        "{e}"
    );
    let mut unset = b.clone();
    unset.events.push(proto::CaseEvent {
        occurred_on: Some(proto::Date { year: 2026, month: 4, day: 1 }),
        kind: Some(Kind::PlacementStarted(proto::PlacementStarted::default())),
        ..Default::default()
    });
    assert!(refusal(&unset).starts_with("invalid content: events[4].placementStarted.basis: is not set"));
    let mut no_date = b.clone();
    if let Some(e) = no_date.events.first_mut() {
        e.occurred_on = Some(proto::Date { year: 2026, month: 2, day: 30 });
    }
    assert!(refusal(&no_date).starts_with("invalid content: events[0].occurredOn: is not a date"));
    let mut no_subject = b.clone();
    if let Some(Some(Kind::SupportPersonOffered(o))) = no_subject.events.last_mut().map(|e| e.kind.as_mut()) {
        o.custody_holder = "subjects/7".into();
    }
    assert!(refusal(&no_subject).contains("\"subjects/7\" names no subject of the batch"));
}

#[test]
fn a_custody_holder_without_a_cpr_number_is_left_out_unless_an_event_names_them() {
    let mut b = outbound();
    let replacement = proto::PersonIdentifier {
        kind: proto::PersonIdentifierKind::ReplacementCpr as i32,
        value: "0101901VJ4".into(),
    };
    b.subjects.push(replacement.clone());
    b.parties.push(proto::Party {
        party_id: "parent-3".into(),
        identifier: Some(replacement),
        display_name: "X".into(),
    });
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert_eq!(text.matches("<sag:Sagspart>").count(), 2);
    if let Some(Some(Kind::SupportPersonOffered(o))) = b.events.last_mut().map(|e| e.kind.as_mut()) {
        o.custody_holder = "subjects/2".into();
    }
    let e = refusal(&b);
    assert!(e.ends_with("names a person without a CPR number; the journal names people by CPR number"), "{e}");
    assert!(!e.contains("0101901VJ4"));
}

#[test]
fn errors_never_echo_a_cpr_number_or_a_name() {
    let mut b = outbound();
    if let Some(p) = b.parties.first_mut().and_then(|p| p.identifier.as_mut()) {
        p.value = "05078800001".into();
    }
    let e = refusal(&b);
    assert_eq!(e, "invalid content: parties[0].identifier: the CPR number is not ten digits");
    for p in common::PEOPLE {
        assert!(!e.contains(p));
    }
}

#[test]
fn the_registered_identifiers_come_from_the_settings_and_are_never_invented() {
    let b = outbound();
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    for expected in [
        "<kuvert:Beskedtype><sd:UUIDIdentifikator>5d2e8f1a-0000-4000-8000-000000000001</sd:UUIDIdentifikator>",
        "<kuvert:BeskedAnsvarligAktoer><sd:UUIDIdentifikator>8d5ad9c7-0000-4000-8000-000000000001</sd:UUIDIdentifikator>",
        "<kuvert:TilladtModtager><sd:URNIdentifikator>urn:oio:cvr-nr:29990000</sd:URNIdentifikator>",
        "<kuvert:ObjektAnsvarligMyndighed><sd:URNIdentifikator>urn:oio:cvr-nr:29990000</sd:URNIdentifikator>",
        "<kuvert:Sikkerhedsklassificering><sd:UUIDIdentifikator>3f6b2c1d-0000-4000-8000-000000000001</sd:UUIDIdentifikator>",
    ] {
        assert!(text.contains(expected), "{expected}");
    }
    // Optional ones are left out when not configured.
    assert!(!text.contains("kuvert:ObjektType") && !text.contains("kuvert:RelateretObjekt"));
    for key in ["beskedtype", "beskedansvarlig_aktoer", "sikkerhedsklassificering", "myndighed_cvr"] {
        let mut missing = b.clone();
        missing.settings.remove(key);
        let e = refusal(&missing);
        assert!(e.starts_with(&format!("invalid content: settings.{key}: is not configured")), "{e}");
    }
    let mut typo = b.clone();
    typo.settings.insert("sending_system".into(), "x".into());
    assert!(
        refusal(&typo).starts_with("invalid content: settings.sending_system: \"sending_system\" is not a setting")
    );
    let mut not_a_uuid = b;
    not_a_uuid.settings.insert("beskedansvarlig_aktoer".into(), "urn:bro:system".into());
    assert_eq!(
        refusal(&not_a_uuid),
        "invalid content: settings.beskedansvarlig_aktoer: is not a UUID (the sending system's registered UUID)"
    );
}

#[test]
fn a_case_opening_gives_the_municipality_without_the_setting() {
    let mut b = common::read(&common::fixture("plan-undladt.in.xml"));
    b.settings = common::settings();
    b.settings.remove("myndighed_cvr");
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert!(text.contains("<kuvert:TilladtModtager><sd:URNIdentifikator>urn:oio:cvr-nr:29990000<"));
    assert!(text.contains("<sd:LivscyklusKode>Opstaaet</sd:LivscyklusKode>"));
    assert!(text.contains("<sag:FremdriftStatusKode>Opstaaet</sag:FremdriftStatusKode>"));
}
