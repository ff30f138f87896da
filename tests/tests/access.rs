//! Who may see what, through a running gateway: forged and stale tokens,
//! missing purposes, other municipalities, other sectors, withdrawn consents,
//! client certificates over TLS and the rate limit are each refused with the
//! right status code — and each refusal is in the audit log.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bro_api::v1 as pb;
use bro_api::v1::audit_service_client::AuditServiceClient;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_dev::{DevCertificates, DevClaims, DevIdentityProvider};
use bro_e2e::{CPR_1, TEST_CVR, TestGateway, append, event, letter_to_psychiatry, new_case};
use bro_server::ServeOptions;
use bro_server::access::client::{self, CallerInterceptor, ClientTls};
use bro_server::access::jwt::ClaimNames;
use bro_server::access::{Assurance, Purpose, Role};
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tonic::Code;

const OTHER_CVR: &str = "87654321";

/// A caseworker's claims, as the identity provider would sign them, for `change` to spoil.
fn caseworker_claims(idp: &DevIdentityProvider, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let names = ClaimNames::default();
    let mut claims = idp.base_claims("caseworker-x", Duration::from_secs(3600));
    let map = claims.as_object_mut().expect("an object");
    map.insert(names.municipality, json!(TEST_CVR));
    map.insert(names.roles, json!(["caseworker"]));
    map.insert(names.assurance, json!("https://data.gov.dk/concept/core/nsis/loa/Substantial"));
    change(map);
    claims
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A case whose one custody holder is MedCom's published test patient with a
/// replacement CPR number (the patient of the CareCommunication samples).
fn medcom_mothers_case(case_id: &str) -> pb::CreateCaseRequest {
    let mut create = new_case(case_id, TEST_CVR);
    let mut mother = bro_e2e::parent("mother", "0101900000", "Mor Testesen");
    mother.identifier = Some(pb::PersonIdentifier {
        kind: pb::PersonIdentifierKind::ReplacementCpr.into(),
        value: "0703921VJ4".into(),
    });
    create.custody_holders = vec![mother];
    create
}

async fn get_case_as(gw: &TestGateway, token: Option<&str>, purpose: Purpose) -> Result<pb::Case, tonic::Status> {
    let mut client = CaseServiceClient::new(gw.channel_with(token, purpose).await.expect("channel"));
    client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.map(|r| r.into_inner().case.expect("case"))
}

#[tokio::test]
async fn bad_tokens_missing_purposes_and_wrong_roles_are_refused_and_audited() {
    let gw = TestGateway::start().await.expect("gateway");
    gw.client().await.expect("client").create_case(new_case("c1", TEST_CVR)).await.expect("created");
    let idp = &gw.idp;

    let valid = idp.token(&DevClaims::caseworker("caseworker-x", TEST_CVR));
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let other_signature = idp.token(&DevClaims::caseworker("someone-else", TEST_CVR));
    parts[2] = other_signature.rsplit('.').next().expect("a signature").to_owned();
    let badly_signed = parts.join(".");
    let payload = valid.split('.').nth(1).expect("a payload").to_owned();
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    // HS256 "signed" with the provider's public key: the classic algorithm confusion.
    let public_x =
        serde_json::from_str::<Value>(&idp.jwks()).expect("jwks")["keys"][0]["x"].as_str().expect("x").to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(idp.kid().to_owned());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &caseworker_claims(idp, |_| {}),
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .expect("sign");
    let stranger = DevIdentityProvider::generate();
    let attacks: Vec<(&str, Option<String>, &str)> = vec![
        (
            "expired",
            Some(idp.sign(&caseworker_claims(idp, |c| {
                c.insert("exp".into(), json!(now() - 600));
            }))),
            "expired",
        ),
        (
            "not yet valid",
            Some(idp.sign(&caseworker_claims(idp, |c| {
                c.insert("nbf".into(), json!(now() + 600));
            }))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            Some(idp.sign(&caseworker_claims(idp, |c| {
                c.insert("iss".into(), json!("https://idp.evil.invalid"));
            }))),
            "issuer",
        ),
        (
            "wrong audience",
            Some(idp.sign(&caseworker_claims(idp, |c| {
                c.insert("aud".into(), json!("another-service"));
            }))),
            "audience",
        ),
        ("badly signed", Some(badly_signed), "signature"),
        ("alg none", Some(alg_none), "\"none\""),
        ("HS256 with the public key", Some(confused), "HS256"),
        ("a key the JWKS does not hold", Some(stranger.token(&DevClaims::caseworker("x", TEST_CVR))), "does not hold"),
        ("not a JWT", Some("not-a-jwt".into()), "not a JWT"),
        ("no credentials", None, "no credentials"),
    ];
    for (name, token, says) in &attacks {
        let err = get_case_as(&gw, token.as_deref(), Purpose::CaseHandling).await.expect_err(name);
        assert_eq!(err.code(), Code::Unauthenticated, "{name}: {}", err.message());
        assert!(err.message().contains(says), "{name}: {}", err.message());
    }

    // Authenticated, but not enough: a weak login, no or an unknown purpose, the wrong role.
    let mut low = DevClaims::caseworker("caseworker-low", TEST_CVR);
    low.assurance = Assurance::Low;
    let err = get_case_as(&gw, Some(&idp.token(&low)), Purpose::CaseHandling).await.expect_err("low assurance");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("betydelig"), "{}", err.message());
    for purpose in [None, Some("curiosity")] {
        let mut request = tonic::Request::new(pb::GetCaseRequest { name: "cases/c1".into() });
        request.metadata_mut().insert("authorization", format!("Bearer {valid}").parse().expect("ascii"));
        if let Some(p) = purpose {
            request.metadata_mut().insert("bro-purpose", p.parse().expect("ascii"));
        }
        let mut bare = CaseServiceClient::new(gw.bare_channel().await.expect("channel"));
        let err = bare.get_case(request).await.expect_err("no purpose");
        assert_eq!(err.code(), Code::PermissionDenied, "{purpose:?}");
        assert!(err.message().contains("bro-purpose"), "{}", err.message());
    }
    let auditor = idp.token(&DevClaims::with_role("auditor-1", TEST_CVR, Role::Auditor));
    let err = get_case_as(&gw, Some(&auditor), Purpose::CaseHandling).await.expect_err("an auditor reads no case");
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut caseworker_audit = AuditServiceClient::new(gw.channel().await.expect("channel"));
    let err = caseworker_audit
        .list_audit_records(pb::ListAuditRecordsRequest::default())
        .await
        .expect_err("a caseworker reads no audit log");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Every refusal left a record: who (if known), what, and the outcome.
    let records = gw.audit_records().await;
    let get_case = "/bro.v1.CaseService/GetCase";
    let unauthenticated: Vec<_> = records.iter().filter(|r| r.outcome == "UNAUTHENTICATED").collect();
    assert_eq!(unauthenticated.len(), attacks.len(), "one record per refused token");
    assert!(unauthenticated.iter().all(|r| r.method == get_case && r.actor.is_empty()));
    assert!(unauthenticated.iter().all(|r| r.actor_kind == pb::ActorKind::Unauthenticated as i32));
    // A purpose that does not fit the call is refused too.
    let err =
        get_case_as(&gw, Some(&valid), Purpose::Operations).await.expect_err("operations is no reason to read a case");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("case-handling"), "{}", err.message());
    let records = gw.audit_records().await;
    let denied: Vec<_> = records.iter().filter(|r| r.outcome == "PERMISSION_DENIED").collect();
    assert_eq!(
        denied.len(),
        6,
        "low assurance, two purposes, the auditor, the caseworker, the wrong purpose: {denied:#?}"
    );
    let auditor_refused = denied.iter().find(|r| r.actor == "auditor-1").expect("the auditor's refusal");
    assert_eq!(auditor_refused.case, "cases/c1");
    assert_eq!(auditor_refused.person_keys.len(), 2, "the refused look-up names whose data it was");
    let creation = |outcome: &str| {
        records.iter().position(|r| r.method == "/bro.v1.CaseService/CreateCase" && r.outcome == outcome)
    };
    let created = &records[creation("OK").expect("the creation")];
    assert_eq!((created.outcome.as_str(), created.purpose.as_str()), ("OK", "case-handling"));
    assert_eq!(created.actor_municipality, TEST_CVR);
    // Before the write committed, the log already said who was changing whose data.
    let started = &records[creation("STARTED").expect("the record before the write")];
    assert!(creation("STARTED") < creation("OK"));
    assert_eq!((started.actor.as_str(), started.purpose.as_str()), (created.actor.as_str(), "case-handling"));
    let mut people = created.person_keys.clone();
    people.sort();
    let mut noted = started.person_keys.clone();
    noted.sort();
    assert_eq!(noted, people, "the people of the new case are named before it exists");
    assert!(records.iter().all(|r| !format!("{r:?}").contains(CPR_1)), "no CPR number in the audit log");
    gw.stop().await.expect("stops");
}

