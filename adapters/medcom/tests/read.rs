//! Reading MedCom's published samples: every field the adapter maps, XML and
//! JSON giving the same batch, and the refusals that name what was refused.

mod common;

use bro_adapter_sdk::proto::{CorrespondenceActivity as Activity, CorrespondencePriority as Priority};
use bro_adapter_sdk::proto::{Date, PersonIdentifierKind as Kind, Sector};
use common::{batch, correspondence, error, fixture, meta};

#[test]
fn the_xdis91_letter_becomes_one_correspondence() {
    let b = batch("DIS91_1.in.xml");
    let person = b.subjects.first().cloned().unwrap_or_default();
    assert_eq!(person.kind(), Kind::Cpr);
    assert_eq!(person.value.len(), 10);
    assert_eq!(b.source_message_id, "5790000120400/BrevNr00129");
    assert_eq!(b.events.first().and_then(|e| e.occurred_on), Some(Date { year: 1998, month: 12, day: 13 }));
    assert!(b.events.first().is_some_and(|e| e.source.is_none()));
    let c = correspondence(&b);
    assert_eq!(c.message_id, "5790000120400/BrevNr00129");
    assert_eq!(c.thread_id, "BrevNr00129");
    assert_eq!(c.custody_holder, "subjects/0");
    assert_eq!(c.person, Some(person));
    assert_eq!(c.activity(), Activity::New);
    assert_eq!(c.sector(), Sector::Health);
    assert_eq!(c.priority(), Priority::High);
    assert_eq!(c.subject, "Forundersøgelse");
    assert_eq!(c.category, "");
    let sender = c.sender.clone().unwrap_or_default();
    assert_eq!(sender.display_name, "HILLERØD SYGEHUS, KIRURGISK AFD. A");
    assert_eq!(sender.ean, "5790000120400");
    let receiver = c.receiver.clone().unwrap_or_default();
    assert_eq!((receiver.ean.as_str(), receiver.display_name.as_str()), ("5790000128700", "Lægehuset, Læge"));
    assert_eq!(c.episode_of_care.as_ref().map(|e| e.status.as_str()), Some("inaktiv"));
    // Sent 1998-12-13 12:10 in Copenhagen, winter time: 11:10 UTC.
    assert_eq!(c.send_time.map(|t| t.seconds), Some(913_547_400));
    let entry = c.entries.first().cloned().unwrap_or_default();
    assert_eq!(c.entries.len(), 1);
    assert!(entry.text.starts_with("Afdeling A har modtaget en henvisning på ovenstående patient.\nForinden"));
    assert!(entry.text.contains("som et \"korrespondancebrev\".\n\nVenlig hilsen\noverlæge K. Petersen\n15.01.1999\n"));
    assert_eq!(entry.write_time.map(|t| t.seconds), Some(913_547_400 - 8 * 60));
    assert_eq!(entry.author_organisation, Some(sender));
}

#[test]
fn the_crlf_letter_with_fixed_font_and_entities_flattens_to_text() {
    let b = batch("korr_x9134.in.xml");
    // MedCom's sample number is not a valid date; it is still a CPR number to the adapter.
    assert_eq!(b.subjects.first().map(|p| (p.kind(), p.value.as_str())), Some((Kind::Cpr, "1522824933")));
    let c = correspondence(&b);
    let text = c.entries.first().map(|e| e.text.clone()).unwrap_or_default();
    assert!(text.starts_with("Hej \n\n\n\n\n\nHej, jeg er fast bredde\nAfdeling A"), "{text:?}");
    assert!(text.contains("Resultaterne bedes\n\n fremsendt som et \"korrespondancebrev\"."));
    assert!(!text.contains('\r'));
    assert_eq!(c.subject, "Forundersøgelse");
}

#[test]
fn a_hospital_referral_is_refused_by_name() {
    let e = error(common::read("REF01_1.in.xml"));
    assert_eq!(
        e,
        "unsupported message type: XREF01 (MedCom OIOXML HospitalReferral) is not a correspondence message; \
         the medcom adapter reads XDIS91 and CareCommunication"
    );
}

