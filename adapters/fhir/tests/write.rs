//! Writing: a plan view becomes a FHIR Bundle whose resources refer to one
//! another, the same batch gives the same bytes, a notice carries only the
//! Patients and revoked CarePlans, and what cannot be written is refused by
//! field without a CPR number or a name in the error.

mod common;

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, HolisticPlanState, PersonIdentifierKind};
use bro_adapter_sdk::testing::{accepted, refused};
use common::canonical;
use serde_json::Value;

fn render(b: &proto::AdapterBatch) -> Vec<u8> {
    let m = accepted(fhir::render(b, "careplan+json"));
    assert_eq!(m.content_type, "application/fhir+json; fhir-version=4.0");
    m.body
}

fn bundle(b: &proto::AdapterBatch) -> Value {
    serde_json::from_slice(&render(b)).unwrap_or_default()
}

fn refusal(b: &proto::AdapterBatch) -> String {
    refused(fhir::render(b, "careplan+json"), common::PEOPLE)
}

/// The resources of a Bundle of `kind`.
fn resources<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == kind).collect())
        .unwrap_or_default()
}

fn view() -> proto::AdapterBatch {
    canonical("care-plan.canonical.json")
}

/// A change to a batch, for a table of refusals.
type Edit = fn(&mut proto::AdapterBatch);

fn plan(b: &mut proto::AdapterBatch) -> &mut proto::HolisticPlan {
    b.holistic_plan.get_or_insert_with(Default::default)
}

#[test]
fn every_reference_names_a_resource_of_the_bundle() {
    let b = bundle(&view());
    let urls: Vec<&str> = b["entry"].as_array().into_iter().flatten().filter_map(|e| e["fullUrl"].as_str()).collect();
    fn references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    out.push(r);
                }
                m.values().for_each(|v| references(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    references(&b, &mut found);
    assert!(found.len() > 20);
    for r in found {
        assert!(urls.contains(&r), "{r} names nothing in the Bundle");
    }
    let mut sorted = urls.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), urls.len(), "every resource once");
}

#[test]
fn a_view_is_care_plans_and_what_they_refer_to() {
    let b = bundle(&view());
    assert_eq!((b["resourceType"].as_str(), b["type"].as_str()), (Some("Bundle"), Some("collection")));
    assert_eq!(resources(&b, "Patient").len(), 2);
    let plans = resources(&b, "CarePlan");
    assert_eq!(plans.len(), 2);
    assert!(plans.iter().all(|p| p["status"] == "active" && p["intent"] == "plan" && p["meta"]["versionId"] == "4"));
    assert_eq!(plans[0]["title"], "Helhedsorienteret plan (barnets lov § 78)");
    // Mother: the shared goal and psychiatry's own, both appointments; father: the shared goal only.
    assert_eq!(plans[0]["goal"].as_array().map(Vec::len), Some(2));
    assert_eq!(plans[0]["activity"].as_array().map(Vec::len), Some(2));
    assert_eq!(plans[1]["goal"].as_array().map(Vec::len), Some(1));
    assert!(plans[1].get("activity").is_none());
    assert_eq!(resources(&b, "Goal").len(), 3);
    let team = resources(&b, "CareTeam");
    assert_eq!(team[0]["participant"][0]["role"][0]["text"], "koordinator");
    // The busy period given twice is one Slot.
    assert_eq!(resources(&b, "Schedule").len(), 2);
    assert_eq!(resources(&b, "Slot").len(), 2);
    assert!(resources(&b, "Slot").iter().all(|s| s["status"] == "busy-unavailable"));
    let appointments = resources(&b, "Appointment");
    assert_eq!(appointments[1]["status"], "cancelled");
    // Written without an end: an hour.
    assert_eq!(appointments[1]["end"], "2026-04-07T14:00:00+02:00");
    let issues = resources(&b, "DetectedIssue");
    assert_eq!(issues.len(), 2);
    assert_eq!(issues[1]["implicated"][0]["identifier"]["system"], "urn:bro:case-item");
}

#[test]
fn the_same_batch_gives_the_same_bytes_and_ids_outlive_a_version() {
    let b = view();
    assert_eq!(render(&b), render(&b));
    let mut next = b.clone();
    plan(&mut next).version = 9;
    let (a, z) = (bundle(&b), bundle(&next));
    assert_ne!(a["id"], z["id"]);
    assert_eq!(resources(&a, "Goal")[0]["id"], resources(&z, "Goal")[0]["id"]);
    assert_eq!(resources(&a, "CarePlan")[0]["id"], resources(&z, "CarePlan")[0]["id"]);
    // No id is derived from a CPR number: the number appears once, in its Patient.
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert_eq!(text.matches("2207921238").count(), 1);
    let mut own = b.clone();
    own.source_message_id = "levering-17".into();
    assert_eq!(bundle(&own)["identifier"]["value"], "levering-17");
}

#[test]
fn a_notice_is_patients_and_revoked_care_plans() {
    let b = bundle(&canonical("care-plan-ended.canonical.json"));
    let kinds: Vec<&str> =
        b["entry"].as_array().into_iter().flatten().filter_map(|e| e["resource"]["resourceType"].as_str()).collect();
    assert_eq!(kinds, ["Patient", "CarePlan"]);
    assert_eq!(resources(&b, "CarePlan")[0]["status"], "revoked");
    assert!(b.get("timestamp").is_none());
    // Goals and the rest of a view are not sent in a notice, even if present.
    let mut full = view();
    plan(&mut full).distribution_ended = true;
    let kinds = bundle(&full)["entry"].as_array().map(Vec::len);
    assert_eq!(kinds, Some(4));
}