fn appointment(id: &str, holder: &str, sector: pb::Sector, hour: i64) -> pb::CaseEvent {
    let start = 1_772_445_600 + hour * 3600;
    event(
        "2026-03-02",
        Kind::AppointmentScheduled(pb::AppointmentScheduled {
            appointment: Some(pb::Appointment {
                appointment_id: id.into(),
                custody_holder: holder.into(),
                sector: sector.into(),
                organisation: Some(pb::Organisation { display_name: "Jobcenter Bro".into(), ..Default::default() }),
                title: "Opfølgningssamtale".into(),
                start_time: Some(prost_types::Timestamp { seconds: start, nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: start + 3600, nanos: 0 }),
                ..Default::default()
            }),
        }),
    )
}

fn consent(holder: &str, scope: &str, given: bool) -> pb::CaseEvent {
    let kind = if given {
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: holder.into(), scope: scope.into() })
    } else {
        Kind::ConsentWithdrawn(pb::ConsentWithdrawn { custody_holder: holder.into(), scope: scope.into() })
    };
    event("2026-03-01", kind)
}

/// The sending system's UUID configured for the jobcentre's sdi adapter.
const SENDING_SYSTEM: &str = "8d5ad9c7-0000-4000-8000-000000000001";

fn sector_systems(jobcentre_transport: Transport, subscribe: &[&str]) -> Arc<Systems> {
    let mut jobcentre = SystemConfig::new("jobcenter", "sdi", "haendelsesbesked", subscribe, jobcentre_transport)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() });
    // The identifiers KOMBIT registered for this deployment, given to the sdi adapter with every batch.
    jobcentre.adapter_settings = [
        ("beskedtype", "5d2e8f1a-0000-4000-8000-000000000001"),
        ("beskedansvarlig_aktoer", SENDING_SYSTEM),
        ("sikkerhedsklassificering", "3f6b2c1d-0000-4000-8000-000000000001"),
        ("myndighed_cvr", TEST_CVR),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let psychiatry = SystemConfig::new("psykiatri", "medcom", "xdis91", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    Arc::new(Systems::new(vec![jobcentre, psychiatry]).expect("valid systems"))
}

#[tokio::test]
async fn municipalities_and_sectors_see_only_their_share() {
    let options = ServeOptions { systems: sector_systems(Transport::None, &[]), ..ServeOptions::default() };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    let history = vec![
        bro_e2e::placement_started("2026-01-15"),
        consent("parent-1", "share:jobcenter", true),
        appointment("job-1", "parent-1", pb::Sector::Jobcentre, 0),
        appointment("job-2", "parent-2", pb::Sector::Jobcentre, 2),
        letter_to_psychiatry("2026-03-02", "parent-1", 1),
    ];
    cases.append_case_events(append("c1", "h1", history, "")).await.expect("history");

    // Another municipality's caseworker: refused, whatever the call.
    let mut elsewhere = CaseServiceClient::new(gw.caseworker(OTHER_CVR).await.expect("channel"));
    let err = elsewhere.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect_err("B reads A");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = elsewhere
        .append_case_events(append("c1", "b-1", vec![bro_e2e::revision_offered("2026-03-03")], ""))
        .await
        .expect_err("B writes A");
    assert_eq!(err.code(), Code::PermissionDenied);

    // The jobcentre: only parent-1 (who consented), only the jobcentre's own items.
    let mut jobcentre = CaseServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let seen = jobcentre
        .get_case(pb::GetCaseRequest { name: "cases/c1".into() })
        .await
        .expect("within the consent")
        .into_inner()
        .case
        .expect("case");
    assert_eq!(seen.custody_holders.iter().map(|p| p.party_id.as_str()).collect::<Vec<_>>(), ["parent-1"]);
    assert_eq!(seen.appointment_count, 1, "only the jobcentre's meeting with parent-1");
    let listed = jobcentre
        .list_appointments(pb::ListAppointmentsRequest { parent: "cases/c1".into(), ..Default::default() })
        .await
        .expect("appointments within the consent")
        .into_inner()
        .appointments;
    assert_eq!(listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["cases/c1/appointments/job-1"]);
    let err = jobcentre
        .get_appointment(pb::GetAppointmentRequest { name: "cases/c1/appointments/job-2".into() })
        .await
        .expect_err("parent-2 did not consent");
    assert_eq!(err.code(), Code::NotFound, "as absent as an appointment never scheduled");
    assert_eq!(seen.correspondence_count, 0, "psychiatry's letter is not the jobcentre's");
    let letters = jobcentre
        .list_correspondence(pb::ListCorrespondenceRequest { parent: "cases/c1".into(), ..Default::default() })
        .await
        .expect("letters within the consent")
        .into_inner();
    assert!(letters.correspondence.is_empty(), "psychiatry's letter is not listed to the jobcentre");
    let err = jobcentre
        .get_correspondence(pb::GetCorrespondenceRequest {
            name: "cases/c1/correspondence/letter-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("not the jobcentre's letter");
    assert_eq!(err.code(), Code::NotFound, "as absent as a letter never recorded");
    assert!(seen.child.is_none() && seen.placements.is_empty() && seen.obligations.is_empty());
    assert_eq!(seen.consents.len(), 1);
    let events = jobcentre
        .list_case_events(pb::ListCaseEventsRequest { parent: "cases/c1".into(), ..Default::default() })
        .await
        .expect("events within the consent")
        .into_inner()
        .events;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.kind.as_ref()).map(bro_api::convert::kind_name).collect();
    assert_eq!(kinds, ["consent_given", "appointment_scheduled"]);
    for denied in [
        jobcentre.list_cases(pb::ListCasesRequest::default()).await.map(|_| ()),
        jobcentre
            .append_case_events(append("c1", "j-1", vec![bro_e2e::revision_offered("2026-03-03")], ""))
            .await
            .map(|_| ()),
    ] {
        assert_eq!(denied.expect_err("not the jobcentre's").code(), Code::PermissionDenied);
    }
    // Psychiatry: no consent to share with it, so nothing at all.
    let mut psychiatry = CaseServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let err = psychiatry.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect_err("no consent");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("share:psychiatry"), "{}", err.message());
    // A recorded legal basis opens what a consent would, and its end closes it again.
    let basis = event(
        "2026-03-02",
        Kind::LegalBasisRecorded(pb::LegalBasisRecorded {
            custody_holder: "parent-1".into(),
            scope: "share:psychiatry".into(),
            citation: "barnets lov § 182, stk. 2".into(),
        }),
    );
    cases.append_case_events(append("c1", "lb-1", vec![basis], "")).await.expect("legal basis");
    let seen = psychiatry
        .get_case(pb::GetCaseRequest { name: "cases/c1".into() })
        .await
        .expect("within the legal basis")
        .into_inner()
        .case
        .expect("case");
    assert_eq!(seen.correspondence_count, 1, "psychiatry's own letter");
    let letter = psychiatry
        .get_correspondence(pb::GetCorrespondenceRequest {
            name: "cases/c1/correspondence/letter-1".into(),
            ..Default::default()
        })
        .await
        .expect("psychiatry reads its own letter")
        .into_inner()
        .correspondence
        .and_then(|c| c.correspondence)
        .expect("letter");
    assert!(letter.entries[0].text.contains("fælles møde"), "the full view by default");
    assert_eq!(seen.appointment_count, 0, "not the jobcentre's meetings");
    assert_eq!(seen.legal_bases.len(), 1);
    let ended = event(
        "2026-03-03",
        Kind::LegalBasisEnded(pb::LegalBasisEnded {
            custody_holder: "parent-1".into(),
            scope: "share:psychiatry".into(),
        }),
    );
    cases.append_case_events(append("c1", "lb-2", vec![ended], "")).await.expect("ended");
    let err = psychiatry.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect_err("ended");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Withdrawn: the jobcentre reads nothing more.
    cases
        .append_case_events(append("c1", "w1", vec![consent("parent-1", "share:jobcenter", false)], ""))
        .await
        .expect("withdrawn");
    let err = jobcentre.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect_err("withdrawn");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Each refusal is on record, with whose data was asked for.
    let records = gw.audit_records().await;
    let refused = |actor: &str| {
        records.iter().any(|r| {
            r.actor == actor
                && r.outcome == "PERMISSION_DENIED"
                && r.method.ends_with("/GetCase")
                && r.case == "cases/c1"
                && r.person_keys.len() == 2
        })
    };
    assert!(refused("caseworker-87654321"), "another municipality's look-up");
    assert!(refused("jobcenter"), "the look-up after the withdrawal");
    assert!(refused("psykiatri"), "the look-up without consent");

    // Parent-1's access report: when, why and which organisation; never which employee.
    let mut auditor =
        AuditServiceClient::new(gw.person(Role::Auditor, Purpose::CitizenRequest).await.expect("channel"));
    let report = auditor
        .get_access_report(pb::GetAccessReportRequest {
            person: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: CPR_1.into() }),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner();
    let organisations: std::collections::BTreeSet<&str> =
        report.entries.iter().map(|e| e.organisation.as_str()).collect();
    assert_eq!(organisations.into_iter().collect::<Vec<_>>(), ["CVR 12345678", "jobcenter", "psykiatri"]);
    assert!(report.entries.iter().any(|e| e.action == "read case" && e.purpose == "exchange"));
    assert!(report.entries.iter().all(|e| e.date.is_some() && !e.purpose.is_empty()));
    assert!(!format!("{report:?}").contains("caseworker-"), "no employee identity in the report");
    let nobody = || pb::GetAccessReportRequest {
        person: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: "3112999998".into() }),
        ..Default::default()
    };
    // A citizen of no case of the auditor's municipality is not its to report on; a supervisor finds nothing.
    let refused = auditor.get_access_report(nobody()).await.expect_err("not the municipality's citizen");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut supervisor =
        AuditServiceClient::new(gw.person(Role::Supervisor, Purpose::CitizenRequest).await.expect("channel"));
    assert!(supervisor.get_access_report(nobody()).await.expect("report").into_inner().entries.is_empty());
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_withdrawn_consent_stops_queued_deliveries_and_is_itself_delivered() {
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["sdi"])),
        systems: sector_systems(Transport::Pull, &["consent_given", "consent_withdrawn"]),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    // Both parents consent to sharing with the jobcentre; deliveries queue up, unpulled.
    for (request, holder) in [("h1", "parent-1"), ("h2", "parent-2")] {
        let given = vec![consent(holder, "share:jobcenter", true)];
        cases.append_case_events(append("c1", request, given, "")).await.expect("consent");
    }
    cases
        .append_case_events(append("c1", "w1", vec![consent("parent-1", "share:jobcenter", false)], ""))
        .await
        .expect("withdrawn");
    // After the withdrawal: another scope's consent is none of the jobcentre's business.
    let other_scope = vec![consent("parent-1", "share:psychiatry", true)];
    cases.append_case_events(append("c1", "h3", other_scope, "")).await.expect("another consent");

    let admin = DeliveryServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("channel"));
    let list = |mut admin: DeliveryServiceClient<_>| async move {
        let request = pb::ListDeliveriesRequest { page_size: 100, ..Default::default() };
        admin.list_deliveries(request).await.expect("list").into_inner().deliveries
    };
    let planned = list(admin.clone()).await;
    assert_eq!(planned.len(), 3, "two consents and the withdrawal; nothing for the other scope");

    // The jobcentre pulls: parent-2's consent, which still holds, and the
    // withdrawal itself; parent-1's queued consent stops.
    let mut pull = DeliveryServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let mut stream = pull
        .stream_deliveries(pb::StreamDeliveriesRequest { system: "jobcenter".into() })
        .await
        .expect("stream")
        .into_inner();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("in time");
        let delivery = item.expect("an item").expect("ok").delivery.expect("delivery");
        bodies.push(String::from_utf8_lossy(&delivery.body).into_owned());
    }
    assert!(bodies[0].contains("samtykke-givet"), "parent-2's consent: {}", bodies[0]);
    assert!(bodies[1].contains("samtykke-tilbagekaldt"), "the withdrawal: {}", bodies[1]);
    // The system's adapter_settings reached the adapter: the configured sending system and CVR are in the envelope.
    let sender = format!("<kuvert:BeskedAnsvarligAktoer><sd:UUIDIdentifikator>{SENDING_SYSTEM}</sd:UUIDIdentifikator>");
    let receiver =
        format!("<kuvert:TilladtModtager><sd:URNIdentifikator>urn:oio:cvr-nr:{TEST_CVR}</sd:URNIdentifikator>");
    assert!(bodies.iter().all(|b| b.contains(&sender) && b.contains(&receiver)), "{}", bodies[0]);
    assert!(!bodies[1].contains("2207921238"), "the withdrawal names only its own parent");
    let more = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
    assert!(more.is_err(), "nothing else is sent: {more:?}");
    let after = list(admin).await;
    let dead: Vec<_> = after.iter().filter(|d| d.state() == pb::DeliveryState::Dead).collect();
    assert_eq!(dead.len(), 1, "{after:#?}");
    assert!(dead[0].last_error.contains("consent"), "{dead:#?}");
    assert_eq!(dead[0].first_sequence, 2, "parent-1's consent, queued before the withdrawal");
    // What left is in the parent's access report: the jobcentre was sent her data.
    let mut auditor =
        AuditServiceClient::new(gw.person(Role::Auditor, Purpose::CitizenRequest).await.expect("channel"));
    let report = auditor
        .get_access_report(pb::GetAccessReportRequest {
            person: Some(pb::PersonIdentifier {
                kind: pb::PersonIdentifierKind::Cpr.into(),
                value: bro_e2e::CPR_2.into(),
            }),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner();
    let sent: Vec<_> = report.entries.iter().filter(|e| e.action.starts_with("sent")).collect();
    assert_eq!(sent.len(), 1, "{report:#?}");
    assert_eq!((sent[0].organisation.as_str(), sent[0].purpose.as_str()), ("jobcenter", "exchange"));
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn systems_authenticate_with_pinned_client_certificates_over_tls() {
    let certs = DevCertificates::generate(&["psykiatri", "stranger"]).expect("certificates");
    let pinned = certs.client("psykiatri").expect("cert").clone();
    let mut psychiatry = SystemConfig::new("psykiatri", "medcom", "xdis91", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    psychiatry.certificates = vec![pinned.sha256.clone()];
    let dir = tempfile::tempdir().expect("dir");
    let (mut security, _idp) = bro_e2e::test_security(dir.path()).expect("security");
    security.tls = Some(bro_server::TlsSettings {
        cert_pem: certs.server.cert.clone(),
        key_pem: certs.server.key.clone(),
        client_ca_pem: Some(certs.ca.clone()),
    });
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![psychiatry]).expect("valid")),
        security: Some(security),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_in(dir.path().to_path_buf(), options).await.expect("gateway");
    let url = format!("https://localhost:{}", gw.addr.port());
    let tls = |identity: Option<(String, String)>| ClientTls { ca_pem: certs.ca.clone(), identity, domain: None };
    let ingest_empty = |channel| async move {
        let mut client = IngestServiceClient::new(channel);
        let message = pb::ExternalMessage { content_type: "application/xml".into(), ..Default::default() };
        let request =
            pb::IngestRequest { system: "psykiatri".into(), message: Some(message), request_id: "t-1".into() };
        client.ingest(request).await
    };
    let exchange = || CallerInterceptor::new(None, Purpose::Exchange).expect("interceptor");

    // The pinned certificate is the system: past the gate, to the request's own fault.
    let channel = client::connect(&url, Some(&tls(Some((pinned.cert.clone(), pinned.key.clone())))), exchange())
        .await
        .expect("TLS with a client certificate");
    let err = ingest_empty(channel).await.expect_err("an empty body");
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    // A certificate of the same CA that no system is pinned to, and none at all: unauthenticated.
    let stranger = certs.client("stranger").expect("cert").clone();
    let channel =
        client::connect(&url, Some(&tls(Some((stranger.cert, stranger.key)))), exchange()).await.expect("TLS");
    let err = ingest_empty(channel).await.expect_err("an unknown certificate");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("not configured for any system"), "{}", err.message());
    let channel = client::connect(&url, Some(&tls(None)), exchange()).await.expect("TLS without a certificate");
    let err = ingest_empty(channel).await.expect_err("no certificate");
    assert_eq!(err.code(), Code::Unauthenticated);
    // A certificate from another CA does not get through the handshake.
    let foreign = DevCertificates::generate(&["psykiatri"]).expect("certificates");
    let impostor = foreign.client("psykiatri").expect("cert").clone();
    let result = match client::connect(&url, Some(&tls(Some((impostor.cert, impostor.key)))), exchange()).await {
        Ok(channel) => ingest_empty(channel).await.map(|_| ()).map_err(|s| s.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert!(matches!(result, Err(Code::Unavailable | Code::Unknown)), "{result:?}");
    // Plain text to a TLS gateway goes nowhere.
    let plain =
        CaseServiceClient::new(gw.channel().await.expect("channel")).list_cases(pb::ListCasesRequest::default()).await;
    assert!(plain.is_err());

    let records = audit_records_tls(&gw, &url, &certs.ca).await;
    let refused = records.iter().filter(|r| r.outcome == "UNAUTHENTICATED" && r.method.ends_with("/Ingest")).count();
    assert_eq!(refused, 2, "the unknown and the missing certificate are audited");
    assert!(records.iter().any(|r| r.actor == "psykiatri" && r.outcome == "INVALID_ARGUMENT"));
    gw.stop().await.expect("stops");
}

async fn audit_records_tls(gw: &TestGateway, url: &str, ca: &str) -> Vec<pb::AuditRecord> {
    // Unauthenticated calls are no municipality's: the supervisor reads them.
    let token = gw.idp.token(&DevClaims::with_role("supervisor-1", TEST_CVR, Role::Supervisor));
    let interceptor = CallerInterceptor::new(Some(&token), Purpose::Supervision).expect("interceptor");
    let tls = ClientTls { ca_pem: ca.to_owned(), identity: None, domain: None };
    let channel = client::connect(url, Some(&tls), interceptor).await.expect("a person over TLS with a token");
    let mut auditor = AuditServiceClient::new(channel);
    let request = pb::ListAuditRecordsRequest { page_size: 1000, ..Default::default() };
    auditor.list_audit_records(request).await.expect("list").into_inner().records
}

#[tokio::test]
async fn each_client_is_rate_limited() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut security, _idp) = bro_e2e::test_security(dir.path()).expect("security");
    security.rate_limit = bro_server::access::ratelimit::RateLimit { per_second: 0.01, burst: 3.0 };
    let options = ServeOptions { security: Some(security), ..ServeOptions::default() };
    let gw = TestGateway::start_in(dir.path().to_path_buf(), options).await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    for _ in 0..3 {
        client.list_cases(pb::ListCasesRequest::default()).await.expect("within the burst");
    }
    let err = client.list_cases(pb::ListCasesRequest::default()).await.expect_err("over the limit");
    assert_eq!(err.code(), Code::ResourceExhausted);
    // Another client has its own allowance.
    let mut other = CaseServiceClient::new(gw.caseworker(OTHER_CVR).await.expect("channel"));
    other.list_cases(pb::ListCasesRequest::default()).await.expect("another client");
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn plain_text_is_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("dir");
    let (security, _idp) = bro_e2e::test_security(dir.path()).expect("security");
    let store = bro_store_sqlite::SqliteStore::open(dir.path()).expect("store");
    // Bound on every interface, never connected to: the server must refuse before serving.
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await.expect("bind");
    let options = ServeOptions { security: Some(security), ..ServeOptions::default() };
    let result = bro_server::run(listener, None, Arc::new(store), options, std::future::pending()).await;
    let err = result.expect_err("refused");
    assert!(err.to_string().contains("without TLS"), "{err}");
}

