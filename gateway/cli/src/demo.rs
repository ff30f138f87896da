//! `bro demo`: a gateway on a fresh embedded store, exercised through its
//! public gRPC API with synthetic cases, so a newcomer sees what it does.
//!
//! All people are invented; every CPR number fails the modulus-11 check, so
//! none can belong to anyone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bro_api::v1 as pb;
use bro_api::v1::audit_service_client::AuditServiceClient;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::obligation_service_client::ObligationServiceClient;
use bro_dev::{DevClaims, DevIdentityProvider};
use bro_server::ServeOptions;
use bro_server::access::client::{AuthChannel, CallerInterceptor};
use bro_server::access::{Purpose, Role};
use bro_store_sqlite::SqliteStore;
use tonic::transport::Channel;

/// Synthetic CPR numbers used by the demo; each fails the modulus-11 check.
pub const DEMO_CPRS: [&str; 5] = ["0101901234", "1502881237", "2207921238", "0309851230", crate::demo_plan::MOTHER_CPR];

fn date(s: &str) -> pb::Date {
    let mut parts = s.split('-').map(|p| p.parse::<i32>().unwrap_or(0));
    pb::Date { year: parts.next().unwrap_or(0), month: parts.next().unwrap_or(0), day: parts.next().unwrap_or(0) }
}

fn event(on: &str, kind: Kind) -> pb::CaseEvent {
    pb::CaseEvent { occurred_on: Some(date(on)), kind: Some(kind), ..Default::default() }
}

fn parent(id: &str, cpr: &str, name: &str) -> pb::Party {
    pb::Party {
        party_id: id.into(),
        identifier: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: cpr.into() }),
        display_name: name.into(),
    }
}

fn municipality(name: &str, cvr: &str) -> pb::Organisation {
    pb::Organisation { display_name: name.into(), cvr: cvr.into(), ..Default::default() }
}

fn holder(h: &str) -> String {
    h.to_owned()
}

/// One synthetic case: who, and the events of its history.
struct DemoCase {
    title: &'static str,
    case_id: &'static str,
    parents: Vec<pb::Party>,
    municipality: pb::Organisation,
    opened_on: &'static str,
    events: Vec<pb::CaseEvent>,
}

