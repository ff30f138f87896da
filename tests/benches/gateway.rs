//! Benchmarks of bro, all measured in one run and printed as markdown tables:
//! durable append throughput through the gRPC API (one case with 1-event and
//! 10-event appends, 16 clients on 16 cases), the same 1-event appends on the
//! store alone (`CaseLedger` over `SqliteStore`, no gRPC), and `GetCase`
//! throughput next to a trivial tonic server (grpc.health.v1 Check) with the
//! same client concurrency and duration, with the ratios between them.
//!
//! Run with `cargo bench -p bro-e2e --bench gateway` (add `-- --quick` for
//! 1 s per measurement instead of 3 s). See BENCHMARKS.md.

#![allow(clippy::print_stdout)] // A bench binary reports its results on stdout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_domain::CaseId;
use bro_e2e::{TestGateway, append, new_case, offered, placement_started, revision_offered};
use bro_server::access::client::AuthChannel;
use bro_store::{AppendEvents, CaseLedger, CreateCase};
use bro_store_sqlite::SqliteStore;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The day every appended event occurred on (appends stay in date order).
const DAY: &str = "2026-02-01";
/// Client tasks for the read benchmarks (GetCase and the trivial server):
/// with 8, an fsync of the audit log can cover at most 8 reads' records.
const READ_CONCURRENCY: [usize; 2] = [8, 64];
/// Clients (each with its own connection and case) in the many-cases benchmark.
const MANY_CASES: usize = 16;

/// How long to measure.
#[derive(Clone, Copy)]
struct Config {
    warmup: Duration,
    measure: Duration,
}

/// What one measurement found.
struct Stats {
    /// Completed operations in the measured window.
    ops: u64,
    /// Events (or requests, for reads) those operations carried.
    items: u64,
    /// From the end of the warm-up to the last completion.
    elapsed: Duration,
    /// Per-operation latencies, sorted.
    latencies: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: usize) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[(self.latencies.len() * p / 100).min(self.latencies.len() - 1)]
    }
}

/// Runs `workers` concurrently for the warm-up and then the measured window;
/// each worker is called with 0, 1, 2, … and returns how many items
/// (events) its operation carried. Operations started during the warm-up
/// are not counted.
async fn measure<W, Fut>(cfg: Config, workers: Vec<W>) -> Stats
where
    W: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let start = Instant::now();
    let warm_end = start + cfg.warmup;
    let end = warm_end + cfg.measure;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut op| {
            tokio::spawn(async move {
                let (mut ops, mut items, mut last) = (0u64, 0u64, warm_end);
                let mut latencies = Vec::new();
                for i in 0u64.. {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let n = op(i).await;
                    if began >= warm_end {
                        let done = Instant::now();
                        latencies.push(done - began);
                        ops += 1;
                        items += n;
                        last = last.max(done);
                    }
                }
                (ops, items, last, latencies)
            })
        })
        .collect();
    let mut stats = Stats { ops: 0, items: 0, elapsed: cfg.measure, latencies: Vec::new() };
    let mut last = warm_end;
    for t in tasks {
        let (ops, items, done, latencies) = t.await.expect("benchmark worker panicked");
        stats.ops += ops;
        stats.items += items;
        stats.latencies.extend(latencies);
        last = last.max(done);
    }
    stats.elapsed = (last - warm_end).max(Duration::from_millis(1));
    stats.latencies.sort_unstable();
    stats
}

/// One table row.
struct Row {
    name: String,
    concurrency: usize,
    unit: &'static str,
    stats: Stats,
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print_table(rows: &[Row]) {
    println!("| Benchmark | Concurrency | Requests | Events | Rate | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} {} | {} | {} |",
            r.name,
            r.concurrency,
            r.stats.ops,
            if r.unit == "events/s" { r.stats.items.to_string() } else { "–".into() },
            r.stats.rate(),
            r.unit,
            ms(r.stats.percentile(50)),
            ms(r.stats.percentile(99)),
        );
    }
}

fn case(id: &str) -> CaseId {
    CaseId::parse("case_id", id).expect("valid case id")
}

/// A case client on its own connection.
async fn client(gw: &TestGateway) -> CaseServiceClient<AuthChannel> {
    let channel = gw.channel().await.expect("connect");
    CaseServiceClient::new(channel)
}

/// A small, realistic case to read: opening, placement, two offers.
async fn read_case(c: &mut CaseServiceClient<AuthChannel>) {
    create(c, "read-1").await;
    let events =
        vec![placement_started("2026-01-15"), offered("2026-01-15", "parent-1"), offered("2026-01-15", "parent-2")];
    c.append_case_events(append("read-1", "read-1-setup", events, "")).await.expect("append");
}

/// `GetCase` on the read case, `tasks` tasks over one channel.
async fn get_case_bench(cfg: Config, c: &mut CaseServiceClient<AuthChannel>, tasks: usize) -> Stats {
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let c = c.clone();
            move |_: u64| {
                let mut c = c.clone();
                async move {
                    c.get_case(pb::GetCaseRequest { name: "cases/read-1".into() }).await.expect("GetCase");
                    1
                }
            }
        })
        .collect();
    measure(cfg, workers).await
}

/// Appends of `batch` events each to `case_id` through gRPC, one worker.
fn grpc_appender(
    client: CaseServiceClient<AuthChannel>,
    case_id: String,
    batch: usize,
) -> impl FnMut(u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> + Send + 'static {
    move |i| {
        let mut client = client.clone();
        let req = append(&case_id, &format!("{case_id}-r{i}"), (0..batch).map(|_| revision_offered(DAY)).collect(), "");
        Box::pin(async move {
            let n = client.append_case_events(req).await.expect("append").into_inner().events.len();
            n as u64
        })
    }
}

