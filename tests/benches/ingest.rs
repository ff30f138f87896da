//! End-to-end ingest benchmark, all in one run: MedCom XDIS91 letters
//! (windows-1252 OIOXML) sent to a real gateway's `IngestService`, each
//! translated by the `medcom` WebAssembly adapter, matched to one of 100
//! cases by the patient's CPR number, appended durably (one fsync per
//! message) — alone, and with one subscribed system so each message also
//! writes an outbox row. Closed loop: messages per second with 8 clients.
//! Open loop: latency percentiles at a fixed rate.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-e2e --bench ingest`
//! (`-- --quick` for short runs). See BENCHMARKS.md.

#![allow(clippy::print_stdout)] // A bench binary reports its results on stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::{TestGateway, adapter_registry, medcom_fixture, new_case, parent, synthetic_cprs, xdis91_letter};
use bro_server::ServeOptions;
use bro_server::access::client::AuthChannel;
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};

const CASES: usize = 100;
const CLIENTS: usize = 8;
/// The open-loop rate, messages per second.
const RATE: u32 = 200;

fn request(body: Vec<u8>, n: usize) -> pb::IngestRequest {
    pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage {
            content_type: "application/xml".into(),
            body,
            metadata: Default::default(),
        }),
        request_id: format!("bench-{n}"),
    }
}

async fn gateway(with_subscriber: bool) -> (TestGateway, Vec<String>, tempfile::TempDir) {
    let drop_dir = tempfile::tempdir().expect("temp dir");
    // The municipality's own system: its letters are appended to the matched case.
    let mut systems = vec![
        SystemConfig::new("psykiatri", "medcom", "", &[], Transport::None)
            .with_access(SystemAccess::Municipal { cvr: "29189846".into() }),
    ];
    if with_subscriber {
        // The municipality's own journal receives every letter: the outbox's full cost.
        systems.push(
            SystemConfig::new(
                "journal",
                "medcom",
                "fhir+json",
                &["correspondence_recorded"],
                Transport::File { dir: drop_dir.path().to_path_buf() },
            )
            .with_access(SystemAccess::Municipal { cvr: "29189846".into() }),
        );
    }
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(systems).expect("valid")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("client"));
    let cprs = synthetic_cprs(CASES);
    for (i, cpr) in cprs.iter().enumerate() {
        let mut create = new_case(&format!("bench-{i}"), "29189846");
        create.custody_holders = vec![parent("mother", cpr, "Mor Testesen")];
        cases.create_case(create).await.expect("case");
    }
    (gw, cprs, drop_dir)
}

/// Closed loop: `CLIENTS` clients ingesting back to back for `duration`.
async fn throughput(channel: AuthChannel, cprs: &[String], duration: Duration) -> f64 {
    let template = medcom_fixture("DIS91_1.in.xml");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (channel, next, template, cprs) = (channel.clone(), next.clone(), template.clone(), cprs.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut client = IngestServiceClient::new(channel);
            let mut done = 0usize;
            while start.elapsed() < duration {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = xdis91_letter(&template, &cprs[n % cprs.len()], n);
                let r = client.ingest(request(body, n)).await.expect("ingest").into_inner();
                assert_eq!(r.outcome(), pb::IngestOutcome::Appended);
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Open loop: one message every 1/`RATE` s for `duration`; latencies sorted.
async fn latencies(channel: AuthChannel, cprs: &[String], duration: Duration, offset: usize) -> Vec<Duration> {
    let template = medcom_fixture("DIS91_1.in.xml");
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut tasks = Vec::new();
    let start = Instant::now();
    let mut n = offset;
    while start.elapsed() < duration {
        ticker.tick().await;
        let body = xdis91_letter(&template, &cprs[n % cprs.len()], n);
        let mut client = IngestServiceClient::new(channel.clone());
        let req = request(body, n);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            client.ingest(req).await.expect("ingest");
            sent.elapsed()
        }));
        n += 1;
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> String {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.1} ms", sorted[i].as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = if quick { Duration::from_secs(2) } else { Duration::from_secs(8) };
    println!("| XDIS91 ingest, {CASES} cases | messages/s ({CLIENTS} clients) | p50 at {RATE}/s | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for with_subscriber in [false, true] {
        let (gw, cprs, _drop) = gateway(with_subscriber).await;
        let channel = gw.system("psykiatri").await.expect("channel");
        let rate = throughput(channel.clone(), &cprs, duration).await;
        let lat = latencies(channel, &cprs, duration, 10_000_000).await;
        let label = if with_subscriber { "append + 1 outbox row" } else { "append only" };
        println!(
            "| {label} | {rate:.0} | {} | {} | {} | {} |",
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
        gw.stop().await.expect("stop");
    }
}
