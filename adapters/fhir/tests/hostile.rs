//! Hostile and broken input: every one is refused with an error that names
//! where or what, nothing panics (the component would trap), sizes, lengths
//! and nesting are capped, and no error carries a CPR number or a name.

mod common;

use bro_adapter_sdk::testing::check_truncations;
use common::{edited, error, error_with, fixture};
use serde_json::json;

const BUNDLE: &str = "psychiatry-bundle.in.json";

#[test]
fn an_empty_body_is_malformed() {
    assert_eq!(error(b""), "malformed input at 1:1: the message body is empty");
    assert_eq!(error(b" \r\n"), "malformed input at 1:1: the message body is empty");
    assert_eq!(error(b"\xef\xbb\xbf"), "malformed input at 1:1: the message body is empty");
}

#[test]
fn broken_json_is_malformed_with_line_and_column() {
    assert_eq!(error(&fixture("malformed.in.json")), "malformed input at 6:1: not JSON: EOF while parsing an object");
    assert_eq!(error(b"{\"resourceType\": Bundle}"), "malformed input at 1:18: not JSON: expected value");
    assert!(error(b"{\"resourceType\": \"\xff\"}").starts_with("malformed input at 1:"));
}

#[test]
fn deep_nesting_is_refused_at_the_depth_cap_and_huge_numbers_by_the_parser() {
    let deep = format!("{{\"resourceType\": \"Bundle\", \"x\": {}1{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let e = error(deep.as_bytes());
    assert!(
        e.starts_with("malformed input at 1:") && e.contains("deeper than 64 levels") && e.contains("(cap: depth)"),
        "{e}"
    );
    let objects = format!("{}{}", "{\"contained\":".repeat(200), "}".repeat(200));
    assert!(error(objects.as_bytes()).contains("(cap: depth)"));
    assert!(error(b"{\"resourceType\": \"Bundle\", \"total\": 1e999}").contains("number out of range"));
}

#[test]
fn lists_and_texts_are_capped() {
    let many_entries = edited(BUNDLE, |v| v["entry"] = json!(vec![json!({}); 1001]));
    assert_eq!(error(&many_entries), "invalid content: /entry: has 1001 entries; at most 1000 are allowed");
    let appointment = fixture(BUNDLE);
    let many_appointments = edited(BUNDLE, |v| {
        let template: serde_json::Value = serde_json::from_slice(&appointment).unwrap_or_default();
        let mut entries = Vec::new();
        for i in 0..201 {
            let mut a = template["entry"][2].clone();
            a["resource"]["id"] = json!(format!("psyk-{i}"));
            entries.push(a);
        }
        entries.push(template["entry"][3].clone());
        v["entry"] = json!(entries);
    });
    assert_eq!(
        error(&many_appointments),
        "invalid content: /entry: the Bundle holds 201 Appointments; at most 200 are read"
    );
    let participants = edited(BUNDLE, |v| v["entry"][0]["resource"]["participant"] = json!(vec![json!({}); 201]));
    assert_eq!(
        error(&participants),
        "invalid content: /entry/0/resource/participant: has 201 entries; at most 200 are allowed"
    );
    let long = edited(BUNDLE, |v| v["entry"][0]["resource"]["description"] = json!("x".repeat(4097)));
    assert_eq!(
        error(&long),
        "invalid content: /entry/0/resource/description: is 4097 bytes long; at most 4096 are allowed"
    );
    let given = edited(BUNDLE, |v| v["entry"][4]["resource"]["name"][0]["given"] = json!(vec!["x".repeat(3000); 2]));
    assert!(error(&given).ends_with("is 6014 bytes long; at most 4096 are allowed"));
    let id = edited(BUNDLE, |v| v["entry"][0]["resource"]["identifier"][0]["value"] = json!("p".repeat(201)));
    assert!(error(&id).starts_with("invalid content: /entry/0/resource/identifier/0/value: is not an id"));
}

#[test]
fn wrong_json_types_are_named() {
    let e = error(&edited(BUNDLE, |v| v["entry"] = json!({"resource": {}})));
    assert_eq!(e, "invalid content: /entry: is an object, not an array");
    let e = error(&edited(BUNDLE, |v| v["entry"][0]["resource"]["participant"][0]["actor"] = json!("Patient/pat-1")));
    assert_eq!(e, "invalid content: /entry/0/resource/participant/0/actor: is a string, not an object");
    let e = error(&edited(BUNDLE, |v| v["entry"][0]["resource"]["start"] = json!(20260331)));
    assert_eq!(e, "invalid content: /entry/0/resource/start: is a number, not a string");
    let e = error(&edited(BUNDLE, |v| v["entry"][0]["resource"]["resourceType"] = json!(null)));
    assert_eq!(e, "invalid content: /entry/0/resource/resourceType: is required");
}

#[test]
fn every_truncation_of_a_sample_is_refused_without_panicking() {
    let body = fixture(BUNDLE);
    let whole = body.iter().rposition(|b| *b == b'}').map_or(body.len(), |end| end + 1);
    check_truncations(&body, whole, |cut| fhir::translate(cut, &[]), common::PEOPLE);
}

#[test]
fn other_formats_and_resources_are_unsupported() {
    assert!(
        error(&fixture("xml.in.xml")).starts_with("unsupported message type: XML; the fhir adapter reads FHIR R4 JSON")
    );
    assert!(error(b"[{\"resourceType\": \"Bundle\"}]").contains("a JSON document that is not an object"));
    assert!(error(b"\"2207921238\"").contains("a message that is not JSON"));
    assert!(error(b"%PDF-1.7").contains("a message that is not JSON"));
    assert!(error(b"{\"type\": \"collection\"}").contains("JSON without a resourceType is not a FHIR resource"));
    assert_eq!(
        error(&fixture("careplan-resource.in.json")),
        "unsupported message type: a FHIR \"CarePlan\"; the fhir adapter reads Bundles of Appointments and single Appointments"
    );
    assert!(error(&fixture("message-bundle.in.json")).contains("a FHIR Bundle of type \"message\""));
}

#[test]
fn no_error_carries_a_cpr_number_or_a_name() {
    // `error` checks every message against the people of the fixtures.
    let bodies = [
        edited(BUNDLE, |v| v["resourceType"] = json!("Mette Testesen")),
        edited(BUNDLE, |v| v["type"] = json!("2207921238")),
        edited(BUNDLE, |v| v["entry"][0]["resource"]["status"] = json!("Sofie Behandlersen")),
        edited(BUNDLE, |v| v["entry"][3]["resource"]["identifier"][1]["value"] = json!("Mette Testesen")),
        edited(BUNDLE, |v| v["entry"][3]["resource"]["identifier"][1]["value"] = json!("22079212380")),
        edited(BUNDLE, |v| {
            v["entry"][0]["resource"]["participant"][0]["actor"]["reference"] = json!("Patient/2207921238")
        }),
        edited(BUNDLE, |v| v["identifier"]["value"] = json!("Jonas Prøvesen")),
        edited("two-patients.in.json", |_| {}),
    ];
    for body in bodies {
        let e = error(&body);
        assert!(e.starts_with("invalid content: ") || e.starts_with("unsupported message type: "), "{e}");
    }
    assert!(error_with(&fixture(BUNDLE), &[("sector", "0101901234")]).contains("\"…\""));
}
