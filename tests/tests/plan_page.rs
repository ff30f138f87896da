//! The parents' plan page, in headless Chromium (Debian's `chromium`): a
//! caseworker makes a link for the mother; the page opens in the browser in
//! plain Danish with her goals, who does what, her next appointments and whom
//! to call, prints to PDF, breaks no rule of its content security policy, and
//! shows nothing of the father's. Forged and expired links are refused, and
//! every look is in the audit log and the mother's access report. A link is
//! exchanged for a session cookie; links are revoked by a caseworker and by
//! what is recorded since; and a stranger's junk requests through the proxy
//! do not lock out the mother's link.
//!
//! `cargo xtask test` installs Chromium and sets `BRO_REQUIRE_CHROMIUM`; run
//! alone without a browser, the test says so and passes over the browser part.

use std::path::{Path, PathBuf};

use bro_api::v1 as pb;
use bro_api::v1::audit_service_client::AuditServiceClient;
use bro_api::v1::plan_service_client::PlanServiceClient;
use bro_e2e::{CPR_1, TEST_CVR, TestGateway, append, event, new_case};
use bro_server::access::client::AuthChannel;
use bro_server::access::{Purpose, Role};
use bro_server::plans::links::{self, PlanLink};
use bro_server::{PlanPagesSettings, ServeOptions};
use pb::case_event::Kind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The browser, if there is one.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BRO_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args` (at most a minute); returns
/// (stdout, stderr). Async: the gateway answers from this same runtime.
async fn browse(browser: &Path, profile: &Path, args: &[String], url: &str) -> (String, String) {
    let run = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("chromium finishes within a minute")
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A plain HTTP GET: (status, headers and body as text).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    get_with(addr, path, &[]).await
}

/// A plain HTTP GET with extra header lines (`Name: value`).
async fn get_with(addr: std::net::SocketAddr, path: &str, headers: &[String]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// The session cookie an answer sets, as a `Cookie` header line.
fn session_of(answer: &str) -> String {
    let line = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: bro_plan="))
        .unwrap_or_else(|| panic!("no session cookie: {answer}"));
    let pair = line["set-cookie: ".len()..].split(';').next().expect("a pair");
    format!("Cookie: {pair}")
}

fn appointment(id: &str, holder: &str, start: i64, title: &str) -> pb::CaseEvent {
    event(
        "2026-02-20",
        Kind::AppointmentScheduled(pb::AppointmentScheduled {
            appointment: Some(pb::Appointment {
                appointment_id: id.into(),
                custody_holder: holder.into(),
                sector: pb::Sector::Jobcentre.into(),
                organisation: Some(pb::Organisation { display_name: "Jobcenter Bro".into(), ..Default::default() }),
                title: title.into(),
                start_time: Some(prost_types::Timestamp { seconds: start, nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: start + 3600, nanos: 0 }),
                ..Default::default()
            }),
        }),
    )
}

#[tokio::test]
async fn the_parents_page_opens_in_chromium_in_plain_danish_and_prints() {
    let pages = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let pages_addr = pages.local_addr().expect("address");
    let options = ServeOptions {
        plan_pages: Some(PlanPagesSettings::new(pages, None).expect("loopback pages")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = gw.client().await.expect("client");
    let mut plans = PlanServiceClient::new(gw.channel().await.expect("channel"));
    let created = cases.create_case(new_case("page-1", TEST_CVR)).await.expect("create").into_inner();
    // Appointments a year ahead, so they are upcoming whenever the test runs.
    let ahead = bro_domain::Timestamp::from(std::time::SystemTime::now()).timestamp() + 365 * 86_400;
    let events = vec![
        appointment("anna-1", "parent-1", ahead, "Opfølgningssamtale med Anna"),
        appointment("bo-1", "parent-2", ahead + 86_400, "Bos egen samtale"),
    ];
    cases
        .append_case_events(append("page-1", "items", events, &created.case.expect("case").etag))
        .await
        .expect("items");
    let plan = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/page-1".into(),
            holistic_plan_id: "hp".into(),
            covers: vec!["parent-1".into(), "parent-2".into()],
            goals: vec![
                pb::Goal {
                    goal_id: "samvaer".into(),
                    change_in_parents: "Anna og Bo kommer til samvær hver tirsdag".into(),
                    aim: pb::GoalAim::Contact.into(),
                    sub_goals: vec!["Møder op til tiden".into()],
                    ..Default::default()
                },
                pb::Goal {
                    goal_id: "bo-alene".into(),
                    change_in_parents: "Bo går i behandling for sin søvn".into(),
                    custody_holders: vec!["parent-2".into()],
                    ..Default::default()
                },
            ],
            coordinator: Some(pb::Coordinator {
                person: Some(pb::ContactPerson {
                    display_name: "Karin Koordinator".into(),
                    phone: "70 00 00 01".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: "page-plan".into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .holistic_plan
        .expect("plan");
    let refused = plans
        .create_plan_link(pb::CreatePlanLinkRequest {
            name: plan.name.clone(),
            custody_holder: "parent-9".into(),
            valid_days: 0,
        })
        .await;
    assert_eq!(refused.expect_err("not covered").code(), tonic::Code::InvalidArgument);
    let link = plans
        .create_plan_link(pb::CreatePlanLinkRequest {
            name: plan.name.clone(),
            custody_holder: "parent-1".into(),
            valid_days: 7,
        })
        .await
        .expect("a link")
        .into_inner();
    assert!(link.url.starts_with(&format!("http://{pages_addr}/plan/")), "{}", link.url);
    let path = link.url.trim_start_matches(&format!("http://{pages_addr}"));

    // The link is exchanged for a session: the token does not stay in the address bar.
    let (status, opening) = get(pages_addr, path).await;
    assert_eq!(status, 200, "{opening}");
    let set_cookie = opening.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/plan", "Max-Age=900"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    let token = path.trim_start_matches("/plan/");
    assert!(!set_cookie.contains(token), "the session is not the link");
    assert!(opening.contains("url=/plan\"") && !opening.contains("Anna"), "{opening}");
    let (status, answer) = get_with(pages_addr, "/plan", &[session_of(&opening)]).await;
    assert_eq!(status, 200, "{answer}");
    let (status, without) = get(pages_addr, "/plan").await;
    assert_eq!(status, 401, "no session, no page: {without}");
    for header in
        ["content-security-policy: default-src 'none'", "referrer-policy: no-referrer", "cache-control: no-store"]
    {
        assert!(answer.to_ascii_lowercase().contains(header), "{header} missing");
    }
    for secret in ["Bo Testesen", "Bos egen samtale", "Bo går i behandling", CPR_1] {
        assert!(!answer.contains(secret), "{secret} is on Anna's page");
    }
    let (status, refusal) = get(pages_addr, "/plan/not-a-link").await;
    assert_eq!(status, 404);
    assert!(refusal.contains("Linket virker ikke"));
    let expired = links::issue(
        &gw.keys,
        &PlanLink {
            case_id: bro_domain::CaseId::parse("c", "page-1").expect("id"),
            plan_id: "hp".into(),
            custody_holder: bro_domain::PartyId::parse("p", "parent-1").expect("id"),
            expires: bro_domain::Timestamp::from(std::time::SystemTime::now()) - chrono::Duration::minutes(1),
            made: bro_domain::Timestamp::from(std::time::SystemTime::now()) - chrono::Duration::days(1),
            made_at_version: 1,
        },
    );
    let (status, gone) = get(pages_addr, &format!("/plan/{expired}")).await;
    assert_eq!(status, 410);
    assert!(gone.contains("Linket er udløbet"));

    match chromium() {
        Some(browser) => {
            let profile = tempfile::tempdir().expect("profile");
            // The opening page moves on to the plan by itself (a meta refresh, no script).
            let follow = || vec!["--virtual-time-budget=10000".to_owned()];
            let dump = [follow(), vec!["--dump-dom".into()]].concat();
            let (dom, log) = browse(&browser, profile.path(), &dump, &link.url).await;
            for text in [
                "Din helhedsorienterede plan",
                "Til: <strong>Anna Testesen</strong>",
                "Din koordinator – ring hertil først",
                "Karin Koordinator",
                "href=\"tel:70000001\"",
                "Anna og Bo kommer til samvær hver tirsdag",
                "Målet handler om: samværet med barnet",
                "Dine næste aftaler",
                "Opfølgningssamtale med Anna",
                "Du har ikke sagt ja til planen endnu.",
            ] {
                assert!(dom.contains(text), "{text:?} is not on the page Chromium shows:\n{dom}");
            }
            assert!(!dom.contains("Bos egen samtale") && !dom.contains("Bo går i behandling"));
            assert!(!log.contains("Content Security Policy"), "the page breaks its own policy:\n{log}");
            let pdf = profile.path().join("plan.pdf");
            let print =
                [follow(), vec![format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".into()]].concat();
            browse(&browser, profile.path(), &print, &link.url).await;
            let bytes = std::fs::read(&pdf).expect("Chromium printed the page");
            assert!(bytes.starts_with(b"%PDF") && bytes.len() > 10_000, "a printed page: {} bytes", bytes.len());
        }
        None if std::env::var_os("BRO_REQUIRE_CHROMIUM").is_some() => {
            panic!("Chromium is required (BRO_REQUIRE_CHROMIUM) but not found; install Debian's chromium package")
        }
        #[allow(clippy::print_stderr)] // Run alone without a browser, the test says what it skipped.
        None => eprintln!(
            "plan_page: no Chromium on this machine; the browser part is not run (cargo xtask test installs it)"
        ),
    }

    // Every look at the page, and every refused link, is audited.
    let records = gw.audit_records().await;
    let pages: Vec<(&str, i32, usize)> = records
        .iter()
        .filter(|r| r.method == "page:/plan")
        .map(|r| (r.outcome.as_str(), r.actor_kind, r.person_keys.len()))
        .collect();
    let citizen = pb::ActorKind::Citizen as i32;
    assert!(pages.contains(&("OK", citizen, 1)), "{pages:?}");
    let refused = pages.iter().filter(|(o, _, _)| *o == "UNAUTHENTICATED").count();
    assert_eq!(refused, 3, "the junk, the expired link and the page asked for without a session");
    let mut auditor =
        AuditServiceClient::new(gw.person(Role::Auditor, Purpose::CitizenRequest).await.expect("channel"));
    let report = auditor
        .get_access_report(pb::GetAccessReportRequest {
            person: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: CPR_1.into() }),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner();
    assert!(
        report
            .entries
            .iter()
            .any(|e| e.organisation == "you, through your plan link" && e.action == "read holistic plan (page)"),
        "{:#?}",
        report.entries
    );
    gw.stop().await.expect("stops");
}

/// A gateway serving pages behind a proxy at 127.0.0.1, a case with a plan
/// covering parent-1, and a client: (gateway, pages address, plan name, plans).
async fn plan_behind_a_proxy() -> (TestGateway, std::net::SocketAddr, String, PlanServiceClient<AuthChannel>) {
    let pages = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let pages_addr = pages.local_addr().expect("address");
    let trusted = bro_server::plans::http::TrustedProxies::parse(&["127.0.0.1".into()]).expect("proxies");
    let settings =
        PlanPagesSettings { trusted_proxies: trusted, ..PlanPagesSettings::new(pages, None).expect("pages") };
    let options = ServeOptions { plan_pages: Some(settings), ..ServeOptions::default() };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("page-2", TEST_CVR)).await.expect("create");
    let mut plans = PlanServiceClient::new(gw.channel().await.expect("channel"));
    let plan = plans
        .create_holistic_plan(pb::CreateHolisticPlanRequest {
            parent: "cases/page-2".into(),
            holistic_plan_id: "hp".into(),
            covers: vec!["parent-1".into()],
            goals: vec![pb::Goal {
                goal_id: "samvaer".into(),
                change_in_parents: "Anna kommer til samvær hver tirsdag".into(),
                aim: pb::GoalAim::Contact.into(),
                ..Default::default()
            }],
            request_id: "page-2-plan".into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .holistic_plan
        .expect("plan");
    let agree = pb::RecordPlanAgreementRequest {
        name: plan.name.clone(),
        custody_holder: "parent-1".into(),
        request_id: "agree-1".into(),
        ..Default::default()
    };
    plans.record_plan_agreement(agree).await.expect("agreed");
    (gw, pages_addr, plan.name, plans)
}

async fn new_link(plans: &mut PlanServiceClient<AuthChannel>, plan: &str, pages: std::net::SocketAddr) -> String {
    let request = pb::CreatePlanLinkRequest { name: plan.into(), custody_holder: "parent-1".into(), valid_days: 7 };
    let url = plans.create_plan_link(request).await.expect("a link").into_inner().url;
    url.trim_start_matches(&format!("http://{pages}")).to_owned()
}

#[tokio::test]
async fn links_are_limited_per_client_behind_a_proxy_and_revoked() {
    let (gw, pages, plan, mut plans) = plan_behind_a_proxy().await;
    let mother = || "X-Forwarded-For: 198.51.100.7".to_owned();
    let link = new_link(&mut plans, &plan, pages).await;
    // A stranger's junk through the proxy uses up the stranger's bucket only.
    let mut limited = 0;
    for i in 0..40 {
        let (status, _) = get_with(pages, &format!("/plan/junk-{i}"), &["X-Forwarded-For: 203.0.113.9".into()]).await;
        limited += usize::from(status == 429);
    }
    assert!(limited >= 5, "the stranger is limited ({limited} of 40 refused)");
    let (status, opening) = get_with(pages, &link, &[mother()]).await;
    assert_eq!(status, 200, "the mother's link still opens: {opening}");
    let session = session_of(&opening);
    let (status, page) = get_with(pages, "/plan", &[mother(), session.clone()]).await;
    assert_eq!(status, 200, "{page}");

    // A caseworker revokes the mother's links: the link and its session stop at once.
    let revoke = pb::RevokePlanLinksRequest { name: plan.clone(), custody_holder: "parent-1".into() };
    plans.revoke_plan_links(revoke).await.expect("revoked");
    let (status, gone) = get_with(pages, "/plan", &[mother(), session]).await;
    assert_eq!(status, 410, "{gone}");
    assert!(gone.contains("trukket tilbage") && gone.to_ascii_lowercase().contains("max-age=0"), "{gone}");
    assert_eq!(get_with(pages, &link, &[mother()]).await.0, 410, "the link too");
    // A new link works; the mother withdrawing agreement revokes it.
    let link = new_link(&mut plans, &plan, pages).await;
    assert_eq!(get_with(pages, &link, &[mother()]).await.0, 200);
    let withdraw = pb::WithdrawPlanAgreementRequest {
        name: plan.clone(),
        custody_holder: "parent-1".into(),
        request_id: "withdraw-1".into(),
        ..Default::default()
    };
    plans.withdraw_plan_agreement(withdraw).await.expect("withdrawn");
    assert_eq!(get_with(pages, &link, &[mother()]).await.0, 410, "revoked by the withdrawal");
    // And an update of the plan revokes the links made before it.
    let link = new_link(&mut plans, &plan, pages).await;
    assert_eq!(get_with(pages, &link, &[mother()]).await.0, 200);
    let current = plans.get_holistic_plan(pb::GetHolisticPlanRequest { name: plan.clone(), ..Default::default() });
    let mut current = current.await.expect("plan").into_inner().holistic_plan.expect("plan");
    current.coordinator = Some(pb::Coordinator {
        person: Some(pb::ContactPerson {
            display_name: "Ny Koordinator".into(),
            phone: "70 00 00 02".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let update = pb::UpdateHolisticPlanRequest {
        holistic_plan: Some(current),
        update_mask: Some(prost_types::FieldMask { paths: vec!["coordinator".into()] }),
        request_id: "update-1".into(),
        ..Default::default()
    };
    plans.update_holistic_plan(update).await.expect("updated");
    assert_eq!(get_with(pages, &link, &[mother()]).await.0, 410, "revoked by the new version");

    let records = gw.audit_records().await;
    let why: Vec<&str> = records
        .iter()
        .filter(|r| r.method == "page:/plan" && r.outcome == "PERMISSION_DENIED")
        .map(|r| r.detail.as_str())
        .collect();
    for reason in ["the link was revoked", "the parent withdrew agreement to the plan", "the plan was updated"] {
        assert!(why.contains(&reason), "{reason:?} is recorded: {why:?}");
    }
    gw.stop().await.expect("stops");
}
