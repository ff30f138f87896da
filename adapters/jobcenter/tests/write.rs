//! Writing: every fixture survives document → canonical → document →
//! canonical, the gateway's outbound batches are written (one citizen, one
//! plan, meetings merged), a holistic plan view becomes a `helhedsplan`
//! document, and what cannot be written is refused by field.

mod common;

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, case_event::Kind};
use bro_adapter_sdk::testing::{accepted, refused};
use common::{canonical, fixture, read};

fn render(b: &proto::AdapterBatch) -> Vec<u8> {
    accepted(jobcenter::render(b, "momentum+json")).body
}

fn refusal(b: &proto::AdapterBatch) -> String {
    refused(jobcenter::render(b, "momentum+json"), &[])
}

#[test]
fn every_fixture_survives_a_round_trip() {
    let mut trips = 0;
    for name in common::inputs() {
        let Ok(first) = jobcenter::translate(&fixture(&name)) else { continue };
        let again = read(&render(&first));
        assert_eq!(again, first, "{name}");
        trips += 1;
    }
    assert_eq!(trips, 2);
}

#[test]
fn hours_survive_as_minutes() {
    let b = read(&fixture("plan-og-moeder.in.json"));
    for minutes in [1, 7, 59, 61, 444, 1000, 1799, 2239, 2240, 10_079, 10_080] {
        let mut c = b.clone();
        if let Some(Kind::SectorPlanRecorded(r)) = c.events.first_mut().and_then(|e| e.kind.as_mut())
            && let Some(a) = r.plan.as_mut().and_then(|p| p.activities.first_mut())
        {
            a.minutes_per_week = minutes;
            // The reader adds the tag at 30 hours; keep the batch as it would read back.
            a.tags.retain(|t| t != "full-time");
            if minutes >= 1800 {
                a.tags.push("full-time".into());
            }
        }
        assert_eq!(read(&render(&c)), c, "{minutes} minutes");
    }
    let text = String::from_utf8(render(&b)).unwrap_or_default();
    assert!(
        text.contains("\"hoursPerWeek\": 15,")
            && text.contains("\"hoursPerWeek\": 1.25,")
            && text.contains("\"hoursPerWeek\": 32.5,")
    );
}

/// An outbound batch as the gateway sends it, read from the golden fixture's input.
fn outbound() -> proto::AdapterBatch {
    let cpr = |v: &str| proto::PersonIdentifier { kind: proto::PersonIdentifierKind::Cpr as i32, value: v.into() };
    let org =
        proto::Organisation { display_name: "Jobcenter Testrup".into(), cvr: "29990001".into(), ..Default::default() };
    let appointment = |id: &str, sector: proto::Sector, holder: &str| proto::Appointment {
        appointment_id: id.into(),
        custody_holder: holder.into(),
        sector: sector as i32,
        organisation: Some(org.clone()),
        title: "Samtale".into(),
        start_time: Some(prost_types::Timestamp { seconds: 1_774_857_600, nanos: 0 }),
        end_time: Some(prost_types::Timestamp { seconds: 1_774_860_300, nanos: 0 }),
        ..Default::default()
    };
    let on = |day| Some(proto::Date { year: 2026, month: 3, day });
    let event = |sequence, day, kind| proto::CaseEvent {
        sequence,
        occurred_on: on(day),
        kind: Some(kind),
        ..Default::default()
    };
    let schedule = |a| Kind::AppointmentScheduled(proto::AppointmentScheduled { appointment: Some(a) });
    proto::AdapterBatch {
        subjects: vec![cpr("0507880000"), cpr("1206851000")],
        case: "cases/emil-testesen".into(),
        parties: vec![proto::Party {
            party_id: "far".into(),
            identifier: Some(cpr("1206851000")),
            display_name: "Jonas Prøvesen".into(),
        }],
        events: vec![
            event(1, 10, schedule(appointment("m-1", proto::Sector::Jobcentre, "far"))),
            event(2, 11, schedule(appointment("m-1", proto::Sector::Jobcentre, "subjects/1"))),
            event(3, 11, schedule(appointment("p-1", proto::Sector::Psychiatry, "subjects/1"))),
            event(
                4,
                12,
                Kind::AppointmentCancelled(proto::AppointmentCancelled {
                    appointment_id: "p-1".into(),
                    reason: String::new(),
                }),
            ),
        ],
        ..Default::default()
    }
}

