//! End-to-end: obligations on `GetCase` and the caseworker's worklist
//! (`ObligationService.ListDueObligations`), with the server's clock fixed.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::obligation_service_client::ObligationServiceClient;
use bro_e2e::*;
use bro_server::ServeOptions;
use bro_server::clock::FixedClock;
use tonic::Code;

type R = anyhow::Result<()>;

fn holder_event(on: &str, f: impl FnOnce(String) -> Kind, holder: &str) -> pb::CaseEvent {
    event(on, f(holder.to_owned()))
}

/// The events of shared scenario 01 (placement with consent).
fn scenario_01() -> Vec<pb::CaseEvent> {
    vec![
        placement_started("2026-01-15"),
        offered("2026-01-15", "parent-1"),
        offered("2026-01-15", "parent-2"),
        holder_event(
            "2026-01-16",
            |h| Kind::SupportPersonAccepted(pb::SupportPersonAccepted { custody_holder: h }),
            "parent-1",
        ),
        event(
            "2026-01-18",
            Kind::SupportPersonChosen(pb::SupportPersonChosen {
                custody_holder: "parent-1".into(),
                kind: pb::SupportPersonKind::Professional.into(),
                person: None,
            }),
        ),
        holder_event(
            "2026-01-20",
            |h| Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: h }),
            "parent-1",
        ),
        event(
            "2026-01-22",
            Kind::SupportStarted(pb::SupportStarted {
                custody_holder: "parent-1".into(),
                measure: pb::SupportMeasure::Bl75.into(),
            }),
        ),
        event(
            "2026-01-30",
            Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: "bl32".into() }),
        ),
        event(
            "2026-02-01",
            Kind::SupportDecided(pb::SupportDecided {
                custody_holder: "parent-1".into(),
                measure: pb::SupportMeasure::Bl3215.into(),
                outcome: pb::DecisionOutcome::Granted.into(),
            }),
        ),
        event(
            "2026-02-10",
            Kind::PlanPrepared(pb::PlanPrepared {
                plan_id: String::new(),
                kind: pb::PlanKind::Bl77.into(),
                covers: vec![],
                goals: vec![],
            }),
        ),
    ]
}

/// The events of shared scenario 02 (§ 77 stk. 2 despite refusal).
fn scenario_02() -> Vec<pb::CaseEvent> {
    vec![
        event(
            "2026-02-02",
            Kind::PlacementRecommended(pb::PlacementRecommended {
                basis: pb::PlacementBasis::Bl47.into(),
                siblings_under_18_in_household: true,
                reason: pb::RecommendationReason::Neglect.into(),
            }),
        ),
        event(
            "2026-02-16",
            Kind::PlacementStarted(pb::PlacementStarted { basis: pb::PlacementBasis::Bl47.into(), site_kind: 0 }),
        ),
        offered("2026-02-16", "parent-1"),
        holder_event(
            "2026-02-18",
            |h| Kind::SupportPersonDeclined(pb::SupportPersonDeclined { custody_holder: h }),
            "parent-1",
        ),
    ]
}

fn show(o: &pb::Obligation) -> String {
    let d = |d: &Option<pb::Date>| {
        d.as_ref().map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)).unwrap_or("-".into())
    };
    format!(
        "{} {} {:?} due {} met {}",
        o.rule,
        if o.custody_holder.is_empty() { "case" } else { &o.custody_holder },
        o.status(),
        d(&o.due_date),
        d(&o.met_on)
    )
}

async fn fixed_gateway() -> anyhow::Result<TestGateway> {
    let noon = "2026-03-01T12:00:00Z".parse()?;
    TestGateway::start_with(ServeOptions { clock: Arc::new(FixedClock(noon)), ..Default::default() }).await
}

#[tokio::test]
async fn get_case_carries_the_obligations_of_the_day() -> R {
    let gw = fixed_gateway().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.append_case_events(append("c1", "history", scenario_01(), "")).await?;
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(case.ruleset, "barnets-lov-2024-01-01");
    assert_eq!(case.evaluated_on, Some(date("2026-03-01")));
    let shown: Vec<String> = case.obligations.iter().map(show).collect();
    // The same as shared scenario 01 expects.
    for expected in [
        "bl75 parent-1 Met due 2026-01-15 met 2026-01-15",
        "bl75 parent-2 Met due 2026-01-15 met 2026-01-15",
        "bl75-approval parent-1 Met due - met 2026-01-20",
        "bl76 case Met due 2026-01-15 met 2026-02-01",
        "bl77 case Met due 2026-01-22 met 2026-02-10",
        "bl79-2 case Open due 2026-04-15 met -",
    ] {
        assert!(shown.iter().any(|s| s == expected), "missing {expected:?} in {shown:#?}");
    }
    let bl77 = case.obligations.iter().find(|o| o.rule == "bl77").expect("bl77");
    assert_eq!(bl77.met_by_sequence, 11, "the plan_prepared event is event 11 (after case_opened)");
    assert!(bl77.cites.contains("§ 77"), "{}", bl77.cites);
    gw.stop().await
}

