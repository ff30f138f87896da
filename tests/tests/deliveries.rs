//! Deliveries through a running gateway: a MedCom message in, the case
//! updated, and the change out — over HTTP (after a refused first attempt),
//! into a drop directory and by pull — each in its receiver's format, never
//! back to the system it came from; then retry, replay and dead letters.

use std::sync::Arc;
use std::time::Duration;

use bro_api::v1 as pb;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::eventually;
use bro_e2e::receiver::Receiver;
use bro_e2e::{TestGateway, adapter_registry, letter_to_psychiatry, medcom_fixture, new_case, parent};
use bro_server::ServeOptions;
use bro_server::access::client::AuthChannel;
use bro_server::access::{Purpose, Role};
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use tokio_stream::StreamExt;

const CORRESPONDENCE: &[&str] = &["correspondence_recorded"];

fn fast(mut s: SystemConfig) -> SystemConfig {
    s.backoff_base = Duration::from_millis(50);
    s.backoff_max = Duration::from_millis(200);
    s
}

/// Waits until `check` holds, or fails after 20 s.
async fn list(client: &mut DeliveryServiceClient<AuthChannel>, filter: &str) -> Vec<pb::Delivery> {
    let request = pb::ListDeliveriesRequest { filter: filter.into(), page_size: 100, ..Default::default() };
    client.list_deliveries(request).await.expect("list").into_inner().deliveries
}

