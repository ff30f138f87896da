//! The case journal and the jobcentre through a running gateway with the real
//! `sdi` and `jobcenter` adapters: a journal's new case opens a bro case (case
//! and first events in one transaction), its later changes and the
//! jobcentre's plan and meetings are matched to it by CPR number, and the
//! rules see the result.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::{TestGateway, adapter_registry};
use bro_server::ServeOptions;
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};

/// The municipality of the journal's fixtures.
const JOURNAL_CVR: &str = "29990000";

fn fixture(adapter: &str, name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../adapters")
        .join(adapter)
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn ingest(system: &str, request_id: &str, content_type: &str, body: Vec<u8>) -> pb::IngestRequest {
    pb::IngestRequest {
        system: system.into(),
        message: Some(pb::ExternalMessage { content_type: content_type.into(), body, metadata: Default::default() }),
        request_id: request_id.into(),
    }
}

#[tokio::test]
async fn a_journal_case_and_a_jobcentre_plan_meet_in_one_case() {
    let systems = Systems::new(vec![
        SystemConfig::new("journal", "sdi", "haendelsesbesked", &[], Transport::None)
            .with_access(SystemAccess::Municipal { cvr: JOURNAL_CVR.into() }),
        SystemConfig::new("jobcenter", "jobcenter", "momentum+json", &[], Transport::None)
            .with_access(SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() }),
    ])
    .expect("valid systems");
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["sdi", "jobcenter"])),
        systems: Arc::new(systems),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut client = IngestServiceClient::new(gw.system("journal").await.expect("channel"));
    let mut jobcentre = IngestServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker(JOURNAL_CVR).await.expect("client"));

    let opened = client
        .ingest(ingest("journal", "j-1", "application/xml", fixture("sdi", "sag-oprettet.in.xml")))
        .await
        .expect("the journal's new case")
        .into_inner();
    assert_eq!(opened.outcome(), pb::IngestOutcome::Appended);
    assert!(opened.case.starts_with("cases/"), "{}", opened.case);
    assert!(matches!(opened.events[0].kind, Some(pb::case_event::Kind::CaseOpened(_))));
    let again = client
        .ingest(ingest("journal", "j-1b", "application/xml", fixture("sdi", "sag-oprettet.in.xml")))
        .await
        .expect("the same message again")
        .into_inner();
    assert_eq!(again.outcome(), pb::IngestOutcome::Duplicate, "one message opens one case");
    assert_eq!(again.case, opened.case);

    for (n, file) in ["stoette-og-samtykke.in.xml", "planer.in.xml"].iter().enumerate() {
        let r = client
            .ingest(ingest("journal", &format!("j-{}", n + 2), "application/xml", fixture("sdi", file)))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .into_inner();
        assert_eq!(r.outcome(), pb::IngestOutcome::Appended, "{file}");
        assert_eq!(r.case, opened.case, "{file} matched by the parents' CPR numbers");
    }
    // Each parent consents to sharing with the jobcentre, so it is told where its plan went.
    let journal_case = cases.get_case(pb::GetCaseRequest { name: opened.case.clone() }).await.expect("get");
    let consents: Vec<pb::CaseEvent> = journal_case
        .into_inner()
        .case
        .expect("case")
        .custody_holders
        .iter()
        .map(|p| {
            bro_e2e::event(
                "2026-02-01",
                pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
                    custody_holder: p.party_id.clone(),
                    scope: "share:jobcenter".into(),
                }),
            )
        })
        .collect();
    let parent = opened.case.trim_start_matches("cases/");
    cases.append_case_events(bro_e2e::append(parent, "consents-1", consents, "")).await.expect("consents");
    let plan = jobcentre
        .ingest(ingest("jobcenter", "m-1", "application/json", fixture("jobcenter", "plan-og-moeder.in.json")))
        .await
        .expect("the jobcentre's plan")
        .into_inner();
    assert_eq!(plan.outcome(), pb::IngestOutcome::Appended);
    assert_eq!(plan.case, opened.case, "the jobcentre's citizen is the mother");

    let case = cases.get_case(pb::GetCaseRequest { name: opened.case.clone() }).await.expect("get").into_inner();
    let case = case.case.expect("case");
    assert_eq!(case.sector_plans.len(), 1);
    assert_eq!(case.sector_plans[0].sector(), pb::Sector::Jobcentre);
    assert!(case.appointment_count > 0, "the jobcentre's meetings are on the case's timeline");
    let listed = cases
        .list_appointments(pb::ListAppointmentsRequest { parent: opened.case.clone(), ..Default::default() })
        .await
        .expect("appointments")
        .into_inner()
        .appointments;
    assert_eq!(listed.len() as i32, case.appointment_count);
    assert!(listed.iter().filter_map(|a| a.appointment.as_ref()).all(|a| a.sector() == pb::Sector::Jobcentre));
    assert!(!case.plans.is_empty(), "the journal's plans are recorded");
    assert!(!case.obligations.is_empty(), "the rules evaluated the journal's events");
    gw.stop().await.expect("stops");
}
