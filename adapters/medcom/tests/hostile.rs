//! Hostile and broken input: every one is refused with an error that names
//! where or what, and nothing panics (the component would trap).

mod common;

use common::{error, fixture, meta};

/// `body` with the first `from` replaced by `to`, byte for byte (the OIOXML samples are not UTF-8).
fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = body.windows(from.len()).position(|w| w == from.as_bytes()).unwrap_or_else(|| panic!("no {from}"));
    [body.get(..at).unwrap_or_default(), to.as_bytes(), body.get(at + from.len()..).unwrap_or_default()].concat()
}

/// `body` without the bytes from `start` up to and including `end`.
fn cut(body: &[u8], start: &str, end: &str) -> Vec<u8> {
    let find = |s: &str| body.windows(s.len()).position(|w| w == s.as_bytes()).unwrap_or_else(|| panic!("no {s}"));
    let (a, b) = (find(start), find(end) + end.len());
    [body.get(..a).unwrap_or_default(), body.get(b..).unwrap_or_default()].concat()
}

fn translate(body: &[u8]) -> String {
    error(medcom::translate(body, &meta(&[("message-id", "hostile")])))
}

const OIO: &str = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/";

#[test]
fn an_empty_body_is_malformed() {
    assert_eq!(translate(b""), "malformed input at 1:1: the message body is empty");
    assert_eq!(translate(b" \n\t "), "malformed input at 1:1: the message body is empty");
}

#[test]
fn broken_xml_is_malformed_with_its_position() {
    let e = translate(b"<?xml version=\"1.0\"?>\n<Emessage>\n  <Envelope>\n</Emessage>");
    assert!(e.starts_with("malformed input at 4:"), "{e}");
}

#[test]
fn billion_laughs_never_expands() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Emessage xmlns="http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/">&lol9;</Emessage>"#;
    let e = translate(bomb.as_bytes());
    assert!(e.contains("a DTD is not allowed"), "{e}");
}

#[test]
fn deeply_nested_xml_is_refused_at_the_depth_cap_as_it_streams() {
    // 50 000 levels of markup inside a real letter's text: refused at the
    // SDK's depth cap, naming it, before any tree or stack could grow.
    let depth = 50_000;
    let nested = format!("<Text01>{}x{}Hej ", "<Bold>".repeat(depth), "</Bold>".repeat(depth));
    let letter = replace(&fixture("korr_x9134.in.xml"), "<Text01>Hej ", &nested);
    let e = translate(&letter);
    assert!(e.starts_with("malformed input at 58:") && e.contains("(cap: depth)"), "{e}");
    let fhir = format!(
        "<Bundle xmlns=\"http://hl7.org/fhir\">{}{}</Bundle>",
        "<entry>".repeat(depth),
        "</entry>".repeat(depth)
    );
    assert!(translate(fhir.as_bytes()).contains("(cap: depth)"));
    // Markup within the cap is flattened to its text, as before.
    let shallow = replace(&fixture("korr_x9134.in.xml"), "<Text01>Hej ", "<Text01><Bold><Italic>x</Italic></Bold>Hej ");
    let b = medcom::translate(&shallow, &[]);
    let text = b.map(|b| common::correspondence(&b).entries.first().map(|e| e.text.clone()).unwrap_or_default());
    assert!(text.as_ref().is_ok_and(|t| t.starts_with("xHej \n")), "{:?}", text.map_err(|e| common::describe(&e)));
}