#[tokio::test]
async fn the_worklist_lists_due_obligations_across_a_municipality() -> R {
    let gw = fixed_gateway().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.append_case_events(append("c1", "h1", scenario_01(), "")).await?;
    client.create_case(new_case("c2", "12345678")).await?;
    client.append_case_events(append("c2", "h2", scenario_02(), "")).await?;
    let mut elsewhere = pb::case_service_client::CaseServiceClient::new(gw.caseworker("87654321").await?);
    elsewhere.create_case(new_case("other", "87654321")).await?;
    elsewhere.append_case_events(append("other", "h3", scenario_02(), "")).await?;

    let mut worklist = ObligationServiceClient::new(gw.channel().await?);
    let all = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(all.evaluated_on, Some(date("2026-03-01")));
    let listed: Vec<String> = all
        .obligations
        .iter()
        .map(|d| format!("{} {}", d.case, show(d.obligation.as_ref().expect("obligation"))))
        .collect();
    assert_eq!(
        listed,
        [
            "cases/c2 bl77-2 case Overdue due 2026-02-02 met -",
            // The second custody holder of c2 was never offered a support person.
            "cases/c2 bl75 parent-2 Overdue due 2026-02-16 met -",
            "cases/c2 bl76 case Overdue due 2026-02-16 met -",
            "cases/c1 bl79-2 case Open due 2026-04-15 met -",
        ],
        "soonest due first, only this municipality, only open and overdue"
    );

    let this_week = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            due_on_or_before: Some(date("2026-03-08")),
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(this_week.obligations.len(), 1);
    assert_eq!(this_week.obligations[0].obligation.as_ref().expect("o").rule, "bl77-2");
    let mut token = this_week.next_page_token.clone();
    let mut rules = vec![this_week.obligations[0].obligation.as_ref().expect("o").rule.clone()];
    while !token.is_empty() {
        let page = worklist
            .list_due_obligations(pb::ListDueObligationsRequest {
                placing_municipality: "12345678".into(),
                due_on_or_before: Some(date("2026-03-08")),
                page_size: 1,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        rules.extend(page.obligations.iter().map(|d| d.obligation.as_ref().expect("o").rule.clone()));
        token = page.next_page_token;
    }
    assert_eq!(rules, ["bl77-2", "bl75", "bl76"], "bl79-2 is due after the limit");
    let reused = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            due_on_or_before: Some(date("2026-03-31")),
            page_token: this_week.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect_err("a token is bound to its query");
    assert_eq!(reused.code(), Code::InvalidArgument);

    let open_only = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            status: pb::ObligationStatus::Open.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(open_only.obligations.len(), 1);

    // Each worklist look-up is recorded with every case and person it read,
    // so a citizen's access report shows it.
    let records = gw.audit_records().await;
    let look_up = records
        .iter()
        .find(|r| r.method.ends_with("/ListDueObligations") && r.outcome == "OK")
        .expect("the worklist look-up is recorded");
    assert_eq!(look_up.case, "(several)");
    assert_eq!(look_up.cases, ["cases/c2", "cases/c1"], "every case on the page, in the order read");
    assert_eq!(look_up.person_keys.len(), 2, "both custody holders (the same in both cases)");
    let mut auditor = pb::audit_service_client::AuditServiceClient::new(
        gw.person(bro_server::access::Role::Auditor, bro_server::access::Purpose::CitizenRequest).await?,
    );
    let report = auditor
        .get_access_report(pb::GetAccessReportRequest {
            person: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: CPR_2.into() }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(
        report.entries.iter().any(|e| e.data_kind == "obligations" && e.action == "read obligations"),
        "{report:?}"
    );

    let bad = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "123".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad CVR");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            status: pb::ObligationStatus::Met.into(),
            ..Default::default()
        })
        .await
        .expect_err("met is not due");
    assert_eq!(bad.code(), Code::InvalidArgument);
    gw.stop().await
}
