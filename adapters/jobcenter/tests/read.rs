//! Reading Momentum documents: every field the adapter maps, hours and the
//! full-time tag, dates, and the refusals that name their field by JSON
//! pointer.

mod common;

use bro_adapter_sdk::proto::{self, case_event::Kind};
use common::{edited, error, fixture, read};
use serde_json::json;

fn plan(b: &proto::AdapterBatch) -> proto::SectorPlan {
    b.events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::SectorPlanRecorded(r)) => r.plan.clone(),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_document_becomes_a_plan_and_events_per_meeting() {
    let b = read(&fixture("plan-og-moeder.in.json"));
    assert_eq!(b.source_message_id, "momentum-7f3a9c21-0b4e-4d2a-9e61-5c8d7b0a1f34");
    assert_eq!(
        b.subjects.first().map(|s| (s.kind(), s.value.as_str())),
        Some((proto::PersonIdentifierKind::Cpr, "0507880000"))
    );
    assert_eq!((b.case.as_str(), b.parties.len()), ("", 0));
    // The plan, the planned meeting, and the cancelled one as scheduled-then-cancelled.
    assert_eq!(b.events.len(), 4);
    // 23:15 UTC on 3 February is 4 February in Denmark.
    assert!(b.events.iter().all(|e| e.occurred_on == Some(proto::Date { year: 2026, month: 2, day: 4 })));
    assert!(b.events.iter().all(|e| e.source.is_none() && e.sequence == 0));
    let p = plan(&b);
    assert_eq!((p.plan_id.as_str(), p.custody_holder.as_str()), ("minplan-2026-1", "subjects/0"));
    assert_eq!(p.sector(), proto::Sector::Jobcentre);
    assert_eq!(p.system_of_record, "");
    let org = p.organisation.clone().unwrap_or_default();
    assert_eq!(
        (org.display_name.as_str(), org.cvr.as_str(), org.ean.as_str()),
        ("Jobcenter Testrup", "29990001", "5790000000017")
    );
    let caseworker = p.contact_person.clone().unwrap_or_default();
    assert_eq!((caseworker.role.as_str(), caseworker.phone.as_str()), ("jobkonsulent", "70 00 00 02"));
    assert_eq!(p.start_date, Some(proto::Date { year: 2026, month: 2, day: 1 }));
    assert_eq!(p.goals.len(), 2);
    let minutes: Vec<i32> = p.activities.iter().map(|a| a.minutes_per_week).collect();
    assert_eq!(minutes, [900, 2220, 75, 1950]);
    let Some(Kind::AppointmentScheduled(s)) = b.events.get(1).and_then(|e| e.kind.clone()) else {
        panic!("no meeting")
    };
    let a = s.appointment.unwrap_or_default();
    assert_eq!((a.appointment_id.as_str(), a.custody_holder.as_str()), ("m-101", "subjects/0"));
    assert_eq!(a.sector(), proto::Sector::Jobcentre);
    assert_eq!(a.organisation, p.organisation);
    assert_eq!(a.start_time.map(|t| t.seconds), Some(1_771_232_400));
    assert_eq!(a.end_time.map(|t| t.seconds), Some(1_771_232_400 + 45 * 60));
    assert!(!a.cancelled);
    let Some(Kind::AppointmentScheduled(s)) = b.events.get(2).and_then(|e| e.kind.clone()) else {
        panic!("the cancelled meeting is not recorded with its times")
    };
    assert_eq!(s.appointment.map(|a| a.appointment_id), Some("m-102".to_owned()));
    let Some(Kind::AppointmentCancelled(c)) = b.events.get(3).and_then(|e| e.kind.clone()) else {
        panic!("no cancellation")
    };
    assert_eq!((c.appointment_id.as_str(), c.reason.as_str()), ("m-102", "Flyttes til efter samværet"));
}

#[test]
fn thirty_hours_or_more_is_tagged_full_time_once() {
    let p = plan(&read(&fixture("plan-og-moeder.in.json")));
    let tags: Vec<Vec<&str>> = p.activities.iter().map(|a| a.tags.iter().map(String::as_str).collect()).collect();
    assert_eq!(tags, [vec!["dagtimer"], vec!["dagtimer", "full-time"], vec!["aften"], vec!["full-time"]]);
    let exactly = edited(|v| v["plan"]["activities"][0]["hoursPerWeek"] = json!(30));
    assert!(plan(&read(&exactly)).activities.first().is_some_and(|a| a.tags.contains(&"full-time".to_owned())));
    let just_under = edited(|v| v["plan"]["activities"][0]["hoursPerWeek"] = json!(29.99));
    let a = plan(&read(&just_under)).activities.first().cloned().unwrap_or_default();
    assert_eq!((a.minutes_per_week, a.tags.contains(&"full-time".to_owned())), (1799, false));
}

#[test]
fn meetings_alone_and_unknown_members_are_fine() {
    let b = read(&fixture("kun-moeder.in.json"));
    assert_eq!(b.events.len(), 2);
    assert!(!b.events.iter().any(|e| matches!(e.kind, Some(Kind::SectorPlanRecorded(_)))));
    let nothing = edited(|v| {
        v["plan"] = json!(null);
        v["meetings"] = json!([]);
    });
    assert_eq!(
        error(&nothing),
        "invalid content: /plan: the document has neither a plan nor meetings: nothing to record"
    );
}