#[test]
fn deeply_nested_json_is_refused_at_the_depth_cap_before_it_is_parsed() {
    let json = format!("{{\"resourceType\":\"Bundle\",\"x\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let e = translate(json.as_bytes());
    assert!(e.starts_with("malformed input at 1:93") && e.contains("(cap: depth)"), "{e}");
}

#[test]
fn a_refused_oioxml_message_is_named_by_its_type_code_in_every_namespace_generation() {
    for namespace in [
        "http://rep.oio.dk/medcom.dk/xml/schemas/2004/06/01/",
        "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/",
    ] {
        let binary = format!(
            "<Emessage xmlns=\"{namespace}\"><Envelope/><BinaryObject><BinaryObjectHeader>\
             <TypeCode>XBIN01</TypeCode></BinaryObjectHeader></BinaryObject></Emessage>"
        );
        let e = translate(binary.as_bytes());
        assert!(e.contains("XBIN01 (MedCom OIOXML BinaryObject) is not a correspondence message"), "{namespace}: {e}");
        let referral = format!(
            "<Emessage xmlns=\"{namespace}\"><Envelope/><HospitalReferral><Letter><TypeCode>XREF07</TypeCode>\
             </Letter></HospitalReferral></Emessage>"
        );
        assert!(translate(referral.as_bytes()).contains("XREF07 (MedCom OIOXML HospitalReferral)"), "{namespace}");
    }
    // An XDIS91 of the older generation is refused by its schema version.
    let old = "<Emessage xmlns=\"http://rep.oio.dk/medcom.dk/xml/schemas/2004/06/01/\"><Envelope/>\
               <ClinicalEmail><Letter><TypeCode>XDIS91</TypeCode></Letter></ClinicalEmail></Emessage>";
    assert!(translate(old.as_bytes()).contains("XDIS91 (MedCom OIOXML ClinicalEmail) in schema version 2004/06/01"));
}

#[test]
fn truncated_json_is_malformed_with_line_and_column() {
    let body = fixture("cc-add5e7e2-new-message.in.json");
    let cut = body.get(..body.len() / 2).unwrap_or_default();
    let e = translate(cut);
    assert!(e.starts_with("malformed input at ") && e.contains("not JSON: EOF"), "{e}");
}

#[test]
fn every_truncation_of_every_sample_is_refused_without_panicking() {
    for name in [
        "DIS91_1.in.xml",
        "korr_x9134.in.xml",
        "REF01_1.in.xml",
        "cc-add5e7e2-new-message.in.xml",
        "cc-add5e7e2-new-message.in.json",
        "cc-0d5b3c18-replacement-cpr.in.xml",
    ] {
        let body = fixture(name);
        for len in (0..body.len()).step_by(7) {
            let _ = medcom::translate(body.get(..len).unwrap_or_default(), &[]);
        }
    }
}

#[test]
fn other_namespaces_and_formats_are_unsupported_by_name() {
    let e = translate(b"<Emessage xmlns=\"urn:example\"><Envelope/></Emessage>");
    assert!(e.starts_with("unsupported message type: XML Emessage in namespace \"urn:example\""), "{e}");
    let e = translate(format!("<Emessage xmlns=\"{OIO}\"><Envelope/><DischargeLetter><Letter><TypeCode>XDIS01</TypeCode></Letter></DischargeLetter></Emessage>").as_bytes());
    assert!(e.contains("XDIS01 (MedCom OIOXML DischargeLetter) is not a correspondence message"), "{e}");
    let old = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2005/08/07/";
    let e = translate(format!("<Emessage xmlns=\"{old}\"><Envelope/><ClinicalEmail><Letter><TypeCode>XDIS91</TypeCode></Letter></ClinicalEmail></Emessage>").as_bytes());
    assert!(e.contains("in schema version 2005/08/07"), "{e}");
    assert!(translate(b"UNA:+.? 'UNB+UNOC:3").contains("MedCom EDIFACT"));
    assert!(translate(b"%PDF-1.7").contains("neither XML nor JSON"));
    assert!(translate(b"{\"resourceType\":\"Patient\"}").contains("a FHIR Patient is not a MedCom message"));
}

#[test]
fn a_fhir_message_of_another_kind_is_unsupported_by_its_event_code() {
    let text = String::from_utf8(fixture("cc-add5e7e2-new-message.in.json")).unwrap_or_default();
    let other =
        text.replace("\"code\" : \"care-communication-message\"", "\"code\" : \"hospital-notification-message\"");
    let e = translate(other.as_bytes());
    assert!(e.contains("hospital-notification-message (MedCom FHIR) is not a correspondence message"), "{e}");
}

#[test]
fn a_cpr_number_with_letters_is_invalid_and_not_echoed() {
    let letter = replace(&fixture("korr_x9134.in.xml"), "1522824933", "15228X4933");
    let e = translate(&letter);
    assert_eq!(
        e,
        "invalid content: ClinicalEmail.Patient.CivilRegistrationNumber: the patient identifier is not ten digits"
    );
    let bundle = String::from_utf8(fixture("cc-add5e7e2-new-message.in.xml")).unwrap_or_default();
    let bad = bundle.replace("<value value=\"2509479989\"/>", "<value value=\"25094799AB\"/>");
    let e = translate(bad.as_bytes());
    assert_eq!(e, "invalid content: Patient.identifier: the patient identifier is not ten digits");
}

#[test]
fn missing_parts_are_invalid_and_named() {
    let bundle = String::from_utf8(fixture("cc-add5e7e2-new-message.in.xml")).unwrap_or_default();
    let no_patient_id =
        bundle.replace("<system value=\"urn:oid:1.2.208.176.1.2\"/>", "<system value=\"urn:example\"/>");
    assert!(
        translate(no_patient_id.as_bytes())
            .ends_with("Patient.identifier: the patient has no CPR or replacement CPR identifier")
    );
    let letter = fixture("korr_x9134.in.xml");
    let no_sender = cut(&letter, "<Sender>", "</Sender>");
    assert_eq!(translate(&no_sender), "invalid content: ClinicalEmail.Sender: the sender is required");
    let no_text = cut(&letter, "<ClinicalInformation>", "</ClinicalInformation>");
    assert_eq!(
        translate(&no_text),
        "invalid content: ClinicalEmail.ClinicalInformation.Text01: the letter has no text"
    );
    let no_sent = cut(&letter, "<Sent>", "</Sent>");
    assert!(translate(&no_sent).starts_with("invalid content: Envelope.Sent"));
    let bad_base64 = String::from_utf8(fixture("cc-b56549f7-reply-with-attachment.in.json"))
        .unwrap_or_default()
        .replacen("\"data\" : \"JVBER", "\"data\" : \"!!!!", 1);
    assert!(
        translate(bad_base64.as_bytes()).contains("Communication.payload[2].contentAttachment.data: is not base64")
    );
}

#[test]
fn bytes_that_are_not_utf8_in_a_utf8_document_are_malformed() {
    let e = translate(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Bundle>\xff</Bundle>");
    assert!(e.starts_with("malformed input at 2:9: not UTF-8"), "{e}");
}
