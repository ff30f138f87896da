//! The § 78 holistic plan end to end, through a running gateway with the real
//! `jobcenter` and `fhir` adapters: the jobcentre's plan and psychiatry's
//! appointments arrive through their adapters into a case whose parent
//! consented to share with those two sectors (not with addiction treatment);
//! the plan is proposed, created and agreed; the clash of a jobcentre meeting
//! with a psychiatry appointment is found; each sector receives through its
//! adapter only its consented view; a withdrawal of the agreement stops the
//! distribution and reopens the § 77 duty; every call is audited.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_api::v1::plan_service_client::PlanServiceClient;
use bro_e2e::receiver::{Received, Receiver};
use bro_e2e::{CPR_1, CPR_2, TEST_CVR, TestGateway, adapter_registry, append, event, eventually, new_case};
use bro_server::ServeOptions;
use bro_server::access::client::AuthChannel;
use bro_server::access::{Purpose, Role};
use bro_server::systems::{HOLISTIC_PLAN, SystemAccess, SystemConfig, Systems, Transport};
use pb::case_event::Kind;

/// The jobcentre's Momentum-style document for the mother: a full-time
/// course, and a meeting on Monday 2 March 2026 10:00–11:00.
fn jobcentre_document() -> Vec<u8> {
    serde_json::json!({
        "messageId": "momentum-e2e-1",
        "changedAt": "2026-02-20T09:00:00+01:00",
        "citizen": {"cpr": CPR_1, "name": "Anna Testesen"},
        "jobcenter": {"name": "Jobcenter Bro", "cvr": "29990001"},
        "caseworker": {"name": "Ida Jobsen", "role": "jobkonsulent", "phone": "70 00 00 02"},
        "plan": {
            "planId": "minplan-1",
            "validFrom": "2026-02-01",
            "goals": [{"goalId": "job", "text": "Ordinært job i dagtimerne"}],
            "activities": [{
                "activityId": "kursus", "title": "Intensivt jobsøgningskursus", "type": "kursus",
                "startDate": "2026-03-02", "endDate": "2026-03-27", "hoursPerWeek": 37, "goalIds": ["job"]
            }]
        },
        "meetings": [{
            "meetingId": "job-m1", "title": "Opfølgningssamtale", "status": "planned",
            "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00",
            "with": {"name": "Ida Jobsen", "role": "jobkonsulent"}
        }]
    })
    .to_string()
    .into_bytes()
}

/// A FHIR R4 bundle with one appointment for the mother, from `organisation`.
fn fhir_appointments(message_id: &str, organisation: &str, appointment: &str, start: &str, end: &str) -> Vec<u8> {
    serde_json::json!({
        "resourceType": "Bundle",
        "id": message_id,
        "type": "collection",
        "timestamp": "2026-02-21T08:00:00+01:00",
        "entry": [
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": {
                "resourceType": "Appointment", "id": appointment, "status": "booked",
                "description": "Samtale om medicin og søvn",
                "start": start, "end": end,
                "participant": [
                    {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
                    {"actor": {"reference": "Organization/o1"}, "status": "accepted"}
                ]
            }},
            {"fullUrl": "https://fhir.example/Patient/p1", "resource": {
                "resourceType": "Patient", "id": "p1",
                "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": CPR_1}]
            }},
            {"fullUrl": "https://fhir.example/Practitioner/d1", "resource": {
                "resourceType": "Practitioner", "id": "d1", "name": [{"text": "Sofie Behandlersen"}]
            }},
            {"fullUrl": "https://fhir.example/Organization/o1", "resource": {
                "resourceType": "Organization", "id": "o1", "name": organisation
            }}
        ]
    })
    .to_string()
    .into_bytes()
}

fn ingest(system: &str, request_id: &str, content_type: &str, body: Vec<u8>) -> pb::IngestRequest {
    pb::IngestRequest {
        system: system.into(),
        message: Some(pb::ExternalMessage { content_type: content_type.into(), body, metadata: Default::default() }),
        request_id: request_id.into(),
    }
}

fn sector_system(
    name: &str,
    adapter: &str,
    target: &str,
    sector: pb::Sector,
    scope: &str,
    to: &Receiver,
) -> SystemConfig {
    SystemConfig::new(
        name,
        adapter,
        target,
        &[HOLISTIC_PLAN],
        Transport::Http { url: format!("http://{}/in", to.addr) },
    )
    .with_access(SystemAccess::Sector { sector, scope: scope.into() })
}

fn text(r: &Received) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Deliveries of the case to `system`, by an administrator.
async fn deliveries_to(client: &mut DeliveryServiceClient<AuthChannel>, system: &str) -> usize {
    let filter = format!("system = \"{system}\" AND case = \"cases/plan-e2e\"");
    let request = pb::ListDeliveriesRequest { filter, page_size: 1000, ..Default::default() };
    client.list_deliveries(request).await.expect("list deliveries").into_inner().deliveries.len()
}