fn demo_cases() -> Vec<DemoCase> {
    let bro_kommune = municipality("Bro Kommune (fiktiv)", "12345678");
    let sundby = municipality("Sundby Kommune (fiktiv)", "87654321");
    vec![
        DemoCase {
            title: "§ 46 placement with consent: support person, family therapy, parent action plan",
            case_id: "demo-anna",
            parents: vec![
                parent("parent-1", DEMO_CPRS[0], "Anna Testesen"),
                parent("parent-2", DEMO_CPRS[1], "Bo Testesen"),
            ],
            municipality: bro_kommune.clone(),
            opened_on: "2026-01-10",
            events: vec![
                event(
                    "2026-01-15",
                    Kind::PlacementStarted(pb::PlacementStarted {
                        basis: pb::PlacementBasis::Bl46.into(),
                        site_kind: pb::PlacementSiteKind::FosterFamily.into(),
                    }),
                ),
                event(
                    "2026-01-15",
                    Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder("parent-1") }),
                ),
                event(
                    "2026-01-15",
                    Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder("parent-2") }),
                ),
                event(
                    "2026-01-16",
                    Kind::SupportPersonAccepted(pb::SupportPersonAccepted { custody_holder: holder("parent-1") }),
                ),
                event(
                    "2026-01-18",
                    Kind::SupportPersonChosen(pb::SupportPersonChosen {
                        custody_holder: holder("parent-1"),
                        kind: pb::SupportPersonKind::Professional.into(),
                        person: None,
                    }),
                ),
                event(
                    "2026-01-20",
                    Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: holder("parent-1") }),
                ),
                event(
                    "2026-01-22",
                    Kind::SupportStarted(pb::SupportStarted {
                        custody_holder: holder("parent-1"),
                        measure: pb::SupportMeasure::Bl75.into(),
                    }),
                ),
                event(
                    "2026-01-30",
                    Kind::ConsentGiven(pb::ConsentGiven { custody_holder: holder("parent-1"), scope: "bl32".into() }),
                ),
                event(
                    "2026-02-01",
                    Kind::SupportDecided(pb::SupportDecided {
                        custody_holder: holder("parent-1"),
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
                        goals: vec![pb::Goal {
                            goal_id: "g1".into(),
                            change_in_parents: "Anna kommer stabilt til samvær hver onsdag".into(),
                            aim: pb::GoalAim::Contact.into(),
                            sub_goals: vec!["Faste samværstider i tre måneder".into()],
                            owner_sector: pb::Sector::Unspecified.into(),
                            owner: "Familieafdelingen".into(),
                            custody_holders: vec![],
                        }],
                    }),
                ),
            ],
        },
        DemoCase {
            title: "§ 47 placement without consent, siblings at home: parent declines support (§ 77 stk. 2 applies)",
            case_id: "demo-carl",
            parents: vec![parent("parent-1", DEMO_CPRS[2], "Carl Prøvesen")],
            municipality: bro_kommune,
            opened_on: "2026-02-01",
            events: vec![
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
                    Kind::PlacementStarted(pb::PlacementStarted {
                        basis: pb::PlacementBasis::Bl47.into(),
                        site_kind: pb::PlacementSiteKind::ResidentialInstitution.into(),
                    }),
                ),
                event(
                    "2026-02-16",
                    Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder("parent-1") }),
                ),
                event(
                    "2026-02-18",
                    Kind::SupportPersonDeclined(pb::SupportPersonDeclined { custody_holder: holder("parent-1") }),
                ),
            ],
        },
        DemoCase {
            title: "§ 78 holistic plan across jobcentre and psychiatry, with the parent's consent",
            case_id: "demo-dorte",
            parents: vec![parent("parent-1", DEMO_CPRS[3], "Dorte Eksempelsen")],
            municipality: sundby,
            opened_on: "2026-01-01",
            events: vec![
                event(
                    "2026-01-01",
                    Kind::PlacementStarted(pb::PlacementStarted {
                        basis: pb::PlacementBasis::Bl46.into(),
                        site_kind: pb::PlacementSiteKind::NetworkFosterFamily.into(),
                    }),
                ),
                event(
                    "2026-01-01",
                    Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder("parent-1") }),
                ),
                event(
                    "2026-01-05",
                    Kind::SectorContactAdded(pb::SectorContactAdded {
                        contact_id: "jobcenter".into(),
                        custody_holder: holder("parent-1"),
                        sector: pb::Sector::Jobcentre.into(),
                        organisation: Some(municipality("Jobcenter Sundby (fiktiv)", "87654321")),
                        contact_person: None,
                        system_of_record: "jobcenter".into(),
                    }),
                ),
                event(
                    "2026-01-06",
                    Kind::SectorContactAdded(pb::SectorContactAdded {
                        contact_id: "psykiatri".into(),
                        custody_holder: holder("parent-1"),
                        sector: pb::Sector::Psychiatry.into(),
                        organisation: Some(pb::Organisation {
                            display_name: "Regionspsykiatrien (fiktiv)".into(),
                            ean: "5790000000005".into(),
                            ..Default::default()
                        }),
                        contact_person: None,
                        system_of_record: "medcom".into(),
                    }),
                ),
                event(
                    "2026-01-10",
                    Kind::SupportDecided(pb::SupportDecided {
                        custody_holder: holder("parent-1"),
                        measure: pb::SupportMeasure::OtherLegislation.into(),
                        outcome: pb::DecisionOutcome::Granted.into(),
                    }),
                ),
                event(
                    "2026-01-12",
                    Kind::SupportStarted(pb::SupportStarted {
                        custody_holder: holder("parent-1"),
                        measure: pb::SupportMeasure::OtherLegislation.into(),
                    }),
                ),
                event(
                    "2026-01-20",
                    Kind::ConsentGiven(pb::ConsentGiven { custody_holder: holder("parent-1"), scope: "bl78".into() }),
                ),
                event(
                    "2026-01-20",
                    Kind::PlanPrepared(pb::PlanPrepared {
                        plan_id: "helhedsplan".into(),
                        kind: pb::PlanKind::Bl78.into(),
                        covers: vec!["parent-1".into()],
                        goals: vec![],
                    }),
                ),
            ],
        },
    ]
}