/// A change to the full fixture.
type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn every_field_is_refused_by_its_pointer() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| v["citizen"]["cpr"] = json!("05078800")), "/citizen/cpr: is not a CPR number (ten digits)"),
        (Box::new(|v| v["citizen"]["cpr"] = json!(507880000)), "/citizen/cpr: is a number, not a string"),
        (Box::new(|v| v["citizen"] = json!(null)), "/citizen/cpr: is required"),
        (Box::new(|v| v["messageId"] = json!("id with spaces")), "/messageId: is not an id"),
        (Box::new(|v| v["changedAt"] = json!("2026-02-03T12:00:00")), "/changedAt: is not a date-time"),
        (Box::new(|v| v["jobcenter"]["cvr"] = json!("2999")), "/jobcenter/cvr: is not a CVR number (eight digits)"),
        (Box::new(|v| v["jobcenter"]["ean"] = json!("57900")), "/jobcenter/ean: is not an EAN/GLN location number"),
        (Box::new(|v| v["plan"]["validTo"] = json!("2026-01-01")), "/plan/validTo: is before validFrom"),
        (
            Box::new(|v| v["plan"]["goals"][1]["goalId"] = json!("g1")),
            "/plan/goals/1/goalId: is used by an earlier goal",
        ),
        (
            Box::new(|v| v["plan"]["activities"][0]["endDate"] = json!("2026-02-08")),
            "/plan/activities/0/endDate: is before startDate",
        ),
        (
            Box::new(|v| v["plan"]["activities"][0]["startDate"] = json!("9.2.2026")),
            "/plan/activities/0/startDate: is not a date YYYY-MM-DD",
        ),
        (
            Box::new(|v| v["plan"]["activities"][2]["hoursPerWeek"] = json!(-1)),
            "/plan/activities/2/hoursPerWeek: is not between 0 and 168",
        ),
        (
            Box::new(|v| v["plan"]["activities"][2]["hoursPerWeek"] = json!("1.25")),
            "/plan/activities/2/hoursPerWeek: is a string, not a number",
        ),
        (
            Box::new(|v| v["plan"]["activities"][1]["goalIds"] = json!(["g9"])),
            "/plan/activities/1/goalIds/0: names no goal of the plan",
        ),
        (
            Box::new(|v| v["plan"]["activities"][1]["tags"] = json!(["ok", "Not OK"])),
            "/plan/activities/1/tags/1: (a value that is not a code) is not a tag",
        ),
        (
            Box::new(|v| v["meetings"][1]["meetingId"] = json!("m-101")),
            "/meetings/1/meetingId: is used by an earlier meeting",
        ),
        (
            Box::new(|v| v["meetings"][0]["status"] = json!("afholdt")),
            "/meetings/0/status: unknown status \"afholdt\"; expected planned or cancelled",
        ),
        (Box::new(|v| v["meetings"][0]["end"] = json!(null)), "/meetings/0/end: is required for a planned meeting"),
        (
            Box::new(|v| v["meetings"][0]["end"] = json!("2026-02-16T10:00:00+01:00")),
            "/meetings/0/end: is not after start",
        ),
        (Box::new(|v| v["meetings"][1]["start"] = json!("tomorrow")), "/meetings/1/start: is not a date-time"),
        (Box::new(|v| v["meetings"][0]["with"] = json!("Ida")), "/meetings/0/with: is a string, not an object"),
        (Box::new(|v| v["meetings"] = json!({})), "/meetings: is an object, not an array"),
        (
            Box::new(|v| v["plan"]["activities"][0]["title"] = json!("x".repeat(5000))),
            "/plan/activities/0/title: is 5000 bytes long",
        ),
    ];
    for (edit, expected) in cases {
        let e = error(&edited(edit));
        assert!(e.starts_with(&format!("invalid content: {expected}")), "{e}\nexpected {expected}");
    }
}

#[test]
fn the_fixtures_errors_name_their_fields() {
    for (name, field) in [
        ("mangler-cpr.in.json", "/citizen/cpr"),
        ("slut-foer-start.in.json", "/meetings/0/end"),
        ("ukendt-aktivitet.in.json", "/plan/activities/1/type"),
        ("forkert-dato.in.json", "/plan/validFrom"),
        ("forkert-tag.in.json", "/plan/goals/0/tags/0"),
    ] {
        let e = error(&fixture(name));
        assert!(e.starts_with(&format!("invalid content: {field}: ")), "{name}: {e}");
    }
}

#[test]
fn the_content_type_is_not_trusted() {
    use bro_adapter_sdk::{Adapter, Message};
    let message =
        Message { content_type: "text/xml".into(), body: fixture("kun-moeder.in.json"), metadata: Vec::new() };
    assert!(jobcenter::Jobcenter::to_canonical(message).is_ok());
    let xml =
        Message { content_type: "application/json".into(), body: fixture("ikke-json.in.xml"), metadata: Vec::new() };
    assert!(matches!(jobcenter::Jobcenter::to_canonical(xml), Err(bro_adapter_sdk::AdapterError::Unsupported(_))));
}

#[test]
fn describe_names_what_is_read_and_written() {
    use bro_adapter_sdk::{Adapter, SystemKind};
    let info = jobcenter::Jobcenter::describe();
    assert_eq!(info.name, "jobcenter");
    assert!(matches!(info.system_kind, SystemKind::Jobcentre));
    assert_eq!(info.writes.first().map(|t| t.name.as_str()), Some("momentum-citizen"));
}