#[tokio::test]
async fn a_holistic_plan_is_assembled_from_the_sectors_checked_distributed_within_consent_and_stopped() {
    let (jobcentre_in, psychiatry_in, addiction_in) = (
        Receiver::start(0, 0).await.expect("receiver"),
        Receiver::start(0, 0).await.expect("receiver"),
        Receiver::start(0, 0).await.expect("receiver"),
    );
    let systems = Systems::new(vec![
        sector_system(
            "jobcenter",
            "jobcenter",
            "momentum+json",
            pb::Sector::Jobcentre,
            "share:jobcenter",
            &jobcentre_in,
        ),
        sector_system("psykiatri", "fhir", "careplan+json", pb::Sector::Psychiatry, "share:psychiatry", &psychiatry_in),
        sector_system(
            "misbrug",
            "fhir",
            "careplan+json",
            pb::Sector::AddictionTreatment,
            "share:addiction-treatment",
            &addiction_in,
        ),
    ])
    .expect("valid systems");
    // The gateway's today is the day after the withdrawal below: views reach two weeks back.
    let now: bro_domain::Timestamp = "2026-03-06T12:00:00Z".parse().expect("time");
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["jobcenter", "fhir"])),
        systems: Arc::new(systems),
        clock: Arc::new(bro_server::clock::FixedClock(now)),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = gw.client().await.expect("client");
    let mut plans = PlanServiceClient::new(gw.channel().await.expect("channel"));

    // The case: a placement, support started, a § 77 plan whose goal aims at contact.
    let created = cases.create_case(new_case("plan-e2e", TEST_CVR)).await.expect("create").into_inner();
    let share = |scope: &str| {
        event(
            "2026-02-10",
            Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: scope.into() }),
        )
    };
    let history = vec![
        bro_e2e::placement_started("2026-01-15"),
        event(
            "2026-01-20",
            Kind::SupportStarted(pb::SupportStarted {
                custody_holder: "parent-1".into(),
                measure: pb::SupportMeasure::Bl75.into(),
            }),
        ),
        event(
            "2026-01-25",
            Kind::PlanPrepared(pb::PlanPrepared {
                plan_id: "p77".into(),
                kind: pb::PlanKind::Bl77.into(),
                covers: vec![],
                goals: vec![pb::Goal {
                    goal_id: "samvaer".into(),
                    change_in_parents: "Anna kommer til samvær hver mandag formiddag".into(),
                    aim: pb::GoalAim::Contact.into(),
                    ..Default::default()
                }],
            }),
        ),
        share("share:jobcenter"),
        share("share:psychiatry"),
    ];
    cases
        .append_case_events(append("plan-e2e", "history", history, &created.case.expect("case").etag))
        .await
        .expect("history");

    // The sectors' items arrive through their adapters.
    let appended = |r: pb::IngestResponse| assert!(r.outcome() == pb::IngestOutcome::Appended, "{r:?}");
    let mut jobcentre = IngestServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    appended(
        jobcentre
            .ingest(ingest("jobcenter", "j-1", "application/json", jobcentre_document()))
            .await
            .expect("ingest")
            .into_inner(),
    );
    let mut psychiatry = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let clash = fhir_appointments(
        "psy-msg-1",
        "Psykiatrisk Center Bro",
        "psy-1",
        "2026-03-02T10:30:00+01:00",
        "2026-03-02T11:30:00+01:00",
    );
    appended(
        psychiatry
            .ingest(ingest("psykiatri", "p-1", "application/fhir+json", clash))
            .await
            .expect("ingest")
            .into_inner(),
    );
    let mut addiction = IngestServiceClient::new(gw.system("misbrug").await.expect("channel"));
    let treatment = fhir_appointments(
        "add-msg-1",
        "Misbrugscenter Bro",
        "add-1",
        "2026-03-04T13:00:00+01:00",
        "2026-03-04T14:00:00+01:00",
    );
    let answer = addiction
        .ingest(ingest("misbrug", "a-1", "application/fhir+json", treatment))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(answer.outcome(), pb::IngestOutcome::Accepted, "no consent: the system is not told where it went");

    // The proposal gathers the § 77 goal and the jobcentre's goal.
    let proposal = plans
        .propose_holistic_plan(pb::ProposeHolisticPlanRequest { parent: "cases/plan-e2e".into(), covers: vec![] })
        .await
        .expect("propose")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(proposal.covers, ["parent-1"], "the parent with sector items");
    let goal_ids: Vec<&str> = proposal.goals.iter().map(|g| g.goal_id.as_str()).collect();
    assert_eq!(goal_ids, ["samvaer", "jobcentre-job"]);
    assert_eq!(proposal.appointments.len(), 3, "all three sectors on one timeline");

    let plan = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/plan-e2e".into(),
            holistic_plan_id: "hp-1".into(),
            covers: vec!["parent-1".into()],
            goals: proposal.goals.clone(),
            coordinator: Some(pb::Coordinator {
                person: Some(pb::ContactPerson {
                    display_name: "Karin Koordinator".into(),
                    role: "koordinator".into(),
                    phone: "70 00 00 01".into(),
                    email: String::new(),
                }),
                organisation: Some(pb::Organisation { display_name: "Bro Kommune".into(), ..Default::default() }),
                sector: pb::Sector::Unspecified.into(),
                named_on: None,
            }),
            prepared_on: Some(bro_e2e::date("2026-02-25")),
            request_id: "create-hp-1".into(),
        })
        .await
        .expect("create")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(plan.name, "cases/plan-e2e/holisticPlans/hp-1");
    assert_eq!(plan.state(), pb::HolisticPlanState::Proposed);

    // The clash is found, naming both appointments; full-time activation pulls against contact.
    let conflicts = plans
        .list_plan_conflicts(pb::ListPlanConflictsRequest { name: plan.name.clone() })
        .await
        .expect("conflicts")
        .into_inner()
        .conflicts;
    let overlap = conflicts.iter().find(|c| c.kind() == pb::PlanConflictKind::AppointmentsOverlap).expect("the clash");
    assert_eq!(overlap.items, ["appointments/job-m1", "appointments/psy-1"]);
    assert!(
        conflicts.iter().any(|c| c.kind() == pb::PlanConflictKind::GoalsPullApart
            && c.items.contains(&"sectorPlans/minplan-1/activities/kursus".to_owned())),
        "{conflicts:#?}"
    );
    assert!(jobcentre_in.unique().is_empty(), "a proposal is not distributed");

    let agreed = plans
        .record_plan_agreement(pb::RecordPlanAgreementRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            agreed_on: Some(bro_e2e::date("2026-02-26")),
            request_id: "agree-1".into(),
        })
        .await
        .expect("agree")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(agreed.state(), pb::HolisticPlanState::InForce);

    // Each consented sector receives its view through its adapter; addiction treatment nothing.
    eventually("the jobcentre has the plan", || async { !jobcentre_in.unique().is_empty() }).await;
    eventually("psychiatry has the plan", || async { !psychiatry_in.unique().is_empty() }).await;
    let to_jobcentre = text(&jobcentre_in.unique()[0]);
    let doc: serde_json::Value = serde_json::from_str(&to_jobcentre).expect("JSON");
    assert_eq!(doc["type"], "helhedsplan", "{to_jobcentre}");
    assert!(to_jobcentre.contains("Karin Koordinator") && to_jobcentre.contains("job-m1"));
    assert!(to_jobcentre.contains("2026-03-02T10:30:00"), "psychiatry's appointment as busy time: {to_jobcentre}");
    let to_psychiatry = text(&psychiatry_in.unique()[0]);
    assert!(to_psychiatry.contains("\"CarePlan\"") && to_psychiatry.contains("psy-1"), "{to_psychiatry}");
    for (what, body) in [("jobcentre", &to_jobcentre), ("psychiatry", &to_psychiatry)] {
        for secret in [CPR_2, "Bo Testesen", "Misbrugscenter", "27.24.00-G01"] {
            assert!(!body.contains(secret), "{secret} reached {what}");
        }
    }
    for secret in ["medicin", "Psykiatrisk Center", "Sofie Behandlersen"] {
        assert!(!to_jobcentre.contains(secret), "psychiatry's {secret} reached the jobcentre");
    }
    for secret in ["Intensivt jobsøgningskursus", "Jobcenter Bro", "Ida Jobsen"] {
        assert!(!to_psychiatry.contains(secret), "the jobcentre's {secret} reached psychiatry");
    }
    assert!(addiction_in.all().is_empty(), "no consent to share with addiction treatment");

    // A sector system reads its own view; the one without consent is refused.
    let mut as_jobcentre = PlanServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let view = as_jobcentre
        .get_holistic_plan(pb::GetHolisticPlanRequest { name: plan.name.clone(), version: 0 })
        .await
        .expect("the jobcentre's view")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(view.busy_periods.len(), 2, "psychiatry's and addiction treatment's times, without what or who");
    assert!(view.appointments.iter().all(|a| a.sector() == pb::Sector::Jobcentre));
    let mut as_addiction = PlanServiceClient::new(gw.system("misbrug").await.expect("channel"));
    let refused =
        as_addiction.get_holistic_plan(pb::GetHolisticPlanRequest { name: plan.name.clone(), version: 0 }).await;
    assert_eq!(refused.expect_err("no consent").code(), tonic::Code::PermissionDenied);

    // Versions: the plan as created is still there.
    let versions = plans
        .list_holistic_plan_versions(pb::ListHolisticPlanVersionsRequest {
            name: plan.name.clone(),
            ..Default::default()
        })
        .await
        .expect("versions")
        .into_inner()
        .versions;
    let changes: Vec<&str> = versions.iter().map(|v| v.change.as_str()).collect();
    assert_eq!(changes, ["plan created", "coordinator named", "parent-1 agreed to the plan"]);
    let first = plans
        .get_holistic_plan(pb::GetHolisticPlanRequest { name: plan.name.clone(), version: versions[0].version })
        .await
        .expect("the first version")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(first.state(), pb::HolisticPlanState::Proposed);
    assert!(first.coordinator.is_none(), "named in the next version");

    // The withdrawal: a notice to each sector that had the plan, then nothing more.
    let mut admin =
        DeliveryServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("channel"));
    let before = (deliveries_to(&mut admin, "jobcenter").await, deliveries_to(&mut admin, "psykiatri").await);
    let withdrawn = plans
        .withdraw_plan_agreement(pb::WithdrawPlanAgreementRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            withdrawn_on: Some(bro_e2e::date("2026-03-05")),
            request_id: "withdraw-1".into(),
        })
        .await
        .expect("withdraw")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(withdrawn.state(), pb::HolisticPlanState::AgreementWithdrawn);
    eventually("the jobcentre is told to stop", || async { notice_in(&jobcentre_in).is_some() }).await;
    eventually("psychiatry is told to stop", || async {
        psychiatry_in.unique().iter().any(|r| text(r).contains("revoked"))
    })
    .await;
    let notice = notice_in(&jobcentre_in).expect("notice");
    assert!(!notice.contains("Karin") && !notice.contains("job-m1"), "a notice carries nothing of the plan: {notice}");
    let later = fhir_appointments(
        "psy-msg-2",
        "Psykiatrisk Center Bro",
        "psy-2",
        "2026-03-09T09:00:00+01:00",
        "2026-03-09T10:00:00+01:00",
    );
    appended(
        psychiatry
            .ingest(ingest("psykiatri", "p-2", "application/fhir+json", later))
            .await
            .expect("ingest")
            .into_inner(),
    );
    let after = (deliveries_to(&mut admin, "jobcenter").await, deliveries_to(&mut admin, "psykiatri").await);
    assert_eq!(after, (before.0 + 1, before.1 + 1), "one notice each, and nothing for the later appointment");

    // The rules reopen the § 77 duty from the withdrawal.
    let case = cases
        .get_case(pb::GetCaseRequest { name: "cases/plan-e2e".into() })
        .await
        .expect("get")
        .into_inner()
        .case
        .expect("case");
    let bl77 = case.obligations.iter().find(|o| o.rule == "bl77").expect("bl77");
    assert_eq!(bl77.reopened_on, Some(bro_e2e::date("2026-03-05")), "{bl77:?}");
    assert_ne!(bl77.status(), pb::ObligationStatus::Met);

    // Every plan call left an audit record; the refusal is among them.
    let records = gw.audit_records().await;
    let plan_calls: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.method.starts_with("/bro.v1.PlanService/"))
        .map(|r| (r.method.trim_start_matches("/bro.v1.PlanService/"), r.outcome.as_str()))
        .collect();
    for call in [
        ("ProposeHolisticPlan", "OK"),
        ("CreateHolisticPlan", "OK"),
        ("ListPlanConflicts", "OK"),
        ("RecordPlanAgreement", "OK"),
        ("GetHolisticPlan", "PERMISSION_DENIED"),
        ("ListHolisticPlanVersions", "OK"),
        ("WithdrawPlanAgreement", "OK"),
    ] {
        assert!(plan_calls.contains(&call), "{call:?} is not audited: {plan_calls:?}");
    }
    // The call's own record (the one made before the write names the case's
    // people as loaded to authorise it; the citizen's report counts only this).
    let created =
        records.iter().find(|r| r.method.ends_with("/CreateHolisticPlan") && r.outcome == "OK").expect("audited");
    assert_eq!(created.person_keys.len(), 1, "the record names the one parent the plan covers");
    gw.stop().await.expect("stops");
}

/// The jobcentre's notice that the plan no longer reaches it, if it has one.
fn notice_in(receiver: &Receiver) -> Option<String> {
    receiver.unique().iter().find_map(|r| {
        let doc: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        (doc["distributionEnded"] == true).then(|| text(r))
    })
}
