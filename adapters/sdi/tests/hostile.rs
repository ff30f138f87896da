//! Hostile and broken input: every one is refused with an error that names
//! where or what, nothing panics (the component would trap), nothing
//! expands, and no error carries a CPR number or a name.

mod common;

use bro_adapter_sdk::testing::check_truncations;
use common::{PEOPLE, error, event, fixture, message, parents, text};

/// An error that must not carry personal data.
fn clean(body: &[u8]) -> String {
    let e = error(body);
    for p in PEOPLE {
        assert!(!e.contains(p), "{e:?} carries {p}");
    }
    e
}

#[test]
fn an_empty_body_is_malformed() {
    assert_eq!(clean(b""), "malformed input at 1:1: the message body is empty");
    assert_eq!(clean(b" \r\n\t "), "malformed input at 1:1: the message body is empty");
    assert_eq!(clean(b"\xef\xbb\xbf"), "malformed input at 1:1: the message body is empty");
}

#[test]
fn broken_xml_is_malformed_with_its_position() {
    assert_eq!(
        clean(&fixture("malformed.in.xml")),
        "malformed input at 7:3: not well-formed XML: expected 'sag:RegistreringBesked' tag, not 'kuvert:Beskeddata'"
    );
    let e = clean(b"<kuvert:Haendelsesbesked xmlns:kuvert=\"urn:oio:besked:kuvert:1.0\">\n  <a b=\"1\" b=\"2\"/>");
    assert!(e.starts_with("malformed input at 2:"), "{e}");
    let unbound = clean(b"<sag:RegistreringBesked/>");
    assert!(unbound.starts_with("malformed input at 1:"), "{unbound}");
}

#[test]
fn billion_laughs_and_external_entities_never_expand() {
    assert_eq!(
        clean(&fixture("dtd.in.xml")),
        "malformed input at 2:1: not well-formed XML: a DTD is not allowed in a Haendelsesbesked"
    );
    let external = "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<x>&e;</x>";
    assert!(clean(external.as_bytes()).contains("a DTD is not allowed"));
    let undeclared = message(&parents(), &event("revision-tilbudt", "&lol;", ""));
    assert!(clean(undeclared.as_bytes()).starts_with("malformed input at "));
}