#[tokio::test]
async fn a_change_reaches_every_subscribed_system_in_its_format() {
    let receiver = Receiver::start(0, 1).await.expect("receiver");
    let drop_dir = tempfile::tempdir().expect("temp dir");
    let systems = Systems::new(vec![
        // Psychiatry gets what the parents' consent to share with it covers.
        fast(SystemConfig::new(
            "psykiatri",
            "medcom",
            "xdis91",
            CORRESPONDENCE,
            Transport::Http { url: receiver.url() },
        ))
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() }),
        // Two of the municipality's own systems get every letter, in two formats.
        fast(SystemConfig::new(
            "sundhed",
            "medcom",
            "fhir+json",
            CORRESPONDENCE,
            Transport::File { dir: drop_dir.path().to_path_buf() },
        ))
        .with_access(SystemAccess::Municipal { cvr: "29189846".into() }),
        fast(SystemConfig::new("misbrug", "medcom", "fhir+xml", CORRESPONDENCE, Transport::Pull))
            .with_access(SystemAccess::Municipal { cvr: "29189846".into() }),
    ])
    .expect("valid systems");
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(systems),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let mut create = new_case("deliver-1", "29189846");
    let mother = bro_e2e::medcom_mother();
    // The father is MedCom's published test patient of its XDIS91 sample.
    let father = parent("father", concat!("150282", "4933"), "Far Testesen");
    create.custody_holders = vec![mother, father];
    cases.create_case(create).await.expect("case created");
    let consent = bro_e2e::event(
        "2026-02-01",
        pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
            custody_holder: "mother".into(),
            scope: "share:psychiatry".into(),
        }),
    );
    let father_consents = bro_e2e::event(
        "2026-02-01",
        pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
            custody_holder: "father".into(),
            scope: "share:psychiatry".into(),
        }),
    );
    let consents = vec![consent, father_consents];
    cases.append_case_events(bro_e2e::append("deliver-1", "consent-1", consents, "")).await.expect("consent");
    let mut ingest = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let mut deliveries = DeliveryServiceClient::new(admin);
    let mut pull = DeliveryServiceClient::new(gw.system("misbrug").await.expect("channel"));

    // A CareCommunication from psychiatry: goes to the other two, not back.
    let message = pb::ExternalMessage {
        content_type: "application/fhir+json".into(),
        body: medcom_fixture("cc-0d5b3c18-replacement-cpr.in.json"),
        metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
    };
    let request = pb::IngestRequest { system: "psykiatri".into(), message: Some(message), request_id: "in-1".into() };
    let ingested = ingest.ingest(request).await.expect("ingest").into_inner();
    assert_eq!(ingested.outcome(), pb::IngestOutcome::Appended);
    // An XDIS91 letter (windows-1252 OIOXML) about the father: goes to the other two as well.
    let message = pb::ExternalMessage {
        content_type: "application/xml".into(),
        body: medcom_fixture("DIS91_1.in.xml"),
        metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
    };
    let request = pb::IngestRequest { system: "psykiatri".into(), message: Some(message), request_id: "in-2".into() };
    let ingested = ingest.ingest(request).await.expect("ingest").into_inner();
    assert_eq!(ingested.outcome(), pb::IngestOutcome::Appended);
    assert_eq!(ingested.case, "cases/deliver-1");
    // A caseworker's letter to psychiatry: goes to all three.
    let append = bro_e2e::append("deliver-1", "letter-1", vec![letter_to_psychiatry("2026-03-02", "mother", 1)], "");
    cases.append_case_events(append).await.expect("letter appended");

    let all = list(&mut deliveries, "").await;
    let per_system = |s: &str| all.iter().filter(|d| d.system == s).count();
    assert_eq!((per_system("psykiatri"), per_system("sundhed"), per_system("misbrug")), (1, 3, 3));

    // HTTP: refused once (503), retried, then delivered as windows-1252 XDIS91 with its idempotency key.
    eventually("the HTTP receiver has the letter", || async { receiver.unique().len() == 1 }).await;
    let got = &receiver.unique()[0];
    assert_eq!(got.content_type, "application/xml; charset=windows-1252");
    assert!(got.body.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>"));
    assert!(got.body.windows(12).any(|w| w == b"<Break/>Vi f"), "line breaks as <Break/>");
    let http = all.iter().find(|d| d.system == "psykiatri").expect("http delivery");
    assert_eq!(format!("deliveries/{}", got.key), http.name, "the delivery id is the idempotency key");
    eventually("the HTTP delivery is recorded as delivered on its second attempt", || {
        let mut d = deliveries.clone();
        let name = http.name.clone();
        async move {
            let got = d.get_delivery(pb::GetDeliveryRequest { name }).await.expect("get").into_inner();
            let got = got.delivery.expect("delivery");
            got.state() == pb::DeliveryState::Delivered && got.attempts == 2 && got.last_error.is_empty()
        }
    })
    .await;

    // File: three FHIR JSON bundles, each written whole under its delivery id.
    eventually("the drop directory has all three", || async { visible_files(drop_dir.path()) == 3 }).await;
    for entry in std::fs::read_dir(drop_dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        assert!(!path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')), "no partial file is left");
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"), "{}", path.display());
        let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        assert_eq!(bundle["resourceType"], "Bundle");
    }

    // Pull: the system streams all three as FHIR XML and acknowledges them.
    let stream =
        pull.stream_deliveries(pb::StreamDeliveriesRequest { system: "misbrug".into() }).await.expect("stream");
    let mut stream = stream.into_inner();
    for _ in 0..3 {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("in time");
        let delivery = item.expect("an item").expect("ok").delivery.expect("delivery");
        assert_eq!(delivery.content_type, "application/fhir+xml; fhir-version=4.0");
        assert!(String::from_utf8_lossy(&delivery.body).contains("<Bundle xmlns=\"http://hl7.org/fhir\">"));
        let ack = pb::AcknowledgeDeliveryRequest { name: delivery.name.clone() };
        let acked = pull.acknowledge_delivery(ack).await.expect("ack").into_inner().delivery.expect("delivery");
        assert_eq!(acked.state(), pb::DeliveryState::Delivered);
    }
    drop(stream);
    eventually("all seven are delivered", || {
        let mut d = deliveries.clone();
        async move { list(&mut d, "state = \"delivered\"").await.len() == 7 }
    })
    .await;

    // Replay: the same events again, under a new idempotency key.
    let replay = pb::ReplayDeliveryRequest { name: http.name.clone(), request_id: "replay-1".into() };
    let replayed =
        deliveries.replay_delivery(replay.clone()).await.expect("replay").into_inner().delivery.expect("delivery");
    assert_eq!(replayed.replay_of, http.name);
    let again =
        deliveries.replay_delivery(replay).await.expect("retried replay").into_inner().delivery.expect("delivery");
    assert_eq!(again.name, replayed.name, "a retried replay is the same replay");
    eventually("the replay arrives", || async { receiver.unique().len() == 2 }).await;
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_refusing_receiver_dead_letters_and_a_retry_delivers() {
    // Nothing listens on this port yet: every attempt fails until the receiver starts.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let mut system = fast(SystemConfig::new(
        "psykiatri",
        "medcom",
        "fhir+json",
        CORRESPONDENCE,
        Transport::Http { url: format!("http://127.0.0.1:{port}/inbox") },
    ));
    system.max_attempts = 2;
    let system = system.with_access(SystemAccess::Municipal { cvr: "29189846".into() });
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![system]).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let mut create = new_case("deliver-2", "29189846");
    create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
    cases.create_case(create).await.expect("case created");
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let mut deliveries = DeliveryServiceClient::new(admin);
    let append = bro_e2e::append("deliver-2", "letter-1", vec![letter_to_psychiatry("2026-03-02", "mother", 1)], "");
    cases.append_case_events(append).await.expect("letter appended");
    eventually("the delivery is dead-lettered", || {
        let mut d = deliveries.clone();
        async move { list(&mut d, "state = \"dead\"").await.len() == 1 }
    })
    .await;
    let dead = list(&mut deliveries, "").await.remove(0);
    assert_eq!(dead.attempts, 2);
    assert!(dead.last_error.contains("gave up after 2 attempts"), "{}", dead.last_error);
    let receiver = Receiver::start(port, 0).await.expect("receiver on the configured port");
    let retried = deliveries.retry_delivery(pb::RetryDeliveryRequest { name: dead.name.clone() }).await.expect("retry");
    assert_eq!(retried.into_inner().delivery.expect("delivery").state(), pb::DeliveryState::Pending);
    eventually("the retried delivery arrives", || async { receiver.unique().len() == 1 }).await;
    eventually("it is delivered", || {
        let mut d = deliveries.clone();
        async move { list(&mut d, "state = \"delivered\"").await.len() == 1 }
    })
    .await;
    let err =
        deliveries.retry_delivery(pb::RetryDeliveryRequest { name: dead.name.clone() }).await.expect_err("not dead");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    gw.stop().await.expect("stops");
}