#[test]
fn an_outbound_batch_is_one_citizens_meetings() {
    let b = outbound();
    let doc: serde_json::Value = serde_json::from_slice(&render(&b)).unwrap_or_default();
    assert_eq!(doc["citizen"]["cpr"], "1206851000");
    assert_eq!(doc["citizen"]["name"], "Jonas Prøvesen");
    assert_eq!(doc["jobcenter"]["cvr"], "29990001");
    assert_eq!(doc["changedAt"], "2026-03-11T00:00:00+01:00");
    assert_eq!(doc["messageId"], jobcenter::ids::name_uuid("cases/emil-testesen#1-4").as_str());
    // The moved meeting once; the psychiatry appointment and its cancellation not at all.
    assert_eq!(doc["meetings"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["meetings"][0]["start"], "2026-03-30T10:00:00+02:00");
    assert!(doc.get("plan").is_none() && doc.get("caseworker").is_none());
}

#[test]
fn the_golden_output_reads_back() {
    let b = read(&fixture("til-momentum.expected.momentum.json"));
    assert_eq!(b.subjects.first().map(|s| s.value.as_str()), Some("0507880000"));
    // The plan, m-201, m-202 scheduled then cancelled, m-150 cancelled (id only).
    assert_eq!(b.events.len(), 5);
    let Some(Kind::SectorPlanRecorded(r)) = b.events.first().and_then(|e| e.kind.clone()) else { panic!("no plan") };
    let minutes: Vec<i32> = r.plan.unwrap_or_default().activities.iter().map(|a| a.minutes_per_week).collect();
    assert_eq!(minutes, [1000, 2220]);
    let cancelled: Vec<String> = b
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::AppointmentCancelled(c)) => Some(c.appointment_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, ["m-202", "m-150"]);
}

#[test]
fn from_canonical_refuses_what_it_cannot_write() {
    let b = outbound();
    assert!(
        matches!(jobcenter::render(&b, "momentum+xml"), Err(AdapterError::Unsupported(t)) if t.starts_with("target \"momentum+xml\""))
    );
    let mut two = b.clone();
    if let Some(Some(Kind::AppointmentScheduled(s))) = two.events.get_mut(1).map(|e| e.kind.as_mut())
        && let Some(a) = s.appointment.as_mut()
    {
        a.custody_holder = "subjects/0".into();
    }
    assert!(
        refusal(&two).starts_with(
            "invalid content: events[1].appointmentScheduled.appointment.custodyHolder: is another citizen"
        )
    );
    let mut stranger = b.clone();
    if let Some(Some(Kind::AppointmentScheduled(s))) = stranger.events.first_mut().map(|e| e.kind.as_mut())
        && let Some(a) = s.appointment.as_mut()
    {
        a.custody_holder = "mor".into();
    }
    assert!(refusal(&stranger).contains("\"mor\" names no person of the batch"));
    let mut no_cvr = b.clone();
    for e in &mut no_cvr.events {
        if let Some(Kind::AppointmentScheduled(s)) = e.kind.as_mut()
            && let Some(o) = s.appointment.as_mut().and_then(|a| a.organisation.as_mut())
        {
            o.cvr.clear();
        }
    }
    assert!(
        refusal(&no_cvr).starts_with("invalid content: events[0].appointmentScheduled.appointment.organisation.cvr")
    );
    let mut no_end = b.clone();
    if let Some(Some(Kind::AppointmentScheduled(s))) = no_end.events.first_mut().map(|e| e.kind.as_mut())
        && let Some(a) = s.appointment.as_mut()
    {
        a.end_time = None;
    }
    assert!(
        refusal(&no_end)
            .starts_with("invalid content: events[0].appointmentScheduled.appointment.endTime: is required")
    );
    let mut cancellations = b.clone();
    cancellations.events.retain(|e| matches!(e.kind, Some(Kind::AppointmentCancelled(_))));
    if let Some(Some(Kind::AppointmentCancelled(c))) = cancellations.events.first_mut().map(|e| e.kind.as_mut()) {
        c.appointment_id = "m-9".into();
    }
    assert!(refusal(&cancellations).starts_with("invalid content: subjects: a cancellation alone"));
    cancellations.subjects.truncate(1);
    let doc: serde_json::Value = serde_json::from_slice(&render(&cancellations)).unwrap_or_default();
    assert_eq!(doc["meetings"][0]["status"], "cancelled");
    assert!(doc.get("jobcenter").is_none());
    assert_eq!(read(&render(&cancellations)).events.len(), 1);
    let mut other = read(&fixture("plan-og-moeder.in.json"));
    if let Some(Kind::SectorPlanRecorded(r)) = other.events.first_mut().and_then(|e| e.kind.as_mut())
        && let Some(a) = r.plan.as_mut().and_then(|p| p.activities.first_mut())
    {
        a.kind = "Praktik i udlandet".into();
    }
    assert!(
        refusal(&other).contains("activities[0].kind: (a value that is not a code) is not a Momentum activity type")
    );
}