async fn create(client: &mut CaseServiceClient<AuthChannel>, case_id: &str) {
    client.create_case(new_case(case_id, "12345678")).await.expect("create case");
}

/// 1-event appends on the store alone: the ledger over SQLite, no gRPC.
async fn store_alone(cfg: Config) -> Stats {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open store");
    let ledger = Arc::new(CaseLedger::new(Arc::new(store)));
    let req = new_case("store-1", "12345678");
    let opening = convert::opening_from_pb(req.child.as_ref(), &req.custody_holders, req.placing_municipality.as_ref())
        .expect("valid opening");
    ledger
        .create(CreateCase {
            case_id: Some(case("store-1")),
            opened_on: DAY.parse().expect("date"),
            opening,
            request_id: "store-create".into(),
            now: bro_domain::Timestamp::from(std::time::SystemTime::now()),
            audit: Vec::new(),
        })
        .await
        .expect("create case");
    let event = convert::event_from_pb(&revision_offered(DAY)).expect("valid event");
    let worker = {
        let ledger = ledger.clone();
        move |i: u64| {
            let ledger = ledger.clone();
            let cmd = AppendEvents::new(
                case("store-1"),
                vec![event.clone()],
                format!("store-r{i}"),
                bro_domain::Timestamp::from(std::time::SystemTime::now()),
            );
            async move { ledger.append(cmd).await.expect("append").events.len() as u64 }
        }
    };
    let stats = measure(cfg, vec![worker]).await;
    ledger.store().close().await.expect("close store");
    stats
}

/// `grpc.health.v1 Check` on the simplest tonic server there is, with
/// `tasks` tasks over one channel. Accepted connections get `TCP_NODELAY`,
/// as on the gateway.
async fn trivial_server(cfg: Config, tasks: usize) -> Stats {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder().add_service(health).serve_with_incoming_shutdown(incoming, shutdown),
    );
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
    let health = HealthClient::new(channel);
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let h = health.clone();
            move |_: u64| {
                let mut h = h.clone();
                async move {
                    h.check(HealthCheckRequest { service: String::new() }).await.expect("Check");
                    1
                }
            }
        })
        .collect();
    let stats = measure(cfg, workers).await;
    drop(health);
    let _ = stop.send(());
    server.await.expect("server task").expect("trivial server");
    stats
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cfg = if quick {
        Config { warmup: Duration::from_millis(300), measure: Duration::from_secs(1) }
    } else {
        Config { warmup: Duration::from_millis(500), measure: Duration::from_secs(3) }
    };
    let store = store_alone(cfg).await;

    let gw = TestGateway::start().await.expect("start the gateway");
    let mut c = client(&gw).await;

    create(&mut c, "single-1").await;
    let single = measure(cfg, vec![grpc_appender(c.clone(), "single-1".into(), 1)]).await;

    create(&mut c, "batch-10").await;
    let batch = measure(cfg, vec![grpc_appender(c.clone(), "batch-10".into(), 10)]).await;

    let mut workers = Vec::new();
    for k in 0..MANY_CASES {
        let mut own = client(&gw).await;
        let id = format!("many-{k}");
        create(&mut own, &id).await;
        workers.push(grpc_appender(own, id, 1));
    }
    let many = measure(cfg, workers).await;

    read_case(&mut c).await;
    let mut get_case = Vec::new();
    for tasks in READ_CONCURRENCY {
        get_case.push(get_case_bench(cfg, &mut c, tasks).await);
    }
    drop(c);
    gw.stop().await.expect("stop the gateway");

    let mut trivial = Vec::new();
    for tasks in READ_CONCURRENCY {
        trivial.push(trivial_server(cfg, tasks).await);
    }

    let r = |stats: &Stats| stats.rate();
    let mut ratios = vec![
        ("gRPC append 1 event / store alone append 1 event".to_owned(), r(&single) / r(&store)),
        ("gRPC append 10 events / gRPC append 1 event (events/s)".to_owned(), r(&batch) / r(&single)),
        (format!("gRPC {MANY_CASES} clients × own case / gRPC one case (events/s)"), r(&many) / r(&single)),
    ];
    for ((tasks, read), check) in READ_CONCURRENCY.iter().zip(&get_case).zip(&trivial) {
        ratios.push((format!("GetCase / trivial tonic server (req/s), {tasks} tasks"), r(read) / r(check)));
    }

    let events = |name: &str, concurrency, stats| Row { name: name.into(), concurrency, unit: "events/s", stats };
    let requests = |name: &str, concurrency, stats| Row { name: name.into(), concurrency, unit: "req/s", stats };
    let mut rows = vec![
        events("Store alone (CaseLedger + SqliteStore): append 1 event, one case", 1, store),
        events("gRPC: append 1 event, one case", 1, single),
        events("gRPC: append 10 events, one case", 1, batch),
        events(&format!("gRPC: append 1 event, {MANY_CASES} clients × own case"), MANY_CASES, many),
    ];
    for ((tasks, read), check) in READ_CONCURRENCY.into_iter().zip(get_case).zip(trivial) {
        rows.push(requests("gRPC: GetCase", tasks, read));
        rows.push(requests("Trivial tonic server (grpc.health.v1 Check)", tasks, check));
    }

    println!(
        "\nbro gateway benchmarks ({} s per measurement after {} ms warm-up; loopback; SQLite WAL, synchronous=FULL)\n",
        cfg.measure.as_secs_f64(),
        cfg.warmup.as_millis()
    );
    print_table(&rows);
    println!();
    println!("| Ratio | Value |");
    println!("|---|---:|");
    for (name, ratio) in ratios {
        println!("| {name} | {ratio:.2} |");
    }
}