/// Files in a drop directory, not counting partial (hidden) ones being written.
fn visible_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

/// A receiver slower than the worker's lease: the worker renews its lease
/// while it waits, so no second attempt (by itself or any other worker)
/// starts meanwhile, the delivery is recorded once, and the queue's next
/// delivery goes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_keeps_its_delivery_under_one_renewed_lease() {
    let receiver = Receiver::start(0, 0).await.expect("receiver");
    receiver.set_delay_ms(3_500);
    let system = fast(SystemConfig::new(
        "psykiatri",
        "medcom",
        "fhir+json",
        CORRESPONDENCE,
        Transport::Http { url: receiver.url() },
    ))
    .with_access(SystemAccess::Municipal { cvr: "29189846".into() });
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![system]).expect("valid")),
        delivery_lease: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let mut create = new_case("deliver-3", "29189846");
    create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
    cases.create_case(create).await.expect("case created");
    for n in 1..=2 {
        let letter = bro_e2e::append(
            "deliver-3",
            &format!("letter-{n}"),
            vec![letter_to_psychiatry("2026-03-02", "mother", n)],
            "",
        );
        cases.append_case_events(letter).await.expect("letter");
    }
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let mut deliveries = DeliveryServiceClient::new(admin);
    let mut listed = Vec::new();
    for _ in 0..400 {
        let request = pb::ListDeliveriesRequest { page_size: 10, ..Default::default() };
        listed = deliveries.list_deliveries(request).await.expect("list").into_inner().deliveries;
        if listed.len() == 2 && listed.iter().all(|d| d.state() == pb::DeliveryState::Delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed.iter().all(|d| d.state() == pb::DeliveryState::Delivered && d.attempts == 1), "{listed:?}");
    let all = receiver.all();
    assert_eq!(all.len(), 2, "each sent once: the lease was renewed while the receiver took 3.5 s");
    let order: Vec<i64> =
        all.iter().map(|r| listed.iter().find(|d| d.name.ends_with(&r.key)).expect("listed").first_sequence).collect();
    assert!(order[0] < order[1], "in the order written: {order:?}");
    gw.stop().await.expect("stop");
}

/// The TLS server side of a receiver: its certificate from `certs`, and
/// client certificates required, checked against `certs`' CA.
fn receiver_tls(certs: &bro_dev::DevCertificates) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(certs.ca.as_bytes()).expect("CA")).expect("a CA");
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    let chain = vec![CertificateDer::from_pem_slice(certs.server.cert.as_bytes()).expect("certificate")];
    let key = PrivateKeyDer::from_pem_slice(certs.server.key.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .expect("server config");
    Arc::new(config)
}