#[test]
fn a_new_care_communication_maps_every_field() {
    let b = batch("cc-add5e7e2-new-message.in.xml");
    assert_eq!(b.source_message_id, "42cb9200-f421-4d08-8391-7d51a2503cb4");
    assert_eq!(b.events.first().and_then(|e| e.occurred_on), Some(Date { year: 2024, month: 5, day: 1 }));
    let c = correspondence(&b);
    assert_eq!(c.message_id, "42cb9200-f421-4d08-8391-7d51a2503cb4");
    assert_eq!(c.thread_id, "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a");
    assert_eq!(c.activity(), Activity::New);
    assert_eq!(c.in_reply_to, "");
    assert_eq!(c.category, "examination-results");
    assert_eq!(c.subject, "Forspørgsel på seneste resultater");
    assert_eq!(c.priority(), Priority::Routine);
    let sender = c.sender.clone().unwrap_or_default();
    assert_eq!(
        (sender.ean.as_str(), sender.sor.as_str(), sender.display_name.as_str()),
        ("5790000209354", "265161000016000", "Hjerteafdelingen på Herlev og Gentofte hospital")
    );
    let receiver = c.receiver.clone().unwrap_or_default();
    assert_eq!((receiver.ean.as_str(), receiver.sor.as_str()), ("5790001348120", "953741000016009"));
    let entry = c.entries.first().cloned().unwrap_or_default();
    assert_eq!(entry.entry_id, "urn:uuid:24d01288-ad36-4af2-96a8-fd1432dadee1");
    let author = entry.author.clone().unwrap_or_default();
    assert_eq!((author.display_name.as_str(), author.role.as_str()), ("Michael Burns", "sygeplejerske"));
    assert_eq!(author.phone, "38683868");
    assert_eq!(entry.author_organisation, c.sender);
    assert_eq!(entry.write_time, c.send_time);
    assert!(entry.text.starts_with("Til rette vedkommende."));
}

#[test]
fn a_reply_names_the_message_it_answers_and_carries_the_pdf() {
    let c = correspondence(&batch("cc-b56549f7-reply-with-attachment.in.xml"));
    assert_eq!(c.activity(), Activity::Reply);
    assert_eq!(c.in_reply_to, "42cb9200-f421-4d08-8391-7d51a2503cb4");
    assert_eq!(c.thread_id, "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a");
    assert_eq!(c.entries.len(), 3);
    let authors: Vec<String> = c.entries.iter().map(|e| e.author.clone().unwrap_or_default().display_name).collect();
    assert_eq!(authors, ["Michael Burns", "Emma Waters", ""]);
    let attachment = c.entries.get(2).and_then(|e| e.attachment.clone()).unwrap_or_default();
    assert_eq!(attachment.title, "Blodprøveresultater");
    assert_eq!(attachment.content_type, "application/pdf");
    assert!(attachment.data.starts_with(b"%PDF-"));
    assert!(c.entries.get(2).is_some_and(|e| e.text.is_empty()));
}

#[test]
fn a_replacement_cpr_number_is_kept_as_such() {
    let b = batch("cc-0d5b3c18-replacement-cpr.in.json");
    assert_eq!(b.subjects.first().map(|p| (p.kind(), p.value.as_str())), Some((Kind::ReplacementCpr, "0703921VJ4")));
    assert_eq!(correspondence(&b).subject, "");
}

#[test]
fn xml_and_json_of_the_same_bundle_give_the_same_batch() {
    for name in ["cc-add5e7e2-new-message", "cc-b56549f7-reply-with-attachment", "cc-0d5b3c18-replacement-cpr"] {
        let xml = batch(&format!("{name}.in.xml"));
        let json = batch(&format!("{name}.in.json"));
        assert_eq!(xml, json, "{name}");
    }
}

#[test]
fn the_sector_comes_from_the_transport() {
    let body = fixture("cc-add5e7e2-new-message.in.json");
    let b = medcom::translate(&body, &meta(&[("sector", "psychiatry")]));
    assert_eq!(b.map(|b| correspondence(&b).sector()).ok(), Some(Sector::Psychiatry));
    let e = error(medcom::translate(&body, &meta(&[("sector", "zoo")])));
    assert!(e.starts_with("invalid content: metadata.sector: unknown sector \"zoo\""), "{e}");
}

#[test]
fn the_transport_message_id_is_used_only_when_the_message_has_none() {
    let text = String::from_utf8(fixture("cc-add5e7e2-new-message.in.json")).unwrap_or_default();
    let without = text.replacen("\"id\" : \"42cb9200-f421-4d08-8391-7d51a2503cb4\",", "", 1);
    assert_ne!(text, without);
    let b = medcom::translate(without.as_bytes(), &meta(&[("message-id", "transport-1")]));
    assert_eq!(b.as_ref().map(|b| b.source_message_id.as_str()).ok(), Some("transport-1"));
    assert_eq!(b.map(|b| correspondence(&b).message_id).ok().as_deref(), Some("transport-1"));
    let e = error(medcom::translate(without.as_bytes(), &[]));
    assert!(e.contains("MessageHeader.id"), "{e}");
}

#[test]
fn the_content_type_is_not_trusted() {
    // The bytes decide: the same Bundle read via the SDK trait under a wrong content type.
    use bro_adapter_sdk::{Adapter, Message};
    let message = Message {
        content_type: "text/plain".into(),
        body: fixture("cc-add5e7e2-new-message.in.xml"),
        metadata: Vec::new(),
    };
    assert!(medcom::Medcom::to_canonical(message).is_ok());
}

#[test]
fn describe_names_what_is_read_and_written() {
    use bro_adapter_sdk::Adapter;
    let info = medcom::Medcom::describe();
    assert_eq!(info.name, "medcom");
    let reads: Vec<&str> = info.reads.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(reads, ["XDIS91", "CareCommunication"]);
}