#[test]
fn the_plans_state_is_the_care_plans_status() {
    for (state, status, goal) in [
        (HolisticPlanState::Proposed, "draft", "proposed"),
        (HolisticPlanState::InForce, "active", "active"),
        (HolisticPlanState::AgreementWithdrawn, "revoked", "active"),
        (HolisticPlanState::Superseded, "revoked", "active"),
    ] {
        let mut b = view();
        plan(&mut b).state = state as i32;
        let out = bundle(&b);
        assert_eq!(resources(&out, "CarePlan")[0]["status"], status, "{state:?}");
        assert_eq!(resources(&out, "Goal")[0]["lifecycleStatus"], goal, "{state:?}");
    }
}

#[test]
fn a_replacement_cpr_number_and_a_parent_without_a_party() {
    let mut b = view();
    let replacement =
        proto::PersonIdentifier { kind: PersonIdentifierKind::ReplacementCpr as i32, value: "0101A90X12".into() };
    b.subjects[1] = replacement.clone();
    b.parties[1].identifier = Some(replacement);
    let out = bundle(&b);
    let identifier = &resources(&out, "Patient")[1]["identifier"][0];
    assert_eq!(
        (identifier["use"].as_str(), identifier["system"].as_str()),
        (Some("temp"), Some("urn:oid:1.2.208.176.1.6.1.1"))
    );
    b.parties.clear();
    let out = bundle(&b);
    assert!(resources(&out, "Patient").iter().all(|p| p.get("name").is_none()));
}

#[test]
fn from_canonical_refuses_what_it_cannot_write() {
    let b = view();
    assert!(
        matches!(fhir::render(&b, "fhir+xml"), Err(AdapterError::Unsupported(t)) if t == "target \"fhir+xml\"; the fhir adapter writes careplan+json")
    );
    let mut events = b.clone();
    events.holistic_plan = None;
    assert_eq!(refusal(&events), "invalid content: events: the fhir adapter sends holistic plans only");
    let mut both = b.clone();
    both.events.push(proto::CaseEvent::default());
    assert_eq!(refusal(&both), "invalid content: events: a batch with a holistic plan carries no events");
    let cases: Vec<(Edit, &str)> = vec![
        (|b| plan(b).name = "plans/plan-1".into(), "holisticPlan.name: is not a plan name"),
        (|b| plan(b).version = 0, "holisticPlan.version: is required"),
        (|b| plan(b).state = 0, "holisticPlan.state: proposed, in force"),
        (|b| plan(b).covers.clear(), "holisticPlan.covers: the plan covers no parent"),
        (|b| plan(b).covers[1] = "subjects/7".into(), "holisticPlan.covers[1]: \"subjects/7\" names no person"),
        (|b| plan(b).covers[1] = "subjects/0".into(), "holisticPlan.covers[1]: names a parent the plan already covers"),
        (|b| plan(b).prepared_on = None, "holisticPlan.preparedOn: is required"),
        (|b| plan(b).goals[1].goal_id = "g 3".into(), "holisticPlan.goals[1].goalId: is not an id"),
        (|b| plan(b).goals[1].goal_id = "g1".into(), "holisticPlan.goals[1].goalId: is used by an earlier goal"),
        (
            |b| {
                plan(b).covers.truncate(1);
                plan(b).goals[0].custody_holders = vec!["subjects/1".into()];
            },
            "holisticPlan.goals[0].custodyHolders[0]: names a parent the plan does not cover",
        ),
        (
            |b| plan(b).appointments[0].end_time = plan(b).appointments[0].start_time,
            "appointments[0].endTime: is not after",
        ),
        (|b| plan(b).appointments[0].start_time = None, "holisticPlan.appointments[0].startTime: is required"),
        (|b| plan(b).busy_periods[0].end_time = None, "holisticPlan.busyPeriods[0].endTime: is required"),
        (|b| plan(b).conflicts[0].kind = 0, "holisticPlan.conflicts[0].kind: the kind of conflict is required"),
        (|b| plan(b).conflicts[0].items[0] = "appointments/psyk 17".into(), "conflicts[0].items[0]: is not a path"),
        (
            |b| {
                plan(b)
                    .coordinator
                    .as_mut()
                    .and_then(|c| c.organisation.as_mut())
                    .into_iter()
                    .for_each(|o| o.cvr = "2999".into())
            },
            "holisticPlan.coordinator.organisation.cvr: is not a CVR number",
        ),
        (
            |b| plan(b).agreements[0].agreed_on = Some(proto::Date { year: 2026, month: 2, day: 30 }),
            "agreedOn: is not a date",
        ),
    ];
    for (edit, expected) in cases {
        let mut c = b.clone();
        edit(&mut c);
        let e = refusal(&c);
        assert!(e.starts_with("invalid content: ") && e.contains(expected), "{e} (expected {expected})");
    }
}

#[test]
fn errors_never_echo_a_cpr_number_or_a_name() {
    let mut b = view();
    b.subjects[0].value = "22079212380".into();
    b.parties[0].identifier = Some(b.subjects[0].clone());
    assert_eq!(refusal(&b), "invalid content: holisticPlan.covers[0]: the CPR number is not ten digits");
    let mut c = view();
    plan(&mut c).covers[0] = "Mette Testesen".into();
    assert!(refusal(&c).contains("(a value that is not a code) names no person"));
}