#[test]
fn errors_never_echo_a_cpr_number_or_a_name() {
    let mut b = outbound();
    if let Some(p) = b.subjects.get_mut(1) {
        p.value = "12068510000".into();
    }
    if let Some(p) = b.parties.first_mut().and_then(|p| p.identifier.as_mut()) {
        p.value = "12068510000".into();
    }
    let e = refusal(&b);
    assert!(e.ends_with("the CPR number is not ten digits"), "{e}");
    for p in common::PEOPLE {
        assert!(!e.contains(p), "{e}");
    }
}

fn plan_view() -> proto::AdapterBatch {
    canonical("helhedsplan.canonical.json")
}

/// A change to a batch, for a table of refusals.
type Edit = fn(&mut proto::AdapterBatch);

fn plan(b: &mut proto::AdapterBatch) -> &mut proto::HolisticPlan {
    b.holistic_plan.get_or_insert_with(Default::default)
}

fn document(b: &proto::AdapterBatch) -> serde_json::Value {
    serde_json::from_slice(&render(b)).unwrap_or_default()
}

#[test]
fn a_plan_view_is_a_helhedsplan_document() {
    let doc = document(&plan_view());
    assert_eq!((doc["type"].as_str(), doc["planId"].as_str()), (Some("helhedsplan"), Some("plan-1")));
    assert_eq!((doc["version"].as_i64(), doc["status"].as_str()), (Some(4), Some("gældende")));
    assert_eq!(doc["citizens"][1]["name"], "Jonas Prøvesen");
    // A goal for every covered parent names both; the jobcentre's own names one; no aim is null.
    assert_eq!(doc["goals"][0]["citizens"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (doc["goals"][0]["aim"].as_str(), doc["goals"][0]["ownerSector"].as_str()),
        (Some("samvær"), Some("myndighed"))
    );
    assert!(doc["goals"][1]["aim"].is_null());
    assert_eq!(doc["coordinator"]["sector"], "myndighed");
    assert_eq!(doc["meetings"][1]["status"], "cancelled");
    assert_eq!(doc["meetings"][1]["cpr"], "1206851000");
    assert_eq!(doc["busy"][1]["start"], "2026-10-26T14:00:00+01:00");
    assert_eq!(doc["conflicts"][0]["kind"], "modsatrettede-mål");
    assert!(doc["agreements"][1].get("withdrawnOn").is_none());
    // The jobcentre's own plan and contacts are Momentum's already: not written back.
    assert!(doc.get("sectorPlans").is_none() && doc.get("sectorContacts").is_none() && doc["plan"].is_string());
}

#[test]
fn only_the_jobcentres_meetings_are_written() {
    let mut b = plan_view();
    let mut other = plan(&mut b).appointments[0].clone();
    other.appointment_id = "psyk-17".into();
    other.sector = proto::Sector::Psychiatry as i32;
    plan(&mut b).appointments.push(other);
    let mut open = plan(&mut b).appointments[0].clone();
    open.appointment_id = "m-203".into();
    open.end_time = None;
    plan(&mut b).appointments.push(open);
    let doc = document(&b);
    let ids: Vec<&str> =
        doc["meetings"].as_array().into_iter().flatten().filter_map(|m| m["meetingId"].as_str()).collect();
    assert_eq!(ids, ["m-201", "m-202", "m-203"]);
    assert!(doc["meetings"][2].get("end").is_none());
}

#[test]
fn a_notice_carries_the_plan_its_status_and_the_citizens() {
    let doc = document(&canonical("helhedsplan-ophoert.canonical.json"));
    let keys: Vec<&str> = doc.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert_eq!(
        (doc["distributionEnded"].as_bool(), doc["status"].as_str()),
        (Some(true), Some("samtykke-trukket-tilbage"))
    );
    let mut full = plan_view();
    plan(&mut full).distribution_ended = true;
    let doc = document(&full);
    assert!(doc.get("goals").is_none() && doc.get("meetings").is_none() && doc.get("preparedOn").is_none());
    for (state, word) in [(1, "foreslået"), (2, "gældende"), (3, "samtykke-trukket-tilbage"), (4, "erstattet")] {
        plan(&mut full).state = state;
        assert_eq!(document(&full)["status"], word);
    }
}

#[test]
fn a_plan_view_is_refused_where_it_cannot_be_written() {
    let b = plan_view();
    let cases: Vec<(Edit, &str)> = vec![
        (|b| b.events.push(proto::CaseEvent::default()), "events: a batch with a holistic plan carries no events"),
        (|b| plan(b).name = "cases/x/plans/plan-1".into(), "holisticPlan.name: is not a plan name"),
        (|b| plan(b).version = 0, "holisticPlan.version: is required"),
        (|b| plan(b).state = 0, "holisticPlan.state: proposed, in force"),
        (|b| plan(b).covers.clear(), "holisticPlan.covers: the plan covers no citizen"),
        (
            |b| b.subjects[1].kind = proto::PersonIdentifierKind::ReplacementCpr as i32,
            "holisticPlan.covers[1]: names a person without a CPR number",
        ),
        (|b| plan(b).covers[1] = "mormor".into(), "holisticPlan.covers[1]: \"mormor\" names no person"),
        (|b| plan(b).prepared_on = None, "holisticPlan.preparedOn: is required"),
        (
            |b| {
                plan(b).covers.truncate(1);
                plan(b).goals[1].custody_holders = vec!["subjects/1".into()];
            },
            "holisticPlan.goals[1].custodyHolders[0]: names a citizen the plan does not cover",
        ),
        (|b| plan(b).goals[0].goal_id = "g 1".into(), "holisticPlan.goals[0].goalId: is not an id"),
        (
            |b| plan(b).busy_periods[0].end_time = plan(b).busy_periods[0].start_time,
            "busyPeriods[0].endTime: is not after",
        ),
        (|b| plan(b).conflicts[0].kind = 0, "holisticPlan.conflicts[0].kind: the kind of conflict is required"),
        (
            |b| plan(b).coordinator.as_mut().into_iter().for_each(|c| c.sector = 17),
            "coordinator.sector: is not a sector",
        ),
    ];
    for (edit, expected) in cases {
        let mut c = b.clone();
        edit(&mut c);
        let e = refusal(&c);
        assert!(e.starts_with("invalid content: ") && e.contains(expected), "{e} (expected {expected})");
        for p in common::PEOPLE {
            assert!(!e.contains(p), "{e}");
        }
    }
    // A batch without a plan is written as before.
    let mut events = b.clone();
    events.holistic_plan = None;
    assert!(refusal(&events).starts_with("invalid content: events: no jobcentre"));
}
