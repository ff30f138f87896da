//! Replicas benchmark (issue 16), all in one run: the same workloads against
//! `bro serve` on embedded SQLite (one node), on PostgreSQL with one
//! replica, and on PostgreSQL with three replicas on one database, the
//! clients spread round-robin over them. Everything runs on this machine,
//! so the figures show what PostgreSQL and coordination cost, not how far
//! replicas scale.
//!
//! - `append`: closed loop, 16 clients, one event per durable append, to 100 cases.
//! - `ingest`: closed loop, 8 clients, MedCom XDIS91 letters translated by the
//!   `medcom` adapter and matched to one of the cases by CPR number.
//! - `ingest at a fixed rate`: open loop at [`RATE`] messages a second; p50 and p99.
//! - `delivery`: letters appended by 16 clients, each one delivery over HTTP
//!   to a receiver that answers at once; deliveries a second from the first
//!   append to the last arrival.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-cli --bench replicas`
//! (`-- --quick` for short phases). Needs PostgreSQL (`BRO_TEST_POSTGRES`,
//! default the local server). See BENCHMARKS.md.

#![allow(clippy::print_stdout)] // A bench binary reports its results on stdout.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::process::{ServeProcess, fresh_database, postgres_admin};
use bro_e2e::receiver::Receiver;
use bro_e2e::{ServeIdentity, TEST_CVR, append, new_case, parent, revision_offered};
use bro_server::access::client::AuthChannel;

const CASES: usize = 100;
const APPEND_CLIENTS: usize = 16;
const INGEST_CLIENTS: usize = 8;
/// The open-loop rate, messages per second.
const RATE: u32 = 50;

/// One deployment under test.
struct Deployment {
    name: &'static str,
    replicas: Vec<ServeProcess>,
    cases: Vec<CaseServiceClient<AuthChannel>>,
    ingest: Vec<IngestServiceClient<AuthChannel>>,
    receiver: Receiver,
    cprs: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Starts `replicas` gateways on `store_url` (none: embedded SQLite) and opens the cases.
async fn deploy(name: &'static str, store_url: Option<&str>, replicas: usize) -> Deployment {
    let bro = Path::new(env!("CARGO_BIN_EXE_bro"));
    let dir = tempfile::tempdir().expect("temp dir");
    let public = bro_e2e::package_adapter(bro, dir.path(), "medcom");
    let receiver = Receiver::start(0, 0).await.expect("receiver");
    let identity = ServeIdentity::prepare(&dir.path().join("idp")).expect("identities");
    let key_file = dir.path().join("bro.key");
    let made = std::process::Command::new(bro).args(["keygen", "--out"]).arg(&key_file).output().expect("keygen");
    assert!(made.status.success());
    let store = store_url.map(|url| format!("[store]\nurl = \"{url}\"\n")).unwrap_or_default();
    let extra = format!(
        "key_file = \"{}\"\n[rate_limit]\nper_second = 1000000.0\nburst = 1000000.0\n{store}\
         [adapters]\ndirectory = \"{}\"\n[adapters.vendors.ops]\nkey = \"{public}\"\nadapters = [\"medcom\"]\n\
         [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\ntarget = \"xdis91\"\nsector = \"psychiatry\"\n\
         client_id = \"psykiatri\"\nsubscribe = [\"correspondence_recorded\"]\n\
         transport = {{ kind = \"http\", url = \"{}\" }}\n",
        key_file.display(),
        dir.path().join("adapters").display(),
        receiver.url()
    );
    let config = identity.config_file(dir.path(), &extra).expect("config");
    let mut processes: Vec<ServeProcess> = (0..replicas)
        .map(|r| {
            let log = dir.path().join(format!("r{r}.log"));
            ServeProcess::spawn(bro, &config, &dir.path().join(format!("data-{r}")), log)
        })
        .collect();
    let (mut cases, mut ingest) = (Vec::new(), Vec::new());
    for process in &mut processes {
        let channel = process.channel().await;
        cases.push(CaseServiceClient::new(identity.caseworker(channel.clone(), TEST_CVR)));
        ingest.push(IngestServiceClient::new(identity.system(channel, "psykiatri")));
    }
    let cprs = bro_e2e::synthetic_cprs(CASES);
    for (c, cpr) in cprs.iter().enumerate() {
        let case = format!("bench-{c}");
        let mut create = new_case(&case, TEST_CVR);
        create.custody_holders = vec![parent("mother", cpr, "Mor Testesen")];
        let client = &mut cases[c % replicas];
        client.create_case(create).await.expect("create");
        let consent = bro_e2e::event(
            "2026-02-01",
            pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
                custody_holder: "mother".into(),
                scope: "share:psychiatry".into(),
            }),
        );
        client.append_case_events(append(&case, &format!("consent-{c}"), vec![consent], "")).await.expect("consent");
    }
    Deployment { name, replicas: processes, cases, ingest, receiver, cprs, _dir: dir }
}

