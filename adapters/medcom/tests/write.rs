//! Writing: FHIR and XDIS91 round trips, the windows-1252 encoding of XDIS91,
//! and the refusals of from-canonical.

mod common;

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, case_event::Kind};
use common::{batch, correspondence, describe, meta};

const FHIR_SAMPLES: [&str; 3] =
    ["cc-add5e7e2-new-message", "cc-b56549f7-reply-with-attachment", "cc-0d5b3c18-replacement-cpr"];

fn render(b: &proto::AdapterBatch, target: &str) -> Vec<u8> {
    match medcom::render(b, target) {
        Ok(m) => m.body,
        Err(e) => panic!("{target}: {}", describe(&e)),
    }
}

fn reread(body: &[u8]) -> proto::AdapterBatch {
    match medcom::translate(body, &meta(&[("message-id", "unused")])) {
        Ok(b) => b,
        Err(e) => panic!("re-reading: {}", describe(&e)),
    }
}

fn refusal(b: &proto::AdapterBatch, target: &str) -> String {
    match medcom::render(b, target) {
        Ok(_) => panic!("{target} was written, but should not have been"),
        Err(e) => describe(&e),
    }
}

#[test]
fn fhir_samples_survive_a_round_trip_through_fhir_json_and_fhir_xml() {
    for name in FHIR_SAMPLES {
        let first = batch(&format!("{name}.in.json"));
        for target in ["fhir+json", "fhir+xml"] {
            let again = reread(&render(&first, target));
            assert_eq!(correspondence(&again), correspondence(&first), "{name} via {target}");
            assert_eq!(again.subjects, first.subjects, "{name} via {target}");
            assert_eq!(again.source_message_id, first.source_message_id);
            assert_eq!(
                again.events.first().and_then(|e| e.occurred_on),
                first.events.first().and_then(|e| e.occurred_on)
            );
        }
    }
}

#[test]
fn fhir_output_is_deterministic_and_the_same_in_both_forms() {
    let b = batch("cc-b56549f7-reply-with-attachment.in.xml");
    assert_eq!(render(&b, "fhir+json"), render(&b, "fhir+json"));
    assert_eq!(reread(&render(&b, "fhir+json")), reread(&render(&b, "fhir+xml")));
    let json = String::from_utf8(render(&b, "fhir+json")).unwrap_or_default();
    assert!(json.contains("\"code\": \"reply-message\""));
    assert!(json.contains("\"reference\": \"MessageHeader/42cb9200-f421-4d08-8391-7d51a2503cb4\""));
    assert!(json.contains("\"endpoint\": \"https://sor2.sum.dsdn.dk/#id=265161000016000\""));
    assert!(json.contains(
        "\"definition\": \"http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/MedComCareCommunicationMessageDefinition|5.0\""
    ));
    let m = medcom::render(&b, "fhir+xml");
    assert_eq!(m.map(|m| m.content_type).ok().as_deref(), Some("application/fhir+xml; fhir-version=4.0"));
}

#[test]
fn xdis91_samples_survive_a_round_trip_through_xdis91() {
    for name in ["DIS91_1.in.xml", "korr_x9134.in.xml"] {
        let first = batch(name);
        let again = reread(&render(&first, "xdis91"));
        let (a, b) = (correspondence(&first), correspondence(&again));
        assert_eq!(b.entries.first().map(|e| &e.text), a.entries.first().map(|e| &e.text), "{name}");
        assert_eq!((b.subject.as_str(), b.priority()), (a.subject.as_str(), a.priority()));
        assert_eq!(b.sender.map(|o| o.ean), a.sender.map(|o| o.ean));
        assert_eq!(b.receiver.map(|o| o.ean), a.receiver.map(|o| o.ean));
        assert_eq!(b.person, a.person);
        // Everything the letter carries comes back, ids included.
        assert_eq!((b.message_id.as_str(), b.thread_id.as_str()), (a.message_id.as_str(), a.thread_id.as_str()));
        assert_eq!(b.send_time, a.send_time);
        assert_eq!(b.episode_of_care, a.episode_of_care);
    }
}

#[test]
fn a_care_communication_becomes_an_xdis91_letter_and_back() {
    let first = batch("cc-add5e7e2-new-message.in.json");
    let again = correspondence(&reread(&render(&first, "xdis91")));
    let a = correspondence(&first);
    assert_eq!(again.entries.first().map(|e| &e.text), a.entries.first().map(|e| &e.text));
    assert_eq!(again.subject, a.subject);
    assert_eq!(again.person, a.person);
    assert_eq!(
        again.entries.first().and_then(|e| e.author.clone()).map(|p| p.display_name).as_deref(),
        Some("Michael Burns")
    );
}