/// Runs the demo.
pub async fn run(data_dir: Option<PathBuf>, listen: Option<SocketAddr>, once: bool) -> anyhow::Result<()> {
    let (data_dir, _temp) = match data_dir {
        Some(dir) => (dir, None),
        None => {
            let temp =
                tempfile::Builder::new().prefix("bro-demo-").tempdir().context("cannot make a temporary directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let store =
        SqliteStore::open(&data_dir).with_context(|| format!("cannot open a store in {}", data_dir.display()))?;
    let listener = match listen {
        Some(addr) => tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?,
        None => match tokio::net::TcpListener::bind(("127.0.0.1", 50051)).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("cannot listen on loopback")?,
        },
    };
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! {
            () = crate::shutdown_signal() => {}
            _ = stop_rx => {}
        }
    };
    // Development identities: an identity provider of its own, keys and an
    // audit log in the demo's data directory.
    let idp = DevIdentityProvider::load_or_create(&data_dir)?;
    let key_path = data_dir.join(crate::security::DEFAULT_KEY_FILE);
    if !key_path.exists() {
        bro_store::write_private(&key_path, &bro_store::Keyring::generate())?;
    }
    let keys = crate::security::read_keys(&key_path)?;
    let signer_path = data_dir.join(crate::security::DEFAULT_SIGNING_KEY_FILE);
    if !signer_path.exists() {
        bro_store::write_private(&signer_path, &bro_store::AuditSigner::generate())?;
    }
    let audit = bro_store_sqlite::SqliteAuditLog::open(&data_dir, keys.clone())?;
    let security = bro_server::Security {
        keys: Arc::new(keys),
        audit: Arc::new(audit),
        audit_signer: Arc::new(crate::security::read_signer(&signer_path)?),
        jwt: Some(idp.settings()),
        tls: None,
        rate_limit: Default::default(),
    };
    // The plan demo's sector systems and the parents' pages, when the reference adapters are at hand.
    let adapters = crate::demo_plan::adapters_dir();
    let outbox = data_dir.join("outbox");
    let mut options = ServeOptions { security: Some(security), ..ServeOptions::default() };
    if let Some(dir) = &adapters {
        options.adapters = Some(crate::demo_plan::registry(dir)?);
        options.systems = Arc::new(crate::demo_plan::systems(&outbox)?);
        let pages = std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot listen for plan pages")?;
        options.plan_pages = Some(bro_server::PlanPagesSettings::new(pages, None).map_err(anyhow::Error::msg)?);
    }
    let server = tokio::spawn(bro_server::run(listener, None, Arc::new(store), options, shutdown));

    println!("bro demo — gateway listening on {addr}, embedded store in {}", data_dir.display());
    println!("Callers authenticate with tokens of the demo's own identity provider; every call is audited.");
    println!();
    let channel =
        Channel::from_shared(format!("http://{addr}"))?.connect().await.context("cannot reach the demo gateway")?;
    let people = Demo::new(&idp, channel.clone())?;
    let caseworker_token = idp.token(&DevClaims::caseworker("demo-caseworker", "12345678"));
    let token_file = data_dir.join("caseworker.token");
    std::fs::write(&token_file, &caseworker_token)?;
    show(&people).await?;
    show_access(&people).await?;
    match &adapters {
        Some(_) => {
            crate::demo_plan::show(&channel, &idp, &outbox, bro_domain::Timestamp::from(std::time::SystemTime::now()))
                .await?
        }
        None => println!("\n(The holistic plan part needs the reference adapters: `cargo xtask build-adapters`.)"),
    }

    if once {
        let _ = stop_tx.send(());
    } else {
        println!();
        println!("The gateway keeps serving on {addr}. Try, with any gRPC client that uses reflection:");
        println!("  grpcurl -plaintext {addr} list");
        println!(
            "  grpcurl -plaintext -H \"authorization: Bearer $(cat {})\" -H 'bro-purpose: case-handling' \\",
            token_file.display()
        );
        println!("    -d '{{\"name\": \"cases/demo-anna\"}}' {addr} bro.v1.CaseService/GetCase");
        println!("Press Ctrl-C to stop.");
    }
    server.await.context("the gateway task failed")??;
    Ok(())
}

/// The demo's callers: a caseworker of each municipality, an auditor, and someone with no credentials.
struct Demo {
    bro: CaseServiceClient<AuthChannel>,
    sundby: CaseServiceClient<AuthChannel>,
    bro_channel: AuthChannel,
    auditor: AuditServiceClient<AuthChannel>,
    anonymous: CaseServiceClient<Channel>,
}

impl Demo {
    fn new(idp: &DevIdentityProvider, channel: Channel) -> anyhow::Result<Demo> {
        let with = |token: &str, purpose: Purpose| -> anyhow::Result<AuthChannel> {
            let interceptor = CallerInterceptor::new(Some(token), purpose).map_err(anyhow::Error::msg)?;
            Ok(tonic::service::interceptor::InterceptedService::new(channel.clone(), interceptor))
        };
        let bro_channel =
            with(&idp.token(&DevClaims::caseworker("demo-caseworker", "12345678")), Purpose::CaseHandling)?;
        let sundby = with(&idp.token(&DevClaims::caseworker("sundby-caseworker", "87654321")), Purpose::CaseHandling)?;
        let auditor = with(
            &idp.token(&DevClaims::with_role("demo-auditor", "12345678", Role::Auditor)),
            Purpose::CitizenRequest,
        )?;
        Ok(Demo {
            bro: CaseServiceClient::new(bro_channel.clone()),
            sundby: CaseServiceClient::new(sundby),
            bro_channel,
            auditor: AuditServiceClient::new(auditor),
            anonymous: CaseServiceClient::new(channel),
        })
    }
}

async fn show(people: &Demo) -> anyhow::Result<()> {
    let mut client = people.bro.clone();
    let channel = people.bro_channel.clone();
    for demo in demo_cases() {
        let mut client = if demo.municipality.cvr == "87654321" { people.sundby.clone() } else { people.bro.clone() };
        let created = client
            .create_case(pb::CreateCaseRequest {
                child: Some(pb::Child {
                    identifier: None,
                    journal_reference: format!("27.24.00-G01-{}", demo.case_id),
                }),
                custody_holders: demo.parents.clone(),
                placing_municipality: Some(demo.municipality.clone()),
                opened_on: Some(date(demo.opened_on)),
                case_id: demo.case_id.into(),
                request_id: format!("demo-create-{}", demo.case_id),
            })
            .await?
            .into_inner()
            .case
            .context("CreateCase returned no case")?;
        let appended = client
            .append_case_events(pb::AppendCaseEventsRequest {
                parent: created.name.clone(),
                events: demo.events.clone(),
                etag: created.etag.clone(),
                request_id: format!("demo-history-{}", demo.case_id),
            })
            .await?
            .into_inner();
        let case = appended.case.context("AppendCaseEvents returned no case")?;
        println!("{} — {}", case.name, demo.title);
        println!(
            "  {} custody holder(s), municipality CVR {}, {} events (version {}, etag {})",
            case.custody_holders.len(),
            case.placing_municipality.as_ref().map_or("", |m| m.cvr.as_str()),
            case.version,
            case.version,
            case.etag
        );
        let kinds: Vec<&str> =
            appended.events.iter().filter_map(|e| e.kind.as_ref().map(bro_api::convert::kind_name)).collect();
        println!("  history: case_opened, {}", kinds.join(", "));
        println!(
            "  placements {}, support-person tracks {}, § 76 decisions {}, plans {}, sector contacts {}, consents {}",
            case.placements.len(),
            case.support_persons.len(),
            case.support_decisions.len(),
            case.plans.len(),
            case.sector_contacts.len(),
            case.consents.len()
        );
        let evaluated = client
            .get_case(pb::GetCaseRequest { name: case.name.clone() })
            .await?
            .into_inner()
            .case
            .context("GetCase returned no case")?;
        println!("  obligations on {} ({}):", show_date(evaluated.evaluated_on.as_ref()), evaluated.ruleset);
        for o in &evaluated.obligations {
            println!("    {}", show_obligation(o));
        }
        for a in &evaluated.advisories {
            println!("    advisory {}: {}", a.id, a.message);
        }
    }

    println!();
    let mut worklist = ObligationServiceClient::new(channel);
    let due = worklist
        .list_due_obligations(pb::ListDueObligationsRequest {
            placing_municipality: "12345678".into(),
            page_size: 10,
            ..Default::default()
        })
        .await?
        .into_inner();
    println!("Worklist of Bro Kommune (CVR 12345678), soonest due first:");
    for d in &due.obligations {
        if let Some(o) = &d.obligation {
            println!("  {:<16} {}", d.case, show_obligation(o));
        }
    }

    println!();
    println!("What the gateway refuses, with nothing stored:");
    let stale = client
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: "cases/demo-anna".into(),
            events: vec![event("2026-03-01", Kind::RevisionOffered(pb::RevisionOffered {}))],
            etag: bro_api::convert::etag(1),
            request_id: "demo-stale".into(),
        })
        .await;
    report("an append with a stale etag", stale.err());
    let invalid = client
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: "cases/demo-carl".into(),
            events: vec![event(
                "2026-03-01",
                Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: "parent-1".into() }),
            )],
            etag: String::new(),
            request_id: "demo-invalid".into(),
        })
        .await;
    report("approving a support person nobody chose", invalid.err());
    let unknown = client
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: "cases/demo-carl".into(),
            events: vec![event(
                "2026-03-01",
                Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: "parent-7".into() }),
            )],
            etag: String::new(),
            request_id: "demo-unknown".into(),
        })
        .await;
    report("an offer to a custody holder the case does not have", unknown.err());
    let no_date = client
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: "cases/demo-carl".into(),
            events: vec![event("2026-02-30", Kind::RevisionOffered(pb::RevisionOffered {}))],
            etag: String::new(),
            request_id: "demo-no-date".into(),
        })
        .await;
    report("a date that does not exist", no_date.err());

    let retry = client
        .append_case_events(pb::AppendCaseEventsRequest {
            parent: "cases/demo-carl".into(),
            events: demo_cases()[1].events.clone(),
            etag: String::new(),
            request_id: "demo-history-demo-carl".into(),
        })
        .await?
        .into_inner();
    let carl = retry.case.context("no case")?;
    println!(
        "  a retried request_id returns the first result: still version {} with {} events",
        carl.version, carl.version
    );
    Ok(())
}