#[tokio::test]
async fn a_message_cannot_probe_for_cases() {
    let psychiatry = SystemConfig::new("psykiatri", "medcom", "xdis91", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![psychiatry]).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(medcom_mothers_case("c1")).await.expect("created");
    let mut ingest = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let send = |request_id: &str, content_type: &str, file: &str| pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage {
            content_type: content_type.into(),
            body: bro_e2e::medcom_fixture(file),
            metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
        }),
        request_id: request_id.into(),
    };
    // A letter about the mother (matched) and one about nobody here (unmatched) look the same.
    let matched = ingest.ingest(send("p-1", "application/fhir+json", "cc-0d5b3c18-replacement-cpr.in.json")).await;
    let unmatched = ingest.ingest(send("p-2", "application/xml", "DIS91_1.in.xml")).await;
    let (matched, unmatched) = (matched.expect("ok").into_inner(), unmatched.expect("ok").into_inner());
    assert_eq!(matched, unmatched, "no difference tells a case from none");
    assert_eq!(matched.outcome(), pb::IngestOutcome::Accepted);
    assert!(matched.case.is_empty() && matched.events.is_empty() && matched.unmatched_message.is_empty());
    // The letter was stored all the same.
    let case = cases.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("get").into_inner();
    assert_eq!(case.case.expect("case").correspondence_count, 1);
    // Once the mother consents, psychiatry is told where its letter is.
    let consent = vec![consent("mother", "share:psychiatry", true)];
    cases.append_case_events(append("c1", "c-1", consent, "")).await.expect("consent");
    let again = ingest.ingest(send("p-3", "application/fhir+json", "cc-0d5b3c18-replacement-cpr.in.json")).await;
    let again = again.expect("ok").into_inner();
    assert_eq!((again.outcome(), again.case.as_str()), (pb::IngestOutcome::Duplicate, "cases/c1"));
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_sector_system_records_only_its_own_sectors_items() {
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["scenario", "medcom"])),
        systems: Arc::new(
            Systems::new(vec![
                SystemConfig::new("jobcenter", "scenario", "", &[], Transport::None).with_access(
                    SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() },
                ),
                SystemConfig::new("psykiatri", "medcom", "xdis91", &[], Transport::None).with_access(
                    SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() },
                ),
            ])
            .expect("valid"),
        ),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    // A jobcentre that tries to give itself the parent's consent (or to end a placement) is refused.
    let mut jobcentre = IngestServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    for (n, body) in [
        r#"{"case": "cases/c1", "events": [{"at": "2026-03-01", "type": "consent_given", "custody_holder": "parent-1", "scope": "share:jobcenter"}]}"#,
        r#"{"case": "cases/c1", "events": [{"at": "2026-03-01", "type": "placement_started", "basis": "bl46"}]}"#,
    ]
    .iter()
    .enumerate()
    {
        let request = pb::IngestRequest {
            system: "jobcenter".into(),
            message: Some(pb::ExternalMessage {
                content_type: "application/json".into(),
                body: body.as_bytes().to_vec(),
                ..Default::default()
            }),
            request_id: format!("forged-{n}"),
        };
        let err = jobcentre.ingest(request).await.expect_err("not the jobcentre's to record");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains("may not record"), "{}", err.message());
    }
    // Psychiatry's letters are psychiatry's, whatever sector the message claims.
    let mut psychiatry = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    cases.create_case(medcom_mothers_case("c2")).await.expect("created");
    let request = pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage {
            content_type: "application/fhir+json".into(),
            body: bro_e2e::medcom_fixture("cc-0d5b3c18-replacement-cpr.in.json"),
            metadata: [("sector".to_owned(), "jobcentre".to_owned())].into(),
        }),
        request_id: "claims-jobcentre".into(),
    };
    psychiatry.ingest(request).await.expect("accepted");
    let listed = cases
        .list_correspondence(pb::ListCorrespondenceRequest { parent: "cases/c2".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    let letters: Vec<pb::Correspondence> = listed.correspondence.into_iter().filter_map(|c| c.correspondence).collect();
    assert_eq!(letters.iter().map(|l| l.sector()).collect::<Vec<_>>(), [pb::Sector::Psychiatry]);
    let case = cases.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("get").into_inner();
    assert_eq!(case.case.expect("case").version, 1, "nothing was recorded in c1");
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_municipalitys_unmatched_messages_are_its_own() {
    let journal = SystemConfig::new("journal", "sdi", "haendelsesbesked", &[], Transport::None)
        .with_access(SystemAccess::Municipal { cvr: "29990000".into() });
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["sdi"])),
        systems: Arc::new(Systems::new(vec![journal]).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapters/sdi/fixtures/planer.in.xml");
    let request = pb::IngestRequest {
        system: "journal".into(),
        message: Some(pb::ExternalMessage {
            content_type: "application/xml".into(),
            body: std::fs::read(&path).expect("fixture"),
            ..Default::default()
        }),
        request_id: "j-1".into(),
    };
    let mut journal = IngestServiceClient::new(gw.system("journal").await.expect("channel"));
    let answer = journal.ingest(request).await.expect("ingest").into_inner();
    assert_eq!(answer.outcome(), pb::IngestOutcome::Unmatched, "no case yet");
    let list = |channel| async move {
        let mut inbox = IngestServiceClient::new(channel);
        inbox.list_unmatched_messages(pb::ListUnmatchedMessagesRequest::default()).await.expect("list").into_inner()
    };
    let theirs = list(gw.caseworker("29990000").await.expect("channel")).await;
    assert_eq!(theirs.unmatched_messages.len(), 1, "the journal's municipality sees its message");
    let others = list(gw.caseworker(OTHER_CVR).await.expect("channel")).await;
    assert!(others.unmatched_messages.is_empty(), "another municipality does not");
    let mut other = IngestServiceClient::new(gw.caseworker(OTHER_CVR).await.expect("channel"));
    let discard = pb::DiscardUnmatchedMessageRequest { name: answer.unmatched_message.clone() };
    let err = other.discard_unmatched_message(discard).await.expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    // Reading and discarding the message are looks at the people it names: recorded.
    let mut own = IngestServiceClient::new(gw.caseworker("29990000").await.expect("channel"));
    let discard = pb::DiscardUnmatchedMessageRequest { name: answer.unmatched_message.clone() };
    own.discard_unmatched_message(discard).await.expect("the owner discards it");
    let records = gw.audit_records().await;
    for method in ["/ListUnmatchedMessages", "/DiscardUnmatchedMessage"] {
        let record = records
            .iter()
            .find(|r| r.method.ends_with(method) && r.outcome == "OK" && r.actor_municipality == "29990000")
            .unwrap_or_else(|| panic!("{method} is recorded"));
        assert!(!record.person_keys.is_empty(), "{method} records the people of the message");
    }
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn auditors_read_their_own_municipalitys_records_and_a_supervisor_reads_all() {
    let gw = TestGateway::start().await.expect("gateway");
    let mother_of = |cpr: &str| vec![bro_e2e::parent("mother", cpr, "Mor Testesen")];
    let (cpr_a, cpr_b) = (CPR_1, bro_e2e::synthetic_cprs(2)[1].clone());
    for (cvr, case, cpr) in [(TEST_CVR, "audit-a", CPR_1.to_owned()), (OTHER_CVR, "audit-b", cpr_b.clone())] {
        let mut cases = CaseServiceClient::new(gw.caseworker(cvr).await.expect("channel"));
        let mut create = new_case(case, cvr);
        create.custody_holders = mother_of(&cpr);
        cases.create_case(create).await.expect("create");
        cases.get_case(pb::GetCaseRequest { name: format!("cases/{case}") }).await.expect("read");
    }
    let auditor = |cvr: &str, role: Role, purpose: Purpose| {
        let token = gw.idp.token(&DevClaims::with_role(&format!("{}-{cvr}", role.as_str()), cvr, role));
        let gw = &gw;
        async move { AuditServiceClient::new(gw.channel_with(Some(&token), purpose).await.expect("channel")) }
    };
    let list = |mut client: AuditServiceClient<bro_server::access::client::AuthChannel>| async move {
        let request = pb::ListAuditRecordsRequest { page_size: 1000, ..Default::default() };
        client.list_audit_records(request).await.expect("list").into_inner().records
    };
    let cases_in = |records: &[pb::AuditRecord]| {
        let mut cases: Vec<String> = records.iter().map(|r| r.case.clone()).filter(|c| !c.is_empty()).collect();
        cases.sort();
        cases.dedup();
        cases
    };
    let of_a = list(auditor(TEST_CVR, Role::Auditor, Purpose::Supervision).await).await;
    let of_b = list(auditor(OTHER_CVR, Role::Auditor, Purpose::Supervision).await).await;
    let all = list(auditor(TEST_CVR, Role::Supervisor, Purpose::Supervision).await).await;
    assert_eq!(cases_in(&of_a), ["cases/audit-a"], "A's auditor: A's case only");
    assert_eq!(cases_in(&of_b), ["cases/audit-b"], "B's auditor: B's case only");
    assert_eq!(cases_in(&all), ["cases/audit-a", "cases/audit-b"], "the supervisor: both");
    assert!(of_a.iter().all(|r| r.actor_municipality != OTHER_CVR), "none of B's people's records");
    assert!(of_a.len() < all.len() && of_b.len() < all.len());
    // A citizen of B's case is B's to report on.
    let report = |person: &str| pb::GetAccessReportRequest {
        person: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: person.into() }),
        ..Default::default()
    };
    let mut a = auditor(TEST_CVR, Role::Auditor, Purpose::CitizenRequest).await;
    let refused = a.get_access_report(report(&cpr_b)).await.expect_err("another municipality's citizen");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("no case of municipality"), "{}", refused.message());
    let own = a.get_access_report(report(cpr_a)).await.expect("A's citizen").into_inner();
    assert!(!own.entries.is_empty(), "A's caseworker's look-up is reported");
    let mut national = auditor(TEST_CVR, Role::Supervisor, Purpose::CitizenRequest).await;
    assert!(!national.get_access_report(report(&cpr_b)).await.expect("any citizen").into_inner().entries.is_empty());
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_consent_dated_ahead_opens_nothing_today() {
    let options = ServeOptions { systems: sector_systems(Transport::None, &[]), ..ServeOptions::default() };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    let today = bro_server::clock::Clock::today(&bro_server::clock::SystemClock);
    let ahead = (today + chrono::Duration::days(60)).to_string();
    let dated_ahead = event(
        &ahead,
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: "share:jobcenter".into() }),
    );
    cases.append_case_events(append("c1", "consent-ahead", vec![dated_ahead], "")).await.expect("recorded");
    let mut jobcentre = CaseServiceClient::new(gw.system("jobcenter").await.expect("channel"));
    let refused = jobcentre.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect_err("not yet");
    assert_eq!(refused.code(), Code::PermissionDenied, "a consent given from {ahead} opens nothing today");
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_regional_systems_unmatched_message_belongs_to_the_municipality_it_matches() {
    let psychiatry = SystemConfig::new("psykiatri", "medcom", "fhir+json", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    let options = ServeOptions {
        adapters: Some(bro_e2e::adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![psychiatry]).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    // The mother is a custody holder in two of this municipality's cases: her letter matches neither alone.
    let mut cases = CaseServiceClient::new(gw.caseworker(TEST_CVR).await.expect("channel"));
    for id in ["r1", "r2"] {
        let mut create = new_case(id, TEST_CVR);
        create.custody_holders[0] = bro_e2e::medcom_mother();
        cases.create_case(create).await.expect("created");
    }
    let mut regional = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let ingest = |body: Vec<u8>, content_type: &str, id: &str| pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage { content_type: content_type.into(), body, ..Default::default() }),
        request_id: id.into(),
    };
    // Another sector's system is told only that its messages were accepted.
    let hers = bro_e2e::medcom_fixture("cc-0d5b3c18-replacement-cpr.in.json");
    let answer = regional.ingest(ingest(hers, "application/fhir+json", "m-1")).await.expect("ingest").into_inner();
    assert_eq!(answer.outcome(), pb::IngestOutcome::Accepted);
    // A letter about someone in no case has no owner.
    let stranger = bro_e2e::medcom_fixture("DIS91_1.in.xml");
    regional.ingest(ingest(stranger, "application/xml", "m-2")).await.expect("ingest");
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let all = IngestServiceClient::new(admin.clone())
        .list_unmatched_messages(pb::ListUnmatchedMessagesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .unmatched_messages;
    assert_eq!(all.len(), 2, "an administrator sees both, to discard what nobody owns: {all:?}");
    let hers = all.iter().find(|m| m.reason.starts_with("2 cases")).expect("hers is ambiguous").name.clone();
    let listed = |channel| async move {
        let mut inbox = IngestServiceClient::new(channel);
        let request = pb::ListUnmatchedMessagesRequest::default();
        let page = inbox.list_unmatched_messages(request).await.expect("list").into_inner();
        page.unmatched_messages.into_iter().map(|m| m.name).collect::<Vec<_>>()
    };
    assert_eq!(
        listed(gw.caseworker(TEST_CVR).await.expect("channel")).await,
        std::slice::from_ref(&hers),
        "the matched municipality's"
    );
    assert!(listed(gw.caseworker(OTHER_CVR).await.expect("channel")).await.is_empty(), "not another's");
    let mut other = IngestServiceClient::new(gw.caseworker(OTHER_CVR).await.expect("channel"));
    let resolve = |holder: &str, reason: &str| pb::ResolveUnmatchedMessageRequest {
        name: hers.clone(),
        case: "cases/r1".into(),
        custody_holder: holder.into(),
        override_reason: reason.into(),
    };
    let err = other.resolve_unmatched_message(resolve("mother", "")).await.expect_err("not theirs");
    assert_ne!(err.code(), Code::Ok);
    // The owner attaches it to the mother, whose identifier the letter names; to the father only with a reason.
    let mut owner = IngestServiceClient::new(gw.caseworker(TEST_CVR).await.expect("channel"));
    let err = owner.resolve_unmatched_message(resolve("parent-2", "")).await.expect_err("not the father's");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("override_reason"), "{err:?}");
    let resolved = owner.resolve_unmatched_message(resolve("parent-2", "the same man, new CPR 0101011234"));
    resolved.await.expect("attached with a reason");
    let records = gw.audit_records().await;
    let overridden = records
        .iter()
        .find(|r| r.method.ends_with("/ResolveUnmatchedMessage") && r.outcome == "OK")
        .expect("the resolve is recorded");
    assert!(overridden.detail.starts_with("override: the same man"), "{overridden:?}");
    assert!(!overridden.detail.contains("0101011234"), "digits masked: {}", overridden.detail);
    gw.stop().await.expect("stops");
}