#[test]
fn deeply_nested_xml_is_refused_at_the_depth_cap_as_it_streams() {
    let depth = 50_000;
    // Markup inside a name: refused at the SDK's depth cap, naming it, long
    // before a tree (or a stack) could grow.
    let name = format!("{}Mette{}", "<i>".repeat(depth), "</i>".repeat(depth));
    let nested = text("sag-oprettet.in.xml").replace(">Mette Testesen<", &format!(">{name} Testesen<"));
    let refused = clean(nested.as_bytes());
    assert!(refused.contains("deeper than 64 levels") && refused.contains("(cap: depth)"), "{refused}");
    // And as the payload itself.
    let payload = format!(
        "<kuvert:Haendelsesbesked xmlns:kuvert=\"urn:oio:besked:kuvert:1.0\" xmlns:sd=\"urn:oio:sagdok:3.0.0\">\
         <kuvert:BeskedId><sd:UUIDIdentifikator>00000000-0000-4000-8000-000000000001</sd:UUIDIdentifikator></kuvert:BeskedId>\
         <kuvert:BeskedVersion>1.0</kuvert:BeskedVersion><kuvert:Beskeddata>{}{}</kuvert:Beskeddata></kuvert:Haendelsesbesked>",
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    assert!(clean(payload.as_bytes()).contains("(cap: depth)"));
    // Nesting within the cap is read as before: markup in a name is flattened to its text.
    let shallow = text("sag-oprettet.in.xml").replace(">Mette Testesen<", ">Mette <i><b>Test</b>esen</i><");
    let b = common::read(shallow.as_bytes());
    let Some(bro_adapter_sdk::proto::case_event::Kind::CaseOpened(o)) = b.events.first().and_then(|e| e.kind.clone())
    else {
        panic!("no case_opened")
    };
    assert_eq!(o.custody_holders.first().map(|p| p.display_name.as_str()), Some("Mette Testesen"));
}

#[test]
fn every_truncation_of_a_sample_is_refused_without_panicking() {
    let body = fixture("sag-oprettet.in.xml");
    let end = b"</kuvert:Haendelsesbesked>";
    let whole = body.windows(end.len()).position(|w| w == end).map_or(body.len(), |at| at + end.len());
    check_truncations(&body, whole, sdi::translate, PEOPLE);
}

#[test]
fn huge_numbers_and_long_values_are_refused() {
    let e = |events: &str| clean(message(&parents(), events).as_bytes());
    assert!(e(&event("revision-tilbudt", "99999-01-01T00:00:00Z", "")).contains("is not a date-time"));
    assert!(
        e(&event("revision-tilbudt", "9999-12-31T23:30:00-14:00", "")).ends_with("is outside the years 1900 to 9999")
    );
    let long_cpr = format!("{}0507880000", "9".repeat(10_000));
    let who = format!("<bro:Part><sd:URNIdentifikator>urn:oio:cpr-nr:{long_cpr}</sd:URNIdentifikator></bro:Part>");
    assert!(
        e(&event("stoetteperson-tilbudt", "2026-01-15", &who))
            .ends_with("Part: is not a CPR URN (urn:oio:cpr-nr: and ten digits)")
    );
    let version = message(&parents(), &event("revision-tilbudt", "2026-01-15", ""))
        .replace("<kuvert:BeskedVersion>1.0<", &format!("<kuvert:BeskedVersion>1{}<", "0".repeat(100_000)));
    assert!(
        clean(version.as_bytes())
            .starts_with("unsupported message type: Haendelsesbesked BeskedVersion (a value that is not a code)")
    );
    let reason = format!("<bro:Begrundelse>{}</bro:Begrundelse>", "x".repeat(5000));
    assert!(
        e(&event("plan-undladt", "2026-01-15", &reason))
            .ends_with("Begrundelse: is 5000 bytes long; at most 4096 are allowed")
    );
    let many = event("revision-tilbudt", "2026-01-15", "").repeat(1001);
    assert!(e(&many).ends_with("Sagshaendelse: has 1001 entries; at most 1000 are allowed"));
}

#[test]
fn other_namespaces_and_formats_are_unsupported_by_name() {
    let wrong = text("sag-oprettet.in.xml").replace("urn:oio:besked:kuvert:1.0", "urn:oio:besked:kuvert:2.0");
    assert_eq!(
        clean(wrong.as_bytes()),
        "unsupported message type: XML Haendelsesbesked in namespace \"urn:oio:besked:kuvert:2.0\" is not a \
         Haendelsesbesked; the sdi adapter reads KOMBIT Beskedfordeler Haendelsesbesked (urn:oio:besked:kuvert:1.0)"
    );
    // bro's earlier profile, a Sag change of its own namespace, is not SF1470's registration.
    let own = text("sag-oprettet.in.xml").replace("urn:oio:sts:sagdok:sag:6", "urn:bro:sdi:sag:1.0");
    assert!(
        clean(own.as_bytes())
            .contains("a Haendelsesbesked about RegistreringBesked (namespace \"urn:bro:sdi:sag:1.0\")")
    );
    assert_eq!(
        clean(&fixture("dokument.in.xml")),
        "unsupported message type: a Haendelsesbesked about Sikkerhedsprofil (namespace \
         \"urn:oio:sts:sagdok:dokumentindeks:6\"), ObjektType \"a7c4e2b9-0000-4000-8000-…\" is not a Sag \
         registration; the sdi adapter reads SF1470 v6 RegistreringBesked (urn:oio:sts:sagdok:sag:6)"
    );
    assert!(clean(b"{\"BeskedId\": 1}").contains("a message that is not XML"));
    assert!(
        clean(b"<Emessage xmlns=\"http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/\"/>")
            .contains("XML Emessage")
    );
    let empty_wrapper = "<sts:ModtagBeskedInput xmlns:sts=\"urn:oio:sts:1.0.0\"/>";
    assert_eq!(clean(empty_wrapper.as_bytes()), "invalid content: ModtagBeskedInput.Haendelsesbesked: is missing");
}

#[test]
fn encodings_other_than_utf8_are_refused_with_a_position() {
    let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<a>\xe6</a>";
    assert!(clean(latin).contains("encoding \"ISO-8859-1\"; a Haendelsesbesked is UTF-8"));
    assert_eq!(clean(b"<?xml version=\"1.0\"?>\n<a>\n\xff</a>"), "malformed input at 3:1: not UTF-8");
}

#[test]
fn no_error_carries_a_cpr_number_or_a_name() {
    let base = text("stoetteperson.in.xml");
    let broken = [
        base.replace(
            "urn:oio:cpr-nr:0507880000</sd:URNIdentifikator></gd:ReferenceID>",
            "urn:oio:cpr-nr:05078800X0</sd:URNIdentifikator></gd:ReferenceID>",
        ),
        base.replace("urn:bro:sdi:rolle:mor<", "urn:bro:sdi:rolle:Mette Testesen 0507880000<"),
        base.replace(
            "<bro:Haendelsestype>stoetteperson-afvist</bro:Haendelsestype>",
            "<bro:Haendelsestype>Lise Naboesen 0507880000</bro:Haendelsestype>",
        ),
        base.replace("<bro:Stoettepersontype>netvaerk<", "<bro:Stoettepersontype>Naboesen 1206851000<"),
        base.replacen("urn:bro:sdi:rolle:far<", "urn:bro:sdi:rolle:barn<", 1),
        base.replace(
            "urn:oio:cpr-nr:1206851000</sd:URNIdentifikator></bro:Part>",
            "urn:oio:cpr-nr:1503150000</sd:URNIdentifikator></bro:Part>",
        ),
    ];
    for (i, body) in broken.iter().enumerate() {
        assert_ne!(body, &base, "variant {i} changed nothing");
        let e = clean(body.as_bytes());
        assert!(e.starts_with("invalid content: "), "{i}: {e}");
    }
}
