//! Adapters under load, through a running gateway: one adapter holding all
//! its call slots does not stop another adapter's messages; one sender's
//! bombs are its own stored rejections, not the adapter's downfall; crashes
//! across senders quarantine the adapter, visibly; and a delivery waits,
//! spending no attempt, while its adapter cannot be called.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bro_api::v1 as pb;
use bro_api::v1::adapter_service_client::AdapterServiceClient;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::{TestGateway, adapter_registry, eventually, medcom_fixture, new_case};
use bro_plugin_host::{AdapterLimits, LoadedAdapter};
use bro_server::ServeOptions;
use bro_server::access::{Purpose, Role};
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use tonic::Code;
use tonic_types::StatusExt;

fn psychiatry(name: &str) -> SystemConfig {
    SystemConfig::new(name, "medcom", "fhir+xml", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() })
}

fn message(system: &str, request_id: &str, content_type: &str, body: Vec<u8>) -> pb::IngestRequest {
    pb::IngestRequest {
        system: system.into(),
        message: Some(pb::ExternalMessage {
            content_type: content_type.into(),
            body,
            metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
        }),
        request_id: request_id.into(),
    }
}

/// Adds the `hostile` guest to `registry` under `limits`.
fn with_hostile(registry: &Arc<bro_plugin_host::AdapterRegistry>, limits: AdapterLimits) {
    let dir = std::env::var("BRO_ADAPTER_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/adapters"));
    let wasm = std::fs::read(dir.join("hostile.wasm")).expect("hostile.wasm (run `cargo xtask build-adapters`)");
    let engine = registry.engine().clone();
    let component = engine.compile("hostile", &wasm).expect("compiles");
    let loaded = LoadedAdapter::load(engine, "hostile", &component, limits, "test".into()).expect("loads");
    registry.insert(Arc::new(loaded)).expect("insert");
}

/// A gateway serving `systems` through `registry`'s adapters.
async fn gateway(registry: Arc<bro_plugin_host::AdapterRegistry>, systems: Vec<SystemConfig>) -> TestGateway {
    let options = ServeOptions {
        adapters: Some(registry),
        systems: Arc::new(Systems::new(systems).expect("valid systems")),
        ..ServeOptions::default()
    };
    TestGateway::start_with(options).await.expect("gateway starts")
}

/// A system whose messages go through the `hostile` guest.
fn hostile_sender(name: &str) -> SystemConfig {
    SystemConfig::new(name, "hostile", "", &[], Transport::None)
        .with_access(SystemAccess::Municipal { cvr: bro_e2e::TEST_CVR.into() })
}

