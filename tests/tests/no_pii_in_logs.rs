//! The gateway's complete log output, at the most verbose level, holds no CPR
//! number and no name, whatever the requests and errors were: cases written
//! and read, MedCom messages ingested, matched, queued and delivered, refused
//! tokens, sector reads, a § 78 plan made, agreed, read, refused and shown
//! on the parent's page, a citizen's access report.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_e2e::*;
use bro_server::access::Purpose;

/// Collects every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cpr_number_or_name_reaches_the_logs() -> anyhow::Result<()> {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,h2=debug,hyper=debug,tower=debug,cranelift_codegen=info,cranelift_frontend=info,regalloc2=info,wasmtime=info,wasmtime_cranelift=info,wasmtime_environ=info,wasmtime_internal_cranelift=info",
        ))
        .json()
        .with_writer(move || sink.clone())
        .init();

    let psychiatry = bro_server::systems::SystemConfig::new(
        "psykiatri",
        "medcom",
        "xdis91",
        &["correspondence_recorded"],
        bro_server::systems::Transport::Pull,
    )
    .with_access(bro_server::systems::SystemAccess::Sector {
        sector: pb::Sector::Psychiatry,
        scope: "share:psychiatry".into(),
    });
    let pages = std::net::TcpListener::bind("127.0.0.1:0")?;
    let pages_addr = pages.local_addr()?;
    let options = bro_server::ServeOptions {
        plan_pages: Some(bro_server::PlanPagesSettings::new(pages, None).map_err(anyhow::Error::msg)?),
        adapters: Some(adapter_registry(&["medcom"])),
        systems: std::sync::Arc::new(bro_server::systems::Systems::new(vec![psychiatry]).map_err(anyhow::Error::msg)?),
        ..Default::default()
    };
    let gw = TestGateway::start_with(options).await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    let chosen = event(
        "2026-01-18",
        Kind::SupportPersonChosen(pb::SupportPersonChosen {
            custody_holder: "parent-1".into(),
            kind: pb::SupportPersonKind::Network.into(),
            person: Some(pb::ContactPerson {
                display_name: "Karen Støttesen".into(),
                role: "støtteperson".into(),
                phone: "+45 00 00 00 00".into(),
                email: String::new(),
            }),
        }),
    );
    client.append_case_events(append("c1", "r1", vec![offered("2026-01-15", "parent-1"), chosen], "")).await?;
    client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?;
    // Errors too: a malformed CPR number, and a CPR number in a refused request.
    let mut bad = new_case("c2", "12345678");
    bad.custody_holders[0].identifier = Some(pb::PersonIdentifier { kind: 1, value: "3113901239".into() });
    assert!(client.create_case(bad).await.is_err());
    let mut dup = new_case("c1", "12345678");
    dup.request_id = "dup".into();
    assert!(client.create_case(dup).await.is_err());
    assert!(client.append_case_events(append("c1", "r2", vec![offered("2026-01-15", "parent-9")], "")).await.is_err());

    // The pipeline: consent, a letter out to psychiatry, MedCom messages in (one
    // matched by MedCom's test patient, one unmatched, one refused).
    let mut medcom_case = new_case("c3", "12345678");
    medcom_case.custody_holders = vec![parent("mother", concat!("150282", "4933"), "Mor Medcomsen")];
    client.create_case(medcom_case).await?;
    let consent = event(
        "2026-02-01",
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "mother".into(), scope: "share:psychiatry".into() }),
    );
    client
        .append_case_events(append("c3", "c3-1", vec![consent, letter_to_psychiatry("2026-03-02", "mother", 1)], ""))
        .await?;
    let mut ingest = pb::ingest_service_client::IngestServiceClient::new(gw.system("psykiatri").await?);
    for (n, file) in ["DIS91_1.in.xml", "cc-0d5b3c18-replacement-cpr.in.json", "REF01_1.in.xml"].iter().enumerate() {
        let content_type = if file.ends_with(".json") { "application/fhir+json" } else { "application/xml" };
        let message = pb::ExternalMessage {
            content_type: content_type.into(),
            body: medcom_fixture(file),
            metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
        };
        let request =
            pb::IngestRequest { system: "psykiatri".into(), message: Some(message), request_id: format!("in-{n}") };
        let _ = ingest.ingest(request).await;
    }
    let mut sector = pb::case_service_client::CaseServiceClient::new(gw.system("psykiatri").await?);
    sector.get_case(pb::GetCaseRequest { name: "cases/c3".into() }).await?;
    let mut pull = pb::delivery_service_client::DeliveryServiceClient::new(gw.system("psykiatri").await?);
    let mut stream =
        pull.stream_deliveries(pb::StreamDeliveriesRequest { system: "psykiatri".into() }).await?.into_inner();
    let delivered =
        tokio::time::timeout(std::time::Duration::from_secs(20), tokio_stream::StreamExt::next(&mut stream))
            .await?
            .expect("a delivery")?;
    assert!(!delivered.delivery.expect("delivery").body.is_empty());
    drop(stream);
    // A holistic plan: made with a named coordinator, agreed, read, refused, and shown on the page.
    let mut plans = pb::plan_service_client::PlanServiceClient::new(gw.channel().await?);
    let coordinator = pb::Coordinator {
        person: Some(pb::ContactPerson {
            display_name: "Karin Koordinatorsen".into(),
            phone: "70 00 00 01".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let plan = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/c1".into(),
            holistic_plan_id: "hp".into(),
            covers: vec!["parent-1".into()],
            coordinator: Some(coordinator),
            request_id: "plan".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .holistic_plan
        .expect("plan");
    let agree = pb::RecordPlanAgreementRequest {
        name: plan.name.clone(),
        custody_holder: "parent-1".into(),
        ..Default::default()
    };
    plans.record_plan_agreement(agree).await?;
    plans.list_plan_conflicts(pb::ListPlanConflictsRequest { name: plan.name.clone() }).await?;
    let stranger =
        pb::RecordPlanAgreementRequest { name: plan.name.clone(), custody_holder: CPR_2.into(), ..Default::default() };
    assert!(plans.record_plan_agreement(stranger).await.is_err(), "a CPR number is not a party id");
    let link = plans
        .create_plan_link(pb::CreatePlanLinkRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            valid_days: 1,
        })
        .await?
        .into_inner();
    let path = link.url.trim_start_matches(&format!("http://{pages_addr}")).to_owned();
    for path in [path.as_str(), "/plan/forged"] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(pages_addr).await?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut page = Vec::new();
        stream.read_to_end(&mut page).await?;
        assert!(!page.is_empty());
    }

    // Refusals: a forged token, another municipality; and a citizen's access report.
    let forged =
        gw.channel_with(Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiIwMTAxOTAxMjM0In0."), Purpose::CaseHandling).await?;
    let refused = pb::case_service_client::CaseServiceClient::new(forged)
        .get_case(pb::GetCaseRequest { name: "cases/c1".into() })
        .await;
    assert_eq!(refused.expect_err("forged").code(), tonic::Code::Unauthenticated);
    let mut elsewhere = pb::case_service_client::CaseServiceClient::new(gw.caseworker("87654321").await?);
    assert!(elsewhere.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.is_err());
    let mut auditor = pb::audit_service_client::AuditServiceClient::new(
        gw.person(bro_server::access::Role::Auditor, Purpose::CitizenRequest).await?,
    );
    let person = pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: CPR_1.into() };
    let report =
        auditor.get_access_report(pb::GetAccessReportRequest { person: Some(person), ..Default::default() }).await?;
    assert!(!report.into_inner().entries.is_empty());
    gw.stop().await?;

    let logs = String::from_utf8(captured.0.lock().expect("log buffer").clone())?;
    assert!(logs.lines().count() > 10, "the test must capture real log output:\n{logs}");
    let secrets = [
        CPR_1,
        CPR_2,
        "3113901239",
        concat!("150282", "4933"),
        "0703921VJ4",
        "Anna Testesen",
        "Bo Testesen",
        "Testesen",
        "Karen",
        "Støttesen",
        "Medcomsen",
        "Koordinatorsen",
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
    Ok(())
}