/// Who may see what: refusals, and a citizen's access report.
async fn show_access(people: &Demo) -> anyhow::Result<()> {
    println!();
    println!("Who may see what (every call below left an audit record):");
    let anonymous = people.anonymous.clone().get_case(pb::GetCaseRequest { name: "cases/demo-anna".into() }).await;
    report("a call with no credentials", anonymous.err());
    let other = people.sundby.clone().get_case(pb::GetCaseRequest { name: "cases/demo-anna".into() }).await;
    report("Sundby's caseworker reading Bro Kommune's case", other.err());
    let report_for = people
        .auditor
        .clone()
        .get_access_report(pb::GetAccessReportRequest {
            person: Some(pb::PersonIdentifier {
                kind: pb::PersonIdentifierKind::Cpr.into(),
                value: DEMO_CPRS[0].into(),
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!("  Anna's access report (dates, purposes and organisations; no employee names):");
    for entry in &report_for.entries {
        println!(
            "    {}  {:<14} {:<16} {}",
            show_date(entry.date.as_ref()),
            entry.purpose,
            entry.organisation,
            entry.action
        );
    }
    Ok(())
}

fn show_date(d: Option<&pb::Date>) -> String {
    d.map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)).unwrap_or_else(|| "—".into())
}

fn show_obligation(o: &pb::Obligation) -> String {
    let who = if o.custody_holder.is_empty() { String::new() } else { format!(" ({})", o.custody_holder) };
    let status = match o.status() {
        pb::ObligationStatus::Open => "open",
        pb::ObligationStatus::Overdue => "OVERDUE",
        pb::ObligationStatus::Met => "met",
        pb::ObligationStatus::Violated => "VIOLATED",
        pb::ObligationStatus::Unspecified => "?",
    };
    let when = match o.status() {
        pb::ObligationStatus::Met | pb::ObligationStatus::Violated => format!("on {}", show_date(o.met_on.as_ref())),
        _ => format!("due {}", show_date(o.due_date.as_ref())),
    };
    format!("{:<14} {:<9} {:<14} {}{who} — {}", o.rule, status, when, o.cites, o.duty)
}

fn report(what: &str, err: Option<tonic::Status>) {
    match err {
        Some(status) => println!("  {what}: {:?} — {}", status.code(), status.message()),
        None => println!("  {what}: unexpectedly accepted"),
    }
}

#[cfg(test)]
mod tests {
    use super::DEMO_CPRS;

    /// The CPR modulus-11 check; demo numbers must fail it.
    fn passes_modulus_11(cpr: &str) -> bool {
        let weights = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
        let sum: u32 = cpr.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
        sum.is_multiple_of(11)
    }

    #[test]
    fn demo_cpr_numbers_cannot_be_real() {
        for cpr in DEMO_CPRS {
            assert!(!passes_modulus_11(cpr), "{cpr} passes modulus 11; pick another");
        }
        assert!(passes_modulus_11("0707614285"), "the check itself works");
    }
}
