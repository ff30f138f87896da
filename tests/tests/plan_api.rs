//! `PlanService` refuses bad input with errors that name the field, and
//! stores nothing of a refused request; updates are optimistic and versioned;
//! the policy keeps other municipalities and other sectors out.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::plan_service_client::PlanServiceClient;
use bro_e2e::{TEST_CVR, TestGateway, append, event, new_case};
use bro_server::ServeOptions;
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use pb::case_event::Kind;
use tonic::Code;

/// The field paths a refusal names (its `google.rpc.BadRequest`).
fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn coordinator(phone: &str) -> pb::Coordinator {
    pb::Coordinator {
        person: Some(pb::ContactPerson {
            display_name: "Karin Koordinator".into(),
            phone: phone.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn create(
    covers: &[&str],
    goals: Vec<pb::Goal>,
    coordinator: Option<pb::Coordinator>,
    id: &str,
) -> pb::CreateHolisticPlanRequest {
    pb::CreateHolisticPlanRequest {
        parent: "cases/api-1".into(),
        holistic_plan_id: id.into(),
        covers: covers.iter().map(|c| (*c).to_owned()).collect(),
        goals,
        coordinator,
        prepared_on: Some(bro_e2e::date("2026-02-01")),
        request_id: format!("create-{}-{}", id.replace(' ', "-"), covers.len()),
    }
}

fn goal(id: &str, holders: &[&str]) -> pb::Goal {
    pb::Goal {
        goal_id: id.into(),
        change_in_parents: format!("change {id}"),
        custody_holders: holders.iter().map(|h| (*h).to_owned()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_plan_requests_are_refused_by_field_and_change_nothing() {
    let jobcenter = SystemConfig::new("jobcenter", "jobcenter", "momentum+json", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() });
    let options =
        ServeOptions { systems: Arc::new(Systems::new(vec![jobcenter]).expect("valid")), ..ServeOptions::default() };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = gw.client().await.expect("client");
    let mut plans = PlanServiceClient::new(gw.channel().await.expect("channel"));
    let created =
        cases.create_case(new_case("api-1", TEST_CVR)).await.expect("create").into_inner().case.expect("case");
    let version = created.version;

    let refusals = [
        (create(&[], vec![], None, "hp"), vec!["covers"]),
        (create(&["parent-9"], vec![], None, "hp"), vec!["covers[0]"]),
        (create(&["parent-1"], vec![goal("g", &["parent-2"])], None, "hp"), vec!["goals[0].custody_holders[0]"]),
        (create(&["parent-1"], vec![goal("g", &[]), goal("g", &[])], None, "hp"), vec!["goals[1].goal_id"]),
        (create(&["parent-1"], vec![], Some(coordinator("")), "hp"), vec!["coordinator.person"]),
        (create(&["parent-1"], vec![], None, "Not An Id"), vec!["holistic_plan_id"]),
    ];
    for (request, expected) in refusals {
        let status = plans.create_holistic_plan(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(fields(&status), expected, "{}", status.message());
    }
    let after = cases.get_case(pb::GetCaseRequest { name: "cases/api-1".into() }).await.expect("get").into_inner();
    assert_eq!(after.case.expect("case").version, version, "nothing of a refused request is stored");

    let missing = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/nope".into(),
            ..create(&["parent-1"], vec![], None, "hp")
        })
        .await;
    assert_eq!(missing.expect_err("no case").code(), Code::NotFound);
    let mut elsewhere = PlanServiceClient::new(gw.caseworker("87654321").await.expect("channel"));
    let foreign = elsewhere.create_holistic_plan(create(&["parent-1"], vec![], None, "hp")).await;
    assert_eq!(foreign.expect_err("another municipality").code(), Code::PermissionDenied);

    let plan = plans
        .create_holistic_plan(create(&["parent-1"], vec![goal("g1", &[])], Some(coordinator("70 00 00 01")), "hp"))
        .await
        .expect("created")
        .into_inner()
        .holistic_plan
        .expect("plan");
    let again = plans
        .create_holistic_plan(create(&["parent-1"], vec![goal("g1", &[])], Some(coordinator("70 00 00 01")), "hp"))
        .await
        .expect("a retry returns the first result")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(again.version, plan.version, "stored once");

    // Reads: bad names, unknown plans, versions outside the plan's life.
    for (name, version, code) in [
        ("cases/api-1/plans/hp", 0, Code::InvalidArgument),
        ("cases/api-1/holisticPlans/nope", 0, Code::NotFound),
        ("cases/api-1/holisticPlans/hp", 1, Code::InvalidArgument),
        ("cases/api-1/holisticPlans/hp", 999, Code::InvalidArgument),
        ("cases/api-1/holisticPlans/hp", -1, Code::InvalidArgument),
    ] {
        let status = plans
            .get_holistic_plan(pb::GetHolisticPlanRequest { name: name.into(), version })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{name} @ {version}: {status:?}");
    }

    // Updates: a mask is required and checked; a stale etag is refused; a good one makes a version.
    let update = |paths: &[&str], etag: &str, goals: Vec<pb::Goal>| pb::UpdateHolisticPlanRequest {
        holistic_plan: Some(pb::HolisticPlan {
            name: plan.name.clone(),
            etag: etag.into(),
            goals,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        updated_on: Some(bro_e2e::date("2026-02-10")),
        request_id: String::new(),
    };
    for (request, field) in [
        (update(&[], "", vec![]), "update_mask"),
        (update(&["covers"], "", vec![]), "update_mask.paths[0]"),
        (update(&["goals", "goals"], "", vec![]), "update_mask.paths[1]"),
        (update(&["goals"], "", vec![goal("x", &["parent-2"])]), "holistic_plan.goals[0].custody_holders[0]"),
        (update(&["coordinator"], "", vec![]), "holistic_plan.coordinator"),
    ] {
        let status = plans.update_holistic_plan(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(fields(&status), [field], "{}", status.message());
    }
    let stale = plans.update_holistic_plan(update(&["goals"], &bro_api::convert::etag(1), vec![])).await;
    assert_eq!(stale.expect_err("stale").code(), Code::Aborted);
    let updated = plans
        .update_holistic_plan(update(&["goals"], &plan.etag, vec![goal("g2", &["parent-1"])]))
        .await
        .expect("updated")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert!(updated.version > plan.version);
    assert_eq!(updated.goals.iter().map(|g| g.goal_id.as_str()).collect::<Vec<_>>(), ["g2"]);
    let before = plans
        .get_holistic_plan(pb::GetHolisticPlanRequest { name: plan.name.clone(), version: plan.version })
        .await
        .expect("the earlier version")
        .into_inner()
        .holistic_plan
        .expect("plan");
    assert_eq!(before.goals.iter().map(|g| g.goal_id.as_str()).collect::<Vec<_>>(), ["g1"]);

    // Agreements: only a covered parent; agreeing twice records once; withdrawing what does not hold is refused.
    let agree = |holder: &str| pb::RecordPlanAgreementRequest {
        name: plan.name.clone(),
        custody_holder: holder.into(),
        ..Default::default()
    };
    let status = plans.record_plan_agreement(agree("parent-2")).await.expect_err("not covered");
    assert_eq!(fields(&status), ["custody_holder"]);
    let first =
        plans.record_plan_agreement(agree("parent-1")).await.expect("agreed").into_inner().holistic_plan.expect("plan");
    let second =
        plans.record_plan_agreement(agree("parent-1")).await.expect("agreed").into_inner().holistic_plan.expect("plan");
    assert_eq!(first.version, second.version, "an agreement that holds is not recorded twice");
    let withdraw = |holder: &str| pb::WithdrawPlanAgreementRequest {
        name: plan.name.clone(),
        custody_holder: holder.into(),
        ..Default::default()
    };
    plans.withdraw_plan_agreement(withdraw("parent-1")).await.expect("withdrawn");
    let status = plans.withdraw_plan_agreement(withdraw("parent-1")).await.expect_err("nothing holds");
    assert_eq!(status.code(), Code::InvalidArgument);

    // Links need the page server, and a sensible life.
    let link = |days: i32| pb::CreatePlanLinkRequest {
        name: plan.name.clone(),
        custody_holder: "parent-1".into(),
        valid_days: days,
    };
    assert_eq!(plans.create_plan_link(link(91)).await.expect_err("too long").code(), Code::InvalidArgument);
    assert_eq!(plans.create_plan_link(link(7)).await.expect_err("no pages").code(), Code::FailedPrecondition);

    // Another sector's system: no consent, no plan; and never an earlier version.
    let consent = event(
        "2026-02-11",
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: "share:jobcenter".into() }),
    );
    cases.append_case_events(append("api-1", "share", vec![consent], "")).await.expect("consent");
    let mut as_jobcentre = PlanServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let current = pb::GetHolisticPlanRequest { name: plan.name.clone(), version: 0 };
    let status = as_jobcentre.get_holistic_plan(current).await.expect_err("not in force: the agreement was withdrawn");
    assert_eq!(status.code(), Code::PermissionDenied);
    let past = pb::GetHolisticPlanRequest { name: plan.name.clone(), version: plan.version };
    assert_eq!(as_jobcentre.get_holistic_plan(past).await.expect_err("no history").code(), Code::PermissionDenied);
    let list = as_jobcentre.list_holistic_plans(pb::ListHolisticPlansRequest { parent: "cases/api-1".into() }).await;
    assert_eq!(list.expect_err("not for sectors").code(), Code::PermissionDenied);
    gw.stop().await.expect("stops");
}
