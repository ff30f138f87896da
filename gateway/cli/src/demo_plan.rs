//! `bro demo`, part two: a § 78 holistic plan coordinated from three sectors.
//! The jobcentre's plan (the `jobcenter` adapter), psychiatry's and addiction
//! treatment's appointments (the `fhir` adapter) arrive through the ingest
//! API into a case whose mother shares with the jobcentre and psychiatry but
//! not with addiction treatment; the caseworker proposes, creates and agrees
//! the plan; the gateway finds the clash; each consented sector's system gets
//! its view through its adapter in its drop directory; the mother gets a link
//! to her page.
//!
//! The reference adapters are built once with `cargo xtask build-adapters`
//! (the demo does it when they are missing and it runs in the repository).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_api::v1::plan_service_client::PlanServiceClient;
use bro_dev::{DevClaims, DevIdentityProvider};
use bro_plugin_host::{AdapterEngine, AdapterLimits, AdapterRegistry, EngineOptions, LoadedAdapter};
use bro_server::access::Purpose;
use bro_server::access::client::{AuthChannel, CallerInterceptor};
use bro_server::systems::{HOLISTIC_PLAN, SystemAccess, SystemConfig, Systems, Transport};
use chrono::Datelike;
use tonic::transport::Channel;

/// The mother of the plan case (fails modulus 11).
/// The mother in the plan demo (synthetic; one of `demo::DEMO_CPRS`).
pub const MOTHER_CPR: &str = "1203861239";
/// The municipality.
const CVR: &str = "12345678";
/// The sectors' systems, their adapters and consent.
const SECTORS: [(&str, &str, &str, pb::Sector, &str); 3] = [
    ("jobcenter", "jobcenter", "momentum+json", pb::Sector::Jobcentre, "share:jobcenter"),
    ("psykiatri", "fhir", "careplan+json", pb::Sector::Psychiatry, "share:psychiatry"),
    ("misbrugscenter", "fhir", "careplan+json", pb::Sector::AddictionTreatment, "share:addiction-treatment"),
];

/// The directory of built reference adapters: `$BRO_ADAPTER_DIR`, or
/// `adapters/` beside the binary's `debug`/`release` directory; built there
/// with `cargo xtask build-adapters` when the demo runs in the repository.
pub fn adapters_dir() -> Option<PathBuf> {
    let has = |dir: &Path| ["jobcenter", "fhir"].iter().all(|n| dir.join(format!("{n}.wasm")).is_file());
    if let Some(dir) = std::env::var_os("BRO_ADAPTER_DIR").map(PathBuf::from) {
        return has(&dir).then_some(dir);
    }
    let target = std::env::current_exe().ok()?.parent()?.parent()?.to_path_buf();
    let dir = target.join("adapters");
    if has(&dir) {
        return Some(dir);
    }
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !repository.join("xtask").is_dir() || !repository.join("adapters/Cargo.toml").is_file() {
        return None;
    }
    println!("Building the reference adapters for the plan demo (once; about two minutes)…");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["xtask", "build-adapters"])
        .current_dir(&repository)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() && has(&dir) => Some(dir),
        _ => {
            println!("  (could not build them: run `cargo xtask build-adapters`, then the demo again)");
            None
        }
    }
}

/// A registry with the `jobcenter` and `fhir` adapters of `dir`.
pub fn registry(dir: &Path) -> anyhow::Result<Arc<AdapterRegistry>> {
    let engine = Arc::new(AdapterEngine::new(EngineOptions::default())?);
    let registry =
        Arc::new(AdapterRegistry::new(engine.clone(), None, bro_plugin_host::package::TrustPolicy::default()));
    for name in ["jobcenter", "fhir"] {
        let wasm = std::fs::read(dir.join(format!("{name}.wasm")))?;
        let component = engine.compile(name, &wasm)?;
        let limits = AdapterLimits { deadline: Duration::from_millis(1000), ..AdapterLimits::default() };
        let loaded = LoadedAdapter::load(engine.clone(), name, &component, limits, "demo".into())?;
        registry.insert(Arc::new(loaded))?;
    }
    Ok(registry)
}