/// Runs `clients` closed-loop clients for `secs`; each call is `call(client, n)` with a
/// run-wide counter `n`; the calls completed per second.
async fn closed_loop<C, F, Fut>(clients: Vec<C>, secs: f64, call: F) -> f64
where
    C: Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = C> + Send,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let (counter, done, call) = (counter.clone(), done.clone(), call.clone());
            tokio::spawn(async move {
                let mut client = client;
                while Instant::now() < deadline {
                    client = call(client, counter.fetch_add(1, Ordering::Relaxed)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// An XDIS91 letter `n` about the patient of case `n % CASES`, under request id `{tag}-{n}`.
fn ingest_request(cprs: &[String], template: &[u8], n: usize, tag: &str) -> pb::IngestRequest {
    pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage {
            content_type: "application/xml".into(),
            body: bro_e2e::xdis91_letter(template, &cprs[n % CASES], n),
            metadata: Default::default(),
        }),
        request_id: format!("{tag}-{n}"),
    }
}

/// The figures of one deployment.
struct Figures {
    appends: f64,
    ingests: f64,
    p50_ms: f64,
    p99_ms: f64,
    deliveries: f64,
}

async fn measure(d: &Deployment, secs: f64, letters: usize) -> Figures {
    let replicas = d.replicas.len();
    // Durable appends.
    let clients: Vec<_> = (0..APPEND_CLIENTS).map(|i| d.cases[i % replicas].clone()).collect();
    let appends = closed_loop(clients, secs, |mut client: CaseServiceClient<AuthChannel>, n| async move {
        let request =
            append(&format!("bench-{}", n % CASES), &format!("a-{n}"), vec![revision_offered("2026-02-01")], "");
        client.append_case_events(request).await.expect("append");
        client
    })
    .await;
    // XDIS91 ingest, closed loop. The letter ids of the three ingest phases never meet.
    let template = Arc::new(bro_e2e::medcom_fixture("DIS91_1.in.xml"));
    let clients: Vec<_> = (0..INGEST_CLIENTS).map(|i| d.ingest[i % replicas].clone()).collect();
    let shared = Arc::new((d.cprs.clone(), template.clone()));
    let ingests = closed_loop(clients, secs, move |mut client: IngestServiceClient<AuthChannel>, n| {
        let shared = shared.clone();
        async move {
            let request = ingest_request(&shared.0, &shared.1, n, "i");
            let outcome = client.ingest(request).await.expect("ingest").into_inner().outcome();
            assert_eq!(outcome, pb::IngestOutcome::Appended);
            client
        }
    })
    .await;
    // Ingest at a fixed rate.
    let total = (f64::from(RATE) * secs) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut calls = Vec::with_capacity(total);
    for k in 0..total {
        ticker.tick().await;
        let mut client = d.ingest[k % replicas].clone();
        let request = ingest_request(&d.cprs, &template, 10_000_000 + k, "o");
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            client.ingest(request).await.expect("ingest");
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for call in calls {
        latencies.push(call.await.expect("call"));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
    // Deliveries: letters appended, each delivered once over HTTP.
    let before = d.receiver.unique().len();
    let started = Instant::now();
    let writers: Vec<_> = (0..APPEND_CLIENTS)
        .map(|w| {
            let mut client = d.cases[w % replicas].clone();
            tokio::spawn(async move {
                for n in (w..letters).step_by(APPEND_CLIENTS) {
                    let letter = bro_e2e::letter_to_psychiatry("2026-03-02", "mother", n);
                    let request = append(&format!("bench-{}", n % CASES), &format!("l-{n}"), vec![letter], "");
                    client.append_case_events(request).await.expect("letter");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    while d.receiver.unique().len() < before + letters {
        assert!(started.elapsed() < Duration::from_secs(600), "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deliveries = letters as f64 / started.elapsed().as_secs_f64();
    Figures { appends, ingests, p50_ms: at(0.50), p99_ms: at(0.99), deliveries }
}

/// What bro's database sessions were doing, sampled every 10 ms: counts by
/// state and wait event (a profile of the database's side of the run).
static SAMPLES: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

/// Samples `pg_stat_activity` for the database at `url` until aborted.
async fn sample_waits(url: String) {
    SAMPLES.lock().expect("samples").clear();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("sampler");
    tokio::spawn(connection);
    loop {
        let rows = client
            .query(
                "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
                   AND query NOT LIKE 'LISTEN%'",
                &[],
            )
            .await
            .expect("sample");
        {
            let mut samples = SAMPLES.lock().expect("samples");
            for row in rows {
                let state = row.get::<_, Option<String>>(0).unwrap_or_default();
                let key = format!("{state} {}", row.get::<_, String>(1));
                match samples.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += 1,
                    None => samples.push((key, 1)),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The sampled waits as shares of all samples, largest first.
fn wait_profile() -> String {
    let mut samples = SAMPLES.lock().expect("samples").clone();
    samples.sort_by_key(|s| std::cmp::Reverse(s.1));
    let total: u64 = samples.iter().map(|(_, n)| n).sum();
    samples
        .iter()
        .take(6)
        .map(|(k, n)| format!("{k} {:.0}%", *n as f64 * 100.0 / total.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (secs, letters) = if quick { (2.0, 200) } else { (8.0, 800) };
    let Some(admin) = postgres_admin().await else { return };
    let run = std::process::id();
    let mut rows: Vec<(&'static str, Figures)> = Vec::new();
    let pg1 = fresh_database(&admin, &format!("bro_bench_pg1_{run}")).await;
    let pg3 = fresh_database(&admin, &format!("bro_bench_pg3_{run}")).await;
    for url in [&pg1, &pg3] {
        bro_store_postgres::PostgresStore::migrate(url).await.expect("migrate");
    }
    for (name, url, replicas) in [
        ("SQLite, 1 node", None, 1),
        ("PostgreSQL, 1 replica", Some(pg1.as_str()), 1),
        ("PostgreSQL, 3 replicas", Some(pg3.as_str()), 3),
    ] {
        let deployment = deploy(name, url, replicas).await;
        let sampler = url.map(|url| tokio::spawn(sample_waits(url.to_owned())));
        let figures = measure(&deployment, secs, letters).await;
        let waits = match sampler {
            Some(task) => {
                task.abort();
                let _ = task.await;
                wait_profile()
            }
            None => String::new(),
        };
        // Where the time went: means over the whole run, from the first replica's metrics.
        let metrics = deployment.replicas[0].metrics();
        let mean = |series: &str| {
            let value = |suffix: &str| {
                let name = series.replacen('{', &format!("{suffix}{{"), 1);
                let name = if name == series { format!("{series}{suffix}") } else { name };
                metrics.lines().find_map(|l| l.strip_prefix(&format!("{name} "))?.parse::<f64>().ok())
            };
            match (value("_sum"), value("_count")) {
                (Some(sum), Some(count)) if count > 0.0 => format!("{:.2} ms", sum / count * 1e3),
                _ => "-".into(),
            }
        };
        let stages = format!(
            "{:<24} mean per append {} (store), per audit batch {}, per adapter call {}",
            "",
            mean("bro_store_append_duration_seconds"),
            mean("bro_stage_duration_seconds{stage=\"audit\"}"),
            mean("bro_stage_duration_seconds{stage=\"adapter\"}")
        );
        for process in deployment.replicas {
            process.stop();
        }
        println!(
            "{:<24} append {:>7.0}/s  ingest {:>6.0}/s  ingest at {RATE}/s p50 {:>6.1} ms p99 {:>6.1} ms  delivery {:>6.0}/s",
            deployment.name, figures.appends, figures.ingests, figures.p50_ms, figures.p99_ms, figures.deliveries
        );
        println!("{stages}");
        if !waits.is_empty() {
            println!("{:<24} database sessions' time by wait: {waits}", "");
        }
        rows.push((name, figures));
    }
    let base = &rows[0].1;
    for (name, f) in &rows[1..] {
        println!(
            "{name} vs SQLite: append {:.2}x, ingest {:.2}x, p99 {:.2}x, delivery {:.2}x",
            f.appends / base.appends,
            f.ingests / base.ingests,
            f.p99_ms / base.p99_ms,
            f.deliveries / base.deliveries
        );
    }
    for db in [format!("bro_bench_pg1_{run}"), format!("bro_bench_pg3_{run}")] {
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.expect("drop");
    }
}