/// A canonical batch with one correspondence, written by hand.
fn letter(text: &str) -> proto::AdapterBatch {
    let org = |ean: &str, name: &str| proto::Organisation {
        ean: ean.into(),
        display_name: name.into(),
        ..Default::default()
    };
    let person = proto::PersonIdentifier { kind: proto::PersonIdentifierKind::Cpr as i32, value: "0101011234".into() };
    let c = proto::Correspondence {
        message_id: "bro-msg-1".into(),
        thread_id: "bro-thread-1".into(),
        activity: proto::CorrespondenceActivity::New as i32,
        sender: Some(org("5790000000001", "Børne- og Ungeforvaltningen, Familieafdelingen")),
        receiver: Some(org("5790000000002", "Psykiatrien Øst")),
        custody_holder: "subjects/0".into(),
        subject: "Samarbejde om § 78-plan".into(),
        entries: vec![proto::CorrespondenceEntry { text: text.into(), ..Default::default() }],
        send_time: Some(prost_types::Timestamp { seconds: 1_768_478_400, nanos: 0 }),
        ..Default::default()
    };
    proto::AdapterBatch {
        subjects: vec![person],
        events: vec![proto::CaseEvent {
            occurred_on: Some(proto::Date { year: 2026, month: 1, day: 15 }),
            kind: Some(Kind::CorrespondenceRecorded(proto::CorrespondenceRecorded { correspondence: Some(c) })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn xdis91_is_windows_1252_with_references_for_what_it_lacks() {
    let b = letter("Æble, øl & Åge <3\nPris: 10 € – Erdős");
    let body = render(&b, "xdis91");
    assert!(body.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>"));
    let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"<Text01>\xc6ble, \xf8l &amp; \xc5ge &lt;3<Break/>Pris: 10 \x80 \x96 Erd&#337;s</Text01>"));
    assert!(find(b"<OrganisationName>B\xf8rne- og Ungeforvaltningen</OrganisationName>"));
    // And back: the reference is a character again.
    let again = correspondence(&reread(&body));
    assert_eq!(again.entries.first().map(|e| e.text.as_str()), Some("Æble, øl & Åge <3\nPris: 10 € – Erdős"));
    assert_eq!(again.receiver.map(|o| o.display_name).as_deref(), Some("Psykiatrien Øst"));
    let m = medcom::render(&b, "xdis91");
    assert_eq!(m.map(|m| m.content_type).ok().as_deref(), Some("application/xml; charset=windows-1252"));
}

#[test]
fn the_person_comes_from_the_subject_the_custody_holder_names() {
    let b = letter("x");
    let again = correspondence(&reread(&render(&b, "fhir+json")));
    assert_eq!(again.person, b.subjects.first().cloned());
}

#[test]
fn from_canonical_refuses_what_it_cannot_write() {
    let b = letter("x");
    assert!(refusal(&b, "hl7v2").starts_with("unsupported message type: target \"hl7v2\""));
    let mut none = b.clone();
    none.events.clear();
    assert!(refusal(&none, "fhir+xml").starts_with("invalid content: events: no correspondence_recorded event"));
    let mut two = b.clone();
    two.events.extend(b.events.clone());
    assert!(refusal(&two, "fhir+xml").starts_with("invalid content: events: 2 correspondence_recorded events"));
    let mut nobody = b.clone();
    nobody.subjects.clear();
    let e = refusal(&nobody, "fhir+json");
    assert!(e.contains("correspondence.person: no person"), "{e}");
    let mut attached = b.clone();
    if let Some(Kind::CorrespondenceRecorded(r)) = attached.events.first_mut().and_then(|e| e.kind.as_mut())
        && let Some(c) = r.correspondence.as_mut()
    {
        c.entries.push(proto::CorrespondenceEntry {
            attachment: Some(proto::Attachment { title: "a".into(), data: vec![1, 2], ..Default::default() }),
            ..Default::default()
        });
    }
    let e = refusal(&attached, "xdis91");
    assert!(e.contains("entries[1].attachment: an XDIS91 letter cannot carry an attachment"), "{e}");
    assert!(medcom::render(&attached, "fhir+json").is_ok());
}

#[test]
fn times_outside_the_protobuf_range_are_refused() {
    let mut b = letter("x");
    if let Some(Kind::CorrespondenceRecorded(r)) = b.events.first_mut().and_then(|e| e.kind.as_mut())
        && let Some(c) = r.correspondence.as_mut()
    {
        c.send_time = Some(prost_types::Timestamp { seconds: i64::MAX, nanos: -1 });
    }
    assert!(refusal(&b, "fhir+json").ends_with("sendTime: is outside the years 1 to 9999"));
}

#[test]
fn errors_never_echo_the_patient_identifier() {
    let mut b = letter("x");
    if let Some(p) = b.subjects.first_mut() {
        p.value = "01010A1234".into();
    }
    let e = refusal(&b, "xdis91");
    assert!(e.contains("the patient identifier is not ten digits") && !e.contains("01010A1234"), "{e}");
    let unknown = medcom::render(&b, "x");
    assert!(matches!(unknown, Err(AdapterError::Unsupported(_))));
}

#[test]
fn the_golden_outputs_read_back() {
    let reply = correspondence(&reread(&common::fixture("reply-with-attachment.expected.xml")));
    assert_eq!(reply.activity(), proto::CorrespondenceActivity::Reply);
    assert_eq!(reply.in_reply_to, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_eq!(reply.entries.len(), 3);
    let attachment = reply.entries.get(2).and_then(|e| e.attachment.clone()).unwrap_or_default();
    assert!(String::from_utf8(attachment.data).is_ok_and(|t| t.starts_with("Behandlingsplan (udkast)\nMøde")));
    let new = reread(&common::fixture("new-message.expected.json"));
    assert_eq!(new.subjects.first().map(|p| p.kind()), Some(proto::PersonIdentifierKind::ReplacementCpr));
    let episode = correspondence(&new).episode_of_care.unwrap_or_default();
    assert_eq!((episode.identifier.as_str(), episode.status.as_str()), ("forloeb-77", "ambulant"));
    let letter = correspondence(&reread(&common::fixture("letter.expected.xml")));
    assert_eq!(letter.message_id, "5790000000001/Brev2026x17");
    assert!(letter.entries.first().is_some_and(|e| e.text.contains("250 € – bevilget.\nTolk: Erdős Zoë")));
}