#[tokio::test]
async fn an_https_receiver_is_verified_and_shown_bros_client_certificate() {
    use bro_server::systems::ReceiverTls;
    let certs = bro_dev::DevCertificates::generate(&["bro"]).expect("certificates");
    let stranger = bro_dev::DevCertificates::generate(&["bro"]).expect("another CA");
    let receiver = Receiver::start_tls(receiver_tls(&certs)).await.expect("receiver");
    let client = certs.client("bro").expect("bro's client certificate");
    let https = |name: &str, tls: ReceiverTls| {
        let mut s = fast(SystemConfig::new(
            name,
            "medcom",
            "fhir+json",
            CORRESPONDENCE,
            Transport::Http { url: receiver.url() },
        ))
        .with_access(SystemAccess::Municipal { cvr: "29189846".into() });
        s.receiver_tls = Some(tls);
        s
    };
    let systems = Systems::new(vec![
        // Trusts the receiver's CA and presents a certificate it accepts.
        https("sundhed", ReceiverTls::new(Some(&certs.ca), Some((&client.cert, &client.key))).expect("tls")),
        // Trusts another CA: the receiver is not who it should be.
        https("forvekslet", ReceiverTls::new(Some(&stranger.ca), Some((&client.cert, &client.key))).expect("tls")),
        // Presents no certificate: the receiver does not take it.
        https("anonym", ReceiverTls::new(Some(&certs.ca), None).expect("tls")),
    ])
    .expect("valid systems");
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(systems),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let mut create = new_case("tls-1", "29189846");
    create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
    cases.create_case(create).await.expect("case created");
    let append = bro_e2e::append("tls-1", "letter-1", vec![letter_to_psychiatry("2026-03-02", "mother", 1)], "");
    cases.append_case_events(append).await.expect("letter appended");
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let mut deliveries = DeliveryServiceClient::new(admin);
    let d = deliveries.clone();
    eventually("the verified receiver has the letter, the other two have failed attempts", move || {
        let mut d = d.clone();
        async move {
            let all = list(&mut d, "").await;
            let of = |s: &str| all.iter().find(|x| x.system == s).cloned();
            let delivered = of("sundhed").is_some_and(|x| x.state() == pb::DeliveryState::Delivered);
            let failed = |s: &str| of(s).is_some_and(|x| x.attempts >= 1 && !x.last_error.is_empty());
            delivered && failed("forvekslet") && failed("anonym")
        }
    })
    .await;
    let all = list(&mut deliveries, "").await;
    let of = |s: &str| all.iter().find(|x| x.system == s).expect("a delivery");
    assert_eq!(receiver.unique().len(), 1, "only the verified, certified connection delivered");
    assert_eq!(receiver.unique()[0].key, of("sundhed").name.trim_start_matches("deliveries/"));
    for refused in ["forvekslet", "anonym"] {
        assert_ne!(of(refused).state(), pb::DeliveryState::Delivered, "{refused}");
    }
    assert!(of("forvekslet").last_error.contains("TLS with localhost"), "{}", of("forvekslet").last_error);
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn nothing_leaves_before_its_audit_record_is_written() {
    let receiver = Receiver::start(0, 0).await.expect("receiver");
    let system = fast(SystemConfig::new(
        "psykiatri",
        "medcom",
        "fhir+json",
        CORRESPONDENCE,
        Transport::Http { url: receiver.url() },
    ))
    .with_access(SystemAccess::Municipal { cvr: "29189846".into() });
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![system]).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    // The audit log starts refusing the records of deliveries (as a full
    // disk or a broken database would refuse every record).
    let audit = rusqlite::Connection::open(gw.data_dir.join("audit.sqlite3")).expect("audit log");
    audit.busy_timeout(Duration::from_secs(10)).expect("timeout");
    audit
        .execute_batch(
            "CREATE TRIGGER refuse_deliveries BEFORE INSERT ON audit_records
             WHEN instr(NEW.record, CAST('delivery:' AS BLOB)) > 0
             BEGIN SELECT RAISE(ABORT, 'no space left'); END;",
        )
        .expect("trigger");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let mut create = new_case("deliver-audit", "29189846");
    create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
    cases.create_case(create).await.expect("case created");
    let append =
        bro_e2e::append("deliver-audit", "letter-1", vec![letter_to_psychiatry("2026-03-02", "mother", 1)], "");
    cases.append_case_events(append).await.expect("letter appended");
    let admin = gw.person(Role::Administrator, Purpose::Operations).await.expect("channel");
    let mut deliveries = DeliveryServiceClient::new(admin);
    // A listing may share a group commit with a refused record: try again then.
    let refused = |d: &pb::Delivery| d.last_error.contains("the audit log cannot be written");
    eventually("an attempt is refused for want of its audit record", || {
        let mut d = deliveries.clone();
        async move {
            let request = pb::ListDeliveriesRequest { page_size: 10, ..Default::default() };
            d.list_deliveries(request).await.is_ok_and(|r| r.into_inner().deliveries.iter().any(refused))
        }
    })
    .await;
    assert!(receiver.unique().is_empty(), "nothing was sent without its record");
    let pending = list(&mut deliveries, "").await.remove(0);
    assert_eq!(pending.state(), pb::DeliveryState::Pending, "it waits, not lost");
    // The log works again: the delivery leaves, and its record is there.
    audit.execute_batch("DROP TRIGGER refuse_deliveries").expect("drop trigger");
    eventually("the delivery arrives", || async { receiver.unique().len() == 1 }).await;
    let records = gw.audit_records().await;
    let sent = records.iter().filter(|r| r.method == "delivery:http" && r.case == "cases/deliver-audit").count();
    assert!(sent >= 1, "the delivery's record was written before it left");
    gw.stop().await.expect("stops");
}