/// The three sectors' systems, each dropping its deliveries in `outbox/NAME`.
pub fn systems(outbox: &Path) -> anyhow::Result<Systems> {
    let systems = SECTORS
        .iter()
        .map(|(name, adapter, target, sector, scope)| {
            let mut s =
                SystemConfig::new(name, adapter, target, &[HOLISTIC_PLAN], Transport::File { dir: outbox.join(name) })
                    .with_access(SystemAccess::Sector { sector: *sector, scope: (*scope).into() })
                    .with_client_id(name);
            s.serves = Some(CVR.into());
            s
        })
        .collect();
    Systems::new(systems).map_err(anyhow::Error::msg)
}

fn date(d: chrono::NaiveDate) -> pb::Date {
    pb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

fn event(on: chrono::NaiveDate, kind: Kind) -> pb::CaseEvent {
    pb::CaseEvent { occurred_on: Some(date(on)), kind: Some(kind), ..Default::default() }
}

fn with(channel: &Channel, token: &str, purpose: Purpose) -> anyhow::Result<AuthChannel> {
    let interceptor = CallerInterceptor::new(Some(token), purpose).map_err(anyhow::Error::msg)?;
    Ok(tonic::service::interceptor::InterceptedService::new(channel.clone(), interceptor))
}

fn message(system: &str, content_type: &str, body: String) -> pb::IngestRequest {
    pb::IngestRequest {
        system: system.into(),
        message: Some(pb::ExternalMessage {
            content_type: content_type.into(),
            body: body.into_bytes(),
            metadata: Default::default(),
        }),
        request_id: format!("demo-{system}"),
    }
}

/// One FHIR appointment bundle for the mother.
fn fhir_bundle(id: &str, organisation: &str, practitioner: &str, what: &str, start: &str, end: &str) -> String {
    serde_json::json!({
        "resourceType": "Bundle", "id": id, "type": "collection", "timestamp": start,
        "entry": [
            {"fullUrl": "urn:uuid:8f1c2d3e-4b5a-4c6d-8e7f-000000000001", "resource": {
                "resourceType": "Appointment", "id": format!("{id}-a1"), "status": "booked", "description": what,
                "start": start, "end": end,
                "participant": [
                    {"actor": {"reference": "Patient/p"}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/d"}, "status": "accepted"},
                    {"actor": {"reference": "Organization/o"}, "status": "accepted"}
                ]}},
            {"fullUrl": "https://fhir.example/Patient/p", "resource": {"resourceType": "Patient", "id": "p",
                "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": MOTHER_CPR}]}},
            {"fullUrl": "https://fhir.example/Practitioner/d", "resource": {"resourceType": "Practitioner", "id": "d",
                "name": [{"text": practitioner}]}},
            {"fullUrl": "https://fhir.example/Organization/o", "resource": {"resourceType": "Organization", "id": "o",
                "name": organisation}}
        ]
    })
    .to_string()
}