#[tokio::test]
async fn valid_messages_through_one_adapter_all_succeed_while_another_holds_all_its_slots() {
    let registry = adapter_registry(&["medcom"]);
    let slow =
        AdapterLimits { max_concurrent_calls: 2, queue_timeout: Duration::from_millis(50), ..Default::default() };
    with_hostile(&registry, slow);
    let systems = vec![psychiatry("psykiatri"), hostile_sender("slow")];
    let gw = gateway(registry.clone(), systems).await;
    let slow_client = IngestServiceClient::new(gw.system("slow").await.expect("channel"));
    let client = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));

    // Ten senders keep the hostile adapter's two slots full of slow (finite) calls.
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..10)
        .map(|h| {
            let (mut client, stop) = (slow_client.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ran, mut busy) = (0u32, 0u32);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = message("slow", &format!("spin-{h}-{n}"), "spin", b"30000000".to_vec());
                    match client.ingest(request).await {
                        Err(e) if e.code() == Code::Unavailable => {
                            let details = e.get_error_details();
                            assert_eq!(details.error_info().expect("info").reason, "ADAPTER_BUSY", "{}", e.message());
                            assert!(details.retry_info().and_then(|r| r.retry_delay).is_some(), "a retry delay");
                            busy += 1;
                        }
                        // The spin translates to an empty batch, which is refused: it ran.
                        Err(e) if e.code() == Code::InvalidArgument => ran += 1,
                        other => panic!("unexpected answer for a spin: {other:?}"),
                    }
                }
                (ran, busy)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 200 valid messages through medcom, eight senders at a time: every one succeeds.
    let body = medcom_fixture("cc-add5e7e2-new-message.in.json");
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let (mut client, body) = (client.clone(), body.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    let request =
                        message("psykiatri", &format!("valid-{s}-{i}"), "application/fhir+json", body.clone());
                    let answer = client.ingest(request).await.unwrap_or_else(|e| panic!("message {s}/{i}: {e:?}"));
                    let outcome = answer.into_inner().outcome();
                    assert!(
                        matches!(outcome, pb::IngestOutcome::Accepted | pb::IngestOutcome::Duplicate),
                        "{outcome:?}"
                    );
                }
            })
        })
        .collect();
    for s in senders {
        s.await.expect("all 200 valid messages succeeded");
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ran, mut busy) = (0, 0);
    for h in hogs {
        let (r, b) = h.await.expect("hog");
        (ran, busy) = (ran + r, busy + b);
    }
    assert!(ran > 0 && busy > 0, "the hostile adapter was saturated: {ran} ran, {busy} answered busy");

    // A busy answer stores nothing and is no failure of the adapter.
    let mut inbox = IngestServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("ch"));
    let request = pb::ListRejectionsRequest { page_size: 1000, ..Default::default() };
    let rejections = inbox.list_rejections(request).await.expect("list").into_inner().rejections;
    assert_eq!(rejections.len() as u32, ran, "only the spins that ran were refused (for their empty batch)");
    let hostile = registry.get("hostile").expect("loaded").stats();
    assert_eq!((hostile.failures, hostile.busy_refusals), (0, u64::from(busy)));
    assert_eq!(registry.get("medcom").expect("loaded").stats().failures, 0);
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn one_senders_bombs_are_its_own_rejections_and_another_sender_is_served() {
    let registry = adapter_registry(&["medcom"]);
    with_hostile(&registry, AdapterLimits { memory_bytes: 16 << 20, ..AdapterLimits::default() });
    let systems = vec![psychiatry("psykiatri-a"), psychiatry("psykiatri-b"), hostile_sender("x"), hostile_sender("y")];
    let gw = gateway(registry, systems).await;
    let mut a = IngestServiceClient::new(gw.system("psykiatri-a").await.expect("channel"));
    let mut b = IngestServiceClient::new(gw.system("psykiatri-b").await.expect("channel"));

    // Five 3.8 MB JSON arrays from one sender: each a stored rejection naming the cap.
    let bomb = format!("{{\"resourceType\": \"Bundle\", \"entry\": [{}]}}", vec!["1"; 1_900_000].join(","));
    assert!(bomb.len() > 3_800_000);
    for i in 0..5 {
        let request = message("psykiatri-a", &format!("bomb-{i}"), "application/fhir+json", bomb.clone().into_bytes());
        let err = a.ingest(request).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert_eq!(err.get_error_details().error_info().expect("info").reason, "MESSAGE_REJECTED");
        assert!(err.message().contains("(cap: values)"), "{}", err.message());
    }
    // Another sender's valid message through the same adapter is accepted.
    let valid =
        message("psykiatri-b", "valid-1", "application/fhir+json", medcom_fixture("cc-add5e7e2-new-message.in.json"));
    assert_eq!(b.ingest(valid).await.expect("accepted").into_inner().outcome(), pb::IngestOutcome::Accepted);

    // Limits broken by one sender's messages in the host (memory, here) do not quarantine either.
    let mut x = IngestServiceClient::new(gw.system("x").await.expect("channel"));
    let mut y = IngestServiceClient::new(gw.system("y").await.expect("channel"));
    for i in 0..6 {
        let err = x.ingest(message("x", &format!("alloc-{i}"), "alloc", b"x".to_vec())).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains("memory limit of 16 MiB"), "{}", err.message());
    }
    let err = y.ingest(message("y", "fine-1", "fine", b"x".to_vec())).await.expect_err("an empty batch");
    assert!(err.message().contains("no events"), "the adapter served y: {}", err.message());

    let mut inbox = IngestServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("ch"));
    let request = pb::ListRejectionsRequest { filter: "system = \"psykiatri-a\"".into(), ..Default::default() };
    let rejections = inbox.list_rejections(request).await.expect("list").into_inner().rejections;
    assert_eq!(rejections.len(), 5);
    assert!(rejections.iter().all(|r| r.reason.contains("(cap: values)")), "{rejections:?}");

    let mut adapters =
        AdapterServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("ch"));
    for name in ["adapters/medcom", "adapters/hostile"] {
        let request = pb::GetAdapterRequest { name: name.into() };
        let adapter = adapters.get_adapter(request).await.expect("get").into_inner().adapter.expect("adapter");
        assert_eq!(adapter.state(), pb::AdapterState::Serving, "{name}");
    }
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn crashes_across_senders_quarantine_the_adapter_visibly() {
    let registry = adapter_registry(&[]);
    with_hostile(&registry, AdapterLimits::default());
    let systems = vec![hostile_sender("x"), hostile_sender("y")];
    let gw = gateway(registry, systems).await;
    let mut x = IngestServiceClient::new(gw.system("x").await.expect("channel"));
    let mut y = IngestServiceClient::new(gw.system("y").await.expect("channel"));
    for i in 0..5 {
        let (client, system) = if i % 2 == 0 { (&mut x, "x") } else { (&mut y, "y") };
        let err = client.ingest(message(system, &format!("trap-{i}"), "trap", b"x".to_vec())).await.expect_err("crash");
        assert_eq!(err.code(), Code::InvalidArgument, "each crash is its message's rejection: {}", err.message());
    }
    let err = x.ingest(message("x", "after", "fine", b"x".to_vec())).await.expect_err("quarantined");
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    let details = err.get_error_details();
    assert_eq!(details.error_info().expect("info").reason, "ADAPTER_QUARANTINED");
    assert!(details.retry_info().and_then(|r| r.retry_delay).is_some());

    let mut adapters =
        AdapterServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("ch"));
    let listed = adapters.list_adapters(pb::ListAdaptersRequest::default()).await.expect("list").into_inner();
    let hostile = listed.adapters.iter().find(|a| a.name == "adapters/hostile").expect("listed");
    assert_eq!(hostile.state(), pb::AdapterState::Quarantined);
    assert!(hostile.retry_in.is_some());
    assert_eq!(hostile.consecutive_failures, 5);
    assert!(hostile.last_failure.contains("crashed on this message"), "{}", hostile.last_failure);
    let counters = hostile.counters.expect("counters");
    assert_eq!((counters.traps, counters.quarantined_refusals), (5, 1));
    // A caseworker may not read the adapters' health.
    let mut caseworker = AdapterServiceClient::new(gw.caseworker("29189846").await.expect("ch"));
    let denied = caseworker.list_adapters(pb::ListAdaptersRequest::default()).await.expect_err("denied");
    assert_eq!(denied.code(), Code::PermissionDenied);
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_delivery_waits_without_spending_attempts_while_its_adapter_cannot_be_called() {
    let mut journal = SystemConfig::new("journal", "sdi", "haendelsesbesked", &["case_opened"], Transport::Pull)
        .with_access(SystemAccess::Municipal { cvr: "29189846".into() });
    journal.max_attempts = 1;
    // The system's adapter is not loaded.
    let gw = gateway(adapter_registry(&["trivial"]), vec![journal]).await;
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("ch"));
    cases.create_case(new_case("waits-1", "29189846")).await.expect("case created");
    let deliveries = DeliveryServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("ch"));
    let listed = || {
        let mut deliveries = deliveries.clone();
        async move {
            let request = pb::ListDeliveriesRequest { page_size: 10, ..Default::default() };
            deliveries.list_deliveries(request).await.expect("list").into_inner().deliveries
        }
    };
    eventually("the worker has tried the delivery", || async {
        listed().await.iter().any(|d| !d.last_error.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivery = listed().await.into_iter().next().expect("a delivery");
    assert_eq!(delivery.state(), pb::DeliveryState::Pending, "not dead-lettered with max_attempts = 1");
    assert_eq!(delivery.attempts, 0, "waiting spends no attempt");
    assert!(delivery.last_error.contains("is not loaded"), "{}", delivery.last_error);
    gw.stop().await.expect("stops");
}
