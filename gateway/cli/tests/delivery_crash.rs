//! Crash test of the outbox: a real `bro serve` delivers letters over HTTP to
//! a slow receiver; it is killed with SIGKILL while deliveries are in flight,
//! restarted on the same data directory, and then every delivery must arrive
//! at least once, the receiver's idempotency key must make each count once,
//! and each case's letters must first arrive in the order they were written.

#![cfg(unix)]
#![allow(clippy::print_stderr)] // The test reports what the crash did.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::delivery_service_client::DeliveryServiceClient;
use bro_e2e::receiver::Receiver;
use bro_e2e::{ServeIdentity, append, letter_to_psychiatry, new_case, parent};
use bro_server::access::{Purpose, Role};
use tonic::transport::Channel;

const CASES: usize = 4;
const LETTERS_PER_CASE: usize = 15;
/// The server is killed once this many deliveries arrived.
const KILL_AFTER: usize = 12;
const LIMIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a probe listener");
    listener.local_addr().expect("probe address").port()
}

/// An adapter directory with the medcom package, signed with a fresh key; the key's public half.
fn package_medcom(dir: &Path) -> String {
    bro_e2e::package_adapter(Path::new(env!("CARGO_BIN_EXE_bro")), dir, "medcom")
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn spawn(config: &Path, log: &Path, addr: SocketAddr) -> Server {
        let stderr = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bro"))
            .args(["serve", "--config", config.to_str().expect("utf8"), "--listen", &addr.to_string()])
            .env_remove("BRO_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn `bro serve`");
        Server { child, addr }
    }

    async fn channel(&mut self, log: &Path) -> Channel {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            if let Some(status) = self.child.try_wait().expect("poll") {
                panic!("`bro serve` exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
            }
            let connected = Channel::from_shared(format!("http://{}", self.addr)).expect("url").connect().await;
            if let Ok(channel) = connected {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`bro serve` did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LIMIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_survive_sigkill_and_arrive_once_per_key() {
    let dir = tempfile::tempdir().expect("dir");
    let public = package_medcom(dir.path());
    let receiver = Receiver::start(0, 0).await.expect("receiver");
    receiver.set_delay_ms(40);
    let identity = ServeIdentity::prepare(&dir.path().join("idp")).expect("identities");
    let config = identity
        .config_file(
            dir.path(),
            &format!(
                "data_dir = \"{}\"\n[adapters]\ndirectory = \"{}\"\n[adapters.vendors.ops]\nkey = \"{public}\"\nadapters = [\"medcom\"]\n\
                 [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\ntarget = \"xdis91\"\nsector = \"psychiatry\"\n\
                 subscribe = [\"correspondence_recorded\"]\ntransport = {{ kind = \"http\", url = \"{}\" }}\n\
                 backoff_base_ms = 50\nbackoff_max_ms = 500\nmax_attempts = 100\n",
                dir.path().join("data").display(),
                dir.path().join("adapters").display(),
                receiver.url()
            ),
        )
        .expect("config");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.path().join("serve-1.log");
    let mut server = Server::spawn(&config, &log, addr);
    let channel = server.channel(&log).await;
    let mut cases = CaseServiceClient::new(identity.caseworker(channel, "29189846"));
    for c in 0..CASES {
        let mut create = new_case(&format!("crash-{c}"), "29189846");
        create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
        cases.create_case(create).await.expect("case created");
        // The mother consents to sharing with psychiatry, so letters to it may go.
        let consent = bro_e2e::event(
            "2026-02-01",
            pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
                custody_holder: "mother".into(),
                scope: "share:psychiatry".into(),
            }),
        );
        cases
            .append_case_events(append(&format!("crash-{c}"), &format!("consent-{c}"), vec![consent], ""))
            .await
            .expect("consent");
    }
    // Every letter is acknowledged before the kill: each one's delivery is in the outbox.
    for n in 0..CASES * LETTERS_PER_CASE {
        let case = format!("crash-{}", n % CASES);
        let request = append(&case, &format!("letter-{n}"), vec![letter_to_psychiatry("2026-03-02", "mother", n)], "");
        cases.append_case_events(request).await.expect("letter appended");
    }
    wait_until("some deliveries arrived", || receiver.unique().len() >= KILL_AFTER).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let at_kill = receiver.unique().len();
    assert!(at_kill < CASES * LETTERS_PER_CASE, "the kill came while deliveries were still due ({at_kill})");

    let log = dir.path().join("serve-2.log");
    let mut server = Server::spawn(&config, &log, addr);
    let channel = server.channel(&log).await;
    wait_until("every delivery arrived", || receiver.unique().len() == CASES * LETTERS_PER_CASE).await;

    // The outbox agrees: every delivery is delivered, and each key is one of them.
    let mut deliveries = DeliveryServiceClient::new(identity.person(channel, Role::Administrator, Purpose::Operations));
    let mut delivered = Vec::new();
    let start = Instant::now();
    while delivered.len() < CASES * LETTERS_PER_CASE {
        assert!(start.elapsed() < LIMIT, "the outbox did not record every delivery");
        let request =
            pb::ListDeliveriesRequest { page_size: 1000, filter: "state = \"delivered\"".into(), ..Default::default() };
        delivered = deliveries.list_deliveries(request).await.expect("list").into_inner().deliveries;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys: HashSet<String> = delivered.iter().map(|d| d.name.trim_start_matches("deliveries/").to_owned()).collect();
    let received: HashSet<String> = receiver.unique().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, received, "each idempotency key is one delivery, and every delivery arrived");
    let all = receiver.all();
    assert!(all.len() >= keys.len(), "at least once");

    // Per case, letters first arrived in the order they were written.
    let mut seen = HashSet::new();
    let mut order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let case_of: BTreeMap<String, (String, i64)> = delivered
        .iter()
        .map(|d| (d.name.trim_start_matches("deliveries/").to_owned(), (d.case.clone(), d.first_sequence)))
        .collect();
    for r in &all {
        if seen.insert(r.key.clone()) {
            let (case, sequence) = &case_of[&r.key];
            order.entry(case.clone()).or_default().push(*sequence as usize);
        }
    }
    for (case, sequences) in &order {
        let mut sorted = sequences.clone();
        sorted.sort_unstable();
        assert_eq!(sequences, &sorted, "{case}: deliveries overtook each other");
    }
    eprintln!(
        "delivery crash test: {} deliveries, {} arrived before the kill, {} requests in all ({} repeats suppressed by key)",
        keys.len(),
        at_kill,
        all.len(),
        all.len() - keys.len()
    );
    drop(server);
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/medcom/fixtures").join(name);
    path.to_str().expect("utf8").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bro_ingest_and_bro_deliveries_drive_a_running_gateway() {
    let dir = tempfile::tempdir().expect("dir");
    let public = package_medcom(dir.path());
    let drop_dir = dir.path().join("drop");
    let admin = free_port();
    let identity = ServeIdentity::prepare(&dir.path().join("idp")).expect("identities");
    let config = identity
        .config_file(
            dir.path(),
            &format!(
                "data_dir = \"{}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
                 [adapters]\ndirectory = \"{}\"\n[adapters.vendors.ops]\nkey = \"{public}\"\nadapters = [\"medcom\"]\n\
                 [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\nsector = \"psychiatry\"\nclient_id = \"psykiatri\"\n\
                 [[systems]]\nname = \"sundhed\"\nadapter = \"medcom\"\ntarget = \"fhir+xml\"\nmunicipality = \"29189846\"\n\
                 subscribe = [\"correspondence_recorded\"]\ntransport = {{ kind = \"file\", dir = \"{}\" }}\n",
                dir.path().join("data").display(),
                dir.path().join("adapters").display(),
                drop_dir.display()
            ),
        )
        .expect("config");
    let system_token = dir.path().join("psykiatri.token");
    std::fs::write(&system_token, identity.system_token("psykiatri")).expect("token");
    let admin_token = dir.path().join("admin.token");
    let token = identity.idp.token(&bro_dev::DevClaims::with_role("ops-1", "29189846", Role::Administrator));
    std::fs::write(&admin_token, token).expect("token");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.path().join("serve.log");
    let mut server = Server::spawn(&config, &log, addr);
    let mut cases = CaseServiceClient::new(identity.caseworker(server.channel(&log).await, "29189846"));
    let mut create = new_case("cli-1", "29189846");
    let mother = bro_e2e::medcom_mother();
    create.custody_holders = vec![mother];
    cases.create_case(create).await.expect("case created");
    let consent = bro_e2e::event(
        "2026-02-01",
        pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
            custody_holder: "mother".into(),
            scope: "share:psychiatry".into(),
        }),
    );
    cases.append_case_events(append("cli-1", "consent-1", vec![consent], "")).await.expect("consent");
    let url = format!("http://{addr}");
    let ingest = |files: &[String]| {
        let mut args = vec![
            "ingest".to_owned(),
            "--server".into(),
            url.clone(),
            "--token-file".into(),
            system_token.display().to_string(),
            "--system".into(),
            "psykiatri".into(),
        ];
        args.extend(files.iter().cloned());
        Command::new(env!("CARGO_BIN_EXE_bro")).args(&args).output().expect("bro ingest")
    };
    let files = [fixture("cc-0d5b3c18-replacement-cpr.in.xml"), fixture("DIS91_1.in.xml"), fixture("REF01_1.in.xml")];
    let out = ingest(&files);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "a rejected file makes the command fail");
    assert!(shown.contains("appended 1 event(s) to cases/cli-1"), "{shown}");
    assert!(shown.contains("DIS91_1.in.xml: accepted (where it went is not disclosed"), "{shown}");
    assert!(shown.contains("REJECTED") && shown.contains("XREF01"), "{shown}");
    // Running it again stores nothing new.
    let out = ingest(&files[..1]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already ingested into cases/cli-1"));
    wait_until("the drop directory has the letter", || visible_files(&drop_dir) == 1).await;
    let start = Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_bro"))
            .args(["deliveries", "--server", &url, "--token-file", &admin_token.display().to_string()])
            .args(["list", "--system", "sundhed"])
            .output()
            .expect("bro deliveries list");
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{shown}");
        if shown.contains("delivered") {
            assert!(shown.contains("cases/cli-1"), "{shown}");
            break;
        }
        assert!(start.elapsed() < LIMIT, "the delivery is not shown as delivered: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What happened is counted on /metrics.
    let metrics = http_get(&format!("127.0.0.1:{admin}"), "/metrics");
    for line in [
        "bro_ingested_messages_total{system=\"psykiatri\",outcome=\"appended\"} 1",
        "bro_ingested_messages_total{system=\"psykiatri\",outcome=\"duplicate\"} 1",
        "bro_ingested_messages_total{system=\"psykiatri\",outcome=\"unmatched\"} 1",
        "bro_ingested_messages_total{system=\"psykiatri\",outcome=\"rejected\"} 1",
        "bro_delivery_attempts_total{system=\"sundhed\",outcome=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    // And where the time went, stage by stage.
    for stage in ["adapter", "validation", "commit_wait", "commit", "audit"] {
        let count = format!("bro_stage_duration_seconds_count{{stage=\"{stage}\"}} ");
        let observed = metrics.lines().find_map(|l| l.strip_prefix(count.as_str())).and_then(|n| n.parse::<u64>().ok());
        assert!(observed.is_some_and(|n| n > 0), "no {stage} timings in:\n{metrics}");
    }
    drop(server);
}

/// Files in a drop directory, not counting partial (hidden) ones being written.
fn visible_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

/// GETs a path from the admin listener (HTTP/1.0, the whole answer).
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the admin listener");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}