/// Runs part two against the gateway on `channel`.
pub async fn show(
    channel: &Channel,
    idp: &DevIdentityProvider,
    outbox: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    println!();
    println!("A § 78 holistic plan coordinated from three sectors:");
    let caseworker = with(channel, &idp.token(&DevClaims::caseworker("demo-caseworker", CVR)), Purpose::Coordination)?;
    let mut cases = CaseServiceClient::new(caseworker.clone());
    let mut plans = PlanServiceClient::new(caseworker);
    let today = now.date_naive();
    let days = |n: i64| today - chrono::Duration::days(n);
    // Next Monday at 10:00 Danish time (09:00 UTC in winter; near enough in summer).
    let monday = today + chrono::Duration::days(7 - i64::from(today.weekday().num_days_from_monday()));
    let at = |d: chrono::NaiveDate, h: u32, m: u32| format!("{d}T{h:02}:{m:02}:00Z");

    let created = cases
        .create_case(pb::CreateCaseRequest {
            child: Some(pb::Child { identifier: None, journal_reference: "27.24.00-G01-demo-emma".into() }),
            custody_holders: vec![pb::Party {
                party_id: "parent-1".into(),
                identifier: Some(pb::PersonIdentifier {
                    kind: pb::PersonIdentifierKind::Cpr.into(),
                    value: MOTHER_CPR.into(),
                }),
                display_name: "Emma Eksempel".into(),
            }],
            placing_municipality: Some(pb::Organisation {
                display_name: "Bro Kommune (fiktiv)".into(),
                cvr: CVR.into(),
                ..Default::default()
            }),
            opened_on: Some(date(days(90))),
            case_id: "demo-emma".into(),
            request_id: "demo-create-demo-emma".into(),
        })
        .await?
        .into_inner()
        .case
        .context("no case")?;
    let share = |scope: &str| {
        event(days(30), Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: scope.into() }))
    };
    let history = vec![
        event(
            days(80),
            Kind::PlacementStarted(pb::PlacementStarted {
                basis: pb::PlacementBasis::Bl46.into(),
                site_kind: pb::PlacementSiteKind::FosterFamily.into(),
            }),
        ),
        event(
            days(80),
            Kind::SupportStarted(pb::SupportStarted {
                custody_holder: "parent-1".into(),
                measure: pb::SupportMeasure::Bl75.into(),
            }),
        ),
        event(
            days(60),
            Kind::PlanPrepared(pb::PlanPrepared {
                plan_id: "p77".into(),
                kind: pb::PlanKind::Bl77.into(),
                covers: vec![],
                goals: vec![pb::Goal {
                    goal_id: "samvaer".into(),
                    change_in_parents: "Emma kommer til samvær med Liva hver mandag formiddag og er forberedt".into(),
                    aim: pb::GoalAim::Contact.into(),
                    sub_goals: vec!["Møder op til tiden".into(), "Har en aftale for transporten".into()],
                    owner: "Familieafdelingen".into(),
                    ..Default::default()
                }],
            }),
        ),
        share("share:jobcenter"),
        share("share:psychiatry"),
    ];
    cases
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: created.name.clone(),
            events: history,
            etag: created.etag,
            request_id: "demo-emma-history".into(),
        })
        .await?;
    println!(
        "  cases/demo-emma: Emma's child is placed; she shares with the jobcentre and psychiatry, not with addiction treatment"
    );

    let jobcentre = serde_json::json!({
        "messageId": "demo-momentum-1", "changedAt": at(days(7), 9, 0),
        "citizen": {"cpr": MOTHER_CPR, "name": "Emma Eksempel"},
        "jobcenter": {"name": "Jobcenter Bro (fiktivt)", "cvr": "29990001"},
        "caseworker": {"name": "Ida Jobsen", "role": "jobkonsulent", "phone": "70 00 00 02"},
        "plan": {"planId": "minplan-1", "validFrom": days(14).to_string(),
            "goals": [{"goalId": "job", "text": "Ordinært job i dagtimerne"}],
            "activities": [{"activityId": "kursus", "title": "Intensivt jobsøgningskursus", "type": "kursus",
                "startDate": monday.to_string(), "hoursPerWeek": 37, "goalIds": ["job"]}]},
        "meetings": [{"meetingId": "job-m1", "title": "Opfølgningssamtale", "status": "planned",
            "start": at(monday, 9, 0), "end": at(monday, 10, 0), "with": {"name": "Ida Jobsen", "role": "jobkonsulent"}}]
    })
    .to_string();
    let inputs = [
        ("jobcenter", "application/json", "the jobcentre: its plan and a meeting (Momentum-style JSON)", jobcentre),
        (
            "psykiatri",
            "application/fhir+json",
            "psychiatry: an appointment (FHIR Appointment)",
            fhir_bundle(
                "psyk-demo-1",
                "Psykiatrisk Center Bro (fiktivt)",
                "Sofie Behandlersen",
                "Samtale om medicin og søvn",
                &at(monday, 9, 30),
                &at(monday, 10, 30),
            ),
        ),
        (
            "misbrugscenter",
            "application/fhir+json",
            "addiction treatment: an appointment (FHIR Appointment)",
            fhir_bundle(
                "misbrug-demo-1",
                "Misbrugscenter Bro (fiktivt)",
                "Ole Rådgiver",
                "Behandlingssamtale",
                &at(monday + chrono::Duration::days(2), 12, 0),
                &at(monday + chrono::Duration::days(2), 13, 0),
            ),
        ),
    ];
    for (system, content_type, label, body) in inputs {
        let mut ingest = IngestServiceClient::new(with(
            channel,
            &idp.client_token(system, Duration::from_secs(600)),
            Purpose::Exchange,
        )?);
        let answer = ingest.ingest(message(system, content_type, body)).await?.into_inner();
        println!("  ingested from {label}: {:?}", answer.outcome());
    }

    let proposal = plans
        .propose_holistic_plan(pb::ProposeHolisticPlanRequest { parent: "cases/demo-emma".into(), covers: vec![] })
        .await?
        .into_inner()
        .holistic_plan
        .context("no proposal")?;
    println!(
        "  proposed from the § 77 plan and the sectors' plans ({} appointments of 3 sectors on one timeline):",
        proposal.appointments.len()
    );
    for goal in &proposal.goals {
        println!("    goal {:<14} {}", goal.goal_id, goal.change_in_parents);
    }
    let plan = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/demo-emma".into(),
            holistic_plan_id: "helhedsplan-1".into(),
            covers: proposal.covers.clone(),
            goals: proposal.goals.clone(),
            coordinator: Some(pb::Coordinator {
                person: Some(pb::ContactPerson {
                    display_name: "Karin Koordinator".into(),
                    role: "koordinerende sagsbehandler".into(),
                    phone: "70 00 00 01".into(),
                    email: String::new(),
                }),
                organisation: Some(pb::Organisation {
                    display_name: "Bro Kommune (fiktiv)".into(),
                    cvr: CVR.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: "demo-create-plan".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .holistic_plan
        .context("no plan")?;
    let agreed = plans
        .record_plan_agreement(pb::RecordPlanAgreementRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            request_id: "demo-agree".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .holistic_plan
        .context("no plan")?;
    println!("  {}: created, then agreed by Emma — {:?}, version {}", agreed.name, agreed.state(), agreed.version);
    let conflicts = plans
        .list_plan_conflicts(pb::ListPlanConflictsRequest { name: plan.name.clone() })
        .await?
        .into_inner()
        .conflicts;
    println!("  conflicts found:");
    for c in &conflicts {
        println!("    {:?}: {} [{}]", c.kind(), c.message, c.items.join(", "));
    }

    // The worker delivers in the background: wait for the two consented sectors.
    let delivered = |name: &str| -> Vec<PathBuf> {
        std::fs::read_dir(outbox.join(name))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| !p.to_string_lossy().contains(".partial"))
                    .collect()
            })
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if !delivered("jobcenter").is_empty() && !delivered("psykiatri").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  consented views delivered through the adapters:");
    for (name, _, target, _, scope) in SECTORS {
        let files = delivered(name);
        match files.first() {
            None => println!("    {name:<15} nothing: no consent in {scope}"),
            Some(file) => {
                let body = std::fs::read_to_string(file).unwrap_or_default();
                println!("    {name:<15} {target}: {} ({} bytes) — {}", file.display(), body.len(), summary(&body));
            }
        }
    }
    let link = plans
        .create_plan_link(pb::CreatePlanLinkRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            valid_days: 7,
        })
        .await?
        .into_inner();
    println!("  Emma's own page, in plain Danish and printable (a signed link, valid 7 days): {}", link.url);
    Ok(())
}

/// What a delivered document holds, in a line.
fn summary(body: &str) -> String {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(body) else { return "not JSON".into() };
    if doc["resourceType"] == "Bundle" {
        let mut kinds: Vec<String> = doc["entry"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["resource"]["resourceType"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        kinds.sort();
        kinds.dedup_by(|a, b| a == b);
        return format!("a FHIR Bundle of {}", kinds.join(", "));
    }
    let count = |key: &str| doc[key].as_array().map_or(0, Vec::len);
    format!(
        "status {}, {} goals, {} own meetings, {} busy periods of other sectors, {} conflicts",
        doc["status"],
        count("goals"),
        count("meetings"),
        count("busy"),
        count("conflicts")
    )
}
