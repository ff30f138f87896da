//! Hostile and broken input: every one is refused with an error that names
//! where or what, nothing panics (the component would trap), and no error
//! carries a CPR number or a name.

mod common;

use bro_adapter_sdk::testing::check_truncations;
use common::{edited, error, fixture};
use serde_json::json;

#[test]
fn an_empty_body_is_malformed() {
    assert_eq!(error(b""), "malformed input at 1:1: the message body is empty");
    assert_eq!(error(b" \n\t"), "malformed input at 1:1: the message body is empty");
    assert_eq!(error(b"\xef\xbb\xbf"), "malformed input at 1:1: the message body is empty");
}

#[test]
fn broken_json_is_malformed_with_line_and_column() {
    assert_eq!(error(&fixture("malformed.in.json")), "malformed input at 6:1: not JSON: EOF while parsing an object");
    assert_eq!(error(b"{\"a\": tru}"), "malformed input at 1:10: not JSON: expected ident");
    assert!(
        error(b"{\"citizen\": {\"cpr\": \"0507880000\"}} x")
            .starts_with("malformed input at 1:36: not JSON: trailing characters")
    );
    assert!(error(b"{\"a\": \"\xff\"}").starts_with("malformed input at 1:"));
}

#[test]
fn deep_nesting_is_refused_by_the_parser() {
    let deep = format!("{{\"plan\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let e = error(deep.as_bytes());
    assert!(
        e.starts_with("malformed input at 1:") && e.contains("deeper than 64 levels") && e.contains("(cap: depth)"),
        "{e}"
    );
    let objects = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
    assert!(error(objects.as_bytes()).contains("(cap: depth)"));
}

#[test]
fn huge_numbers_are_refused() {
    let e = error(b"{\"plan\": {\"x\": 1e400}}");
    assert!(e.starts_with("malformed input at 1:") && e.contains("number out of range"), "{e}");
    let big = edited(|v| v["plan"]["activities"][0]["hoursPerWeek"] = json!(1e300));
    assert!(error(&big).starts_with("invalid content: /plan/activities/0/hoursPerWeek: is not between 0 and 168"));
    let long = edited(|v| v["meetings"][0]["meetingId"] = json!("m".repeat(201)));
    assert!(error(&long).starts_with("invalid content: /meetings/0/meetingId: is not an id"));
    let many = edited(|v| v["meetings"] = json!(vec![json!({"meetingId": "m", "status": "cancelled"}); 201]));
    assert!(error(&many).starts_with("invalid content: /meetings: has 201 entries; at most 200 are allowed"));
    let far = edited(|v| v["changedAt"] = json!("99999-01-01T00:00:00Z"));
    assert!(error(&far).starts_with("invalid content: /changedAt: is not a date-time"));
    let edge = edited(|v| v["changedAt"] = json!("9999-12-31T23:00:00-14:00"));
    assert!(error(&edge).starts_with("invalid content: /changedAt: is outside the years 1900 to 9999"));
}

#[test]
fn every_truncation_of_a_sample_is_refused_without_panicking() {
    let body = fixture("plan-og-moeder.in.json");
    let whole = body.iter().rposition(|b| *b == b'}').map_or(body.len(), |end| end + 1);
    check_truncations(&body, whole, jobcenter::translate, common::PEOPLE);
}

#[test]
fn other_formats_and_shapes_are_unsupported() {
    assert!(error(&fixture("ikke-json.in.xml")).starts_with("unsupported message type: XML"));
    assert!(error(b"[{\"citizen\": {}}]").contains("a JSON document that is not an object"));
    assert!(error(b"\"0507880000\"").contains("a message that is not JSON"));
    assert!(error(b"%PDF-1.7").contains("a message that is not JSON"));
}

#[test]
fn no_error_carries_a_cpr_number_or_a_name() {
    // `error` checks every message against the people of the fixtures.
    let names = [
        edited(|v| v["citizen"]["cpr"] = json!("Mette Testesen")),
        edited(|v| v["citizen"]["cpr"] = json!("0507880000 0507880000")),
        edited(|v| v["plan"]["activities"][0]["type"] = json!("Mette Testesen")),
        edited(|v| v["plan"]["activities"][0]["type"] = json!("x0507880000")),
        edited(|v| v["meetings"][0]["status"] = json!("Ida Jobsen")),
        edited(|v| v["plan"]["goals"][0]["tags"] = json!(["Jonas Prøvesen"])),
        edited(|v| v["meetings"][0]["with"]["name"] = json!(["Ida Jobsen"])),
    ];
    for body in names {
        assert!(error(&body).starts_with("invalid content: "));
    }
}
